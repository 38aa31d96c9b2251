import PluginAPI

/// The plugins compiled into sim-server.
public enum BuiltinPlugins {
    /// Registers every built-in task.
    public static func register(into registry: PluginRegistry) {
        registry.register(task: CartpoleTask.self)
        registry.register(task: JointControlTask.self)
        registry.register(task: ObjectTrackerTask.self)
    }
}
