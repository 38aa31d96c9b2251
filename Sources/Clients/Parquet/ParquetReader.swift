import Foundation

/// A Parquet file as read: its columns (each a ``ParquetColumn``, as the writer takes them), row
/// count and key-value metadata.
public struct ParquetTable: Sendable {
    /// Rows in the file.
    public let rowCount: Int
    /// The columns read, in the schema's order.
    public let columns: [ParquetColumn]
    /// The footer's key-value metadata (e.g. `huggingface`, `ARROW:schema`).
    public let metadata: [String: String]
    /// The footer's `created_by`.
    public let createdBy: String?

    /// The column named `name` (a top-level field), if it was read.
    public func column(_ name: String) -> ParquetColumn? { columns.first { $0.name == name } }
}

/// Reads Parquet files: what ``ParquetWriter`` writes, and what pyarrow (parquet-cpp) writes for the
/// same kinds of columns.
///
/// Supported: `boolean`, `int32`, `int64`, `float`, `double` and `byte_array` (string) leaves, at
/// the top level or under nested lists (3-level `LIST` groups, or bare repeated fields), with
/// required or optional nodes but no nulls; PLAIN, RLE (booleans) and dictionary encodings; v1 and v2
/// data pages; uncompressed or Snappy chunks; any number of row groups. Anything else gives a
/// ``ParquetError`` with code `.unsupported`.
///
/// Every size and count read from the file is checked against the bytes that hold it and against
/// ``Limits`` before memory is allocated for it: a truncated, corrupt or hostile file gives a
/// ``ParquetError`` (`.corrupt`, `.tooLarge`), never a trap or an unbounded allocation. Every call
/// is independent and may run on any thread.
///
/// ```swift
/// let table = try ParquetReader.read(contentsOf: url, columns: ["observation.state", "index"])
/// let states = table.column("observation.state")?.floats   // flat; rows through `offsets`
/// ```
public enum ParquetReader {
    /// Bounds on what one file may make the reader allocate.
    public struct Limits: Sendable {
        /// Largest file read, bytes (default 4 GiB).
        public var maxFileBytes = 1 << 32
        /// Most level entries (values plus empty lists) of one column, all row groups together, and
        /// most rows (default 2^26). Run-length encoded levels let a few bytes claim many entries:
        /// this bounds what a column read may allocate to about 10 bytes an entry plus its values.
        public var maxEntriesPerColumn = 1 << 26
        /// Deepest schema nesting (groups inside groups; default 16, at most 100).
        public var maxNesting = 16
        public init() {}
    }

    /// Reads the file at `url` (see ``read(_:columns:limits:)``).
    public static func read(contentsOf url: URL, columns: Set<String>? = nil, limits: Limits = Limits()) throws(ParquetError) -> ParquetTable {
        let size: Int
        do {
            size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
        } catch {
            throw ParquetError(.io, "cannot read \(url.path): \(error)")
        }
        guard size <= limits.maxFileBytes else { throw ParquetError(.tooLarge, "\(url.path) has \(size) bytes; the limit is \(limits.maxFileBytes)") }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ParquetError(.io, "cannot read \(url.path): \(error)") }
        do {
            return try read([UInt8](data), columns: columns, limits: limits)
        } catch {
            throw ParquetError(error.code, "\(url.lastPathComponent): \(error.description)")
        }
    }

    /// Reads the file in `bytes`: every column, or the top-level fields named in `columns`.
    public static func read(_ bytes: [UInt8], columns wanted: Set<String>? = nil, limits: Limits = Limits()) throws(ParquetError) -> ParquetTable {
        guard bytes.count <= limits.maxFileBytes else { throw ParquetError(.tooLarge, "\(bytes.count) bytes; the limit is \(limits.maxFileBytes)") }
        guard bytes.count >= 12, bytes.prefix(4).elementsEqual("PAR1".utf8), bytes.suffix(4).elementsEqual("PAR1".utf8) else {
            throw ParquetError(.corrupt, "not a Parquet file (no PAR1 magic at both ends)")
        }
        let lengthAt = bytes.count - 8
        let footerLength = Int(UInt32(bytes[lengthAt]) | UInt32(bytes[lengthAt + 1]) << 8 | UInt32(bytes[lengthAt + 2]) << 16 | UInt32(bytes[lengthAt + 3]) << 24)
        guard footerLength <= lengthAt - 4 else { throw ParquetError(.corrupt, "footer of \(footerLength) bytes in a file of \(bytes.count)") }
        let footerStart = lengthAt - footerLength
        let footer = try FooterReader.footer(bytes, range: footerStart..<lengthAt)
        guard footer.numRows >= 0, footer.numRows <= Int64(limits.maxEntriesPerColumn) else {
            throw ParquetError(.tooLarge, "\(footer.numRows) rows; the limit is \(limits.maxEntriesPerColumn)")
        }
        let leaves = try ColumnSchema.leaves(footer.schema, maxNesting: min(limits.maxNesting, 100))
        var rowTotal: Int64 = 0
        for group in footer.rowGroups {
            guard group.chunks.count == leaves.count else {
                throw ParquetError(.corrupt, "a row group has \(group.chunks.count) column chunks, the schema \(leaves.count) leaves")
            }
            guard group.numRows >= 0 else { throw ParquetError(.corrupt, "a row group of \(group.numRows) rows") }
            rowTotal += group.numRows
        }
        guard rowTotal == footer.numRows else { throw ParquetError(.corrupt, "row groups hold \(rowTotal) rows, the footer says \(footer.numRows)") }

        var columns: [ParquetColumn] = []
        for (index, leaf) in leaves.enumerated() where wanted?.contains(leaf.name) ?? true {
            var reader = ColumnChunkReader(leaf: leaf, bytes: bytes, dataEnd: footerStart, maxEntries: limits.maxEntriesPerColumn)
            for group in footer.rowGroups {
                let chunk = group.chunks[index]
                guard chunk.path == leaf.path || chunk.path.isEmpty else {
                    throw ParquetError(.corrupt, "chunk path \(chunk.path) where the schema has \(leaf.path)")
                }
                try reader.read(chunk, rows: Int(group.numRows))
            }
            let column = try reader.column()
            guard column.rowCount == Int(footer.numRows) else {
                throw ParquetError(.corrupt, "column '\(leaf.name)' has \(column.rowCount) rows, the footer says \(footer.numRows)")
            }
            columns.append(column)
        }
        return ParquetTable(rowCount: Int(footer.numRows), columns: columns,
                            metadata: Dictionary(footer.keyValue, uniquingKeysWith: { _, last in last }), createdBy: footer.createdBy)
    }
}

/// One leaf column of a schema: its name, physical type and how its levels map to lists.
struct ColumnSchema {
    /// The top-level field's name (the leaf's path joined with `.` when the field has several leaves).
    var name: String
    var path: [String]
    var type: PhysicalType
    var maxDefinition: Int
    var maxRepetition: Int
    /// Per list level (each repeated node, outermost first): the definition level at which the
    /// list holds at least one item, and the one at which it exists (empty below that: null).
    var itemDefinition: [Int]
    var listDefinition: [Int]

    /// The leaves of a flattened schema, depth first.
    static func leaves(_ nodes: [FooterReader.SchemaNode], maxNesting: Int) throws(ParquetError) -> [ColumnSchema] {
        guard let root = nodes.first else { throw ParquetError(.corrupt, "empty schema") }
        var position = 1
        var leaves: [ColumnSchema] = []
        func walk(_ path: [FooterReader.SchemaNode]) throws(ParquetError) {
            guard path.count <= maxNesting else { throw ParquetError(.unsupported, "schema nested deeper than \(maxNesting)") }
            let node = path.last!
            if node.numChildren == 0 && node.type != nil {
                leaves.append(try leaf(path))
                return
            }
            guard node.numChildren > 0, Int(node.numChildren) <= nodes.count - position else {
                throw ParquetError(.corrupt, "schema node '\(node.name)' claims \(node.numChildren) children")
            }
            for _ in 0..<node.numChildren {
                guard position < nodes.count else { throw ParquetError(.corrupt, "schema node '\(node.name)' claims more children than the schema holds") }
                let child = nodes[position]
                position += 1
                try walk(path + [child])
            }
        }
        guard root.numChildren >= 0, Int(root.numChildren) <= nodes.count - 1 else {
            throw ParquetError(.corrupt, "schema root claims \(root.numChildren) children")
        }
        for _ in 0..<root.numChildren {
            let before = leaves.count
            guard position < nodes.count else { throw ParquetError(.corrupt, "the schema root claims more fields than the schema holds") }
            let field = nodes[position]
            position += 1
            try walk([field])
            if leaves.count - before > 1 {
                for index in before..<leaves.count { leaves[index].name = leaves[index].path.joined(separator: ".") }
            }
        }
        guard position == nodes.count else { throw ParquetError(.corrupt, "schema has \(nodes.count - position) unreachable nodes") }
        return leaves
    }

    private static func leaf(_ path: [FooterReader.SchemaNode]) throws(ParquetError) -> ColumnSchema {
        let node = path.last!
        guard let type = node.type.flatMap(PhysicalType.init(rawValue:)) else {
            throw ParquetError(.unsupported, "column '\(path.map(\.name).joined(separator: "."))' has physical type \(node.type ?? -1)")
        }
        var definition = 0, repetition = 0
        var items: [Int] = [], lists: [Int] = []
        for element in path {
            switch element.repetition ?? 0 {
            case Repetition.optional.rawValue: definition += 1
            case Repetition.repeated.rawValue:
                lists.append(definition)
                definition += 1
                repetition += 1
                items.append(definition)
            case Repetition.required.rawValue: break
            default: throw ParquetError(.corrupt, "repetition \(element.repetition ?? -1) of '\(element.name)'")
            }
        }
        return ColumnSchema(name: path[0].name, path: path.map(\.name), type: type, maxDefinition: definition, maxRepetition: repetition,
                            itemDefinition: items, listDefinition: lists)
    }
}
