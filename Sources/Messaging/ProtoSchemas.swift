import Foundation
import SwiftProtobuf
import Synchronization

/// The protobuf schemas of RoboSim's messages as FileDescriptorSets, the form the Foxglove
/// WebSocket protocol and MCAP carry (`schemaEncoding: protobuf`): for one message, the file that
/// defines it and every file that file imports, dependencies first. Built once from the descriptor
/// set `scripts/generate-protos.sh` embeds.
public enum ProtoSchemas {
    private static let files: [Google_Protobuf_FileDescriptorProto] = {
        guard let data = Data(base64Encoded: protoDescriptorSetBase64, options: .ignoreUnknownCharacters),
              let set = try? Google_Protobuf_FileDescriptorSet(serializedBytes: data) else {
            preconditionFailure("the embedded descriptor set does not decode: regenerate it (scripts/generate-protos.sh)")
        }
        return set.file
    }()

    /// File index by fully qualified message name (`sensor_msgs.Image`, `robosim.NodeInfo.Endpoint`).
    private static let fileOfMessage: [String: Int] = {
        var table: [String: Int] = [:]
        func add(_ messages: [Google_Protobuf_DescriptorProto], prefix: String, file: Int) {
            for m in messages {
                let name = prefix + "." + m.name
                table[name] = file
                add(m.nestedType, prefix: name, file: file)
            }
        }
        for (k, f) in files.enumerated() { add(f.messageType, prefix: f.package, file: k) }
        return table
    }()

    private static let cache = Mutex<[String: Data]>([:])

    /// The serialized FileDescriptorSet for the message `protoName` (`sensor_msgs.Image`), or nil
    /// for a name no .proto defines.
    public static func descriptorSet(protoName: String) -> Data? {
        if let cached = cache.withLock({ $0[protoName] }) { return cached }
        guard let index = fileOfMessage[protoName] else { return nil }
        let byName = Dictionary(uniqueKeysWithValues: files.map { ($0.name, $0) })
        var ordered: [Google_Protobuf_FileDescriptorProto] = []
        var seen = Set<String>()
        func visit(_ file: Google_Protobuf_FileDescriptorProto) {
            guard seen.insert(file.name).inserted else { return }
            for dependency in file.dependency { if let d = byName[dependency] { visit(d) } }
            ordered.append(file)
        }
        visit(files[index])
        var set = Google_Protobuf_FileDescriptorSet()
        set.file = ordered
        guard let data: Data = try? set.serializedBytes() else { return nil }
        cache.withLock { $0[protoName] = data }
        return data
    }

    /// The schema for Foxglove and MCAP files: the same messages with every package put under
    /// `ros.` (`ros.sensor_msgs.Image`), the names Foxglove's panels recognize for ROS messages in
    /// protobuf. The wire bytes are the same; only the names in the descriptors change.
    public static func foxgloveSchema(rosType: String) -> (name: String, descriptorSet: Data)? {
        if let cached = foxgloveCache.withLock({ $0[rosType] }) { return cached }
        guard let type = MessageTypes.type(named: rosType), let data = descriptorSet(protoName: type.protoMessageName),
              var set = try? Google_Protobuf_FileDescriptorSet(serializedBytes: data) else { return nil }
        func rename(_ messages: inout [Google_Protobuf_DescriptorProto]) {
            for m in messages.indices {
                for f in messages[m].field.indices where messages[m].field[f].typeName.hasPrefix(".") {
                    messages[m].field[f].typeName = ".ros" + messages[m].field[f].typeName
                }
                rename(&messages[m].nestedType)
            }
        }
        for k in set.file.indices {
            set.file[k].package = "ros." + set.file[k].package
            rename(&set.file[k].messageType)
        }
        guard let renamed: Data = try? set.serializedBytes() else { return nil }
        let schema = (foxglovePrefix + type.protoMessageName, renamed)
        foxgloveCache.withLock { $0[rosType] = schema }
        return schema
    }

    private static let foxgloveCache = Mutex<[String: (String, Data)]>([:])

    /// What `foxgloveSchema` puts before a message's protobuf name.
    public static let foxglovePrefix = "ros."

    /// The protobuf name of a schema name from Foxglove or an MCAP file (either form).
    public static func protoName(fromSchemaName name: String) -> String {
        name.hasPrefix(foxglovePrefix) ? String(name.dropFirst(foxglovePrefix.count)) : name
    }

    /// The schema of a ROS type name (`sensor_msgs/msg/Image`): its protobuf name and descriptor set.
    public static func schema(rosType: String) -> (name: String, descriptorSet: Data)? {
        guard let type = MessageTypes.type(named: rosType), let data = descriptorSet(protoName: type.protoMessageName) else { return nil }
        return (type.protoMessageName, data)
    }
}
