import ClientKit
import Foundation

/// What a dataset holds besides its frames: the names, shapes and rate of its features. Codable:
/// kept in `meta/robosim_collect.json` so that `--resume` appends to the same layout.
public struct DatasetSpec: Sendable, Codable, Equatable {
    public enum Format: String, Sendable, Codable, CaseIterable {
        case lerobotV30 = "lerobot-v3.0"
        case lerobotV21 = "lerobot-v2.1"
    }

    public struct Camera: Sendable, Codable, Equatable {
        public var name: String
        public var width: Int
        public var height: Int
        public init(name: String, width: Int, height: Int) {
            self.name = name
            self.width = width
            self.height = height
        }
        /// The feature key: `observation.images.<name>`.
        public var key: String { "observation.images.\(name)" }
    }

    public var format: Format
    public var fps: Double
    public var robotType: String?
    /// The task's observation components, in order: what each recorded state vector holds.
    public var stateNames: [String]
    /// Those of `stateNames` that describe the environment (the task's `environment_observations`),
    /// recorded as `observation.environment_state`; the others are `observation.state`.
    public var environmentStateNames: [String]
    public var actionNames: [String]
    public var cameras: [Camera]
    public var videoCodec: String

    public init(format: Format, fps: Double, robotType: String?, stateNames: [String], environmentStateNames: [String] = [],
                actionNames: [String], cameras: [Camera], videoCodec: VideoEncoder.Codec) {
        self.format = format
        self.fps = fps
        self.robotType = robotType
        self.stateNames = stateNames
        self.environmentStateNames = stateNames.filter(Set(environmentStateNames).contains)
        self.actionNames = actionNames
        self.cameras = cameras
        self.videoCodec = videoCodec.rawValue
    }

    private enum CodingKeys: String, CodingKey {
        case format, fps, robotType, stateNames, environmentStateNames, actionNames, cameras, videoCodec
    }

    /// Datasets recorded before `environmentStateNames` existed have none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(Format.self, forKey: .format)
        fps = try c.decode(Double.self, forKey: .fps)
        robotType = try c.decodeIfPresent(String.self, forKey: .robotType)
        stateNames = try c.decode([String].self, forKey: .stateNames)
        environmentStateNames = try c.decodeIfPresent([String].self, forKey: .environmentStateNames) ?? []
        actionNames = try c.decode([String].self, forKey: .actionNames)
        cameras = try c.decode([Camera].self, forKey: .cameras)
        videoCodec = try c.decode(String.self, forKey: .videoCodec)
    }

    /// A state feature of the dataset: its key, component names, and where they sit in the state vector.
    public struct StateFeature: Sendable, Equatable {
        public let key: String
        public let names: [String]
        public let indices: [Int]
    }

    /// `observation.state` (the robot's components), then `observation.environment_state` when the
    /// task names environment components; together they hold every state component once.
    public var stateFeatures: [StateFeature] {
        let environment = Set(environmentStateNames)
        let robot = stateNames.indices.filter { !environment.contains(stateNames[$0]) }
        var out = [StateFeature(key: "observation.state", names: robot.map { stateNames[$0] }, indices: robot)]
        if !environment.isEmpty {
            let indices = stateNames.indices.filter { environment.contains(stateNames[$0]) }
            out.append(StateFeature(key: "observation.environment_state", names: indices.map { stateNames[$0] }, indices: indices))
        }
        return out
    }
}

extension DatasetSpec.StateFeature {
    /// This feature's components of row-major state vectors (`stateWidth` per row).
    func gather(_ states: [Float], stateWidth: Int) -> [Float] {
        guard stateWidth > 0, indices.count != stateWidth else { return states }
        var out: [Float] = []
        out.reserveCapacity(states.count / stateWidth * indices.count)
        var row = 0
        while row < states.count {
            for i in indices { out.append(states[row + i]) }
            row += stateWidth
        }
        return out
    }
}

/// One finished episode of one env, frame by frame: what the policy saw (state and images),
/// what it did (action), and what followed (`next.reward`, `next.done`, `next.success`).
public struct RecordedEpisode: Sendable {
    /// Frames so far.
    public private(set) var length = 0
    /// Row-major: `length` rows of the state size / action size.
    public private(set) var states: [Float] = []
    public private(set) var actions: [Float] = []
    public private(set) var rewards: [Float] = []
    public private(set) var dones: [Bool] = []
    public private(set) var successes: [Bool] = []
    /// Per camera (the spec's order), one rgb8 frame per step.
    public private(set) var images: [[[UInt8]]]
    /// The task text of the episode.
    public var task: String
    /// Where it was recorded: the server's env index, and the episode's number in that env's run
    /// since the collector's reset (`/sim/reset` seed, env index and this number determine it).
    public var env: Int
    public var envEpisode: Int
    /// The seed of that reset.
    public var runSeed: UInt64 = 0
    /// The env's seed index in that run (`ResetRequest.seed_indices`; its env index unless set).
    public var seedIndex: Int
    /// What replay needs besides: the server's scene and version, and whether `actions` are the
    /// task's actions or end-effector targets (`ReplayInput`).
    public var scene = ""
    public var serverVersion = ""
    public var input = ReplayInput.action

    public init(cameras: Int, task: String, env: Int, envEpisode: Int) {
        images = Array(repeating: [], count: cameras)
        self.task = task
        self.env = env
        self.envEpisode = envEpisode
        seedIndex = env
    }

    /// Appends one frame: the observation before the action, the action, and the step's outcome.
    public mutating func append(state: some Collection<Double>, action: some Collection<Double>, images frames: [[UInt8]],
                                reward: Double, done: Bool, success: Bool) {
        precondition(frames.count == images.count, "one image per camera")
        states.append(contentsOf: state.map { Float($0) })
        actions.append(contentsOf: action.map { Float($0) })
        for (c, f) in frames.enumerated() { images[c].append(f) }
        rewards.append(Float(reward))
        dones.append(done)
        successes.append(success)
        length += 1
    }

    /// The episode ended in success (the last frame's `next.success`).
    public var succeeded: Bool { successes.last ?? false }
}

/// How a recorded action reaches the server: as the task's action vector (`StepRequest.actions`) or
/// as an end-effector target x, y, z (`StepRequest.ee_targets`, the strategist).
public enum ReplayInput: String, Sendable, Codable {
    case action
    case endEffector = "ee_target"
}
