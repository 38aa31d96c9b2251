import PluginAPI

/// What a scene's task is, as its plugin describes itself (`/sim/describe` carries it): names and
/// units of the observation and action components, action bounds, reward terms and what success
/// means. Checked once when the world is built. Plain values.
package struct TaskDescription: Sendable, Equatable {
    package let name: String
    package let robot: String
    package let observations: [Quantity]
    /// Names of the observation components that describe the environment rather than the robot
    /// (LeRobot's `observation.environment_state`), in observation order.
    package let environmentObservations: [String]
    package let actions: [Quantity]
    package let actionLow: [Double]
    package let actionHigh: [Double]
    /// Choices of a discrete action (0: continuous).
    package let actionChoices: Int
    package let rewardTerms: [RewardTerm]
    package let success: String

    /// The description of `task`, or why it is inconsistent: one name per component, each
    /// non-empty without white space or control characters and unique in its vector; finite
    /// action bounds with low <= high; distinct reward term names; environment observations that
    /// name observation components, each once, leaving at least one for the robot.
    package init(task: any TaskPlugin, robot: String) throws(PluginError) {
        name = type(of: task).name
        self.robot = robot
        observations = task.observationNames
        actions = task.actionNames
        actionLow = task.actionLow
        actionHigh = task.actionHigh
        actionChoices = task.actionChoices
        rewardTerms = task.rewardTerms
        success = task.successCriterion
        try Self.check(observations, count: task.observationSize, what: "observation")
        let environment = task.environmentObservations
        let observationNames = task.observationNames.map(\.name)
        guard Set(environment).count == environment.count, environment.allSatisfy(observationNames.contains),
              environment.count < observations.count || observations.isEmpty else {
            throw PluginError("\(name): environment observations \(environment) must name distinct observation components and leave at least one for the robot")
        }
        environmentObservations = observationNames.filter(environment.contains)
        try Self.check(actions, count: task.actionSize, what: "action")
        guard actionLow.count == task.actionSize, actionHigh.count == task.actionSize else {
            throw PluginError("\(name): \(task.actionSize) action components but \(actionLow.count) low and \(actionHigh.count) high bounds")
        }
        for k in 0..<task.actionSize where !(actionLow[k].isFinite && actionHigh[k].isFinite && actionLow[k] <= actionHigh[k]) {
            throw PluginError("\(name): action \(actions[k].name) has bounds [\(actionLow[k]), \(actionHigh[k])]; they must be finite with low <= high")
        }
        if actionChoices != 0 {
            guard actionChoices >= 2, actionChoices <= 1 << 16, task.actionSize == 1, actionLow == [0], actionHigh == [Double(actionChoices - 1)] else {
                throw PluginError("\(name): a discrete action has 2...65536 choices, one component, and bounds [0, choices - 1]; got \(actionChoices) choices, \(task.actionSize) components, [\(actionLow), \(actionHigh)]")
            }
        }
        try Self.check(rewardTerms.map { Quantity($0.name) }, count: rewardTerms.count, what: "reward term")
    }

    private static func check(_ names: [Quantity], count: Int, what: String) throws(PluginError) {
        guard names.count == count else { throw PluginError("\(count) \(what) components but \(names.count) \(what) names") }
        var seen = Set<String>()
        for q in names {
            guard !q.name.isEmpty, !q.name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f }) else {
                throw PluginError("\(what) name '\(q.name)' must be non-empty without spaces or control characters")
            }
            guard seen.insert(q.name).inserted else { throw PluginError("\(what) name '\(q.name)' appears twice") }
        }
    }

    /// The index of observation component `name`, or nil.
    package func observationIndex(_ name: String) -> Int? { observations.firstIndex { $0.name == name } }
}
