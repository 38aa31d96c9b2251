import CZeroMQ
import Foundation
import SwiftProtobuf
import Synchronization

/// Calls services on a RoboSim server. Thread-safe: calls from several threads are serialized.
/// `call` blocks the calling thread until the reply or the timeout.
public final class ServiceClient: Sendable {
    /// The server's service address (its ROUTER).
    public let server: String
    /// Default timeout of a call, in seconds.
    public let timeout: Double

    private struct State {
        var socket: ZMQSocket
        var nextID: UInt64
    }
    private let state: Mutex<State>
    private let context: ZMQContext
    /// The CURVE keys the socket uses (nil: plaintext).
    public let security: ClientSecurity?

    /// Connects (lazily: ZeroMQ connects in the background; a missing server shows as a timeout).
    /// With `security`, the socket is a CURVE client: a server that does not admit its key never
    /// answers, which shows as `DEADLINE_EXCEEDED`.
    public init(server: String, context: ZMQContext = .shared, timeout: Double = 5, security: ClientSecurity? = nil) throws(ServiceError) {
        self.server = server
        self.timeout = timeout
        self.context = context
        self.security = security
        do {
            let socket = try Self.makeSocket(server: server, context: context, security: security)
            state = Mutex(State(socket: socket, nextID: UInt64.random(in: 1...UInt64.max / 2)))
        } catch {
            throw .unavailable("cannot connect to \(server): \(error)")
        }
    }

    private static func makeSocket(server: String, context: ZMQContext, security: ClientSecurity?) throws(ZMQError) -> ZMQSocket {
        let socket = try ZMQSocket(context, .dealer)
        try security.apply(to: socket)
        try socket.connect(server)
        return socket
    }

    /// Calls `service` with a serialized request; returns the serialized response.
    /// Throws the server's `ServiceError`, or `DEADLINE_EXCEEDED` when no reply came in time.
    public func call(_ service: String, payload: [UInt8], timeout: Double? = nil) throws(ServiceError) -> [UInt8] {
        let limit = timeout ?? self.timeout
        let result: Result<[UInt8], ServiceError> = state.withLock { state in
            state.nextID &+= 1
            let id = withUnsafeBytes(of: state.nextID.bigEndian) { Array($0) }
            let silent = ServiceError.deadlineExceeded(
                "\(service): no reply from \(server) within \(limit) s (is sim-server running\(security == nil ? "" : ", and does it allow this client's key")?)")
            do {
                // A DEALER with no connected peer (a refused CURVE handshake drops the connection
                // until ZeroMQ retries) blocks in send: bound that by the call's deadline too.
                try state.socket.setOption(ZMQ_SNDTIMEO, Int32(max(0, min(limit * 1000, Double(Int32.max))).rounded(.up)))
                guard try state.socket.send(frames: [[], Array(service.utf8), payload, id]) else { return .failure(silent) }
                let deadline = Date().addingTimeInterval(limit)
                while true {
                    let remaining = deadline.timeIntervalSinceNow
                    guard remaining > 0, try state.socket.waitReadable(timeout: remaining) else {
                        return .failure(silent)
                    }
                    guard let frames = try state.socket.receiveMultipart(flags: .dontWait) else { continue }
                    // ["", status, payload, id]; replies to calls that timed out earlier carry another id.
                    guard frames.count == 4, frames[0].isEmpty, frames[3] == id else { continue }
                    if frames[1] == ServiceStatus.ok { return .success(frames[2]) }
                    if frames[1] == ServiceStatus.error, let e = try? Robosim_Error(serializedBytes: frames[2]) {
                        return .failure(ServiceError(e.code, e.message))
                    }
                    return .failure(.malformed("\(service): unreadable reply from \(server)"))
                }
            } catch {
                return .failure(.unavailable("\(service): \(error)"))
            }
        }
        return try result.get()
    }

    /// Calls `service` with a request message and decodes the response as `Response`.
    public func call<Response: SwiftProtobuf.Message>(
        _ service: String, _ request: some SwiftProtobuf.Message, as: Response.Type = Response.self, timeout: Double? = nil
    ) throws(ServiceError) -> Response {
        let bytes: [UInt8]
        do { bytes = try request.serializedBytes() } catch { throw .invalidArgument("cannot encode request: \(error)") }
        let reply = try call(service, payload: bytes, timeout: timeout)
        do { return try Response(serializedBytes: reply) } catch {
            throw .malformed("\(service): reply is not a valid \(rosTypeName(of: Response.self))")
        }
    }

    /// `/sim/describe`.
    public func describe(timeout: Double? = nil) throws(ServiceError) -> Robosim_DescribeResponse {
        try call("/sim/describe", Robosim_DescribeRequest(), timeout: timeout)
    }

    /// `/graph/list`.
    public func graph(timeout: Double? = nil) throws(ServiceError) -> Robosim_GraphListResponse {
        try call("/graph/list", Robosim_GraphListRequest(), timeout: timeout)
    }
}
