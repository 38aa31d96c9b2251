import Foundation
import SwiftProtobuf
import Synchronization

/// A received topic message before decoding.
public struct RawMessage: Sendable {
    public let topic: String
    public let typeName: String
    /// The serialized message (large payloads reference ZeroMQ's buffer without a copy).
    public let payload: Data
}

/// The receiving end of one subscription, fed by the node's I/O thread. Applies the QoS queue.
final class SubscriptionCore: Sendable {
    let topic: String
    /// Expected type name, or nil to accept any type (tools like `simctl topic echo`).
    let typeName: String?
    let qos: QoS
    let topicBytes: [UInt8]
    let typeBytes: [UInt8]?
    let counters = EndpointCounters()
    let queue: MessageQueue
    /// When set, messages go to this handler on the node's I/O thread instead of the queue; it
    /// returns false for a message it could not use (counted as a drop).
    let handler: (@Sendable (RawMessage) -> Bool)?

    init(topic: String, typeName: String?, qos: QoS, handler: (@Sendable (RawMessage) -> Bool)? = nil) {
        self.topic = topic
        self.handler = handler
        self.typeName = typeName
        self.qos = qos
        self.topicBytes = Array(topic.utf8)
        self.typeBytes = typeName.map { Array($0.utf8) }
        queue = switch qos {
        case .sensorData(let d): MessageQueue(depth: d, keepNewest: true)
        case .reliable(let d): MessageQueue(depth: d, keepNewest: false)
        }
    }

    /// True when a message with this type frame is for this subscription.
    func accepts(type: UnsafeRawBufferPointer) -> Bool {
        typeBytes.map { $0.elementsEqual(type) } ?? true
    }

    /// Counts a message refused for its type.
    func refuse() { counters.dropped.add(1, ordering: .relaxed) }

    /// Called on the node's I/O thread with a message whose topic and type matched.
    func deliver(typeName received: String, payload: Data) {
        counters.messages.add(1, ordering: .relaxed)
        if let handler {
            if !handler(RawMessage(topic: topic, typeName: received, payload: payload)) { counters.dropped.add(1, ordering: .relaxed) }
            return
        }
        if queue.push(RawMessage(topic: topic, typeName: received, payload: payload)) == .dropped {
            counters.dropped.add(1, ordering: .relaxed)
        }
    }

    func finish() { queue.finish() }
}

/// Messages of type `M` on one topic, as an `AsyncSequence`. Messages that fail to decode, carry
/// another type, or were pushed out of the QoS queue are counted in `dropped`.
/// The subscription ends when this object is released or its node closes.
public final class Subscription<M: SwiftProtobuf.Message>: AsyncSequence, Sendable {
    public typealias Element = M
    let core: SubscriptionCore
    private let node: NodeCore

    init(core: SubscriptionCore, node: NodeCore) {
        self.core = core
        self.node = node
    }

    deinit { node.remove(core) }

    /// The topic name.
    public var topic: String { core.topic }
    /// Messages that arrived for this subscription (before the QoS queue).
    public var received: UInt64 { core.counters.messages.load(ordering: .relaxed) }
    /// Messages dropped: replaced by newer ones (sensor data), queue full (reliable), undecodable.
    public var dropped: UInt64 { core.counters.dropped.load(ordering: .relaxed) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: MessageQueue
        let owner: Subscription<M>

        public mutating func next() async -> M? {
            while let raw = await queue.next() {
                if let m = try? M(serializedBytes: raw.payload) { return m }
                owner.core.counters.dropped.add(1, ordering: .relaxed)
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(queue: core.queue, owner: self)
    }
}

/// Raw messages on one topic, of any type (or of one named type), for tools that decode by name.
public final class RawSubscription: AsyncSequence, Sendable {
    public typealias Element = RawMessage
    let core: SubscriptionCore
    private let node: NodeCore

    init(core: SubscriptionCore, node: NodeCore) {
        self.core = core
        self.node = node
    }

    deinit { node.remove(core) }

    public var topic: String { core.topic }
    public var received: UInt64 { core.counters.messages.load(ordering: .relaxed) }
    public var dropped: UInt64 { core.counters.dropped.load(ordering: .relaxed) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: MessageQueue
        let owner: RawSubscription
        public mutating func next() async -> RawMessage? { await queue.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(queue: core.queue, owner: self)
    }
}

/// A subscription whose messages are handed to a function on the node's I/O thread, as they
/// arrive (no queue, no task). For quick work only, such as validating a command and queueing it.
/// Ends when released or when the node closes.
public final class CallbackSubscription: Sendable {
    let core: SubscriptionCore
    private let node: NodeCore

    init(core: SubscriptionCore, node: NodeCore) {
        self.core = core
        self.node = node
    }

    deinit { node.remove(core) }

    public var topic: String { core.topic }
    public var received: UInt64 { core.counters.messages.load(ordering: .relaxed) }
    public var dropped: UInt64 { core.counters.dropped.load(ordering: .relaxed) }
}
