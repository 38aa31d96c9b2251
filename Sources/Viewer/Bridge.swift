import Foundation
import Logging
import Messaging
import Synchronization

/// The Foxglove bridge: RoboSim's topics as Foxglove channels. It learns the topics and their types
/// from `/graph/list`, advertises each one with its protobuf schema (a FileDescriptorSet), and
/// subscribes to a topic on the messaging layer only while some WebSocket client subscribes to it.
/// Each client has a bounded outbox: a client that stops reading loses messages (counted), never
/// slows the topics or the simulation. Clients may publish on topics (`clientPublish`); the server's
/// command topics still apply the safety layer to what arrives.
public final class FoxgloveBridge: Sendable {
    public struct Options: Sendable {
        /// Seconds between `/graph/list` polls for topics that come and go.
        public var graphInterval = 1.0
        /// Data messages a client's outbox holds; beyond it the oldest is dropped and counted.
        public var queueDepth = 64
        /// Clients at once.
        public var maxClients = 64
        /// Channels one client may advertise to publish on.
        public var maxClientChannels = 64
        /// Whether clients may publish (`clientPublish`).
        public var clientPublish = true
        public init() {}
    }

    /// A client's end: its outbox, subscriptions and publishing channels.
    public final class Session: Sendable {
        public let id: UInt64
        let outbox: Outbox
        let state = Mutex(SessionState())
        struct SessionState {
            /// Set by `disconnect`: nothing more is added.
            var closed = false
            /// subscription id -> channel id, and channel id -> subscription id (one per channel)
            var subscriptions: [UInt32: UInt32] = [:]
            var byChannel: [UInt32: UInt32] = [:]
            /// client channel id -> its topic and type (publishers are the bridge's, shared)
            var publishers: [UInt32: (topic: String, type: String)] = [:]
        }

        init(id: UInt64, depth: Int) {
            self.id = id
            outbox = Outbox(depth: depth)
        }

        /// The next frame to send, in order; nil once the session closed.
        public func next() async -> Outbox.Frame? { await outbox.next() }
        public var dropped: UInt64 { outbox.dropped.load(ordering: .relaxed) }
        public var sent: UInt64 { outbox.sent.load(ordering: .relaxed) }
    }

    let node: Node
    let options: Options
    let logger: Logger
    let sessionID = String(UInt64(Date().timeIntervalSince1970 * 1000))
    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)

    struct State {
        var channels: [String: Foxglove.Channel] = [:]       // by topic
        var types: [String: String] = [:]                    // topic -> ROS type of its channel
        /// Publishers for viewers' messages, one per (topic, type), shared by every viewer.
        var publishers: [String: RawPublisher] = [:]
        var nextChannel: UInt32 = 1
        var nextSession: UInt64 = 1
        var sessions: [UInt64: Session] = [:]
        /// Open messaging subscriptions, by topic, with the sessions' subscription count.
        var taps: [String: (subscription: CallbackSubscription, users: Int)] = [:]
    }

    /// A bridge over `node` (in a sim-server, a node on its hub; in sim-bridge, a node of a remote
    /// server). Call `start()` to begin polling the graph.
    public init(node: Node, options: Options = Options(), logger: Logger = Logger(label: "robosim.viewer")) {
        self.node = node
        self.options = options
        self.logger = logger
    }

    /// Polls the graph on a thread of its own until `stop()`.
    public func start() {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                refreshChannels()
                Thread.sleep(forTimeInterval: options.graphInterval)
            }
        }
        thread.name = "robosim.viewer.graph"
        thread.start()
    }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        let sessions = state.withLock { s in
            let all = Array(s.sessions.values)
            s.sessions = [:]
            s.taps = [:]
            return all
        }
        for session in sessions { session.outbox.finish() }
    }

    // MARK: Channels

    /// The channels advertised now, by id.
    public var channels: [Foxglove.Channel] { state.withLock { Array($0.channels.values) }.sorted { $0.id < $1.id } }

    /// Reads `/graph/list` and advertises new topics, unadvertises gone ones.
    func refreshChannels() {
        guard let graph = try? node.client.graph(timeout: 2) else { return }
        // Not the viewer's own publishers (viewers' client channels).
        update(topics: graph.publishedTopics(excludingNodes: "sim_viewer"))
    }

    /// Makes the channel table match `topics` (topic -> ROS type) and tells every session.
    func update(topics: [String: String]) {
        let (added, removed, sessions) = state.withLock { s -> ([Foxglove.Channel], [UInt32], [Session]) in
            var added: [Foxglove.Channel] = [], removed: [UInt32] = []
            for (topic, channel) in s.channels where topics[topic] != s.types[topic] {
                removed.append(channel.id)
                s.channels[topic] = nil
                s.types[topic] = nil
                s.taps[topic] = nil   // released: unsubscribes
            }
            for (topic, type) in topics.sorted(by: { $0.key < $1.key }) where s.channels[topic] == nil {
                guard let schema = ProtoSchemas.foxgloveSchema(rosType: type) else { continue }
                let channel = Foxglove.Channel(id: s.nextChannel, topic: topic, schemaName: schema.name, schema: schema.descriptorSet.base64EncodedString())
                s.nextChannel += 1
                s.channels[topic] = channel
                s.types[topic] = type
                added.append(channel)
            }
            if !removed.isEmpty {
                let gone = Set(removed)
                for session in s.sessions.values {
                    session.state.withLock { st in
                        st.subscriptions = st.subscriptions.filter { !gone.contains($0.value) }
                        st.byChannel = st.byChannel.filter { !gone.contains($0.key) }
                    }
                }
            }
            return (added, removed, Array(s.sessions.values))
        }
        for session in sessions {
            if !removed.isEmpty { session.outbox.control(.text(Foxglove.unadvertise(removed.sorted()))) }
            if !added.isEmpty { session.outbox.control(.text(Foxglove.advertise(added))) }
        }
    }

    // MARK: Sessions

    /// A new client: its session, with serverInfo and the current channels queued. Nil when full.
    public func connect() -> Session? {
        state.withLock { s in
            guard s.sessions.count < options.maxClients else { return nil }
            let session = Session(id: s.nextSession, depth: options.queueDepth)
            s.nextSession += 1
            // Queued before any other session update can reach it: serverInfo comes first, then the
            // channels as they are now; later changes follow in order.
            session.outbox.control(.text(Foxglove.serverInfo(
                name: "robosim", capabilities: options.clientPublish ? ["clientPublish"] : [], sessionID: sessionID,
                metadata: ["robosim_version": RoboSimVersion.string])))
            session.outbox.control(.text(Foxglove.advertise(s.channels.values.sorted { $0.id < $1.id })))
            s.sessions[session.id] = session
            return session
        }
    }

    /// The client is gone: its subscriptions end.
    public func disconnect(_ session: Session) {
        state.withLock { s in
            let channels = session.state.withLock { st in
                st.closed = true
                let channels = Array(st.subscriptions.values)
                st.subscriptions = [:]
                st.byChannel = [:]
                st.publishers = [:]
                return channels
            }
            s.sessions[session.id] = nil
            for channelID in channels { Self.release(&s, channel: channelID) }
        }
        session.outbox.finish()
    }

    /// Handles one client message; a refusal goes back as an error status.
    public func receive(_ message: Foxglove.ClientMessage, from session: Session) {
        do throws(Foxglove.Refusal) {
            switch message {
            case .subscribe(let list): try subscribe(list, session)
            case .unsubscribe(let ids): unsubscribe(ids, session)
            case .advertise(let channels): try advertise(channels, session)
            case .unadvertise(let ids): session.state.withLock { st in for id in ids { st.publishers[id] = nil } }
            case .publish(let channel, let payload): try publish(channel, payload, session)
            }
        } catch {
            session.outbox.control(.text(Foxglove.status(level: 2, message: error.description)))
        }
    }

    private func subscribe(_ list: [(id: UInt32, channelID: UInt32)], _ session: Session) throws(Foxglove.Refusal) {
        var refused: [String] = []
        for (id, channelID) in list {
            let refusal: String? = state.withLock { s in
                guard let channel = s.channels.values.first(where: { $0.id == channelID }) else { return "no channel \(channelID)" }
                if s.taps[channel.topic] == nil {
                    guard let subscription = tapTopic(channel) else { return "cannot subscribe to \(channel.topic)" }
                    s.taps[channel.topic] = (subscription, 0)
                }
                let why = session.state.withLock { st -> String? in
                    if st.closed { return "the session closed" }
                    if st.subscriptions[id] != nil { return "subscription id \(id) is in use" }
                    if st.byChannel[channelID] != nil { return "already subscribed to channel \(channelID)" }
                    st.subscriptions[id] = channelID
                    st.byChannel[channelID] = id
                    return nil
                }
                if let why {
                    if s.taps[channel.topic]?.users == 0 { s.taps[channel.topic] = nil }
                    return why
                }
                s.taps[channel.topic]!.users += 1
                return nil
            }
            if let refusal { refused.append(refusal) }
        }
        if !refused.isEmpty { throw Foxglove.Refusal("subscribe refused: \(refused.prefix(8).joined(separator: "; "))") }
    }

    private func unsubscribe(_ ids: [UInt32], _ session: Session) {
        state.withLock { s in
            let channels = session.state.withLock { st in
                ids.compactMap { id -> UInt32? in
                    guard let channel = st.subscriptions.removeValue(forKey: id) else { return nil }
                    st.byChannel[channel] = nil
                    return channel
                }
            }
            for channelID in channels { Self.release(&s, channel: channelID) }
        }
    }

    /// One fewer user of a channel's tap; the last one closes it.
    private static func release(_ s: inout State, channel channelID: UInt32) {
        guard let topic = s.channels.values.first(where: { $0.id == channelID })?.topic, var tap = s.taps[topic] else { return }
        tap.users -= 1
        s.taps[topic] = tap.users > 0 ? tap : nil
    }

    /// Subscribes to a topic on the messaging layer; each message goes, as it arrives on the node's
    /// I/O thread, into the outbox of each session subscribed to its channel (the outboxes bound
    /// what waits; the QoS here only labels the subscription in the graph).
    private func tapTopic(_ channel: Foxglove.Channel) -> CallbackSubscription? {
        let qos: QoS = channel.schemaName.hasSuffix("sensor_msgs.Image") ? .sensorData(depth: 2) : .reliable(depth: 256)
        let channelID = channel.id
        return try? node.onRawMessage(channel.topic, qos: qos) { [weak self] raw in
            guard let self else { return }
            let now = UInt64(Date().timeIntervalSince1970 * 1e9)
            let sessions = self.state.withLock { Array($0.sessions.values) }
            for session in sessions {
                guard let id = session.state.withLock({ $0.byChannel[channelID] }) else { continue }
                session.outbox.data(Foxglove.messageData(subscription: id, receiveTime: now, payload: raw.payload))
            }
        }
    }

    private func advertise(_ channels: [Foxglove.ClientChannel], _ session: Session) throws(Foxglove.Refusal) {
        guard options.clientPublish else { throw Foxglove.Refusal("this bridge does not take client messages") }
        for c in channels {
            guard c.encoding == "protobuf" else { throw Foxglove.Refusal("client channel \(c.id): encoding must be protobuf") }
            let type = rosTypeName(protoName: ProtoSchemas.protoName(fromSchemaName: c.schemaName))
            guard MessageTypes.type(named: type) != nil else { throw Foxglove.Refusal("client channel \(c.id): unknown schema '\(c.schemaName.prefix(80))'") }
            do { try Names.validateTopic(c.topic) } catch { throw Foxglove.Refusal("client channel \(c.id): \(error)") }
            let refusal: String? = state.withLock { s in
                let key = c.topic + "\u{0}" + type
                let full = session.state.withLock { st in st.closed || (st.publishers[c.id] == nil && st.publishers.count >= options.maxClientChannels) }
                if full { return "at most \(options.maxClientChannels) client channels" }
                if s.publishers[key] == nil {
                    // Publishers stay for the process (the node keeps them): bounded over all viewers.
                    guard s.publishers.count < Self.maxPublishedTopics else { return "viewers may publish on at most \(Self.maxPublishedTopics) topics" }
                    guard let publisher = try? node.advertiseRaw(c.topic, typeName: type, qos: .standard) else { return "cannot publish on \(c.topic)" }
                    s.publishers[key] = publisher
                }
                session.state.withLock { st in st.publishers[c.id] = (c.topic, type) }
                return nil
            }
            if let refusal { throw Foxglove.Refusal("client channel \(c.id): \(refusal)") }
        }
    }

    private func publish(_ channelID: UInt32, _ payload: Data, _ session: Session) throws(Foxglove.Refusal) {
        guard let (topic, type) = session.state.withLock({ $0.publishers[channelID] }),
              let publisher = state.withLock({ $0.publishers[topic + "\u{0}" + type] }) else {
            throw Foxglove.Refusal("client channel \(channelID) was not advertised")
        }
        // Only well-formed messages of the advertised type go on (the server checks values).
        guard let messageType = MessageTypes.type(named: type), (try? messageType.init(serializedBytes: payload)) != nil else {
            throw Foxglove.Refusal("client channel \(channelID): the payload is not a \(type)")
        }
        if !publisher.publish(serialized: [UInt8](payload)) { logger.debug("publish on \(topic) dropped") }
    }

    /// Distinct (topic, type) pairs viewers may publish on, all viewers together.
    public static let maxPublishedTopics = 256

    // MARK: Statistics

    /// Per client: sent and dropped data messages, subscriptions.
    public func statistics() -> [[String: Any]] {
        let sessions = state.withLock { Array($0.sessions.values) }.sorted { $0.id < $1.id }
        return sessions.map { s in
            ["id": s.id, "sent": s.sent, "dropped": s.dropped, "subscriptions": s.state.withLock { $0.subscriptions.count }]
        }
    }
}

/// A session's outgoing frames: control messages (serverInfo, advertise, status) are never
/// dropped; data messages are kept to `depth`, the oldest dropped and counted. One reader
/// (`next()`), any number of writers; writers never wait.
public final class Outbox: Sendable {
    public enum Frame: Sendable {
        case text(String)
        case binary([UInt8])
    }

    struct Queues {
        var control: [Frame] = []
        var controlBytes = 0
        var data: [[UInt8]] = []
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    let depth: Int
    let dropped = Atomic<UInt64>(0)
    let sent = Atomic<UInt64>(0)
    private let queues = Mutex(Queues())

    /// Control frames (and bytes of them) a client may leave unread before it is cut off.
    static let maxControl = 10_000
    static let maxControlBytes = 64 << 20

    init(depth: Int) { self.depth = max(1, depth) }

    /// The next frame to send (control first), waiting for one; nil once finished.
    public func next() async -> Frame? {
        while true {
            let popped: (Frame?, Bool) = queues.withLock { q in
                if !q.control.isEmpty {
                    let frame = q.control.removeFirst()
                    if case .text(let t) = frame { q.controlBytes -= t.utf8.count }
                    return (frame, false)
                }
                if !q.data.isEmpty { return (.binary(q.data.removeFirst()), false) }
                return (nil, q.finished)
            }
            if let frame = popped.0 {
                if case .binary = frame { sent.add(1, ordering: .relaxed) }
                return frame
            }
            if popped.1 { return nil }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = queues.withLock { q -> Bool in
                    if q.finished || !q.control.isEmpty || !q.data.isEmpty { return true }
                    q.waiter = c
                    return false
                }
                if ready { c.resume() }
            }
        }
    }

    private func push(_ change: (inout Queues) -> Void) {
        let waiter = queues.withLock { q -> CheckedContinuation<Void, Never>? in
            change(&q)
            defer { q.waiter = nil }
            return q.waiter
        }
        waiter?.resume()
    }

    func control(_ frame: Frame) {
        var overflow = false
        push { q in
            guard !q.finished else { return }
            q.control.append(frame)
            if case .text(let t) = frame { q.controlBytes += t.utf8.count }
            overflow = q.control.count > Self.maxControl || q.controlBytes > Self.maxControlBytes
        }
        if overflow { finish() }
    }

    func data(_ bytes: [UInt8]) {
        var drop = false
        push { q in
            guard !q.finished else { return }
            q.data.append(bytes)
            if q.data.count > depth {
                q.data.removeFirst(q.data.count - depth)
                drop = true
            }
        }
        if drop { dropped.add(1, ordering: .relaxed) }
    }

    /// True once the session closed.
    var isFinished: Bool { queues.withLock { $0.finished } }

    func finish() {
        push { q in
            q.finished = true
            q.data = []
        }
    }
}
