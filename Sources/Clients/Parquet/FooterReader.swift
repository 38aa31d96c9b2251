/// The parts of `parquet.thrift` a reader needs, decoded with ``ThriftReader``; unknown and unused
/// fields are skipped. Field ids as in the format's `parquet.thrift`.
enum FooterReader {
    /// `SchemaElement`.
    struct SchemaNode {
        var name = ""
        var type: Int32?
        var repetition: Int32?
        var numChildren: Int32 = 0
        var convertedType: Int32?
    }

    /// `ColumnChunk` with its `ColumnMetaData`.
    struct Chunk {
        var type: Int32 = -1
        var path: [String] = []
        var codec: Int32 = 0
        var numValues: Int64 = 0
        var totalCompressedSize: Int64 = 0
        var dataPageOffset: Int64 = -1
        var dictionaryPageOffset: Int64?
        /// Set when the chunk lives in another file (not supported).
        var filePath: String?
        var hasMetaData = false
    }

    struct RowGroup {
        var chunks: [Chunk] = []
        var numRows: Int64 = 0
    }

    /// `FileMetaData`.
    struct Footer {
        var schema: [SchemaNode] = []
        var numRows: Int64 = 0
        var rowGroups: [RowGroup] = []
        var keyValue: [(String, String)] = []
        var createdBy: String?
    }

    static func footer(_ bytes: [UInt8], range: Range<Int>) throws(ParquetError) -> Footer {
        var thrift = ThriftReader(bytes, range: range)
        var footer = Footer()
        try thrift.readStruct { t, id, type throws(ParquetError) in
            switch id {
            case 2: footer.schema = try t.list(type) { t, _ throws(ParquetError) in try schemaNode(&t) }
            case 3: footer.numRows = try t.integer(type)
            case 4: footer.rowGroups = try t.list(type) { t, _ throws(ParquetError) in try rowGroup(&t) }
            case 5:
                footer.keyValue = try t.list(type) { t, _ throws(ParquetError) in
                    var key = "", value = ""
                    try t.readStruct { t, id, type throws(ParquetError) in
                        switch id {
                        case 1: key = try t.string()
                        case 2: value = try t.string()
                        default: return false
                        }
                        return true
                    }
                    return (key, value)
                }
            case 6: footer.createdBy = try t.string()
            default: return false
            }
            return true
        }
        return footer
    }

    private static func schemaNode(_ t: inout ThriftReader) throws(ParquetError) -> SchemaNode {
        var node = SchemaNode()
        try t.readStruct { t, id, type throws(ParquetError) in
            switch id {
            case 1: node.type = Int32(truncatingIfNeeded: try t.integer(type))
            case 3: node.repetition = Int32(truncatingIfNeeded: try t.integer(type))
            case 4: node.name = try t.string()
            case 5: node.numChildren = Int32(truncatingIfNeeded: try t.integer(type))
            case 6: node.convertedType = Int32(truncatingIfNeeded: try t.integer(type))
            default: return false
            }
            return true
        }
        return node
    }

    private static func rowGroup(_ t: inout ThriftReader) throws(ParquetError) -> RowGroup {
        var group = RowGroup()
        try t.readStruct { t, id, type throws(ParquetError) in
            switch id {
            case 1: group.chunks = try t.list(type) { t, _ throws(ParquetError) in try chunk(&t) }
            case 3: group.numRows = try t.integer(type)
            default: return false
            }
            return true
        }
        return group
    }

    private static func chunk(_ t: inout ThriftReader) throws(ParquetError) -> Chunk {
        var chunk = Chunk()
        try t.readStruct { t, id, type throws(ParquetError) in
            switch id {
            case 1: chunk.filePath = try t.string()
            case 3:
                chunk.hasMetaData = true
                try t.readStruct { t, id, type throws(ParquetError) in
                    switch id {
                    case 1: chunk.type = Int32(truncatingIfNeeded: try t.integer(type))
                    case 3: chunk.path = try t.list(type) { t, _ throws(ParquetError) in try t.string() }
                    case 4: chunk.codec = Int32(truncatingIfNeeded: try t.integer(type))
                    case 5: chunk.numValues = try t.integer(type)
                    case 7: chunk.totalCompressedSize = try t.integer(type)
                    case 9: chunk.dataPageOffset = try t.integer(type)
                    case 11: chunk.dictionaryPageOffset = try t.integer(type)
                    default: return false
                    }
                    return true
                }
            default: return false
            }
            return true
        }
        return chunk
    }

    /// `PageHeader` with whichever of its page headers is set.
    struct PageHeader {
        var type: Int32 = -1
        var uncompressedSize: Int32 = -1
        var compressedSize: Int32 = -1
        /// Level entries (v1, v2) or dictionary values.
        var numValues: Int32 = -1
        var encoding: Int32 = 0
        var definitionEncoding: Int32 = 3
        var repetitionEncoding: Int32 = 3
        /// v2 only: level bytes (stored uncompressed, before the values) and whether values are compressed.
        var definitionBytes: Int32 = 0
        var repetitionBytes: Int32 = 0
        var isCompressed = true
        var hasPageHeader = false
    }

    /// Reads a page header at `position` (moved past it), within `end`.
    static func pageHeader(_ bytes: [UInt8], position: inout Int, end: Int) throws(ParquetError) -> PageHeader {
        var t = ThriftReader(bytes, range: position..<end)
        var page = PageHeader()
        try t.readStruct { t, id, type throws(ParquetError) in
            switch id {
            case 1: page.type = Int32(truncatingIfNeeded: try t.integer(type))
            case 2: page.uncompressedSize = Int32(truncatingIfNeeded: try t.integer(type))
            case 3: page.compressedSize = Int32(truncatingIfNeeded: try t.integer(type))
            case 5, 7, 8:
                page.hasPageHeader = true
                let kind = id
                try t.readStruct { t, id, type throws(ParquetError) in
                    switch (kind, id) {
                    case (_, 1): page.numValues = Int32(truncatingIfNeeded: try t.integer(type))
                    case (5, 2), (7, 2), (8, 4): page.encoding = Int32(truncatingIfNeeded: try t.integer(type))
                    case (5, 3): page.definitionEncoding = Int32(truncatingIfNeeded: try t.integer(type))
                    case (5, 4): page.repetitionEncoding = Int32(truncatingIfNeeded: try t.integer(type))
                    case (8, 5): page.definitionBytes = Int32(truncatingIfNeeded: try t.integer(type))
                    case (8, 6): page.repetitionBytes = Int32(truncatingIfNeeded: try t.integer(type))
                    case (8, 7): page.isCompressed = try t.bool(type)
                    default: return false
                    }
                    return true
                }
            default: return false
            }
            return true
        }
        position = t.position
        return page
    }
}
