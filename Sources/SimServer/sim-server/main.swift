import ArgumentParser
import Foundation
import Logging
import Messaging
import SimEngine
import SimServer
import Viewer

@main
struct SimServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-server",
        abstract: "Load a scene and serve N parallel MuJoCo environments over ZeroMQ.",
        discussion: """
            Topics and services follow ROS 2 naming; clients find the data endpoints with /sim/describe.

            Examples:
              sim-server                                   # Scenes/tbar_push, 1 env, realtime
              sim-server Scenes/cartpole --envs 64 --mode lockstep
              simctl keys generate keys/server && simctl keys generate keys/clients/alice
              sim-server --listen tcp://0.0.0.0:7700 --key keys/server.secret --allow keys/clients
                                                           # reachable from other hosts, CURVE-encrypted,
                                                           # only allow-listed client keys (docs/security.md)
              SIM_SERVER=tcp://127.0.0.1:7800 sim-server   # address from the environment
            """)

    @Argument(help: "Scene directory.")
    var scene: String = "Scenes/tbar_push"

    @Option(help: "Number of parallel environments (default: the scene manifest's default_envs).")
    var envs: Int?

    @Option(help: "Worker threads stepping environments (default: one per core). Results do not depend on it.")
    var threads: Int?

    @Option(help: "realtime or lockstep.")
    var mode: SimServerConfiguration.Mode = .realtime

    @Option(help: "Real-time factor in realtime mode (0: as fast as possible).")
    var rtf: Double = 1

    @Option(help: "Service address (ROUTER); XPUB and XSUB take the next two ports. Default: SIM_SERVER, else tcp://127.0.0.1:7700.")
    var listen: String?

    @Option(name: .customLong("server"), help: ArgumentHelp("Same as --listen.", visibility: .hidden))
    var server: String?

    @Option(name: .customLong("plugin-path"), help: "Directory with plugin libraries (repeatable).")
    var pluginPaths: [String] = []

    @Option(help: "Base seed of every environment's randomness.")
    var seed: UInt64 = 0

    @Option(name: .customLong("clock-rate"), help: "/clock rate in Hz.")
    var clockRate: Double = 100

    @Option(name: .customLong("max-frame-bytes"), help: "Largest message frame accepted, in bytes.")
    var maxFrameBytes: Int = 64 << 20

    @Option(name: .customLong("render-backend"), help: "Offscreen rendering for cameras: auto (EGL with a GPU, else OSMesa; MUJOCO_GL=egl|osmesa picks), osmesa, egl or none.")
    var renderBackend: RenderBackend = .auto

    @Option(name: .customLong("render-threads"), help: "Render threads, each with its own GL context (default: one per core, at most 4).")
    var renderThreads: Int?

    @Option(name: .customLong("parent-pid"), help: ArgumentHelp("Stop (as on SIGTERM) when this process ends (for programs that start a server of their own).", visibility: .hidden))
    var parentPID: Int32?

    @Option(help: "Serve the live viewer on this port: the built-in page at http://HOST:PORT/ and Foxglove's WebSocket protocol (0: any free port). Off by default.")
    var viewer: Int?

    @Option(name: .customLong("viewer-host"), help: "The viewer's interface: loopback unless you name another.")
    var viewerHost = "127.0.0.1"

    @Option(help: "This server's key pair (a .secret file from simctl keys generate): all three sockets use CURVE. Default: ROBOSIM_KEY.")
    var key: String?

    @Option(help: "Client public keys admitted with --key: a .pub file, a file of keys (one a line) or a directory of *.pub files. Repeatable. Default: ROBOSIM_ALLOW (colon-separated).")
    var allow: [String] = []

    @Flag(help: "Allow listening beyond loopback without --key (and the viewer beyond loopback): plaintext, no authentication.")
    var insecure = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        if let envs, envs < 1 || envs > 100_000 { throw ValidationError("--envs must be in 1...100000") }
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be in 1...1024") }
        guard rtf >= 0, rtf.isFinite else { throw ValidationError("--rtf must be a finite number >= 0") }
        guard clockRate > 0, clockRate <= 10_000 else { throw ValidationError("--clock-rate must be in (0, 10000]") }
        if let renderThreads, renderThreads < 1 || renderThreads > 64 { throw ValidationError("--render-threads must be in 1...64") }
        guard maxFrameBytes >= 1024 else { throw ValidationError("--max-frame-bytes must be at least 1024") }
        if let viewer, !(0...65535).contains(viewer) { throw ValidationError("--viewer must be a port, 0-65535") }
        if viewer != nil, !insecure, !ListenAddress.isLoopbackHost(viewerHost) {
            throw ValidationError("--viewer-host \(viewerHost) is beyond loopback and the viewer's WebSocket has no authentication: add --insecure to serve it anyway")
        }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var config = SimServerConfiguration()
        config.scene = scene
        config.envCount = envs
        config.threads = threads
        config.renderBackend = renderBackend
        config.renderThreads = renderThreads
        config.mode = mode
        config.realTimeFactor = rtf
        config.listen = listen ?? server ?? Node.defaultServer
        config.pluginPaths = pluginPaths
        config.seed = seed
        config.clockRateHz = clockRate
        config.maxFrameBytes = maxFrameBytes
        config.allowInsecure = insecure
        do {
            config.security = try ServerSecurity.resolve(key: key, allow: allow)
            var application = SimServerApplication(configuration: config, parentPID: parentPID)
            if let viewer {
                let host = viewerHost
                if !ListenAddress.isLoopbackHost(host) {
                    Logger(label: "robosim.viewer").warning("the viewer listens beyond loopback without authentication (--insecure)", metadata: ["viewer.host": "\(host)"])
                }
                application.companions = { server in
                    let bridge = FoxgloveBridge(node: try Node(name: "sim_viewer", hub: server.hub))
                    bridge.start()
                    return [ViewerServer(bridge: bridge, host: host, port: viewer).application { bound in
                        FileHandle.standardError.write(Data("sim-server: viewer on http://\(host):\(bound)/ (Foxglove: ws://\(host):\(bound))\n".utf8))
                    }]
                }
            }
            try await application.run()
        } catch {
            // One line naming the file, the place and the problem; exit code 1.
            FileHandle.standardError.write(Data("sim-server: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

extension SimServerConfiguration.Mode: ExpressibleByArgument {}
extension RenderBackend: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
