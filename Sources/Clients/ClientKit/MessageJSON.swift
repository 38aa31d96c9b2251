import Foundation
import Messaging
import SwiftProtobuf

/// Protobuf's JSON mapping for messages known by ROS type name, for the command-line tools.
public enum MessageJSON {
    /// A problem turning text into a message or back.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Decodes `json` as the message type named `typeName` (`geometry_msgs/msg/Twist`).
    public static func message(typeName: String, json: String) throws(Failure) -> any SwiftProtobuf.Message {
        guard let type = MessageTypes.type(named: typeName) else {
            throw Failure(description: "unknown message type '\(typeName)' (known: \(MessageTypes.names.joined(separator: ", ")))")
        }
        do {
            return try type.init(jsonString: json.isEmpty ? "{}" : json)
        } catch {
            throw Failure(description: "'\(json)' is not a valid \(typeName) in protobuf JSON: \(error)")
        }
    }

    /// Decodes a serialized payload of the message type named `typeName`.
    public static func decode(typeName: String, payload: some SwiftProtobufContiguousBytes) throws(Failure) -> any SwiftProtobuf.Message {
        guard let type = MessageTypes.type(named: typeName) else { throw Failure(description: "unknown message type '\(typeName)'") }
        do { return try type.init(serializedBytes: payload) } catch {
            throw Failure(description: "payload is not a valid \(typeName)")
        }
    }

    /// One-line JSON (proto3 mapping: fields at their default value are omitted).
    public static func compact(_ message: any SwiftProtobuf.Message) -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return (try? message.jsonString(options: options)) ?? "{}"
    }

    /// Indented JSON, for people.
    public static func pretty(_ message: any SwiftProtobuf.Message) -> String {
        let line = compact(message)
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return line }
        return String(decoding: data, as: UTF8.self)
    }
}
