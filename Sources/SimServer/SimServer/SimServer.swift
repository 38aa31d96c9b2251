import CMuJoCo
import Foundation
import Logging
import Messaging
import ServiceLifecycle
import Synchronization

/// The simulation server: hosts the hub, answers `/sim/describe`, publishes `/clock`.
/// A `Service` for swift-service-lifecycle: `run()` returns after graceful shutdown.
public final class SimServer: Service, Sendable {
    public let configuration: SimServerConfiguration
    public let hub: Hub
    private let logger: Logger
    private let started = DispatchTime.now()
    private let simTime = Mutex<Double>(0)

    /// Binds the hub's sockets. Throws `HubError` with a one-line reason (bad address, port in use).
    public init(configuration: SimServerConfiguration, context: ZMQContext = .shared, logger: Logger = Logger(label: "robosim.server")) throws(HubError) {
        self.configuration = configuration
        self.logger = logger
        var hubConfiguration = try HubConfiguration(listen: configuration.listen)
        hubConfiguration.maxFrameBytes = configuration.maxFrameBytes
        hub = try Hub(configuration: hubConfiguration, context: context, logger: logger)
        robosim_mj_install_handlers()
        try! hub.serve("/sim/describe", type: .describe) { [weak self] (_: Robosim_DescribeRequest) throws(ServiceError) in
            guard let self else { throw .unavailable("shutting down") }
            return self.describe()
        }
    }

    /// The `/sim/describe` answer.
    public func describe() -> Robosim_DescribeResponse {
        var d = hub.baseDescription()
        d.scene = configuration.sceneName
        d.envCount = UInt32(configuration.envCount)
        d.mode = configuration.mode.rawValue
        d.simTime = simTime.withLock { $0 }
        d.version = "\(RoboSimVersion.string) (MuJoCo \(String(cString: mj_versionString())), libzmq \(ZMQContext.libraryVersion))"
        var clock = Robosim_TopicInfo()
        clock.name = "/clock"
        clock.type = rosTypeName(of: RosgraphMsgs_Clock.self)
        clock.rateHz = configuration.clockRateHz
        d.topics = [clock]
        return d
    }

    /// Starts the hub, publishes `/clock` until graceful shutdown, then stops everything.
    public func run() async throws {
        hub.start()
        let node: Node
        do {
            node = try Node(name: "sim_server", hub: hub)
        } catch {
            hub.shutdown()
            throw error
        }
        let clock = try node.advertise("/clock", RosgraphMsgs_Clock.self, qos: .standard)
        logger.info("sim-server ready", metadata: [
            "sim.scene": "\(configuration.sceneName)", "sim.envs": "\(configuration.envCount)", "sim.mode": "\(configuration.mode.rawValue)",
        ])
        let period = 1 / max(configuration.clockRateHz, 0.1)
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let t = self.advanceTime()
                var m = RosgraphMsgs_Clock()
                m.clock = .init(seconds: t)
                clock.publish(m)
                try? await Task.sleep(for: .seconds(period))
            }
        }
        logger.info("sim-server shutting down")
        node.close()
        hub.shutdown()
    }

    /// Sim time: in realtime mode it follows the wall clock times the real-time factor.
    /// (Physics stepping arrives with the engine; lockstep time stays until stepped.)
    private func advanceTime() -> Double {
        simTime.withLock { t in
            if configuration.mode == .realtime {
                let wall = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
                t = wall * (configuration.realTimeFactor > 0 ? configuration.realTimeFactor : 1)
            }
            return t
        }
    }
}

extension BuiltinInterfaces_Time {
    /// A time from seconds.
    public init(seconds: Double) {
        self.init()
        let whole = seconds.rounded(.down)
        sec = Int32(clamping: Int64(whole))
        nanosec = UInt32(min(999_999_999, max(0, ((seconds - whole) * 1e9).rounded())))
    }

    /// Seconds as a double.
    public var seconds: Double { Double(sec) + Double(nanosec) / 1e9 }
}
