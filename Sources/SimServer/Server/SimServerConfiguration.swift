import Messaging
import SimEngine

/// How `sim-server` runs: plain values with documented defaults; CLI flags override the scene manifest.
public struct SimServerConfiguration: Sendable {
    /// How physics advances.
    public enum Mode: String, Sendable, CaseIterable {
        /// Physics advances at `realTimeFactor` times wall clock (0: as fast as possible).
        case realtime
        /// Physics advances only through `/sim/step`.
        case lockstep
    }

    /// Scene directory (default `Scenes/tbar_push`).
    public var scene: String = "Scenes/tbar_push"
    /// Number of parallel environments (default: the manifest's `default_envs`).
    public var envCount: Int?
    /// Worker threads stepping environments (default: one per core). Results do not depend on it.
    public var threads: Int?
    public var mode: Mode = .realtime
    /// Real-time factor in realtime mode (default 1; 0 runs as fast as possible).
    public var realTimeFactor: Double = 1
    /// The service address; the data endpoints follow from it (see `HubConfiguration`).
    public var listen: String = HubConfiguration.defaultListen
    /// Directories searched for dynamic plugin libraries.
    public var pluginPaths: [String] = []
    /// Base seed of every env's randomness (default 0).
    public var seed: UInt64 = 0
    /// `/clock` publication rate in Hz of sim time (default 100).
    public var clockRateHz: Double = 100
    /// Largest frame the hub accepts, in bytes (default 64 MiB).
    public var maxFrameBytes: Int = 64 << 20
    /// Offscreen rendering for cameras (default `auto`: EGL with a GPU, else OSMesa).
    public var renderBackend: RenderBackend = .auto
    /// Render threads, each with its own GL context (default: one per core, at most 4).
    public var renderThreads: Int?
    /// CURVE keys and the client allow-list (default nil: plaintext, loopback only). See `ServerSecurity`.
    public var security: ServerSecurity?
    /// Allows listening beyond loopback without `security` (default false; `--insecure`).
    public var allowInsecure = false

    public init() {}

    /// The scene's name: the last path component of `scene`.
    public var sceneName: String {
        scene.split(separator: "/").last.map(String.init) ?? scene
    }
}
