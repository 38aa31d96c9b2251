import PluginAPI

/// The plugins compiled into sim-server.
public enum BuiltinPlugins {
    /// Registers every built-in task and robot.
    public static func register(into registry: PluginRegistry) {
        registry.register(robot: ArmRobot.self)
        registry.register(robot: DiffDriveRobot.self)
        registry.register(robot: MotorJointsRobot.self)
        // Scenes name their robot; these are motor-driven joint robots.
        registry.register(robot: MotorJointsRobot.self, as: "cartpole")
        registry.register(robot: MotorJointsRobot.self, as: "pendulum")
        registry.register(task: CartpoleTask.self)
        registry.register(task: JointControlTask.self)
        registry.register(task: ObjectTrackerTask.self)
        registry.register(task: TbarPushTask.self)
    }
}
