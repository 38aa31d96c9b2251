import ArgumentParser
import ClientKit
import Foundation
import Logging
import MCPKit
import ServiceLifecycle

/// `sim-mcp`: the simulator as MCP tools for agents, over stdio (default) or streamable HTTP.
@main
struct SimMCP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-mcp",
        abstract: "Serve a RoboSim server as Model Context Protocol tools (stdio, or streamable HTTP on loopback).",
        discussion: """
            Tools: \(SimTools.names.joined(separator: ", ")).
            Logs go to stderr; in stdio mode stdout carries only MCP messages.

            Examples:
              sim-mcp --server tcp://127.0.0.1:7700     # stdio, as an MCP client's subprocess
              sim-mcp --http 8800                        # http://127.0.0.1:8800/mcp
              sim-mcp --http 8800 --host 0.0.0.0 --insecure   # beyond loopback: no authentication on the endpoint
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Serve streamable HTTP on this port instead of stdio (0: any free port, printed).")
    var http: Int?

    @Option(help: "With --http: the interface to listen on; loopback unless you name another (which needs --insecure).")
    var host = "127.0.0.1"

    @Flag(help: "With --http: allow a --host beyond loopback. The endpoint has no authentication: anyone reaching it drives the simulator.")
    var insecure = false

    @Option(help: "With --http: seconds without a request after which a session is closed (its lease released).")
    var idleTimeout: Double = 1800

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        if let http, !(0...65535).contains(http) { throw ValidationError("--http must be a port, 0-65535") }
        guard idleTimeout >= 10, idleTimeout <= 86400 else { throw ValidationError("--idle-timeout must be 10-86400 seconds") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        // Not a ValidationError: one line, without the usage text.
        if http != nil { try StreamableHTTPServer.checkHost(host, insecure: insecure) }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sim-mcp")
        let link = SimLink(server: connection.address, timeout: connection.timeout, security: try connection.security, logger: logger)
        defer { link.close() }
        guard let port = http else {
            try await SimMCPServer.runStdio(link: link, logger: logger)
            return
        }
        var server = StreamableHTTPServer(link: link, host: host, port: port, logger: logger)
        server.idleTimeout = idleTimeout
        let host = self.host
        let services = server.services { bound in
            FileHandle.standardOutput.write(Data("sim-mcp: http://\(host):\(bound)\(StreamableHTTPServer.endpoint)\n".utf8))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
