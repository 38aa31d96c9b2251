import Foundation
import Logging
import SwiftProtobuf
import Synchronization

/// A named participant in the RoboSim graph: creates publishers, subscriptions and service
/// clients, and announces itself to the hub. Thread-safe.
///
/// Owns one I/O thread (receiving subscribed topics, sending heartbeats) and up to two PUB sockets.
public final class Node: Sendable {
    /// The node's name in the graph.
    public let name: String
    /// The server's service address.
    public let server: String
    /// Service client to the server.
    public let client: ServiceClient
    let core: NodeCore

    /// `SIM_SERVER` from the environment, else `tcp://127.0.0.1:7700`.
    public static var defaultServer: String {
        ProcessInfo.processInfo.environment["SIM_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? HubConfiguration.defaultListen
    }

    /// Joins the graph of the server at `server`: asks `/sim/describe` for the data endpoints.
    /// Throws `DEADLINE_EXCEEDED` when the server does not answer within `timeout` seconds.
    /// With `security`, every socket of the node (service DEALER, announcer, SUB, both PUBs) is a
    /// CURVE client of the server.
    public init(
        name: String, server: String = Node.defaultServer, context: ZMQContext = .shared,
        heartbeat: Double = 1, timeout: Double = 5, security: ClientSecurity? = nil, logger: Logger = Logger(label: "robosim.node")
    ) throws(ServiceError) {
        self.name = name
        self.server = server
        client = try ServiceClient(server: server, context: context, timeout: timeout, security: security)
        let described = try client.describe()
        let endpoints = (
            subscribe: Endpoints.resolve(described.subscribeEndpoint, server: server),
            publish: Endpoints.resolve(described.publishEndpoint, server: server)
        )
        do {
            core = try NodeCore(
                name: name, server: server, subscribeEndpoint: endpoints.subscribe, publishEndpoint: endpoints.publish,
                context: context, heartbeat: heartbeat, security: security, logger: logger)
        } catch {
            throw .unavailable("cannot connect to \(endpoints): \(error)")
        }
        core.start()
    }

    /// Joins the graph of a hub in this process over its `inproc://` endpoints: no discovery round
    /// trip, no TCP. This is how the server publishes its own topics.
    public init(name: String, hub: Hub, heartbeat: Double = 1, logger: Logger = Logger(label: "robosim.node")) throws(ServiceError) {
        self.name = name
        self.server = hub.localEndpoints.service
        client = try ServiceClient(server: hub.localEndpoints.service, context: hub.context)
        do {
            core = try NodeCore(
                name: name, server: hub.localEndpoints.service, subscribeEndpoint: hub.localEndpoints.subscribe,
                publishEndpoint: hub.localEndpoints.publish, context: hub.context, heartbeat: heartbeat, security: nil, logger: logger)
        } catch {
            throw .unavailable("cannot connect to the in-process hub: \(error)")
        }
        core.start()
    }

    deinit { core.close() }

    /// Creates a publisher. Throws when the topic name breaks the ROS 2 rules.
    public func advertise<M: SwiftProtobuf.Message>(_ topic: String, _ type: M.Type = M.self, qos: QoS = .standard) throws(Names.Violation) -> Publisher<M> {
        try Names.validateTopic(topic)
        return Publisher(raw: core.advertise(topic: topic, typeName: rosTypeName(of: M.self), qos: qos))
    }

    /// Creates a publisher of serialized payloads of the type named `typeName` (`pkg/msg/Name`).
    public func advertiseRaw(_ topic: String, typeName: String, qos: QoS = .standard) throws(Names.Violation) -> RawPublisher {
        try Names.validateTopic(topic)
        try Names.validateType(typeName)
        return core.advertise(topic: topic, typeName: typeName, qos: qos)
    }

    /// Subscribes to `topic`, decoding messages as `M` (messages of another type are dropped and counted).
    public func subscribe<M: SwiftProtobuf.Message>(_ topic: String, _ type: M.Type = M.self, qos: QoS = .sensor) throws(Names.Violation) -> Subscription<M> {
        try Names.validateTopic(topic)
        return Subscription(core: core.add(topic: topic, typeName: rosTypeName(of: M.self), qos: qos), node: core)
    }

    /// Subscribes to raw messages on `topic` of any type, or only of `typeName` when given.
    public func subscribeRaw(_ topic: String, typeName: String? = nil, qos: QoS = .sensor) throws(Names.Violation) -> RawSubscription {
        try Names.validateTopic(topic)
        return RawSubscription(core: core.add(topic: topic, typeName: typeName, qos: qos), node: core)
    }

    /// Calls `handler` on the node's I/O thread with every message on `topic`, undecoded (for bridges
    /// and recorders that pass payloads on). Keep it quick: it runs on the thread that drains the socket.
    public func onRawMessage(
        _ topic: String, typeName: String? = nil, qos: QoS = .sensor, handler: @escaping @Sendable (RawMessage) -> Void
    ) throws(Names.Violation) -> CallbackSubscription {
        try Names.validateTopic(topic)
        let subscription = core.add(topic: topic, typeName: typeName, qos: qos) { raw in
            handler(raw)
            return true
        }
        return CallbackSubscription(core: subscription, node: core)
    }

    /// Calls `handler` on the node's I/O thread with every message of type `M` on `topic`.
    /// Messages of another type are dropped and counted; the handler gets only decodable ones.
    /// Keep the handler quick: it runs on the thread that drains this node's socket.
    public func onMessage<M: SwiftProtobuf.Message>(
        _ topic: String, _ type: M.Type = M.self, handler: @escaping @Sendable (M) -> Void
    ) throws(Names.Violation) -> CallbackSubscription {
        try Names.validateTopic(topic)
        let subscription = core.add(topic: topic, typeName: rosTypeName(of: M.self), qos: .standard) { raw in
            guard let m = try? M(serializedBytes: raw.payload) else { return false }
            handler(m)
            return true
        }
        return CallbackSubscription(core: subscription, node: core)
    }

    /// The announcement this node sends to the hub.
    public var info: Robosim_NodeInfo { core.makeInfo(leaving: false) }

    /// Announces departure, ends all subscriptions and stops the I/O thread. Idempotent.
    public func close() { core.close() }
}
