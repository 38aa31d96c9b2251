import Foundation
import Messaging
import SwiftProtobuf
import Testing

@Suite(.serialized) struct PubSubTests {
    @Test func roundTripInProcess() async throws {
        let hub = try TestHub()
        let a = try hub.node("talker"), b = try hub.node("listener")
        defer { a.close(); b.close() }
        let publisher = try a.advertise("/env_0/cmd_vel", GeometryMsgs_Twist.self)
        let subscription = try b.subscribe("/env_0/cmd_vel", GeometryMsgs_Twist.self)
        var twist = GeometryMsgs_Twist()
        twist.linear.x = 0.25
        twist.angular.z = -1.5
        let got = await publishUntilReceived(publisher, twist) { await subscription.first { _ in true } }
        #expect(got == twist)
        #expect(subscription.received >= 1)
    }

    /// A full statistics table costs a topic its statistics, never its messages.
    @Test func aFullTopicTableStillForwards() async throws {
        let hub = try TestHub(maxTopics: 2)
        let a = try hub.node("talker"), b = try hub.node("listener")
        defer { a.close(); b.close() }
        let junk = try ["/junk/a", "/junk/b"].map { try a.advertise($0, StdMsgs_String.self) }
        let junkSubscriptions = try ["/junk/a", "/junk/b"].map { try b.subscribe($0, StdMsgs_String.self) }   // publishers send only what someone wants
        defer { withExtendedLifetime(junkSubscriptions) {} }
        let client = try hub.client()
        // Until both reached the hub (a publisher's first messages may go before it is connected).
        let full = try eventually(timeout: 10) {
            for p in junk { p.publish(.with { $0.data = "x" }) }
            Thread.sleep(forTimeInterval: 0.02)
            return try client.graph().topics.filter { $0.name.hasPrefix("/junk/") && $0.messages > 0 }.count == 2
        }
        #expect(full)
        let late = try a.advertise("/late", StdMsgs_String.self)
        let subscription = try b.subscribe("/late", StdMsgs_String.self)
        let got = await publishUntilReceived(late, .with { $0.data = "still here" }) { await subscription.first { _ in true } }
        #expect(got?.data == "still here")
        let graph = try client.graph()
        #expect(!graph.topics.contains { $0.name == "/late" && $0.messages > 0 })
    }

    @Test func roundTripOverTCP() async throws {
        let hub = try TestHub(tcp: true)
        let a = try hub.node("talker"), b = try hub.node("listener")
        defer { a.close(); b.close() }
        let publisher = try a.advertise("/chatter", StdMsgs_String.self)
        let subscription = try b.subscribe("/chatter", StdMsgs_String.self)
        var m = StdMsgs_String()
        m.data = "hello over tcp"
        let got = await publishUntilReceived(publisher, m) { await subscription.first { _ in true } }
        #expect(got?.data == "hello over tcp")
    }

    /// A subscription to /env_1/x must not see /env_10/x although ZeroMQ matches it as a prefix.
    @Test func exactTopicMatch() async throws {
        let hub = try TestHub()
        let a = try hub.node("talker"), b = try hub.node("listener")
        defer { a.close(); b.close() }
        let near = try a.advertise("/env_10/x", StdMsgs_String.self)
        let target = try a.advertise("/env_1/x", StdMsgs_String.self)
        let subscription = try b.subscribe("/env_1/x", StdMsgs_String.self, qos: .reliable(depth: 10_000))
        var wrongMessage = StdMsgs_String(), rightMessage = StdMsgs_String()
        wrongMessage.data = "from env_10"
        rightMessage.data = "from env_1"
        let (wrong, right) = (wrongMessage, rightMessage)
        let pump = Task {
            for _ in 0..<500 where !Task.isCancelled {
                near.publish(wrong)
                target.publish(right)
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        var seen = 0
        for await m in subscription {
            #expect(m.data == "from env_1")
            seen += 1
            if seen == 20 { break }
        }
        pump.cancel()
        #expect(seen == 20)
    }

    /// A message of another type on the topic is dropped and counted, never delivered.
    @Test func typeMismatchIsDroppedAndCounted() async throws {
        let hub = try TestHub()
        let a = try hub.node("talker"), b = try hub.node("listener")
        defer { a.close(); b.close() }
        let wrongType = try a.advertiseRaw("/mixed", typeName: "std_msgs/msg/String", qos: .standard)
        let rightType = try a.advertise("/mixed", GeometryMsgs_Twist.self)
        let subscription = try b.subscribe("/mixed", GeometryMsgs_Twist.self, qos: .reliable(depth: 10_000))
        var s = StdMsgs_String()
        s.data = "not a twist"
        let wrongBytes: [UInt8] = try s.serializedBytes()
        var twistMessage = GeometryMsgs_Twist()
        twistMessage.linear.y = 2
        let twist = twistMessage
        let pump = Task {
            for _ in 0..<500 where !Task.isCancelled {
                wrongType.publish(serialized: wrongBytes)
                rightType.publish(twist)
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        var got: GeometryMsgs_Twist?
        for await m in subscription { got = m; break }
        pump.cancel()
        #expect(got == twist)
        #expect(eventually { subscription.dropped > 0 })
    }

    /// Sensor-data QoS: a subscriber that does not read never stalls the publisher; the queue keeps
    /// the newest message and every replaced one is counted as a drop.
    @Test func slowSensorSubscriberDoesNotStallPublisher() async throws {
        let hub = try TestHub()
        let a = try hub.node("camera"), b = try hub.node("slow_viewer")
        defer { a.close(); b.close() }
        let ready = try a.advertise("/ready", StdMsgs_String.self)
        let readySub = try b.subscribe("/ready", StdMsgs_String.self)
        let publisher = try a.advertise("/env_0/camera/front/image_raw", SensorMsgs_Image.self, qos: .sensor)
        let subscription = try b.subscribe("/env_0/camera/front/image_raw", SensorMsgs_Image.self, qos: .sensorData(depth: 1))
        _ = await publishUntilReceived(ready, StdMsgs_String()) { await readySub.first { _ in true } }

        let total = 20_000
        var accepted = 0
        for i in 0..<total {
            var image = SensorMsgs_Image()
            image.header.frameID = "\(i)"
            image.data = Data(repeating: UInt8(i & 0xff), count: 256)
            if publisher.publish(image) { accepted += 1 }
        }
        // Every publish returned without waiting for the subscriber, which has read nothing yet.
        #expect(accepted == total)
        #expect(eventually(timeout: 10) { subscription.received >= 2 && subscription.dropped > 0 })
        // Let the node's I/O thread drain what ZeroMQ still holds, then read the single queued frame.
        let settled = eventually(timeout: 10) {
            let r = subscription.received
            Thread.sleep(forTimeInterval: 0.05)
            return r == subscription.received
        }
        #expect(settled)
        var latest: SensorMsgs_Image?
        for await m in subscription { latest = m; break }
        #expect(subscription.received <= UInt64(total))
        #expect(subscription.dropped == subscription.received - 1)
        // Messages arrive in order, so the newest of `received` arrivals has index >= received - 1.
        let latestIndex = try #require(Int(latest?.header.frameID ?? ""))
        #expect(latestIndex >= Int(subscription.received) - 1 && latestIndex < total)
    }

    /// Reliable QoS: a bounded queue that keeps the oldest and counts what did not fit.
    @Test func reliableQueueIsBoundedAndCounted() async throws {
        let hub = try TestHub()
        let a = try hub.node("talker"), b = try hub.node("listener")
        defer { a.close(); b.close() }
        let ready = try a.advertise("/ready", StdMsgs_String.self)
        let readySub = try b.subscribe("/ready", StdMsgs_String.self)
        let publisher = try a.advertise("/log", StdMsgs_String.self, qos: .reliable())
        let subscription = try b.subscribe("/log", StdMsgs_String.self, qos: .reliable(depth: 10))
        _ = await publishUntilReceived(ready, StdMsgs_String()) { await readySub.first { _ in true } }
        for i in 0..<100 {
            var m = StdMsgs_String()
            m.data = "\(i)"
            publisher.publish(m)
        }
        #expect(eventually { subscription.received == 100 })
        #expect(subscription.dropped == 90)
        var first: [String] = []
        for await m in subscription {
            first.append(m.data)
            if first.count == 10 { break }
        }
        #expect(first == (0..<10).map(String.init))
    }
}
