import Foundation
import Messaging

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
            guard r.ttlS.isFinite, r.ttlS >= 0 else { throw .invalidArgument("ttl_s must be a finite number >= 0") }
            let lease: LeaseTable.Lease
            if !r.lease.isEmpty {
                // Renewal: keeps a lease alive without stepping (a trainer that pauses longer than ttl_s).
                guard r.envIds.isEmpty, r.count == 0 else {
                    throw .invalidArgument("give either lease (to renew it) or env_ids/count (to take a new lease), not both")
                }
                lease = try leases.renew(r.lease, ttl: r.ttlS)
            } else {
                let ids = try Self.checkedIDs(r.envIds, envCount: envCount)
                lease = try leases.acquire(ids: ids, count: Int(r.count), client: r.clientName.isEmpty ? "anonymous" : r.clientName, ttl: r.ttlS)
            }
            var out = Robosim_LeaseResponse()
            out.lease = lease.id
            out.envIds = lease.envs.sorted().map(UInt32.init)
            return out
        }
        try hub.serve("/sim/release", type: ServiceType("robosim/srv/Release", request: Robosim_ReleaseRequest.self, response: Robosim_Empty.self)) {
            [leases] (r: Robosim_ReleaseRequest) throws(ServiceError) in
            try leases.release(r.lease)
            return Robosim_Empty()
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
                guard r.actions.count == ids.count * size else {
                    throw .invalidArgument("expected \(ids.count * size) actions (\(ids.count) envs x \(size)), got \(r.actions.count)")
                }
                if let bad = r.actions.firstIndex(where: { !$0.isFinite }) {
                    throw .invalidArgument("action \(bad % size) of env \(ids[bad / size]) is \(r.actions[bad]); actions must be finite")
                }
                try self.stepLoop().enqueue(.step(ids: ids, actions: r.actions, responder: responder))
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
                try self.stepLoop().enqueue(.reset(ids: ids, seed: r.hasSeed ? r.seed : nil, responder: responder))
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
            let all = self.parameters()
            var out = Robosim_GetParametersResponse()
            if r.names.isEmpty { out.parameters = all; return out }
            for name in r.names {
                guard let p = all.first(where: { $0.name == name }) else { throw .notFound("no parameter '\(name)'") }
                out.parameters.append(p)
            }
            return out
        }
        try hub.serve("/sim/set_parameters", type: ServiceType("robosim/srv/SetParameters", request: Robosim_SetParametersRequest.self, response: Robosim_SetParametersResponse.self)) {
            [weak self] (r: Robosim_SetParametersRequest) throws(ServiceError) in
            guard let self else { throw .unavailable("shutting down") }
            let loop = try self.stepLoop()
            // Check every parameter before changing any.
            var changes: [() -> Void] = []
            for p in r.parameters {
                switch p.name {
                case "real_time_factor":
                    guard let v = Double(p.value), v >= 0, v.isFinite else { throw .invalidArgument("real_time_factor must be a number >= 0, got '\(p.value)'") }
                    changes.append { loop.realTimeFactor = v }
                case "paused":
                    guard let v = Bool(p.value) else { throw .invalidArgument("paused must be true or false, got '\(p.value)'") }
                    changes.append { loop.paused.store(v, ordering: .relaxed) }
                default:
                    if self.parameters().contains(where: { $0.name == p.name }) { throw .invalidArgument("parameter '\(p.name)' is read-only") }
                    throw .notFound("no parameter '\(p.name)'")
                }
            }
            for change in changes { change() }
            var out = Robosim_SetParametersResponse()
            out.parameters = self.parameters().filter { p in r.parameters.contains { $0.name == p.name } }
            return out
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

    /// Every parameter with its current value.
    func parameters() -> [Robosim_Parameter] {
        func p(_ name: String, _ value: String, _ description: String) -> Robosim_Parameter {
            var x = Robosim_Parameter()
            x.name = name
            x.value = value
            x.description_p = description
            return x
        }
        let loop = loopIfRunning()
        var out = [
            p("real_time_factor", "\(loop?.realTimeFactor ?? configuration.realTimeFactor)", "realtime mode: sim seconds per wall second (0: as fast as possible)"),
            p("paused", "\(loop?.paused.load(ordering: .relaxed) ?? false)", "realtime mode: physics stopped"),
            p("mode", configuration.mode.rawValue, "realtime or lockstep (read-only)"),
            p("env_count", "\(envCount)", "read-only"),
            p("threads", "\(world.threads)", "worker threads (read-only)"),
            p("physics_dt", "\(world.configuration.physicsDt)", "seconds (read-only)"),
            p("decimation", "\(world.configuration.decimation)", "physics steps per control step (read-only)"),
            p("episode_length_s", "\(world.configuration.episodeLength)", "read-only"),
            p("seed", "\(configuration.seed)", "base seed (read-only)"),
        ]
        for (name, r) in world.configuration.resetRanges.sorted(by: { $0.key < $1.key }) {
            out.append(p("reset.\(name)", "[\(r.lowerBound), \(r.upperBound)]", "reset randomization range (read-only)"))
        }
        return out
    }
}
