import CSharedMemory
import Foundation
import Glibc

/// A same-host step channel: one shared memory file that carries a lease's actions in and its step
/// results out, with a futex on each side instead of a socket (docs/wire-protocol.md, "Step
/// channel"). `/sim/open_channel` creates one for a lease; the client maps it and then steps
/// through it at the cost of two futex wake-ups per call.
///
/// The file is a header (`Header`), then these arrays, each starting on a 64-byte boundary, for the
/// `envs` envs of the lease in the order the open reply lists them: actions (f64, envs x action
/// size), observations (f64, envs x observation size), rewards (f64, envs), final observations
/// (f64, envs x observation size), then one byte per env each: terminated, truncated, success, final
/// (the env ended an episode on this step; its final observation is in its row).
///
/// One request at a time: the client writes the op and its inputs, bumps `request` and wakes it;
/// the server answers, sets `response` to the request's number and wakes it.
public final class StepChannel: @unchecked Sendable {
    // Invariant: the mapping lives as long as this object; the header words the other process
    // writes are read with acquire loads, the ones it reads are written with release stores.

    /// Byte offsets of the header fields (little-endian).
    public enum Header {
        public static let magic = 0, version = 4, request = 8, response = 12, op = 16, status = 20
        public static let state = 24, serverPID = 28, nonce = 32, seed = 40, hasSeed = 48
        public static let envs = 52, observationSize = 56, actionSize = 60
        /// 0: same-step autoreset, 1: next-step (`robosim.Autoreset`), for step requests.
        public static let autoreset = 64
        /// u64: nanoseconds the server spent serving the request answered (the simulation's share of a call).
        public static let serverNanoseconds = 72
        /// The answer's error message (UTF-8, zero-padded).
        public static let message = 128, messageBytes = 192
        public static let size = 320
    }

    public static let magic: UInt32 = 0x3143_5352  // "RSC1"
    public static let version: UInt32 = 1

    /// What a request asks.
    public enum Op: UInt32, Sendable {
        case step = 1
        /// Reset, with `seed` when `hasSeed` is 1.
        case reset = 2
    }

    /// `state`: the server stopped serving the channel (the message says why).
    public static let closed: UInt32 = 1

    /// Where each array starts, for `envs` envs.
    public struct Layout: Sendable, Equatable {
        public let envs: Int, observationSize: Int, actionSize: Int
        public let actions: Int, observations: Int, rewards: Int, finalObservations: Int
        public let terminated: Int, truncated: Int, success: Int, final: Int
        public let byteCount: Int

        public init(envs: Int, observationSize: Int, actionSize: Int) {
            self.envs = envs
            self.observationSize = observationSize
            self.actionSize = actionSize
            var at = Header.size
            func take(_ bytes: Int) -> Int {
                let start = (at + 63) & ~63
                at = start + bytes
                return start
            }
            actions = take(8 * envs * actionSize)
            observations = take(8 * envs * observationSize)
            rewards = take(8 * envs)
            finalObservations = take(8 * envs * observationSize)
            terminated = take(envs)
            truncated = take(envs)
            success = take(envs)
            final = take(envs)
            byteCount = (at + 4095) & ~4095
        }
    }

    public let layout: Layout
    /// What the client opens: `/proc/<server pid>/fd/<fd>` of the server's memory file.
    public let path: String
    public let nonce: UInt64
    private let base: UnsafeMutableRawPointer
    /// The server's memory file (-1 on the client side, which keeps only the mapping).
    private let fd: Int32

    private init(path: String, layout: Layout, nonce: UInt64, base: UnsafeMutableRawPointer, fd: Int32) {
        self.path = path
        self.layout = layout
        self.nonce = nonce
        self.base = base
        self.fd = fd
    }

    deinit {
        munmap(base, layout.byteCount)
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Makes the channel's memory (the serving side): a sealed memory file, its pages allocated up
    /// front (a full `/dev/shm` fails here, never as SIGBUS later), that no client can shrink or
    /// grow, and that disappears with the last process holding it (no file is ever left behind).
    /// Clients open it through `path`.
    public static func create(layout: Layout, nonce: UInt64) throws -> StepChannel {
        let fd = robosim_sealed_memfd("robosim-channel", layout.byteCount)
        guard fd >= 0 else { throw ChannelError("no memory file of \(layout.byteCount) bytes: \(String(cString: strerror(-fd)))") }
        guard let base = mmap(nil, layout.byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ChannelError("cannot map \(layout.byteCount) bytes: \(why)")
        }
        let channel = StepChannel(path: "/proc/\(getpid())/fd/\(fd)", layout: layout, nonce: nonce, base: base, fd: fd)
        channel.store(Header.version, version)
        channel.store(Header.serverPID, UInt32(truncatingIfNeeded: getpid()))
        base.storeBytes(of: nonce.littleEndian, toByteOffset: Header.nonce, as: UInt64.self)
        channel.store(Header.envs, UInt32(layout.envs))
        channel.store(Header.observationSize, UInt32(layout.observationSize))
        channel.store(Header.actionSize, UInt32(layout.actionSize))
        channel.store(Header.magic, magic)
        return channel
    }

    /// Maps a server's channel (the client side) and checks that it is the one the server
    /// described: magic, version, nonce and sizes; and that the server's pid is visible from here.
    public static func attach(path: String, layout: Layout, nonce: UInt64) throws -> StepChannel {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw ChannelError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == layout.byteCount,
              let base = mmap(nil, layout.byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw ChannelError("\(path) is not a channel of \(layout.byteCount) bytes")
        }
        let channel = StepChannel(path: path, layout: layout, nonce: nonce, base: base, fd: -1)
        guard channel.load(Header.magic) == magic, channel.load(Header.version) == version,
              UInt64(littleEndian: base.load(fromByteOffset: Header.nonce, as: UInt64.self)) == nonce,
              channel.load(Header.envs) == UInt32(layout.envs), channel.load(Header.observationSize) == UInt32(layout.observationSize),
              channel.load(Header.actionSize) == UInt32(layout.actionSize) else {
            throw ChannelError("\(path) is not the channel the server described (magic, version, nonce or sizes differ)")
        }
        // A server in another pid namespace: this side could not tell when it dies.
        guard channel.serverAlive else { throw ChannelError("the server's pid \(channel.load(Header.serverPID)) is not visible from this process") }
        return channel
    }

    // MARK: Header words

    public func load(_ offset: Int) -> UInt32 { robosim_load_acquire(word(offset)) }
    public func store(_ offset: Int, _ value: UInt32) { robosim_store_release(word(offset), value) }
    private func word(_ offset: Int) -> UnsafeMutablePointer<UInt32> { (base + offset).assumingMemoryBound(to: UInt32.self) }

    public var seed: UInt64 {
        get { UInt64(littleEndian: base.load(fromByteOffset: Header.seed, as: UInt64.self)) }
        set { base.storeBytes(of: newValue.littleEndian, toByteOffset: Header.seed, as: UInt64.self) }
    }

    /// Nanoseconds the server spent on the last request (written before `response`).
    public var serverNanoseconds: UInt64 {
        get { UInt64(littleEndian: base.load(fromByteOffset: Header.serverNanoseconds, as: UInt64.self)) }
        set { base.storeBytes(of: newValue.littleEndian, toByteOffset: Header.serverNanoseconds, as: UInt64.self) }
    }

    /// The answer's message (empty when it succeeded).
    public var message: String {
        get {
            let bytes = UnsafeRawBufferPointer(start: base + Header.message, count: Header.messageBytes)
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        set {
            let bytes = UnsafeMutableRawBufferPointer(start: base + Header.message, count: Header.messageBytes)
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            // Cut at a character boundary that fits, leaving a zero byte at the end.
            var utf8 = Array(newValue.utf8.prefix(Header.messageBytes - 1))
            while !utf8.isEmpty, String(validating: utf8, as: UTF8.self) == nil { utf8.removeLast() }
            bytes.copyBytes(from: utf8)
        }
    }

    // MARK: Arrays

    public var actions: UnsafeMutableBufferPointer<Double> { doubles(layout.actions, layout.envs * layout.actionSize) }
    public var observations: UnsafeMutableBufferPointer<Double> { doubles(layout.observations, layout.envs * layout.observationSize) }
    public var rewards: UnsafeMutableBufferPointer<Double> { doubles(layout.rewards, layout.envs) }
    public var finalObservations: UnsafeMutableBufferPointer<Double> { doubles(layout.finalObservations, layout.envs * layout.observationSize) }
    public var terminated: UnsafeMutableBufferPointer<UInt8> { bytes(layout.terminated) }
    public var truncated: UnsafeMutableBufferPointer<UInt8> { bytes(layout.truncated) }
    public var success: UnsafeMutableBufferPointer<UInt8> { bytes(layout.success) }
    public var final: UnsafeMutableBufferPointer<UInt8> { bytes(layout.final) }

    private func doubles(_ offset: Int, _ count: Int) -> UnsafeMutableBufferPointer<Double> {
        UnsafeMutableBufferPointer(start: (base + offset).assumingMemoryBound(to: Double.self), count: count)
    }
    private func bytes(_ offset: Int) -> UnsafeMutableBufferPointer<UInt8> {
        UnsafeMutableBufferPointer(start: (base + offset).assumingMemoryBound(to: UInt8.self), count: layout.envs)
    }

    // MARK: Serving side

    /// Waits for a request after `seen`: spins for `spin` first (the client usually sends its next
    /// step within microseconds), then sleeps on the futex up to `timeout`. Returns its number, or
    /// nil on timeout.
    public func nextRequest(after seen: UInt32, spin: Duration, timeout: Duration) -> UInt32? {
        let clock = ContinuousClock()
        let spinEnd = clock.now + spin
        repeat {
            let r = load(Header.request)
            if r != seen { return r }
            robosim_cpu_relax()
        } while clock.now < spinEnd
        let r = load(Header.request)
        if r != seen { return r }
        _ = robosim_futex_wait(word(Header.request), seen, timeout.nanoseconds)
        let after = load(Header.request)
        return after != seen ? after : nil
    }

    /// Publishes the answer to request `number`: success, or `error`.
    public func answer(_ number: UInt32, error: ServiceError? = nil) {
        if let error { message = error.message } else if load(Header.status) != 0 { message = "" }
        store(Header.status, UInt32(error?.code.rawValue ?? 0))
        store(Header.response, number)
        _ = robosim_futex_wake(word(Header.response))
    }

    /// Wakes the serving thread's wait (to have it look at why it should stop).
    public func wakeServer() { _ = robosim_futex_wake(word(Header.request)) }

    /// Marks the channel closed and wakes a client waiting for an answer.
    public func close(reason: String) {
        message = reason
        store(Header.state, Self.closed)
        _ = robosim_futex_wake(word(Header.response))
    }

    // MARK: Client side

    /// Whether the serving process still exists.
    public var serverAlive: Bool {
        kill(pid_t(bitPattern: load(Header.serverPID)), 0) == 0 || errno != ESRCH
    }

    /// Sends request `op` and waits for its answer. Throws the server's error, `UNAVAILABLE` when
    /// the server closed the channel or is gone, `DEADLINE_EXCEEDED` after `timeout`.
    public func call(_ op: Op, timeout: Duration) throws(ServiceError) {
        guard load(Header.state) != Self.closed else { throw .unavailable("the step channel is closed: \(message)") }
        store(Header.op, op.rawValue)
        let number = load(Header.request) &+ 1
        store(Header.request, number)
        _ = robosim_futex_wake(word(Header.request))
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            let r = load(Header.response)
            if r == number { break }
            if load(Header.state) == Self.closed { throw .unavailable("the server closed the step channel: \(message)") }
            let left = deadline - clock.now
            guard left > .zero else { throw .deadlineExceeded("no answer through the step channel within \(timeout)") }
            if robosim_futex_wait(word(Header.response), r, min(left, .milliseconds(100)).nanoseconds) == 1, !serverAlive {
                throw .unavailable("the server (pid \(load(Header.serverPID))) is gone")
            }
        }
        let status = load(Header.status)
        guard status == 0 else { throw ServiceError(ServiceError.Code(rawValue: Int(status)) ?? .internal, message) }
    }
}

/// A step channel file that could not be made or mapped.
public struct ChannelError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Duration {
    /// Whole nanoseconds.
    var nanoseconds: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
