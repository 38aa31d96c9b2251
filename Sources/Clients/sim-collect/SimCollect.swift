import ArgumentParser
import ClientKit
import CollectKit
import Dispatch
import Foundation
import Messaging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

@main
struct SimCollect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-collect",
        abstract: "Record episodes headless as LeRobot datasets from a lockstep RoboSim server; replay and merge them.",
        discussion: """
            Examples:
              sim-collect --scene Scenes/tbar_push --envs 8 --out data/tbar --episodes 50      # record (the default)
              sim-collect replay data/tbar --scene Scenes/tbar_push --envs 8                  # check every episode bit for bit
              sim-collect replay data/tbar --episodes 0,3,10-15 --server tcp://127.0.0.1:7700
              sim-collect merge data/tbar data/tbar-shard0 data/tbar-shard1                   # join shards into one dataset
            """,
        subcommands: [Record.self, Replay.self, Merge.self],
        defaultSubcommand: Record.self)
}

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record episodes headless as a LeRobot dataset (v3.0, or v2.1) from a lockstep RoboSim server (the default command).",
        discussion: """
            Leases every env of the server, steps them together through /sim/step with every camera rendered, lets the
            policy drive, and writes each finished episode durably (videos through ffmpeg, Parquet in Swift, metadata
            rewritten atomically): Ctrl-C or kill -9 leave a dataset that loads with every finished episode.

            Examples:
              sim-collect --scene Scenes/tbar_push --envs 8 --out data/tbar --episodes 50      # starts its own server
              sim-server Scenes/cartpole --mode lockstep --envs 16 &
              sim-collect --out data/cartpole --episodes 100 --policy scripted --fps 30
              sim-collect --out data/tbar --episodes 50 --resume --only-success
              sim-collect --scene Scenes/object_tracker --out data/tracker --format lerobot-v2.1 --episodes 20
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var reconnect: ReconnectOptions

    @Option(help: "Dataset folder (new or empty; with --resume, one sim-collect wrote).")
    var out: String

    @Option(help: "Episodes to record (0 with --resume: only pack the episodes a killed run left sealed in staging; no server needed).")
    var episodes = 10

    @Option(help: "Start a lockstep sim-server on this scene (the executable beside sim-collect) instead of using --server.")
    var scene: String?

    @Option(help: "With --scene: parallel envs (default: the scene's default_envs).")
    var envs: Int?

    @Option(help: "strategist (T-bar flow), scripted (the task's expert), or random.")
    var policy: PolicyKind = .scripted

    @Option(name: .customLong("action-noise"), help: ArgumentHelp(
        "Gaussian noise added to each action, as a fraction of its half range (clipped to the bounds; 0: none).",
        discussion: "The recorded action includes the noise. Demonstrations then show the expert recovering, which behaviour cloning needs (DART)."))
    var actionNoise: Double = 0

    @Option(help: "Recorded frames per second (default: the control rate; must divide it).")
    var fps: Double?

    @Flag(name: .customLong("only-success"), help: "Keep successful episodes only.")
    var onlySuccess = false

    @Option(help: "lerobot-v3.0 or lerobot-v2.1.")
    var format: DatasetSpec.Format = .lerobotV30

    @Option(name: .customLong("video-codec"), help: "av1 (as lerobot writes) or h264 (faster to encode).")
    var videoCodec: VideoEncoder.Codec = .av1

    @Option(name: .customLong("data-file-mb"), help: "v3.0: data file size cap in MiB; an episode that would pass it starts a new file (lerobot's data_files_size_in_mb; default 100, or the dataset's own with --resume).")
    var dataFileMB: Double?

    @Option(name: .customLong("video-file-mb"), help: "v3.0: video file size cap in MiB, per camera (lerobot's video_files_size_in_mb; default 200, or the dataset's own with --resume).")
    var videoFileMB: Double?

    /// The caps given (one not given is lerobot's default); nil when neither is given: the dataset's own
    /// caps on --resume, else lerobot's defaults.
    var limits: FileSizeLimits? {
        guard dataFileMB != nil || videoFileMB != nil else { return nil }
        return FileSizeLimits(dataMB: dataFileMB ?? FileSizeLimits.lerobot.dataMB, videoMB: videoFileMB ?? FileSizeLimits.lerobot.videoMB)
    }

    @Flag(help: "Append to an existing dataset.")
    var resume = false

    @Option(help: "Seed of the envs' episodes (and of the random policy).")
    var seed: UInt64 = 0

    @Option(help: "Task text stored with every episode (default: the scene's).")
    var task: String?

    @Option(name: .customLong("write-queue"), help: "Finished episodes (raw frames in memory) that may wait for the writer before stepping waits.")
    var writeQueue = 16

    func validate() throws {
        guard episodes >= 1 || (episodes == 0 && resume) else { throw ValidationError("--episodes must be at least 1 (0 only with --resume)") }
        if let fps { guard fps > 0, fps.isFinite else { throw ValidationError("--fps must be positive") } }
        if let envs { guard envs >= 1 else { throw ValidationError("--envs must be at least 1") } }
        guard actionNoise.isFinite, actionNoise >= 0, actionNoise <= 10 else { throw ValidationError("--action-noise must be within 0...10") }
        for (name, value) in [("--data-file-mb", dataFileMB), ("--video-file-mb", videoFileMB)] {
            guard let value else { continue }
            guard value.isFinite, value >= 0, value <= 1_000_000 else { throw ValidationError("\(name) must be within 0...1000000") }
        }
        guard writeQueue >= 1 else { throw ValidationError("--write-queue must be at least 1") }
        if envs != nil && scene == nil { throw ValidationError("--envs goes with --scene (a running server has its own env count)") }
    }

    func run() throws {
        if episodes == 0 {
            // Pack what a killed run left sealed in staging, with the dataset's own settings.
            let writer = try LeRobotWriter.reopen(root: URL(fileURLWithPath: out), limits: limits)
            let staged = writer.stagedCount
            try writer.finish()
            print("sim-collect: packed \(staged) staged episodes into \(out) (\(writer.episodeCount) in the dataset, \(writer.frameCount) frames)")
            return
        }
        let server = try scene.map { try ServerProcess(scene: $0, envs: envs, seed: seed) }
        defer { server?.stop() }
        let address = server?.address ?? connection.address
        // A server of our own (--scene) listens on loopback without keys.
        let client = try ServiceClient(server: address, timeout: max(connection.timeout, 30), security: server == nil ? try connection.security : nil)
        let d = try client.describe()
        guard d.mode == "lockstep" else {
            throw ValidationError("\(address) runs in \(d.mode) mode; sim-collect steps envs itself: start sim-server with --mode lockstep, or pass --scene")
        }
        if d.renderBackend == "none", !d.cameras.isEmpty {
            FileHandle.standardError.write(Data("sim-collect: the server renders nothing (render backend none): recording without cameras\n".utf8))
        }
        let taskInfo = TaskInfo(describe: d)
        var driver = try makePolicy(policy, task: taskInfo, envs: Int(d.envCount), seed: seed)
        _ = try Collector.stepsPerFrame(describe: d, fps: fps)   // a bad --fps fails before the dataset is touched
        let spec = Collector.spec(describe: d, policy: driver, format: format, fps: fps, codec: videoCodec)
        let writer = try LeRobotWriter(root: URL(fileURLWithPath: out), spec: spec, resume: resume,
                                       encoder: VideoEncoder(codec: videoCodec), limits: limits)
        var options = Collector.Options()
        options.episodes = episodes
        options.fps = fps
        options.onlySuccess = onlySuccess
        options.seed = seed &+ UInt64(writer.episodeCount)   // resuming continues with fresh episodes
        if actionNoise > 0 {
            guard d.task.actionChoices == 0 else { throw ValidationError("--action-noise needs continuous actions; \(d.scene) has \(d.task.actionChoices) discrete choices") }
            driver = try NoisyPolicy(driver, std: actionNoise, task: taskInfo, envs: Int(d.envCount), seed: options.seed)
        }
        options.task = task ?? Self.defaultTask(d.scene)
        options.writeQueue = writeQueue
        options.reconnectTimeout = reconnect.seconds
        let collector = try Collector(client: client, describe: d, options: options, writer: writer, policy: driver)

        // Ctrl-C or SIGTERM: stop stepping, write the finished episodes, exit 0. A second one exits at once
        // (the server it started goes too: it watches this process).
        let sources = onInterrupt {
            FileHandle.standardError.write(Data("\nsim-collect: stopping after the current frame; writing finished episodes (Ctrl-C again to quit now)\n".utf8))
            collector.requestStop()
        }
        defer { for s in sources { s.cancel() } }

        let already = writer.episodeCount
        let bar = ProgressBar(total: episodes)
        let result = try collector.run { p in bar.show(p) }
        bar.finish(result)
        print(String(format: "sim-collect: %d episodes written to %@ (%d in the dataset, %d frames), %d successful; %d discarded; %.1f s",
                     result.written, out, already + result.written, writer.frameCount, result.successes, result.discarded, result.seconds))
        if result.reconnects > 0 {
            let sameServer = result.reconnects - result.restarts
            let what = sameServer == 0 ? "the server restarted \(result.restarts) time(s)"
                : "the server was lost \(result.reconnects) time(s) (\(result.restarts) restart(s), \(sameServer) lease(s) lost on the same server)"
            print("sim-collect: \(what); \(result.lost) episodes in flight were lost and recorded again")
        }
    }

    static func defaultTask(_ scene: String) -> String {
        switch scene {
        case "tbar_push": "push the T-bar into the slot"
        case "cartpole": "balance the pole on the cart"
        case "object_tracker": "follow the leader robot"
        default: scene
        }
    }
}

/// One line on stderr, redrawn: episodes written, rate, success rate, frames.
final class ProgressBar: Sendable {
    let total: Int
    private let last = Mutex<Double>(0)

    init(total: Int) { self.total = total }

    func show(_ p: Collector.Progress) {
        let now = Date().timeIntervalSince1970
        guard last.withLock({ l in defer { if now - l >= 0.2 { l = now } }; return now - l >= 0.2 }) else { return }
        draw(p)
    }

    func finish(_ p: Collector.Progress) {
        draw(p)
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func draw(_ p: Collector.Progress) {
        let width = 24
        let filled = min(width, total == 0 ? width : p.written * width / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let rate = p.seconds > 0 ? Double(p.written) / p.seconds : 0
        let success = p.written > 0 ? 100 * Double(p.successes) / Double(p.written) : 0
        let line = String(format: "\r[%@] %d/%d episodes  %.2f ep/s  success %.0f%%  %d frames  %.1f s", bar, p.written, total, rate, success, p.frames, p.seconds)
        FileHandle.standardError.write(Data(line.utf8))
    }
}

extension PolicyKind: ExpressibleByArgument {}
extension DatasetSpec.Format: ExpressibleByArgument {}
extension VideoEncoder.Codec: ExpressibleByArgument {}
