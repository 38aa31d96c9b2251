import Foundation
import Logging
import Messaging
import ServiceLifecycle
import SimEngine
import SimServer
import Testing

@Suite(.serialized) struct SimServerTests {
    static func quietLogger() -> Logger {
        var logger = Logger(label: "test.sim-server")
        logger.logLevel = .warning
        return logger
    }

    /// Runs a SimServer in a ServiceGroup, hands a connected client to `body`, then shuts it down
    /// gracefully and checks that `run()` returned.
    static func withServer(_ configure: (inout SimServerConfiguration) -> Void = { _ in },
                           _ body: @Sendable (SimServer, ServiceClient) async throws -> Void) async throws {
        var config = SimServerConfiguration()
        // No render threads unless a test asks (CameraTests: OSMesa, one backend per process): GL
        // contexts for every server would starve the other suites on 2 cores.
        config.renderBackend = .none
        config.listen = "tcp://127.0.0.1:*"
        configure(&config)
        let server = try SimServer(configuration: config, logger: quietLogger())
        // Start on the calling thread: the server's threads then answer even while the test's
        // blocking calls hold the (2-thread) cooperative pool.
        try server.start()
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: quietLogger()))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let client = try ServiceClient(server: server.hub.serviceEndpoint, timeout: 5)
            do {
                try await body(server, client)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func describeReportsTheConfiguration() async throws {
        try await Self.withServer({ $0.scene = "Scenes/cartpole"; $0.envCount = 8; $0.mode = .lockstep }) { server, client in
            let d = try client.describe()
            #expect(d.scene == "cartpole")
            #expect(d.envCount == 8)
            #expect(d.mode == "lockstep")
            #expect(d.version.contains("MuJoCo 4.0.") && d.version.contains("libzmq 4.3"))
            #expect(d.task.name == "cartpole" && d.task.robot == "cartpole")
            #expect(d.task.observations.map(\.name) == ["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"])
            #expect(d.task.observations.map(\.unit) == ["rad", "rad/s", "m", "m/s"])
            #expect(d.task.actions.map(\.name) == ["cart_force"] && d.task.actions.map(\.unit) == ["1"])
            #expect(d.task.rewardTerms.map(\.name) == ["alive", "terminated", "pole_pos", "cart_vel", "pole_vel"])
            #expect(d.task.rewardTerms.map(\.weight) == [1, -2, -1, -0.01, -0.005])
            #expect(d.task.success.contains("time limit"))
            #expect(d.subscribeEndpoint == server.hub.subscribeEndpoint)
            #expect(d.publishEndpoint == server.hub.publishEndpoint)
            #expect(d.services.contains("/sim/describe") && d.services.contains("/graph/list"))
            #expect(d.topics.first?.name == "/clock" && d.topics.first?.type == "rosgraph_msgs/msg/Clock")
            #expect(d.topics.contains { $0.name == "/env_7/joint_states" && $0.type == "sensor_msgs/msg/JointState" && $0.rateHz == 30 })
            #expect(d.topics.contains { $0.name == "/env_7/episode" })
            #expect(d.observationSize == 4 && d.actionSize == 1)
            #expect(d.actionLow == [-1] && d.actionHigh == [1])
            #expect(d.decimation == 2 && abs(d.physicsDt - 1.0 / 120) < 1e-15)
        }
    }

    @Test func clockAdvancesInRealtime() async throws {
        try await Self.withServer({ $0.clockRateHz = 200; $0.realTimeFactor = 2 }) { server, _ in
            let node = try Node(name: "clock_watcher", server: server.hub.serviceEndpoint)
            defer { node.close() }
            let clock = try node.subscribe("/clock", RosgraphMsgs_Clock.self, qos: .reliable())
            var times: [Double] = []
            for await tick in clock {
                times.append(tick.clock.seconds)
                if times.count == 20 { break }
            }
            #expect(times == times.sorted())
            #expect(times.last! > times.first!)
            // 19 periods of 5 ms wall time at real-time factor 2: about 0.19 s of sim time.
            #expect(times.last! - times.first! > 0.05)
            #expect(try node.client.graph().nodes.contains { $0.name == "sim_server" })
        }
    }

    @Test func badListenAddressIsAOneLineError() throws {
        var config = SimServerConfiguration()
        // No render threads unless a test asks (CameraTests: OSMesa, one backend per process): GL
        // contexts for every server would starve the other suites on 2 cores.
        config.renderBackend = .none
        config.listen = "udp://127.0.0.1:1"
        #expect(throws: HubError.self) { _ = try SimServer(configuration: config, logger: Self.quietLogger()) }
    }

    @Test func timeConversions() {
        let t = BuiltinInterfaces_Time(seconds: 12.25)
        #expect(t.sec == 12 && t.nanosec == 250_000_000)
        #expect(t.seconds == 12.25)
    }
}
