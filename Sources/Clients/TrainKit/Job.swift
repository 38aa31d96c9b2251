import ClientKit
import Foundation
import Messaging

/// One train or eval run described completely by a JSON file (`sim-train run job.json`), so that
/// a batch system runs a job from one file. Keys are snake_case; unknown keys are refused.
///
///     {"kind": "train", "scene": "Scenes/cartpole", "envs": 16, "steps": 200000, "seed": 1,
///      "reward": "alive - 2 * pole_angle ^ 2", "output": "runs/cartpole", "stop_at_success": 0.95,
///      "eval_episodes": 64, "ppo": {"learning_rate": 0.0003, "epochs": 10}}
///     {"kind": "eval", "scene": "Scenes/cartpole", "checkpoint": "runs/cartpole/checkpoint.safetensors",
///      "episodes": 64, "seed": 1000004, "output": "runs/cartpole-eval"}
///
/// The output directory gets the job file, and what the run writes: checkpoint, metrics.csv,
/// timing.csv, tensorboard/ and eval.json. `output` is a folder name inside the outputs folder
/// (`sim-train run --outputs DIR`, default the current folder) and `video` a file name inside
/// `output`: absolute paths, `..` and symbolic links that lead out are refused (``SafePath``).
public struct Job: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case train, eval }
    public var kind: Kind
    /// A scene to start a server on, or a running server's address, or several (the envs spread
    /// over them, as `sim-train --server A --server B`).
    public var scene: String?
    public var server: String?
    public var servers: [String]?
    public var envs: Int?
    public var steps: Int?
    public var seed: UInt64?
    public var reward: String?
    public var output: String
    public var stopAtSuccess: Double?
    public var evalEpisodes: Int?
    /// eval: the checkpoint and how many episodes.
    public var checkpoint: String?
    public var episodes: Int?
    /// eval: an MP4 of the scene's first rgb camera over the first env's first two episodes, in `output`.
    /// (`reward` in an eval job: default the checkpoint's own.)
    public var video: String?
    public var ppo: PPOConfiguration?
    /// train: learn from `camera`'s pixels (nil: the scene's first rgb observation camera) with a CNN policy.
    public var pixels: Bool?
    public var camera: String?
    /// eval: uniformly random actions instead of a checkpoint (a baseline on the same seeds).
    public var random: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, scene, server, servers, envs, steps, seed, reward, output, stopAtSuccess, evalEpisodes, checkpoint, episodes, video, ppo
        case pixels, camera, random
    }

    static var keys: Set<String> { Set(CodingKeys.allCases.map { snakeCase($0.rawValue) }) }

    /// Reads and checks a job file.
    public static func read(_ url: URL) throws -> Job {
        let data = try Data(contentsOf: url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TrainError("\(url.path): a job file is a JSON object")
        }
        if let unknown = Set(object.keys).subtracting(keys).sorted().first {
            throw TrainError("\(url.path): unknown key '\(unknown)' (keys: \(keys.sorted().joined(separator: ", ")))")
        }
        if let ppo = object["ppo"] as? [String: Any], let unknown = Set(ppo.keys).subtracting(PPOConfiguration.keys).sorted().first {
            throw TrainError("\(url.path): unknown ppo key '\(unknown)' (keys: \(PPOConfiguration.keys.sorted().joined(separator: ", ")))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let job: Job
        do {
            job = try decoder.decode(Job.self, from: data)
        } catch {
            throw TrainError("\(url.path): \(error)")
        }
        try job.check()
        return job
    }

    func check() throws {
        guard [scene != nil, server != nil, servers != nil].filter({ $0 }).count == 1 else {
            throw TrainError("give one of scene (a server is started), server (an address) or servers (addresses)")
        }
        if let servers { guard !servers.isEmpty, servers.count <= envs ?? 16 else { throw TrainError("servers: 1 to envs addresses") } }
        guard (envs ?? 16) >= 1, (steps ?? 1) >= 1, (evalEpisodes ?? 0) >= 0, (episodes ?? 1) >= 1 else {
            throw TrainError("envs, steps and episodes must be at least 1, eval_episodes at least 0")
        }
        if kind == .eval, (checkpoint == nil) == (random != true) { throw TrainError("an eval job names its checkpoint, or says random: true") }
        let wrong = kind == .train ? [("checkpoint", checkpoint != nil), ("episodes", episodes != nil), ("video", video != nil), ("random", random != nil)]
            : [("steps", steps != nil), ("stop_at_success", stopAtSuccess != nil), ("eval_episodes", evalEpisodes != nil), ("ppo", ppo != nil),
               ("pixels", pixels != nil), ("camera", camera != nil)]
        if let key = wrong.first(where: \.1)?.0 { throw TrainError("'\(key)' does not apply to a \(kind.rawValue) job") }
        if let problem = ppo?.problem { throw TrainError("ppo: \(problem)") }
        if let s = stopAtSuccess, !(s > 0 && s <= 1) { throw TrainError("stop_at_success must be in (0, 1]") }
    }

    /// Where the job writes: `output` inside `outputs`, and its video inside that. Throws a
    /// ``PathEscapeError`` naming the value and the folder when either would lead out.
    public func outputFolder(in outputs: URL) throws -> (output: URL, video: URL?) {
        let out = try SafePath.child(of: outputs, named: output, what: "job output")
        return (out, try video.map { try SafePath.child(of: out, named: $0, what: "job video") })
    }

    /// Runs the job: leases envs (on a server it starts for `scene`, or on `server`), trains or
    /// evaluates, and writes the job file and results into `output`, a folder inside `outputs`.
    /// `security`: CURVE keys for `server`/`servers` (a server started for `scene` has none).
    public func run(outputs: URL = URL(fileURLWithPath: "."), security: ClientSecurity? = nil, log: @escaping (String) -> Void) throws {
        let (out, videoURL) = try outputFolder(in: outputs)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(self).write(to: out.appendingPathComponent("job.json"))
        let seed = self.seed ?? (kind == .train ? 1 : 1_000_004)
        let serverProcess = try scene.map { try ServerProcess(scene: $0, envs: envs ?? 16, seed: seed) }
        defer { serverProcess?.stop() }
        // Pixels travel over sockets (the step channel carries none).
        let images = pixels == true || (try? checkpoint.map { try Checkpoint.read(URL(fileURLWithPath: $0)) })??.metadata.image != nil
        let addresses = serverProcess.map { [$0.address] } ?? servers ?? [server!]
        let env = try VectorEnvGroup(addresses: addresses, total: envs ?? 16,
                                     options: .init(clientName: "sim-train-job", transport: images ? .socket : .auto),
                                     security: serverProcess == nil ? security : nil)
        defer { env.close() }
        switch kind {
        case .train:
            var options = TrainOptions(output: out)
            options.ppo = ppo ?? PPOConfiguration()
            options.totalSteps = steps ?? 200_000
            options.seed = seed
            options.reward = reward
            options.stopAtSuccess = stopAtSuccess
            options.scene = scene.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
            options.pixels = pixels ?? false
            options.camera = camera
            _ = try Training.run(env: env, options: options, evalEpisodes: evalEpisodes ?? 64, log: log)
        case .eval:
            let policy = try checkpoint.map { try Checkpoint.read(URL(fileURLWithPath: $0)) }
            // The reward it was trained with, unless the job gives one ("" for the task's).
            let expression = reward ?? policy?.metadata.reward ?? ""
            if !expression.isEmpty { try env.setReward(expression) }
            let film = videoURL.map { Evaluator.Video(url: $0) }
            let report = try Evaluator.run(policy: policy.map { .checkpoint($0) } ?? .random, env: env, episodes: episodes ?? 64, seed: seed, video: film)
            try report.write(to: out.appendingPathComponent("eval.json"))
            log(report.summary)
        }
    }
}

/// A training run and its final evaluation, as `sim-train train` and train jobs do them.
public enum Training {
    public static func run(env: VectorEnvGroup, options: TrainOptions, evalEpisodes: Int, log: @escaping (String) -> Void) throws
        -> (TrainSummary, EvaluationReport?) {
        log("sim-train: \(env.count) envs (\(options.pixels ? "pixels over sockets" : env.transport.rawValue)), task \(env.description.task.name), "
            + "\(options.totalSteps) steps, seed \(options.seed)")
        let summary = try Trainer(env: env, options: options, log: log).run()
        // The server's own time is known through step channels only.
        let split = env.transport == .shm ? String(format: ", of which simulation %.1f s", summary.simSeconds) : ""
        log(String(format: "sim-train: %d env steps in %.1f s (env %.1f s%@; learn %.1f s); checkpoint %@",
                   summary.envSteps, summary.wallSeconds, summary.envSeconds, split, summary.learnSeconds, summary.checkpoint.path))
        if env.reconnects > 0 || summary.truncatedByRestarts > 0 {
            log("sim-train: server restarts: \(env.reconnects) reconnects; \(summary.truncatedByRestarts) episodes in flight truncated (\(VectorEnv.restartReason))")
        }
        if options.pixels {
            // One rendered frame per env step.
            log(String(format: "sim-train: pixels: %.1f frames/s of training (%d frames in %.1f s)",
                       Double(summary.envSteps) / max(summary.wallSeconds, 1e-9), summary.envSteps, summary.wallSeconds))
        }
        guard evalEpisodes > 0 else { return (summary, nil) }
        let checkpoint = try Checkpoint.read(summary.checkpoint)
        let report = try Evaluator.run(checkpoint, env: env, episodes: evalEpisodes, seed: options.seed &+ 1_000_003)
        try report.write(to: options.output.appendingPathComponent("eval.json"))
        log(report.summary)
        return (summary, report)
    }
}

extension EvaluationReport {
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url)
    }

    public var summary: String {
        String(format: "eval: %d episodes, return %.2f ± %.2f, success %.1f%% (95%% CI %.1f-%.1f%%), seed %llu",
               episodes.count, meanReturn, returnInterval95, 100 * successRate, 100 * successInterval95[0], 100 * successInterval95[1], seed)
    }
}
