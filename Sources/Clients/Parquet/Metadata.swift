/// The parts of `parquet.thrift` this writer fills in, each with its Thrift field ids.
///
/// Only what a writer of non-null PLAIN pages needs: optional fields it never sets are left out.

/// `Type`: a leaf column's physical type.
enum PhysicalType: Int32 {
    case boolean = 0
    case int32 = 1
    case int64 = 2
    case float = 4
    case double = 5
    case byteArray = 6
}

/// `Encoding`.
enum Encoding: Int32 {
    case plain = 0
    case rle = 3
}

/// `CompressionCodec`.
enum CompressionCodec: Int32 {
    case uncompressed = 0
    case snappy = 1
}

/// `FieldRepetitionType`.
enum Repetition: Int32 {
    case required = 0
    case optional = 1
    case repeated = 2
}

/// `ConvertedType` (the legacy annotation, written next to the logical type as parquet-cpp does).
enum ConvertedType: Int32 {
    case utf8 = 0
    case list = 3
}

/// `LogicalType`, a union: the field id of the member that is set (each member is an empty struct here).
enum LogicalType: Int16 {
    case string = 1
    case list = 3
}

/// `SchemaElement`: one node of the flattened, depth-first schema tree.
struct SchemaElement {
    var name: String
    var type: PhysicalType? = nil
    var repetition: Repetition? = nil
    var numChildren: Int32? = nil
    var convertedType: ConvertedType? = nil
    var logicalType: LogicalType? = nil

    func write(to thrift: inout ThriftWriter) {
        if let type { thrift.field(1, type.rawValue) }
        if let repetition { thrift.field(3, repetition.rawValue) }
        thrift.field(4, name)
        if let numChildren { thrift.field(5, numChildren) }
        if let convertedType { thrift.field(6, convertedType.rawValue) }
        if let logicalType { thrift.field(10) { $0.field(logicalType.rawValue) { _ in } } }
    }
}

/// `Statistics`: plain-encoded `min_value`/`max_value` (absent when the chunk has no comparable
/// value) and `null_count`.
struct Statistics {
    var nullCount: Int64 = 0
    var minValue: [UInt8]? = nil
    var maxValue: [UInt8]? = nil

    func write(to thrift: inout ThriftWriter) {
        thrift.field(3, nullCount)
        if let maxValue { thrift.field(5, maxValue) }
        if let minValue { thrift.field(6, minValue) }
    }
}

/// `PageHeader` of a v1 `DATA_PAGE`, with its `DataPageHeader`.
struct DataPageHeader {
    var uncompressedSize: Int32
    var compressedSize: Int32
    /// Level entries in the page: values plus empty lists.
    var numValues: Int32

    func write(to thrift: inout ThriftWriter) {
        thrift.field(1, Int32(0))  // PageType.DATA_PAGE
        thrift.field(2, uncompressedSize)
        thrift.field(3, compressedSize)
        thrift.field(5) { page in
            page.field(1, numValues)
            page.field(2, Encoding.plain.rawValue)
            page.field(3, Encoding.rle.rawValue)  // definition levels
            page.field(4, Encoding.rle.rawValue)  // repetition levels
        }
    }

    /// The header's compact-protocol bytes.
    var bytes: [UInt8] {
        var thrift = ThriftWriter()
        thrift.writeStruct { write(to: &$0) }
        return thrift.bytes
    }
}

/// `ColumnChunk` with its `ColumnMetaData`: where one leaf column's pages of one row group lie.
struct ColumnChunk {
    var type: PhysicalType
    var path: [String]
    var codec: CompressionCodec
    /// Level entries in the chunk.
    var numValues: Int64
    /// Page headers and page bodies before compression.
    var totalUncompressedSize: Int64
    /// Page headers and page bodies as written.
    var totalCompressedSize: Int64
    /// The file offset of the first page header.
    var dataPageOffset: Int64
    var statistics: Statistics

    func write(to thrift: inout ThriftWriter) {
        thrift.field(2, Int64(0))  // file_offset: deprecated; parquet-cpp writes 0
        thrift.field(3) { meta in
            meta.field(1, type.rawValue)
            meta.field(2, i32s: [Encoding.plain.rawValue, Encoding.rle.rawValue])
            meta.field(3, strings: path)
            meta.field(4, codec.rawValue)
            meta.field(5, numValues)
            meta.field(6, totalUncompressedSize)
            meta.field(7, totalCompressedSize)
            meta.field(9, dataPageOffset)
            meta.field(12) { statistics.write(to: &$0) }
        }
    }
}

/// `RowGroup`.
struct RowGroup {
    var columns: [ColumnChunk]
    var numRows: Int64
    /// The row group's index, when it fits an `i16`.
    var ordinal: Int16?

    func write(to thrift: inout ThriftWriter) {
        thrift.field(1, structs: columns) { $1.write(to: &$0) }
        thrift.field(2, columns.reduce(0) { $0 + $1.totalUncompressedSize })
        thrift.field(3, numRows)
        if let first = columns.first { thrift.field(5, first.dataPageOffset) }
        thrift.field(6, columns.reduce(0) { $0 + $1.totalCompressedSize })
        if let ordinal { thrift.field(7, ordinal) }
    }
}

/// `FileMetaData`: the footer.
struct FileMetaData {
    var schema: [SchemaElement]
    var numRows: Int64
    var rowGroups: [RowGroup]
    /// Written in this order.
    var keyValueMetadata: [(key: String, value: String)]
    var createdBy: String
    var leafCount: Int

    func write(to thrift: inout ThriftWriter) {
        thrift.field(1, Int32(2))  // version
        thrift.field(2, structs: schema) { $1.write(to: &$0) }
        thrift.field(3, numRows)
        thrift.field(4, structs: rowGroups) { $1.write(to: &$0) }
        if !keyValueMetadata.isEmpty {
            thrift.field(5, structs: keyValueMetadata) { entry, pair in
                entry.field(1, pair.key)
                entry.field(2, pair.value)
            }
        }
        thrift.field(6, createdBy)
        // column_orders: TYPE_ORDER (an empty struct in a union) for every leaf, so that readers
        // trust min_value/max_value.
        thrift.field(7, structs: 0..<leafCount) { order, _ in order.field(1) { _ in } }
    }

    /// The footer's compact-protocol bytes.
    var bytes: [UInt8] {
        var thrift = ThriftWriter()
        thrift.writeStruct { write(to: &$0) }
        return thrift.bytes
    }
}
