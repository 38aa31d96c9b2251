/// What a plugin may know of the compiled model: sizes and name lookups. Immutable, shared by all
/// environments; valid for the life of the world. Names follow the MJCF file.
public struct ModelView: Sendable {
    /// A joint: where its coordinates live in `EnvView.qpos` and `EnvView.qvel`.
    public struct Joint: Sendable, Equatable {
        public enum Kind: Int, Sendable { case free = 0, ball = 1, slide = 2, hinge = 3 }
        public let index: Int
        public let kind: Kind
        public let qposAddress: Int
        public let dofAddress: Int
        /// Position limits (radians or metres) when the joint is limited.
        public let range: ClosedRange<Double>?
        public init(index: Int, kind: Kind, qposAddress: Int, dofAddress: Int, range: ClosedRange<Double>?) {
            self.index = index
            self.kind = kind
            self.qposAddress = qposAddress
            self.dofAddress = dofAddress
            self.range = range
        }
    }

    public let nq: Int, nv: Int, nu: Int, nbody: Int, nsite: Int
    /// Physics timestep in seconds.
    public let timestep: Double
    /// Joints, actuators, bodies and sites by name.
    public let joints: [String: Joint]
    public let actuators: [String: Int]
    public let bodies: [String: Int]
    public let sites: [String: Int]
    /// Control range of each actuator, when limited.
    public let controlRanges: [ClosedRange<Double>?]
    /// The joint each actuator drives, by name, when its transmission is a named joint (else nil).
    public let actuatorJoints: [String?]

    public init(nq: Int, nv: Int, nu: Int, nbody: Int, nsite: Int, timestep: Double, joints: [String: Joint],
                actuators: [String: Int], bodies: [String: Int], sites: [String: Int], controlRanges: [ClosedRange<Double>?],
                actuatorJoints: [String?] = []) {
        self.nq = nq
        self.nv = nv
        self.nu = nu
        self.nbody = nbody
        self.nsite = nsite
        self.timestep = timestep
        self.joints = joints
        self.actuators = actuators
        self.bodies = bodies
        self.sites = sites
        self.controlRanges = controlRanges
        self.actuatorJoints = actuatorJoints.isEmpty ? Array(repeating: nil, count: nu) : actuatorJoints
    }

    /// The joint named `name`, or a `PluginError` naming what is missing.
    public func joint(_ name: String) throws(PluginError) -> Joint {
        guard let j = joints[name] else { throw PluginError("the model has no joint '\(name)' (joints: \(joints.keys.sorted().joined(separator: ", ")))") }
        return j
    }

    /// The index of the actuator named `name`, or a `PluginError`.
    public func actuator(_ name: String) throws(PluginError) -> Int {
        guard let a = actuators[name] else { throw PluginError("the model has no actuator '\(name)'") }
        return a
    }

    /// The index of the body named `name`, or a `PluginError`.
    public func body(_ name: String) throws(PluginError) -> Int {
        guard let b = bodies[name] else { throw PluginError("the model has no body '\(name)'") }
        return b
    }

    /// The index of the site named `name`, or a `PluginError`.
    public func site(_ name: String) throws(PluginError) -> Int {
        guard let s = sites[name] else { throw PluginError("the model has no site '\(name)'") }
        return s
    }
}
