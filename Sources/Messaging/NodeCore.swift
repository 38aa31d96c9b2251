import CZeroMQ
import Foundation
import Logging
import SwiftProtobuf
import Synchronization

/// A node's sockets and I/O thread. The SUB and announce sockets belong to the I/O thread; the
/// PUB sockets are shared behind mutexes; tables are behind a mutex.
final class NodeCore: @unchecked Sendable {
    // Invariant: `sub` and `announcer` are used only by the I/O thread (after `start`).
    private let sub: ZMQSocket
    private let announcer: ZMQSocket
    private let sensorPublisher: PublishSocket
    private let reliablePublisher: PublishSocket
    let name: String
    let heartbeat: Double
    private let pid = UInt32(ProcessInfo.processInfo.processIdentifier)
    private let host = ProcessInfo.processInfo.hostName
    private let logger: Logger
    private let wakeup = WakeupPipe()
    private let running = Atomic<Bool>(false)
    private let finished = NSCondition()
    private let threadDone = Mutex<Bool>(true)

    private struct Tables {
        var subscriptions: [String: [SubscriptionCore]] = [:] {
            didSet { index = ByteKeyedTable(subscriptions) }
        }
        /// `subscriptions` keyed by the topic's bytes, for the I/O thread.
        var index = ByteKeyedTable<[SubscriptionCore]>([:])
        var publishers: [(topic: String, type: String, qos: QoS, counters: EndpointCounters)] = []
        /// SUBSCRIBE/UNSUBSCRIBE to apply on the I/O thread.
        var pending: [(prefix: String, subscribe: Bool)] = []
        var changed = true
        var closed = false
    }
    private let tables = Mutex(Tables())
    /// Type-frame strings seen by the I/O thread (I/O thread only).
    private let typeNames = TypeNameCache()

    init(name: String, server: String, subscribeEndpoint: String, publishEndpoint: String, context: ZMQContext,
         heartbeat: Double, security: ClientSecurity?, logger: Logger) throws(ZMQError) {
        self.name = name
        self.heartbeat = heartbeat
        self.logger = logger
        sub = try ZMQSocket(context, .sub)
        try security.apply(to: sub)
        try sub.setHighWaterMarks(send: 1000, receive: 10_000)
        try sub.connect(subscribeEndpoint)
        announcer = try ZMQSocket(context, .dealer)
        try security.apply(to: announcer)
        try announcer.setHighWaterMarks(send: 10, receive: 100)
        try announcer.connect(server)
        let sensor = try ZMQSocket(context, .pub)
        try security.apply(to: sensor)
        try sensor.setOption(ZMQ_SNDHWM, QoS.sensor.highWaterMark)
        try sensor.connect(publishEndpoint)
        sensorPublisher = PublishSocket(socket: sensor)
        let reliable = try ZMQSocket(context, .pub)
        try security.apply(to: reliable)
        try reliable.setOption(ZMQ_SNDHWM, QoS.standard.highWaterMark)
        try reliable.connect(publishEndpoint)
        reliablePublisher = PublishSocket(socket: reliable)
    }

    func start() {
        running.store(true, ordering: .releasing)
        threadDone.withLock { $0 = false }
        let thread = Thread { [self] in
            loop()
            finished.lock()
            threadDone.withLock { $0 = true }
            finished.broadcast()
            finished.unlock()
        }
        thread.name = "robosim.node.\(name)"
        thread.start()
    }

    func close() {
        let wasRunning = running.exchange(false, ordering: .acquiringAndReleasing)
        guard wasRunning else { return }
        wakeup.wake()
        finished.lock()
        while !threadDone.withLock({ $0 }) { finished.wait() }
        finished.unlock()
        let all = tables.withLock { t in
            t.closed = true
            return t.subscriptions.values.flatMap { $0 }
        }
        for s in all { s.finish() }
    }

    // MARK: Tables (any thread)

    func advertise(topic: String, typeName: String, qos: QoS) -> RawPublisher {
        let counters = EndpointCounters()
        let socket: PublishSocket = if case .sensorData = qos { sensorPublisher } else { reliablePublisher }
        tables.withLock { t in
            t.publishers.append((topic, typeName, qos, counters))
            t.changed = true
        }
        wakeup.wake()
        return RawPublisher(topic: topic, typeName: typeName, qos: qos, socket: socket, counters: counters)
    }

    func add(topic: String, typeName: String?, qos: QoS, handler: (@Sendable (RawMessage) -> Bool)? = nil) -> SubscriptionCore {
        let core = SubscriptionCore(topic: topic, typeName: typeName, qos: qos, handler: handler)
        let closed = tables.withLock { t in
            if t.closed { return true }
            if t.subscriptions[topic] == nil { t.pending.append((topic, true)) }
            t.subscriptions[topic, default: []].append(core)
            t.changed = true
            return false
        }
        if closed { core.finish() } else { wakeup.wake() }
        return core
    }

    func remove(_ core: SubscriptionCore) {
        tables.withLock { t in
            guard var list = t.subscriptions[core.topic] else { return }
            list.removeAll { $0 === core }
            if list.isEmpty {
                t.subscriptions[core.topic] = nil
                t.pending.append((core.topic, false))
            } else {
                t.subscriptions[core.topic] = list
            }
            t.changed = true
        }
        core.finish()
        wakeup.wake()
    }

    func makeInfo(leaving: Bool) -> Robosim_NodeInfo {
        var info = Robosim_NodeInfo()
        info.name = name
        info.pid = pid
        info.host = host
        info.heartbeatS = heartbeat
        info.leaving = leaving
        tables.withLock { t in
            info.publishers = t.publishers.map { p in
                var e = Robosim_NodeInfo.Endpoint()
                e.topic = p.topic
                e.type = p.type
                e.qos = p.qos.wire
                e.messages = p.counters.messages.load(ordering: .relaxed)
                e.dropped = p.counters.dropped.load(ordering: .relaxed)
                return e
            }
            info.subscriptions = t.subscriptions.values.flatMap { $0 }.map { s in
                var e = Robosim_NodeInfo.Endpoint()
                e.topic = s.topic
                e.type = s.typeName ?? ""
                e.qos = s.qos.wire
                e.messages = s.counters.messages.load(ordering: .relaxed)
                e.dropped = s.counters.dropped.load(ordering: .relaxed)
                return e
            }
        }
        return info
    }

    // MARK: I/O thread

    private func loop() {
        var poller = ZMQPoller()
        let subIndex = poller.add(sub)
        let announceIndex = poller.add(announcer)
        let wakeIndex = poller.add(fd: wakeup.readFD)
        var nextHeartbeat = 0.0
        let topic = ZMQMessage(), type = ZMQMessage(), payload = ZMQMessage(), extra = ZMQMessage()
        while running.load(ordering: .acquiring) {
            let now = HubCore.now()
            let timeout = max(0, min(100, Int((nextHeartbeat - now) * 1000)))
            do { try poller.poll(timeoutMs: timeout) } catch { break }
            if poller.isReadable(wakeIndex) { wakeup.drain() }
            let (pending, changed) = tables.withLock { t in
                defer { t.pending.removeAll(); t.changed = false }
                return (t.pending, t.changed)
            }
            for p in pending {
                try? (p.subscribe ? sub.subscribe(p.prefix) : sub.unsubscribe(p.prefix))
            }
            if poller.isReadable(subIndex) {
                receive(topic, type, payload, extra)
            }
            if poller.isReadable(announceIndex) {
                while (try? announcer.receiveMultipart(flags: .dontWait)) ?? nil != nil {}
            }
            if changed || HubCore.now() >= nextHeartbeat {
                announce(leaving: false)
                nextHeartbeat = HubCore.now() + heartbeat
            }
        }
        announce(leaving: true)
    }

    private func receive(_ topic: ZMQMessage, _ type: ZMQMessage, _ payload: ZMQMessage, _ extra: ZMQMessage) {
        let index = tables.withLock { $0.index }
        for _ in 0..<HubCore.burst {
            do {
                guard try topic.receive(from: sub, flags: .dontWait) else { return }
                guard topic.more, try type.receive(from: sub), type.more, try payload.receive(from: sub) else { continue }
                if payload.more {
                    while try extra.receive(from: sub), extra.more {}
                    continue
                }
                // Exact topic match by bytes (ZeroMQ matched a prefix); no allocation for topics
                // this node does not want.
                guard let targets = topic.withBytes({ index.lookup($0) }) else { continue }
                var typeName: String?
                var data: Data?
                for t in targets {
                    guard type.withBytes({ t.accepts(type: $0) }) else {
                        t.refuse()
                        continue
                    }
                    if typeName == nil { typeName = typeNames.name(type) }
                    if data == nil { data = payload.takeData() }
                    t.deliver(typeName: typeName!, payload: data!)
                }
            } catch {
                return
            }
        }
    }

    private func announce(leaving: Bool) {
        guard let bytes: [UInt8] = try? makeInfo(leaving: leaving).serializedBytes() else { return }
        _ = try? announcer.send(frames: [[], Array("/graph/announce".utf8), bytes], flags: .dontWait)
    }
}
