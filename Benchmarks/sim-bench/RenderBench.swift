import ArgumentParser
import Foundation
import Logging
import Messaging
import SimEngine
import SimServer
import Synchronization

/// Camera rendering: frames/s of one camera at several sizes beside MuJoCo's Python
/// `mujoco.Renderer` on the same scene, camera and settings in the same run; then a running server
/// with N envs x 1 camera at a rate, alongside physics, with and without a subscriber.
struct RenderBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Camera frames/s against mujoco.Renderer (Python), and cameras alongside physics in a server.",
        discussion: """
            Needs the venv's mujoco and PyOpenGL (scripts/setup.sh). Example:
              swift build -c release --product sim-bench
              .build/release/sim-bench render --repeats 3
            """)

    @Option(help: "Scene directory.")
    var scene = "Scenes/tbar_push"

    @Option(help: "Camera of the scene.")
    var camera = "overhead"

    @Option(help: "Image sizes WxH, comma-separated.")
    var sizes = "84x84,128x128,640x480"

    @Option(help: "Frames per measurement.")
    var frames = 300

    @Option(help: "Repetitions of each measurement; the median is reported.")
    var repeats = 3

    @Option(help: "Python with mujoco and PyOpenGL for the reference.")
    var python = ".venv/bin/python"

    @Option(name: .customLong("server-envs"), help: "Envs of the server measurement (0: skip it).")
    var serverEnvs = 8

    @Option(name: .customLong("server-size"), help: "Camera size WxH of the server measurement.")
    var serverSize = "128x128"

    @Option(name: .customLong("server-rate"), help: "Camera rate (Hz of sim time) of the server measurement.")
    var serverRate = 30.0

    @Option(name: .customLong("render-threads"), help: "Render threads of the server measurement (default: the server's).")
    var renderThreads: Int?

    @Option(help: "single (one camera against mujoco.Renderer), server (N envs alongside physics), or both, each in a process of its own (Mesa reads its settings once per process).")
    var part = "both"

    @Option(name: .customLong("server-seconds"), help: "Wall seconds per server measurement.")
    var serverSeconds = 5.0

    func run() throws {
        let parsed = try sizes.split(separator: ",").map(Self.size)
        switch part {
        case "both":
            for p in ["single", "server"] where p == "single" || serverEnvs > 0 {
                let child = Process()
                child.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
                var arguments = Array(CommandLine.arguments.dropFirst())
                if let k = arguments.firstIndex(of: "--part") { arguments.removeSubrange(k...min(k + 1, arguments.count - 1)) }
                child.arguments = arguments.filter { !$0.hasPrefix("--part=") } + ["--part", p]
                try child.run()
                child.waitUntilExit()
                guard child.terminationStatus == 0 else { throw ExitCode(child.terminationStatus) }
            }
            return
        case "server":
            try serverMeasurement()
            return
        case "single":
            break
        default:
            throw ValidationError("--part must be single, server or both")
        }
        print("render: \(scene) camera \(camera); shadows, reflections and multisampling off; median of \(repeats)")
        var ours: [[Double]] = Array(repeating: [], count: parsed.count), withDepth = ours, reference = ours
        var referenceVersion = "?"
        for _ in 0..<repeats {
            for (k, (w, h)) in parsed.enumerated() {
                ours[k].append(try Self.framesPerSecond(scene: scene, camera: camera, width: w, height: h, depth: false, frames: frames))
                withDepth[k].append(try Self.framesPerSecond(scene: scene, camera: camera, width: w, height: h, depth: true, frames: frames))
            }
            let (version, fps) = try pythonReference(sizes: parsed)
            referenceVersion = version
            for k in parsed.indices { reference[k].append(fps[k]) }
        }
        print("| size | mujoco.Renderer (Python, MuJoCo \(referenceVersion)) frames/s | RoboSim rgb frames/s | ratio | RoboSim rgb+depth frames/s |")
        print("|---|---:|---:|---:|---:|")
        for (k, (w, h)) in parsed.enumerated() {
            let r = median(reference[k]), o = median(ours[k]), d = median(withDepth[k])
            print(String(format: "| %dx%d | %.1f | %.1f | %.2fx | %.1f |", w, h, r, o, o / r, d))
        }
    }

    static func size(_ text: Substring) throws -> (Int, Int) {
        let parts = text.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ (1...4096).contains($0) }) else { throw ValidationError("size '\(text)': expected WxH") }
        return (parts[0], parts[1])
    }

    /// Frames/s of RoboSim's render path (snapshot restore, render, read-back, flip) on this thread.
    static func framesPerSecond(scene: String, camera: String, width: Int, height: Int, depth: Bool, frames: Int) throws -> Double {
        let renderer = try SceneRenderer(scene: scene, camera: camera, width: width, height: height, rgb: true, depth: depth, backend: .osmesa)
        for _ in 0..<max(5, frames / 20) { _ = try renderer.render() }
        let start = monotonic()
        for _ in 0..<frames { _ = try renderer.render() }
        return Double(frames) / (monotonic() - start)
    }

    func pythonReference(sizes: [(Int, Int)]) throws -> (String, [Double]) {
        let s = try Scene(directory: scene)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["Benchmarks/python/render_bench.py", "--model", s.modelPath, "--camera", camera,
                       "--sizes", sizes.map { "\($0.0)x\($0.1)" }.joined(separator: ","), "--frames", "\(frames)"]
        var environment = ProcessInfo.processInfo.environment
        environment["MUJOCO_GL"] = "osmesa"
        environment["PYOPENGL_PLATFORM"] = "osmesa"
        // Same Mesa settings as this process (sim-bench render sets none itself).
        if let lp = ProcessInfo.processInfo.environment["LP_NUM_THREADS"] { environment["LP_NUM_THREADS"] = lp }
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let results = json["results"] as? [[String: Any]]
        else { throw ValidationError("the Python reference failed (exit \(p.terminationStatus)); run Benchmarks/python/render_bench.py by hand") }
        return (json["mujoco"] as? String ?? "?", results.map { $0["fps"] as? Double ?? .nan })
    }

    /// A server of `serverEnvs` envs with one camera each at `serverRate` Hz, real time and as fast
    /// as possible, with a subscriber to every image topic; beside the same server without cameras.
    func serverMeasurement() throws {
        let (w, h) = try Self.size(Substring(serverSize))
        let folder = try Self.sceneWithOneCamera(scene, camera: camera, width: w, height: h, rate: serverRate)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        print("\nserver: render threads \(renderThreads.map(String.init) ?? "default"), LP_NUM_THREADS in the environment: \(ProcessInfo.processInfo.environment["LP_NUM_THREADS"] ?? "unset (the server picks)"); \(serverEnvs) envs x 1 camera \(w)x\(h) at \(serverRate) Hz sim time, a subscriber to every image_raw; \(serverSeconds) s each")
        print("| real-time factor asked | cameras | sim time / wall time | frames/s received | frames/s expected at that speed | skipped (latest wins) |")
        print("|---:|---|---:|---:|---:|---:|")
        for rtf in [1.0, 0.0] {
            for cameras in [false, true] {
                var rates: [Double] = [], received: [Double] = [], skipped = 0
                for _ in 0..<repeats {
                    let r = try runServer(scene: folder, rtf: rtf, cameras: cameras)
                    rates.append(r.speed)
                    received.append(r.framesPerSecond)
                    skipped += r.skipped
                }
                let speed = median(rates)
                print(String(format: "| %@ | %@ | %.2f | %@ | %@ | %@ |", rtf == 0 ? "0 (max)" : String(format: "%.0f", rtf), cameras ? "on" : "off", speed,
                             cameras ? String(format: "%.1f", median(received)) : "-",
                             cameras ? String(format: "%.1f", speed * serverRate * Double(serverEnvs)) : "-", cameras ? "\(skipped / repeats)" : "-"))
            }
        }
    }

    struct ServerRun {
        var speed: Double
        var framesPerSecond: Double
        var skipped: Int
    }

    func runServer(scene folder: String, rtf: Double, cameras: Bool) throws -> ServerRun {
        var config = SimServerConfiguration()
        config.scene = folder
        config.envCount = serverEnvs
        config.realTimeFactor = rtf
        config.listen = "tcp://127.0.0.1:*"
        config.renderBackend = cameras ? .osmesa : .none
        config.renderThreads = renderThreads
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let server = try SimServer(configuration: config, logger: logger)
        try server.start()
        defer { server.stop() }
        let node = try Node(name: "bench_viewer", server: server.hub.serviceEndpoint)
        defer { node.close() }
        let count = Atomic<Int>(0)
        var subscriptions: [CallbackSubscription] = []
        if cameras {
            for i in 0..<serverEnvs {
                subscriptions.append(try node.onMessage("/env_\(i)/camera/\(camera)/image_raw", SensorMsgs_Image.self) { _ in
                    count.add(1, ordering: .relaxed)
                })
            }
        }
        let client = try ServiceClient(server: server.hub.serviceEndpoint, timeout: 5)
        Thread.sleep(forTimeInterval: 1)   // subscriptions reach the hub; render contexts are made
        let t0 = monotonic(), s0 = try client.describe().simTime, c0 = count.load(ordering: .relaxed)
        Thread.sleep(forTimeInterval: serverSeconds)
        let t1 = monotonic(), s1 = try client.describe().simTime, c1 = count.load(ordering: .relaxed)
        let skipped = server.cameraStatistics?.skipped ?? 0
        withExtendedLifetime(subscriptions) {}
        return ServerRun(speed: (s1 - s0) / (t1 - t0), framesPerSecond: Double(c1 - c0) / (t1 - t0), skipped: skipped)
    }

    /// A copy of `scene` (its files linked) whose only camera is `camera` at the given size and rate.
    static func sceneWithOneCamera(_ scene: String, camera: String, width: Int, height: Int, rate: Double) throws -> String {
        let source = URL(fileURLWithPath: scene).standardizedFileURL
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-render-bench-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for item in try FileManager.default.contentsOfDirectory(atPath: source.path) where item != "scene.json" {
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(item), withDestinationURL: source.appendingPathComponent(item))
        }
        let data = try Data(contentsOf: source.appendingPathComponent("scene.json"))
        guard var manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cameras = manifest["cameras"] as? [[String: Any]],
              var entry = cameras.first(where: { $0["name"] as? String == camera })
        else { throw ValidationError("\(scene)/scene.json has no camera '\(camera)'") }
        entry["width"] = width
        entry["height"] = height
        entry["rate_hz"] = rate
        entry["observation"] = false
        manifest["cameras"] = [entry]
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted]).write(to: folder.appendingPathComponent("scene.json"))
        return folder.path
    }
}
