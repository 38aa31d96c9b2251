import SwiftProtobuf
import Synchronization

/// A received topic message before decoding.
public struct RawMessage: Sendable {
    public let topic: String
    public let typeName: String
    public let payload: [UInt8]
}

/// The receiving end of one subscription, fed by the node's I/O thread. Applies the QoS queue.
final class SubscriptionCore: Sendable {
    let topic: String
    /// Expected type name, or nil to accept any type (tools like `simctl topic echo`).
    let typeName: String?
    let qos: QoS
    let counters = EndpointCounters()
    let stream: AsyncStream<RawMessage>
    private let continuation: AsyncStream<RawMessage>.Continuation

    init(topic: String, typeName: String?, qos: QoS) {
        self.topic = topic
        self.typeName = typeName
        self.qos = qos
        let policy: AsyncStream<RawMessage>.Continuation.BufferingPolicy =
            switch qos {
            case .sensorData(let d): .bufferingNewest(max(1, d))
            case .reliable(let d): .bufferingOldest(max(1, d))
            }
        (stream, continuation) = AsyncStream.makeStream(of: RawMessage.self, bufferingPolicy: policy)
    }

    /// Called on the node's I/O thread with a message whose topic matched exactly.
    func deliver(typeName received: String, payload: [UInt8]) {
        if let typeName, typeName != received {
            counters.dropped.add(1, ordering: .relaxed)
            return
        }
        counters.messages.add(1, ordering: .relaxed)
        switch continuation.yield(RawMessage(topic: topic, typeName: received, payload: payload)) {
        case .dropped: counters.dropped.add(1, ordering: .relaxed)
        case .enqueued, .terminated: break
        @unknown default: break
        }
    }

    func finish() { continuation.finish() }
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
        let owner: Subscription<M>
        var base: AsyncStream<RawMessage>.AsyncIterator

        public mutating func next() async -> M? {
            while let raw = await base.next() {
                if let m = try? M(serializedBytes: raw.payload) { return m }
                owner.core.counters.dropped.add(1, ordering: .relaxed)
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(owner: self, base: core.stream.makeAsyncIterator())
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
        let owner: RawSubscription
        var base: AsyncStream<RawMessage>.AsyncIterator
        public mutating func next() async -> RawMessage? { await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(owner: self, base: core.stream.makeAsyncIterator())
    }
}
