import Foundation
import Messaging
import Testing
@testable import SimEngine
@testable import SimServer

/// `/sim/set_parameters` for topic rates (`rate.<topic>`) and reset ranges (`reset.<name>`): checked
/// all before any applies, applied by the step loop between control steps, seen by describe, the
/// publisher and the task's next reset.
@Suite(.serialized) struct ParameterTests {
    typealias Server = SimServerTests

    static func set(_ client: ServiceClient, _ pairs: [(String, String)]) throws(ServiceError) -> [String: String] {
        let response: Robosim_SetParametersResponse = try client.call("/sim/set_parameters", Robosim_SetParametersRequest.with {
            $0.parameters = pairs.map { pair in .with { $0.name = pair.0; $0.value = pair.1 } }
        })
        return Dictionary(uniqueKeysWithValues: response.parameters.map { ($0.name, $0.value) })
    }

    static func all(_ client: ServiceClient) throws(ServiceError) -> [String: String] {
        let response: Robosim_GetParametersResponse = try client.call("/sim/get_parameters", Robosim_GetParametersRequest())
        return Dictionary(uniqueKeysWithValues: response.parameters.map { ($0.name, $0.value) })
    }

    static func reset(_ client: ServiceClient, seed: UInt64? = nil) throws(ServiceError) -> [Double] {
        let r: Robosim_ResetResponse = try client.call("/sim/reset", Robosim_ResetRequest.with { if let seed { $0.seed = seed } })
        return r.observations
    }

    @Test func aTinyRealTimeFactorDoesNotStallTheLoopAfterwards() async throws {
        try await SimServerTests.withServer({ $0.scene = "Scenes/cartpole"; $0.envCount = 1; $0.realTimeFactor = 1 }) { _, client in
            // Below its bound a factor is refused; at the bound (1e-3) the next control step is 17 s away,
            // and the change back must not wait for it.
            #expect(throws: ServiceError.self) { try Self.set(client, [("real_time_factor", "1e-9")]) }
            _ = try Self.set(client, [("real_time_factor", "1e-3")])
            try await Task.sleep(for: .milliseconds(300))
            _ = try Self.set(client, [("real_time_factor", "0")])
            let t0 = try client.describe().simTime
            try await Task.sleep(for: .milliseconds(500))
            #expect(try client.describe().simTime > t0 + 0.1)
        }
    }

    @Test func parametersListRatesAndResetRanges() async throws {
        try await Server.withServer(LockstepTests.lockstep) { _, client in
            let p = try Self.all(client)
            for name in TopicRates.stateTopics { #expect(p["rate.\(name)"] == "30.0", "rate.\(name)") }
            #expect(p["rate.camera.front"] == "15.0")
            #expect(p["reset.pole_angle"] == "[-0.785398, 0.785398]")
            #expect(p["reset.cart_position"] == "[0.0, 0.0]")
        }
    }

    @Test func resetRangeSetAtRunTimeAppliesFromTheNextReset() async throws {
        try await Server.withServer(LockstepTests.lockstep) { _, client in
            let before = try Self.reset(client, seed: 3)
            #expect(before.count == 16)
            #expect(Set(stride(from: 0, to: 16, by: 4).map { before[$0] }).count == 4)   // four different pole angles

            let set = try Self.set(client, [("reset.pole_angle", "[0.5, 0.5]")])
            #expect(set == ["reset.pole_angle": "[0.5, 0.5]"])
            #expect(try Self.all(client)["reset.pole_angle"] == "[0.5, 0.5]")

            // An explicit reset: every env starts at exactly 0.5 rad, at rest, cart at 0.
            let after = try Self.reset(client)
            for i in 0..<4 { #expect(Array(after[(4 * i)..<(4 * i + 4)]) == [0.5, 0, 0, 0], "env \(i): \(after)") }

            // Auto-resets see it too: a pole released at 0.5 rad falls (|angle| > pi/2), and the
            // episode that follows starts at 0.5 again.
            var autoResets = 0
            for _ in 0..<200 where autoResets == 0 {
                let s = try LockstepTests.step(client, actions: [0, 0, 0, 0])
                for id in s.finalEnvIds.map(Int.init) {
                    #expect(s.terminated[id])
                    #expect(s.observations[4 * id] == 0.5)
                    autoResets += 1
                }
            }
            #expect(autoResets > 0)

            // Back to the manifest's range: the same seed gives the same start as before (determinism).
            _ = try Self.set(client, [("reset.pole_angle", "[-0.785398, 0.785398]")])
            #expect(try Self.reset(client, seed: 3) == before)
        }
    }

    @Test(arguments: [
        ([("reset.pole_angle", "[1, 0]")], Robosim_ErrorCode.invalidArgument, "low <= high"),
        ([("reset.pole_angle", "[0.5]")], .invalidArgument, "must be [low, high]"),
        ([("reset.pole_angle", "0.5")], .invalidArgument, "must be [low, high]"),
        ([("reset.pole_angle", "[0, 1, 2]")], .invalidArgument, "must be [low, high]"),
        ([("reset.pole_angle", "[nan, 1]")], .invalidArgument, "finite"),
        ([("reset.pole_angle", "[0, inf]")], .invalidArgument, "finite"),
        ([("reset.pole_angle", "[a, b]")], .invalidArgument, "got '[a, b]'"),
        ([("rate.tf", "0")], .invalidArgument, "at least 0.01 and at most 1000"),
        ([("rate.tf", "-5")], .invalidArgument, "at least 0.01"),
        ([("rate.tf", "1e-300")], .invalidArgument, "at least 0.01"),   // once trapped converting 1/(rate·dt) to Int
        ([("rate.tf", "1000.5")], .invalidArgument, "at most 1000"),
        ([("rate.joint_states", "nan")], .invalidArgument, "rate in Hz"),
        ([("rate.joint_states", "fast")], .invalidArgument, "got 'fast'"),
        ([("reset.gravity", "[0, 1]")], .notFound, "no parameter 'reset.gravity'"),
        ([("rate.camera", "10")], .notFound, "no parameter 'rate.camera'"),
        ([("decimation", "4")], .invalidArgument, "read-only"),
        // Atomic: a good change next to a bad one is not applied either.
        ([("rate.tf", "10"), ("reset.pole_angle", "[2, 1]")], .invalidArgument, "low <= high"),
        ([("reset.pole_angle", "[0.5, 0.5]"), ("rate.joint_states", "60"), ("gravity", "0")], .notFound, "no parameter 'gravity'"),
    ])
    func badValuesAndUnknownNamesChangeNothing(pairs: [(String, String)], code: Robosim_ErrorCode, text: String) async throws {
        try await Server.withServer(LockstepTests.lockstep) { _, client in
            let initial = try Self.all(client)
            let start = try Self.reset(client, seed: 1)
            do throws(ServiceError) {
                _ = try Self.set(client, pairs)
                Issue.record("accepted \(pairs)")
            } catch {
                #expect(error.code == code && error.message.contains(text), "\(error)")
            }
            #expect(try Self.all(client) == initial)
            let d = try client.describe()
            #expect(d.topics.filter { $0.name.hasSuffix("/tf") || $0.name.hasSuffix("/joint_states") }.allSatisfy { $0.rateHz == 30 })
            #expect(try Self.reset(client, seed: 1) == start)
        }
    }

    @Test func rateChangeShowsInDescribeAndInTheMessageCount() async throws {
        try await Server.withServer({ LockstepTests.lockstep(&$0); $0.envCount = 1 }) { server, client in
            // A pole at exactly 0 rad stays up with no force: no auto-reset disturbs the count.
            _ = try Self.set(client, [("reset.pole_angle", "[0, 0]")])
            _ = try Self.reset(client, seed: 0)
            let node = try Node(name: "rate_watcher", server: server.hub.serviceEndpoint)
            defer { node.close() }
            let states = try node.subscribe("/env_0/joint_states", SensorMsgs_JointState.self, qos: .reliable())
            // Step until the subscription carries messages, then count over 60 steps (1 s of sim time).
            for _ in 0..<500 where states.received == 0 {
                _ = try LockstepTests.step(client, actions: [0])
                try await Task.sleep(for: .milliseconds(10))
            }
            try #require(states.received > 0, "no joint_states arrived")
            let beforeReset = states.received
            _ = try Self.reset(client)   // the episode's step count from 0: 180 steps stay clear of truncation (300)
            // A reset publishes the new episode's first state (every topic is due at an episode start).
            let resetDeadline = Date().addingTimeInterval(5)
            while states.received == beforeReset && Date() < resetDeadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(states.received == beforeReset + 1)

            func count(steps: Int, expected: UInt64) async throws -> UInt64 {
                let base = states.received
                for _ in 0..<steps { _ = try LockstepTests.step(client, actions: [0]) }
                let deadline = Date().addingTimeInterval(5)
                while states.received - base < expected && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
                try await Task.sleep(for: .milliseconds(200))   // nothing more comes
                return states.received - base
            }
            func describedRate() throws -> Double? {
                try client.describe().topics.first { $0.name == "/env_0/joint_states" }?.rateHz
            }
            // The control step is 1/60 s: 30 Hz is every 2nd step, 10 Hz every 6th, 60 Hz every step.
            #expect(try describedRate() == 30)
            #expect(try await count(steps: 60, expected: 30) == 30)
            #expect(try Self.set(client, [("rate.joint_states", "10")]) == ["rate.joint_states": "10.0"])
            #expect(try describedRate() == 10)
            #expect(try await count(steps: 60, expected: 10) == 10)
            _ = try Self.set(client, [("rate.joint_states", "60")])
            #expect(try describedRate() == 60)
            #expect(try await count(steps: 60, expected: 60) == 60)
            #expect(states.dropped == 0)
            // Other topics keep their rate.
            #expect(try client.describe().topics.first { $0.name == "/env_0/tf" }?.rateHz == 30)
        }
    }

    @Test func changesBetweenStepsLeaveTrajectoriesBitIdentical() async throws {
        try await Server.withServer(LockstepTests.lockstep) { _, client in
            let actions = (0..<40).map { k in (0..<4).map { i in sin(Double(7 * k + i)) } }
            func rollout(changing: Bool) throws -> [[Double]] {
                var out = [try Self.reset(client, seed: 21)]
                for (k, a) in actions.enumerated() {
                    if changing {
                        _ = try Self.set(client, [("rate.tf", k % 2 == 0 ? "7" : "1000"), ("rate.joint_states", "\(1 + k)")])
                    }
                    let s = try LockstepTests.step(client, actions: a)
                    out.append(s.observations + s.rewards + s.finalObservations)
                }
                return out
            }
            let plain = try rollout(changing: false)
            // A different reset range in between, then the manifest's again.
            _ = try Self.set(client, [("reset.pole_angle", "[0.3, 0.4]")])
            _ = try Self.reset(client)
            _ = try Self.set(client, [("reset.pole_angle", "[-0.785398, 0.785398]")])
            let changed = try rollout(changing: true)
            #expect(plain == changed)
        }
    }

    @Test(arguments: [
        ("[0.5, 0.5]", 0.5...0.5), ("[-1,2]", -1...2), ("  [ -0.25 , 1e-3 ] ", -0.25...0.001), ("[0, 0]", 0...0),
    ])
    func rangesParse(text: String, range: ClosedRange<Double>) {
        #expect(SimServer.parseRange(text) == range)
        #expect(SimServer.parseRange(SimServer.format(range)) == range)
    }

    @Test(arguments: ["", "[]", "[1]", "[1,]", "[,1]", "1, 2", "[1, 2", "1, 2]", "[2, 1]", "[nan, 1]", "[1, inf]", "[1, 2, 3]",
                      "[x, 1]", "(1, 2)"])
    func badRangesDoNotParse(text: String) {
        #expect(SimServer.parseRange(text) == nil)
    }
}
