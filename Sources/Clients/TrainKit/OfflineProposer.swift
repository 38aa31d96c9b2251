import Foundation

/// A reward of the offline search: a weighted sum of the task's terms, `w1 * t1 + w2 * t2 ...`.
struct LinearReward: Equatable {
    /// Terms in the task's order, with their weights (no zero weights).
    var weights: [(name: String, weight: Double)]

    init(_ weights: [(String, Double)]) { self.weights = weights.filter { $0.1 != 0 }.map { ($0.0, $0.1) } }

    static func == (a: LinearReward, b: LinearReward) -> Bool { a.expression == b.expression }

    var expression: String {
        guard !weights.isEmpty else { return "0" }
        var s = ""
        for (k, t) in weights.enumerated() {
            let w = t.weight
            if k == 0 {
                s += w == 1 ? "" : w == -1 ? "-" : "\(Self.number(w)) * "
            } else {
                s += w < 0 ? " - " : " + "
                s += abs(w) == 1 ? "" : "\(Self.number(abs(w))) * "
            }
            s += t.name
        }
        return s
    }

    /// `w` to 4 significant digits, in the reward language's number syntax (`5e-07` stays `5e-07`,
    /// never `0`).
    static func number(_ w: Double) -> String { String(format: "%.4g", w) }

    /// Reads `a * name + b * name - name ...` (a weight before or after its term, or none), over
    /// `terms`; nil for anything else.
    init?(parsing text: String, terms: [String]) {
        // Split at the + and - between terms (not at an exponent's sign, as in 1e-3).
        var pieces: [(sign: Double, text: String)] = []
        var current = "", sign = 1.0
        let chars = Array(text.filter { !$0.isWhitespace })
        for (i, ch) in chars.enumerated() {
            let exponent = i >= 2 && (chars[i - 1] == "e" || chars[i - 1] == "E") && chars[i - 2].isNumber
            if (ch == "+" || ch == "-") && !exponent {
                if !current.isEmpty { pieces.append((sign, current)) } else if i != 0 { return nil }
                (current, sign) = ("", ch == "-" ? -1 : 1)
            } else {
                current.append(ch)
            }
        }
        guard !current.isEmpty else { return nil }
        pieces.append((sign, current))
        var parts: [(String, Double)] = []
        for piece in pieces {
            var weight = piece.sign, name: String?
            for f in piece.text.split(separator: "*", omittingEmptySubsequences: false) {
                if let x = Double(f), x.isFinite { weight *= x } else if terms.contains(String(f)), name == nil { name = String(f) } else { return nil }
            }
            guard let name else { return nil }
            parts.append((name, weight))
        }
        // Terms once each, in the task's order.
        var merged: [String: Double] = [:]
        for (n, w) in parts { merged[n, default: 0] += w }
        self.init(terms.compactMap { n in merged[n].map { (n, $0) } })
    }
}

/// The offline backend of the reward search: deterministic mutations of the best reward so far,
/// a weighted sum of the task's terms, guided by its feedback as Eureka's rules say: rewrite when
/// success stays near zero (random subsets of the terms at their task weights, rescaled), drop or
/// rescale terms that stay flat, scale down terms that dominate, add missing terms, rescale and
/// flip the others. Same seed, same best, same proposals.
struct OfflineProposer {
    let task: SearchTask
    let seed: UInt64

    /// Up to `count` untried candidates: mutations of the best reward, then of the next best ones
    /// (`ranked`, best first) when the best's own are used up.
    func propose(count: Int, ranked: [RewardCandidate], tried: Set<String>) -> Proposal {
        var out: [(expression: String, rationale: String?, refusal: String?)] = []
        var seen = tried
        var unreadable: [String] = []
        for parent in ranked where out.count < count {
            guard let m = mutations(of: parent) else {
                unreadable.append(parent.expression)
                continue
            }
            for (e, why) in m where out.count < count && !seen.contains(e) {
                seen.insert(e)
                out.append((e, parent.iteration == ranked.first?.iteration && parent.index == ranked.first?.index ? why : "\(why) of `\(parent.expression)`", nil))
            }
        }
        if out.isEmpty {
            let why = ranked.isEmpty ? "the offline backend mutates trained rewards, and none has trained yet"
                : unreadable.count == ranked.count
                ? "the offline backend mutates weighted sums of the task's terms (w * term + ...); `\(ranked[0].expression)` is not one"
                : "the offline backend has no untried mutation left"
            return Proposal(candidates: [], error: why)
        }
        return Proposal(candidates: out, error: nil)
    }

    /// The mutations of one reward, the prioritized ones first, each group in a seeded order; nil
    /// when it is not a weighted sum of the task's terms.
    func mutations(of best: RewardCandidate) -> [(String, String)]? {
        let names = task.terms.map(\.name)
        let taskWeight = Dictionary(uniqueKeysWithValues: task.terms.map { ($0.name, $0.weight == 0 ? 1 : $0.weight) })
        var random = TrainRandom(seed: seed ^ (UInt64(best.iteration) &* 0x9E37_79B9) ^ UInt64(truncatingIfNeeded: best.expression.hashValueStable))
        guard let parent = LinearReward(parsing: best.expression, terms: names) else { return nil }
        let trace = Dictionary(best.traces.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let success = trace["success_rate"]?.max ?? best.score ?? 0
        var first: [(LinearReward, String)] = [], rest: [(LinearReward, String)] = []
        func with(_ change: (inout [(name: String, weight: Double)]) -> Void) -> LinearReward {
            var w = parent.weights
            change(&w)
            return LinearReward(names.compactMap { n in w.first { $0.name == n }.map { (n, $0.weight) } })
        }
        // Rule 1: success near zero: rewrite (random subsets of the terms at their task weights).
        if success < 0.1 || (best.score ?? 0) < 0.1 {
            for _ in 0..<6 {
                var picked = names.filter { _ in random.uniform() < 0.5 }
                if picked.isEmpty { picked = [names[Int(random.next() % UInt64(names.count))]] }
                let scales = [0.5, 1, 2]
                first.append((LinearReward(picked.map { ($0, taskWeight[$0]! * scales[Int(random.next() % 3)]) }), "rewrite: success stayed near zero"))
            }
        }
        func add(_ priority: Bool, _ r: LinearReward, _ why: String) {
            if priority { first.append((r, why)) } else { rest.append((r, why)) }
        }
        for t in parent.weights {
            let values = trace[t.name]
            let flat = values.map { $0.max - $0.min <= 1e-6 * max(1, abs($0.mean)) } ?? false
            let magnitude = abs(t.weight * (values?.mean ?? 0))
            let others = parent.weights.filter { $0.name != t.name }.map { abs($0.weight * (trace[$0.name]?.mean ?? 0)) }.max() ?? 0
            let dominant = others > 0 && magnitude > 10 * others
            func scaled(_ f: Double) -> LinearReward { with { w in for k in w.indices where w[k].name == t.name { w[k].weight *= f } } }
            if parent.weights.count > 1 { add(flat, with { $0.removeAll { $0.name == t.name } }, "drop \(t.name)\(flat ? " (flat)" : "")") }
            add(dominant, scaled(0.3), "scale \(t.name) by 0.3\(dominant ? " (dominant)" : "")")
            add(flat, scaled(3), "scale \(t.name) by 3\(flat ? " (flat)" : "")")
            add(false, scaled(-1), "flip the sign of \(t.name)")
        }
        for n in names where !parent.weights.contains(where: { $0.name == n }) {
            add(true, with { $0.append((n, taskWeight[n]!)) }, "add \(n) at its task weight")
            add(false, with { $0.append((n, taskWeight[n]! * 0.3)) }, "add \(n) at 0.3 of its task weight")
        }
        var out: [(String, String)] = []
        for group in [first, rest] {
            for i in random.permutation(group.count) where group[i].0.expression != "0" {
                out.append((group[i].0.expression, group[i].1))
            }
        }
        return out
    }
}

extension String {
    /// FNV-1a of the UTF-8 bytes: a hash that is the same in every process (Swift's is seeded).
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
