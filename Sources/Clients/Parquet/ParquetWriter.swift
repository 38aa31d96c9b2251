import Foundation

/// How data pages are compressed.
public enum ParquetCompression: Sendable {
    /// Pages stored as they are.
    case uncompressed
    /// Snappy (raw block format), what pyarrow and lerobot write by default.
    case snappy
}

/// Why a Parquet file could not be written or read.
public struct ParquetError: Error, CustomStringConvertible, Sendable {
    /// The failure classes.
    public enum Code: String, Sendable {
        /// No columns, columns of different row counts, a bad row-group size.
        case invalidArgument
        /// Two columns share a name, or a name is empty.
        case invalidName
        /// A page or a count does not fit the format's 32-bit fields.
        case tooLarge
        /// The file could not be written to or read from disk.
        case io
        /// A file read is not valid Parquet: truncated, corrupt, or inconsistent.
        case corrupt
        /// A file read uses what the reader does not support (a codec, an encoding, null values).
        case unsupported
    }

    /// The failure class.
    public let code: Code
    /// One line for a person.
    public let description: String

    /// An error of `code`.
    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}

/// Writes columns as one Parquet file (format 2, v1 data pages).
///
/// Each row group holds at most `rowGroupSize` rows; each column chunk, PLAIN-encoded data pages of
/// about 1 MiB (whole rows, levels in the RLE/bit-packed hybrid), Snappy-compressed by default, with
/// min/max statistics. The footer carries the schema, the key-value metadata (e.g. `huggingface`)
/// and ``createdBy``. Every call is independent and may run on any thread.
///
/// ```swift
/// let bytes = try ParquetWriter.write([
///     .floatList("observation.state", flat: states, width: 4),
///     .float("timestamp", timestamps),
///     .int64("index", indices),
/// ], metadata: ["huggingface": featuresJSON])
/// ```
public enum ParquetWriter {
    /// The footer's `created_by`.
    public static let createdBy = "RoboSim parquet writer version 1"
    /// The row-group size `write` uses by default, in rows.
    public static let defaultRowGroupSize = 65_536
    /// Data pages are cut at the first row boundary past this many bytes of PLAIN values.
    static let defaultPageSize = 1 << 20

    /// The file's bytes, `PAR1` to `PAR1`: `columns` (all of one row count, distinct names) in
    /// row groups of at most `rowGroupSize` rows, and `metadata` as the footer's key-value metadata
    /// (sorted by key, so equal input gives equal bytes). No rows make a file of no row groups.
    public static func write(
        _ columns: [ParquetColumn], rowGroupSize: Int = defaultRowGroupSize, metadata: [String: String] = [:],
        compression: ParquetCompression = .snappy
    ) throws(ParquetError) -> [UInt8] {
        try write(columns, rowGroupSize: rowGroupSize, pageSize: defaultPageSize, metadata: metadata, compression: compression)
    }

    /// Writes the file `write(_:rowGroupSize:metadata:compression:)` makes to `url` atomically
    /// (a temporary file renamed over `url`).
    public static func write(
        _ columns: [ParquetColumn], to url: URL, rowGroupSize: Int = defaultRowGroupSize, metadata: [String: String] = [:],
        compression: ParquetCompression = .snappy
    ) throws(ParquetError) {
        let bytes = try write(columns, rowGroupSize: rowGroupSize, metadata: metadata, compression: compression)
        do {
            try Data(bytes).write(to: url, options: .atomic)
        } catch {
            throw ParquetError(.io, "cannot write \(url.path): \(error)")
        }
    }

    /// `write` with the page size (bytes of PLAIN values) as a parameter, for tests of several pages.
    static func write(
        _ columns: [ParquetColumn], rowGroupSize: Int, pageSize: Int, metadata: [String: String], compression: ParquetCompression
    ) throws(ParquetError) -> [UInt8] {
        let rowCount = try validate(columns, rowGroupSize: rowGroupSize)
        var output = Array("PAR1".utf8)
        var rowGroups: [RowGroup] = []
        for start in stride(from: 0, to: rowCount, by: rowGroupSize) {
            let rows = start..<min(start + rowGroupSize, rowCount)
            var chunks: [ColumnChunk] = []
            chunks.reserveCapacity(columns.count)
            for column in columns {
                var writer = ColumnChunkWriter(column: column, compression: compression, pageSize: pageSize)
                chunks.append(try writer.write(rows, to: &output))
            }
            let ordinal = Int16(exactly: rowGroups.count)
            rowGroups.append(RowGroup(columns: chunks, numRows: Int64(rows.count), ordinal: ordinal))
        }
        let footer = FileMetaData(
            schema: Schema.elements(columns), numRows: Int64(rowCount), rowGroups: rowGroups,
            keyValueMetadata: metadata.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, createdBy: createdBy,
            leafCount: columns.count
        ).bytes
        guard let footerLength = UInt32(exactly: footer.count) else { throw ParquetError(.tooLarge, "footer of \(footer.count) bytes") }
        output.append(contentsOf: footer)
        appendLittleEndian(CollectionOfOne(footerLength), to: &output)
        output.append(contentsOf: "PAR1".utf8)
        return output
    }

    /// The common row count, once the arguments are known to make a valid file.
    private static func validate(_ columns: [ParquetColumn], rowGroupSize: Int) throws(ParquetError) -> Int {
        guard let rowCount = columns.first?.rowCount else { throw ParquetError(.invalidArgument, "no columns") }
        guard rowGroupSize > 0 else { throw ParquetError(.invalidArgument, "row-group size \(rowGroupSize) is not positive") }
        var names = Set<String>()
        for column in columns {
            guard !column.name.isEmpty else { throw ParquetError(.invalidName, "a column has an empty name") }
            guard names.insert(column.name).inserted else { throw ParquetError(.invalidName, "two columns are named '\(column.name)'") }
            guard column.rowCount == rowCount else {
                throw ParquetError(
                    .invalidArgument, "column '\(column.name)' has \(column.rowCount) rows, '\(columns[0].name)' \(rowCount)")
            }
        }
        return rowCount
    }
}
