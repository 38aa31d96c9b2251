import CZeroMQ
import Foundation
import Messaging
import Testing

/// Floods every hub socket with malformed or random multipart messages over real TCP sockets:
/// each service call gets an error reply, each bad topic message a counted drop, and the hub
/// answers the next good call.
@Suite(.serialized) struct MalformedInputTests {
    static let limit = 4096

    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    }

    /// A payload no protobuf parser accepts: field number 0 is invalid.
    static let garbage: [UInt8] = [0x07, 0xff, 0x00, 0x13]

    /// A service call that must be refused, as frames after the DEALER's own identity.
    static func badCall(_ rng: inout Rng) -> (frames: [[UInt8]], code: Robosim_ErrorCode) {
        let known = ["/graph/announce", "/sim/describe", "/graph/list"]
        switch rng.int(7) {
        case 0: return ([[]], .malformed)                                             // delimiter only
        case 1: return ([[], Array("/graph/list".utf8)], .malformed)                 // no payload
        case 2: return ([[], Array("/graph/list".utf8), [], [1], [2]], .malformed)   // too many frames
        case 3: return ([[], rng.bytes(1 + rng.int(40)), rng.bytes(rng.int(64))], .notFound)  // random service
        case 4: return ([[], Array("/graph/announce".utf8), garbage + rng.bytes(rng.int(32))], .invalidArgument)
        case 5: return ([[], Array(known[rng.int(3)].utf8), [UInt8](repeating: 1, count: limit + 1 + rng.int(100))], .tooLarge)
        default: return ([Array("/no/such/service".utf8), rng.bytes(8)], .notFound)  // DEALER without delimiter
        }
    }

    @Test func floodEverySocketThenAnswerAGoodCall() throws {
        let hub = try TestHub(tcp: true, maxFrameBytes: Self.limit)
        let ctx = ZMQContext()
        var rng = Rng(state: 42)
        var sent = 0

        // 1. ROUTER: 4,000 bad calls, each answered with the expected error code.
        let dealer = try ZMQSocket(ctx, .dealer)
        try dealer.setHighWaterMarks(send: 100_000, receive: 100_000)
        try dealer.connect(hub.hub.serviceEndpoint)
        var expected: [Robosim_ErrorCode] = []
        for _ in 0..<4000 {
            let (frames, code) = Self.badCall(&rng)
            try dealer.send(frames: frames)
            expected.append(code)
        }
        sent += expected.count
        var answered = 0
        var codes: [Robosim_ErrorCode: Int] = [:]
        while answered < expected.count, try dealer.waitReadable(timeout: 5) {
            guard let reply = try dealer.receiveMultipart(flags: .dontWait) else { continue }
            let body = reply.first?.isEmpty == true ? Array(reply.dropFirst()) : reply
            #expect(body.first == Array("error".utf8))
            let error = try Robosim_Error(serializedBytes: body[1])
            codes[error.code, default: 0] += 1
            answered += 1
        }
        #expect(answered == expected.count)
        #expect(codes == Dictionary(expected.map { ($0, 1) }, uniquingKeysWith: +))

        // 2. XSUB: 4,000 bad topic messages from a publisher; none reaches a subscriber.
        let spy = try ZMQSocket(ctx, .sub)
        try spy.subscribe("")
        try spy.connect(hub.hub.subscribeEndpoint)
        let pub = try ZMQSocket(ctx, .pub)
        try pub.setHighWaterMarks(send: 100_000, receive: 100_000)
        try pub.connect(hub.hub.publishEndpoint)
        // Wait until the spy's subscription reached the publisher: a good message goes through.
        var through = false
        for _ in 0..<500 where !through {
            try pub.send(frames: [Array("/probe".utf8), Array("std_msgs/msg/String".utf8), []])
            through = try spy.waitReadable(timeout: 0.01)
        }
        #expect(through)
        while try spy.receiveMultipart(flags: .dontWait) != nil {}
        let before = try hub.client().graph()
        var badTopics = 0, oversize = 0
        for _ in 0..<4000 {
            let type = Array("std_msgs/msg/String".utf8)
            switch rng.int(6) {
            case 0: try pub.send(frames: [Array("/ok".utf8)]); badTopics += 1
            case 1: try pub.send(frames: [Array("/ok".utf8), type]); badTopics += 1
            case 2: try pub.send(frames: [Array("/ok".utf8), type, [], rng.bytes(3)]); badTopics += 1
            case 3: try pub.send(frames: [Array("bad topic".utf8) + rng.bytes(rng.int(5)), type, rng.bytes(10)]); badTopics += 1
            case 4: try pub.send(frames: [Array("/ok".utf8), rng.bytes(1 + rng.int(20)).map { $0 | 0x80 }, rng.bytes(10)]); badTopics += 1
            default: try pub.send(frames: [Array("/ok".utf8), type, rng.bytes(Self.limit + 1)]); oversize += 1
            }
        }
        sent += 4000
        #expect(try eventually(timeout: 10) {
            let g = try hub.client().graph()
            return g.droppedMalformed - before.droppedMalformed == UInt64(badTopics) && g.droppedOversize == UInt64(oversize)
        })
        #expect(try spy.receiveMultipart(flags: .dontWait) == nil)

        // 3. XPUB: 2,000 messages that are not subscriptions, from an XSUB peer.
        let rogue = try ZMQSocket(ctx, .xsub)
        try rogue.setHighWaterMarks(send: 100_000, receive: 100_000)
        try rogue.connect(hub.hub.subscribeEndpoint)
        let midway = try hub.client().graph().droppedMalformed
        // In batches: an XSUB drops (silently, inside ZeroMQ) what does not fit its pipe, before
        // the hub could see it; the claim under test is that everything that reaches the hub counts.
        for batch in 0..<20 {
            for _ in 0..<100 {
                let first = UInt8(2 + rng.int(250))
                let tail = rng.bytes(rng.int(30)).map { $0 | 0x80 }
                try rogue.send(frames: rng.int(2) == 0 ? [[first] + tail] : [[first], tail, [0x80]])
            }
            #expect(try eventually(timeout: 10) { try hub.client().graph().droppedMalformed - midway >= UInt64(100 * (batch + 1)) })
        }
        sent += 2000
        #expect(try eventually(timeout: 10) { try hub.client().graph().droppedMalformed - midway >= 2000 })
        let counted = try hub.client().graph().droppedMalformed - midway
        #expect(counted == 2000, "counted \(counted) malformed messages on the XPUB socket")
        #expect(sent == 10_000)

        // The hub still answers and forwards.
        let described = try hub.client().describe()
        #expect(described.subscribeEndpoint == hub.hub.subscribeEndpoint)
        try pub.send(frames: [Array("/after".utf8), Array("std_msgs/msg/String".utf8), [0x0a, 0x02, 0x6f, 0x6b]])
        #expect(try spy.waitReadable(timeout: 5))
        let good = try #require(try spy.receiveMultipart())
        #expect(good[0] == Array("/after".utf8))
    }
}
