import Foundation
import Logging
import LLMKit

/// A strategy for one env's state, where it came from, and what was asked and answered.
public struct StrategyDecision: Sendable {
    public var plan: StrategyPlan
    /// The backend that produced `plan`: `offline`, `bedrock`, `openai`.
    public var backend: String
    /// Set when an LLM backend was asked: the request, its reply (if any), and why the strategy
    /// was not used (backend failure, unparsable reply, validation problems); then `plan` is the
    /// offline planner's.
    public var request: ChatRequest?
    public var reply: String?
    public var rejection: String?
}

/// Asks the configured backend for a strategy and checks it: a reply that fails, does not parse,
/// or does not pass validation against the schema and the workspace is replaced by the offline
/// planner's strategy, with one clear log line saying why. Never throws.
public struct StrategySource: Sendable {
    public let backend: (any ChatBackend)?
    public let planner: OfflinePlanner
    let logger: Logger

    public init(backend: (any ChatBackend)?, planner: OfflinePlanner, logger: Logger) {
        self.backend = backend
        self.planner = planner
        self.logger = logger
    }

    public var name: String { backend?.name ?? "offline" }

    /// A strategy for `summary`, or nil when the T-bar is at the goal (or no push is feasible).
    public func decide(_ summary: WorkspaceSummary, env: Int) async -> StrategyDecision? {
        guard let backend else {
            return planner.plan(summary).map { StrategyDecision(plan: $0, backend: "offline") }
        }
        if planner.done(summary) { return nil }
        let request = StrategyPrompt.request(summary, limits: planner.limits)
        var reply: String?
        let rejection: String
        do {
            let text = try await backend.complete(request)
            reply = text
            switch StrategyPlan.parse(text) {
            case .success(let plan):
                let tool = SIMD3(summary.tool[0], summary.tool[1], summary.tool[2])
                let problems = plan.problems(tbar: summary.tbar, limits: planner.limits, shape: planner.shape, tool: tool)
                if problems.isEmpty { return StrategyDecision(plan: plan, backend: backend.name, request: request, reply: text) }
                rejection = "strategy rejected by validation: " + problems.joined(separator: "; ")
            case .failure(let problem):
                rejection = "unusable reply: \(problem)"
            }
        } catch {
            rejection = "backend failed: \(error)"
        }
        logger.warning("\(backend.name) strategy not used, falling back to the offline planner", metadata: [
            "strategist.env": "\(env)", "strategist.reason": "\(rejection)",
        ])
        return planner.plan(summary).map {
            StrategyDecision(plan: $0, backend: "offline", request: request, reply: reply, rejection: rejection)
        }
    }
}
