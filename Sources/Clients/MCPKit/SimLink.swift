import Foundation
import Logging
import Messaging
import SwiftProtobuf
import Synchronization

/// sim-mcp's one connection to a sim-server, shared by every MCP session of the process: a node in
/// the server's graph, joined on first use (so sim-mcp starts, and says why a tool failed, while the
/// server is down), and the latest message of the topics the tools watch. Thread-safe.
///
/// Its calls block the calling thread (ZeroMQ); async code goes through `offload`.
public final class SimLink: Sendable {
    /// The server's service address (its ROUTER).
    public let server: String
    /// Seconds to wait for a service reply.
    public let timeout: Double
    let logger: Logger
    private let joined = Mutex<Node?>(nil)
    let latest: LatestMessages

    /// The node's name in the graph: `sim_mcp_<pid>`.
    public var nodeName: String { "sim_mcp_\(ProcessInfo.processInfo.processIdentifier)" }

    /// CURVE keys for the server (nil: plaintext).
    public let security: ClientSecurity?

    public init(server: String, timeout: Double = 5, security: ClientSecurity? = nil, logger: Logger = Logger(label: "sim-mcp")) {
        self.server = server
        self.timeout = timeout
        self.security = security
        self.logger = logger
        latest = LatestMessages(logger: logger)
    }

    /// The node, joining the graph on first use. Blocks up to `timeout` when the server is silent.
    func node() throws(ToolFailure) -> Node {
        let name = nodeName
        let result: Result<Node, ServiceError> = joined.withLock { node in
            if let node { return .success(node) }
            do throws(ServiceError) {
                let made = try Node(name: name, server: server, timeout: timeout, security: security, logger: logger)
                node = made
                logger.info("joined the graph", metadata: ["sim.server": "\(server)", "sim.node": "\(name)"])
                return .success(made)
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let node): return node
        case .failure(let error): throw ToolFailure("cannot reach sim-server at \(server): \(error)")
        }
    }

    /// Calls `service` and decodes its reply; a refusal or a silent server becomes a `ToolFailure`.
    func call<Response: SwiftProtobuf.Message>(
        _ service: String, _ request: some SwiftProtobuf.Message,
        as: Response.Type = Response.self, timeout: Double? = nil
    ) throws(ToolFailure) -> Response {
        let client = try node().client
        do { return try client.call(service, request, timeout: timeout) } catch { throw ToolFailure(error) }
    }

    /// `/sim/describe`.
    func describe() throws(ToolFailure) -> Robosim_DescribeResponse {
        try call("/sim/describe", Robosim_DescribeRequest())
    }

    /// Leaves the graph (announcing it) and drops every watch. Idempotent.
    public func close() {
        latest.removeAll()
        joined.withLock { node in
            node?.close()
            node = nil
        }
    }
}

/// Runs a blocking `body` on a thread of its own, so the caller's task (and the cooperative thread
/// pool) never waits on a socket.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws(ToolFailure) -> T) async throws(ToolFailure) -> T {
    let result: Result<T, ToolFailure> = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            do throws(ToolFailure) { continuation.resume(returning: .success(try body())) } catch {
                continuation.resume(returning: .failure(error))
            }
        }
    }
    return try result.get()
}

/// The latest message of each watched topic, kept by callbacks on the node's I/O thread: what
/// `move_end_effector` reads the tool's pose from and `propose_tbar_strategy` the T-bar's. A topic is
/// watched from its first use on, up to `maxTopics` topics (then the oldest watch is dropped).
final class LatestMessages: Sendable {
    struct Entry {
        var subscription: CallbackSubscription
        var message: RawMessage?
        /// Messages received since the watch began.
        var count = 0
        var lastUse: Date
    }
    static let maxTopics = 256
    private let entries = Mutex<[String: Entry]>([:])
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Starts watching `topic` (of type `typeName`) on `node`, unless it is watched already; true
    /// when the watch is new.
    @discardableResult
    func watch(_ topic: String, typeName: String, on node: Node) throws(ToolFailure) -> Bool {
        let exists = entries.withLock { e -> Bool in
            e[topic]?.lastUse = Date()
            return e[topic] != nil
        }
        if exists { return false }
        let subscription: CallbackSubscription
        do {
            subscription = try node.onRawMessage(topic, typeName: typeName, qos: .sensorData(depth: 1)) { [weak self] raw in
                self?.entries.withLock { e in
                    e[topic]?.message = raw
                    e[topic]?.count += 1
                }
            }
        } catch {
            throw ToolFailure("\(error)")
        }
        return entries.withLock { e in
            if e[topic] != nil { return false }  // another call watched it meanwhile; this subscription goes
            if e.count >= Self.maxTopics, let oldest = e.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
                e[oldest] = nil
            }
            e[topic] = Entry(subscription: subscription, lastUse: Date())
            return true
        }
    }

    /// The latest message on `topic` and how many came since the watch began.
    func latest(_ topic: String) -> (message: RawMessage?, count: Int) {
        entries.withLock { e in (e[topic]?.message, e[topic]?.count ?? 0) }
    }

    /// Waits (polling every 10 ms, blocking the calling thread) until `topic` has received more than
    /// `count` messages, or `seconds` passed; returns the latest message then (nil if none ever came).
    func wait(_ topic: String, after count: Int, seconds: Double) -> RawMessage? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (message, seen) = latest(topic)
            if seen > count || Date() >= deadline { return message }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    func removeAll() { entries.withLock { $0.removeAll() } }
}
