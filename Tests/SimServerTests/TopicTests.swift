import ClientKit
import Foundation
import Messaging
import Testing
@testable import SimEngine
@testable import SimServer

/// The per-env topics of a running server, at their rates in sim time.
@Suite(.serialized) struct TopicTests {
    static func first<M: SwiftProtobuf.Message>(_ node: Node, _ topic: String, _ type: M.Type, count: Int = 1) async throws -> [M] {
        let subscription = try node.subscribe(topic, type, qos: .reliable())
        let got = try await withDeadline(10) {
            var out: [M] = []
            for await m in subscription {
                out.append(m)
                if out.count == count { break }
            }
            return out
        }
        return try #require(got, "no message on \(topic)")
    }

    @Test func objectTrackerPublishesPosesOdometryAndObjects() async throws {
        try await SimServerTests.withServer({ $0.scene = "Scenes/object_tracker"; $0.envCount = 2; $0.realTimeFactor = 4 }) { server, client in
            let node = try Node(name: "viewer", server: server.hub.serviceEndpoint)
            defer { node.close() }
            let d = try client.describe()
            for name in ["/env_1/tf", "/env_1/robot/pose", "/env_1/odom", "/env_1/objects", "/env_1/joint_states", "/env_1/episode", "/env_1/action"] {
                #expect(d.topics.contains { $0.name == name }, "\(name) missing from describe")
            }
            let tf = try await Self.first(node, "/env_1/tf", Tf2Msgs_TFMessage.self)[0]
            let frames = Dictionary(uniqueKeysWithValues: tf.transforms.map { ($0.childFrameID, $0) })
            #expect(frames["follower"] != nil && frames["leader"] != nil)
            #expect(tf.transforms.allSatisfy { $0.header.frameID == "world" })

            let odom = try await Self.first(node, "/env_1/odom", NavMsgs_Odometry.self)[0]
            #expect(odom.childFrameID == "follower")
            #expect(abs(odom.pose.pose.position.z - 0.01) < 0.02)   // on the floor
            let q = odom.pose.pose.orientation
            #expect(abs(q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z - 1) < 1e-6)

            let objects = try await Self.first(node, "/env_1/objects", Robosim_ObjectArray.self)[0]
            #expect(objects.objects.map(\.name) == ["leader"])
            let leader = objects.objects[0]
            let speed = (leader.twist.linear.x * leader.twist.linear.x + leader.twist.linear.y * leader.twist.linear.y).squareRoot()
            #expect(speed < 0.3)   // under the leader's speed limit (0.22 m/s) plus slack

            // joint_states at 30 Hz in sim time, on whole control steps (20 ms): 40, 20, 40 ms... (3 in 100 ms).
            let states = try await Self.first(node, "/env_0/joint_states", SensorMsgs_JointState.self, count: 7)
            let stamps = states.map(\.header.stamp.seconds)
            for (a, b) in zip(stamps, stamps.dropFirst()) {
                #expect(abs((b - a) - 0.04) < 1e-6 || abs((b - a) - 0.02) < 1e-6, "\(stamps)")
            }
            #expect(abs((stamps[6] - stamps[0]) - 0.2) < 0.02 + 1e-6, "\(stamps)")
            #expect(states[0].name.contains("follower_left_wheel"))
        }
    }
}

import SwiftProtobuf
