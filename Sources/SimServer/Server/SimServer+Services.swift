import Foundation
import Messaging
import RewardLanguage
import SimEngine

/// The `/sim/*` services. Handlers run on the hub thread: they validate against immutable facts
/// (env count, action size) and the lease table, then queue work for the step loop, which answers.
extension SimServer {
    func registerServices() throws {
        try hub.serve("/sim/describe", type: .describe) { [weak self] (_: Robosim_DescribeRequest) throws(ServiceError) in
            guard let self else { throw .unavailable("shutting down") }
            return self.describe()
        }
        try hub.serve("/sim/lease", type: ServiceType("robosim/srv/Lease", request: Robosim_LeaseRequest.self, response: Robosim_LeaseResponse.self)) {
            [leases, envCount] (r: Robosim_LeaseRequest) throws(ServiceError) in
            try WireLimits.checkTTL(r.ttlS)
            try WireLimits.checkClientName(r.clientName)
            let lease: LeaseTable.Lease
            if !r.lease.isEmpty {
                // Renewal: keeps a lease alive without stepping (a trainer that pauses longer than ttl_s).
                guard r.envIds.isEmpty, r.count == 0 else {
                    throw .invalidArgument("give either lease (to renew it) or env_ids/count (to take a new lease), not both")
                }
                lease = try leases.renew(r.lease, ttl: r.ttlS)
            } else {
                let ids = try Self.checkedIDs(r.envIds, envCount: envCount)
                guard Int(r.count) <= envCount else {
                    throw ServiceError(.resourceExhausted, "count \(r.count) exceeds the server's \(envCount) envs")
                }
                lease = try leases.acquire(ids: ids, count: Int(r.count), client: r.clientName.isEmpty ? "anonymous" : r.clientName, ttl: r.ttlS)
            }
            var out = Robosim_LeaseResponse()
            out.lease = lease.id
            out.envIds = lease.envs.sorted().map(UInt32.init)
            return out
        }
        try hub.serve("/sim/release", type: ServiceType("robosim/srv/Release", request: Robosim_ReleaseRequest.self, response: Robosim_Empty.self)) {
            [leases, rewards] (r: Robosim_ReleaseRequest) throws(ServiceError) in
            try leases.release(r.lease)
            rewards.remove(r.lease)
            return Robosim_Empty()
        }
        try hub.serve("/sim/set_reward", type: ServiceType("robosim/srv/SetReward", request: Robosim_SetRewardRequest.self,
                                                           response: Robosim_SetRewardResponse.self)) {
            [leases, rewards, world] (r: Robosim_SetRewardRequest) throws(ServiceError) in
            guard !r.lease.isEmpty else { throw .invalidArgument("a reward expression belongs to a lease: give one (/sim/lease)") }
            _ = try leases.authorize(lease: r.lease, ids: [])
            var out = Robosim_SetRewardResponse()
            guard !r.expression.isEmpty else {
                rewards.set(nil, for: r.lease, leases: leases)
                return out
            }
            do {
                let expression = try RewardExpression(r.expression, variables: world.rewardVariables)
                rewards.set(expression, for: r.lease, leases: leases)
                out.names = expression.used.map { world.rewardVariables[$0] }
                return out
            } catch {
                throw .invalidArgument("reward expression \(error)")
            }
        }
        try hub.serve("/sim/reward_statistics", type: ServiceType("robosim/srv/RewardStatistics", request: Robosim_RewardStatisticsRequest.self,
                                                                  response: Robosim_RewardStatisticsResponse.self)) {
            [leases, rewards, world] (r: Robosim_RewardStatisticsRequest) throws(ServiceError) in
            guard !r.lease.isEmpty else { throw .invalidArgument("reward statistics belong to a lease: give one (/sim/lease)") }
            _ = try leases.authorize(lease: r.lease, ids: [])
            let names = world.rewardTermNames + ["reward", "success"]
            let s = rewards.reward(for: r.lease, leases: leases)?.takeStatistics() ?? RewardStatistics(count: names.count)
            var out = Robosim_RewardStatisticsResponse()
            out.names = names
            out.steps = UInt64(s.steps)
            out.mean = s.mean
            out.min = s.steps > 0 ? s.min : s.min.map { _ in 0 }
            out.max = s.steps > 0 ? s.max : s.max.map { _ in 0 }
            return out
        }
        try hub.serve("/sim/step", type: ServiceType("robosim/srv/Step", request: Robosim_StepRequest.self, response: Robosim_StepResponse.self)) {
            [weak self] request, responder in
            guard let self else { return responder.fail(.unavailable("shutting down")) }
            do throws(ServiceError) {
                let r = try request.decode(Robosim_StepRequest.self)
                guard self.configuration.mode == .lockstep else {
                    throw .failedPrecondition("/sim/step needs --mode lockstep (the server runs in \(self.configuration.mode.rawValue) mode)")
                }
                let ids = try self.leases.authorize(lease: r.lease, ids: try Self.checkedIDs(r.envIds, envCount: self.envCount))
                let size = self.world.actionSize
                var eeTargets: [Double]?
                if !r.eeTargets.isEmpty {
                    guard r.actions.isEmpty else { throw .invalidArgument("give actions or ee_targets, not both") }
                    guard self.world.robot?.spec.endEffectorSite != nil else {
                        throw .failedPrecondition("ee_targets: the robot '\(self.scene.manifest.robot)' has no end effector")
                    }
                    guard r.eeTargets.count == ids.count * 3 else {
                        throw .invalidArgument("expected \(ids.count * 3) ee_targets (\(ids.count) envs x 3), got \(r.eeTargets.count)")
                    }
                    if let bad = r.eeTargets.firstIndex(where: { !$0.isFinite }) {
                        throw .invalidArgument("ee_target of env \(ids[bad / 3]) is not finite; targets must be finite")
                    }
                    eeTargets = r.eeTargets
                } else {
                    guard r.actions.count == ids.count * size else {
                        throw .invalidArgument("expected \(ids.count * size) actions (\(ids.count) envs x \(size)), got \(r.actions.count)")
                    }
                    // The action contract, per env (the world clips finite values to the bounds).
                    for (k, id) in ids.enumerated() {
                        if let why = self.world.actions.violation(r.actions[(k * size)..<((k + 1) * size)]) {
                            throw .invalidArgument("env \(id): \(why)")
                        }
                    }
                }
                let autoreset: Autoreset
                switch r.autoreset {
                case .sameStep: autoreset = .sameStep
                case .nextStep: autoreset = .nextStep
                case .UNRECOGNIZED(let v): throw .invalidArgument("autoreset \(v): expected 0 (AUTORESET_SAME_STEP) or 1 (AUTORESET_NEXT_STEP)")
                }
                let cameras = r.render ? try self.renderedCameras(r.cameras) : nil
                // Auto-reset envs add their final images: up to twice the envs.
                if let cameras { try WireLimits.checkImageBytes(renders: 2 * ids.count, cameras: cameras.map { self.cameraSpecs[$0] }) }
                try self.stepLoop().enqueue(.step(ids: ids, actions: eeTargets == nil ? r.actions : [Double](repeating: 0, count: ids.count * size),
                                                  eeTargets: eeTargets, render: cameras, autoreset: autoreset,
                                                  reward: self.rewards.reward(for: r.lease, leases: self.leases), responder: responder))
            } catch {
                responder.fail(error)
            }
        }
        try hub.serve("/sim/reset", type: ServiceType("robosim/srv/Reset", request: Robosim_ResetRequest.self, response: Robosim_ResetResponse.self)) {
            [weak self] request, responder in
            guard let self else { return responder.fail(.unavailable("shutting down")) }
            do throws(ServiceError) {
                let r = try request.decode(Robosim_ResetRequest.self)
                let ids = try self.leases.authorize(lease: r.lease, ids: try Self.checkedIDs(r.envIds, envCount: self.envCount))
                let cameras = r.render ? try self.renderedCameras(r.cameras) : nil
                if let cameras { try WireLimits.checkImageBytes(renders: ids.count, cameras: cameras.map { self.cameraSpecs[$0] }) }
                let seedIndices = try WireLimits.seedIndices(r.seedIndices, envs: ids.count, seeded: r.hasSeed)
                let episodes = try WireLimits.episodes(r.episodes, envs: ids.count, seeded: r.hasSeed)
                try self.stepLoop().enqueue(.reset(ids: ids, seed: r.hasSeed ? r.seed : nil, seedIndices: seedIndices, episodes: episodes, render: cameras,
                                                   responder: responder))
            } catch {
                responder.fail(error)
            }
        }
        try hub.serve("/sim/open_channel", type: ServiceType("robosim/srv/OpenChannel", request: Robosim_OpenChannelRequest.self,
                                                             response: Robosim_OpenChannelResponse.self)) {
            [weak self] (r: Robosim_OpenChannelRequest) throws(ServiceError) in
            guard let self else { throw .unavailable("shutting down") }
            guard self.configuration.mode == .lockstep else {
                throw .failedPrecondition("/sim/open_channel needs --mode lockstep (the server runs in \(self.configuration.mode.rawValue) mode)")
            }
            guard !r.lease.isEmpty else { throw .invalidArgument("a step channel belongs to a lease: give one (/sim/lease)") }
            let ids = try self.leases.authorize(lease: r.lease, ids: [])
            return try self.channels.open(lease: r.lease, ids: ids, loop: try self.stepLoop(), leases: self.leases, rewards: self.rewards,
                                          world: self.world)
        }
        try hub.serve("/sim/render", type: ServiceType("robosim/srv/Render", request: Robosim_RenderRequest.self, response: Robosim_RenderResponse.self)) {
            [weak self] request, responder in
            guard let self else { return responder.fail(.unavailable("shutting down")) }
            do throws(ServiceError) {
                let r = try request.decode(Robosim_RenderRequest.self)
                let ids = try self.leases.authorize(lease: r.lease, ids: try Self.checkedIDs(r.envIds, envCount: self.envCount))
                let cameras = try self.renderedCameras(r.cameras)
                try WireLimits.checkImageBytes(renders: ids.count, cameras: cameras.map { self.cameraSpecs[$0] })
                try self.stepLoop().enqueue(.render(ids: ids, cameras: cameras, responder: responder))
            } catch {
                responder.fail(error)
            }
        }
        try hub.serve("/sim/pause", type: ServiceType("robosim/srv/Pause", request: Robosim_Empty.self, response: Robosim_Empty.self)) {
            [weak self] (_: Robosim_Empty) throws(ServiceError) in
            try self?.stepLoop().paused.store(true, ordering: .relaxed)
            return Robosim_Empty()
        }
        try hub.serve("/sim/resume", type: ServiceType("robosim/srv/Resume", request: Robosim_Empty.self, response: Robosim_Empty.self)) {
            [weak self] (_: Robosim_Empty) throws(ServiceError) in
            try self?.stepLoop().paused.store(false, ordering: .relaxed)
            return Robosim_Empty()
        }
        try hub.serve("/sim/get_parameters", type: ServiceType("robosim/srv/GetParameters", request: Robosim_GetParametersRequest.self, response: Robosim_GetParametersResponse.self)) {
            [weak self] (r: Robosim_GetParametersRequest) throws(ServiceError) in
            guard let self else { throw .unavailable("shutting down") }
            guard r.names.count <= WireLimits.maxParameters else {
                throw .invalidArgument("\(r.names.count) names; the limit is \(WireLimits.maxParameters) per call")
            }
            let all = self.parameters()
            var out = Robosim_GetParametersResponse()
            if r.names.isEmpty { out.parameters = all; return out }
            for name in r.names {
                guard let p = all.first(where: { $0.name == name }) else { throw .notFound("no parameter '\(Names.quoted(name))'") }
                out.parameters.append(p)
            }
            return out
        }
        try hub.serve("/sim/set_parameters", type: ServiceType("robosim/srv/SetParameters", request: Robosim_SetParametersRequest.self, response: Robosim_SetParametersResponse.self)) {
            [weak self] request, responder in
            guard let self else { return responder.fail(.unavailable("shutting down")) }
            do throws(ServiceError) {
                let r = try request.decode(Robosim_SetParametersRequest.self)
                // Every parameter is checked before any changes; the step loop applies them together
                // between two control steps and answers with their new values.
                let changes = try self.parameterChanges(r.parameters)
                let names = Set(r.parameters.map(\.name))
                try self.stepLoop().enqueue(.setParameters(changes, responder: responder) { [weak self] in
                    var out = Robosim_SetParametersResponse()
                    out.parameters = self?.parameters().filter { names.contains($0.name) } ?? []
                    return out
                })
            } catch {
                responder.fail(error)
            }
        }
    }

    /// The cameras a `render` request draws (indices into `cameraSpecs`): the named ones, else the
    /// observation cameras. Needs a renderer.
    func renderedCameras(_ names: [String]) throws(ServiceError) -> [Int] {
        guard renderBackend != .none else {
            throw .failedPrecondition("render: rendering is off (sim-server --render-backend none, or no renderer could start: \(renderDescription))")
        }
        guard !names.isEmpty else {
            let observation = cameraSpecs.indices.filter { cameraSpecs[$0].observation }
            guard !observation.isEmpty else {
                throw .failedPrecondition("render: the scene \(scene.manifest.name) has no observation camera (a camera with \"observation\": true in scene.json); name cameras to render them")
            }
            return observation
        }
        guard names.count <= cameraSpecs.count else {
            throw .invalidArgument("render: \(names.count) cameras named; the scene has \(cameraSpecs.count)")
        }
        var seen = Set<Int>()
        return try names.map { name throws(ServiceError) in
            guard let k = cameraSpecs.firstIndex(where: { $0.name == name }) else {
                throw .notFound("render: no camera '\(Names.quoted(name))' (the scene has: \(cameraSpecs.map(\.name).joined(separator: ", ")))")
            }
            guard seen.insert(k).inserted else { throw .invalidArgument("render: camera '\(name)' named twice") }
            return k
        }
    }

    func stepLoop() throws(ServiceError) -> StepLoop {
        guard let l = loopIfRunning() else { throw .unavailable("the server is starting") }
        return l
    }

    /// Env ids from a request: each in range, no duplicates. Empty stays empty (the caller picks).
    static func checkedIDs(_ raw: [UInt32], envCount: Int) throws(ServiceError) -> [Int] {
        var seen = Set<Int>()
        for id in raw {
            guard Int(id) < envCount else { throw .invalidArgument("env id \(id) out of range (the server has \(envCount) envs)") }
            guard seen.insert(Int(id)).inserted else { throw .invalidArgument("env id \(id) given twice") }
        }
        return raw.map(Int.init)
    }
}
