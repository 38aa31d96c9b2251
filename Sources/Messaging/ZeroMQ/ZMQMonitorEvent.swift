import CZeroMQ

/// One event of a socket monitor (`ZMQSocket.startMonitor`), in libzmq's version 1 format: a
/// 6-byte frame (event number as a native `UInt16`, value as a native `UInt32`) and a frame with
/// the endpoint. For a connection accepted by a listener, the endpoint is the listener's own
/// address (not the peer's): libzmq 4.3's version 1 events carry no peer address.
public struct ZMQMonitorEvent: Sendable, Equatable {
    /// One `ZMQ_EVENT_*` bit.
    public var event: UInt16
    /// The event's value: a file descriptor (`ACCEPTED`, `DISCONNECTED`), an errno
    /// (`HANDSHAKE_FAILED_NO_DETAIL`), a `ZMQ_PROTOCOL_ERROR_*` code
    /// (`HANDSHAKE_FAILED_PROTOCOL`) or a ZAP status (`HANDSHAKE_FAILED_AUTH`).
    public var value: UInt32
    /// The endpoint the event concerns (for a listener: the bound address, port resolved).
    public var endpoint: String

    public init(event: UInt16, value: UInt32, endpoint: String) {
        self.event = event
        self.value = value
        self.endpoint = endpoint
    }

    /// Decodes the two frames of one event; nil for anything else.
    public init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let head = frames[0]
        event = head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) }
        value = head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        endpoint = String(decoding: frames[1].prefix(256), as: UTF8.self)
    }

    /// `ZMQ_EVENT_ACCEPTED`: a listener accepted a connection; `value` is its descriptor.
    public static let accepted = UInt16(ZMQ_EVENT_ACCEPTED)
    /// `ZMQ_EVENT_DISCONNECTED`: a connection ended; `value` is its descriptor (still open when
    /// the event is sent, closed right after).
    public static let disconnected = UInt16(ZMQ_EVENT_DISCONNECTED)
    /// `ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL`: the connection failed mid-handshake; `value` is an errno.
    public static let handshakeFailedNoDetail = UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    /// `ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL`: a protocol error; `value` is a `ZMQ_PROTOCOL_ERROR_*`.
    public static let handshakeFailedProtocol = UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
    /// `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`: the ZAP handler refused; `value` is its status (300, 400, 500).
    public static let handshakeFailedAuth = UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

    /// `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`: the peers use different security mechanisms.
    public static let mechanismMismatch = UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
    /// `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`: a CURVE box did not open (for a server: the client
    /// encrypted to another server key).
    public static let cryptographic = UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
}
