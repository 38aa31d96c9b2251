/// Reset randomization ranges by name, as the server holds them now: the manifest's `reset`
/// section, changed at run time through `/sim/set_parameters` (`reset.<name>`). Plain values.
///
/// A task reads them in its reset phase through `EnvView.range(_:default:)`, so that a change
/// applies from the next episode start on.
public struct ResetRanges: Sendable, Equatable {
    /// Every range by name (`pole_angle` → `-0.785...0.785`).
    public let ranges: [String: ClosedRange<Double>]

    /// Ranges by name (default: none).
    public init(_ ranges: [String: ClosedRange<Double>] = [:]) { self.ranges = ranges }

    /// The range `name`, or `fallback` when there is none.
    public func range(_ name: String, default fallback: ClosedRange<Double>) -> ClosedRange<Double> { ranges[name] ?? fallback }

    /// The range `name`, or nil.
    public subscript(name: String) -> ClosedRange<Double>? { ranges[name] }
}
