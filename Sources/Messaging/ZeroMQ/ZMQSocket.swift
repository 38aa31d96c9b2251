import CZeroMQ
import Foundation

/// A ZeroMQ socket. Not thread-safe: one owner at a time (a thread, or a `Mutex`).
///
/// Closed on deinit with linger 0 unless `linger` was set.
public final class ZMQSocket {
    /// ZeroMQ socket types used by RoboSim.
    public enum Kind: Int32, Sendable {
        case pub = 1, sub = 2, req = 3, rep = 4, dealer = 5, router = 6, pull = 7, push = 8
        case xpub = 9, xsub = 10, pair = 0
    }

    /// Flags for send and receive.
    public struct Flags: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let dontWait = Flags(rawValue: ZMQ_DONTWAIT)
        public static let sendMore = Flags(rawValue: ZMQ_SNDMORE)
    }

    let handle: UnsafeMutableRawPointer
    /// The libzmq socket pointer, for libzmq calls this wrapper does not cover (`zmq_proxy`).
    /// The ownership rule still holds: one thread at a time.
    public var unsafeHandle: UnsafeMutableRawPointer { handle }
    /// The context this socket belongs to (kept alive as long as the socket).
    public let context: ZMQContext
    public let kind: Kind

    public init(_ context: ZMQContext, _ kind: Kind) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, kind.rawValue) else { throw ZMQError("zmq_socket") }
        self.handle = h
        self.context = context
        self.kind = kind
        try setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { zmq_close(handle) }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        if zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) != 0 { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var v = value
        if zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) != 0 { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    public func setOption(_ option: Int32, bytes: some Collection<UInt8>) throws(ZMQError) {
        let array = Array(bytes)
        let rc = array.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        if rc != 0 { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    /// Send and receive high-water marks (messages queued per peer before ZeroMQ drops or blocks).
    public func setHighWaterMarks(send: Int32, receive: Int32) throws(ZMQError) {
        try setOption(ZMQ_SNDHWM, send)
        try setOption(ZMQ_RCVHWM, receive)
    }

    /// Largest single frame the socket accepts from a peer (bytes); a peer sending more is disconnected.
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) { try setOption(ZMQ_MAXMSGSIZE, bytes) }

    /// Subscribes a SUB socket to a prefix.
    public func subscribe(_ prefix: String) throws(ZMQError) { try setOption(ZMQ_SUBSCRIBE, bytes: Array(prefix.utf8)) }
    /// Removes a subscription of a SUB socket.
    public func unsubscribe(_ prefix: String) throws(ZMQError) { try setOption(ZMQ_UNSUBSCRIBE, bytes: Array(prefix.utf8)) }

    /// The endpoint the socket last bound (resolves `tcp://127.0.0.1:*` to the chosen port).
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// True when the last received frame has more frames after it.
    public var hasMore: Bool {
        var more: Int32 = 0
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, ZMQ_RCVMORE, &more, &size)
        return more != 0
    }

    /// The OS file descriptor libzmq signals readiness on (edge-triggered; see zmq_getsockopt(ZMQ_FD)).
    public var events: Int32 {
        var ev: Int32 = 0
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, ZMQ_EVENTS, &ev, &size)
        return ev
    }

    // MARK: Connections

    public func bind(_ endpoint: String) throws(ZMQError) {
        if zmq_bind(handle, endpoint) != 0 { throw ZMQError("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        if zmq_connect(handle, endpoint) != 0 { throw ZMQError("connect \(endpoint)") }
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        if zmq_disconnect(handle, endpoint) != 0 { throw ZMQError("disconnect \(endpoint)") }
    }

    // MARK: Monitoring

    /// Starts libzmq's monitor on this socket (zmq_socket_monitor): each of `events` (a mask of
    /// `ZMQ_EVENT_*` bits) is sent, as the two frames `ZMQMonitorEvent` decodes, on a PAIR socket
    /// that libzmq binds at the `inproc://` `endpoint` of this socket's context. Call on the
    /// socket's owner, before `bind`.
    ///
    /// Connect one PAIR socket to `endpoint` at once and keep reading it: libzmq's I/O thread
    /// blocks on an event it cannot queue (no reader connected, or the reader's queue full), and
    /// with it every socket of the context. `stopMonitor()` (or closing this socket) ends it.
    public func startMonitor(_ endpoint: String, events: Int32) throws(ZMQError) {
        if zmq_socket_monitor(handle, endpoint, events) != 0 { throw ZMQError("zmq_socket_monitor \(endpoint)") }
    }

    /// Stops the monitor `startMonitor` started (libzmq closes its PAIR socket); does nothing when
    /// none runs. Call on the socket's owner.
    public func stopMonitor() {
        zmq_socket_monitor(handle, nil, 0)
    }

    // MARK: Sending

    /// Sends one frame from raw bytes. Returns false when `.dontWait` was given and it would block.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, flags: Flags = []) throws(ZMQError) -> Bool {
        try check(zmq_send(handle, bytes.baseAddress, bytes.count, flags.rawValue))
    }

    /// Sends one frame.
    @discardableResult
    public func send(_ bytes: [UInt8], flags: Flags = []) throws(ZMQError) -> Bool {
        try check(bytes.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags.rawValue) })
    }

    /// Sends one frame holding a string's UTF-8 bytes.
    @discardableResult
    public func send(_ string: String, flags: Flags = []) throws(ZMQError) -> Bool {
        var s = string
        return try check(s.withUTF8 { zmq_send(handle, $0.baseAddress, $0.count, flags.rawValue) })
    }

    @inline(__always)
    private func check(_ rc: Int32) throws(ZMQError) -> Bool {
        if rc >= 0 { return true }
        let e = ZMQError("zmq_send")
        if e.wouldBlock { return false }
        throw e
    }

    /// Sends a multipart message. With `.dontWait`, returns false if the first frame would block
    /// (ZeroMQ delivers multipart messages atomically, so later frames then never block).
    @discardableResult
    public func send(frames: [[UInt8]], flags: Flags = []) throws(ZMQError) -> Bool {
        for (i, frame) in frames.enumerated() {
            var f = flags
            if i < frames.count - 1 { f.insert(.sendMore) }
            if !(try send(frame, flags: f)) { return false }
        }
        return true
    }

    // MARK: Receiving

    /// Receives one frame into a new array; nil when `.dontWait` was given and nothing is waiting.
    public func receiveFrame(flags: Flags = []) throws(ZMQError) -> [UInt8]? {
        let msg = ZMQMessage()
        guard try msg.receive(from: self, flags: flags) else { return nil }
        return msg.bytes
    }

    /// Receives all frames of one message; nil when `.dontWait` was given and nothing is waiting.
    public func receiveMultipart(flags: Flags = []) throws(ZMQError) -> [[UInt8]]? {
        guard let first = try receiveFrame(flags: flags) else { return nil }
        var frames = [first]
        while hasMore {
            guard let next = try receiveFrame() else { break }
            frames.append(next)
        }
        return frames
    }

    /// Waits up to `timeout` seconds for the socket to become readable. Returns false on timeout.
    public func waitReadable(timeout: Double) throws(ZMQError) -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, Int(timeout * 1000))
        if rc < 0 { throw ZMQError("zmq_poll") }
        return rc > 0
    }
}

/// One ZeroMQ frame held in a `zmq_msg_t` (no copy on receive or forward). Reusable: each receive
/// replaces the content. Owned by one thread.
public final class ZMQMessage {
    // A stable heap address for libzmq, and no dynamic exclusivity checks on the hot path.
    private let msg: UnsafeMutablePointer<zmq_msg_t>

    public init() {
        msg = .allocate(capacity: 1)
        zmq_msg_init(msg)
    }

    deinit {
        zmq_msg_close(msg)
        msg.deallocate()
    }

    /// Receives the next frame into this message, replacing its content. Returns false when
    /// `.dontWait` was given and nothing is waiting.
    public func receive(from socket: ZMQSocket, flags: ZMQSocket.Flags = []) throws(ZMQError) -> Bool {
        if zmq_msg_recv(msg, socket.handle, flags.rawValue) < 0 {
            let e = ZMQError("zmq_msg_recv")
            if e.wouldBlock { return false }
            throw e
        }
        return true
    }

    /// Sends this frame (its content moves to ZeroMQ; the message becomes empty).
    /// Returns false when `.dontWait` was given and it would block.
    public func send(to socket: ZMQSocket, flags: ZMQSocket.Flags = []) throws(ZMQError) -> Bool {
        if zmq_msg_send(msg, socket.handle, flags.rawValue) < 0 {
            let e = ZMQError("zmq_msg_send")
            if e.wouldBlock { return false }
            throw e
        }
        return true
    }

    /// True when more frames of the same message follow this one.
    public var more: Bool { zmq_msg_more(msg) != 0 }

    /// Size of the frame in bytes.
    public var count: Int { zmq_msg_size(msg) }

    /// Read-only access to the frame's bytes.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let size = zmq_msg_size(msg)
        guard size > 0, let data = zmq_msg_data(msg) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// A copy of the frame's bytes.
    public var bytes: [UInt8] { withBytes { Array($0) } }

    /// The frame's bytes as UTF-8 text (invalid sequences repaired).
    public var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }

    /// The frame's bytes as `Data`. Frames of `zeroCopyThreshold` bytes or more are handed over
    /// without a copy: the message's buffer moves into the `Data` and this message becomes empty.
    public func takeData(zeroCopyThreshold: Int = 16 << 10) -> Data {
        let size = zmq_msg_size(msg)
        guard size >= zeroCopyThreshold else { return withBytes { Data($0) } }
        let owner = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(owner)
        zmq_msg_move(owner, msg)
        return Data(bytesNoCopy: zmq_msg_data(owner), count: size, deallocator: .custom { _, _ in
            zmq_msg_close(owner)
            owner.deallocate()
        })
    }
}
