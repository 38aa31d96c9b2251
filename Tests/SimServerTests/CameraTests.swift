import ClientKit
import Foundation
import Messaging
import Synchronization
import SwiftProtobuf
import Testing
@testable import SimEngine
@testable import SimServer

/// Messages of one topic, kept in arrival order (filled on the node's I/O thread).
final class Collector<M: SwiftProtobuf.Message & Sendable>: Sendable {
    private final class Box: Sendable { let messages = Mutex<[M]>([]) }
    private let box = Box()
    private let subscription: CallbackSubscription

    init(_ node: Node, _ topic: String) throws {
        let box = self.box
        subscription = try node.onMessage(topic, M.self) { m in box.messages.withLock { $0.append(m) } }
    }

    /// Takes what arrived so far.
    func take() -> [M] { box.messages.withLock { m in defer { m.removeAll() }; return m } }

    /// Waits up to `quiet` seconds after the last arrival; returns all that arrived.
    func drain(quiet: Double) -> [M] {
        var out: [M] = []
        while true {
            Thread.sleep(forTimeInterval: quiet)
            let got = take()
            if got.isEmpty { return out }
            out += got
        }
    }
}

/// Cameras over real sockets with MuJoCo's renderer (OSMesa here): geometry against camera_info,
/// depth in metres, frames after resets, pixel observations in /sim/step and /sim/reset.
/// Scene: Scenes/test/camera_box (a 12 cm red box on slide joints box_x, box_y, 2 m under the
/// `top` camera; `side` is mounted by the manifest at (2, 0, 0.3) looking along -x).
@Suite(.serialized) struct CameraTests {
    typealias Server = SimServerTests

    static func lockstep(_ config: inout SimServerConfiguration) {
        config.scene = "Scenes/test/camera_box"
        config.mode = .lockstep
        config.envCount = 2
        config.renderBackend = .osmesa
    }

    static func reset(_ client: ServiceClient, seed: UInt64, ids: [UInt32] = [], render: Bool = true) throws -> Robosim_ResetResponse {
        var r = Robosim_ResetRequest()
        r.seed = seed
        r.envIds = ids
        r.render = render
        return try client.call("/sim/reset", r)
    }

    static func step(_ client: ServiceClient, envs: Int, actionSize: Int = 0, render: Bool = true) throws -> Robosim_StepResponse {
        var r = Robosim_StepRequest()
        r.actions = Array(repeating: 0, count: envs * actionSize)
        r.render = render
        return try client.call("/sim/step", r)
    }

    /// Centroid (u, v) of the red pixels of an rgb8 image, and their count.
    static func redCentroid(_ image: SensorMsgs_Image) -> (u: Double, v: Double, count: Int) {
        let w = Int(image.width), h = Int(image.height), bytes = [UInt8](image.data)
        var su = 0.0, sv = 0.0, n = 0
        for v in 0..<h {
            for u in 0..<w {
                let p = v * Int(image.step) + 3 * u
                if bytes[p] > 150 && Int(bytes[p]) - Int(bytes[p + 1]) > 80 && Int(bytes[p]) - Int(bytes[p + 2]) > 80 { su += Double(u); sv += Double(v); n += 1 }
            }
        }
        return (su / Double(max(n, 1)), sv / Double(max(n, 1)), n)
    }

    /// Pixel of a world point seen by a camera at `position` whose row-major rotation has the
    /// MuJoCo camera axes as columns (x right, y up, looking along -z), with intrinsics `k` (camera_info.k).
    static func project(_ p: SIMD3<Double>, position: SIMD3<Double>, rotation r: [Double], k: [Double]) -> (u: Double, v: Double) {
        let d = p - position
        let xc = r[0] * d.x + r[3] * d.y + r[6] * d.z
        let yc = r[1] * d.x + r[4] * d.y + r[7] * d.z
        let zc = r[2] * d.x + r[5] * d.y + r[8] * d.z
        // Optical frame: X right, Y down, Z forward.
        let (x, y, z) = (xc, -yc, -zc)
        return (k[0] * x / z + k[2], k[4] * y / z + k[5])
    }

    static let top = (position: SIMD3<Double>(0, 0, 2), rotation: [1.0, 0, 0, 0, 1, 0, 0, 0, 1])
    static let side = (position: SIMD3<Double>(2, 0, 0.3), rotation: CameraSpec.rotation(xyaxes: [0, 1, 0, 0, 0, 1], quat: nil))

    static func depthValues(_ image: SensorMsgs_Image) -> [Float] {
        [UInt8](image.data).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test func boxCentroidAndDepthAgreeWithCameraInfoAndThePose() async throws {
        try await Server.withServer(Self.lockstep) { server, client in
            // Blocking calls run on a thread of their own, not on the (2-thread) cooperative pool.
            try await OfflineStrategistTests.onThread {
                let node = try Node(name: "viewer", server: server.hub.serviceEndpoint)
                defer { node.close() }
                let d = try client.describe()
                #expect(d.renderBackend == "osmesa")
                #expect(d.cameras.map(\.name) == ["top", "side"])
                #expect(d.cameras[0].frameID == "top_optical_frame" && d.cameras[0].depth && !d.cameras[1].depth)
                for name in ["/env_1/camera/top/image_raw", "/env_1/camera/top/depth", "/env_1/camera/top/camera_info", "/env_0/camera/side/image_raw"] {
                    #expect(d.topics.contains { $0.name == name && $0.rateHz == 25 }, "\(name) missing from describe")
                }
                #expect(!d.topics.contains { $0.name == "/env_0/camera/side/depth" })

                // Intrinsics from the camera_info topic.
                let infoTopic = try Collector<SensorMsgs_CameraInfo>(node, "/env_0/camera/top/camera_info")
                let sideInfoTopic = try Collector<SensorMsgs_CameraInfo>(node, "/env_0/camera/side/camera_info")
                var infos: (SensorMsgs_CameraInfo, SensorMsgs_CameraInfo)?
                for _ in 0..<30 where infos == nil {
                    _ = try Self.reset(client, seed: 1, render: false)   // a reset publishes a frame of each camera
                    Thread.sleep(forTimeInterval: 0.3)
                    if let a = infoTopic.take().first, let b = sideInfoTopic.take().first { infos = (a, b) }
                }
                let (info, sideInfo) = try #require(infos, "no camera_info")
                #expect(info.width == 160 && info.height == 120 && info.header.frameID == "top_optical_frame")
                let f = 60.0 / tan(30.0 * .pi / 180)   // (height / 2) / tan(fovy / 2)
                #expect(abs(info.k[0] - f) < 1e-9 && abs(info.k[4] - f) < 1e-9 && info.k[2] == 79.5 && info.k[5] == 59.5)
                #expect(info.p.count == 12 && info.d == [0, 0, 0, 0, 0])
                #expect(abs(sideInfo.k[4] - 48 / tan(25.0 * .pi / 180)) < 1e-9)

                var checked = 0
                for seed in UInt64(1)...4 {
                    let r = try Self.reset(client, seed: seed)
                    // Per env: top rgb, top depth, side rgb.
                    #expect(r.images.count == 2 * 3)
                    for env in 0..<2 {
                        let (x, y) = (r.observations[env * 4], r.observations[env * 4 + 1])   // box_x, box_y
                        let rgb = r.images[env * 3], depth = r.images[env * 3 + 1], sideRGB = r.images[env * 3 + 2]
                        #expect(rgb.encoding == "rgb8" && rgb.width == 160 && rgb.height == 120 && rgb.step == 480 && rgb.data.count == 160 * 120 * 3)
                        #expect(depth.encoding == "32FC1" && depth.step == 640 && depth.data.count == 160 * 120 * 4 && depth.isBigendian == 0)

                        // The box's top face centre projects onto the red centroid.
                        let c = Self.redCentroid(rgb)
                        let expected = Self.project(SIMD3(x, y, 0.12), position: Self.top.position, rotation: Self.top.rotation, k: info.k)
                        #expect(c.count > 20)
                        #expect(abs(c.u - expected.u) < 1.5 && abs(c.v - expected.v) < 1.5, "seed \(seed) env \(env): centroid \(c) vs \(expected)")

                        // Depth: the floor is 2 m away along the optical axis everywhere; the box top 1.88 m.
                        let z = Self.depthValues(depth)
                        let boxPixel = Int(c.v.rounded()) * 160 + Int(c.u.rounded())
                        #expect(abs(z[boxPixel] - 1.88) < 0.01, "box top depth \(z[boxPixel])")
                        let farCorner = (x > 0 ? 5 : 154) + (y > 0 ? 114 : 5) * 160   // a floor pixel away from the box
                        #expect(abs(z[farCorner] - 2.0) < 0.01, "floor depth \(z[farCorner])")

                        // The side camera, mounted by the manifest: the box centre projects onto its centroid.
                        let s = Self.redCentroid(sideRGB)
                        let sideExpected = Self.project(SIMD3(x, y, 0.06), position: Self.side.position, rotation: Self.side.rotation, k: sideInfo.k)
                        #expect(s.count > 20)
                        #expect(abs(s.u - sideExpected.u) < 2 && abs(s.v - sideExpected.v) < 2, "side: centroid \(s) vs \(sideExpected)")
                        checked += 1
                    }
                }
                #expect(checked == 8)
            }
        }
    }

    @Test func pixelObservationsAfterAutoResetShowTheNewEpisodeAndFinalImagesTheOld() async throws {
        try await Server.withServer(Self.lockstep) { _, client in
            // Blocking calls run on a thread of their own, not on the (2-thread) cooperative pool.
            try await OfflineStrategistTests.onThread {
                _ = try Self.reset(client, seed: 3)
                var lastObservation: [Double] = []
                var seen = 0
                for _ in 0..<120 {
                    let s = try Self.step(client, envs: 2)
                    #expect(s.images.count == 6 && s.finalImages.count == 3 * s.finalEnvIds.count)
                    for (k, id) in s.finalEnvIds.enumerated() {
                        let env = Int(id)
                        // The reply's image: the new episode's start; the final image: where the old one ended.
                        let now = Self.redCentroid(s.images[env * 3]), before = Self.redCentroid(s.finalImages[k * 3])
                        let info = CameraPublisher.cameraInfo(CameraSpec(name: "top", width: 160, height: 120, fovyDegrees: 60, rateHz: 25, rgb: true,
                                                                         depth: true, observation: true, mount: .modelCamera(0)), .init())
                        let new = Self.project(SIMD3(s.observations[env * 4], s.observations[env * 4 + 1], 0.12), position: Self.top.position,
                                               rotation: Self.top.rotation, k: info.k)
                        let old = Self.project(SIMD3(s.finalObservations[k * 4], s.finalObservations[k * 4 + 1], 0.12), position: Self.top.position,
                                               rotation: Self.top.rotation, k: info.k)
                        #expect(abs(now.u - new.u) < 1.5 && abs(now.v - new.v) < 1.5, "after auto-reset: \(now) vs \(new)")
                        #expect(abs(before.u - old.u) < 1.5 && abs(before.v - old.v) < 1.5, "final: \(before) vs \(old)")
                        #expect(abs(new.u - old.u) + abs(new.v - old.v) > 3)   // the episodes differ
                        seen += 1
                    }
                    lastObservation = s.observations
                }
                #expect(seen >= 4)   // 0.5 s episodes, 1.2 s of steps, 2 envs
                #expect(!lastObservation.isEmpty)
            }
        }
    }

    @Test func topicFramesAfterAResetShowTheNewState() async throws {
        try await Server.withServer({ Self.lockstep(&$0); $0.renderThreads = 2 }) { server, client in
            // Blocking calls run on a thread of their own, not on the (2-thread) cooperative pool.
            try await OfflineStrategistTests.onThread {
                let node = try Node(name: "viewer", server: server.hub.serviceEndpoint)
                defer { node.close() }
                let images = try Collector<SensorMsgs_Image>(node, "/env_0/camera/top/image_raw")
                // Wait until the subscription is live (a reset publishes a frame).
                var live = false
                for _ in 0..<30 where !live {
                    _ = try Self.reset(client, seed: 9, render: false)
                    Thread.sleep(forTimeInterval: 0.3)
                    live = !images.take().isEmpty
                }
                #expect(live)
                _ = images.drain(quiet: 0.5)
                // Episode A (seed 10), a few steps, then episode B (seed 11): the last frame published
                // before the reset may show A; every frame after the first B frame shows B.
                let a = try Self.reset(client, seed: 10, ids: [0], render: false).observations
                for _ in 0..<12 { _ = try Self.step(client, envs: 2, render: false) }
                let b = try Self.reset(client, seed: 11, ids: [0], render: false).observations
                for _ in 0..<12 { _ = try Self.step(client, envs: 2, render: false) }
                let frames = images.drain(quiet: 1)
                let k = (f: 60.0 / tan(30.0 * .pi / 180), cx: 79.5, cy: 59.5)
                func pixel(_ o: [Double]) -> (Double, Double) { (k.f * o[0] / 1.88 + k.cx, -k.f * o[1] / 1.88 + k.cy) }
                let (pa, pb) = (pixel(a), pixel(b))
                #expect(abs(pa.0 - pb.0) + abs(pa.1 - pb.1) > 5)
                let labels: [Character] = frames.map { frame in
                    let c = Self.redCentroid(frame)
                    if abs(c.u - pa.0) < 1.5 && abs(c.v - pa.1) < 1.5 { return "A" }
                    if abs(c.u - pb.0) < 1.5 && abs(c.v - pb.1) < 1.5 { return "B" }
                    return "?"
                }
                let text = String(labels)
                #expect(!text.contains("?"), "frames: \(text)")
                // Latest wins: a busy machine may replace every A frame before it is drawn, never a B after A.
                #expect(text.hasSuffix("B"), "frames: \(text)")
                #expect(!text.drop(while: { $0 == "A" }).contains("A"), "an A frame after a B frame: \(text)")
                // Stamps never go backwards on a topic.
                let stamps = frames.map { Double($0.header.stamp.sec) + Double($0.header.stamp.nanosec) / 1e9 }
                #expect(zip(stamps, stamps.dropFirst()).allSatisfy { $0 <= $1 }, "\(stamps)")
            }
        }
    }

    /// Pixel observations are part of the trajectory: env 1's images are byte-identical whatever the
    /// env count, the physics threads or the render threads.
    @Test func pixelObservationsDoNotDependOnEnvCountOrThreads() async throws {
        func images(envs: Int, threads: Int, renderThreads: Int) async throws -> [Data] {
            let out = Mutex<[Data]>([])
            try await Server.withServer({ Self.lockstep(&$0); $0.envCount = envs; $0.threads = threads; $0.renderThreads = renderThreads }) { _, client in
                // Blocking calls run on a thread of their own, not on the (2-thread) cooperative pool.
                try await OfflineStrategistTests.onThread {
                    var collected = try Self.reset(client, seed: 5).images[3..<6].map(\.data)
                    for _ in 0..<60 {
                        let s = try Self.step(client, envs: envs)
                        collected += s.images[3..<6].map(\.data)
                        if let k = s.finalEnvIds.firstIndex(of: 1) { collected += s.finalImages[(3 * k)..<(3 * k + 3)].map(\.data) }
                    }
                    out.withLock { $0 = collected }
                }
            }
            return out.withLock { $0 }
        }
        let a = try await images(envs: 2, threads: 1, renderThreads: 1)
        let b = try await images(envs: 5, threads: 2, renderThreads: 3)
        #expect(a.count == 3 * 61 + 3)   // one auto-reset of env 1 (50-step episodes)
        #expect(a == b)
        #expect(Set(a).count == 6)   // the box rests within an episode: 2 episodes x (top rgb, top depth, side rgb)
    }

    /// One backend per process: EGL (Mesa's surfaceless platform on a machine without a GPU, a
    /// device with one) in a sim-server process of its own draws the same picture as OSMesa.
    @Test(arguments: ["egl", "osmesa"])
    func backendInItsOwnProcessDrawsTheBox(backend: String) async throws {
        try await OfflineStrategistTests.onThread { try Self.drawInItsOwnProcess(backend: backend) }
    }

    static func drawInItsOwnProcess(backend: String) throws {
        let binary = try #require(ProcessTests.binary, "build sim-server first (swift build)")
        // Known and not yet understood: about once in twenty loaded test runs, a child sim-server with
        // rendering never answered /sim/describe. Its threads' stacks are printed (a clue for the next
        // look) and a second child is tried; two in a row fail the test.
        var attempt = 0
        while true {
            attempt += 1
            let port = ProcessTests.freePort()
            let process = Process()
            process.executableURL = binary
            process.arguments = ["Scenes/test/camera_box", "--mode", "lockstep", "--envs", "1", "--render-backend", backend, "--render-threads", "1",
                                 "--listen", "tcp://127.0.0.1:\(port)", "--log-level", "warning"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
            let client = try ServiceClient(server: "tcp://127.0.0.1:\(port)", timeout: 30)
            let d: Robosim_DescribeResponse
            do {
                d = try client.describe()
            } catch {
                print("CameraTests: sim-server --render-backend \(backend) (attempt \(attempt)) did not answer: \(error); its threads:\n\(Self.stacks(of: process))")
                if attempt < 2 { continue }
                throw error
            }
            try checkBox(client, d, backend: backend)
            return
        }
    }

    /// The threads' stacks of a running process (gdb), for a hang's report.
    static func stacks(of process: Process) -> String {
        let gdb = Process()
        gdb.executableURL = URL(fileURLWithPath: "/usr/bin/gdb")
        gdb.arguments = ["-p", "\(process.processIdentifier)", "-batch", "-ex", "thread apply all bt 14"]
        let out = Pipe()
        gdb.standardOutput = out
        gdb.standardError = FileHandle.nullDevice
        guard (try? gdb.run()) != nil else { return "(gdb unavailable)" }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        gdb.waitUntilExit()
        return text.split(separator: "\n").filter { $0.hasPrefix("Thread") || $0.hasPrefix("#") }.joined(separator: "\n")
    }

    static func checkBox(_ client: ServiceClient, _ d: Robosim_DescribeResponse, backend: String) throws {
        #expect(d.renderBackend == backend)
        let r = try Self.reset(client, seed: 2)
        #expect(r.images.count == 3)
        let info = CameraPublisher.cameraInfo(CameraSpec(name: "top", width: 160, height: 120, fovyDegrees: 60, rateHz: 25, rgb: true,
                                                         depth: true, observation: true, mount: .modelCamera(0)), .init())
        let c = Self.redCentroid(r.images[0])
        let expected = Self.project(SIMD3(r.observations[0], r.observations[1], 0.12), position: Self.top.position, rotation: Self.top.rotation, k: info.k)
        #expect(c.count > 20 && abs(c.u - expected.u) < 1.5 && abs(c.v - expected.v) < 1.5, "\(backend): \(c) vs \(expected)")
        let z = Self.depthValues(r.images[1])
        #expect(abs(z[5 * 160 + 5] - 2.0) < 0.01 || abs(z[114 * 160 + 154] - 2.0) < 0.01)
    }

    @Test func renderRequestsWithoutObservationCamerasAreRefused() async throws {
        try await Server.withServer({ $0.scene = "Scenes/cartpole"; $0.mode = .lockstep; $0.envCount = 1; $0.renderBackend = .osmesa }) { _, client in
            // Blocking calls run on a thread of their own, not on the (2-thread) cooperative pool.
            try await OfflineStrategistTests.onThread {
                #expect(throws: ServiceError.self) { try Self.step(client, envs: 1, actionSize: 1, render: true) }
                do {
                    _ = try Self.step(client, envs: 1, actionSize: 1, render: true)
                } catch let error as ServiceError {
                    #expect(error.code == .failedPrecondition && error.message.contains("no observation camera"))
                }
                _ = try Self.step(client, envs: 1, actionSize: 1, render: false)   // the server still answers
            }
        }
    }
}
