import Foundation
import Logging
import MCP
import Messaging
import ServiceLifecycle

/// Builds the MCP server of one session (the tool list and the tool calls of a `SimSession`), and
/// serves one session over stdio: JSON-RPC on stdin and stdout, nothing else written to stdout.
public enum SimMCPServer {
    /// What the server tells clients at initialization.
    public static let instructions = """
        Tools for a RoboSim simulator (MuJoCo, N parallel envs). Start with describe_server: it gives the scene, \
        mode, task (observation and action names, units, bounds), cameras and topics. get_camera_frame shows an \
        env. On a lockstep server, lease_envs before reset_envs, step_envs or move_end_effector; the lease ends \
        with release_envs or the session. Commands pass the server's safety layer: a refusal is a tool error \
        with the server's reason. Positions are metres in the world frame, angles radians.
        """

    /// A server for one session: `tools/list` and `tools/call` (the calls go to `session`).
    public static func make(session: SimSession) async -> Server {
        let server = Server(
            name: "sim-mcp", version: RoboSimVersion.string, title: "RoboSim simulator", instructions: instructions,
            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: SimTools.all) }
        await server.withMethodHandler(CallTool.self) { params in
            try await session.call(params.name, params.arguments)
        }
        return server
    }

    /// Serves one session on stdin/stdout until the client closes stdin or a SIGINT/SIGTERM comes,
    /// then releases the session's lease.
    public static func runStdio(link: SimLink, logger: Logger) async throws {
        let session = SimSession(link: link, id: "stdio-\(ProcessInfo.processInfo.processIdentifier)", logger: logger)
        let server = await make(session: session)
        let transport = StdioTransport(logger: logger)
        try await server.start(transport: transport)
        logger.info("serving MCP on stdio", metadata: ["sim.server": "\(link.server)"])
        // The session ends when the client closes stdin (the service returns) or on a signal.
        let service = ServiceGroupConfiguration.ServiceConfiguration(
            service: StdioService(server: server), successTerminationBehavior: .gracefullyShutdownGroup)
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await offloadClose(session)
            throw error
        }
        await offloadClose(session)
    }

    /// Releases a session's lease off the cooperative pool (the release blocks on the server).
    static func offloadClose(_ session: SimSession) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                session.close()
                continuation.resume()
            }
        }
    }

    /// The stdio session as a `Service`: runs until the transport ends; graceful shutdown stops it.
    struct StdioService: Service {
        let server: Server
        func run() async throws {
            await withGracefulShutdownHandler {
                await server.waitUntilCompleted()
            } onGracefulShutdown: {
                Task { await server.stop() }
            }
        }
    }
}
