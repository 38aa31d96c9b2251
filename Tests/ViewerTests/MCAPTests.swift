import ClientKit
import Foundation
import Testing

/// Our MCAP writer read back by our reader (Python's `mcap` reads the same files in
/// python/tests/test_mcap.py), and damaged files refused without a crash.
@Suite struct MCAPTests {
    static func file() -> URL { FileManager.default.temporaryDirectory.appendingPathComponent("mcap-test-\(UUID().uuidString).mcap") }

    @Test func messagesComeBackInOrderAcrossChunks() throws {
        let url = Self.file()
        defer { try? FileManager.default.removeItem(at: url) }
        let writer = try MCAPWriter(url: url, chunkSize: 4096)
        let schema = try writer.addSchema(name: "std_msgs.String", encoding: "protobuf", data: Data([1, 2, 3]))
        let a = try writer.addChannel(schemaID: schema, topic: "/a", messageEncoding: "protobuf")
        let b = try writer.addChannel(schemaID: schema, topic: "/b", messageEncoding: "protobuf")
        for k in 0..<1000 {
            try writer.add(channel: k % 3 == 0 ? b : a, sequence: UInt32(k), logTime: UInt64(k) * 1000, publishTime: UInt64(k) * 1000, data: Array("m\(k)".utf8))
        }
        try writer.finish()
        var reader = try MCAPReader(url: url)
        var seen: [(String, String, UInt64)] = []
        try reader.forEachMessage { m, channel, schema in
            #expect(schema?.name == "std_msgs.String")
            seen.append((channel?.topic ?? "?", String(decoding: m.data, as: UTF8.self), m.logTime))
        }
        #expect(seen.count == 1000)
        #expect(seen.map(\.1) == (0..<1000).map { "m\($0)" })
        #expect(seen.filter { $0.0 == "/b" }.count == 334)
        let bytes = try Data(contentsOf: url)
        #expect(Array(bytes.prefix(8)) == MCAP.magic && Array(bytes.suffix(8)) == MCAP.magic)
    }

    @Test func damagedFilesAreErrorsNotCrashes() throws {
        let url = Self.file()
        defer { try? FileManager.default.removeItem(at: url) }
        let writer = try MCAPWriter(url: url)
        let schema = try writer.addSchema(name: "std_msgs.String", encoding: "protobuf", data: Data())
        let channel = try writer.addChannel(schemaID: schema, topic: "/a", messageEncoding: "protobuf")
        for k in 0..<50 { try writer.add(channel: channel, sequence: UInt32(k), logTime: UInt64(k), publishTime: UInt64(k), data: [UInt8](repeating: 7, count: 100)) }
        try writer.finish()
        let good = try Data(contentsOf: url)
        var random = SystemRandomNumberGenerator()
        for trial in 0..<200 {
            var bad = good
            if trial % 2 == 0 {
                bad = bad.prefix(Int.random(in: 8..<good.count, using: &random))   // cut short
            } else {
                for _ in 0..<4 { bad[Int.random(in: 8..<good.count, using: &random)] = UInt8.random(in: 0...255, using: &random) }
            }
            try bad.write(to: url)
            // Either it reads (the damage hit a payload) or it throws; it never traps.
            if var reader = try? MCAPReader(url: url) { _ = try? reader.forEachMessage { _, _, _ in } }
        }
    }
}
