import Foundation

/// A pushing strategy: which side of the T-bar to push, where, in which direction, and the tool
/// waypoints (world frame) that approach the contact and push. The JSON shape backends answer in.
public struct StrategyPlan: Sendable, Codable, Equatable {
    /// "translate" or "rotate_ccw" / "rotate_cw", and the face: e.g. "stem_left", "top_front".
    public var pushSide: String
    public var contactPoint: [Double]
    public var direction: [Double]
    /// Tool tip positions [x, y, z], in order; the last is the end of the push.
    public var waypoints: [[Double]]
    public var rationale: String

    enum CodingKeys: String, CodingKey {
        case pushSide = "push_side", contactPoint = "contact_point", direction, waypoints, rationale
    }

    public init(pushSide: String, contactPoint: [Double], direction: [Double], waypoints: [[Double]], rationale: String) {
        self.pushSide = pushSide
        self.contactPoint = contactPoint
        self.direction = direction
        self.waypoints = waypoints
        self.rationale = rationale
    }

    /// The JSON schema backends are asked to follow (also checked by `parse`/`validate`).
    public static let schema = """
        {"type": "object", "required": ["push_side", "contact_point", "direction", "waypoints", "rationale"],
         "properties": {
          "push_side": {"type": "string", "description": "translate | rotate_ccw | rotate_cw, then the face, e.g. translate:stem_left"},
          "contact_point": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "world x, y (m) on the T-bar outline"},
          "direction": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "push direction, world frame, into the T-bar"},
          "waypoints": {"type": "array", "minItems": 1, "maxItems": 12, "items": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}, "description": "tool tip [x, y, z] (m), world frame; the last one ends the push at push height"},
          "rationale": {"type": "string"}}}
        """

    /// The first JSON object in `text` that decodes as a plan (a model may wrap it in prose or a
    /// code fence, and the prose may hold braces of its own); else why the first one does not.
    public static func parse(_ text: String) -> Result<StrategyPlan, StrategyProblem> {
        var firstProblem: StrategyProblem?
        var searchFrom = text.startIndex
        while let start = text[searchFrom...].firstIndex(of: "{") {
            searchFrom = text.index(after: start)
            guard let end = closingBrace(text, from: start) else {
                if firstProblem == nil { firstProblem = "the reply's JSON object is not closed" }
                continue
            }
            switch decode(text[start...end]) {
            case .success(let plan): return .success(plan)
            case .failure(let problem): if firstProblem == nil { firstProblem = problem }
            }
        }
        return .failure(firstProblem ?? "the reply holds no JSON object")
    }

    /// The brace closing the object that opens at `start`, skipping strings.
    static func closingBrace(_ text: String, from start: String.Index) -> String.Index? {
        var depth = 0, inString = false, escaped = false
        for i in text[start...].indices {
            let c = text[i]
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            if c == "\"" { inString = true } else if c == "{" { depth += 1 } else if c == "}" {
                depth -= 1
                if depth == 0 { return i }
            }
        }
        return nil
    }

    static func decode(_ json: Substring) -> Result<StrategyPlan, StrategyProblem> {
        do {
            return .success(try JSONDecoder().decode(StrategyPlan.self, from: Data(json.utf8)))
        } catch let DecodingError.keyNotFound(key, _) {
            return .failure(StrategyProblem("missing field '\(key.stringValue)'"))
        } catch let DecodingError.typeMismatch(_, context) {
            return .failure(StrategyProblem("wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"))
        } catch {
            return .failure(StrategyProblem("invalid JSON: \(error)"))
        }
    }

    /// Checks the plan against the schema's numeric rules and the workspace: sizes, finite
    /// numbers, a contact on the T-bar's outline, a direction into the bar there, every waypoint
    /// reachable and inside the workspace box, the push ending at push height. Returns the
    /// problems (empty: valid).
    public func problems(tbar: Pose2, limits: WorkspaceLimits, shape: TbarShape = .standard, tool: SIMD3<Double>? = nil) -> [String] {
        var out: [String] = []
        guard contactPoint.count == 2, contactPoint.allSatisfy(\.isFinite) else { return ["contact_point must be 2 finite numbers"] }
        guard direction.count == 2, direction.allSatisfy(\.isFinite) else { return ["direction must be 2 finite numbers"] }
        guard (1...12).contains(waypoints.count) else { return ["waypoints must hold 1 to 12 points"] }
        for (i, w) in waypoints.enumerated() where w.count != 3 || !w.allSatisfy(\.isFinite) {
            out.append("waypoint \(i) must be 3 finite numbers")
        }
        if !out.isEmpty { return out }
        let d = SIMD2(direction[0], direction[1])
        guard length(d) > 1e-6 else { return ["direction must not be zero"] }
        let unit = d / length(d)
        let contact = SIMD2(contactPoint[0], contactPoint[1])
        let local = tbar.toLocal(contact)
        let offset = abs(shape.signedDistance(local))
        if offset > 0.02 { out.append("contact_point is \(f(offset)) m from the T-bar's outline (at most 0.020)") }
        // Just behind the contact the tool is outside the bar, just ahead inside it.
        let into = tbar.toLocal(contact + unit * 0.01), behind = tbar.toLocal(contact - unit * 0.02)
        if !shape.contains(into) || shape.contains(behind) { out.append("direction does not push into the T-bar at contact_point") }
        for (i, w) in waypoints.enumerated() {
            if let why = limits.problem(SIMD3(w[0], w[1], w[2])) { out.append("waypoint \(i): \(why)") }
            if w[2] < limits.pushHeight - 0.002 { out.append("waypoint \(i) is below push height \(f(limits.pushHeight)) m") }
        }
        // Moves below travel height before the push (from the tool, when known) must go around the
        // T-bar, not through it; straight lifts and descents are fine.
        let path = (tool.map { [[$0.x, $0.y, $0.z]] } ?? []) + waypoints
        let lowest = limits.travelHeight - 0.02
        for i in 0..<max(0, path.count - 2) {
            let (a, b) = (path[i], path[i + 1])
            let (p, q) = (SIMD2(a[0], a[1]), SIMD2(b[0], b[1]))
            guard a[2] < lowest || b[2] < lowest, length(q - p) > 0.001 else { continue }
            if shape.distance(fromSegment: p, q, pose: tbar) < limits.toolRadius {
                let from = tool == nil ? "waypoint \(i)" : (i == 0 ? "the tool" : "waypoint \(i - 1)")
                let to = tool == nil ? i + 1 : i
                out.append("the move from \(from) to waypoint \(to) runs into the T-bar below travel height")
            }
        }
        // The push: the last move, at push height, from behind the contact through it along direction.
        if path.count >= 2 {
            let (a, b) = (path[path.count - 2], path[path.count - 1])
            let (start, end) = (SIMD2(a[0], a[1]), SIMD2(b[0], b[1]))
            let along = dot(end - start, unit)
            let across = abs(cross(end - start, contact - start)) / max(length(end - start), 1e-9)
            if abs(a[2] - limits.pushHeight) > 0.005 { out.append("the push must start at push height \(f(limits.pushHeight)) m") }
            if dot(start - contact, unit) >= 0 { out.append("the push must start behind contact_point (against direction)") }
            if along <= 0 || along > 0.2 || length(end - start) - along > 0.01 || across > 0.01 {
                out.append("the last move must run through contact_point along direction, at most 0.2 m")
            }
        }
        if let last = waypoints.last, abs(last[2] - limits.pushHeight) > 0.005 {
            out.append("the last waypoint must be at push height \(f(limits.pushHeight)) m")
        }
        return out
    }
}

/// Why a strategy was refused.
public struct StrategyProblem: Error, CustomStringConvertible, ExpressibleByStringLiteral, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public init(stringLiteral value: String) { description = value }
}
