import ArgumentParser
import Foundation
import Logging
import Messaging
import ServiceLifecycle
import Viewer

/// `sim-bridge`: the live viewer for a server running elsewhere (or started without --viewer): the
/// Foxglove WebSocket bridge and the built-in page on one port, over the server's topics.
@main
struct SimBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-bridge",
        abstract: "Serve a RoboSim server's topics to Foxglove (ws://HOST:PORT, foxglove.websocket.v1) and the built-in page (http://HOST:PORT/).",
        discussion: """
            sim-bridge --server tcp://127.0.0.1:7700 --port 8765         # then open http://127.0.0.1:8765/ or Foxglove on ws://127.0.0.1:8765
            sim-bridge --port 8765 --host 0.0.0.0 --insecure               # reachable from other machines: no auth on the WebSocket
            """)

    @Option(help: "The server (default: SIM_SERVER, else tcp://127.0.0.1:7700).")
    var server = Node.defaultServer

    @Option(help: "The port to serve on (0: any free port, printed).")
    var port = 8765

    @Option(help: "The interface to listen on: loopback unless you name another.")
    var host = "127.0.0.1"

    @Flag(name: .customLong("no-client-publish"), help: "Refuse messages from viewers (Foxglove's clientPublish).")
    var noClientPublish = false

    @Option(name: .customLong("server-key"), help: "The server's CURVE public key (a .pub file or the Z85 text; needs --key). Default: ROBOSIM_SERVER_KEY.")
    var serverKey: String?

    @Option(help: "This bridge's key pair (a .secret file), allowed by the server. Default: ROBOSIM_KEY.")
    var key: String?

    @Flag(help: "Serve beyond loopback (--host): the viewer's WebSocket has no authentication, so anyone reaching it sees and sends topics.")
    var insecure = false

    func run() async throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        guard insecure || ListenAddress.isLoopbackHost(host) else {
            throw ValidationError("--host \(host) is beyond loopback and the viewer's WebSocket has no authentication: add --insecure to serve it anyway")
        }
        let security: ClientSecurity?
        do { security = try ClientSecurity.resolve(serverKey: serverKey, key: key) } catch { throw ValidationError(error.description) }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "sim-bridge")
        if !ListenAddress.isLoopbackHost(host) { logger.warning("serving the viewer beyond loopback without authentication (--insecure)") }
        let node = try Node(name: "sim_viewer_bridge", server: server, timeout: 10, security: security)
        var options = FoxgloveBridge.Options()
        options.clientPublish = !noClientPublish
        let bridge = FoxgloveBridge(node: node, options: options, logger: logger)
        bridge.start()
        let app = ViewerServer(bridge: bridge, host: host, port: port, logger: logger).application { bound in
            FileHandle.standardOutput.write(Data("sim-bridge: http://\(host):\(bound)/  (Foxglove: ws://\(host):\(bound))\n".utf8))
        }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        bridge.stop()
        node.close()
    }
}
