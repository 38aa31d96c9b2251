import ArgumentParser
import ClientKit
import Foundation
import LLMKit
import Logging
import Messaging
import TrainKit

@main
struct SimTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-train",
        abstract: "Train policies with PPO on a RoboSim server's parallel envs, and evaluate them.",
        discussion: """
            Examples:
              sim-train train --scene Scenes/cartpole --envs 16 --steps 200000 --out runs/cartpole --stop-at-success 0.95
              sim-server Scenes/cartpole --mode lockstep --envs 64 &
              sim-train train --envs 16 --out runs/cartpole --reward 'alive - 2 * pole_angle ^ 2'
              sim-train eval runs/cartpole/checkpoint.safetensors --scene Scenes/cartpole --episodes 64
              sim-train train --scene Scenes/object_tracker_pixels --pixels --envs 16 --out runs/tracker-pixels
              sim-train eval --random --scene Scenes/object_tracker_pixels --episodes 100
            """,
        subcommands: [Train.self, Eval.self, Run.self, Export.self, Act.self, RewardSearchCommand.self])
}

/// Where the envs come from: running servers (`--server`, repeated for several) or one started
/// for the command (`--scene`).
struct EnvSource: ParsableArguments {
    @Option(name: .customLong("server"),
            help: "A running server's address; repeat it to spread the envs over several servers (one learner, many simulators). Default: SIM_SERVER, else tcp://127.0.0.1:7700.")
    var servers: [String] = []

    @Option(help: "Seconds to wait for a service reply (at least 30 for steps).")
    var timeout: Double = 30

    @Option(help: "Start a lockstep sim-server on this scene (the executable beside sim-train) instead of using --server.")
    var scene: String?

    @Option(help: "Envs to lease, all servers together, split evenly (with --scene: the server gets this many).")
    var envs: Int = 16

    /// `--server-key`/`--key` for the servers named by `--server` (one key for all of them).
    @OptionGroup var keys: ClientKeyOptions

    /// `--reconnect-timeout`: how long to wait for a restarted server.
    @OptionGroup var reconnect: ReconnectOptions

    /// The CURVE keys for `--server` (nil with `--scene`: that server listens on loopback without keys).
    var security: ClientSecurity? {
        get throws { scene == nil ? try keys.security : nil }
    }

    func validate() throws {
        guard envs >= 1 else { throw ValidationError("--envs must be at least 1") }
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
        guard scene == nil || servers.isEmpty else { throw ValidationError("give --scene or --server, not both") }
        guard envs >= servers.count else { throw ValidationError("--envs \(envs) cannot be split over \(servers.count) servers") }
    }

    /// The leased envs and the server process (if one was started). Pixels travel over sockets (the
    /// step channel carries none): `transport` .socket then, so that no channel is opened for nothing.
    func open(seed: UInt64, transport: VectorEnv.Transport = .auto) throws -> (VectorEnvGroup, ServerProcess?) {
        let server = try scene.map { try ServerProcess(scene: $0, envs: envs, seed: seed) }
        do {
            let addresses = server.map { [$0.address] } ?? (servers.isEmpty ? [Node.defaultServer] : servers)
            let env = try VectorEnvGroup(addresses: addresses, total: envs, options: .init(clientName: "sim-train", transport: transport, reconnectTimeout: reconnect.seconds),
                                         timeout: max(timeout, 30), security: try security)
            return (env, server)
        } catch {
            server?.stop()
            throw error
        }
    }
}

/// The PPO settings as flags (`train`, `reward-search`).
struct PPOOptions: ParsableArguments {
    @Option(name: .customLong("rollout-steps"), help: "Steps per env per rollout.")
    var rolloutSteps = PPOConfiguration().steps

    @Option(help: "Passes over each rollout.")
    var epochs = PPOConfiguration().epochs

    @Option(help: "Minibatches per pass.")
    var minibatches = PPOConfiguration().minibatches

    @Option(name: .customLong("learning-rate"), help: "Adam's learning rate.")
    var learningRate = PPOConfiguration().learningRate

    @Option(help: "Discount factor.")
    var gamma = PPOConfiguration().gamma

    @Option(name: .customLong("entropy"), help: "Entropy bonus coefficient.")
    var entropyCoefficient = PPOConfiguration().entropyCoefficient

    @Option(name: .customLong("value-clip"), help: "Clip value updates around the old values by this much, or 'none'.")
    var valueClip = "0.2"

    @Option(name: .customLong("value-coefficient"), help: "Weight of the value loss.")
    var valueCoefficient = PPOConfiguration().valueCoefficient

    @Option(help: "Hidden layer widths, comma-separated.")
    var hidden = "64,64"

    @Option(name: .customLong("conv"), help: "With --pixels: convolution layers as channels:kernel:stride, comma-separated; --hidden are the dense layers after them.")
    var convolutions = "16:5:2,32:3:2"

    func validate() throws {
        guard rolloutSteps >= 1, epochs >= 1, minibatches >= 1 else {
            throw ValidationError("--rollout-steps, --epochs and --minibatches must be at least 1")
        }
        guard learningRate > 0, learningRate.isFinite, gamma > 0, gamma <= 1 else { throw ValidationError("--learning-rate must be positive and --gamma in (0, 1]") }
        guard layers != nil else { throw ValidationError("--hidden must be positive integers, comma-separated (as 64,64)") }
        guard valueClip == "none" || (Float(valueClip) ?? -1) > 0 else { throw ValidationError("--value-clip must be a positive number or 'none'") }
        guard Convolution.parse(convolutions) != nil else { throw ValidationError("--conv must be channels:kernel:stride layers, comma-separated (as 16:5:2,32:3:2)") }
        if let problem = configuration.problem { throw ValidationError("PPO settings: \(problem)") }
    }

    /// The PPO settings the flags give.
    var configuration: PPOConfiguration {
        var c = PPOConfiguration()
        c.steps = rolloutSteps
        c.epochs = epochs
        c.minibatches = minibatches
        c.learningRate = learningRate
        c.gamma = gamma
        c.entropyCoefficient = entropyCoefficient
        c.valueCoefficient = valueCoefficient
        c.valueClip = valueClip == "none" ? nil : Float(valueClip)
        c.hidden = layers ?? c.hidden
        c.convolutions = Convolution.parse(convolutions) ?? c.convolutions
        return c
    }

    var layers: [Int]? {
        let l = hidden.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !l.isEmpty, l.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 4096 }) else { return nil }
        return l.map { $0! }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a policy with PPO; writes metrics.csv, timing.csv and checkpoint.safetensors into --out.")

    @OptionGroup var source: EnvSource

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Env steps to train for (all envs together).")
    var steps = 200_000

    @Option(help: "Seed of the envs' episodes, the policy's initialization and its sampling.")
    var seed: UInt64 = 1

    @Option(help: "A reward expression replacing the task's reward for these envs (docs/wire-protocol.md, Rewards).")
    var reward: String?

    @Option(name: .customLong("stop-at-success"), help: "Stop once this share of the last 100 episodes succeeded.")
    var stopAtSuccess: Double?

    @OptionGroup var ppo: PPOOptions

    @Option(name: .customLong("eval-episodes"), help: "Episodes of the final evaluation (0: none).")
    var evalEpisodes = 64

    @Flag(help: "Learn from pixels: a CNN policy over --camera's images (rendered every step; HWC, bytes / 255).")
    var pixels = false

    @Option(help: "With --pixels: the rgb camera (default: the scene's first rgb observation camera).")
    var camera: String?

    func validate() throws {
        guard steps >= 1, evalEpisodes >= 0 else { throw ValidationError("--steps must be at least 1, --eval-episodes at least 0") }
        if let s = stopAtSuccess { guard s > 0, s <= 1 else { throw ValidationError("--stop-at-success must be in (0, 1]") } }
        guard pixels || camera == nil else { throw ValidationError("--camera applies with --pixels") }
    }

    func run() throws {
        let (env, server) = try source.open(seed: seed, transport: pixels ? .socket : .auto)
        defer { env.close(); server?.stop() }
        var options = TrainOptions(output: URL(fileURLWithPath: out))
        options.totalSteps = steps
        options.seed = seed
        options.reward = reward
        options.stopAtSuccess = stopAtSuccess
        options.scene = source.scene.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
        options.ppo = ppo.configuration
        options.pixels = pixels
        options.camera = camera
        _ = try Training.run(env: env, options: options, evalEpisodes: evalEpisodes) { say($0) }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint's mean actions (or random ones) on held-out seeds.")

    @Argument(help: "A checkpoint.safetensors that sim-train wrote (a pixel policy renders its camera every step).")
    var checkpoint: String?

    @Flag(help: "Uniformly random actions instead of a checkpoint: the baseline on the same seeded episodes.")
    var random = false

    @Flag(help: "Draw the checkpoint's actions from its distribution (seeded), as in training, instead of the most likely ones.")
    var sample = false

    @OptionGroup var source: EnvSource

    @Option(help: "Episodes to run.")
    var episodes = 64

    @Option(help: "Seed of the evaluation episodes (keep it apart from the training seed).")
    var seed: UInt64 = 1_000_004

    @Option(help: "Per-episode JSON report.")
    var report: String?

    @Option(help: "A reward expression for the evaluation (default: the one the checkpoint was trained with; '' for the task's).")
    var reward: String?

    @Option(help: "An MP4 of a scene camera over the first env's first episodes.")
    var video: String?

    @Option(help: "With --video: the camera (default: the scene's first rgb camera).")
    var camera: String?

    @Option(name: .customLong("video-episodes"), help: "With --video: episodes to film.")
    var videoEpisodes = 2

    func validate() throws {
        guard episodes >= 1, videoEpisodes >= 1 else { throw ValidationError("--episodes and --video-episodes must be at least 1") }
        guard (checkpoint == nil) == random else { throw ValidationError("give a checkpoint or --random, not both") }
    }

    func run() throws {
        let policy = try checkpoint.map { try Checkpoint.read(URL(fileURLWithPath: $0)) }
        let (env, server) = try source.open(seed: seed, transport: policy?.metadata.image != nil ? .socket : .auto)
        defer { env.close(); server?.stop() }
        let expression = reward ?? policy?.metadata.reward ?? ""
        if !expression.isEmpty { try env.setReward(expression) }
        let film = video.map { Evaluator.Video(url: URL(fileURLWithPath: $0), camera: camera, episodes: videoEpisodes) }
        let result = try Evaluator.run(policy: policy.map { sample ? .sampled($0) : .checkpoint($0) } ?? .random, env: env, episodes: episodes, seed: seed, video: film)
        if let report { try result.write(to: URL(fileURLWithPath: report)) }
        print(result.summary)
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a train or eval job described by one JSON file (keys in TrainKit's Job).")

    @Argument(help: "The job file.")
    var job: String

    @Option(help: "The folder the job's output folder is made in (the job's 'output' is a name inside it; absolute paths and '..' are refused).")
    var outputs: String = "."

    @OptionGroup var keys: ClientKeyOptions

    func run() throws {
        try Job.read(URL(fileURLWithPath: job)).run(outputs: URL(fileURLWithPath: outputs, isDirectory: true), security: try keys.security) { say($0) }
    }
}

struct Act: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a checkpoint's policy on observations: a JSON array of observation rows on stdin, the mean actions as a JSON array of rows on stdout.")

    @Argument(help: "A checkpoint.safetensors that sim-train wrote.")
    var checkpoint: String

    func run() throws {
        let policy = try Checkpoint.read(URL(fileURLWithPath: checkpoint))
        let input = FileHandle.standardInput.readDataToEndOfFile()
        guard let rows = try JSONSerialization.jsonObject(with: input) as? [[Double]] else {
            throw ValidationError("stdin must be a JSON array of observation rows (arrays of numbers)")
        }
        // A pixel policy's row is its image: height x width x channels values in [0, 1] (HWC).
        let size = policy.metadata.observationSize
        guard rows.allSatisfy({ $0.count == size }) else { throw ValidationError("every observation row must have \(size) values") }
        let actions = policy.actions(rows.flatMap { $0 }, rows: rows.count)
        let a = policy.metadata.actionNames.count
        let out = (0..<rows.count).map { Array(actions[($0 * a)..<(($0 + 1) * a)]) }
        FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: out))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a checkpoint's policy as ONNX: input observation [N, obs] (raw), output action [N, act] (the mean).")

    @Argument(help: "A checkpoint.safetensors that sim-train wrote.")
    var checkpoint: String

    @Option(help: "The ONNX file to write.")
    var onnx: String

    func run() throws {
        let policy = try Checkpoint.read(URL(fileURLWithPath: checkpoint))
        try ONNXExport.model(policy).write(to: URL(fileURLWithPath: onnx), options: .atomic)
        print("sim-train: wrote \(onnx) (opset 13; observation [N, \(policy.metadata.observationNames.count)] -> action [N, \(policy.metadata.actionNames.count)])")
    }
}

struct RewardSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward-search",
        abstract: "Search reward expressions with an LLM (Eureka's loop): propose, train each briefly, score by the task's success, feed back.",
        discussion: """
            Each iteration asks the backend for --candidates reward expressions (the offline backend mutates the best
            one's weighted terms, without network), trains each on a lease of its own (--parallel at once), scores it
            by the task's success rate on held-out episodes, and feeds every candidate's traces (each term, the reward
            and the success rate at about ten points of training) and refusals back into the next prompt. Writes the
            prompts, replies, candidates, scores, best.json and best.safetensors into --out.

            Examples:
              sim-train reward-search --scene Scenes/cartpole --start '-0.005 * pole_vel' --out runs/search
              sim-train reward-search --scene Scenes/cartpole --backend openai --endpoint http://127.0.0.1:8000/v1 --model qwen2.5-7b-instruct --out runs/search-llm
            """)

    @OptionGroup var source: EnvSource
    @OptionGroup var llm: LLMOptions
    @OptionGroup var ppo: PPOOptions

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Candidates per iteration.")
    var candidates = 16

    @Option(help: "Iterations.")
    var iterations = 5

    @Option(name: .customLong("envs-per-candidate"), help: "Envs each candidate trains on.")
    var envsPerCandidate = 8

    @Option(name: .customLong("steps-per-candidate"), help: "Env steps each candidate trains for.")
    var stepsPerCandidate = 50_000

    @Option(help: "Candidates trained at once (with --scene the server gets parallel x envs-per-candidate envs).")
    var parallel = 2

    @Option(name: .customLong("eval-episodes"), help: "Held-out episodes that score each candidate.")
    var evalEpisodes = 32

    @Option(help: "Seed of the candidates' training and of the offline backend's mutations.")
    var seed: UInt64 = 1

    @Option(help: "The reward to start from (default: the task's own terms and weights).")
    var start: String?

    func validate() throws {
        var o = RewardSearchOptions(output: URL(fileURLWithPath: out))
        (o.candidates, o.iterations, o.envsPerCandidate, o.stepsPerCandidate, o.parallel, o.evalEpisodes) =
            (candidates, iterations, envsPerCandidate, stepsPerCandidate, parallel, evalEpisodes)
        if let problem = o.problem { throw ValidationError(problem) }
    }

    func run() throws {
        var options = RewardSearchOptions(output: URL(fileURLWithPath: out))
        (options.candidates, options.iterations, options.envsPerCandidate, options.stepsPerCandidate, options.parallel, options.evalEpisodes) =
            (candidates, iterations, envsPerCandidate, stepsPerCandidate, parallel, evalEpisodes)
        options.seed = seed
        options.start = start
        options.ppo = ppo.configuration
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let backend = try llm.makeBackend(logger: Logger(label: "robosim.reward-search"))
        let server = try source.scene.map { try ServerProcess(scene: $0, envs: parallel * envsPerCandidate, seed: seed) }
        defer { server?.stop() }
        let servers = server.map { [$0.address] } ?? (source.servers.isEmpty ? [Node.defaultServer] : source.servers)
        _ = try RewardSearch(options: options, servers: servers, security: try source.security, backend: backend) { say($0) }.run()
    }
}

/// A progress line, flushed at once (the output may be a file or a pipe that someone watches).
@Sendable func say(_ line: String) {
    print(line)
    fflush(nil)  // every output stream: stdout is not reachable from Swift 6 code that may run anywhere
}
