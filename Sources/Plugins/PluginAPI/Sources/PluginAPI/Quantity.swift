/// One named component of an observation or action vector, with its unit: what clients show and
/// record instead of an index (`/sim/describe`, LeRobot feature names, gymnasium wrappers).
///
/// Names are short identifiers (`pole_angle`, `tbar_x`): non-empty, no white space, unique within
/// their vector. Units are SI symbols (`m`, `rad`, `m/s`, `rad/s`, `N`), `1` for a dimensionless
/// value (a cosine, a fraction of a limit), or empty when unknown.
public struct Quantity: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let unit: String

    public init(_ name: String, _ unit: String = "") {
        self.name = name
        self.unit = unit
    }

    public var description: String { unit.isEmpty ? name : "\(name) [\(unit)]" }

    /// Names for a vector whose components have no names of their own: `prefix_0`, `prefix_1`...
    public static func numbered(_ prefix: String, count: Int, unit: String = "") -> [Quantity] {
        (0..<count).map { Quantity("\(prefix)_\($0)", unit) }
    }
}
