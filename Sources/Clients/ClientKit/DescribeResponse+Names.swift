import Messaging

extension Robosim_DescribeResponse {
    /// The task's names of the observation components, in order (`observation_<i>` from a server
    /// that names none).
    public var observationNames: [String] {
        task.observations.count == Int(observationSize)
            ? task.observations.map(\.name) : (0..<Int(observationSize)).map { "observation_\($0)" }
    }

    /// The task's names of the action components, in order (`action_<i>` from a server that names none).
    public var actionNames: [String] {
        task.actions.count == Int(actionSize) ? task.actions.map(\.name) : (0..<Int(actionSize)).map { "action_\($0)" }
    }
}
