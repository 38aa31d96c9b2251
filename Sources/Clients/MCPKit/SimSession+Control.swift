import ClientKit
import Foundation
import MCP
import Messaging

/// The tools that change the simulation: leases, reset, step, end-effector and velocity commands,
/// parameters. Commands go through the server's safety layer; its refusals come back as failures
/// carrying the server's reason.
extension SimSession {
    func leaseEnvs(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        if let held = lease {
            // A lease the server let expire (no call used it for its ttl) is dropped; a live one stays.
            var renew = Robosim_LeaseRequest()
            renew.lease = held.id
            do throws(ToolFailure) {
                let _: Robosim_LeaseResponse = try link.call("/sim/lease", renew)
                throw ToolFailure("this session already leases envs \(held.envs); release_envs first")
            } catch where error.description.contains("NOT_FOUND") {
                setLease(nil)
            }
        }
        var r = Robosim_LeaseRequest()
        r.clientName = clientName
        r.ttlS = try args.double("ttl_s", in: 5...3600, default: 600)
        if let ids = try args.ints("env_ids", count: 1...SimTools.maxEnvs, in: 0...SimTools.maxEnvIndex, unique: true) {
            guard !args.has("count") else { throw ToolFailure("give env_ids or count, not both") }
            r.envIds = ids.map(UInt32.init)
        } else {
            r.count = UInt32(try args.int("count", in: 1...SimTools.maxEnvs, default: 1))
        }
        let reply: Robosim_LeaseResponse = try link.call("/sim/lease", r)
        let envs = reply.envIds.map(Int.init)
        setLease(Lease(id: reply.lease, envs: envs))
        logger.info("leased envs", metadata: ["sim.envs": "\(envs)"])
        return Self.json(["env_ids": envs, "ttl_s": r.ttlS])
    }

    func releaseEnvs() throws(ToolFailure) -> [Tool.Content] {
        guard let held = lease else { return Self.json(["released": [Int]()]) }
        var r = Robosim_ReleaseRequest()
        r.lease = held.id
        setLease(nil)
        do throws(ToolFailure) {
            let _: Robosim_Empty = try link.call("/sim/release", r)
        } catch where error.description.contains("NOT_FOUND") || error.description.contains("FAILED_PRECONDITION") {
            // Expired already: released all the same.
        }
        return Self.json(["released": held.envs])
    }

    /// The envs a call names, or this session's leased envs; each checked against the server.
    func envIDs(_ args: ToolArguments, _ d: Robosim_DescribeResponse) throws(ToolFailure) -> [Int] {
        if let ids = try args.ints("env_ids", count: 1...SimTools.maxEnvs, in: 0...SimTools.maxEnvIndex, unique: true) {
            for i in ids { _ = try checkedEnv(i, d) }
            return ids
        }
        guard let lease else { throw ToolFailure("name env_ids, or lease_envs first") }
        return lease.envs
    }

    func resetEnvs(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        let d = try link.describe()
        let ids = try envIDs(args, d)
        var r = Robosim_ResetRequest()
        r.lease = try leaseID(for: ids)
        try watchState(of: ids)
        r.envIds = ids.map(UInt32.init)
        if args.has("seed") { r.seed = UInt64(try args.int("seed", in: 0...(1 << 53))) }
        let reply: Robosim_ResetResponse = try link.call("/sim/reset", r, timeout: max(link.timeout, 10))
        let names = d.observationNames
        return Self.json([
            "envs": ids.enumerated().map { k, env in
                ["env": env, "observation": Self.named(reply.observations, row: k, names: names)] as [String: Any]
            }
        ])
    }

    func stepEnvs(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        let d = try link.describe()
        guard d.mode == "lockstep" else {
            throw ToolFailure("the server runs in \(d.mode) mode: step_envs needs a lockstep server (sim-server --mode lockstep)")
        }
        let ids = try envIDs(args, d)
        let lease = try requireLease(for: ids)
        let size = Int(d.actionSize)
        guard let actions = try args.matrix("actions", outer: ids.count...ids.count, inner: size...size, in: -1e6...1e6) else {
            throw ToolFailure(
                "missing argument 'actions': \(ids.count) lists of \(size) numbers (\(d.actionNames.joined(separator: ", ")))")
        }
        let steps = try args.int("steps", in: 1...SimTools.maxSteps, default: 1)
        try watchState(of: ids)
        var r = Robosim_StepRequest()
        r.lease = lease
        r.envIds = ids.map(UInt32.init)
        r.actions = actions.flatMap { $0 }
        var rewards = [Double](repeating: 0, count: ids.count)
        var episodesEnded = [Int](repeating: 0, count: ids.count)
        var succeeded = [Bool](repeating: false, count: ids.count)
        var last = Robosim_StepResponse()
        for _ in 0..<steps {
            last = try link.call("/sim/step", r)
            for k in ids.indices {
                if k < last.rewards.count { rewards[k] += last.rewards[k] }
                if (k < last.terminated.count && last.terminated[k]) || (k < last.truncated.count && last.truncated[k]) {
                    episodesEnded[k] += 1
                }
                if k < last.success.count && last.success[k] { succeeded[k] = true }
            }
        }
        let names = d.observationNames
        return Self.json([
            "steps": steps, "sim_seconds": Double(steps) * d.physicsDt * Double(max(1, d.decimation)),
            "envs": ids.enumerated().map { k, env in
                [
                    "env": env, "observation": Self.named(last.observations, row: k, names: names), "reward": rewards[k],
                    "terminated": k < last.terminated.count && last.terminated[k],
                    "truncated": k < last.truncated.count && last.truncated[k],
                    "success": succeeded[k], "episodes_ended": episodesEnded[k],
                ] as [String: Any]
            },
        ])
    }

    /// Row `k` of env-major `values` as name: value.
    static func named(_ values: [Double], row k: Int, names: [String]) -> [String: Double] {
        let n = names.count
        guard n > 0, values.count >= (k + 1) * n else { return [:] }
        var out: [String: Double] = [:]
        for j in 0..<n { out[names[j]] = values[k * n + j] }
        return out
    }

    /// Starts watching the tool pose and objects of (at most the first 16 of) `envs`, so that what a
    /// reset or step publishes is at hand for move_end_effector and propose_tbar_strategy.
    func watchState(of envs: [Int]) throws(ToolFailure) {
        let node = try link.node()
        var started = false
        for env in envs.prefix(16) {
            started = try link.latest.watch("\(Names.env(env))/robot/pose", typeName: "geometry_msgs/msg/PoseStamped", on: node) || started
            started = try link.latest.watch("\(Names.env(env))/objects", typeName: "robosim/msg/ObjectArray", on: node) || started
        }
        // A new ZeroMQ subscription takes a moment to reach the server; what goes out before is missed.
        if started { Thread.sleep(forTimeInterval: 0.2) }
    }

    // MARK: Commands

    /// What the safety layer counted for `topic` so far: (rejected, last reason).
    func rejections(_ topic: String) throws(ToolFailure) -> (count: UInt64, reason: String) {
        let d = try link.describe()
        let s = d.commands.first { $0.topic == topic }
        return (s?.rejected ?? 0, s?.lastRejection ?? "")
    }

    /// Fails unless a node of the server's graph subscribes to command `topic` (a robot without a
    /// base takes no `cmd_vel`, and a message nobody reads would vanish without a refusal).
    func requireSubscriber(_ topic: String, env: Int, what: String) throws(ToolFailure) {
        let g: Robosim_GraphListResponse = try link.call("/graph/list", Robosim_GraphListRequest())
        let own = link.nodeName
        let readers = g.nodes.filter { $0.name != own && $0.subscriptions.contains { $0.topic == topic } }
        guard readers.isEmpty else { return }
        let prefix = Names.env(env) + "/"
        let taken = Set(g.nodes.filter { $0.name != own }.flatMap { $0.subscriptions.map(\.topic) }.filter { $0.hasPrefix(prefix) })
            .sorted()
        throw ToolFailure(
            "nothing on the server takes \(what) on \(topic) (the env's command topics: \(taken.isEmpty ? "none" : taken.joined(separator: ", ")))"
        )
    }

    /// The tool tip's position from a `geometry_msgs/PoseStamped` payload.
    static func position(_ raw: RawMessage?) -> SIMD3<Double>? {
        guard let raw, let m = try? GeometryMsgs_PoseStamped(serializedBytes: raw.payload) else { return nil }
        return SIMD3(m.pose.position.x, m.pose.position.y, m.pose.position.z)
    }

    func moveEndEffector(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        let d = try link.describe()
        let env = try checkedEnv(try args.int("env", in: 0...SimTools.maxEnvIndex, default: 0), d)
        guard let t = try args.doubles("target", count: 3...3, in: -SimTools.maxCoordinate...SimTools.maxCoordinate) else {
            throw ToolFailure("missing argument 'target': [x, y, z] in metres, world frame")
        }
        let target = SIMD3(t[0], t[1], t[2])
        let tolerance = try args.double("tolerance_m", in: 0.002...0.1, default: 0.01)
        let maxSteps = try args.int("max_steps", in: 1...3000, default: 500)
        let timeout = try args.double("timeout_s", in: 0.5...60, default: 15)
        let commandTopic = "\(Names.env(env))/ee_target"
        let poseTopic = "\(Names.env(env))/robot/pose"
        let node = try link.node()
        try watchState(of: [env])
        let before = try rejections(commandTopic)
        let started = Date()
        var steps = 0
        var pose: SIMD3<Double>?
        var episodeEnded = false

        /// The server's refusal since the command was sent, if any.
        func refusal() throws(ToolFailure) -> String? {
            let now = try rejections(commandTopic)
            return now.count > before.count ? now.reason : nil
        }
        func arrived() -> Bool { pose.map { length($0 - target) <= tolerance } ?? false }

        if d.mode == "lockstep" {
            var r = Robosim_StepRequest()
            r.lease = try requireLease(for: [env])
            r.envIds = [UInt32(env)]
            r.eeTargets = t
            while steps < maxSteps {
                let seen = link.latest.latest(poseTopic).count
                let reply: Robosim_StepResponse = try link.call("/sim/step", r)
                steps += 1
                if reply.terminated.first == true || reply.truncated.first == true { episodeEnded = true }
                if steps == 1 || steps % 10 == 0, let why = try refusal() {
                    throw ToolFailure("the server refused the target \(Self.text(target)) for env \(env): \(why)")
                }
                // The pose goes out at its topic rate: wait briefly for one after a step that published it.
                pose = Self.position(link.latest.wait(poseTopic, after: seen, seconds: 0.005)) ?? pose
                if arrived() { break }
            }
        } else {
            try requireSubscriber(commandTopic, env: env, what: "end-effector targets")
            var m = GeometryMsgs_PoseStamped()
            m.header.frameID = "world"
            (m.pose.position.x, m.pose.position.y, m.pose.position.z) = (target.x, target.y, target.z)  // all-zero orientation: tool down
            let publisher: Publisher<GeometryMsgs_PoseStamped>
            do { publisher = try node.advertise(commandTopic, qos: .standard) } catch { throw ToolFailure("\(error)") }
            Thread.sleep(forTimeInterval: 0.2)  // let the new publisher's connection settle before its first message
            var lastSent = Date.distantPast
            while Date().timeIntervalSince(started) < timeout {
                // Resend within the command timeout (tbar_push: 0.5 s), so a long move is not cut off.
                if Date().timeIntervalSince(lastSent) >= 0.2 {
                    publisher.publish(m)
                    lastSent = Date()
                    steps += 1
                }
                Thread.sleep(forTimeInterval: 0.05)
                if let why = try refusal() {
                    throw ToolFailure("the server refused the target \(Self.text(target)) for env \(env): \(why)")
                }
                pose = Self.position(link.latest.latest(poseTopic).message) ?? pose
                if arrived() { break }
            }
        }
        let distance = pose.map { length($0 - target) }
        var out: [String: Any] = [
            "env": env, "target": t, "tolerance_m": tolerance, "arrived": arrived(), "mode": d.mode,
            "tool_position": pose.map { [$0.x, $0.y, $0.z] as Any } ?? NSNull(), "distance_m": distance as Any? ?? NSNull(),
            (d.mode == "lockstep" ? "steps" : "commands_sent"): steps, "seconds": Date().timeIntervalSince(started),
        ]
        if episodeEnded { out["note"] = "the env's episode ended during the move and restarted" }
        guard arrived() else {
            let at =
                pose.map { "the tool is at \(Self.text($0)), \(String(format: "%.3f", length($0 - target))) m away" }
                ?? "no pose on \(poseTopic)"
            throw ToolFailure(
                "env \(env) did not reach \(Self.text(target)) within \(d.mode == "lockstep" ? "\(maxSteps) steps" : "\(timeout) s"): \(at)\n"
                    + JSONText.render(out))
        }
        return Self.json(out)
    }

    func sendVelocity(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        let d = try link.describe()
        let env = try checkedEnv(try args.int("env", in: 0...SimTools.maxEnvIndex, default: 0), d)
        let linear = try args.doubles("linear", count: 3...3, in: -100...100) ?? [0, 0, 0]
        let angular = try args.doubles("angular", count: 3...3, in: -100...100) ?? [0, 0, 0]
        let duration = try args.double("duration_s", in: 0.05...10, default: 1)
        let topic = "\(Names.env(env))/cmd_vel"
        try requireSubscriber(topic, env: env, what: "velocity commands")
        let node = try link.node()
        let publisher: Publisher<GeometryMsgs_Twist>
        do { publisher = try node.advertise(topic, qos: .standard) } catch { throw ToolFailure("\(error)") }
        let before = try rejections(topic)
        var m = GeometryMsgs_Twist()
        (m.linear.x, m.linear.y, m.linear.z) = (linear[0], linear[1], linear[2])
        (m.angular.x, m.angular.y, m.angular.z) = (angular[0], angular[1], angular[2])
        Thread.sleep(forTimeInterval: 0.2)  // let the new publisher's connection settle before its first message
        let started = Date()
        var sent = 0
        while Date().timeIntervalSince(started) < duration {
            publisher.publish(m)
            sent += 1
            Thread.sleep(forTimeInterval: min(0.1, max(0.01, duration - Date().timeIntervalSince(started))))
            let now = try rejections(topic)
            if now.count > before.count { throw ToolFailure("the server refused the velocity command for env \(env): \(now.reason)") }
        }
        publisher.publish(GeometryMsgs_Twist())  // stop
        Thread.sleep(forTimeInterval: 0.1)
        let after = try rejections(topic)
        if after.count > before.count { throw ToolFailure("the server refused the velocity command for env \(env): \(after.reason)") }
        return Self.json([
            "env": env, "topic": topic, "linear": linear, "angular": angular, "duration_s": duration, "messages_sent": sent + 1,
        ])
    }

    func setParameters(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        guard let given = try args.object("parameters", count: 1...SimTools.maxParameters) else {
            throw ToolFailure("missing argument 'parameters': {NAME: VALUE, ...}")
        }
        var r = Robosim_SetParametersRequest()
        for (name, value) in given.sorted(by: { $0.key < $1.key }) {
            guard name.utf8.count <= ToolArguments.maxStringBytes else {
                throw ToolFailure("a parameter name is over \(ToolArguments.maxStringBytes) bytes")
            }
            var p = Robosim_Parameter()
            p.name = name
            p.value = try Self.parameterText(value, name: name)
            r.parameters.append(p)
        }
        let reply: Robosim_SetParametersResponse = try link.call("/sim/set_parameters", r, timeout: max(link.timeout, 10))
        return Self.json(["parameters": reply.parameters.map { ["name": $0.name, "value": $0.value] }])
    }

    /// A parameter value as the server's text: strings as they are, numbers, booleans, [low, high].
    static func parameterText(_ value: Value, name: String) throws(ToolFailure) -> String {
        switch value {
        case .string(let s):
            guard s.utf8.count <= ToolArguments.maxStringBytes else {
                throw ToolFailure("'\(Names.quoted(name))': the value is over \(ToolArguments.maxStringBytes) bytes")
            }
            return s
        case .bool(let b): return b ? "true" : "false"
        case .int, .double: return "\(try ToolArguments.number(value, name: name, in: -1e15...1e15))"
        case .array(let items) where items.count == 2:
            let low = try ToolArguments.number(items[0], name: "\(name)[0]", in: -1e15...1e15)
            let high = try ToolArguments.number(items[1], name: "\(name)[1]", in: -1e15...1e15)
            return "[\(low), \(high)]"
        default: throw ToolFailure("'\(Names.quoted(name))' must be text, a number, true/false or [low, high]")
        }
    }

    static func text(_ p: SIMD3<Double>) -> String { String(format: "(%.3f, %.3f, %.3f)", p.x, p.y, p.z) }
}

func length(_ v: SIMD3<Double>) -> Double { (v * v).sum().squareRoot() }
