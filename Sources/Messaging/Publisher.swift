import SwiftProtobuf
import Synchronization

/// Publishes messages of one type on one topic. Thread-safe; `publish` never blocks.
public final class Publisher<M: SwiftProtobuf.Message>: Sendable {
    /// The untyped publisher underneath.
    public let raw: RawPublisher

    init(raw: RawPublisher) { self.raw = raw }

    /// The topic name.
    public var topic: String { raw.topic }

    /// Publishes one message. Returns false when it was dropped.
    @discardableResult
    public func publish(_ message: M) -> Bool {
        guard let payload: [UInt8] = try? message.serializedBytes() else {
            raw.counters.dropped.add(1, ordering: .relaxed)
            return false
        }
        return raw.publish(serialized: payload)
    }

    /// Messages published so far.
    public var published: UInt64 { raw.published }
}

/// Publishes serialized payloads of a type given by name (tools, bridges). Thread-safe, never blocks.
public final class RawPublisher: Sendable {
    public let topic: String
    /// The ROS type name sent in the type frame.
    public let typeName: String
    public let qos: QoS
    private let topicFrame: [UInt8]
    private let typeFrame: [UInt8]
    let socket: PublishSocket
    let counters: EndpointCounters

    init(topic: String, typeName: String, qos: QoS, socket: PublishSocket, counters: EndpointCounters) {
        self.topic = topic
        self.typeName = typeName
        self.qos = qos
        self.topicFrame = Array(topic.utf8)
        self.typeFrame = Array(typeName.utf8)
        self.socket = socket
        self.counters = counters
    }

    /// Publishes an already serialized message. Returns false when it was dropped.
    @discardableResult
    public func publish(serialized payload: [UInt8]) -> Bool {
        let sent = socket.send(topic: topicFrame, type: typeFrame, payload: payload)
        if sent { counters.messages.add(1, ordering: .relaxed) } else { counters.dropped.add(1, ordering: .relaxed) }
        return sent
    }

    /// Messages published so far.
    public var published: UInt64 { counters.messages.load(ordering: .relaxed) }
}

/// Counters of one publisher or subscription, read by the node's announcements.
final class EndpointCounters: Sendable {
    let messages = Atomic<UInt64>(0)
    let dropped = Atomic<UInt64>(0)
}

/// A node's PUB socket, shared by its publishers of one QoS profile.
final class PublishSocket: Sendable {
    private let socket: Mutex<ZMQSocket>

    init(socket: sending ZMQSocket) { self.socket = Mutex(socket) }

    func send(topic: [UInt8], type: [UInt8], payload: [UInt8]) -> Bool {
        socket.withLock { s in
            do {
                guard try s.send(topic, flags: [.sendMore, .dontWait]) else { return false }
                try s.send(type, flags: [.sendMore, .dontWait])
                try s.send(payload, flags: .dontWait)
                return true
            } catch {
                return false
            }
        }
    }
}
