/// The Thrift compact protocol, write side only: what Parquet's footer and page headers need.
///
/// Fields are written in increasing id order, each with a header carrying the id delta from the
/// previous field of the same struct; integers are zigzag varints; a struct ends with a stop byte.
struct ThriftWriter {
    /// The compact protocol's type ids, as they appear in field and list headers.
    enum FieldType: UInt8 {
        case booleanTrue = 1
        case booleanFalse = 2
        case byte = 3
        case i16 = 4
        case i32 = 5
        case i64 = 6
        case double = 7
        case binary = 8
        case list = 9
        case set = 10
        case map = 11
        case `struct` = 12
    }

    /// What has been written so far.
    private(set) var bytes: [UInt8] = []
    /// The id of the last field written in the struct being written.
    private var lastFieldID: Int16 = 0
    /// The enclosing structs' last field ids.
    private var enclosing: [Int16] = []

    init() {}

    // MARK: Fields

    /// An `i16` field.
    mutating func field(_ id: Int16, _ value: Int16) {
        fieldHeader(id, .i16)
        appendVarint(zigzag(Int64(value)))
    }

    /// An `i32` field (Parquet's enums are `i32` too).
    mutating func field(_ id: Int16, _ value: Int32) {
        fieldHeader(id, .i32)
        appendVarint(zigzag(Int64(value)))
    }

    /// An `i64` field.
    mutating func field(_ id: Int16, _ value: Int64) {
        fieldHeader(id, .i64)
        appendVarint(zigzag(value))
    }

    /// A `bool` field: the value is the field header's type.
    mutating func field(_ id: Int16, _ value: Bool) {
        fieldHeader(id, value ? .booleanTrue : .booleanFalse)
    }

    /// A `binary` field.
    mutating func field(_ id: Int16, _ value: some Collection<UInt8>) {
        fieldHeader(id, .binary)
        appendBinary(value)
    }

    /// A `string` field: its UTF-8 bytes, as `binary`.
    mutating func field(_ id: Int16, _ value: String) {
        field(id, value.utf8)
    }

    /// A struct field whose fields `body` writes.
    mutating func field(_ id: Int16, struct body: (inout ThriftWriter) -> Void) {
        fieldHeader(id, .struct)
        writeStruct(body)
    }

    /// A `list<struct>` field, one element per item of `items`, written by `body`.
    mutating func field<Items: Collection>(_ id: Int16, structs items: Items, _ body: (inout ThriftWriter, Items.Element) -> Void) {
        fieldHeader(id, .list)
        listHeader(.struct, count: items.count)
        for item in items { writeStruct { body(&$0, item) } }
    }

    /// A `list<i32>` field (Parquet's lists of enums).
    mutating func field(_ id: Int16, i32s items: [Int32]) {
        fieldHeader(id, .list)
        listHeader(.i32, count: items.count)
        for item in items { appendVarint(zigzag(Int64(item))) }
    }

    /// A `list<string>` field.
    mutating func field(_ id: Int16, strings items: [String]) {
        fieldHeader(id, .list)
        listHeader(.binary, count: items.count)
        for item in items { appendBinary(item.utf8) }
    }

    /// A struct that is not a field: the top-level message, or an element of a list.
    mutating func writeStruct(_ body: (inout ThriftWriter) -> Void) {
        enclosing.append(lastFieldID)
        lastFieldID = 0
        body(&self)
        bytes.append(0)  // stop
        lastFieldID = enclosing.removeLast()
    }

    // MARK: Encoding

    /// The field header: the id delta and type in one byte when the delta is 1...15, else the type
    /// byte and the id as a zigzag varint.
    private mutating func fieldHeader(_ id: Int16, _ type: FieldType) {
        let delta = Int(id) - Int(lastFieldID)
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            appendVarint(zigzag(Int64(id)))
        }
        lastFieldID = id
    }

    /// A list header: the size and element type in one byte below 15 elements, else 0xF and a varint size.
    private mutating func listHeader(_ elementType: FieldType, count: Int) {
        if count < 15 {
            bytes.append(UInt8(count) << 4 | elementType.rawValue)
        } else {
            bytes.append(0xF0 | elementType.rawValue)
            appendVarint(UInt64(count))
        }
    }

    private mutating func appendBinary(_ value: some Collection<UInt8>) {
        appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// An unsigned LEB128 varint: seven bits a byte, least significant first, high bit set on all but the last.
    mutating func appendVarint(_ value: UInt64) {
        Varint.append(value, to: &bytes)
    }
}

/// ZigZag: signed integers to unsigned ones so that small magnitudes stay small (0, -1, 1, -2 → 0, 1, 2, 3).
func zigzag(_ value: Int64) -> UInt64 {
    UInt64(bitPattern: (value << 1) ^ (value >> 63))
}

/// Unsigned LEB128 varints, as the Thrift compact protocol, RLE run headers and Snappy's preamble use.
enum Varint {
    /// Appends `value`: seven bits a byte, least significant first, the high bit set on all but the last byte.
    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }
}
