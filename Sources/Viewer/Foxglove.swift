import Foundation

/// The Foxglove WebSocket protocol, v1 (subprotocol `foxglove.websocket.v1`, the public spec in
/// foxglove/ws-protocol): the JSON and binary messages the bridge sends and the ones it accepts.
/// Pure values and parsing; no sockets.
public enum Foxglove {
    public static let subprotocol = "foxglove.websocket.v1"

    /// A channel as advertised: one topic with its protobuf schema.
    public struct Channel: Codable, Sendable, Equatable {
        public var id: UInt32
        public var topic: String
        public var encoding = "protobuf"
        /// The protobuf message name (`sensor_msgs.Image`).
        public var schemaName: String
        /// Base64 of the message's FileDescriptorSet.
        public var schema: String
        public var schemaEncoding = "protobuf"
    }

    /// A channel a client advertises to publish on (`clientPublish`).
    public struct ClientChannel: Sendable, Equatable {
        public var id: UInt32
        public var topic: String
        public var encoding: String
        public var schemaName: String
    }

    /// What a client sent.
    public enum ClientMessage: Sendable, Equatable {
        case subscribe([(id: UInt32, channelID: UInt32)])
        case unsubscribe([UInt32])
        case advertise([ClientChannel])
        case unadvertise([UInt32])
        /// Binary opcode 0x01: a message on a client channel.
        case publish(channelID: UInt32, payload: Data)

        public static func == (a: ClientMessage, b: ClientMessage) -> Bool {
            switch (a, b) {
            case (.subscribe(let x), .subscribe(let y)): x.map(\.id) == y.map(\.id) && x.map(\.channelID) == y.map(\.channelID)
            case (.unsubscribe(let x), .unsubscribe(let y)), (.unadvertise(let x), .unadvertise(let y)): x == y
            case (.advertise(let x), .advertise(let y)): x == y
            case (.publish(let c, let p), .publish(let d, let q)): c == d && p == q
            default: false
            }
        }
    }

    /// A message the bridge refuses, with the reason it sends back in a status message.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Entries one subscribe, unsubscribe, advertise or unadvertise may carry.
    public static let maxEntries = 1024

    // MARK: Server to client

    public static func serverInfo(name: String, capabilities: [String], sessionID: String, metadata: [String: String]) -> String {
        json(["op": "serverInfo", "name": name, "capabilities": capabilities, "supportedEncodings": ["protobuf"],
              "metadata": metadata, "sessionId": sessionID])
    }

    public static func advertise(_ channels: [Channel]) -> String {
        json(["op": "advertise", "channels": channels.map { c -> [String: Any] in
            ["id": c.id, "topic": c.topic, "encoding": c.encoding, "schemaName": c.schemaName, "schema": c.schema, "schemaEncoding": c.schemaEncoding]
        }])
    }

    public static func unadvertise(_ ids: [UInt32]) -> String { json(["op": "unadvertise", "channelIds": ids]) }

    /// level 0 info, 1 warning, 2 error.
    public static func status(level: Int, message: String) -> String { json(["op": "status", "level": level, "message": message]) }

    /// Binary opcode 0x01: subscription id, receive time (ns), payload; integers little-endian.
    public static func messageData(subscription: UInt32, receiveTime: UInt64, payload: Data) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(13 + payload.count)
        out.append(0x01)
        withUnsafeBytes(of: subscription.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: receiveTime.littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: payload)
        return out
    }

    // MARK: Client to server

    /// Parses a text message. Unknown ops and malformed or oversized ones are refused.
    public static func parse(text: String) throws(Refusal) -> ClientMessage {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let op = object["op"] as? String else {
            throw Refusal("a text message must be a JSON object with an 'op'")
        }
        func list(_ key: String) throws(Refusal) -> [Any] {
            guard let items = object[key] as? [Any] else { throw Refusal("\(op): '\(key)' must be an array") }
            guard items.count <= maxEntries else { throw Refusal("\(op): at most \(maxEntries) entries") }
            return items
        }
        func id(_ value: Any?, _ what: String) throws(Refusal) -> UInt32 {
            guard let n = value as? NSNumber, let v = UInt32(exactly: n.doubleValue) else {
                throw Refusal("\(op): '\(what)' must be an integer in 0...\(UInt32.max)")
            }
            return v
        }
        switch op {
        case "subscribe":
            var out: [(id: UInt32, channelID: UInt32)] = []
            for item in try list("subscriptions") {
                guard let entry = item as? [String: Any] else { throw Refusal("subscribe: each subscription is an object") }
                out.append((try id(entry["id"], "id"), try id(entry["channelId"], "channelId")))
            }
            return .subscribe(out)
        case "unsubscribe":
            var out: [UInt32] = []
            for item in try list("subscriptionIds") { out.append(try id(item, "subscriptionIds")) }
            return .unsubscribe(out)
        case "advertise":
            var out: [ClientChannel] = []
            for item in try list("channels") {
                guard let entry = item as? [String: Any], let topic = entry["topic"] as? String, let encoding = entry["encoding"] as? String,
                      let schemaName = entry["schemaName"] as? String else {
                    throw Refusal("advertise: each channel needs id, topic, encoding and schemaName")
                }
                guard topic.utf8.count <= 256, schemaName.utf8.count <= 256, encoding.utf8.count <= 32 else { throw Refusal("advertise: names are at most 256 bytes") }
                out.append(ClientChannel(id: try id(entry["id"], "id"), topic: topic, encoding: encoding, schemaName: schemaName))
            }
            return .advertise(out)
        case "unadvertise":
            var out: [UInt32] = []
            for item in try list("channelIds") { out.append(try id(item, "channelIds")) }
            return .unadvertise(out)
        default:
            throw Refusal("unsupported op '\(op.prefix(40))'")
        }
    }

    /// Parses a binary message: only opcode 0x01 (client message data) is accepted.
    public static func parse(binary bytes: some Collection<UInt8>) throws(Refusal) -> ClientMessage {
        let data = Array(bytes)
        guard data.count >= 5 else { throw Refusal("a binary message needs an opcode and a channel id") }
        guard data[0] == 0x01 else { throw Refusal("unsupported binary opcode \(data[0])") }
        let channel = UInt32(data[1]) | UInt32(data[2]) << 8 | UInt32(data[3]) << 16 | UInt32(data[4]) << 24
        return .publish(channelID: channel, payload: Data(data[5...]))
    }

    static func json(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8), as: UTF8.self)
    }
}
