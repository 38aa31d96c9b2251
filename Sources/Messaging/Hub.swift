import Foundation
import Logging
import SwiftProtobuf
import Synchronization

/// The message hub `sim-server` hosts: an XSUB/XPUB forwarder for topics, a ROUTER for services,
/// and the graph (nodes, topics, services, statistics) behind `/graph/list`.
///
/// All sockets belong to one hub thread. Other threads register services (`serve`) and answer
/// calls through `ServiceResponder`s; both are thread-safe.
public final class Hub: Sendable {
    /// The configuration the hub was created with.
    public let configuration: HubConfiguration
    /// The endpoints actually bound (ports resolved when the configuration asked for `*`).
    public let serviceEndpoint: String
    public let subscribeEndpoint: String
    public let publishEndpoint: String
    /// `inproc://` endpoints of the same sockets, for nodes in this process (`Node(name:hub:)`):
    /// their messages skip TCP and the kernel entirely.
    public let localEndpoints: (service: String, subscribe: String, publish: String)
    /// The context the hub's sockets (and its `inproc://` endpoints) belong to.
    public let context: ZMQContext
    /// Random, new for each hub (so each server process): `/sim/describe`'s `instance_id`, by which
    /// a client tells a restarted server from a slow one.
    public let instanceID = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()

    let logger: Logger
    let services = Mutex<[String: RegisteredService]>([:])
    let wakeup = WakeupPipe()
    let sink: ReplySink
    let running = Atomic<Bool>(false)
    /// Live subscription prefixes (a copy the hub thread refreshes on every change).
    let subscriptionPrefixes = Mutex<[String]>([])
    /// Bumped after every change of `subscriptionPrefixes`.
    let subscriptionGenerationCounter = Atomic<UInt64>(0)
    private let stopped = Mutex<Bool>(true)
    private let stoppedCondition = NSCondition()
    // Invariant: `core` is touched only by the hub thread once `start()` has run (before that, by init).
    let core: HubCore
    /// The authentication handler, with `configuration.security` (bound before the hub's sockets).
    let zap: ZAPHandler?

    struct RegisteredService: Sendable {
        let type: ServiceType
        let handler: ServiceHandler
    }

    /// Binds the three sockets. Throws `HubError` naming the endpoint when one cannot be bound.
    public init(configuration: HubConfiguration, context: ZMQContext = .shared, logger: Logger = Logger(label: "robosim.hub")) throws(HubError) {
        self.configuration = configuration
        self.logger = logger
        self.sink = ReplySink(wakeup: wakeup)
        self.context = context
        try configuration.checkExposure()
        if configuration.security == nil && !ListenAddress.isLoopback(configuration.serviceEndpoint) {
            logger.warning(
                "listening without keys beyond loopback (--insecure): anyone who reaches the port can drive the simulator and read its traffic",
                metadata: ["hub.listen": "\(configuration.serviceEndpoint)"])
        }
        zap = try configuration.security.map { s throws(HubError) in try ZAPHandler(context: context, security: s, logger: logger) }
        let local: HubConfiguration?
        if configuration.serviceEndpoint.hasPrefix("inproc://") {
            local = nil
            localEndpoints = (configuration.serviceEndpoint, configuration.subscribeEndpoint, configuration.publishEndpoint)
        } else {
            local = try HubConfiguration(listen: "inproc://robosim-hub-\(UUID().uuidString)")
            localEndpoints = (local!.serviceEndpoint, local!.subscribeEndpoint, local!.publishEndpoint)
        }
        do {
            core = try HubCore(configuration: configuration, context: context, local: local, zap: zap)
        } catch {
            throw HubError("cannot listen: \(error)")
        }
        (serviceEndpoint, subscribeEndpoint, publishEndpoint) = core.bound
        core.hub = self
        registerBuiltins()
    }

    /// Starts the hub thread. Calling it twice does nothing.
    public func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        zap?.start()
        stopped.withLock { $0 = false }
        let thread = Thread { [self] in
            core.run()
            stoppedCondition.lock()
            stopped.withLock { $0 = true }
            stoppedCondition.broadcast()
            stoppedCondition.unlock()
        }
        thread.name = "robosim.hub"
        thread.start()
        logger.info("hub listening", metadata: [
            "hub.services": "\(serviceEndpoint)", "hub.subscribe": "\(subscribeEndpoint)", "hub.publish": "\(publishEndpoint)",
            "hub.security": "\(configuration.security.map { "CURVE, key \(CurveKey.prefix($0.keyPair.publicKey)), \($0.allowedClients.count) allowed clients" } ?? "none")",
        ])
    }

    /// Stops the hub thread and closes its sockets; returns when it has. Idempotent.
    public func shutdown() {
        running.store(false, ordering: .releasing)
        wakeup.wake()
        stoppedCondition.lock()
        while !stopped.withLock({ $0 }) { stoppedCondition.wait() }
        stoppedCondition.unlock()
        zap?.stop()
    }

    /// Client handshakes refused since start: keys not allow-listed (the ZAP handler's refusals),
    /// and handshakes that failed before ZAP was asked (a plaintext client, a wrong server key, a
    /// connection dropped mid-handshake). Zero without `configuration.security`. Thread-safe.
    public var refusedClients: UInt64 { zap?.refused.load(ordering: .relaxed) ?? 0 }

    /// Client handshakes the authentication handler admitted, since start. Thread-safe.
    public var admittedClients: UInt64 { zap?.admitted.load(ordering: .relaxed) ?? 0 }

    // MARK: Services

    /// Registers (or replaces) a service. The handler runs on the hub thread: answer inline when
    /// quick, or keep the responder and answer from another thread.
    public func serve(_ name: String, type: ServiceType, handler: @escaping ServiceHandler) throws(Names.Violation) {
        try Names.validateTopic(name)
        services.withLock { $0[name] = RegisteredService(type: type, handler: handler) }
    }

    /// Registers a service answered inline on the hub thread by a typed function.
    public func serve<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ name: String, type: ServiceType, _ body: @escaping @Sendable (Request) throws(ServiceError) -> Response
    ) throws(Names.Violation) {
        try serve(name, type: type) { request, responder in
            do throws(ServiceError) {
                let decoded = try request.decode(Request.self)
                responder.succeed(try body(decoded))
            } catch {
                responder.fail(error)
            }
        }
    }

    /// True when some subscriber's ZeroMQ subscription matches `topic`, so a message published on
    /// it now would be delivered. Lets a publisher skip building messages nobody receives.
    /// Thread-safe and cheap (a lock and a prefix scan over the live subscriptions).
    public func hasSubscribers(_ topic: String) -> Bool {
        subscriptionPrefixes.withLock { $0.contains { topic.hasPrefix($0) } }
    }

    /// The live subscription prefixes, for a caller that checks many topics at once (one lock
    /// instead of one per topic). Thread-safe.
    public var subscriptionSnapshot: [String] { subscriptionPrefixes.withLock { $0 } }

    /// Changes whenever the live subscriptions change: a caller that derived something from
    /// `subscriptionSnapshot` after reading generation G may keep it while the generation is G.
    public var subscriptionGeneration: UInt64 { subscriptionGenerationCounter.load(ordering: .acquiring) }

    /// Names of the registered services, sorted.
    public var serviceNames: [String] { services.withLock { $0.keys.sorted() } }

    /// A `/sim/describe` answer holding what the hub knows: endpoints, services, version.
    /// Servers that host a simulation extend it.
    public func baseDescription() -> Robosim_DescribeResponse {
        var d = Robosim_DescribeResponse()
        d.subscribeEndpoint = subscribeEndpoint
        d.publishEndpoint = publishEndpoint
        d.services = serviceNames
        d.version = RoboSimVersion.string
        d.instanceID = instanceID
        return d
    }

    private func registerBuiltins() {
        let core = self.core
        try! serve("/graph/list", type: .graphList) { (_: Robosim_GraphListRequest) throws(ServiceError) in
            core.graphList()
        }
        try! serve("/graph/announce", type: .announce) { (info: Robosim_NodeInfo) throws(ServiceError) in
            try core.announce(info)
            return Robosim_Empty()
        }
        try! serve("/sim/describe", type: .describe) { [weak self] (_: Robosim_DescribeRequest) throws(ServiceError) in
            guard let self else { throw .unavailable("shutting down") }
            return self.baseDescription()
        }
    }
}

/// The RoboSim version string reported by `/sim/describe`.
public enum RoboSimVersion {
    public static let string = "0.1.0"
}
