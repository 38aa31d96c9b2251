/// What an action must be, decided once for every way an action arrives (`/sim/step` and the
/// `/env_i/action` topic alike): exactly one value per action component, each finite, else it is
/// refused with the reason; a finite value outside the task's bounds is clipped to them before the
/// task sees it (as gymnasium's `ClipAction` and Stable-Baselines3 do with policy outputs), never
/// refused. A discrete action (`choices` > 0) is one value, a whole-number index in
/// `0..<choices`, and anything else is refused (an index is not clipped). Plain values.
package struct ActionContract: Sendable, Equatable {
    package let low: [Double]
    package let high: [Double]
    package let names: [String]
    /// Choices of a discrete action (0: continuous).
    package let choices: Int

    package init(low: [Double], high: [Double], names: [String], choices: Int = 0) {
        precondition(low.count == high.count && low.count == names.count, "one bound and name per component")
        precondition(choices == 0 || low.count == 1, "a discrete action is one value")
        self.low = low
        self.high = high
        self.names = names
        self.choices = choices
    }

    /// Components per action.
    package var size: Int { low.count }

    /// Why `values` is not an action (the wrong count, or a value that is not finite), else nil.
    package func violation(_ values: some Collection<Double>) -> String? {
        guard values.count == size else { return "expected \(size) action values, got \(values.count)" }
        for (k, v) in values.enumerated() where !v.isFinite {
            return "action \(names[k]) is \(v); actions must be finite"
        }
        if choices > 0, let v = values.first, !(v >= 0 && v < Double(choices) && v == v.rounded()) {
            return "action \(names[0]) is \(v); a discrete action is a whole number in 0...\(choices - 1)"
        }
        return nil
    }

    /// Component `k` of an action, clipped to its bounds.
    @inline(__always) package func clipped(_ value: Double, _ k: Int) -> Double { min(max(value, low[k]), high[k]) }
}
