import Foundation

/// A planar pose: position (m) and yaw (rad) in the world frame.
public struct Pose2: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public var yaw: Double
    public init(x: Double, y: Double, yaw: Double) {
        self.x = x
        self.y = y
        self.yaw = yaw
    }

    public var position: SIMD2<Double> { SIMD2(x, y) }

    /// A point given in this pose's frame, in the world frame.
    public func toWorld(_ p: SIMD2<Double>) -> SIMD2<Double> {
        let (c, s) = (cos(yaw), sin(yaw))
        return SIMD2(x + c * p.x - s * p.y, y + s * p.x + c * p.y)
    }

    /// A direction given in this pose's frame, in the world frame.
    public func rotate(_ v: SIMD2<Double>) -> SIMD2<Double> {
        let (c, s) = (cos(yaw), sin(yaw))
        return SIMD2(c * v.x - s * v.y, s * v.x + c * v.y)
    }

    /// A world point in this pose's frame.
    public func toLocal(_ p: SIMD2<Double>) -> SIMD2<Double> {
        let d = p - position
        let (c, s) = (cos(yaw), sin(yaw))
        return SIMD2(c * d.x + s * d.y, -s * d.x + c * d.y)
    }
}

/// Angle wrapped into -π...π.
public func wrapAngle(_ a: Double) -> Double { atan2(sin(a), cos(a)) }

func length(_ v: SIMD2<Double>) -> Double { (v * v).sum().squareRoot() }
func dot(_ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double { (a * b).sum() }
func cross(_ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double { a.x * b.y - a.y * b.x }

/// The T-bar of `Scenes/tbar_push` in its body frame (origin at the centroid; the top bar at +y,
/// the stem toward -y), as a polygon, counter-clockwise.
public struct TbarShape: Sendable {
    public let vertices: [SIMD2<Double>]

    public init(vertices: [SIMD2<Double>]) { self.vertices = vertices }

    /// Top bar 0.20 x 0.05 m, stem 0.05 x 0.15 m, centroid 0.0179 m below the junction.
    public static let standard = TbarShape(vertices: [
        SIMD2(-0.025, -0.132143), SIMD2(0.025, -0.132143), SIMD2(0.025, 0.017857), SIMD2(0.1, 0.017857),
        SIMD2(0.1, 0.067857), SIMD2(-0.1, 0.067857), SIMD2(-0.1, 0.017857), SIMD2(-0.025, 0.017857),
    ])

    public var edges: [(SIMD2<Double>, SIMD2<Double>)] {
        vertices.indices.map { (vertices[$0], vertices[($0 + 1) % vertices.count]) }
    }

    /// Whether the body-frame point `p` lies inside (even-odd rule).
    public func contains(_ p: SIMD2<Double>) -> Bool {
        var inside = false
        for (a, b) in edges where (a.y > p.y) != (b.y > p.y) {
            let x = a.x + (p.y - a.y) / (b.y - a.y) * (b.x - a.x)
            if p.x < x { inside.toggle() }
        }
        return inside
    }

    /// Distance from a body-frame point to the outline (0 on it); negative inside.
    public func signedDistance(_ p: SIMD2<Double>) -> Double {
        let d = edges.map { segmentDistance(p, $0.0, $0.1) }.min() ?? .infinity
        return contains(p) ? -d : d
    }

    /// Where a ray from `origin` along `direction` (body frame) last leaves the outline: the first
    /// point of the bar that something coming from far away along `-direction` would touch.
    public func lastExit(from origin: SIMD2<Double>, along direction: SIMD2<Double>) -> SIMD2<Double>? {
        var best: Double?
        for (a, b) in edges {
            let e = b - a
            let denominator = cross(direction, e)
            guard abs(denominator) > 1e-12 else { continue }
            let t = cross(a - origin, e) / denominator
            let u = cross(a - origin, direction) / denominator
            if t >= 0, u >= -1e-9, u <= 1 + 1e-9 { best = max(best ?? t, t) }
        }
        return best.map { origin + direction * $0 }
    }

    /// Distance between the world-frame segment `p`–`q` and the bar at `pose`.
    public func distance(fromSegment p: SIMD2<Double>, _ q: SIMD2<Double>, pose: Pose2) -> Double {
        let (a, b) = (pose.toLocal(p), pose.toLocal(q))
        if contains(a) || contains(b) { return 0 }
        var best = Double.infinity
        for (u, v) in edges {
            if segmentsIntersect(a, b, u, v) { return 0 }
            best = min(best, segmentDistance(a, u, v), segmentDistance(b, u, v), segmentDistance(u, a, b), segmentDistance(v, a, b))
        }
        return best
    }
}

func segmentDistance(_ p: SIMD2<Double>, _ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double {
    let e = b - a
    let t = max(0, min(1, dot(p - a, e) / max(dot(e, e), 1e-18)))
    return length(p - (a + e * t))
}

func segmentsIntersect(_ p: SIMD2<Double>, _ q: SIMD2<Double>, _ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Bool {
    let d1 = cross(q - p, a - p), d2 = cross(q - p, b - p)
    let d3 = cross(b - a, p - a), d4 = cross(b - a, q - a)
    return ((d1 > 0) != (d2 > 0)) && ((d3 > 0) != (d4 > 0)) && d1 != 0 && d2 != 0 && d3 != 0 && d4 != 0
}
