import ArgumentParser
import CBenchReference
import Foundation
import Logging
import Messaging
import SimEngine
import SimServer

/// Physics steps per second of the engine beside a raw MuJoCo C loop on the same model, in the
/// same run; and the time from process start to the first `/sim/describe` answer.
///
/// The engine is driven through its public API only (`World` is internal), two ways:
/// - engine loop: realtime mode at real-time factor 0, so the step loop steps every env back to
///   back with no service call in the path (each control step: `decimation` mj_step calls per env,
///   task pre/post-step, mj_kinematics, and the /clock publish); timed by reading the loop's sim
///   time through `SimServer.describe()`, aligned on control-step boundaries.
/// - /sim/step: lockstep mode, K calls stepping every env, each waiting for its answer.
struct PhysicsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "physics",
        abstract: "Engine physics steps/s beside a raw MuJoCo C loop, and sim-server start-up time.",
        discussion: """
            Rates are physics steps per second: env control steps x decimation, summed over envs.
            The number of control steps per (scene, envs) is fixed so that the raw C loop on one
            thread takes about --seconds; every variant then runs that many.

            Examples:
              sim-bench physics
              sim-bench physics --scene Scenes/cartpole --envs 1,64 --repeats 5
              sim-bench physics --transport tcp --startup-runs 0
            """)

    /// How `/sim/step` calls reach the hub.
    enum Transport: String, ExpressibleByArgument, CaseIterable {
        /// The hub's `inproc://` endpoint, in the hub's context.
        case inproc
        /// The hub's loopback TCP endpoint, from a client with its own context (as another process).
        case tcp
    }

    @Option(name: .customLong("scene"), help: "Scene directory (repeatable).")
    var scenes: [String] = ["Scenes/tbar_push", "Scenes/cartpole"]

    @Option(help: "Env counts, comma-separated.")
    var envs: String = "1,8,64"

    @Option(help: "Seconds the raw C loop on one thread should take; fixes the control steps of every variant.")
    var seconds: Double = 1

    @Option(help: "Repetitions of each measurement; the median is reported.")
    var repeats: Int = 3

    @Option(help: "How /sim/step calls reach the hub: inproc or tcp.")
    var transport: Transport = .inproc

    @Option(name: .customLong("max-foreign-cores"), help: "Most CPU (in cores) other processes may use during a measurement before it is taken again.")
    var maxForeignCores: Double = 0.1

    @Option(help: "Attempts per measurement when other processes disturb it; the least disturbed one is kept.")
    var attempts: Int = 5

    @ArgumentParser.Flag(help: "Print every measurement to standard error as it is taken.")
    var verbose = false

    @Option(name: .customLong("startup-runs"), help: "Runs of the start-up measurement per scene (0: skip it).")
    var startupRuns: Int = 5

    @Option(name: .customLong("startup-envs"), help: "Envs of the sim-server processes in the start-up measurement.")
    var startupEnvs: Int = 64

    var envCounts: [Int] { envs.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        guard !envCounts.isEmpty, envCounts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--envs must list env counts >= 1") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be > 0") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be >= 1") }
        guard maxForeignCores > 0, attempts >= 1 else { throw ValidationError("--max-foreign-cores must be > 0 and --attempts >= 1") }
        guard startupRuns >= 0, startupEnvs >= 1 else { throw ValidationError("--startup-runs must be >= 0 and --startup-envs >= 1") }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        print("# sim-bench physics: MuJoCo \(String(cString: cbench_mujoco_version())), \(ProcessInfo.processInfo.activeProcessorCount) cores, median of \(repeats); rates in physics steps/s; ratios are medians of per-repetition ratios; load average \(Self.loadAverage)")
        var loopRows: [String] = [], serviceRows: [String] = [], notes: [String] = []
        var load = MachineLoad(limit: maxForeignCores, attempts: attempts)
        for scenePath in scenes {
            let scene = try Scene(directory: scenePath)
            var error = [CChar](repeating: 0, count: 1000)
            guard let model = cbench_load(scene.modelPath, &error, Int32(error.count)) else {
                let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw ValidationError("\(scene.modelPath): \(message)")
            }
            defer { cbench_free(model) }
            let decimation = scene.manifest.decimation
            for n in envCounts {
                load.waitForQuiet()
                let k = controlSteps(model, envs: n, decimation: decimation)
                var runs: [[Variant: Double]] = []
                var ends = 0, envSteps = 0
                var cores: [Int: [Double]] = [:]
                for _ in 0..<repeats {
                    var rates: [Variant: Double] = [:]
                    for threads in [1, 2] {
                        let elapsed = load.measure { cbench_run(model, Int32(n), Int32(threads), k, Int32(decimation), max(2, k / 10)) }
                        guard elapsed > 0 else { throw ValidationError("raw C loop: out of memory") }
                        rates[.raw(threads)] = Double(n * k * decimation) / elapsed
                        let loop = try load.measure { try engineLoop(scenePath, envs: n, threads: threads, controlSteps: k) }
                        rates[.loop(threads)] = loop.rate
                        cores[threads, default: []].append(loop.cores)
                        let service = try load.measure { try serviceSteps(scenePath, envs: n, threads: threads, controlSteps: k) }
                        rates[.service(threads)] = service.rate
                        ends += service.episodeEnds
                        envSteps += service.envSteps
                    }
                    runs.append(rates)
                    if verbose {
                        let line = rates.sorted { "\($0.key)" < "\($1.key)" }.map { "\($0.key) \(si($0.value))" }.joined(separator: ", ")
                        FileHandle.standardError.write(Data("\(scene.manifest.name) \(n) envs: \(line)\n".utf8))
                    }
                }
                let label = "\(scene.manifest.name) | \(n) | \(k)"
                let endsPer1000 = String(format: "%.1f", 1000 * Double(ends) / Double(max(1, envSteps)))
                let coresUsed = String(format: "%.2f / %.2f", median(cores[1]!), median(cores[2]!))
                loopRows.append(row(label, runs, engine: Variant.loop) + " \(coresUsed) |")
                serviceRows.append(row(label, runs, engine: Variant.service) + " \(endsPer1000) |")
            }
            load.waitForQuiet()
            let oneStep = median((0..<5).map { _ in cbench_run(model, 1, 1, 200, Int32(decimation), 20) / Double(200 * decimation) })
            let reset = cbench_reset_seconds(model, 200)
            notes.append("\(scene.manifest.name): mj_resetData + mj_forward "
                + String(format: "takes %.1f µs, as long as %.1f physics steps (%.1f µs each); the engine's episode starts make the same calls.",
                         reset * 1e6, reset / oneStep, oneStep * 1e6))
        }
        let columns = "| scene | envs | control steps | raw C 1 thread | engine 1 thread | per-core ratio | raw C 2 threads | engine 2 threads | engine / raw C, 2 threads | engine 2-core scaling | raw C 2-core scaling |"
        print("\n## Engine loop (realtime mode, rtf 0: no service calls)")
        print(columns + " process CPU use in cores, 1 / 2 threads |")
        print(String(repeating: "|---", count: 12) + "|")
        loopRows.forEach { print($0) }
        print("\n## /sim/step over \(transport.rawValue) (lockstep: one call per control step for all envs)")
        print(columns + " episode ends per 1000 env control steps |")
        print(String(repeating: "|---", count: 12) + "|")
        serviceRows.forEach { print($0) }
        notes.forEach { print("\n\($0)") }

        print("\n\(load.summary); load average after: \(Self.loadAverage)")
        guard startupRuns > 0 else { return }
        print("\n## sim-server start-up (\(startupEnvs) envs, median of \(startupRuns))")
        print("| scene | `sim-server --help` exits | first /sim/describe answer | difference |")
        print("|---|---|---|---|")
        for scenePath in scenes {
            let t = try startupTimes(scene: scenePath)
            print("| \(Scene.name(of: scenePath)) | \(ms(t.help)) | \(ms(t.describe)) | \(ms(t.describe - t.help)) |")
        }
    }

    /// The 1, 5 and 15 minute load averages (Linux), to tell a quiet machine from a busy one.
    static var loadAverage: String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// Which figure: raw C, engine loop or /sim/step, with its thread count.
    enum Variant: Hashable {
        case raw(Int), loop(Int), service(Int)
    }

    /// A table row: median rates, and medians of the ratios within each repetition (the figures
    /// of one repetition are measured back to back, so a slow drift of the machine cancels).
    func row(_ label: String, _ runs: [[Variant: Double]], engine: (Int) -> Variant) -> String {
        func rate(_ v: Variant) -> String { si(median(runs.map { $0[v]! })) }
        func ratio(_ a: Variant, _ b: Variant) -> String { String(format: "%.2f", median(runs.map { $0[a]! / $0[b]! })) }
        let (raw1, raw2, engine1, engine2) = (Variant.raw(1), Variant.raw(2), engine(1), engine(2))
        return "| \(label) | \(rate(raw1)) | \(rate(engine1)) | \(ratio(engine1, raw1)) | \(rate(raw2)) | \(rate(engine2)) | \(ratio(engine2, raw2)) | \(ratio(engine2, engine1)) | \(ratio(raw2, raw1)) |"
    }

    // MARK: Raw C reference

    /// Control steps for `envs` envs such that the raw C loop on one thread takes about `seconds`
    /// (at least 20).
    func controlSteps(_ model: OpaquePointer, envs: Int, decimation: Int) -> Int {
        var k = 1
        while true {
            let elapsed = cbench_run(model, Int32(envs), 1, k, Int32(decimation), 5)
            if elapsed >= 0.05 || k >= 1 << 24 { return max(20, Int((seconds / elapsed * Double(k)).rounded(.up))) }
            k *= 2
        }
    }

    // MARK: Engine

    func server(_ scene: String, envs: Int, threads: Int, mode: SimServerConfiguration.Mode) throws -> SimServer {
        var c = SimServerConfiguration()
        c.scene = scene
        c.envCount = envs
        c.threads = threads
        c.mode = mode
        c.realTimeFactor = 0
        c.listen = "tcp://127.0.0.1:*"
        var logger = Logger(label: "sim-bench")
        logger.logLevel = .warning
        return try SimServer(configuration: c, logger: logger)
    }

    /// What `engineLoop` measured: physics steps/s, and the process's CPU time over wall time
    /// (the step loop, its workers, the hub thread forwarding /clock, and this poller).
    struct LoopRun {
        var rate: Double
        var cores: Double
    }

    /// The step loop stepping every env as fast as it can (realtime mode, real-time factor 0):
    /// physics steps/s over `controlSteps` control steps, timed from one control-step boundary to
    /// another (polled every 0.25 ms near each end, through `describe()`'s sim time).
    func engineLoop(_ scene: String, envs: Int, threads: Int, controlSteps: Int) throws -> LoopRun {
        let server = try server(scene, envs: envs, threads: threads, mode: .realtime)
        try server.start()
        defer { server.stop() }
        let first = server.describe()
        let decimation = Int(first.decimation)
        let controlDt = first.physicsDt * Double(decimation)
        func steps() -> Int { Int((server.describe().simTime / controlDt).rounded()) }
        let poll = 0.000_25
        // Warm up, then start on a boundary: the first change of the step count seen.
        let warm = max(2, controlSteps / 10)
        while steps() < warm { Thread.sleep(forTimeInterval: 0.001) }
        let before = steps()
        var s0 = before
        while s0 == before { Thread.sleep(forTimeInterval: poll); s0 = steps() }
        let t0 = monotonic(), cpu0 = cpuSeconds()
        // Sleep through most of the run (estimating from the rate so far), then poll for the end.
        var s1 = s0
        var t1 = t0
        while s1 < s0 + controlSteps {
            let done = max(s1 - s0, 0)
            let remaining = done > 0 ? (t1 - t0) / Double(done) * Double(s0 + controlSteps - s1) : 0.01
            Thread.sleep(forTimeInterval: max(poll, min(0.1, remaining * 0.5)))
            s1 = steps()
            t1 = monotonic()
        }
        let cpu = cpuSeconds() - cpu0
        return LoopRun(rate: Double((s1 - s0) * envs * decimation) / (t1 - t0), cores: cpu / (monotonic() - t0))
    }

    /// What `serviceSteps` measured: physics steps/s, and the episodes that ended (each an env
    /// reset) in `envSteps` env control steps of its untimed warm-up.
    struct ServiceRun {
        var rate: Double
        var episodeEnds: Int
        var envSteps: Int
    }

    /// `controlSteps` `/sim/step` calls for every env with zero actions, each waiting for its
    /// answer: physics steps/s, service overhead included. The request is serialized once; the
    /// answers are decoded only in the warm-up, which counts episode ends.
    func serviceSteps(_ scene: String, envs: Int, threads: Int, controlSteps: Int) throws -> ServiceRun {
        let server = try server(scene, envs: envs, threads: threads, mode: .lockstep)
        try server.start()
        defer { server.stop() }
        let client = switch transport {
        case .inproc: try ServiceClient(server: server.hub.localEndpoints.service, context: server.hub.context, timeout: 60)
        case .tcp: try ServiceClient(server: server.hub.serviceEndpoint, context: ZMQContext(), timeout: 60)
        }
        let description = server.describe()
        var request = Robosim_StepRequest()
        request.actions = [Double](repeating: 0, count: envs * Int(description.actionSize))
        let payload: [UInt8] = try request.serializedBytes()
        let check: Robosim_StepResponse = try client.call("/sim/step", request)
        guard check.rewards.count == envs else { throw ValidationError("/sim/step answered \(check.rewards.count) rewards for \(envs) envs") }
        let warm = max(2, controlSteps / 10)
        var ends = 0
        for _ in 0..<warm {
            let r: Robosim_StepResponse = try client.call("/sim/step", request)
            ends += r.finalEnvIds.count
        }
        let t0 = monotonic()
        for _ in 0..<controlSteps { _ = try client.call("/sim/step", payload: payload) }
        let elapsed = monotonic() - t0
        return ServiceRun(rate: Double(controlSteps * envs * Int(description.decimation)) / elapsed, episodeEnds: ends, envSteps: warm * envs)
    }
}

extension Scene {
    /// The scene's name as the server reports it: the last component of its directory.
    static func name(of path: String) -> String { (try? Scene(directory: path))?.manifest.name ?? path }
}

/// User and system CPU time of this process so far, in seconds.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }
