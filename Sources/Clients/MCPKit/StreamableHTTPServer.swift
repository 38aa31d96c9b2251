import Foundation
import Hummingbird
import Logging
import MCP
import Messaging
import NIOCore
import ServiceLifecycle

/// MCP's streamable HTTP transport on one endpoint (`POST`, `GET`, `DELETE` on `/mcp`), served by
/// Hummingbird on loopback unless another host is named (`checkHost`: only with `--insecure`). Each `initialize` opens a session (its own
/// MCP server, transport and `SimSession`, so its own lease), named by the `Mcp-Session-Id` header;
/// a session ends on `DELETE`, after `idleTimeout` seconds without a request, or at shutdown, and
/// its lease is released then. The SDK's stateful transport does the protocol (SSE replies,
/// session and protocol-version checks, DNS-rebinding protection on loopback).
public struct StreamableHTTPServer: Sendable {
    public let link: SimLink
    public let host: String
    public let port: Int
    /// The MCP endpoint's path.
    public static let endpoint = "/mcp"
    /// Largest request body accepted (bytes); larger ones get 413.
    public static let maxBody = 4 << 20
    /// Most sessions open at once; an `initialize` beyond gets 503.
    public var maxSessions = 32
    /// Seconds without a request after which a session is closed.
    public var idleTimeout: Double = 1800
    let logger: Logger

    public init(link: SimLink, host: String = "127.0.0.1", port: Int, logger: Logger) {
        self.link = link
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// The endpoint has no authentication, so a `host` beyond loopback (anything but what
    /// `ListenAddress.isLoopbackHost` accepts: 127.x.x.x, `::1`, `localhost`) is refused unless
    /// `insecure` (`--insecure`). Call before serving; the error is one line.
    public static func checkHost(_ host: String, insecure: Bool) throws(ExposureRefused) {
        guard insecure || ListenAddress.isLoopbackHost(host) else { throw ExposureRefused(host: host) }
    }

    /// `checkHost` refused a host beyond loopback.
    public struct ExposureRefused: Error, CustomStringConvertible, Sendable {
        public let host: String
        public var description: String {
            "refusing to serve MCP on --host \(host): it is beyond loopback and the HTTP endpoint has no authentication (anyone who reaches it can drive the simulator); add --insecure to serve it anyway, or reach it through an SSH tunnel (docs/security.md)"
        }
    }

    /// The server as `Service`s for a ServiceGroup: the HTTP application and the idle-session reaper.
    /// `onRunning` gets the bound port. A host beyond loopback (allowed by `checkHost` with
    /// `insecure`) is logged as a warning.
    public func services(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) -> [any Service] {
        let loopback = ListenAddress.isLoopbackHost(host)
        if !loopback {
            logger.warning(
                "serving MCP beyond loopback without authentication (--insecure): anyone who reaches the port can drive the simulator; Host and Origin checks are off",
                metadata: ["mcp.host": "\(host)"])
        }
        let validation = StandardValidationPipeline(validators: [
            loopback ? OriginValidator.localhost() : OriginValidator.disabled,
            AcceptHeaderValidator(mode: .sseRequired),
            ContentTypeValidator(),
            ProtocolVersionValidator(),
            SessionValidator(),
        ])
        let sessions = HTTPSessions(link: link, validation: validation, maxSessions: maxSessions, logger: logger)
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body: ByteBuffer
            do { body = try await request.collectBody(upTo: Self.maxBody) } catch {
                return Response(
                    status: .contentTooLarge, body: .init(byteBuffer: ByteBuffer(string: "request body over \(Self.maxBody) bytes\n")))
            }
            let reply = await sessions.handle(Self.mcpRequest(request, body: body))
            return Self.response(reply)
        }
        router.post(RouterPath(Self.endpoint), use: handler)
        router.get(RouterPath(Self.endpoint), use: handler)
        router.delete(RouterPath(Self.endpoint), use: handler)
        let host = self.host, logger = self.logger
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "sim-mcp"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                logger.info("serving MCP over streamable HTTP", metadata: ["mcp.url": "http://\(host):\(bound)\(Self.endpoint)"])
                onRunning(bound)
            },
            logger: logger)
        return [Shutdown(application: app, sessions: sessions), Reaper(sessions: sessions, idleTimeout: idleTimeout)]
    }

    /// Hummingbird's request as the SDK's (headers joined per name; `Host` from the authority).
    static func mcpRequest(_ request: Request, body: ByteBuffer) -> MCP.HTTPRequest {
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { $0 + ", " + field.value } ?? field.value
        }
        if let authority = request.head.authority { headers["host"] = authority }
        return MCP.HTTPRequest(
            method: request.method.rawValue, headers: headers,
            body: body.readableBytes > 0 ? Data(body.readableBytesView) : nil, path: request.uri.path)
    }

    /// The SDK's response as Hummingbird's; an SSE stream is written as it comes.
    static func response(_ reply: MCP.HTTPResponse) -> Response {
        var headers = HTTPFields()
        for (name, value) in reply.headers {
            if let field = HTTPFields.Element.Name(name) { headers.append(HTTPFields.Element(name: field, value: value)) }
        }
        switch reply {
        case .stream(let stream, _):
            return Response(
                status: .init(code: reply.statusCode), headers: headers,
                body: ResponseBody { writer in
                    for try await chunk in stream { try await writer.write(ByteBuffer(bytes: chunk)) }
                    try await writer.finish(nil)
                })
        default:
            let body = reply.bodyData.map { ResponseBody(byteBuffer: ByteBuffer(bytes: $0)) } ?? ResponseBody()
            return Response(status: .init(code: reply.statusCode), headers: headers, body: body)
        }
    }

    /// The application, closing every session (and its streams) on graceful shutdown so that open
    /// SSE streams never hold the process up.
    struct Shutdown<Wrapped: Service>: Service {
        let application: Wrapped
        let sessions: HTTPSessions
        func run() async throws {
            try await withGracefulShutdownHandler {
                try await application.run()
            } onGracefulShutdown: {
                Task { await sessions.closeAll() }
            }
            await sessions.closeAll()
        }
    }

    /// Closes sessions idle for longer than `idleTimeout`, every 10 s.
    struct Reaper: Service {
        let sessions: HTTPSessions
        let idleTimeout: Double
        func run() async throws {
            // The sleep ends at once on graceful shutdown: the reaper never holds the process up.
            try? await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: .seconds(10))
                    await sessions.expire(idleFor: idleTimeout)
                }
            }
        }
    }
}

/// The open HTTP sessions by id.
actor HTTPSessions {
    struct Entry {
        let server: Server
        let transport: StatefulHTTPServerTransport
        let session: SimSession
        var lastUse: Date
    }
    private var entries: [String: Entry] = [:]
    private var opening = 0
    let link: SimLink
    let validation: any HTTPRequestValidationPipeline
    let maxSessions: Int
    let logger: Logger

    init(link: SimLink, validation: any HTTPRequestValidationPipeline, maxSessions: Int, logger: Logger) {
        self.link = link
        self.validation = validation
        self.maxSessions = maxSessions
        self.logger = logger
    }

    /// Hands a request to its session's transport; an `initialize` without a session opens one.
    func handle(_ request: MCP.HTTPRequest) async -> MCP.HTTPResponse {
        let id = request.header(HTTPHeaderName.sessionID)
        if let id, var entry = entries[id] {
            entry.lastUse = Date()
            entries[id] = entry
            let reply = await entry.transport.handleRequest(request)
            if request.method.uppercased() == "DELETE", reply.statusCode == 200 { await close(id) }
            return reply
        }
        if request.method.uppercased() == "POST", let body = request.body, Self.isInitialize(body) {
            return await open(request)
        }
        if id != nil { return .error(statusCode: 404, .invalidRequest("Not Found: no such session (closed or expired)")) }
        return .error(statusCode: 400, .invalidRequest("Bad Request: no \(HTTPHeaderName.sessionID) header, and not an initialize request"))
    }

    private func open(_ request: MCP.HTTPRequest) async -> MCP.HTTPResponse {
        guard entries.count + opening < maxSessions else {
            return .error(statusCode: 503, .internalError("Service Unavailable: \(maxSessions) sessions are open"))
        }
        opening += 1
        defer { opening -= 1 }
        let id = UUID().uuidString
        let transport = StatefulHTTPServerTransport(sessionIDGenerator: FixedID(id: id), validationPipeline: validation, logger: logger)
        let session = SimSession(link: link, id: "http-" + id, logger: logger)
        let server = await SimMCPServer.make(session: session)
        do {
            try await server.start(transport: transport)
        } catch {
            await transport.disconnect()
            return .error(statusCode: 500, .internalError("could not start a session: \(error)"))
        }
        entries[id] = Entry(server: server, transport: transport, session: session, lastUse: Date())
        let reply = await transport.handleRequest(request)
        if case .error = reply {
            await close(id)
        } else {
            logger.info("MCP session opened", metadata: ["mcp.session": "\(id)", "mcp.sessions": "\(entries.count)"])
        }
        return reply
    }

    /// Closes a session: its streams end, its server stops, its lease is released.
    func close(_ id: String) async {
        guard let entry = entries.removeValue(forKey: id) else { return }
        await entry.transport.disconnect()
        await entry.server.stop()
        await SimMCPServer.offloadClose(entry.session)
        logger.info("MCP session closed", metadata: ["mcp.session": "\(id)"])
    }

    func expire(idleFor seconds: Double) async {
        let now = Date()
        for (id, entry) in entries where now.timeIntervalSince(entry.lastUse) > seconds { await close(id) }
    }

    func closeAll() async {
        for id in Array(entries.keys) { await close(id) }
    }

    static func isInitialize(_ body: Data) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return false }
        return object["method"] as? String == "initialize" && object["id"] != nil
    }

    struct FixedID: SessionIDGenerator {
        let id: String
        func generateSessionID() -> String { id }
    }
}
