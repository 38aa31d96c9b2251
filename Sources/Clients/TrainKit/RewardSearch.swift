import ClientKit
import Dispatch
import Foundation
import LLMKit
import Messaging
import RewardLanguage
import Synchronization

/// What a reward search does (`sim-train reward-search`).
public struct RewardSearchOptions: Sendable {
    /// Candidates asked for per iteration (Eureka's K).
    public var candidates = 16
    /// Iterations (Eureka's I).
    public var iterations = 5
    /// Envs each candidate trains on (its own lease).
    public var envsPerCandidate = 8
    /// Env steps each candidate trains for.
    public var stepsPerCandidate = 50_000
    /// Candidates trained at once.
    public var parallel = 2
    /// Held-out episodes that score each candidate by the task's success.
    public var evalEpisodes = 32
    public var seed: UInt64 = 1
    /// The reward the search starts from (nil: the task's terms with their weights).
    public var start: String?
    public var ppo = PPOConfiguration()
    public var output: URL

    public init(output: URL) { self.output = output }

    /// Why these settings cannot run, or nil.
    public var problem: String? {
        guard (1...64).contains(candidates) else { return "candidates must be in 1...64" }
        guard (1...50).contains(iterations) else { return "iterations must be in 1...50" }
        guard envsPerCandidate >= 1, stepsPerCandidate >= 1, (1...64).contains(parallel), evalEpisodes >= 1 else {
            return "envs per candidate, steps per candidate and eval episodes must be at least 1, parallel in 1...64"
        }
        return nil
    }
}

/// A candidate reward: how it was proposed, whether it was taken, and how it trained.
public struct RewardCandidate: Codable, Sendable {
    /// One named value's trace over training: its mean at about ten points, and their max, mean, min.
    public struct Trace: Codable, Sendable {
        public var name: String
        public var values: [Double]
        public var max: Double, mean: Double, min: Double
    }

    public var iteration: Int
    public var index: Int
    public var expression: String
    public var rationale: String?
    /// Why it was refused (a parse error with its position, a reward out of bounds); nil: trained.
    public var error: String?
    /// Why it could not be trained though nothing is wrong with it (a server lost, no free envs).
    public var failure: String?
    /// The task's success rate on held-out episodes of the trained policy: the score.
    public var score: Double?
    public var meanReturn: Double?
    /// The success rate and each term (raw), the reward given, over training.
    public var traces: [Trace] = []
    public var checkpoint: String?
    public var trainSeconds: Double?
}

/// What a backend proposed for one iteration.
struct Proposal {
    /// Each with the reason it is refused before parsing (a reply's item that is no expression).
    var candidates: [(expression: String, rationale: String?, refusal: String?)]
    /// Why the reply could not be read (then no candidates).
    var error: String?
    var prompt: ChatRequest?
    var reply: String?
}

/// The task as the search presents it: from `/sim/describe`.
struct SearchTask {
    var name: String, scene: String, success: String
    var terms: [(name: String, weight: Double)]
    var observations: [(name: String, unit: String)]
    var actions: [(name: String, unit: String)]
    /// The names a candidate may read: everything the server binds but `reward`, the task's own
    /// reward (a search that answers "reward" has searched nothing).
    var variables: [String]

    init(_ d: Robosim_DescribeResponse) {
        name = d.task.name
        scene = d.scene
        success = d.task.success
        terms = d.task.rewardTerms.map { ($0.name, $0.weight) }
        observations = d.task.observations.map { ($0.name, $0.unit) }
        actions = d.task.actions.map { ($0.name, $0.unit) }
        variables = RewardExpression.variables(terms: terms.map(\.name), observations: observations.map(\.name), actions: actions.map(\.name))
            .filter { $0 != "reward" }
    }

    /// The task's own reward as an expression: its weighted terms.
    var taskReward: String { LinearReward(terms.map { ($0.name, $0.weight) }).expression }
}

/// Eureka's loop over reward expressions: propose K candidates, train each briefly on its own
/// lease (side by side), score each by the task's success on held-out episodes, feed the traces
/// back, keep the best; I iterations. Writes everything into the output directory:
///
///     iteration_<i>/prompt.txt, reply.txt   (LLM backends)
///     iteration_<i>/candidates.json         every candidate: expression, error or score and traces
///     iteration_<i>/candidate_<k>/          its training run (metrics.csv, checkpoint, ...)
///     search.jsonl                          one line per candidate, as they finish
///     best.json, best.safetensors           the best expression, its score and its checkpoint
///
/// Iteration 0 trains the start expression, so the search's gain over it is on record.
public final class RewardSearch: Sendable {
    let options: RewardSearchOptions
    let addresses: [String]
    /// CURVE keys for the servers (nil: plaintext).
    let security: ClientSecurity?
    let backend: (any ChatBackend)?
    let log: @Sendable (String) -> Void

    public init(options: RewardSearchOptions, servers: [String], security: ClientSecurity? = nil, backend: (any ChatBackend)?,
                log: @escaping @Sendable (String) -> Void) {
        self.options = options
        addresses = servers
        self.security = security
        self.backend = backend
        self.log = log
    }

    public struct Result: Sendable {
        public var best: RewardCandidate
        public var start: RewardCandidate
        public var candidates: [RewardCandidate]
    }

    public func run() throws -> Result {
        if let problem = options.problem { throw TrainError("reward search: \(problem)") }
        guard options.envsPerCandidate >= addresses.count else {
            throw TrainError("reward search: \(options.envsPerCandidate) envs per candidate cannot be spread over \(addresses.count) servers")
        }
        try FileManager.default.createDirectory(at: options.output, withIntermediateDirectories: true)
        let probe = try VectorEnvGroup(addresses: addresses, total: max(addresses.count, 1), options: .init(clientName: "sim-train-search"),
                                       security: security)
        let task = SearchTask(probe.description)
        probe.close()
        let journal = try AppendFile(options.output.appendingPathComponent("search.jsonl"), header: nil)
        let startText = options.start ?? task.taskReward
        log("reward search: task \(task.name), \(options.iterations) iterations of \(options.candidates) candidates, "
            + "\(options.stepsPerCandidate) steps on \(options.envsPerCandidate) envs each, \(options.parallel) at once, backend \(backend?.name ?? "offline")")

        var all: [RewardCandidate] = []
        let start = try train([(startText, "the start expression", nil)], iteration: 0, task: task, journal: journal)[0]
        all.append(start)
        log("iteration 0: start `\(start.expression)`: \(Self.summary(start))")
        var best = start
        var previous = [start]
        let offline = OfflineProposer(task: task, seed: options.seed)
        for iteration in 1...options.iterations {
            let directory = options.output.appendingPathComponent("iteration_\(iteration)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var proposal: Proposal
            if let backend {
                proposal = ask(backend, task: task, best: best, previous: previous, iteration: iteration)
            } else {
                // The prompt an LLM backend would get, kept for comparison.
                proposal = offline.propose(count: options.candidates, ranked: Self.ranked(all.filter { $0.score != nil }), tried: Set(all.map(\.expression)))
                proposal.prompt = prompt(task: task, best: best, previous: previous, iteration: iteration)
            }
            if let prompt = proposal.prompt {
                try ("# system\n" + prompt.system + "\n\n# user\n" + prompt.user + "\n").write(to: directory.appendingPathComponent("prompt.txt"), atomically: true, encoding: .utf8)
            }
            if let reply = proposal.reply { try reply.write(to: directory.appendingPathComponent("reply.txt"), atomically: true, encoding: .utf8) }
            if let error = proposal.error { log("iteration \(iteration): the reply was refused: \(error)") }
            let round = try train(proposal.candidates, iteration: iteration, task: task, journal: journal, replyError: proposal.error)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(round).write(to: directory.appendingPathComponent("candidates.json"))
            all += round
            let trained = round.filter { $0.score != nil }
            if let top = Self.ranked(trained).first, Self.better(top, than: best) { best = top }
            log("iteration \(iteration): \(trained.count) of \(round.count) candidates trained; best so far `\(best.expression)`: \(Self.summary(best))")
            // The next prompt sees this round (Eureka feeds back its best; the refusals matter too).
            previous = round.isEmpty ? previous : round
            if let error = proposal.error, round.isEmpty {
                // Index -1: the reply itself, not one of its candidates.
                previous = [RewardCandidate(iteration: iteration, index: -1, expression: "", error: "the reply could not be read: \(error)")]
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(best).write(to: options.output.appendingPathComponent("best.json"))
        if let checkpoint = best.checkpoint {
            let target = options.output.appendingPathComponent("best.safetensors")
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: URL(fileURLWithPath: checkpoint), to: target)
        }
        log("reward search: best `\(best.expression)` (iteration \(best.iteration)): \(Self.summary(best)); start `\(start.expression)`: \(Self.summary(start))")
        return Result(best: best, start: start, candidates: all)
    }

    /// The largest reward magnitude a candidate may give on any step.
    static let rewardBound = 1e6

    static func summary(_ c: RewardCandidate) -> String {
        if let error = c.error { return "refused: \(error)" }
        if let failure = c.failure { return "not trained: \(failure)" }
        return String(format: "success %.0f%% on held-out episodes, return %.2f", 100 * (c.score ?? 0), c.meanReturn ?? .nan)
    }

    /// Best first: by score, then by the success reached in training, then by the earlier proposal.
    static func ranked(_ cs: [RewardCandidate]) -> [RewardCandidate] {
        cs.sorted { a, b in
            if a.score != b.score { return (a.score ?? -1) > (b.score ?? -1) }
            let (sa, sb) = (a.traces.first { $0.name == "success_rate" }?.max ?? 0, b.traces.first { $0.name == "success_rate" }?.max ?? 0)
            if sa != sb { return sa > sb }
            return (a.iteration, a.index) < (b.iteration, b.index)
        }
    }

    static func better(_ a: RewardCandidate, than b: RewardCandidate) -> Bool {
        ranked([b, a]).first.map { $0.iteration == a.iteration && $0.index == a.index } ?? false
    }

    // MARK: Training the candidates

    /// Checks each candidate, then trains those that parse, `parallel` at once, each on its own lease.
    private func train(_ proposed: [(expression: String, rationale: String?, refusal: String?)], iteration: Int, task: SearchTask, journal: AppendFile,
                       replyError: String? = nil) throws -> [RewardCandidate] {
        var out = proposed.enumerated().map { k, p in
            RewardCandidate(iteration: iteration, index: k, expression: p.expression, rationale: p.rationale, error: p.refusal)
        }
        for k in out.indices where out[k].error == nil {
            do {
                _ = try RewardExpression(out[k].expression, variables: task.variables)
            } catch {
                out[k].error = "\(error)"
            }
        }
        let todo = out.indices.filter { out[$0].error == nil }
        let slots = ResultSlots<RewardCandidate>(count: out.count)
        let cursor = Cursor()
        let workers = min(options.parallel, todo.count)
        let first = out
        // Threads of their own, not Dispatch's pool: each candidate's envs may step several servers
        // at once (concurrentPerform inside concurrentPerform runs serially), and `parallel` may
        // exceed the cores (the candidates wait on their servers most of the time).
        let done = DispatchGroup()
        for _ in 0..<workers {
            done.enter()
            Thread {
                defer { done.leave() }
                while true {
                let j = cursor.next()
                guard j < todo.count else { return }
                let k = todo[j]
                var c = first[k]
                do {
                    try self.trainOne(&c)
                } catch {
                    c.failure = "\(error)"
                }
                slots.set(k, c)
                self.log("  iteration \(iteration) candidate \(k + 1)/\(first.count): `\(c.expression)`: \(Self.summary(c))")
                try? journal.append(Self.jsonLine(c))
                }
            }.start()
        }
        done.wait()
        for k in out.indices {
            if let c = slots.get(k) { out[k] = c } else { try journal.append(Self.jsonLine(out[k])) }
        }
        return out
    }

    static func jsonLine(_ c: RewardCandidate) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(c), as: UTF8.self)) ?? "{}"
    }

    /// Trains one candidate on a lease of its own and scores it on held-out episodes.
    private func trainOne(_ c: inout RewardCandidate) throws {
        let directory = options.output.appendingPathComponent(c.iteration == 0 ? "start" : "iteration_\(c.iteration)/candidate_\(c.index)")
        let env = try VectorEnvGroup(addresses: addresses, total: options.envsPerCandidate, options: .init(clientName: "sim-train-search"),
                                     security: security)
        defer { env.close() }
        var t = TrainOptions(output: directory)
        t.ppo = options.ppo
        t.totalSteps = options.stepsPerCandidate
        t.seed = options.seed
        t.reward = c.expression
        let clock = ContinuousClock()
        let began = clock.now
        let summary = try Trainer(env: env, options: t, log: { _ in }).run()
        c.trainSeconds = (clock.now - began).seconds
        c.checkpoint = summary.checkpoint.path
        c.traces = Self.traces(summary.rewardHistory)
        // Any single step's reward, not only the means: a reward of 1e9 on rare steps trains as badly.
        let extremes = summary.rewardHistory.compactMap { p in p.statistics.names.firstIndex(of: "reward").map { max(abs(p.statistics.min[$0]), abs(p.statistics.max[$0])) } }
        if let worst = extremes.max(), !(worst <= Self.rewardBound) {
            c.error = String(format: "its rewards reach %.3g in magnitude; keep every step's reward within ±%.0e", worst, Self.rewardBound)
            return
        }
        // Scored by the task's success on seeds no candidate trained on, never by its own reward.
        let checkpoint = try Checkpoint.read(summary.checkpoint)
        let report = try Evaluator.run(checkpoint, env: env, episodes: options.evalEpisodes, seed: options.seed &+ 1_000_003)
        c.score = report.successRate
        c.meanReturn = report.meanReturn
    }

    /// About ten evenly spaced points of the run's success rate and reward statistics.
    static func traces(_ history: [RewardPoint]) -> [RewardCandidate.Trace] {
        guard !history.isEmpty else { return [] }
        let points = history.count <= 10 ? Array(history.indices)
            : (0..<10).map { Int((Double($0) * Double(history.count - 1) / 9).rounded()) }
        func trace(_ name: String, _ values: [Double]) -> RewardCandidate.Trace {
            let v = values.map { $0.isFinite ? $0 : 0 }
            return .init(name: name, values: v, max: v.max() ?? 0, mean: v.reduce(0, +) / Double(max(v.count, 1)), min: v.min() ?? 0)
        }
        var out = [trace("success_rate", points.map { history[$0].successRate.isNaN ? 0 : history[$0].successRate })]
        let names = history[0].statistics.names
        for (j, name) in names.enumerated() where name != "success" {
            out.append(trace(name, points.map { history[$0].statistics.mean.indices.contains(j) ? history[$0].statistics.mean[j] : 0 }))
        }
        return out
    }

    // MARK: Asking an LLM

    private func prompt(task: SearchTask, best: RewardCandidate, previous: [RewardCandidate], iteration: Int) -> ChatRequest {
        ChatRequest(system: RewardPrompt.system(task: task, count: options.candidates),
                    user: RewardPrompt.user(task: task, best: best, previous: previous, iteration: iteration, count: options.candidates),
                    maxTokens: 4096, temperature: 1)
    }

    /// Asks the backend for the next candidates. A reply that cannot be read gives no candidates
    /// and its error, which the next prompt feeds back.
    private func ask(_ backend: any ChatBackend, task: SearchTask, best: RewardCandidate, previous: [RewardCandidate], iteration: Int) -> Proposal {
        let request = prompt(task: task, best: best, previous: previous, iteration: iteration)
        let reply: String
        do {
            reply = try blocking { try await backend.complete(request) }
        } catch {
            return Proposal(candidates: [], error: "the backend failed: \(error)", prompt: request, reply: nil)
        }
        switch RewardPrompt.candidates(in: reply, limit: options.candidates) {
        case .success(let cs): return Proposal(candidates: cs, error: nil, prompt: request, reply: reply)
        case .failure(let e): return Proposal(candidates: [], error: e.message, prompt: request, reply: reply)
        }
    }
}

/// The prompts of the reward search and the reading of replies.
enum RewardPrompt {
    struct ReplyError: Error { let message: String }

    static func system(task: SearchTask, count: Int) -> String {
        """
        You are a reward engineer for reinforcement learning in a robot simulator. You write reward \
        functions as expressions in a small, safe expression language (never code) that is evaluated \
        once per control step and per env. Each of your candidates is trained briefly with PPO and \
        scored by the task's own success rate, never by its reward.

        The expression language:
        \(RewardExpression.grammar)

        Reply with one JSON object and nothing else:
        {"candidates": [{"expression": "<reward expression>", "rationale": "<one sentence>"}, ...]}
        with \(count) candidates, each different.
        """
    }

    static func user(task: SearchTask, best: RewardCandidate, previous: [RewardCandidate], iteration: Int, count: Int) -> String {
        var s = "Task: \(task.name) (scene \(task.scene))\n"
        s += "Success: \(task.success.isEmpty ? "(not reported)" : task.success)\n"
        s += "Reward terms (raw values; the task's own weights in brackets):\n"
        for t in task.terms { s += "  \(t.name) [\(fmt(t.weight))]\n" }
        s += "Observations (also readable as obs.<name>):\n"
        for o in task.observations { s += "  \(o.name) (\(o.unit.isEmpty ? "?" : o.unit))\n" }
        s += "Actions (readable as action.<name>, the clipped action):\n"
        for a in task.actions { s += "  action.\(a.name) (\(a.unit.isEmpty ? "?" : a.unit))\n" }
        s += "Also: success and terminated (1 or 0 on this step). The task's own `reward` is not available.\n\n"
        s += "Best reward so far (iteration \(best.iteration)): \(best.expression)\n  \(RewardSearch.summary(best))\n\n"
        s += "Feedback on the previous iteration's candidates (each value's mean at up to ten points of training, then Max, Mean, Min):\n"
        for c in previous {
            if c.index < 0 {
                s += "- your reply: \(c.error ?? "")\n"
                continue
            }
            let shown = c.expression.count <= 400 ? c.expression : String(c.expression.prefix(400)) + "... (\(c.expression.utf8.count) bytes)"
            s += "- candidate \(c.index): \(c.expression.isEmpty ? "(none)" : shown)\n"
            if let error = c.error {
                s += "  refused: \(error)\n"
                continue
            }
            if let failure = c.failure {
                s += "  not trained (a simulator problem, not the expression's): \(failure)\n"
                continue
            }
            s += "  held-out success rate: \(fmt(c.score ?? 0))\n"
            for t in c.traces {
                s += "  \(t.name): [\(t.values.map(fmt).joined(separator: ", "))], Max: \(fmt(t.max)), Mean: \(fmt(t.mean)), Min: \(fmt(t.min))\n"
            }
        }
        s += """

            Analyse the feedback and write \(count) improved candidates (iteration \(iteration)). Rules:
            (1) If the success rates are always near zero, rewrite the entire reward.
            (2) If a term's values are nearly identical throughout training, the policy cannot optimise it: \
            change its scale or drop it.
            (3) If one term's magnitude is much larger than the others', rescale it.
            (4) A candidate that was refused must be fixed: mind the position in its error.
            """
        return s
    }

    /// The candidates of a reply: the JSON object (possibly inside a code fence or prose), at most
    /// `limit`, each an expression string of at most the language's size.
    static func candidates(in reply: String, limit: Int) -> Result<[(expression: String, rationale: String?, refusal: String?)], ReplyError> {
        let text = String(reply.prefix(256 * 1024))
        guard let open = text.firstIndex(of: "{"), let close = text.lastIndex(of: "}"), open < close else {
            return .failure(ReplyError(message: "no JSON object in the reply (\(excerpt(text)))"))
        }
        let json = Data(text[open...close].utf8)
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            return .failure(ReplyError(message: "the reply's JSON does not parse (\(excerpt(String(text[open...close]))))"))
        }
        guard let list = object["candidates"] as? [Any] else {
            return .failure(ReplyError(message: "the reply's JSON has no \"candidates\" array (keys: \(object.keys.sorted().joined(separator: ", ")))"))
        }
        var out: [(String, String?, String?)] = []
        for item in list.prefix(limit) {
            if let e = item as? String {
                out.append((e, nil, nil))
            } else if let o = item as? [String: Any], let e = o["expression"] as? String {
                out.append((e, (o["rationale"] as? String).map { String($0.prefix(1000)) }, nil))
            } else {
                // Kept, so that its refusal reaches the next prompt.
                out.append(("", nil, "not a candidate with an \"expression\" string: \(excerpt("\(item)"))"))
            }
        }
        guard !out.isEmpty else { return .failure(ReplyError(message: "the reply's \"candidates\" array is empty")) }
        return .success(out)
    }

    static func excerpt(_ s: String) -> String {
        let one = s.replacingOccurrences(of: "\n", with: " ")
        return one.count <= 120 ? one : String(one.prefix(120)) + "..."
    }
}

func fmt(_ x: Double) -> String {
    if x == 0 { return "0" }
    return abs(x) >= 1e-3 && abs(x) < 1e5 ? String(format: "%.3f", x).replacingOccurrences(of: #"\.?0+$"#, with: "", options: .regularExpression)
        : String(format: "%.3g", x)
}

/// Runs `operation` on the cooperative pool and waits for it (the search is synchronous code on
/// its own thread).
func blocking<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) throws -> T {
    let slot = ResultSlots<T>(count: 1)
    let done = DispatchSemaphore(value: 0)
    Task {
        do { slot.set(0, try await operation()) } catch { slot.fail(0, error) }
        done.signal()
    }
    done.wait()
    return try slot.result(0)
}

/// Hands out 0, 1, 2 ... to concurrent workers.
final class Cursor: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

/// Results written by concurrent workers, one slot each, read after they all finished.
final class ResultSlots<T>: @unchecked Sendable {
    // Invariant: each slot is written by one worker, under `lock`; read after the workers joined.
    private var values: [Result<T, any Error>?]
    private let lock = NSLock()

    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ k: Int, _ v: T) { lock.withLock { values[k] = .success(v) } }
    func fail(_ k: Int, _ e: any Error) { lock.withLock { values[k] = .failure(e) } }
    func get(_ k: Int) -> T? { lock.withLock { try? values[k]?.get() } }
    func result(_ k: Int) throws -> T { try lock.withLock { values[k] }!.get() }
}
