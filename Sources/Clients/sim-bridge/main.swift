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
            sim-bridge --port 8765 --host 0.0.0.0                          # reachable from other machines: only when asked
            """)

    @Option(help: "The server (default: SIM_SERVER, else tcp://127.0.0.1:7700).")
    var server = Node.defaultServer

    @Option(help: "The port to serve on (0: any free port, printed).")
    var port = 8765

    @Option(help: "The interface to listen on: loopback unless you name another.")
    var host = "127.0.0.1"

    @Flag(name: .customLong("no-client-publish"), help: "Refuse messages from viewers (Foxglove's clientPublish).")
    var noClientPublish = false

    func run() async throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "sim-bridge")
        let node = try Node(name: "sim_viewer_bridge", server: server, timeout: 10)
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
