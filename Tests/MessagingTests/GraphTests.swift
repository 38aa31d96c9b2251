import Foundation
import Messaging
import Testing

@Suite(.serialized) struct GraphTests {
    @Test func nodesTopicsAndDepartures() async throws {
        let hub = try TestHub()
        let client = try hub.client()
        let talker = try hub.node("talker")
        let listener = try hub.node("listener")
        let publisher = try talker.advertise("/env_0/joint_states", SensorMsgs_JointState.self, qos: .sensor)
        let subscription = try listener.subscribe("/env_0/joint_states", SensorMsgs_JointState.self)
        var js = SensorMsgs_JointState()
        js.name = ["shoulder"]
        js.position = [0.5]
        _ = await publishUntilReceived(publisher, js) { await subscription.first { _ in true } }
        let size = try js.serializedData().count

        #expect(try eventually {
            let g = try client.graph()
            guard let t = g.topics.first(where: { $0.name == "/env_0/joint_states" }) else { return false }
            return g.nodes.map(\.name).sorted() == ["listener", "talker"] && t.publishers == ["talker"]
                && t.subscribers == ["listener"] && t.type == "sensor_msgs/msg/JointState" && t.messages >= 1
                && t.subscriberConnections == 1 && t.bytes >= UInt64(size)
        })
        talker.close()
        #expect(try eventually { try client.graph().nodes.map(\.name) == ["listener"] })
        withExtendedLifetime(subscription) {}
    }

    @Test func silentNodesExpire() throws {
        let hub = try TestHub()
        let client = try hub.client()
        var info = Robosim_NodeInfo()
        info.name = "ghost"
        info.heartbeatS = 0.1
        let _: Robosim_Empty = try client.call("/graph/announce", info)
        #expect(try client.graph().nodes.map(\.name) == ["ghost"])
        // Three missed heartbeats (0.3 s) and the next rate tick (1 s) later it is gone.
        #expect(try eventually(timeout: 3) { try client.graph().nodes.isEmpty })
    }

    @Test func badAnnouncementsAreRefused() throws {
        let hub = try TestHub()
        let client = try hub.client()
        var info = Robosim_NodeInfo()
        info.name = ""
        #expect(throws: ServiceError.self) { let _: Robosim_Empty = try client.call("/graph/announce", info) }
        info.name = "x"
        var e = Robosim_NodeInfo.Endpoint()
        e.topic = "no/slash"
        info.publishers = [e]
        do {
            let _: Robosim_Empty = try client.call("/graph/announce", info)
            Issue.record("accepted a bad topic name")
        } catch {
            #expect(error.code == .invalidArgument && error.message.contains("no/slash"))
        }
        #expect(try client.graph().nodes.isEmpty)
    }
}
