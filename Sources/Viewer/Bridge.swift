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
            /// subscription id -> channel id
            var subscriptions: [UInt32: UInt32] = [:]
            /// client channel id -> its publisher
            var publishers: [UInt32: (topic: String, type: String, publisher: RawPublisher)] = [:]
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
        var seen: [String: String] = [:]   // topic -> type
        for n in graph.nodes where !n.name.hasPrefix("sim_viewer") {
            for p in n.publishers where seen[p.topic] == nil && ProtoSchemas.schema(rosType: p.type) != nil { seen[p.topic] = p.type }
        }
        update(topics: seen)
    }

    /// Makes the channel table match `topics` (topic -> ROS type) and tells every session.
    func update(topics: [String: String]) {
        let (added, removed, sessions) = state.withLock { s -> ([Foxglove.Channel], [UInt32], [Session]) in
            var added: [Foxglove.Channel] = [], removed: [UInt32] = []
            for (topic, channel) in s.channels {
                let schemaName = ProtoSchemas.schema(rosType: topics[topic] ?? "")?.name
                if schemaName != channel.schemaName {
                    removed.append(channel.id)
                    s.channels[topic] = nil
                    if let tap = s.taps.removeValue(forKey: topic) { _ = tap }   // released: unsubscribes
                }
            }
            for (topic, type) in topics.sorted(by: { $0.key < $1.key }) where s.channels[topic] == nil {
                guard let schema = ProtoSchemas.schema(rosType: type) else { continue }
                let channel = Foxglove.Channel(id: s.nextChannel, topic: topic, schemaName: schema.name, schema: schema.descriptorSet.base64EncodedString())
                s.nextChannel += 1
                s.channels[topic] = channel
                added.append(channel)
            }
            if !removed.isEmpty {
                let gone = Set(removed)
                for session in s.sessions.values {
                    session.state.withLock { st in st.subscriptions = st.subscriptions.filter { !gone.contains($0.value) } }
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
        let session: Session? = state.withLock { s in
            guard s.sessions.count < options.maxClients else { return nil }
            let session = Session(id: s.nextSession, depth: options.queueDepth)
            s.nextSession += 1
            s.sessions[session.id] = session
            return session
        }
        guard let session else { return nil }
        session.outbox.control(.text(Foxglove.serverInfo(
            name: "robosim", capabilities: options.clientPublish ? ["clientPublish"] : [], sessionID: sessionID,
            metadata: ["robosim_version": RoboSimVersion.string])))
        session.outbox.control(.text(Foxglove.advertise(channels)))
        return session
    }

    /// The client is gone: its subscriptions end.
    public func disconnect(_ session: Session) {
        let topics = session.state.withLock { st in
            let channels = Array(st.subscriptions.values)
            st.subscriptions = [:]
            st.publishers = [:]
            return channels
        }
        state.withLock { s in
            s.sessions[session.id] = nil
            for channelID in topics { Self.release(&s, channel: channelID) }
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
            let ok: Bool = state.withLock { s in
                guard let channel = s.channels.values.first(where: { $0.id == channelID }) else { return false }
                let fresh = session.state.withLock { st -> Bool in
                    guard st.subscriptions[id] == nil, st.subscriptions.count < Foxglove.maxEntries else { return false }
                    st.subscriptions[id] = channelID
                    return true
                }
                guard fresh else { return false }
                if var tap = s.taps[channel.topic] {
                    tap.users += 1
                    s.taps[channel.topic] = tap
                } else if let subscription = tapTopic(channel) {
                    s.taps[channel.topic] = (subscription, 1)
                }
                return true
            }
            if !ok { refused.append("subscription \(id) to channel \(channelID)") }
        }
        if !refused.isEmpty { throw Foxglove.Refusal("refused (unknown channel, or a subscription id in use): \(refused.prefix(8).joined(separator: ", "))") }
    }

    private func unsubscribe(_ ids: [UInt32], _ session: Session) {
        let channels = session.state.withLock { st in ids.compactMap { st.subscriptions.removeValue(forKey: $0) } }
        state.withLock { s in for channelID in channels { Self.release(&s, channel: channelID) } }
    }

    /// One fewer user of a channel's tap; the last one closes it.
    private static func release(_ s: inout State, channel channelID: UInt32) {
        guard let topic = s.channels.values.first(where: { $0.id == channelID })?.topic, var tap = s.taps[topic] else { return }
        tap.users -= 1
        s.taps[topic] = tap.users > 0 ? tap : nil
    }

    /// Subscribes to a topic on the messaging layer; each message goes to the sessions subscribed to
    /// its channel. Camera images keep only the newest; other topics queue a few hundred.
    private func tapTopic(_ channel: Foxglove.Channel) -> CallbackSubscription? {
        let qos: QoS = channel.schemaName == "sensor_msgs.Image" ? .sensorData(depth: 2) : .reliable(depth: 256)
        let channelID = channel.id
        return try? node.onRawMessage(channel.topic, qos: qos) { [weak self] raw in
            guard let self else { return }
            let now = UInt64(Date().timeIntervalSince1970 * 1e9)
            let sessions = self.state.withLock { Array($0.sessions.values) }
            for session in sessions {
                let ids = session.state.withLock { st in st.subscriptions.compactMap { $0.value == channelID ? $0.key : nil } }
                for id in ids { session.outbox.data(Foxglove.messageData(subscription: id, receiveTime: now, payload: raw.payload)) }
            }
        }
    }

    private func advertise(_ channels: [Foxglove.ClientChannel], _ session: Session) throws(Foxglove.Refusal) {
        guard options.clientPublish else { throw Foxglove.Refusal("this bridge does not take client messages") }
        for c in channels {
            guard c.encoding == "protobuf" else { throw Foxglove.Refusal("client channel \(c.id): encoding must be protobuf") }
            let type = rosTypeName(protoName: c.schemaName)
            guard MessageTypes.type(named: type) != nil else { throw Foxglove.Refusal("client channel \(c.id): unknown schema '\(c.schemaName.prefix(80))'") }
            let publisher: RawPublisher
            do { publisher = try node.advertiseRaw(c.topic, typeName: type, qos: .standard) } catch {
                throw Foxglove.Refusal("client channel \(c.id): \(error)")
            }
            let full = session.state.withLock { st -> Bool in
                guard st.publishers[c.id] != nil || st.publishers.count < options.maxClientChannels else { return true }
                st.publishers[c.id] = (c.topic, type, publisher)
                return false
            }
            if full { throw Foxglove.Refusal("at most \(options.maxClientChannels) client channels") }
        }
    }

    private func publish(_ channelID: UInt32, _ payload: Data, _ session: Session) throws(Foxglove.Refusal) {
        guard let (topic, type, publisher) = session.state.withLock({ $0.publishers[channelID] }) else {
            throw Foxglove.Refusal("client channel \(channelID) was not advertised")
        }
        // Only well-formed messages of the advertised type go on (the server checks values).
        guard let messageType = MessageTypes.type(named: type), (try? messageType.init(serializedBytes: payload)) != nil else {
            throw Foxglove.Refusal("client channel \(channelID): the payload is not a \(type)")
        }
        if !publisher.publish(serialized: [UInt8](payload)) { logger.debug("publish on \(topic) dropped") }
    }

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
        var data: [[UInt8]] = []
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    let depth: Int
    let dropped = Atomic<UInt64>(0)
    let sent = Atomic<UInt64>(0)
    private let queues = Mutex(Queues())

    /// Control frames a client may leave unread before it is cut off.
    static let maxControl = 10_000

    init(depth: Int) { self.depth = max(1, depth) }

    /// The next frame to send (control first), waiting for one; nil once finished.
    public func next() async -> Frame? {
        while true {
            let popped: (Frame?, Bool) = queues.withLock { q in
                if !q.control.isEmpty { return (q.control.removeFirst(), false) }
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
            overflow = q.control.count > Self.maxControl
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
