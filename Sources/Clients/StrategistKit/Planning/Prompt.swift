import Foundation
import LLMKit

/// The prompts the strategist sends an LLM backend: the task, the geometry and conventions, the
/// reply schema (system), and one env's workspace summary (user).
public enum StrategyPrompt {
    public static func system(limits: WorkspaceLimits, shape: TbarShape = .standard) -> String {
        let outline = shape.vertices.map { String(format: "(%.4f, %.4f)", $0.x, $0.y) }.joined(separator: ", ")
        return """
            You plan pushes for a UR5 arm whose vertical pusher (radius \(f(limits.toolRadius)) m) slides a T-shaped bar \
            on a table into a T-shaped slot. One push at a time: after it, you are asked again with the new state.
            Frames: world frame, metres and radians, z up; yaw is counter-clockwise about z. The T-bar's body frame has its \
            origin at the centroid, the top bar toward +y and the stem toward -y; its outline in that frame is the polygon \
            \(outline). The goal: the T-bar's pose equal to the slot's pose within 0.015 m and 5 degrees.
            The tool tip pushes at z = \(f(limits.pushHeight)) m and passes over the T-bar at z = \(f(limits.travelHeight)) m. \
            Every waypoint must lie in the workspace box min \(vector(limits.min)) max \(vector(limits.max)) and between \
            \(f(limits.minReach)) and \(f(limits.maxReach)) m (horizontally) from the arm's shoulder at \
            (\(f(limits.armBase.x)), \(f(limits.armBase.y))). Moves at push height must not cross the T-bar; go over it.
            A push through the centroid translates the bar; a push far from the centroid (the stem's tip, the top bar's \
            ends) turns it. The last waypoint ends the push, at push height, past the contact point by the distance to move.
            Answer with exactly one JSON object and nothing else, following this schema:
            \(StrategyPlan.schema)
            """
    }

    public static func user(_ summary: WorkspaceSummary) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = (try? encoder.encode(summary)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "Workspace state:\n\(json)\nPlan the next push."
    }

    public static func request(_ summary: WorkspaceSummary, limits: WorkspaceLimits) -> ChatRequest {
        ChatRequest(system: system(limits: limits), user: user(summary), maxTokens: 800, temperature: 0)
    }

    static func vector(_ v: SIMD3<Double>) -> String { "(\(f(v.x)), \(f(v.y)), \(f(v.z)))" }
}
