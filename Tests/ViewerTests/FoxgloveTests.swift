import Foundation
import Messaging
import Testing
@testable import Viewer

/// The Foxglove protocol's encoding and the bridge's refusals, without sockets.
@Suite struct FoxgloveTests {
    @Test func messageDataFramesAreOpcodeSubscriptionTimeAndPayloadLittleEndian() {
        let frame = Foxglove.messageData(subscription: 0x0102_0304, receiveTime: 0x1122_3344_5566_7788, payload: Data([9, 8, 7]))
        #expect(frame == [0x01, 0x04, 0x03, 0x02, 0x01, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 9, 8, 7])
    }

    @Test func clientMessagesParseAndBadOnesAreRefused() throws {
        #expect(try Foxglove.parse(text: #"{"op":"subscribe","subscriptions":[{"id":1,"channelId":7}]}"#) == .subscribe([(1, 7)]))
        #expect(try Foxglove.parse(text: #"{"op":"unsubscribe","subscriptionIds":[1,2]}"#) == .unsubscribe([1, 2]))
        #expect(try Foxglove.parse(text: #"{"op":"advertise","channels":[{"id":3,"topic":"/env_0/cmd_vel","encoding":"protobuf","schemaName":"geometry_msgs.Twist"}]}"#)
                == .advertise([.init(id: 3, topic: "/env_0/cmd_vel", encoding: "protobuf", schemaName: "geometry_msgs.Twist")]))
        #expect(try Foxglove.parse(binary: [0x01, 3, 0, 0, 0, 42]) == .publish(channelID: 3, payload: Data([42])))
        let refused = [
            "not json", "[]", #"{"op":"fetchAsset","uri":"file:///etc/passwd","requestId":1}"#,
            #"{"op":"subscribe","subscriptions":[{"id":-1,"channelId":1}]}"#,
            #"{"op":"subscribe","subscriptions":[{"id":1.5,"channelId":1}]}"#,
            #"{"op":"subscribe","subscriptions":[{"id":4294967296,"channelId":1}]}"#,
            #"{"op":"subscribe","subscriptions":"all"}"#,
            #"{"op":"advertise","channels":[{"id":1,"topic":"/x"}]}"#,
            "{\"op\":\"unsubscribe\",\"subscriptionIds\":[" + (0...Foxglove.maxEntries).map(String.init).joined(separator: ",") + "]}",
        ]
        for text in refused {
            #expect(throws: Foxglove.Refusal.self, "\(text.prefix(60))") { try Foxglove.parse(text: text) }
        }
        #expect(throws: Foxglove.Refusal.self) { try Foxglove.parse(binary: [0x02, 1, 0, 0, 0]) }
        #expect(throws: Foxglove.Refusal.self) { try Foxglove.parse(binary: [0x01, 1]) }
    }

    @Test func serverInfoAndAdvertiseAreTheSpecsJSON() throws {
        let info = try JSONSerialization.jsonObject(with: Data(Foxglove.serverInfo(name: "robosim", capabilities: ["clientPublish"], sessionID: "1", metadata: [:]).utf8)) as! [String: Any]
        #expect(info["op"] as? String == "serverInfo" && info["supportedEncodings"] as? [String] == ["protobuf"])
        let schema = try #require(ProtoSchemas.schema(rosType: "sensor_msgs/msg/Image"))
        let channel = Foxglove.Channel(id: 4, topic: "/env_0/camera/overhead/image_raw", schemaName: schema.name, schema: schema.descriptorSet.base64EncodedString())
        let ad = try JSONSerialization.jsonObject(with: Data(Foxglove.advertise([channel]).utf8)) as! [String: Any]
        let c = try #require((ad["channels"] as? [[String: Any]])?.first)
        #expect(c["id"] as? Int == 4 && c["encoding"] as? String == "protobuf" && c["schemaEncoding"] as? String == "protobuf")
        #expect(c["schemaName"] as? String == "sensor_msgs.Image" && (c["schema"] as? String).flatMap { Data(base64Encoded: $0) } == schema.descriptorSet)
    }

    @Test func anOutboxKeepsControlMessagesAndDropsTheOldestData() async {
        let outbox = Outbox(depth: 3)
        for k in 0..<10 { outbox.data([UInt8(k)]) }
        outbox.control(.text("advertise"))
        #expect(outbox.dropped.load(ordering: .relaxed) == 7)
        var got: [String] = []
        for _ in 0..<4 {
            switch await outbox.next() {
            case .text(let t): got.append(t)
            case .binary(let b): got.append("\(b[0])")
            case nil: got.append("end")
            }
        }
        #expect(got == ["advertise", "7", "8", "9"])
        // A reader waiting is woken by the next frame, and by the end.
        async let waiting = outbox.next()
        try? await Task.sleep(for: .milliseconds(50))
        outbox.data([42])
        if case .binary(let b) = await waiting { #expect(b == [42]) } else { Issue.record("no frame") }
        async let ended = outbox.next()
        try? await Task.sleep(for: .milliseconds(50))
        outbox.finish()
        #expect(await ended == nil)
        #expect(outbox.isFinished)
    }
}
