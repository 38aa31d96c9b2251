/// Publication rates of the per-env topics, in Hz of sim time: the manifest's `topic_rates_hz`
/// (default 30 each), changed at run time through `/sim/set_parameters` (`rate.<name>`). A topic
/// goes out every `every(_:controlDt:)` control steps: its rate rounded to whole control steps.
/// Plain values.
struct TopicRates: Sendable, Equatable {
    /// The topics with a rate, in the order `/sim/get_parameters` lists them.
    static let names = ["joint_states", "tf", "robot_pose", "odom", "objects"]
    /// Rate of a topic the manifest does not name.
    static let defaultHz = 30.0
    /// The largest and the smallest rate (Hz).
    static let maxHz = 1000.0
    static let minHz = 0.01

    private var hz: [String: Double]

    /// The manifest's rates (names other than `names` are ignored).
    init(manifest: [String: Double]) {
        hz = Dictionary(uniqueKeysWithValues: Self.names.map { ($0, manifest[$0] ?? Self.defaultHz) })
    }

    /// True for a rate that `/sim/set_parameters` accepts: in [`minHz`, `maxHz`].
    static func isValid(_ rate: Double) -> Bool { rate >= minHz && rate <= maxHz }

    /// The rate of `name` (one of `names`) in Hz.
    subscript(name: String) -> Double {
        get { hz[name] ?? Self.defaultHz }
        set {
            precondition(Self.names.contains(name), "unknown topic rate '\(name)'")
            hz[name] = newValue
        }
    }

    /// Control steps between two messages of `name` at its rate: at least 1.
    func every(_ name: String, controlDt: Double) -> Int {
        // Clamped before the conversion: a rate far below the control rate must not trap.
        Int(min(1e9, max(1, (1 / (self[name] * controlDt)).rounded())))
    }
}
