import Synchronization

/// The bounded queue between a node's I/O thread (producer) and one consumer task, applying a
/// subscription's QoS. Non-generic, so the hot path needs no runtime generic metadata (the
/// standard library's `AsyncStream` does). Thread-safe.
final class MessageQueue: Sendable {
    enum PushResult { case enqueued, dropped, finished }

    private struct State {
        var items: [RawMessage] = []
        var head = 0
        var waiter: UnsafeContinuation<RawMessage?, Never>?
        var finished = false
        var count: Int { items.count - head }

        mutating func popFirst() -> RawMessage? {
            guard head < items.count else { return nil }
            let m = items[head]
            head += 1
            if head >= 1024 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return m
        }
    }

    private let state = Mutex(State())
    private let depth: Int
    private let keepNewest: Bool

    /// `keepNewest`: a full queue drops its oldest message (sensor data); otherwise the new one (reliable).
    init(depth: Int, keepNewest: Bool) {
        self.depth = max(1, depth)
        self.keepNewest = keepNewest
    }

    /// Called by the producer. Hands the message straight to a waiting consumer when there is one.
    func push(_ message: RawMessage) -> PushResult {
        let (result, waiter): (PushResult, UnsafeContinuation<RawMessage?, Never>?) = state.withLock { s in
            if s.finished { return (.finished, nil) }
            if let w = s.waiter {
                s.waiter = nil
                return (.enqueued, w)
            }
            if s.count < depth {
                s.items.append(message)
                return (.enqueued, nil)
            }
            if keepNewest {
                _ = s.popFirst()
                s.items.append(message)
            }
            return (.dropped, nil)
        }
        waiter?.resume(returning: message)
        return result
    }

    /// The next message; nil once finished and drained, or when the calling task is cancelled.
    func next() async -> RawMessage? {
        if let ready = state.withLock({ s in s.popFirst() }) { return ready }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<RawMessage?, Never>) in
                let immediate: RawMessage?? = state.withLock { s in
                    if let m = s.popFirst() { return .some(m) }
                    if s.finished || Task.isCancelled { return .some(nil) }
                    s.waiter = c
                    return nil
                }
                if let immediate { c.resume(returning: immediate) }
            }
        } onCancel: {
            state.withLock { s in
                let w = s.waiter
                s.waiter = nil
                return w
            }?.resume(returning: nil)
        }
    }

    /// Ends the queue: the consumer drains what is left, then gets nil.
    func finish() {
        state.withLock { s in
            s.finished = true
            let w = s.waiter
            s.waiter = nil
            return w
        }?.resume(returning: nil)
    }
}
