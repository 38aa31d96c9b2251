import Foundation
import Messaging

/// MCAP files (the spec at mcap.dev/spec, version 0): our own writer and reader, for
/// `simctl record` and `simctl play`. The writer puts messages in uncompressed chunks with their
/// message indexes, and ends the file with a summary (schemas, channels, statistics, chunk indexes)
/// and summary offsets, so readers can seek; every CRC is computed.
public enum MCAP {
    public static let magic: [UInt8] = [0x89, 0x4D, 0x43, 0x41, 0x50, 0x30, 0x0D, 0x0A]   // \x89MCAP0\r\n

    enum Opcode: UInt8 {
        case header = 0x01, footer = 0x02, schema = 0x03, channel = 0x04, message = 0x05, chunk = 0x06,
             messageIndex = 0x07, chunkIndex = 0x08, statistics = 0x0B, summaryOffset = 0x0E, dataEnd = 0x0F
    }

    /// A message as read back.
    public struct Message: Sendable {
        public var channelID: UInt16
        public var sequence: UInt32
        public var logTime: UInt64
        public var publishTime: UInt64
        public var data: Data
    }

    public struct Schema: Sendable, Equatable {
        public var id: UInt16, name: String, encoding: String, data: Data
    }

    public struct Channel: Sendable, Equatable {
        public var id: UInt16, schemaID: UInt16, topic: String, messageEncoding: String, metadata: [String: String]
    }

    public struct FormatError: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}

/// Little-endian record building.
struct RecordBuffer {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        u32(UInt32(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }
    mutating func byteArray32(_ d: some Collection<UInt8>) {
        u32(UInt32(d.count))
        bytes.append(contentsOf: d)
    }
    mutating func map(_ m: [String: String]) {
        var inner = RecordBuffer()
        for (k, v) in m.sorted(by: { $0.key < $1.key }) {
            inner.string(k)
            inner.string(v)
        }
        byteArray32(inner.bytes)
    }
    /// Appends a record: opcode, content length, content.
    mutating func record(_ op: MCAP.Opcode, _ content: (inout RecordBuffer) -> Void) {
        var body = RecordBuffer()
        content(&body)
        u8(op.rawValue)
        u64(UInt64(body.bytes.count))
        bytes.append(contentsOf: body.bytes)
    }
}

/// CRC-32 (IEEE 802.3, as zlib), the checksum MCAP uses; eight bytes at a time (slicing-by-8).
public struct CRC32: Sendable {
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[0][n] = c
        }
        for n in 0..<256 {
            for k in 1..<8 { t[k][n] = (t[k - 1][n] >> 8) ^ t[0][Int(t[k - 1][n] & 0xFF)] }
        }
        return t
    }()
    private var state: UInt32 = 0xFFFF_FFFF
    public init() {}

    public mutating func update(_ bytes: some Collection<UInt8>) {
        let done = bytes.withContiguousStorageIfAvailable { update(buffer: UnsafeRawBufferPointer($0)) }
        if done == nil { Array(bytes).withUnsafeBytes { update(buffer: $0) } }
    }

    private mutating func update(buffer: UnsafeRawBufferPointer) {
        var c = state
        var i = 0
        let n = buffer.count
        Self.tables.withUnsafeBufferPointer { t in
            let t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7]
            while i + 8 <= n {
                let lo = c ^ (UInt32(buffer[i]) | UInt32(buffer[i + 1]) << 8 | UInt32(buffer[i + 2]) << 16 | UInt32(buffer[i + 3]) << 24)
                let hi = UInt32(buffer[i + 4]) | UInt32(buffer[i + 5]) << 8 | UInt32(buffer[i + 6]) << 16 | UInt32(buffer[i + 7]) << 24
                c = t7[Int(lo & 0xFF)] ^ t6[Int((lo >> 8) & 0xFF)] ^ t5[Int((lo >> 16) & 0xFF)] ^ t4[Int(lo >> 24)]
                    ^ t3[Int(hi & 0xFF)] ^ t2[Int((hi >> 8) & 0xFF)] ^ t1[Int((hi >> 16) & 0xFF)] ^ t0[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t0[Int((c ^ UInt32(buffer[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        state = c
    }

    public var value: UInt32 { state ^ 0xFFFF_FFFF }
}

/// Writes an MCAP file: schemas and channels (written before their first message, and again in the
/// summary), messages in chunks of about `chunkSize` bytes, each followed by its message indexes.
/// Not thread-safe: one writer at a time.
public final class MCAPWriter {
    private let handle: FileHandle
    private var offset: UInt64 = 0
    private var dataCRC = CRC32()
    private let chunkSize: Int
    private var schemas: [MCAP.Schema] = []
    private var channels: [MCAP.Channel] = []
    private var chunk = RecordBuffer()
    private var chunkStart: UInt64 = .max, chunkEnd: UInt64 = 0
    private var chunkIndexes: [[UInt8]] = []
    /// channel -> (log time, offset in the chunk's records) of the open chunk.
    private var chunkMessages: [UInt16: [(UInt64, UInt64)]] = [:]
    private var messageCount: UInt64 = 0
    private var perChannel: [UInt16: UInt64] = [:]
    private var firstTime: UInt64 = .max, lastTime: UInt64 = 0
    private var finished = false

    /// Creates (truncates) `url` and writes the magic and header.
    public init(url: URL, profile: String = "", library: String = "robosim \(RoboSimVersion.string)", chunkSize: Int = 1 << 20) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw MCAP.FormatError("cannot create \(url.path)") }
        handle = try FileHandle(forWritingTo: url)
        self.chunkSize = chunkSize
        var head = RecordBuffer()
        head.bytes = MCAP.magic
        head.record(.header) { r in
            r.string(profile)
            r.string(library)
        }
        try write(head.bytes, data: true)
    }

    deinit { try? handle.close() }

    private func write(_ bytes: [UInt8], data: Bool) throws {
        try handle.write(contentsOf: bytes)
        if data { dataCRC.update(bytes) }
        offset += UInt64(bytes.count)
    }

    /// Adds a schema; returns its id (1-based).
    public func addSchema(name: String, encoding: String, data: Data) throws -> UInt16 {
        guard schemas.count < Int(UInt16.max) - 1 else { throw MCAP.FormatError("too many schemas") }
        let schema = MCAP.Schema(id: UInt16(schemas.count + 1), name: name, encoding: encoding, data: data)
        schemas.append(schema)
        var r = RecordBuffer()
        Self.schemaRecord(schema, into: &r)
        try flushChunk()
        try write(r.bytes, data: true)
        return schema.id
    }

    /// Adds a channel; returns its id (0-based).
    public func addChannel(schemaID: UInt16, topic: String, messageEncoding: String, metadata: [String: String] = [:]) throws -> UInt16 {
        guard channels.count < Int(UInt16.max) else { throw MCAP.FormatError("too many channels") }
        let channel = MCAP.Channel(id: UInt16(channels.count), schemaID: schemaID, topic: topic, messageEncoding: messageEncoding, metadata: metadata)
        channels.append(channel)
        var r = RecordBuffer()
        Self.channelRecord(channel, into: &r)
        try flushChunk()
        try write(r.bytes, data: true)
        return channel.id
    }

    /// Adds a message on `channel`.
    public func add(channel: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64, data: some Collection<UInt8>) throws {
        guard Int(channel) < channels.count else { throw MCAP.FormatError("no channel \(channel)") }
        chunkMessages[channel, default: []].append((logTime, UInt64(chunk.bytes.count)))
        // Written in place (a message's length is known): no copy of the payload but this one.
        chunk.u8(MCAP.Opcode.message.rawValue)
        chunk.u64(UInt64(2 + 4 + 8 + 8 + data.count))
        chunk.u16(channel)
        chunk.u32(sequence)
        chunk.u64(logTime)
        chunk.u64(publishTime)
        chunk.bytes.append(contentsOf: data)
        chunkStart = min(chunkStart, logTime)
        chunkEnd = max(chunkEnd, logTime)
        firstTime = min(firstTime, logTime)
        lastTime = max(lastTime, logTime)
        messageCount += 1
        perChannel[channel, default: 0] += 1
        if chunk.bytes.count >= chunkSize { try flushChunk() }
    }

    /// Writes the open chunk and its message indexes.
    private func flushChunk() throws {
        guard !chunk.bytes.isEmpty else { return }
        var crc = CRC32()
        crc.update(chunk.bytes)
        let chunkOffset = offset
        // The chunk record's head, then its records as they are (no copy).
        var head = RecordBuffer()
        head.u8(MCAP.Opcode.chunk.rawValue)
        head.u64(UInt64(8 + 8 + 8 + 4 + 4 + 8 + chunk.bytes.count))
        head.u64(chunkStart)
        head.u64(chunkEnd)
        head.u64(UInt64(chunk.bytes.count))
        head.u32(crc.value)
        head.string("")
        head.u64(UInt64(chunk.bytes.count))
        try write(head.bytes, data: true)
        try write(chunk.bytes, data: true)
        let chunkLength = offset - chunkOffset
        var indexOffsets: [(UInt16, UInt64)] = []
        var indexes = RecordBuffer()
        for (channel, entries) in chunkMessages.sorted(by: { $0.key < $1.key }) {
            indexOffsets.append((channel, offset + UInt64(indexes.bytes.count)))
            indexes.record(.messageIndex) { r in
                r.u16(channel)
                r.u32(UInt32(entries.count * 16))
                for (time, at) in entries {
                    r.u64(time)
                    r.u64(at)
                }
            }
        }
        try write(indexes.bytes, data: true)
        var index = RecordBuffer()
        index.record(.chunkIndex) { r in
            r.u64(chunkStart)
            r.u64(chunkEnd)
            r.u64(chunkOffset)
            r.u64(chunkLength)
            r.u32(UInt32(indexOffsets.count * 10))
            for (channel, at) in indexOffsets {
                r.u16(channel)
                r.u64(at)
            }
            r.u64(UInt64(indexes.bytes.count))
            r.string("")
            r.u64(UInt64(chunk.bytes.count))
            r.u64(UInt64(chunk.bytes.count))
        }
        chunkIndexes.append(index.bytes)
        chunk = RecordBuffer()
        chunkMessages = [:]
        chunkStart = .max
        chunkEnd = 0
    }

    /// Writes the last chunk, the data end, the summary, the summary offsets and the footer, and
    /// closes the file (flushed to disk).
    public func finish() throws {
        guard !finished else { return }
        finished = true
        try flushChunk()
        var end = RecordBuffer()
        let crc = dataCRC.value
        end.record(.dataEnd) { $0.u32(crc) }
        try write(end.bytes, data: false)

        let summaryStart = offset
        var summary = RecordBuffer()
        var groups: [(MCAP.Opcode, UInt64, UInt64)] = []
        func group(_ op: MCAP.Opcode, _ body: (inout RecordBuffer) -> Void) {
            let start = summary.bytes.count
            body(&summary)
            if summary.bytes.count > start { groups.append((op, summaryStart + UInt64(start), UInt64(summary.bytes.count - start))) }
        }
        group(.schema) { s in for schema in schemas { Self.schemaRecord(schema, into: &s) } }
        group(.channel) { s in for channel in channels { Self.channelRecord(channel, into: &s) } }
        group(.statistics) { s in
            s.record(.statistics) { r in
                r.u64(messageCount)
                r.u16(UInt16(schemas.count))
                r.u32(UInt32(channels.count))
                r.u32(0)   // attachments
                r.u32(0)   // metadata
                r.u32(UInt32(chunkIndexes.count))
                r.u64(messageCount == 0 ? 0 : firstTime)
                r.u64(lastTime)
                r.u32(UInt32(perChannel.count * 10))
                for (channel, count) in perChannel.sorted(by: { $0.key < $1.key }) {
                    r.u16(channel)
                    r.u64(count)
                }
            }
        }
        group(.chunkIndex) { s in for index in chunkIndexes { s.bytes.append(contentsOf: index) } }
        let summaryOffsetStart = summaryStart + UInt64(summary.bytes.count)
        for (op, start, length) in groups {
            summary.record(.summaryOffset) { r in
                r.u8(op.rawValue)
                r.u64(start)
                r.u64(length)
            }
        }
        // The footer's CRC covers the summary, the summary offsets and the footer up to the CRC.
        var footerHead = RecordBuffer()
        footerHead.u8(MCAP.Opcode.footer.rawValue)
        footerHead.u64(20)
        footerHead.u64(summaryStart)
        footerHead.u64(summaryOffsetStart)
        var summaryCRC = CRC32()
        summaryCRC.update(summary.bytes)
        summaryCRC.update(footerHead.bytes)
        var tail = summary.bytes + footerHead.bytes
        withUnsafeBytes(of: summaryCRC.value.littleEndian) { tail.append(contentsOf: $0) }
        tail.append(contentsOf: MCAP.magic)
        try write(tail, data: false)
        try handle.synchronize()
        try handle.close()
    }

    static func schemaRecord(_ s: MCAP.Schema, into r: inout RecordBuffer) {
        r.record(.schema) { b in
            b.u16(s.id)
            b.string(s.name)
            b.string(s.encoding)
            b.byteArray32(s.data)
        }
    }

    static func channelRecord(_ c: MCAP.Channel, into r: inout RecordBuffer) {
        r.record(.channel) { b in
            b.u16(c.id)
            b.u16(c.schemaID)
            b.string(c.topic)
            b.string(c.messageEncoding)
            b.map(c.metadata)
        }
    }
}

/// Reads an MCAP file's data section in order: schemas, channels and messages, including those in
/// uncompressed chunks (what `MCAPWriter` and most recorders write; compressed chunks are refused).
/// Every length is checked against the file, so a damaged file is an error, never a crash.
public struct MCAPReader {
    public private(set) var schemas: [UInt16: MCAP.Schema] = [:]
    public private(set) var channels: [UInt16: MCAP.Channel] = [:]
    private let data: Data

    public init(url: URL) throws {
        data = try Data(contentsOf: url, options: .mappedIfSafe)
        guard data.count >= 16, Array(data.prefix(8)) == MCAP.magic else { throw MCAP.FormatError("\(url.path) is not an MCAP file") }
    }

    /// Calls `body` with every message, in file order (the order they were written), with its
    /// channel and that channel's schema (nil when the file has not declared them before it).
    public typealias Visitor = (MCAP.Message, MCAP.Channel?, MCAP.Schema?) throws -> Void

    public mutating func forEachMessage(_ body: Visitor) throws {
        var at = 8
        while at < data.count - 8 {
            guard at + 9 <= data.count else { throw MCAP.FormatError("a record is cut at byte \(at)") }
            let op = data[data.startIndex + at]
            let length = Self.u64(data, at + 1)
            guard length <= UInt64(data.count - at - 9) else { throw MCAP.FormatError("a record at byte \(at) runs past the end") }
            let start = at + 9, end = start + Int(length)
            if op == MCAP.Opcode.dataEnd.rawValue { return }
            try handle(op: op, data, start, end, body)
            at = end
        }
    }

    private mutating func handle(op: UInt8, _ d: Data, _ start: Int, _ end: Int, _ body: Visitor, inChunk: Bool = false) throws {
        var p = Parser(data: d, at: start, end: end)
        switch MCAP.Opcode(rawValue: op) {
        case .chunk where inChunk:
            throw MCAP.FormatError("a chunk inside a chunk")
        case .schema:
            let s = MCAP.Schema(id: try p.u16(), name: try p.string(), encoding: try p.string(), data: try p.bytes32())
            schemas[s.id] = s
        case .channel:
            let c = MCAP.Channel(id: try p.u16(), schemaID: try p.u16(), topic: try p.string(), messageEncoding: try p.string(), metadata: [:])
            channels[c.id] = c
        case .message:
            let m = MCAP.Message(channelID: try p.u16(), sequence: try p.u32(), logTime: try p.u64(), publishTime: try p.u64(),
                                 data: d.subdata(in: d.startIndex + p.at..<d.startIndex + end))
            let channel = channels[m.channelID]
            try body(m, channel, channel.flatMap { schemas[$0.schemaID] })
        case .chunk:
            _ = try p.u64(); _ = try p.u64()
            let uncompressed = try p.u64()
            _ = try p.u32()
            let compression = try p.string()
            guard compression.isEmpty else { throw MCAP.FormatError("compressed chunks (\(compression)) are not supported") }
            let size = try p.u64()
            guard size == uncompressed, size <= UInt64(end - p.at) else { throw MCAP.FormatError("a chunk's records run past it") }
            var at = p.at
            let stop = p.at + Int(size)
            while at < stop {
                guard at + 9 <= stop else { throw MCAP.FormatError("a record in a chunk is cut") }
                let op = d[d.startIndex + at]
                let length = Self.u64(d, at + 1)
                guard length <= UInt64(stop - at - 9) else { throw MCAP.FormatError("a record in a chunk runs past it") }
                try handle(op: op, d, at + 9, at + 9 + Int(length), body, inChunk: true)
                at += 9 + Int(length)
            }
        default:
            break   // header, indexes, statistics, attachments, metadata: not needed to replay
        }
    }

    static func u64(_ d: Data, _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(d[d.startIndex + at + k]) << (8 * UInt64(k)) }
        return v
    }

    struct Parser {
        let data: Data
        var at: Int
        let end: Int
        init(data: Data, at: Int, end: Int) { self.data = data; self.at = at; self.end = end }
        mutating func take(_ n: Int) throws -> Int {
            guard n >= 0, at + n <= end else { throw MCAP.FormatError("a field runs past its record") }
            defer { at += n }
            return at
        }
        mutating func u16() throws -> UInt16 { let s = try take(2); return UInt16(data[data.startIndex + s]) | UInt16(data[data.startIndex + s + 1]) << 8 }
        mutating func u32() throws -> UInt32 {
            let s = try take(4)
            return (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[data.startIndex + s + $1]) << (8 * UInt32($1)) }
        }
        mutating func u64() throws -> UInt64 { let s = try take(8); return MCAPReader.u64(data, s) }
        mutating func bytes32() throws -> Data {
            let n = Int(try u32())
            let s = try take(n)
            return data.subdata(in: data.startIndex + s..<data.startIndex + s + n)
        }
        mutating func string() throws -> String { String(decoding: try bytes32(), as: UTF8.self) }
    }
}

