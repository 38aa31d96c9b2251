import Synchronization
import SwiftProtobuf

/// A service call as the hub received it.
public struct ServiceRequest: Sendable {
    /// The service name (`/sim/step`).
    public let service: String
    /// The request payload: a serialized protobuf message of the service's request type.
    public let payload: [UInt8]

    /// Decodes the payload, or throws `INVALID_ARGUMENT` naming the expected type.
    public func decode<M: SwiftProtobuf.Message>(_ type: M.Type) throws(ServiceError) -> M {
        do {
            return try M(serializedBytes: payload)
        } catch {
            throw .invalidArgument("\(service): payload is not a valid \(rosTypeName(of: M.self)) (\(payload.count) bytes)")
        }
    }
}

/// Answers one service call, exactly once, from any thread. If it is dropped without an answer
/// the caller gets an `INTERNAL` error, so no call ever goes unanswered.
public final class ServiceResponder: Sendable {
    private let envelope: [[UInt8]]      // identity (+ empty delimiter)
    private let requestID: [UInt8]?
    private let sink: ReplySink
    private let answered = Atomic<Bool>(false)
    /// The service being answered.
    public let service: String

    init(service: String, envelope: [[UInt8]], requestID: [UInt8]?, sink: ReplySink) {
        self.service = service
        self.envelope = envelope
        self.requestID = requestID
        self.sink = sink
    }

    deinit {
        if !answered.load(ordering: .acquiring) {
            send(status: ServiceStatus.error, payload: Self.encode(ServiceError.internalError("\(service): the handler dropped the call").wire), failed: true)
        }
    }

    /// Replies `ok` with a response message.
    public func succeed(_ response: some SwiftProtobuf.Message) {
        guard claim() else { return }
        send(status: ServiceStatus.ok, payload: Self.encode(response), failed: false)
    }

    /// Replies `ok` with an already serialized response.
    public func succeed(serialized: [UInt8]) {
        guard claim() else { return }
        send(status: ServiceStatus.ok, payload: serialized, failed: false)
    }

    /// Replies `error` with a `robosim.Error`.
    public func fail(_ error: ServiceError) {
        guard claim() else { return }
        send(status: ServiceStatus.error, payload: Self.encode(error.wire), failed: true)
    }

    private func claim() -> Bool {
        !answered.exchange(true, ordering: .acquiringAndReleasing)
    }

    private func send(status: [UInt8], payload: [UInt8], failed: Bool) {
        var frames = envelope
        frames.append(status)
        frames.append(payload)
        if let requestID { frames.append(requestID) }
        sink.enqueue(Reply(service: service, frames: frames, failed: failed))
    }

    static func encode(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        (try? message.serializedBytes()) ?? []
    }
}

/// A reply waiting for the hub thread to send it.
struct Reply: Sendable {
    let service: String
    let frames: [[UInt8]]
    let failed: Bool
}

/// The queue between responders (any thread) and the hub thread (the only one owning the ROUTER).
final class ReplySink: Sendable {
    private let queue = Mutex<[Reply]>([])
    private let wakeup: WakeupPipe

    init(wakeup: WakeupPipe) { self.wakeup = wakeup }

    func enqueue(_ reply: Reply) {
        let wasEmpty = queue.withLock { q in
            q.append(reply)
            return q.count == 1
        }
        if wasEmpty { wakeup.wake() }
    }

    func takeAll() -> [Reply] {
        queue.withLock { q in
            let out = q
            q.removeAll(keepingCapacity: true)
            return out
        }
    }
}

/// How a service is answered: called on the hub thread with the request and a responder. Answer
/// inline if it is quick, or hand the responder to another thread (the step loop) and answer there.
public typealias ServiceHandler = @Sendable (ServiceRequest, ServiceResponder) -> Void
