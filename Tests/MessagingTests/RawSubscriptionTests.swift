import Foundation
import Messaging
import Testing

@Suite struct RawSubscriptionTests {
    @Test func iteratesRawMessages() async throws {
        let hub = try TestHub()
        let a = try hub.node("talker"), b = try hub.node("listener")
        defer { a.close(); b.close() }
        let publisher = try a.advertise("/raw", StdMsgs_String.self)
        let subscription = try b.subscribeRaw("/raw")
        var m = StdMsgs_String()
        m.data = "raw"
        let got = await publishUntilReceived(publisher, m) { () async -> RawMessage? in
            for await raw in subscription { return raw }
            return nil
        }
        #expect(got?.typeName == "std_msgs/msg/String")
        #expect(try StdMsgs_String(serializedBytes: got?.payload ?? Data()).data == "raw")
    }
}
