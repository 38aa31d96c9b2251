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

    /// The observation components that describe the environment rather than the robot
    /// (`observation.environment_state` in a dataset), in observation order; names the task does
    /// not have are dropped (none from a server that gives none).
    public var environmentObservationNames: [String] {
        let names = observationNames
        let environment = Set(task.environmentObservations)
        return names.filter(environment.contains)
    }
}
