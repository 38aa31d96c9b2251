import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import Messaging
import NIOCore
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// The viewer's one port: the Foxglove WebSocket protocol (subprotocol `foxglove.websocket.v1`),
/// the built-in page at `/`, and a small JSON API the page uses (`/api/describe`, `/api/graph`,
/// `/api/stats`; POST `/api/pause`, `/api/resume`, `/api/reset?env=K`). Loopback unless asked.
public struct ViewerServer: Sendable {
    public let bridge: FoxgloveBridge
    public let host: String
    public let port: Int
    let logger: Logger

    /// Largest message a client may send (a command, a subscribe list).
    public static let maxClientMessage = 1 << 20

    /// Web pages, besides the viewer's own, allowed to open its WebSocket (Foxglove's web app).
    /// A browser sends its page's Origin; programs send none and are always allowed.
    public static let allowedOrigins: Set<String> = ["https://app.foxglove.dev", "https://studio.foxglove.dev"]

    /// The header the page sends with its POSTs: a page from elsewhere cannot send it without
    /// CORS's permission, which the viewer never gives.
    public static let postHeader = "X-RoboSim-Viewer"

    /// API calls (each holds a thread while the server answers) in flight at once; more get 503.
    static let maxAPICalls = 8

    public init(bridge: FoxgloveBridge, host: String = "127.0.0.1", port: Int, logger: Logger = Logger(label: "robosim.viewer")) {
        self.bridge = bridge
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// The viewer as a `Service` for a ServiceGroup (sim-server runs it beside the simulation,
    /// sim-bridge alone). On graceful shutdown it closes every viewer's session first, so a viewer
    /// that stopped reading never holds the process up. `onRunning` gets the bound port.
    public func application(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) -> some Service {
        Shutdown(application: http(onRunning: onRunning), bridge: bridge)
    }

    struct Shutdown<Wrapped: Service>: Service {
        let application: Wrapped
        let bridge: FoxgloveBridge
        func run() async throws {
            try await withGracefulShutdownHandler {
                try await application.run()
            } onGracefulShutdown: {
                bridge.stop()
            }
        }
    }

    func http(onRunning: @escaping @Sendable (Int) -> Void) -> some Service {
        let bridge = self.bridge
        let router = Router()
        let guardrail = RequestGuard(loopback: Self.isLoopback(host))
        router.middlewares.add(guardrail)
        router.get("/") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: ViewerPage.html)))
        }
        router.get("/api/describe") { _, _ -> Response in
            try await Self.json { try bridge.node.client.describe(timeout: 5).jsonString() }
        }
        router.get("/api/graph") { _, _ -> Response in
            try await Self.json { try bridge.node.client.graph(timeout: 5).jsonString() }
        }
        router.get("/api/stats") { _, _ -> Response in
            try await Self.json {
                let object: [String: Any] = ["clients": bridge.statistics(), "channels": bridge.channels.count]
                return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            }
        }
        for (path, service) in [("/api/pause", "/sim/pause"), ("/api/resume", "/sim/resume")] {
            router.post(RouterPath(path)) { _, _ -> Response in
                try await Self.json {
                    let _: Robosim_Empty = try bridge.node.client.call(service, Robosim_Empty(), timeout: 5)
                    return "{}"
                }
            }
        }
        router.post("/api/reset") { request, _ -> Response in
            guard let env = request.uri.queryParameters.get("env", as: Int.self), env >= 0, env < 1 << 16 else {
                throw HTTPError(.badRequest, message: "reset needs ?env=K, an env index")
            }
            return try await Self.json {
                var r = Robosim_ResetRequest()
                r.envIds = [UInt32(env)]
                let _: Robosim_ResetResponse = try bridge.node.client.call("/sim/reset", r, timeout: 10)
                return "{}"
            }
        }
        let logger = self.logger
        // Frames from clients over 1 MiB close their connection; larger messages to them go in 1 MiB fragments.
        var configuration = HTTP1WebSocketUpgradeChannel.Configuration()
        configuration = .init(http1: configuration.http1, ws: .init(maxFrameSize: Self.maxClientMessage, autoPing: .enabled(timePeriod: .seconds(30))))
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(configuration: configuration) { request, _, _ in
                // The client names the subprotocols it speaks; the bridge speaks one.
                let offered = request.headerFields[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",") }
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                guard offered.contains(Foxglove.subprotocol), RequestGuard.originAllowed(request) else { return .dontUpgrade }
                return .upgrade([.secWebSocketProtocol: Foxglove.subprotocol]) { inbound, outbound, _ in
                    guard let session = bridge.connect() else {
                        try await outbound.write(.text(Foxglove.status(level: 2, message: "too many viewers")))
                        return
                    }
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            while let frame = await session.next() {
                                switch frame {
                                case .text(let text): try await outbound.write(.text(text))
                                case .binary(let bytes): try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                                }
                            }
                        }
                        group.addTask {
                            for try await message in inbound.messages(maxSize: Self.maxClientMessage) {
                                switch message {
                                case .text(let text): bridge.receive(text: text, from: session)
                                case .binary(let buffer): bridge.receive(binary: Array(buffer.readableBytesView), from: session)
                                }
                            }
                        }
                        group.addTask {
                            // The bridge closed the session (shutdown, or a client that left control
                            // messages unread): end it even while a write waits on the socket.
                            while !session.outbox.isFinished { try await Task.sleep(for: .milliseconds(200)) }
                        }
                        // Either side ending ends the session: the other one stops with it.
                        _ = try? await group.next()
                        bridge.disconnect(session)
                        group.cancelAll()
                    }
                }
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "robosim-viewer"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                logger.info("viewer on http://\(host):\(bound)/ (Foxglove: ws://\(host):\(bound))")
                onRunning(bound)
            },
            logger: logger
        )
    }

    static func isLoopback(_ host: String) -> Bool { ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) }

    private static let apiCalls = Atomic<Int>(0)

    /// Runs a blocking call on a thread of its own and answers with its JSON; at most
    /// `maxAPICalls` at once (503 beyond). A request the server refuses is a 400.
    static func json(_ body: @escaping @Sendable () throws -> String) async throws -> Response {
        guard apiCalls.add(1, ordering: .relaxed).newValue <= maxAPICalls else {
            apiCalls.subtract(1, ordering: .relaxed)
            throw HTTPError(.serviceUnavailable, message: "busy: try again")
        }
        defer { apiCalls.subtract(1, ordering: .relaxed) }
        let text: String = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do { continuation.resume(returning: try body()) } catch let error as ServiceError {
                    let status: HTTPResponse.Status = error.code == .invalidArgument || error.code == .failedPrecondition ? .badRequest : .badGateway
                    continuation.resume(throwing: HTTPError(status, message: "\(error)"))
                } catch {
                    continuation.resume(throwing: HTTPError(.internalServerError, message: "\(error)"))
                }
            }
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

extension FoxgloveBridge {
    /// A text message from a client: parsed, then handled; a refusal goes back as an error status.
    public func receive(text: String, from session: Session) {
        do throws(Foxglove.Refusal) { receive(try Foxglove.parse(text: text), from: session) } catch {
            session.outbox.control(.text(Foxglove.status(level: 2, message: error.description)))
        }
    }

    public func receive(binary: [UInt8], from session: Session) {
        do throws(Foxglove.Refusal) { receive(try Foxglove.parse(binary: binary), from: session) } catch {
            session.outbox.control(.text(Foxglove.status(level: 2, message: error.description)))
        }
    }
}

/// What a browser may do: pages served elsewhere cannot use the viewer through the user's browser.
/// GETs need a loopback Host while the viewer listens on loopback (no DNS rebinding); POSTs need the
/// viewer's own header (a cross-site page cannot send it without CORS's leave) and, from a browser,
/// the viewer's own Origin.
struct RequestGuard: RouterMiddleware {
    typealias Context = BasicRequestContext
    let loopback: Bool
    static let postField = HTTPField.Name(ViewerServer.postHeader)!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if loopback {
            let host = request.head.authority ?? ""
            let name = host.hasPrefix("[") ? String(host.prefix { $0 != "]" }) + "]" : String(host.prefix { $0 != ":" })
            guard ViewerServer.isLoopback(name) else { throw HTTPError(.forbidden, message: "the viewer answers loopback names only") }
        }
        if request.method == .post {
            guard request.headers[RequestGuard.postField] != nil else {
                throw HTTPError(.forbidden, message: "POST needs the \(ViewerServer.postHeader) header")
            }
            if let origin = request.headers[.origin], !Self.sameOrigin(origin, request) { throw HTTPError(.forbidden, message: "cross-origin POST") }
        }
        return try await next(request, context)
    }

    static func sameOrigin(_ origin: String, _ request: Request) -> Bool {
        let host = request.head.authority ?? ""
        return origin == "http://\(host)"
    }

    /// A WebSocket upgrade from a browser page: the viewer's own page or Foxglove's web app.
    static func originAllowed(_ request: HTTPRequest) -> Bool {
        guard let origin = request.headerFields[.origin] else { return true }
        let host = request.authority ?? ""
        return origin == "http://\(host)" || ViewerServer.allowedOrigins.contains(origin)
    }
}
