import Foundation
import Messaging
import SwiftProtobuf
import Testing

/// The committed generated code must match Protos/ (regenerate with scripts/generate-protos.sh).
@Suite struct GeneratedCodeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// FNV-1a 64 over "path\0content\0" of every .proto in path order, as the script computes it.
    static func fingerprint() throws -> String {
        let protos = root.appendingPathComponent("Protos")
        let paths = try FileManager.default.subpathsOfDirectory(atPath: protos.path).filter { $0.hasSuffix(".proto") }.sorted {
            Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8))
        }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for p in paths {
            let bytes = Array(p.utf8) + [0] + [UInt8](try Data(contentsOf: protos.appendingPathComponent(p))) + [0]
            for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        return String(format: "%016llx", h)
    }

    @Test func swiftCodeIsCurrent() throws {
        #expect(generatedProtoFingerprint == (try Self.fingerprint()), "Sources/Messaging/Generated is stale: run scripts/generate-protos.sh")
    }

    @Test func pythonCodeIsCurrent() throws {
        let file = Self.root.appendingPathComponent("python/robosim/msgs/PROTO_FINGERPRINT")
        let committed = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(committed == (try Self.fingerprint()), "python/robosim/msgs is stale: run scripts/generate-protos.sh")
    }

    /// Every message declared in Protos/ is known to the type registry under its ROS name.
    @Test func everyMessageIsRegistered() throws {
        let protos = Self.root.appendingPathComponent("Protos")
        var declared: [String] = []
        for p in try FileManager.default.subpathsOfDirectory(atPath: protos.path) where p.hasSuffix(".proto") {
            let text = try String(contentsOf: protos.appendingPathComponent(p), encoding: .utf8)
            let package = text.split(separator: "\n").first { $0.hasPrefix("package ") }!.dropFirst(8).dropLast()
            for line in text.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("message ") {
                let name = line.trimmingCharacters(in: .whitespaces).dropFirst(8).prefix { $0.isLetter || $0.isNumber }
                // Nested messages (indented) are registered as Outer+Inner; check the top-level ones by name.
                if line.hasPrefix("message ") { declared.append("\(package)/msg/\(name)") }
            }
        }
        #expect(declared.count > 40)
        for name in declared {
            #expect(MessageTypes.type(named: name) != nil, "\(name) is not in MessageTypes.all")
        }
    }

    /// Every registered message has a schema: a FileDescriptorSet whose last file defines it and
    /// whose files come after the files they import.
    @Test func everyMessageHasAFileDescriptorSet() throws {
        for type in MessageTypes.all {
            let schema = try #require(ProtoSchemas.schema(rosType: rosTypeName(of: type)), "\(type.protoMessageName)")
            #expect(schema.name == type.protoMessageName)
            let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: schema.descriptorSet)
            var seen = Set<String>()
            for file in set.file {
                #expect(file.dependency.allSatisfy(seen.contains), "\(file.name) comes before what it imports")
                seen.insert(file.name)
            }
            let last = try #require(set.file.last)
            #expect(type.protoMessageName.hasPrefix(last.package + "."))
        }
        #expect(ProtoSchemas.descriptorSet(protoName: "no.Such") == nil)
    }

    @Test func rosTypeNames() {
        #expect(rosTypeName(of: SensorMsgs_Image.self) == "sensor_msgs/msg/Image")
        #expect(rosTypeName(of: Tf2Msgs_TFMessage.self) == "tf2_msgs/msg/TFMessage")
        #expect(rosTypeName(of: Robosim_NodeInfo.Endpoint.self) == "robosim/msg/NodeInfoEndpoint")
    }
}
