import Foundation
import StrategistKit
import TestSupport
import Testing
import LLMKit

/// The strategist's planning: the offline planner, strategy parsing and validation, and the
/// fallback from an LLM backend whose strategy fails (over real HTTP).
@Suite struct StrategyTests {
    static let limits = WorkspaceLimits()
    static let slot = Pose2(x: 0.15, y: 0.15, yaw: 0)
    static let tool = SIMD3(-0.05, 0.109, 0.77)

    static func summary(_ bar: Pose2) -> WorkspaceSummary { WorkspaceSummary(tbar: bar, slot: slot, tool: tool, limits: limits) }

    @Test(arguments: [Pose2(x: 0.05, y: -0.15, yaw: 0), Pose2(x: 0.15, y: -0.2, yaw: 2.5), Pose2(x: -0.05, y: -0.05, yaw: -1),
                      Pose2(x: 0.14, y: 0.12, yaw: 0.05)])
    func offlinePlansPassValidation(bar: Pose2) throws {
        let planner = OfflinePlanner()
        let plan = try #require(planner.plan(Self.summary(bar)))
        #expect(plan.problems(tbar: bar, limits: Self.limits).isEmpty)
        #expect(plan.waypoints.last?[2] == Self.limits.pushHeight)
        // The contact is on the outline and the push goes into the bar there.
        let contact = bar.toLocal(SIMD2(plan.contactPoint[0], plan.contactPoint[1]))
        #expect(abs(TbarShape.standard.signedDistance(contact)) < 1e-6)
    }

    @Test func translationPushesTowardTheSlotAndNothingAtTheGoal() throws {
        let planner = OfflinePlanner()
        let plan = try #require(planner.plan(Self.summary(Pose2(x: 0.05, y: -0.15, yaw: 0))))
        #expect(plan.pushSide.hasPrefix("translate"))
        let d = SIMD2(plan.direction[0], plan.direction[1]), toSlot = SIMD2(0.1, 0.3) / (0.1 * 0.1 + 0.3 * 0.3).squareRoot()
        #expect((d * toSlot).sum() > 0.999)
        #expect(planner.plan(Self.summary(Pose2(x: 0.152, y: 0.149, yaw: 0.01))) == nil)
        let turn = try #require(planner.plan(Self.summary(Pose2(x: 0.05, y: -0.15, yaw: 1.2))))
        #expect(turn.pushSide.hasPrefix("rotate_cw"))
    }

    @Test func unsafeOrUnreachableStrategiesAreRejected() throws {
        let bar = Pose2(x: 0.05, y: -0.15, yaw: 0)
        let good = try #require(OfflinePlanner().plan(Self.summary(bar)))
        func problems(_ edit: (inout StrategyPlan) -> Void) -> [String] {
            var p = good
            edit(&p)
            return p.problems(tbar: bar, limits: Self.limits)
        }
        #expect(problems { $0.waypoints[0][2] = 0.70 }.contains { $0.contains("outside the workspace box") })
        #expect(problems { $0.waypoints[0][2] = 0.70 }.contains { $0.contains("below push height") })
        #expect(problems { $0.waypoints.insert([0.5, 0.37, 0.82], at: 0) }.contains { $0.contains("beyond its reach") })
        #expect(problems { $0.waypoints.insert([-0.33, 0.0, 0.82], at: 0) }.contains { $0.contains("dead zone") })
        #expect(problems { $0.contactPoint = [0.3, 0.3] }.contains { $0.contains("from the T-bar's outline") })
        #expect(problems { $0.direction = [-$0.direction[0], -$0.direction[1]] }.first == "direction does not push into the T-bar at contact_point")
        #expect(problems { $0.direction = [.nan, 1] } == ["direction must be 2 finite numbers"])
        #expect(problems { $0.waypoints = [] } == ["waypoints must hold 1 to 12 points"])
        #expect(problems { $0.waypoints[$0.waypoints.count - 1][2] = 0.82 }.contains { $0.contains("the last waypoint must be at push height") })
        // Straight through the bar at push height (from one side of the stem to the other).
        #expect(problems {
            $0.waypoints = [[-0.05, -0.2, 0.763], [0.15, -0.2, 0.763]] + [$0.waypoints.last!]
        }.contains { $0.contains("runs into the T-bar below travel height") })
        // From the tool, straight through the bar to the start of the push (only caught knowing the tool).
        var direct = good
        direct.waypoints = Array(good.waypoints.suffix(2))
        #expect(direct.waypoints[0][1] < -0.2)   // the push starts south of the bar
        #expect(direct.problems(tbar: bar, limits: Self.limits, tool: SIMD3(0.05, 0.0, 0.763))
                == ["the move from the tool to waypoint 0 runs into the T-bar below travel height"])
        // From further back on the push line the way is clear.
        let behind = SIMD3(direct.waypoints[0][0] - 0.05 * good.direction[0], direct.waypoints[0][1] - 0.05 * good.direction[1], 0.763)
        #expect(direct.problems(tbar: bar, limits: Self.limits, tool: behind).isEmpty)
        // A last move that does not run through the contact along the direction.
        #expect(problems { $0.waypoints[$0.waypoints.count - 1][0] += 0.05 }.contains { $0.contains("the last move must run through contact_point") })
        #expect(problems { $0.waypoints[$0.waypoints.count - 2] = $0.waypoints[$0.waypoints.count - 1] }.contains {
            $0.contains("the push must start behind contact_point") })
    }

    @Test func repliesAreParsedFromProseAndFences() throws {
        let plan = try #require(OfflinePlanner().plan(Self.summary(Pose2(x: 0.05, y: -0.15, yaw: 0))))
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        let wrapped = "Here is the plan {as asked}:\n```json\n\(json)\n```"
        #expect(try StrategyPlan.parse(wrapped).get() == plan)
        #expect(StrategyPlan.parse("push it left").failureText == "the reply holds no JSON object")
        #expect(StrategyPlan.parse(#"{"push_side": "x", "contact_point": [0, 0], "direction": [1, 0], "rationale": ""}"#).failureText
                == "missing field 'waypoints'")
        #expect(StrategyPlan.parse(#"{"push_side": "x""#).failureText == "the reply's JSON object is not closed")
    }
}

/// `StrategySource` with the OpenAI-compatible backend against a local HTTP server: a valid
/// strategy is used; an unsafe one, an unusable reply or a failing backend falls back to the
/// offline planner with a warning that says why.
@Suite("Strategy source over real HTTP", .tags(.socket)) struct StrategySourceTests {
    static let bar = Pose2(x: 0.05, y: -0.15, yaw: 0)

    static func completion(_ content: String) throws -> TestHTTPServer.Step {
        let body: [String: Any] = ["id": "c1", "object": "chat.completion", "model": "m",
                                   "choices": [["index": 0, "message": ["role": "assistant", "content": content], "finish_reason": "stop"]]]
        return .json(200, String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self))
    }

    static func decide(_ script: [TestHTTPServer.Step]) async throws -> (StrategyDecision?, LogRecorder, Int) {
        let server = try TestHTTPServer(script)
        defer { server.stop() }
        let log = LogRecorder()
        let backend = OpenAIBackend(endpoint: server.baseURL.appendingPathComponent("v1"), model: "m", apiKey: nil,
                                    retry: fastRetry(SleepRecorder()), logger: log.logger)
        let source = StrategySource(backend: backend, planner: OfflinePlanner(), logger: log.logger)
        let decision = await source.decide(StrategyTests.summary(bar), env: 3)
        return (decision, log, server.requests.count)
    }

    static var offline: StrategyPlan { OfflinePlanner().plan(StrategyTests.summary(bar))! }

    @Test func aValidStrategyIsUsed() async throws {
        var plan = Self.offline
        plan.rationale = "from the model"
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        let (decision, log, requests) = try await Self.decide([try Self.completion(json)])
        #expect(requests == 1)
        #expect(decision?.backend == "openai" && decision?.rejection == nil && decision?.plan.rationale == "from the model")
        #expect(decision?.request?.system.contains("Answer with exactly one JSON object") == true)
        #expect(decision?.request?.user.contains("\"position_error\"") == true)
        #expect(log.entries(.warning).isEmpty)
    }

    @Test func anUnsafeStrategyFallsBackToTheOfflinePlanner() async throws {
        var plan = Self.offline
        plan.waypoints[0][2] = 0.60   // into the table
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        let (decision, log, _) = try await Self.decide([try Self.completion(json)])
        #expect(decision?.backend == "offline" && decision?.plan == Self.offline)
        #expect(decision?.rejection?.hasPrefix("strategy rejected by validation: waypoint 0:") == true, "\(String(describing: decision?.rejection))")
        let warnings = log.entries(.warning)
        #expect(warnings.count == 1 && warnings[0].message.contains("falling back to the offline planner"))
        #expect(warnings.first?.metadata["strategist.env"] == "3")
    }

    @Test func anUnusableReplyOrAFailingBackendFallsBack() async throws {
        let (prose, _, _) = try await Self.decide([try Self.completion("Push it gently to the left.")])
        #expect(prose?.rejection == "unusable reply: the reply holds no JSON object" && prose?.plan == Self.offline)
        let (down, _, requests) = try await Self.decide([.json(500, "{}"), .json(503, "{}"), .json(502, "{}")])
        #expect(requests == 3)
        #expect(down?.rejection?.hasPrefix("backend failed:") == true && down?.plan == Self.offline)
    }
}

extension Result where Failure == StrategyProblem {
    var failureText: String? {
        if case .failure(let e) = self { return e.description }
        return nil
    }
}
