import CZeroMQ
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Watches one CURVE server socket through libzmq's socket monitor, for the handshakes that fail
/// before the ZAP handler is asked and so never reach it: a plaintext (NULL mechanism) client, a
/// CURVE client that encrypts to another server key, a connection dropped mid-handshake.
///
/// Created by `ZAPHandler.watch` before the socket binds; read on the handler's thread only.
/// libzmq's I/O thread blocks on an event it cannot queue (see `ZMQSocket.startMonitor`), so the
/// reader's queue holds `queueLimit` events and the handler reads it while the hub runs; the hub
/// stops the monitor when its thread ends, before the handler stops reading.
final class HandshakeMonitor {
    /// The events asked for: accepted and closed connections (their descriptors pair a failure
    /// with the peer) and the three kinds of failed handshake.
    static let events =
        ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
    /// Events queued for the reader before libzmq's I/O thread waits (about 150 bytes each).
    static let queueLimit: Int32 = 50_000
    /// Events read per `drain`, so that the handler thread answers ZAP requests in between.
    static let batch = 256

    /// The PAIR socket the events arrive on (poll it for readability).
    let reader: ZMQSocket
    private var tracker = HandshakeTracker()

    /// Starts the monitor of `socket` (call on its owner, before it binds) and connects the reader.
    init(watching socket: ZMQSocket) throws(ZMQError) {
        let endpoint = "inproc://robosim-handshakes-\(UUID().uuidString)"
        try socket.startMonitor(endpoint, events: Self.events)
        do throws(ZMQError) {
            reader = try ZMQSocket(socket.context, .pair)
            try reader.setOption(ZMQ_RCVHWM, Self.queueLimit)
            try reader.connect(endpoint)
        } catch {
            socket.stopMonitor()
            throw error
        }
    }

    /// Reads the waiting events (at most `batch`) and returns the failed handshakes they complete.
    func drain() -> [HandshakeTracker.Failure] {
        var events: [ZMQMonitorEvent] = []
        while events.count < Self.batch {
            guard let frames = try? reader.receiveMultipart(flags: .dontWait) else { break }
            if let event = ZMQMonitorEvent(frames: frames) { events.append(event) }
        }
        return events.isEmpty ? [] : tracker.consume(events, peer: Self.peerAddress)
    }

    /// The IP address of the peer of the accepted connection `fd`, or nil when `fd` is no longer
    /// a connection of the listener at `endpoint` (closed, or its number reused by something else).
    static func peerAddress(fd: Int32, endpoint: String) -> String? {
        var local = sockaddr_storage(), remote = sockaddr_storage()
        guard let localPort = address(of: fd, &local, { getsockname($0, $1, $2) })?.port,
            let listenPort = endpoint.split(separator: ":").last.flatMap({ UInt16($0) }), localPort == listenPort,
            let peer = address(of: fd, &remote, { getpeername($0, $1, $2) })
        else { return nil }
        return peer.host
    }

    private static func address(
        of fd: Int32, _ storage: inout sockaddr_storage,
        _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> (host: String, port: UInt16)? {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) == 0 }
        }
        guard ok else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let size = socklen_t(text.count)
        let string = { (chars: [CChar]) in String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                    var addr = a.pointee.sin_addr
                    guard inet_ntop(AF_INET, &addr, &text, size) != nil else { return nil }
                    return (string(text), UInt16(bigEndian: a.pointee.sin_port))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    var addr = a.pointee.sin6_addr
                    guard inet_ntop(AF_INET6, &addr, &text, size) != nil else { return nil }
                    return (string(text), UInt16(bigEndian: a.pointee.sin6_port))
                }
            }
        default:
            return nil
        }
    }
}

/// Pairs a socket monitor's events into failed handshakes, with the peer's address where it is
/// known. A plain value, fed in event order (tests feed it by hand).
///
/// libzmq's version 1 events name the listener, not the peer, and a failure carries no
/// descriptor. But one connection's engine sends its failure and then `DISCONNECTED` with its
/// descriptor, back to back (one I/O thread per hub context), and the listener sent `ACCEPTED`
/// with the same descriptor before: the peer is looked up (`getpeername`) when `ACCEPTED` is read
/// and kept by descriptor until `DISCONNECTED`. A connection that failed before the lookup (a
/// plaintext client on the same host fails within microseconds) has peer `?`.
struct HandshakeTracker {
    /// A handshake that failed before ZAP.
    struct Failure: Equatable, Sendable {
        /// What went wrong, for the log ("handshake failed: ...").
        var reason: String
        /// The peer's IP address, or `?` when it could not be learnt.
        var peer: String
        /// The listening endpoint the connection came to.
        var endpoint: String
    }

    /// Peers of connections still open, by descriptor: at most `peerLimit` (past that a new
    /// connection's peer is `?`).
    private(set) var peers: [UInt32: String] = [:]
    private var pending: (reason: String, endpoint: String)?
    static let peerLimit = 16_384

    /// Feeds `events` (in the order the monitor sent them); returns the failures they complete.
    /// `peer(fd, endpoint)` looks up the peer of an accepted connection.
    mutating func consume(_ events: [ZMQMonitorEvent], peer: (Int32, String) -> String?) -> [Failure] {
        var failures: [Failure] = []
        for (i, event) in events.enumerated() {
            switch event.event {
            case ZMQMonitorEvent.accepted:
                peers[event.value] = nil
                // The same descriptor accepted again later in this batch: this one is closed and
                // its number reused, so a lookup now would name the other connection's peer.
                let reused = events[(i + 1)...].contains { $0.event == ZMQMonitorEvent.accepted && $0.value == event.value }
                if !reused, peers.count < Self.peerLimit, let name = peer(Int32(bitPattern: event.value), event.endpoint) {
                    peers[event.value] = name
                }
            case ZMQMonitorEvent.disconnected:
                let name = peers.removeValue(forKey: event.value)
                if let p = pending {
                    failures.append(Failure(reason: p.reason, peer: name ?? "?", endpoint: p.endpoint))
                    pending = nil
                }
            default:
                guard let reason = Self.reason(event) else { continue }
                if let p = pending { failures.append(Failure(reason: p.reason, peer: "?", endpoint: p.endpoint)) }
                pending = (reason, event.endpoint)
            }
        }
        return failures
    }

    /// The log text for a failure event; nil for events that are not failures, and for ZAP
    /// status 400, which the ZAP handler sent and has already logged.
    static func reason(_ event: ZMQMonitorEvent) -> String? {
        switch event.event {
        case ZMQMonitorEvent.handshakeFailedProtocol:
            switch event.value {
            case ZMQMonitorEvent.mechanismMismatch: return "handshake failed: mechanism mismatch (a client without CURVE?)"
            case ZMQMonitorEvent.cryptographic: return "handshake failed: protocol error, a CURVE box did not open (wrong server key?)"
            case let code where code >> 28 == 2: return "handshake failed: authentication handler error \(hex(code))"
            case let code: return "handshake failed: protocol error \(hex(code)) (not a ZeroMQ client?)"
            }
        case ZMQMonitorEvent.handshakeFailedNoDetail:
            let cause = event.value == 0 ? "closed" : String(cString: strerror(Int32(bitPattern: event.value)))
            return "handshake failed: the connection ended mid-handshake (\(cause): "
                + "a client without CURVE that hung up first, a port check, or not a ZeroMQ client?)"
        case ZMQMonitorEvent.handshakeFailedAuth:
            return event.value == 400 ? nil : "handshake failed: authentication status \(event.value)"
        default:
            return nil
        }
    }

    private static func hex(_ code: UInt32) -> String { "0x" + String(code, radix: 16) }
}
