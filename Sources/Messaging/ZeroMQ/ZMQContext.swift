import CZeroMQ

/// A ZeroMQ context. Thread-safe (libzmq guarantees it); every socket belongs to one.
///
/// `inproc://` endpoints only connect sockets of the same context, which is what the in-process
/// transport for tests uses: a hub and nodes sharing one `ZMQContext` talk without any network.
public final class ZMQContext: @unchecked Sendable {
    // Invariant: `handle` is only passed to libzmq functions documented as thread-safe
    // (zmq_socket, zmq_ctx_set, zmq_ctx_shutdown, zmq_ctx_term).
    let handle: UnsafeMutableRawPointer

    /// Creates a context with `ioThreads` background I/O threads (libzmq's default is 1).
    public init(ioThreads: Int32 = 1) {
        guard let h = zmq_ctx_new() else { fatalError("zmq_ctx_new failed: out of memory") }
        handle = h
        zmq_ctx_set(h, ZMQ_IO_THREADS, ioThreads)
        zmq_ctx_set(h, ZMQ_MAX_SOCKETS, 4096)
    }

    /// The process-wide shared context (one I/O thread).
    public static let shared = ZMQContext()

    deinit {
        zmq_ctx_term(handle)
    }

    /// libzmq's version as "major.minor.patch".
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
