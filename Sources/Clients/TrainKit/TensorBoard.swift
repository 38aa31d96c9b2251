import Foundation

/// Writes TensorBoard event files (`events.out.tfevents.*`): TFRecord framing (length, masked
/// CRC-32C of the length, an `Event` protobuf, masked CRC-32C of it) of `Event { wall_time, step,
/// summary { value { tag, simple_value } } }`, the layout TensorFlow's and torch's `SummaryWriter`
/// write. Each scalar is appended and flushed, so a crash keeps what was logged.
public final class TensorBoardWriter {
    public let url: URL
    private let handle: FileHandle

    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        url = directory.appendingPathComponent("events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid())")
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw TrainError("cannot create \(url.path)") }
        handle = try FileHandle(forWritingTo: url)
        var event = Protobuf()
        event.double(1, Date().timeIntervalSince1970)
        event.bytes(3, Array("brain.Event:2".utf8))
        try write(event.data)
    }

    deinit { try? handle.close() }

    /// One scalar per tag at `step`.
    public func scalars(_ values: [(tag: String, value: Double)], step: Int) throws {
        var summary = Protobuf()
        for (tag, value) in values where value.isFinite {
            var v = Protobuf()
            v.bytes(1, Array(tag.utf8))
            v.float(2, Float(value))
            summary.bytes(1, v.data)
        }
        var event = Protobuf()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.bytes(5, summary.data)
        try write(event.data)
    }

    private func write(_ record: [UInt8]) throws {
        var out: [UInt8] = []
        let length = UInt64(record.count)
        let lengthBytes = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) }
        out += lengthBytes
        out += Self.le32(CRC32C.masked(lengthBytes))
        out += record
        out += Self.le32(CRC32C.masked(record))
        try handle.write(contentsOf: out)
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}

/// CRC-32C (Castagnoli), as TFRecord uses it, with TFRecord's masking.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func masked(_ bytes: [UInt8]) -> UInt32 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}
