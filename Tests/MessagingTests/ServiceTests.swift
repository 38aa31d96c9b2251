import Foundation
import Messaging
import SwiftProtobuf
import Testing

@Suite(.serialized) struct ServiceTests {
    @Test func inlineDeferredAndFailingHandlers() throws {
        let hub = try TestHub()
        try hub.hub.serve("/test/echo", type: .init("robosim/srv/Echo", request: StdMsgs_String.self, response: StdMsgs_String.self)) {
            (request: StdMsgs_String) throws(ServiceError) -> StdMsgs_String in
            guard !request.data.isEmpty else { throw .invalidArgument("data must not be empty") }
            var reply = StdMsgs_String()
            reply.data = request.data.uppercased()
            return reply
        }
        // Answered later from another thread, as the step loop does.
        try hub.hub.serve("/test/later", type: .init("robosim/srv/Later", request: StdMsgs_String.self, response: StdMsgs_String.self)) { request, responder in
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: 0.02)
                var reply = StdMsgs_String()
                reply.data = "later:\(request.payload.count)"
                responder.succeed(reply)
            }
        }
        try hub.hub.serve("/test/forgets", type: .init("robosim/srv/Forgets", request: StdMsgs_String.self, response: StdMsgs_String.self)) { _, _ in }

        let client = try hub.client()
        var hello = StdMsgs_String()
        hello.data = "hello"
        let echoed: StdMsgs_String = try client.call("/test/echo", hello)
        #expect(echoed.data == "HELLO")
        #expect(throws: ServiceError(.invalidArgument, "data must not be empty")) {
            let _: StdMsgs_String = try client.call("/test/echo", StdMsgs_String())
        }
        let later: StdMsgs_String = try client.call("/test/later", hello)
        #expect(later.data == "later:7")
        #expect(throws: ServiceError(.internal, "/test/forgets: the handler dropped the call")) {
            let _: StdMsgs_String = try client.call("/test/forgets", hello)
        }
        #expect(throws: ServiceError(.notFound, "unknown service '/test/none'")) {
            _ = try client.call("/test/none", payload: [])
        }
        do {
            _ = try client.call("/test/echo", payload: [0x07, 0x01, 0x02])
            Issue.record("garbage payload was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("std_msgs/msg/String"))
        }
        // The hub still answers, and counted the calls and errors.
        let graph = try client.graph()
        let echo = try #require(graph.services.first { $0.name == "/test/echo" })
        #expect(echo.calls == 3 && echo.errors == 2)
        #expect(echo.requestType == "std_msgs/msg/String")
        #expect(graph.serviceErrors >= 4)
    }

    @Test func timeoutWhenNoServer() throws {
        let client = try ServiceClient(server: "inproc://nobody-\(UUID().uuidString)", timeout: 0.2)
        do {
            _ = try client.describe()
            Issue.record("a call without a server returned")
        } catch {
            #expect(error.code == .deadlineExceeded)
        }
    }

    @Test func describeListsEndpointsAndServices() throws {
        let hub = try TestHub(tcp: true)
        let d = try hub.client().describe()
        #expect(d.subscribeEndpoint == hub.hub.subscribeEndpoint)
        #expect(d.publishEndpoint == hub.hub.publishEndpoint)
        #expect(d.subscribeEndpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect(d.services.contains("/graph/list") && d.services.contains("/sim/describe"))
    }

    @Test func endpointsResolveWildcardHosts() {
        #expect(Endpoints.resolve("tcp://0.0.0.0:7701", server: "tcp://10.1.2.3:7700") == "tcp://10.1.2.3:7701")
        #expect(Endpoints.resolve("tcp://*:7701", server: "tcp://sim.local:7700") == "tcp://sim.local:7701")
        #expect(Endpoints.resolve("tcp://127.0.0.1:7701", server: "tcp://10.1.2.3:7700") == "tcp://127.0.0.1:7701")
        #expect(Endpoints.resolve("inproc://x-pub", server: "inproc://x") == "inproc://x-pub")
    }

    @Test func listenAddresses() throws {
        let c = try HubConfiguration(listen: "tcp://127.0.0.1:7700")
        #expect(c.subscribeEndpoint == "tcp://127.0.0.1:7701" && c.publishEndpoint == "tcp://127.0.0.1:7702")
        let i = try HubConfiguration(listen: "ipc:///tmp/robosim")
        #expect(i.subscribeEndpoint == "ipc:///tmp/robosim-pub" && i.publishEndpoint == "ipc:///tmp/robosim-sub")
        #expect(throws: HubError.self) { try HubConfiguration(listen: "udp://x:1") }
        #expect(throws: HubError.self) { try HubConfiguration(listen: "tcp://127.0.0.1") }
        #expect(throws: HubError.self) { try HubConfiguration(listen: "tcp://127.0.0.1:99999") }
    }

    @Test func portInUseIsAClearError() throws {
        let first = try TestHub(tcp: true)
        let taken = first.hub.serviceEndpoint
        do {
            _ = try Hub(configuration: try HubConfiguration(listen: taken))
            Issue.record("bound \(taken) twice")
        } catch {
            #expect(error.description.contains("Address already in use"))
        }
    }
}

extension ServiceError {
    static func == (a: ServiceError, b: ServiceError) -> Bool { a.code == b.code && a.message == b.message }
}
