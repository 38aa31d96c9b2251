import Foundation
import Logging
import MCP
import Messaging
import Synchronization

/// One MCP session's view of the simulator: the shared `SimLink`, and the lease this session holds
/// (at most one). Tool calls may run concurrently; the lease state is behind a lock. `close()`
/// releases the lease when the session ends.
public final class SimSession: Sendable {
    public let link: SimLink
    /// The lease's client name on the server (`sim-mcp/<session>`).
    let clientName: String
    let logger: Logger

    struct Lease: Sendable {
        var id: String
        var envs: [Int]
    }
    private let held = Mutex<Lease?>(nil)

    public init(link: SimLink, id: String, logger: Logger) {
        self.link = link
        clientName = "sim-mcp/" + String(id.prefix(64))
        self.logger = logger
    }

    /// This session's lease, if any.
    var lease: Lease? { held.withLock { $0 } }

    func setLease(_ lease: Lease?) { held.withLock { $0 = lease } }

    /// Runs tool `name`. Bad input, refusals and timeouts come back as results with `isError: true`;
    /// an unknown tool is a protocol error (`invalidParams`), as the MCP spec asks.
    public func call(_ name: String, _ arguments: [String: Value]?) async throws -> CallTool.Result {
        guard SimTools.names.contains(name) else { throw MCPError.invalidParams("unknown tool '\(Names.quoted(name))'") }
        let started = Date()
        do throws(ToolFailure) {
            let args = try ToolArguments(arguments, allowed: SimTools.argumentNames(of: name))
            let content = try await run(name, args)
            logger.debug("tool call", metadata: ["mcp.tool": "\(name)", "mcp.seconds": "\(Date().timeIntervalSince(started))"])
            return CallTool.Result(content: content, isError: false)
        } catch {
            logger.info("tool error", metadata: ["mcp.tool": "\(name)", "mcp.error": "\(error.description)"])
            return CallTool.Result(content: [.text(text: error.description, annotations: nil, _meta: nil)], isError: true)
        }
    }

    private func run(_ name: String, _ args: ToolArguments) async throws(ToolFailure) -> [Tool.Content] {
        try await offload { () throws(ToolFailure) -> [Tool.Content] in try self.dispatch(name, args) }
    }

    /// Runs a tool on the calling thread (blocking on the server).
    private func dispatch(_ name: String, _ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        switch name {
        case "describe_server": return try describeServer()
        case "list_graph": return try listGraph(args)
        case "read_topic": return try readTopic(args)
        case "get_camera_frame": return try cameraFrame(args)
        case "lease_envs": return try leaseEnvs(args)
        case "release_envs": return try releaseEnvs()
        case "reset_envs": return try resetEnvs(args)
        case "step_envs": return try stepEnvs(args)
        case "move_end_effector": return try moveEndEffector(args)
        case "send_velocity": return try sendVelocity(args)
        case "propose_tbar_strategy": return try proposeStrategy(args)
        case "get_parameters": return try getParameters(args)
        case "set_parameters": return try setParameters(args)
        default: throw ToolFailure("unknown tool '\(Names.quoted(name))'")
        }
    }

    /// Ends the session: releases its lease (best effort; the server's TTL ends it otherwise). Blocks.
    public func close() {
        guard
            let lease = held.withLock({ l -> Lease? in
                defer { l = nil }; return l
            })
        else { return }
        var r = Robosim_ReleaseRequest()
        r.lease = lease.id
        do {
            let _: Robosim_Empty = try link.call("/sim/release", r, timeout: 2)
            logger.info("released the lease", metadata: ["sim.envs": "\(lease.envs)"])
        } catch {
            logger.warning("could not release the lease", metadata: ["sim.error": "\(error)"])
        }
    }

    // MARK: Shared checks

    /// `env` checked against the server's env count.
    func checkedEnv(_ env: Int, _ d: Robosim_DescribeResponse) throws(ToolFailure) -> Int {
        guard env < Int(d.envCount) else {
            throw ToolFailure("env \(env) does not exist: the server has \(d.envCount) envs (0...\(Int(d.envCount) - 1))")
        }
        return env
    }

    /// The lease to pass for `envs`: this session's when it holds them all, "" when it holds none of
    /// them (the server then allows envs nobody leased), else a failure.
    func leaseID(for envs: [Int]) throws(ToolFailure) -> String {
        guard let lease else { return "" }
        let mine = Set(lease.envs)
        if envs.allSatisfy(mine.contains) { return lease.id }
        if envs.allSatisfy({ !mine.contains($0) }) { return "" }
        throw ToolFailure("envs \(envs) mix leased (\(lease.envs)) and unleased ones; call them separately")
    }

    /// The lease required to step `envs` on a lockstep server.
    func requireLease(for envs: [Int]) throws(ToolFailure) -> String {
        guard let lease else { throw ToolFailure("no lease: call lease_envs first (lockstep servers step only leased envs)") }
        let mine = Set(lease.envs)
        if let foreign = envs.first(where: { !mine.contains($0) }) {
            throw ToolFailure("env \(foreign) is not in this session's lease (envs \(lease.envs)); release_envs and lease it")
        }
        return lease.id
    }

    /// The text content of a JSON value.
    static func json(_ object: Any) -> [Tool.Content] {
        [.text(text: JSONText.render(object), annotations: nil, _meta: nil)]
    }
}

/// Pretty JSON for tool results (sorted keys, numbers rounded to 6 significant decimals).
enum JSONText {
    static func render(_ object: Any) -> String {
        guard JSONSerialization.isValidJSONObject(object),
            let data = try? JSONSerialization.data(
                withJSONObject: rounded(object), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return "\(object)" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Doubles rounded to 1e-6 relative precision, so results read well (0.3, not 0.30000000000000004).
    static func rounded(_ object: Any) -> Any {
        switch object {
        case let d as Double: return round(d)
        case let a as [Double]: return a.map(round)
        case let a as [Any]: return a.map(rounded)
        case let o as [String: Any]: return o.mapValues(rounded)
        default: return object
        }
    }

    static func round(_ d: Double) -> Any {
        guard d.isFinite else { return d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity") }
        if d == 0 { return 0.0 }
        let text = String(format: "%.6g", d)
        return Double(text) ?? d
    }
}
