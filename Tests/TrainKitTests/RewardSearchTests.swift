import Foundation
import ClientKit
import Messaging
import Testing
@testable import TrainKit

/// The reward search's pieces that need no server: weighted sums, the offline mutations, replies.
@Suite struct RewardSearchTests {
    static let terms = ["alive", "terminated", "pole_pos", "cart_vel", "pole_vel"]

    static var task: SearchTask {
        var d = Robosim_DescribeResponse()
        d.scene = "cartpole"
        d.task.name = "cartpole"
        d.task.success = "the pole stays up"
        d.task.rewardTerms = zip(terms, [1, -2, -1, -0.01, -0.005]).map { n, w in .with { $0.name = n; $0.weight = w } }
        d.task.observations = ["pole_angle", "cart_position"].map { n in .with { $0.name = n; $0.unit = "rad" } }
        d.task.actions = [.with { $0.name = "cart_force"; $0.unit = "1" }]
        return SearchTask(d)
    }

    @Test func weightedSumsReadAndWriteBack() throws {
        let r = try #require(LinearReward(parsing: "-0.005 * pole_vel + alive - 2*terminated + 1e-3 * cart_vel + pole_vel * 3", terms: Self.terms))
        #expect(r.expression == "alive - 2 * terminated + 0.001 * cart_vel + 2.995 * pole_vel")
        #expect(LinearReward(parsing: r.expression, terms: Self.terms) == r)
        #expect(LinearReward(parsing: "alive", terms: Self.terms)?.expression == "alive")
        #expect(LinearReward(parsing: "-alive - -pole_pos", terms: Self.terms) == nil)
        #expect(LinearReward(parsing: "abs(pole_pos)", terms: Self.terms) == nil)
        #expect(LinearReward(parsing: "alive * pole_pos", terms: Self.terms) == nil)
        #expect(LinearReward(parsing: "nope", terms: Self.terms) == nil)
        #expect(Self.task.taskReward == "alive - 2 * terminated - pole_pos - 0.01 * cart_vel - 0.005 * pole_vel")
        #expect(!Self.task.variables.contains("reward") && Self.task.variables.contains("obs.pole_angle"))
    }

    @Test func offlineMutationsAreDeterministicUntriedAndFollowTheRules() {
        let p = OfflineProposer(task: Self.task, seed: 3)
        var poor = RewardCandidate(iteration: 0, index: 0, expression: "-0.005 * pole_vel")
        poor.score = 0
        poor.traces = [.init(name: "success_rate", values: [0, 0], max: 0, mean: 0, min: 0)]
        let a = p.propose(count: 16, ranked: [poor], tried: [poor.expression])
        let b = p.propose(count: 16, ranked: [poor], tried: [poor.expression])
        #expect(a.candidates.map(\.expression) == b.candidates.map(\.expression))
        #expect(a.candidates.count == 16 && Set(a.candidates.map(\.expression)).count == 16)
        #expect(!a.candidates.contains { $0.expression == poor.expression })
        // Success near zero: rewrites come first; missing terms are added at their task weights.
        #expect(a.candidates.prefix(6).allSatisfy { $0.rationale?.hasPrefix("rewrite") == true || $0.rationale?.hasPrefix("add") == true })
        #expect(a.candidates.contains { $0.expression == "alive - 0.005 * pole_vel" })
        // A flat term is dropped or scaled up before anything else.
        var flat = RewardCandidate(iteration: 1, index: 0, expression: "alive - pole_pos")
        flat.score = 1
        flat.traces = [.init(name: "success_rate", values: [1], max: 1, mean: 1, min: 1), .init(name: "alive", values: [1, 1], max: 1, mean: 1, min: 1),
                       .init(name: "pole_pos", values: [0.1, 0.01], max: 0.1, mean: 0.05, min: 0.01)]
        let c = p.propose(count: 4, ranked: [flat], tried: [])
        #expect(c.candidates.prefix(2).allSatisfy { $0.rationale?.contains("(flat)") == true || $0.rationale?.hasPrefix("add") == true }, "\(c.candidates)")
        // Used up: the next best's mutations follow.
        let all = Set(p.mutations(of: flat)!.map(\.0))
        let d = p.propose(count: 3, ranked: [flat, poor], tried: all)
        #expect(d.candidates.count == 3 && d.candidates.allSatisfy { $0.rationale?.hasSuffix("of `-0.005 * pole_vel`") == true })
        #expect(p.propose(count: 3, ranked: [RewardCandidate(iteration: 0, index: 0, expression: "abs(pole_pos)")], tried: []).error?.contains("weighted sums") == true)
    }

    @Test func repliesAreReadLenientlyAndRefusedClearly() throws {
        let fenced = "Here you go:\n```json\n{\"candidates\": [{\"expression\": \"alive\", \"rationale\": \"live\"}, \"-pole_pos\", {\"e\": 1}]}\n```"
        let got = try RewardPrompt.candidates(in: fenced, limit: 16).get()
        #expect(got.map(\.expression) == ["alive", "-pole_pos", ""])
        #expect(got[0].rationale == "live" && got[2].refusal?.hasPrefix("not a candidate") == true)
        #expect(try RewardPrompt.candidates(in: fenced, limit: 1).get().count == 1)
        func refusal(_ reply: String) -> String? {
            if case .failure(let e) = RewardPrompt.candidates(in: reply, limit: 4) { return e.message }
            return nil
        }
        #expect(refusal("no json here")?.hasPrefix("no JSON object") == true)
        #expect(refusal("{\"candidates\": [1, 2,}")?.hasPrefix("the reply's JSON does not parse") == true)
        #expect(refusal("{\"answer\": \"alive\"}")?.contains("no \"candidates\" array (keys: answer)") == true)
        #expect(refusal("{\"candidates\": []}")?.contains("empty") == true)
        #expect(refusal(String(repeating: "{", count: 300_000)) != nil)  // bounded: read only the first 256 KiB
    }

    @Test func theUserPromptCarriesTracesRefusalsAndRules() {
        var good = RewardCandidate(iteration: 1, index: 0, expression: "alive")
        good.score = 0.5
        good.traces = [.init(name: "success_rate", values: [0, 0.5], max: 0.5, mean: 0.25, min: 0)]
        let bad = RewardCandidate(iteration: 1, index: 1, expression: "alive +", error: "at 8: expected a value")
        let text = RewardPrompt.user(task: Self.task, best: good, previous: [good, bad], iteration: 2, count: 16)
        #expect(text.contains("success_rate: [0, 0.5], Max: 0.5, Mean: 0.25, Min: 0"))
        #expect(text.contains("- candidate 1: alive +\n  refused: at 8: expected a value"))
        #expect(text.contains("pole_vel [-0.005]") && text.contains("pole_angle (rad)") && text.contains("action.cart_force"))
        #expect(text.contains("rewrite the entire reward"))
        #expect(RewardPrompt.system(task: Self.task, count: 16).contains("clip(x, lo, hi)"))
    }

    @Test func tracesTakeAboutTenPoints() {
        let stats = ClientKit.VectorEnv.RewardStatistics(names: ["alive", "reward", "success"], mean: [1, 2, 0], min: [1, 2, 0], max: [1, 2, 0], steps: 10)
        let history = (0..<37).map { RewardPoint(envSteps: $0, successRate: Double($0) / 36, statistics: stats) }
        let t = RewardSearch.traces(history)
        #expect(t.map(\.name) == ["success_rate", "alive", "reward"])
        #expect(t[0].values.count == 10 && t[0].values.first == 0 && t[0].values.last == 1 && t[0].max == 1)
    }
}
