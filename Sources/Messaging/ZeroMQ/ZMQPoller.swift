import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Waits on several sockets and file descriptors at once (zmq_poll). Owned by one thread.
public struct ZMQPoller {
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds a socket to wait for readability on; returns its index.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Adds a plain file descriptor to wait for readability on; returns its index.
    @discardableResult
    public mutating func add(fd: Int32) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Waits up to `timeoutMs` milliseconds (-1: forever). Returns the number of ready items.
    @discardableResult
    public mutating func poll(timeoutMs: Int) throws(ZMQError) -> Int {
        let count = items.count
        let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32(count), timeoutMs) }
        if rc < 0 { throw ZMQError("zmq_poll") }
        return Int(rc)
    }

    /// True when item `index` was readable in the last poll.
    public func isReadable(_ index: Int) -> Bool { items[index].revents & Int16(ZMQ_POLLIN) != 0 }
}

/// A self-pipe that wakes a poll loop from another thread. Thread-safe.
public final class WakeupPipe: Sendable {
    /// Read end: add it to a `ZMQPoller`.
    public let readFD: Int32
    private let writeFD: Int32

    public init() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { fatalError("pipe() failed: \(errno)") }
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    deinit {
        close(readFD)
        close(writeFD)
    }

    /// Wakes the poller (never blocks; a full pipe already means a wake-up is pending).
    public func wake() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }

    /// Empties the pipe; call on the polling thread after it woke.
    public func drain() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(readFD, &buffer, buffer.count) > 0 {}
    }
}
