/// The Thrift compact protocol, read side: a bounded decoder for Parquet's footer and page headers.
///
/// Every length read from the input (binary sizes, list sizes) is checked against the bytes that
/// remain before anything is allocated, structs nest at most ``maxDepth`` deep, and fields this
/// reader does not know are skipped by type: a corrupt or hostile input gives a ``ParquetError``
/// (`.corrupt`), never a trap or a large allocation.
struct ThriftReader {
    typealias FieldType = ThriftWriter.FieldType

    /// Structs nested deeper than this (footer: FileMetaData > RowGroup > ColumnChunk > ColumnMetaData
    /// > Statistics...) are refused.
    static let maxDepth = 32

    private let bytes: [UInt8]
    /// The next byte to read.
    private(set) var position: Int
    private let end: Int
    private var depth = 0

    /// Reads `bytes[range]` (default: all of it).
    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        let range = range ?? bytes.indices
        position = range.lowerBound
        end = range.upperBound
    }

    var remaining: Int { end - position }

    // MARK: Structs

    /// Reads one struct: `body` is called with each field's id and type and must read the value
    /// (with the typed readers) or return false to have it skipped.
    mutating func readStruct(_ body: (inout ThriftReader, Int16, FieldType) throws(ParquetError) -> Bool) throws(ParquetError) {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw corrupt("structs nested more than \(Self.maxDepth) deep") }
        var lastID: Int16 = 0
        while true {
            let header = try byte()
            if header == 0 { return }  // stop
            guard let type = FieldType(rawValue: header & 0x0F) else { throw corrupt("unknown field type \(header & 0x0F)") }
            let delta = header >> 4
            let id: Int16
            if delta != 0 {
                let (sum, overflow) = lastID.addingReportingOverflow(Int16(delta))
                guard !overflow else { throw corrupt("field id overflows") }
                id = sum
            } else {
                id = try i16()
            }
            lastID = id
            if try !body(&self, id, type) { try skip(type) }
        }
    }

    // MARK: Values

    /// A boolean field's value, which lives in its header's type.
    func bool(_ type: FieldType) throws(ParquetError) -> Bool {
        guard type == .booleanTrue || type == .booleanFalse else { throw mismatch(type, "bool") }
        return type == .booleanTrue
    }

    mutating func i16() throws(ParquetError) -> Int16 {
        let value = try zigzagVarint()
        guard let narrow = Int16(exactly: value) else { throw corrupt("i16 out of range: \(value)") }
        return narrow
    }

    mutating func i32() throws(ParquetError) -> Int32 {
        let value = try zigzagVarint()
        guard let narrow = Int32(exactly: value) else { throw corrupt("i32 out of range: \(value)") }
        return narrow
    }

    mutating func i64() throws(ParquetError) -> Int64 { try zigzagVarint() }

    /// An integer field of any width (i8, i16, i32, i64), checked against `type`.
    mutating func integer(_ type: FieldType) throws(ParquetError) -> Int64 {
        switch type {
        case .byte: return Int64(Int8(bitPattern: try byte()))
        case .i16, .i32, .i64: return try zigzagVarint()
        default: throw mismatch(type, "integer")
        }
    }

    mutating func binary() throws(ParquetError) -> [UInt8] {
        let count = try length()
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func string() throws(ParquetError) -> String {
        String(decoding: try binary(), as: UTF8.self)
    }

    /// A list header: the element type and the count (at most the bytes left: every element takes one).
    mutating func listHeader() throws(ParquetError) -> (FieldType, Int) {
        let header = try byte()
        guard let type = FieldType(rawValue: header & 0x0F) else { throw corrupt("unknown list element type \(header & 0x0F)") }
        var count = Int(header >> 4)
        if count == 15 { count = try length() }
        guard count <= remaining else { throw corrupt("a list of \(count) elements in \(remaining) bytes") }
        return (type, count)
    }

    /// A list whose elements `element` reads, after checking that the field is a list.
    mutating func list<Element>(_ type: FieldType, _ element: (inout ThriftReader, FieldType) throws(ParquetError) -> Element)
        throws(ParquetError) -> [Element]
    {
        guard type == .list || type == .set else { throw mismatch(type, "list") }
        let (elementType, count) = try listHeader()
        var out: [Element] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try element(&self, elementType)) }
        return out
    }

    /// Skips one value of `type`.
    mutating func skip(_ type: FieldType) throws(ParquetError) {
        switch type {
        case .booleanTrue, .booleanFalse: return
        case .byte: position += 1
        case .i16, .i32, .i64: _ = try zigzagVarint()
        case .double: position += 8
        case .binary: position += try length()
        case .list, .set:
            let (elementType, count) = try listHeader()
            for _ in 0..<count {
                // In a list, booleans take a byte each.
                if elementType == .booleanTrue || elementType == .booleanFalse { position += 1 } else { try skip(elementType) }
            }
        case .map:
            let count = try length()
            guard count > 0 else { return }
            let types = try byte()
            guard let keyType = FieldType(rawValue: types >> 4), let valueType = FieldType(rawValue: types & 0x0F) else {
                throw corrupt("unknown map types \(types)")
            }
            guard count <= remaining else { throw corrupt("a map of \(count) entries in \(remaining) bytes") }
            for _ in 0..<count {
                try skip(keyType)
                try skip(valueType)
            }
        case .struct: try readStruct { _, _, _ in false }
        }
        guard position <= end else { throw corrupt("a value runs past the end") }
    }

    // MARK: Primitives

    private mutating func byte() throws(ParquetError) -> UInt8 {
        guard position < end else { throw corrupt("unexpected end of data") }
        defer { position += 1 }
        return bytes[position]
    }

    /// A size: a varint no larger than the bytes left.
    private mutating func length() throws(ParquetError) -> Int {
        let value = try varint()
        guard value <= UInt64(remaining) else { throw corrupt("a length of \(value) with \(remaining) bytes left") }
        return Int(value)
    }

    private mutating func varint() throws(ParquetError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw corrupt("varint longer than 10 bytes") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    private mutating func zigzagVarint() throws(ParquetError) -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    private func corrupt(_ what: String) -> ParquetError { ParquetError(.corrupt, "thrift: \(what) at byte \(position)") }
    private func mismatch(_ type: FieldType, _ expected: String) -> ParquetError {
        ParquetError(.corrupt, "thrift: expected \(expected), found type \(type) at byte \(position)")
    }
}
