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

    /// The schema of a ROS type name (`sensor_msgs/msg/Image`): its protobuf name and descriptor set.
    public static func schema(rosType: String) -> (name: String, descriptorSet: Data)? {
        guard let type = MessageTypes.type(named: rosType), let data = descriptorSet(protoName: type.protoMessageName) else { return nil }
        return (type.protoMessageName, data)
    }
}
