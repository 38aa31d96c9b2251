import Foundation
import Logging
import Synchronization

/// A ZeroMQ authentication (ZAP, RFC 27) handler: a REP socket on `inproc://zeromq.zap.01` in the
/// hub's context, answered by a thread of its own. It admits CURVE handshakes in the `robosim`
/// domain whose client key is allow-listed and refuses every other one, logging each refusal
/// (key prefix and peer address) at most `logBurst` times per burst window, so that a flood of
/// handshakes cannot fill the log; the rest are counted and summed up in the next line.
///
/// The same thread reads the socket monitors of the hub's sockets (`watch`): handshakes that fail
/// before ZAP is asked (a plaintext client, a wrong server key) are logged and counted the same way.
///
/// The socket is bound in `init`, before the hub binds its own sockets, and stays bound until the
/// handler is deinitialized (with the hub): without a handler libzmq would admit any client key.
final class ZAPHandler: @unchecked Sendable {
    // Invariant: `socket` and `monitors` are used by the handler thread only, once `start()` has
    // run; before that, `monitors` grows in `watch` (during `Hub.init`).
    private let socket: ZMQSocket
    private var monitors: [HandshakeMonitor] = []
    private let allowed: Set<[UInt8]>
    private let logger: Logger
    private let running = Atomic<Bool>(false)
    private let done = NSCondition()
    private let threadDone = Mutex<Bool>(true)
    /// Handshakes admitted and refused so far.
    let admitted = Atomic<UInt64>(0)
    let refused = Atomic<UInt64>(0)

    /// Refusal lines logged per `logWindow` seconds.
    static let logBurst = 10
    static let logWindow = 10.0
    /// The endpoint libzmq asks (fixed by RFC 27).
    static let endpoint = "inproc://zeromq.zap.01"

    init(context: ZMQContext, security: ServerSecurity, logger: Logger) throws(HubError) {
        self.logger = logger
        allowed = Set(security.allowedClients.compactMap { CurveKey.decode($0) })
        do {
            socket = try ZMQSocket(context, .rep)
            try socket.bind(Self.endpoint)
        } catch {
            throw HubError(
                "cannot start the authentication handler (\(error)): another secure hub already uses this ZeroMQ context; give each its own ZMQContext"
            )
        }
    }

    /// Logs and counts the handshakes of `socket` (one of the hub's CURVE server sockets) that fail
    /// before ZAP. Call before `start()` and before `socket` binds, on the socket's owner.
    func watch(_ socket: ZMQSocket) throws(ZMQError) {
        precondition(!running.load(ordering: .acquiring), "watch a socket before the ZAP handler starts")
        monitors.append(try HandshakeMonitor(watching: socket))
    }

    func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        threadDone.withLock { $0 = false }
        let thread = Thread { [self] in
            loop()
            done.lock()
            threadDone.withLock { $0 = true }
            done.broadcast()
            done.unlock()
        }
        thread.name = "robosim.hub.zap"
        thread.start()
    }

    /// Stops the thread (the socket stays bound: handshakes then wait, never pass). Idempotent.
    func stop() {
        running.store(false, ordering: .releasing)
        done.lock()
        while !threadDone.withLock({ $0 }) { done.wait() }
        done.unlock()
    }

    /// Refusal lines logged in the current burst window, and refusals left out of the log since
    /// the last line. Handler thread only.
    private struct LogWindow {
        var start: Double
        var logged = 0
        var unlogged = 0
    }

    private func loop() {
        var window = LogWindow(start: HubCore.now())
        var poller = ZMQPoller()
        let zapIndex = poller.add(socket)
        let monitorIndices = monitors.map { poller.add($0.reader) }
        while running.load(ordering: .acquiring) {
            do {
                guard try poller.poll(timeoutMs: 100) > 0 else { continue }
            } catch {
                Thread.sleep(forTimeInterval: 0.01)  // EINTR; ETERM only once the hub is gone
                continue
            }
            if poller.isReadable(zapIndex) { answer(&window) }
            for (monitor, index) in zip(monitors, monitorIndices) where poller.isReadable(index) {
                for failure in monitor.drain() {
                    let metadata: Logger.Metadata = [
                        "zap.key": "none", "zap.peer": "\(failure.peer)", "zap.reason": "\(failure.reason)",
                        "zap.endpoint": "\(failure.endpoint)",
                    ]
                    refuse(metadata, &window)
                }
            }
        }
    }

    /// Answers one ZAP request, if one is waiting.
    private func answer(_ window: inout LogWindow) {
        guard let frames = try? socket.receiveMultipart(flags: .dontWait) else { return }
        let verdict = judge(frames)
        let requestID = frames.count > 1 ? frames[1] : []
        let reply: [[UInt8]] = [
            Array("1.0".utf8), requestID, Array((verdict.ok ? "200" : "400").utf8), Array((verdict.ok ? "OK" : verdict.reason).utf8),
            verdict.ok ? Array(verdict.key.utf8) : [], [],
        ]
        // A REP socket must send before it can receive again: retry a send that failed (EINTR),
        // else every later handshake would wait on a handler that can no longer read.
        var sent = false
        for _ in 0..<100 where running.load(ordering: .acquiring) {
            if (try? socket.send(frames: reply)) != nil {
                sent = true
                break
            }
            Thread.sleep(forTimeInterval: 0.001)
        }
        if !sent { logger.error("could not answer a ZAP request: handshakes may wait") }
        if verdict.ok {
            admitted.add(1, ordering: .relaxed)
            return
        }
        refuse(
            [
                "zap.key": "\(verdict.key.isEmpty ? "none" : CurveKey.prefix(verdict.key))", "zap.peer": "\(verdict.peer)",
                "zap.reason": "\(verdict.reason)",
            ],
            &window)
    }

    /// Counts a refusal and logs it, unless this burst window has had its `logBurst` lines.
    private func refuse(_ metadata: Logger.Metadata, _ window: inout LogWindow) {
        let total = refused.add(1, ordering: .relaxed).newValue
        let now = HubCore.now()
        if now - window.start >= Self.logWindow { window = LogWindow(start: now, unlogged: window.unlogged) }
        guard window.logged < Self.logBurst else {
            window.unlogged += 1
            return
        }
        window.logged += 1
        var metadata = metadata
        metadata["zap.refused_total"] = "\(total)"
        if window.unlogged > 0 { metadata["zap.unlogged"] = "\(window.unlogged)" }
        window.unlogged = 0
        logger.warning("refused a client", metadata: metadata)
    }

    private struct Verdict {
        var ok: Bool
        var reason: String
        var key: String
        var peer: String
    }

    /// RFC 27 request: [version, request id, domain, address, identity, mechanism, credentials...].
    private func judge(_ frames: [[UInt8]]) -> Verdict {
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
            return Verdict(ok: false, reason: "malformed ZAP request", key: "", peer: "?")
        }
        let text = { (b: [UInt8]) in String(decoding: b, as: UTF8.self) }
        let peer = String(text(frames[3]).prefix(64))
        guard text(frames[2]) == ServerSecurity.zapDomain else { return Verdict(ok: false, reason: "unknown domain", key: "", peer: peer) }
        guard text(frames[5]) == "CURVE", frames.count == 7, frames[6].count == 32 else {
            return Verdict(ok: false, reason: "not a CURVE handshake", key: "", peer: peer)
        }
        let key = CurveKey.encode(frames[6]) ?? ""
        guard allowed.contains(frames[6]) else { return Verdict(ok: false, reason: "key not allowed", key: key, peer: peer) }
        return Verdict(ok: true, reason: "", key: key, peer: peer)
    }
}
