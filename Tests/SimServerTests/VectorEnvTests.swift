import ClientKit
import Foundation
import Messaging
import Testing
@testable import SimServer

/// ClientKit's VectorEnv against a real server over sockets: lease, reset, step, render, renew, release.
@Suite struct VectorEnvTests {
    @Test func leasesStepsAndReleases() async throws {
        try await SimServerTests.withServer(LockstepTests.lockstep) { server, client in
            try await OfflineStrategistTests.onThread {
                let env = try VectorEnv(client: client, options: .init(count: 3, clientName: "vector-test"))
                #expect(env.count == 3 && env.envIDs == [0, 1, 2])
                #expect(env.observationNames == ["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"])
                #expect(env.actionNames == ["cart_force"] && env.actionLow == [-1] && env.actionHigh == [1])
                // The fourth env is free; the three are not.
                #expect(throws: ServiceError.self) { _ = try VectorEnv(client: client, options: .init(count: 2)) }

                let a = try env.reset(seed: 9).observations
                let b = try env.reset(seed: 9).observations
                #expect(a == b && a.count == 3 * 4)
                var finals = 0, successes = 0
                for _ in 0..<400 {
                    let r = try env.step(actions: [1, -1, 0.2])
                    #expect(r.observations.count == 12 && r.rewards.count == 3)
                    for (p, final) in r.finalObservations {
                        #expect(final.count == 4 && (r.terminated[p] || r.truncated[p]))
                        finals += 1
                    }
                    successes += r.success.filter { $0 }.count
                }
                #expect(finals >= 3)   // full pushes end episodes
                // One env alone, by position.
                let one = try env.step(actions: [0], positions: [2])
                #expect(one.observations.count == 4)
                #expect(throws: ServiceError.self) { _ = try env.step(actions: [0], positions: [3]) }
                try env.renewLease()
                env.close()
                env.close()
                // Released: all four envs can be leased again.
                let all = try VectorEnv(client: client, options: .init())
                #expect(all.count == 4)
                all.close()
                _ = successes
            }
        }
    }

    @Test func imageLayoutFindsEachCamera() async throws {
        try await SimServerTests.withServer(CameraTests.lockstep) { _, client in
            try await OfflineStrategistTests.onThread {
                let env = try VectorEnv(client: client)
                defer { env.close() }
                let layout = env.imageLayout()
                #expect(layout.cameras.map(\.name) == ["top", "side"] && layout.perEnv == 3)
                let r = try env.reset(seed: 1, render: true)
                #expect(r.images.count == 2 * 3)
                let side = layout.images(r.images, env: 1, camera: "side")
                #expect(side.rgb?.width == 128 && side.depth == nil)
                let top = layout.images(r.images, env: 1, camera: "top")
                #expect(top.rgb?.encoding == "rgb8" && top.depth?.encoding == "32FC1")
                let images = try env.render(positions: [0], cameras: ["side"])
                #expect(images.count == 1 && env.imageLayout(cameras: ["side"]).perEnv == 1)
            }
        }
    }

    /// Through the step channel (transport auto, same host) and through sockets, with either
    /// autoreset: the same observations, rewards, flags and final observations.
    @Test(arguments: [Robosim_Autoreset.sameStep, .nextStep])
    func channelAndSocketsAgree(autoreset: Robosim_Autoreset) async throws {
        try await SimServerTests.withServer(LockstepTests.lockstep) { _, client in
            try await OfflineStrategistTests.onThread {
                func run(_ transport: VectorEnv.Transport) throws -> [[Double]] {
                    let env = try VectorEnv(client: client, options: .init(count: 4, transport: transport, autoreset: autoreset))
                    defer { env.close() }
                    #expect(env.transport == (transport == .socket ? .socket : .shm))
                    var rows = [try env.reset(seed: 21).observations]
                    for step in 0..<150 {
                        let r = try env.step(actions: (0..<4).map { WorldTests.action(env: $0, step: step) * 3 })
                        rows.append(r.observations + r.rewards + r.terminated.map { $0 ? 1 : 0 } + r.truncated.map { $0 ? 1 : 0 }
                                    + r.success.map { $0 ? 1 : 0 } + r.finalPositions.flatMap { r.finalObservations[$0]! })
                    }
                    return rows
                }
                let viaChannel = try run(.shm), viaSockets = try run(.socket)
                #expect(viaChannel == viaSockets)
                #expect(viaSockets.dropFirst().contains { $0[20..<24].contains(1) }, "no episode terminated: ends were not compared")
            }
        }
    }
}
