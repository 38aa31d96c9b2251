/// The plugin API version. A plugin records the version it was compiled against (this property is
/// inlined into the plugin); the server refuses a plugin whose version differs from its own.
/// Version 2: `EnvView` carries the reset ranges in force (`resetRanges`, `range(_:default:)`).
/// Version 3: tasks describe themselves (`observationNames`, `actionNames`, `successCriterion`).
/// Version 4: discrete actions (`TaskPlugin.actionChoices`).
/// Version 5: tasks say which observations describe the environment (`environmentObservations`).
public enum PluginAPIVersion {
    @inlinable public static var current: Int { 5 }
}

/// A plugin failed to configure or to load: a one-line reason for the user.
public struct PluginError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A named reward term and its weight; the reward is the weighted sum of the terms' values.
public struct RewardTerm: Sendable, Equatable {
    public let name: String
    public let weight: Double
    public init(_ name: String, weight: Double) {
        self.name = name
        self.weight = weight
    }
}
