import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Messaging
import NIOCore
import ServiceLifecycle
import SwiftProtobuf

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
            guard let env = request.uri.queryParameters.get("env", as: Int.self), env >= 0, env < 1 << 20 else {
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
                guard offered.contains(Foxglove.subprotocol) else { return .dontUpgrade }
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

    /// Runs a blocking call on a thread of its own and answers with its JSON.
    static func json(_ body: @escaping @Sendable () throws -> String) async throws -> Response {
        let text: String = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do { continuation.resume(returning: try body()) } catch let error as ServiceError {
                    continuation.resume(throwing: HTTPError(.badGateway, message: "\(error)"))
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
