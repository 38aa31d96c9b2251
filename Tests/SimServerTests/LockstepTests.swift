import Foundation
import Glibc
import Messaging
import Testing
@testable import SimEngine
@testable import SimServer

/// /sim/step, /sim/reset, leases and parameters over real sockets, in lockstep mode.
@Suite(.serialized) struct LockstepTests {
    typealias Server = SimServerTests

    static func lockstep(_ config: inout SimServerConfiguration) {
        config.scene = "Scenes/cartpole"
        config.mode = .lockstep
        config.envCount = 4
    }

    static func step(_ client: ServiceClient, lease: String = "", ids: [UInt32] = [], actions: [Double]) throws(ServiceError) -> Robosim_StepResponse {
        var r = Robosim_StepRequest()
        r.lease = lease
        r.envIds = ids
        r.actions = actions
        return try client.call("/sim/step", r)
    }

    @Test func stepResetAndAutoReset() async throws {
        try await Server.withServer(Self.lockstep) { _, client in
            var reset = Robosim_ResetRequest()
            reset.seed = 5
            let r0: Robosim_ResetResponse = try client.call("/sim/reset", reset)
            #expect(r0.observations.count == 16)
            let again: Robosim_ResetResponse = try client.call("/sim/reset", reset)
            #expect(again.observations == r0.observations)   // same seed, same start

            var finals = 0
            for _ in 0..<300 {
                let s = try Self.step(client, actions: [0, 0, 0, 0])
                #expect(s.observations.count == 16 && s.rewards.count == 4 && s.terminated.count == 4 && s.truncated.count == 4)
                #expect(s.finalObservations.count == 4 * s.finalEnvIds.count)
                finals += s.finalEnvIds.count
                for id in s.finalEnvIds { #expect(s.terminated[Int(id)] || s.truncated[Int(id)]) }
            }
            #expect(finals >= 4)   // every uncontrolled pole fell at least once
        }
    }

    @Test func badRequestsGetClearErrorsAndChangeNothing() async throws {
        try await Server.withServer(Self.lockstep) { _, client in
            let cases: [(Robosim_StepRequest, Robosim_ErrorCode, String)] = [
                (.with { $0.actions = [0, 0, 0] }, .invalidArgument, "expected 4 actions"),
                (.with { $0.actions = [0, .nan, 0, 0] }, .invalidArgument, "must be finite"),
                (.with { $0.actions = [.infinity, 0, 0, 0] }, .invalidArgument, "must be finite"),
                (.with { $0.envIds = [9]; $0.actions = [0] }, .invalidArgument, "out of range"),
                (.with { $0.envIds = [1, 1]; $0.actions = [0, 0] }, .invalidArgument, "given twice"),
                (.with { $0.lease = "nope"; $0.actions = [0] }, .failedPrecondition, "expired or unknown"),
            ]
            for (request, code, text) in cases {
                do {
                    let _: Robosim_StepResponse = try client.call("/sim/step", request)
                    Issue.record("accepted \(request)")
                } catch {
                    #expect((error as? ServiceError)?.code == code && ((error as? ServiceError)?.message ?? "").contains(text), "\(error)")
                }
            }
            do {
                _ = try client.call("/sim/step", payload: [0x07, 0x07])
                Issue.record("accepted garbage")
            } catch {
                #expect((error as? ServiceError)?.code == .invalidArgument)
            }
            // The server still steps.
            let last = try Self.step(client, actions: [0, 0, 0, 0])
            #expect(last.rewards.count == 4)
        }
    }

    @Test func twoClientsLeaseDisjointEnvsAtOnce() async throws {
        try await Server.withServer(Self.lockstep) { server, _ in
            let endpoint = server.hub.serviceEndpoint
            // Two clients, each on its own thread, lease two envs and step them concurrently.
            let results = try await withThrowingTaskGroup(of: (String, [UInt32], Int).self) { group in
                for name in ["alice", "bob"] {
                    group.addTask {
                        let client = try ServiceClient(server: endpoint, timeout: 10)
                        var l = Robosim_LeaseRequest()
                        l.count = 2
                        l.clientName = name
                        let lease: Robosim_LeaseResponse = try client.call("/sim/lease", l)
                        var steps = 0
                        for _ in 0..<100 {
                            let s = try Self.step(client, lease: lease.lease, actions: [0.1, -0.1])
                            steps += s.rewards.count == 2 ? 1 : 0
                        }
                        return (lease.lease, lease.envIds, steps)
                    }
                }
                var out: [(String, [UInt32], Int)] = []
                for try await r in group { out.append(r) }
                return out
            }
            #expect(results.count == 2)
            #expect(results.allSatisfy { $0.2 == 100 })
            #expect(Set(results[0].1).isDisjoint(with: results[1].1))
            #expect(Set(results.flatMap(\.1)) == [0, 1, 2, 3])
            // Everything is leased now: a third client cannot lease, nor step leased envs without a lease.
            let client = try ServiceClient(server: endpoint, timeout: 5)
            do {
                let _: Robosim_LeaseResponse = try client.call("/sim/lease", Robosim_LeaseRequest.with { $0.count = 1 })
                Issue.record("leased an env twice")
            } catch {
                #expect((error as? ServiceError)?.code == .resourceExhausted)
            }
            do {
                _ = try Self.step(client, ids: [results[0].1[0]], actions: [0])
                Issue.record("stepped another client's env")
            } catch {
                #expect((error as? ServiceError)?.code == .failedPrecondition)
            }
            // Release one lease: its envs are free again.
            let _: Robosim_Empty = try client.call("/sim/release", Robosim_ReleaseRequest.with { $0.lease = results[0].0 })
            let freed: Robosim_LeaseResponse = try client.call("/sim/lease", Robosim_LeaseRequest.with { $0.envIds = results[0].1 })
            #expect(freed.envIds == results[0].1.sorted())
        }
    }

    @Test func leaseExpiresWhenItsClientGoesSilent() async throws {
        try await Server.withServer(Self.lockstep) { _, client in
            let lease: Robosim_LeaseResponse = try client.call("/sim/lease", Robosim_LeaseRequest.with {
                $0.envIds = [0, 1]
                $0.ttlS = 0.3
                $0.clientName = "flaky"
            })
            _ = try Self.step(client, lease: lease.lease, actions: [0, 0])   // keeps it alive
            try await Task.sleep(for: .milliseconds(600))
            do {
                _ = try Self.step(client, lease: lease.lease, actions: [0, 0])
                Issue.record("an expired lease still worked")
            } catch {
                #expect((error as? ServiceError)?.code == .failedPrecondition && ((error as? ServiceError)?.message ?? "").contains("expired"))
            }
            let other: Robosim_LeaseResponse = try client.call("/sim/lease", Robosim_LeaseRequest.with { $0.envIds = [0, 1] })
            #expect(other.envIds == [0, 1])
        }
    }

    @Test func parameters() async throws {
        try await Server.withServer { _, client in
            let all: Robosim_GetParametersResponse = try client.call("/sim/get_parameters", Robosim_GetParametersRequest())
            #expect(all.parameters.contains { $0.name == "real_time_factor" && $0.value == "1.0" })
            let set: Robosim_SetParametersResponse = try client.call("/sim/set_parameters", Robosim_SetParametersRequest.with {
                $0.parameters = [.with { $0.name = "real_time_factor"; $0.value = "0" }]
            })
            #expect(set.parameters.map(\.value) == ["0.0"])
            for (name, value, code) in [("real_time_factor", "-1", Robosim_ErrorCode.invalidArgument), ("mode", "lockstep", .invalidArgument), ("gravity", "0", .notFound)] {
                do {
                    let _: Robosim_SetParametersResponse = try client.call("/sim/set_parameters", Robosim_SetParametersRequest.with {
                        $0.parameters = [.with { $0.name = name; $0.value = value }]
                    })
                    Issue.record("set \(name)=\(value)")
                } catch {
                    #expect((error as? ServiceError)?.code == code)
                }
            }
            let _: Robosim_Empty = try client.call("/sim/pause", Robosim_Empty())
            let paused: Robosim_GetParametersResponse = try client.call("/sim/get_parameters", Robosim_GetParametersRequest.with { $0.names = ["paused"] })
            #expect(paused.parameters.first?.value == "true")
            let _: Robosim_Empty = try client.call("/sim/resume", Robosim_Empty())
        }
    }

    /// A lease's same-host step channel gives bit for bit what /sim/step gives, refuses non-finite
    /// actions with INVALID_ARGUMENT and goes on, and closes when the lease is released.
    @Test func stepChannelMatchesSimStep() async throws {
        try await Server.withServer(Self.lockstep) { server, client in
            var leaseRequest = Robosim_LeaseRequest()
            leaseRequest.count = 4
            let lease: Robosim_LeaseResponse = try client.call("/sim/lease", leaseRequest)
            var open = Robosim_OpenChannelRequest()
            open.lease = lease.lease
            let r: Robosim_OpenChannelResponse = try client.call("/sim/open_channel", open)
            let layout = StepChannel.Layout(envs: r.envIds.count, observationSize: Int(r.observationSize), actionSize: Int(r.actionSize))
            #expect(UInt64(layout.observations) == r.observations && UInt64(layout.byteCount) == r.byteCount && UInt64(layout.final) == r.final)
            let channel = try StepChannel.attach(path: r.path, layout: layout, nonce: r.nonce)
            do {
                _ = try client.call("/sim/open_channel", open) as Robosim_OpenChannelResponse
                Issue.record("a second channel for one lease")
            } catch {
                #expect((error as? ServiceError)?.code == .failedPrecondition)
            }

            func actions(_ step: Int) -> [Double] { (0..<4).map { WorldTests.action(env: $0, step: step) } }
            // Through the channel.
            channel.store(StepChannel.Header.hasSeed, 1)
            channel.seed = 9
            try channel.call(.reset, timeout: .seconds(10))
            var viaChannel: [[Double]] = [Array(channel.observations)]
            for step in 0..<120 {
                for (k, a) in actions(step).enumerated() { channel.actions[k] = a }
                try channel.call(.step, timeout: .seconds(10))
                var finals: [Double] = []
                for k in 0..<4 where channel.final[k] == 1 { finals += channel.finalObservations[(4 * k)..<(4 * k + 4)] }
                viaChannel.append(Array(channel.observations) + Array(channel.rewards) + channel.terminated.map(Double.init)
                                  + channel.truncated.map(Double.init) + finals)
            }
            // Sealed: no client can shrink or grow the memory under the server's mapping.
            let fd = Glibc.open(r.path, O_RDWR)
            #expect(fd >= 0)
            #expect(ftruncate(fd, 0) != 0 && errno == EPERM)
            #expect(ftruncate(fd, off_t(layout.byteCount * 2)) != 0 && errno == EPERM)
            Glibc.close(fd)
            // Through /sim/step, same lease, seed and actions.
            var reset = Robosim_ResetRequest()
            reset.lease = lease.lease
            reset.seed = 9
            let r0: Robosim_ResetResponse = try client.call("/sim/reset", reset)
            var viaStep: [[Double]] = [r0.observations]
            for step in 0..<120 {
                let s = try Self.step(client, lease: lease.lease, actions: actions(step))
                viaStep.append(s.observations + s.rewards + s.terminated.map { $0 ? 1 : 0 } + s.truncated.map { $0 ? 1 : 0 } + s.finalObservations)
            }
            #expect(viaChannel == viaStep)
            #expect(viaStep.contains { $0.count > 28 }, "no episode ended: final observations were not compared")

            channel.actions[1] = .nan
            do throws(ServiceError) {
                try channel.call(.step, timeout: .seconds(10))
                Issue.record("a NaN action was taken")
            } catch {
                #expect(error.code == .invalidArgument && error.message.contains("finite"), "\(error)")
            }
            channel.actions[1] = 0
            try channel.call(.step, timeout: .seconds(10))

            var release = Robosim_ReleaseRequest()
            release.lease = lease.lease
            let _: Robosim_Empty = try client.call("/sim/release", release)
            do throws(ServiceError) {
                try channel.call(.step, timeout: .seconds(10))
                Issue.record("stepped after the lease was released")
            } catch {
                #expect(error.code == .failedPrecondition || error.code == .unavailable, "\(error)")
            }
            let deadline = Date().addingTimeInterval(5)
            while server.channels.count > 0, Date() < deadline { usleep(1000) }
            #expect(server.channels.count == 0)
            #expect(channel.load(StepChannel.Header.state) == StepChannel.closed)
        }
    }

    /// ResetRequest.seed_indices: an env seeded with another env's index runs that env's episodes
    /// (the seeds of a vector spread over servers); wrong counts, values of 2^32 and more, and
    /// indices without a seed are refused.
    @Test func seedIndicesStandInForTheEnvIndex() async throws {
        try await Server.withServer(Self.lockstep) { _, client in
            func reset(_ ids: [UInt32], seed: UInt64?, indices: [UInt64]) throws(ServiceError) -> [Double] {
                let r: Robosim_ResetResponse = try client.call("/sim/reset", Robosim_ResetRequest.with {
                    $0.envIds = ids
                    if let seed { $0.seed = seed }
                    $0.seedIndices = indices
                })
                return r.observations
            }
            let plain = try reset([0, 1], seed: 9, indices: [])
            let swapped = try reset([0, 1], seed: 9, indices: [1, 0])
            let o = plain.count / 2
            #expect(Array(swapped[0..<o]) == Array(plain[o...]) && Array(swapped[o...]) == Array(plain[0..<o]))
            #expect(plain[0..<o] != plain[o...], "the two envs start apart")
            // The index stays for the episodes that follow: the same steps give the same runs.
            var a: [Double] = [], b: [Double] = []
            // Env 1 runs env 0's stream since the swap; env 0 now runs it too, from its start. Long
            // enough for episodes to end and restart from the stream.
            var ends = 0
            for _ in 0..<120 {
                let r = try Self.step(client, ids: [1], actions: [0.5])
                a += r.observations
                ends += r.terminated[0] || r.truncated[0] ? 1 : 0
            }
            _ = try reset([0], seed: 9, indices: [0])
            for _ in 0..<120 { b += try Self.step(client, ids: [0], actions: [0.5]).observations }
            #expect(ends >= 2)
            _ = try reset([1], seed: 9, indices: [])
            #expect(a == b)
            let refused: [(indices: [UInt64], seed: UInt64?, text: String)] = [
                ([1], 9, "expected 2 seed_indices"), ([1 << 32, 0], 9, "exceeds 4294967295"), ([0, 1], nil, "seed_indices need a seed"),
            ]
            for (indices, seed, text) in refused {
                do {
                    _ = try reset([0, 1], seed: seed, indices: indices)
                    Issue.record("accepted \(indices) with seed \(String(describing: seed))")
                } catch {
                    let e = error as? ServiceError
                    #expect(e?.code == .invalidArgument && e?.message.contains(text) == true, "\(error)")
                }
            }
        }
    }

    /// ResetRequest.episodes: an env started at episode e of (seed, seed index) begins where an env
    /// that played episodes 0..<e of that run began its e-th; wrong counts, values of 2^32 and more,
    /// and episodes without a seed are refused.
    @Test func episodesStartARunPartWay() async throws {
        try await Server.withServer(Self.lockstep) { _, client in
            func reset(_ ids: [UInt32], seed: UInt64?, indices: [UInt64] = [], episodes: [UInt64]) throws(ServiceError) -> [Double] {
                let r: Robosim_ResetResponse = try client.call("/sim/reset", Robosim_ResetRequest.with {
                    $0.envIds = ids
                    if let seed { $0.seed = seed }
                    $0.seedIndices = indices
                    $0.episodes = episodes
                })
                return r.observations
            }
            // Env 0 plays its run from episode 0; the first observations of its episodes 1 and 2.
            let first = try reset([0], seed: 5, episodes: [])
            var starts: [[Double]] = [first]
            for _ in 0..<2_000 where starts.count < 3 {
                let r = try Self.step(client, ids: [0], actions: [0.5])
                if r.terminated[0] || r.truncated[0] { starts.append(r.observations) }
            }
            try #require(starts.count == 3)
            #expect(starts[1] != starts[2])
            // Env 1, told to be env 0 at episode 2 (and then 1), starts there.
            #expect(try reset([1], seed: 5, indices: [0], episodes: [2]) == starts[2])
            #expect(try reset([1], seed: 5, indices: [0], episodes: [1]) == starts[1])
            #expect(try reset([0, 1], seed: 5, episodes: [0, 0])[0..<first.count] == first[...])
            let refused: [(episodes: [UInt64], seed: UInt64?, text: String)] = [
                ([1], 5, "expected 2 episodes"), ([1 << 32, 0], 5, "exceeds 4294967295"), ([0, 1], nil, "episodes need a seed"),
            ]
            for (episodes, seed, text) in refused {
                do {
                    _ = try reset([0, 1], seed: seed, episodes: episodes)
                    Issue.record("accepted episodes \(episodes) with seed \(String(describing: seed))")
                } catch {
                    let e = error as? ServiceError
                    #expect(e?.code == .invalidArgument && e?.message.contains(text) == true, "\(error)")
                }
            }
        }
    }

    /// /sim/set_reward: a lease's expression replaces the task's reward for its envs only, through
    /// /sim/step and the step channel alike; a bad one is refused with its position and changes
    /// nothing; an empty one restores the task's reward; release forgets it.
    @Test func rewardExpressionsArePerLease() async throws {
        try await Server.withServer(Self.lockstep) { server, client in
            func lease(_ name: String) throws -> String {
                var r = Robosim_LeaseRequest()
                r.count = 2
                r.clientName = name
                let l: Robosim_LeaseResponse = try client.call("/sim/lease", r)
                return l.lease
            }
            func setReward(_ lease: String, _ expression: String) throws -> Robosim_SetRewardResponse {
                var r = Robosim_SetRewardRequest()
                r.lease = lease
                r.expression = expression
                return try client.call("/sim/set_reward", r)
            }
            let (a, b) = (try lease("a"), try lease("b"))
            let used = try setReward(a, "10 * abs(pole_angle) + (terminated ? -100 : 0) + 0 * action.cart_force")
            #expect(used.names == ["terminated", "pole_angle", "action.cart_force"])
            do {
                _ = try setReward(a, "pole_angle + nope")
                Issue.record("accepted an unknown name")
            } catch {
                let e = error as? ServiceError
                #expect(e?.code == .invalidArgument && e?.message.contains("at 14: unknown name 'nope'") == true, "\(error)")
            }
            do {
                _ = try setReward("", "1")
                Issue.record("accepted a reward without a lease")
            } catch {
                #expect((error as? ServiceError)?.code == .invalidArgument)
            }
            /// Isaac Lab's cartpole reward of a step that did not end the episode, from its observation.
            func taskReward(_ o: ArraySlice<Double>) -> Double {
                let o = Array(o)
                return 1 - o[0] * o[0] - 0.01 * abs(o[3]) - 0.005 * abs(o[1])
            }
            var checked = 0, ends = 0
            var rewardsA: [Double] = []
            func statistics(_ lease: String) throws -> Robosim_RewardStatisticsResponse {
                try client.call("/sim/reward_statistics", Robosim_RewardStatisticsRequest.with { $0.lease = lease })
            }
            _ = try statistics(a)  // the steps before do not count
            for _ in 0..<50 {
                let sa = try Self.step(client, lease: a, actions: [0.3, -0.3])
                let sb = try Self.step(client, lease: b, actions: [0.3, -0.3])
                rewardsA += sa.rewards
                for k in 0..<2 {
                    if sa.terminated[k], let f = sa.finalEnvIds.firstIndex(of: UInt32(k)) {  // lease a holds envs 0 and 1
                        // The ending step's reward reads the final state: 10 |angle| - 100.
                        #expect(abs(sa.rewards[k] - (10 * abs(sa.finalObservations[4 * f]) - 100)) < 1e-9)
                        ends += 1
                    }
                    if !sa.terminated[k] && !sa.truncated[k] { #expect(abs(sa.rewards[k] - 10 * abs(sa.observations[4 * k])) < 1e-12) }
                    if !sb.terminated[k] && !sb.truncated[k] {
                        #expect(abs(sb.rewards[k] - taskReward(sb.observations[(4 * k)..<(4 * k + 4)])) < 1e-12)
                        checked += 1
                    }
                }
            }
            #expect(checked > 50 && ends > 0, "checked \(checked), ends \(ends)")
            // /sim/reward_statistics: the lease's rewards as given, over its 100 env-steps, ending steps included.
            let stats = try statistics(a)
            #expect(stats.names == ["alive", "terminated", "pole_pos", "cart_vel", "pole_vel", "reward", "success"], "\(stats.names)")
            #expect(stats.steps == 100)
            let k = stats.names.firstIndex(of: "reward")!
            #expect(abs(stats.mean[k] - rewardsA.reduce(0, +) / 100) < 1e-9 && stats.min[k] == rewardsA.min() && stats.max[k] == rewardsA.max())
            #expect(try statistics(a).steps == 0)  // a new interval
            // The channel uses the lease's expression too.
            var open = Robosim_OpenChannelRequest()
            open.lease = a
            let r: Robosim_OpenChannelResponse = try client.call("/sim/open_channel", open)
            let channel = try StepChannel.attach(path: r.path, layout: .init(envs: 2, observationSize: 4, actionSize: 1), nonce: r.nonce)
            channel.actions[0] = 0
            channel.actions[1] = 0
            try channel.call(.step, timeout: .seconds(10))
            for k in 0..<2 where channel.terminated[k] == 0 { #expect(abs(channel.rewards[k] - 10 * abs(channel.observations[4 * k])) < 1e-12) }
            // Cleared: the task's reward again.
            _ = try setReward(a, "")
            let cleared = try Self.step(client, lease: a, actions: [0, 0])
            for k in 0..<2 where !cleared.terminated[k] && !cleared.truncated[k] {
                #expect(abs(cleared.rewards[k] - taskReward(cleared.observations[(4 * k)..<(4 * k + 4)])) < 1e-12)
            }
            _ = server
        }
    }
}
