/// Publication rates of the per-env topics, in Hz of sim time: the state topics' from the
/// manifest's `topic_rates_hz` (default 30 each) and each camera's from its `rate_hz` (named
/// `camera.<name>`), changed at run time through `/sim/set_parameters` (`rate.<name>`). The
/// `TopicScheduler` turns them into due steps. Plain values.
struct TopicRates: Sendable, Equatable {
    /// The state topics with a rate, in the order `/sim/get_parameters` lists them.
    static let stateTopics = ["joint_states", "tf", "robot_pose", "odom", "objects"]
    /// Rate of a state topic the manifest does not name.
    static let defaultHz = 30.0
    /// The largest and the smallest rate (Hz).
    static let maxHz = 1000.0
    static let minHz = 0.01

    /// Every topic with a rate: the state topics, then `camera.<name>` per camera; a topic's
    /// position here is its index in the scheduler.
    let names: [String]
    private var hz: [Double]

    /// The manifest's state rates (names other than `stateTopics` are ignored) and the cameras' rates.
    init(manifest: [String: Double], cameras: [(name: String, hz: Double)] = []) {
        names = Self.stateTopics + cameras.map { "camera.\($0.name)" }
        hz = Self.stateTopics.map { manifest[$0] ?? Self.defaultHz } + cameras.map(\.hz)
    }

    /// True for a rate that `/sim/set_parameters` accepts: in [`minHz`, `maxHz`].
    static func isValid(_ rate: Double) -> Bool { rate >= minHz && rate <= maxHz }

    /// The index of topic `name`, or nil.
    func index(_ name: String) -> Int? { names.firstIndex(of: name) }

    /// The rate of topic `index` in Hz.
    subscript(index: Int) -> Double {
        get { hz[index] }
        set { hz[index] = newValue }
    }

    /// The rate of `name` (one of `names`) in Hz.
    subscript(name: String) -> Double {
        get { index(name).map { hz[$0] } ?? Self.defaultHz }
        set {
            guard let i = index(name) else { preconditionFailure("unknown topic rate '\(name)'") }
            hz[i] = newValue
        }
    }
}

/// Decides when every per-env topic is due, state topics and cameras alike, by one rule: a topic at
/// r Hz of sim time is due at control step s of an episode when ⌊s·dt·r⌋ > ⌊s'·dt·r⌋, s' being the
/// topic's last due step in the episode, and at every episode start. Its average rate is then
/// exactly r (at most one message per control step), whatever the ratio of r to the control rate;
/// a new rate holds from the next step on, measured from the last message. Step loop thread only.
struct TopicScheduler {
    let controlDt: Double
    private(set) var rates: TopicRates
    private let topicCount: Int
    /// Per (env, topic): the episode step of the last due message; -1 at an episode start.
    private var last: [Int]
    /// Per env: the episode count the slots above belong to.
    private var epochs: [UInt64]

    init(envCount: Int, controlDt: Double, rates: TopicRates) {
        self.controlDt = controlDt
        self.rates = rates
        topicCount = rates.names.count
        last = Array(repeating: -1, count: envCount * topicCount)
        epochs = Array(repeating: .max, count: envCount)
    }

    mutating func setRates(_ rates: TopicRates) {
        precondition(rates.names == self.rates.names, "the topics of a scheduler do not change")
        self.rates = rates
    }

    /// Whether topic `topic` of env `env` is due at control step `step` of its episode `epoch`
    /// (the env's episode start count); if so, it is marked as sent.
    mutating func due(env: Int, topic: Int, step: Int, epoch: UInt64) -> Bool {
        if epochs[env] != epoch {
            epochs[env] = epoch
            for t in 0..<topicCount { last[env * topicCount + t] = -1 }
        }
        let slot = env * topicCount + topic
        let perStep = controlDt * rates[topic]
        // Both in Double: no rate or step count can trap a conversion.
        func bucket(_ s: Int) -> Double { (Double(s) * perStep + 1e-9).rounded(.down) }
        guard step != last[slot], last[slot] < 0 || bucket(step) > bucket(last[slot]) else { return false }
        last[slot] = step
        return true
    }
}
