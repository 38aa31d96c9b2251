import Foundation
import Messaging
import Testing
@testable import SimEngine
@testable import SimServer

/// Commands on topics pass the safety layer: rejected ones are counted with a reason and never applied.
@Suite(.serialized) struct SafetyTests {
    @Test func inboxChecksAndHoldsActions() {
        let inbox = CommandInbox(envCount: 2, actions: ActionContract(low: [-1, -2], high: [1, 2], names: ["a", "b"]), mode: .realtime)
        #expect(inbox.rejection(ofAction: [0.5, -2]) == nil)
        #expect(inbox.rejection(ofAction: [0.5]) == "expected 2 action values, got 1")
        #expect(inbox.rejection(ofAction: [.nan, 0]) == "action a is nan; actions must be finite")
        #expect(inbox.rejection(ofAction: [0, -.infinity]) == "action b is -inf; actions must be finite")
        #expect(inbox.rejection(ofAction: [1.5, 0]) == nil)   // the action contract clips out-of-bounds values
        inbox.submitAction(env: 1, topic: "/env_1/action", data: [0.25, 1])
        inbox.submitAction(env: 1, topic: "/env_1/action", data: [.nan, 9])    // rejected: the held one stays
        var buffer = [Double](repeating: 0, count: 4)
        inbox.latestActions(into: &buffer)
        #expect(buffer == [0, 0, 0.25, 1])
        let stats = inbox.statistics()
        #expect(stats.count == 1 && stats[0].accepted == 1 && stats[0].rejected == 1)
        #expect(stats[0].lastRejection == "action a is nan; actions must be finite")
        let lockstep = CommandInbox(envCount: 1, actions: ActionContract(low: [-1], high: [1], names: ["a"]), mode: .lockstep)
        #expect(lockstep.rejection(ofAction: [0]) == "lockstep mode: actions come through /sim/step")
    }

    @Test func actionTopicCountersOverSockets() async throws {
        try await SimServerTests.withServer({ $0.scene = "Scenes/cartpole"; $0.envCount = 2; $0.realTimeFactor = 1 }) { server, client in
            let node = try Node(name: "commander", server: server.hub.serviceEndpoint)
            defer { node.close() }
            let publisher = try node.advertise("/env_0/action", Robosim_Action.self)
            func stats() throws -> Robosim_CommandStatistics? {
                try client.describe().commands.first { $0.topic == "/env_0/action" }
            }
            // The subscription takes a moment to reach this publisher: send a good action until counted.
            let good = Robosim_Action.with { $0.data = [0.5] }
            let deadline = Date().addingTimeInterval(5)
            while (try stats()?.accepted ?? 0) == 0 && Date() < deadline {
                publisher.publish(good)
                try await Task.sleep(for: .milliseconds(20))
            }
            let accepted = try #require(try stats()).accepted
            #expect(accepted >= 1)
            // Refused: not finite, the wrong size. Accepted and clipped: out of bounds.
            for bad in [[Double.nan], [-.infinity], [0.1, 0.2]] { publisher.publish(.with { $0.data = bad }) }
            publisher.publish(.with { $0.data = [2.0] })
            var seen: Robosim_CommandStatistics?
            for _ in 0..<250 {
                seen = try stats()
                if seen?.rejected == 3 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(seen?.rejected == 3)
            for _ in 0..<250 where try stats()?.accepted == accepted { try await Task.sleep(for: .milliseconds(20)) }
            seen = try stats()
            #expect(seen?.accepted == accepted + 1)
            #expect(seen?.lastRejection == "expected 1 action values, got 2")
        }
    }
}

@Suite struct RobotCommandInboxTests {
    @Test func robotCommandsAreCheckedHeldAndTakeOverFromActions() throws {
        let w = try WorldTests.world("Scenes/object_tracker", envs: 2, threads: 1)
        let safety = SafetyLayer(robot: w.robot?.spec, workspace: nil)
        let inbox = CommandInbox(envCount: 2, actions: ActionContract(low: [-1, -1], high: [1, 1], names: ["a", "b"]), mode: .realtime, safety: safety)
        func twist(_ v: Double, _ a: Double) -> GeometryMsgs_Twist { .with { $0.linear.x = v; $0.angular.z = a } }
        inbox.submitAction(env: 1, topic: "/env_1/action", data: [0.5, 0])
        inbox.submit(env: 1, topic: "/env_1/cmd_vel", twist: twist(0.13, 0.91))
        inbox.submit(env: 1, topic: "/env_1/cmd_vel", twist: twist(1, 0))          // over the limit: the held one stays
        var actions = [Double](repeating: 0, count: 4)
        inbox.drain(into: w, actions: &actions)
        #expect(actions == [0, 0, 0.5, 0])
        #expect(w.envs[0].source == .none && w.envs[0].pendingCommand == nil)
        #expect(w.envs[1].source == .robot)
        #expect(w.envs[1].pendingCommand?.command == .twist(linear: 0.13, angular: 0.91))
        #expect(w.envs[1].pendingCommand?.topic == "/env_1/cmd_vel")
        // Taken once; a later action takes over again.
        w.envs[1].pendingCommand = nil
        inbox.submitAction(env: 1, topic: "/env_1/action", data: [0.25, 0])
        inbox.drain(into: w, actions: &actions)
        #expect(w.envs[1].source == .action && w.envs[1].pendingCommand == nil)
        let stats = inbox.statistics().first { $0.topic == "/env_1/cmd_vel" }
        #expect(stats?.accepted == 1 && stats?.rejected == 1)
        #expect(stats?.lastRejection == "linear.x = 1.0 m/s exceeds the limit 0.26 m/s")
        // What the motion generator refuses later is counted on the same topic.
        inbox.countRejections([("/env_1/cmd_vel", "stopped: test")])
        #expect(inbox.statistics().first { $0.topic == "/env_1/cmd_vel" }?.rejected == 2)
        let lockstep = CommandInbox(envCount: 1, actions: ActionContract(low: [-1], high: [1], names: ["a"]), mode: .lockstep, safety: safety)
        #expect(lockstep.rejection(of: safety.command(from: twist(0.1, 0))) == "lockstep mode: actions come through /sim/step")
    }
}
