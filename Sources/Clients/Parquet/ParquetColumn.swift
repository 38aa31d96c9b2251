/// One column of a Parquet file: a name and one value per row, stored flat.
///
/// A primitive column holds one value a row. A list column holds one list a row (lists may differ in
/// length, and may be empty), nested up to three deep; it keeps the leaf values in one array and,
/// per nesting level, where each list starts, so writing never walks nested Swift arrays.
/// Every value is non-null; the schema still marks columns and elements optional, as pyarrow does,
/// so that pyarrow reads them back as `float`, `list<element: float>` and so on.
///
/// Names may contain `.` and `/` (`observation.state`, `stats/action/min`): a name is one schema
/// node, never a path.
public struct ParquetColumn: Sendable, Equatable {
    /// The column's name in the schema.
    public let name: String
    /// The leaf values, flattened across rows and lists.
    let values: ParquetValues
    /// One array per list level, outermost first, each one longer than the number of lists at that
    /// level: list `i` of level `k` holds items `offsets[k][i]..<offsets[k][i + 1]` of the next level
    /// (of `values`, at the last level). Empty for a primitive column.
    let listOffsets: [[Int]]

    /// The number of rows.
    public var rowCount: Int { listOffsets.first.map { $0.count - 1 } ?? values.count }
    /// How many lists deep the values are: 0 for a primitive column.
    public var listDepth: Int { listOffsets.count }

    init(name: String, values: ParquetValues, listOffsets: [[Int]] = []) {
        self.name = name
        self.values = values
        self.listOffsets = listOffsets
    }

    /// The leaf values that `rows` hold (indices into ``floats``, ``int64s``...).
    public func valueRange(_ rows: Range<Int>) -> Range<Int> {
        var range = rows
        for offsets in listOffsets { range = offsets[range.lowerBound]..<offsets[range.upperBound] }
        return range
    }
}

// MARK: - Primitive columns

extension ParquetColumn {
    /// A `bool` column.
    public static func bool(_ name: String, _ values: [Bool]) -> ParquetColumn {
        ParquetColumn(name: name, values: .boolean(values))
    }

    /// An `int32` column.
    public static func int32(_ name: String, _ values: [Int32]) -> ParquetColumn {
        ParquetColumn(name: name, values: .int32(values))
    }

    /// An `int64` column.
    public static func int64(_ name: String, _ values: [Int64]) -> ParquetColumn {
        ParquetColumn(name: name, values: .int64(values))
    }

    /// A `float` (32-bit) column.
    public static func float(_ name: String, _ values: [Float]) -> ParquetColumn {
        ParquetColumn(name: name, values: .float(values))
    }

    /// A `double` column.
    public static func double(_ name: String, _ values: [Double]) -> ParquetColumn {
        ParquetColumn(name: name, values: .double(values))
    }

    /// A `string` column (UTF-8 `BYTE_ARRAY` with the STRING logical type).
    public static func string(_ name: String, _ values: [String]) -> ParquetColumn {
        ParquetColumn(name: name, values: .strings(values))
    }
}

// MARK: - List columns

extension ParquetColumn {
    /// A `list<bool>` column: one list a row, of any length.
    public static func boolList(_ name: String, _ rows: [[Bool]]) -> ParquetColumn {
        let (values, offsets) = flatten(rows)
        return ParquetColumn(name: name, values: .boolean(values), listOffsets: [offsets])
    }

    /// A `list<int64>` column: one list a row, of any length.
    public static func int64List(_ name: String, _ rows: [[Int64]]) -> ParquetColumn {
        let (values, offsets) = flatten(rows)
        return ParquetColumn(name: name, values: .int64(values), listOffsets: [offsets])
    }

    /// A `list<float>` column: one list a row, of any length (a fixed-length vector is lists of
    /// equal length).
    public static func floatList(_ name: String, _ rows: [[Float]]) -> ParquetColumn {
        let (values, offsets) = flatten(rows)
        return ParquetColumn(name: name, values: .float(values), listOffsets: [offsets])
    }

    /// A `list<float>` column of fixed-length vectors stored back to back: row `i` is
    /// `values[i * width..<(i + 1) * width]`. Takes `values` without copying it.
    /// - Precondition: `width > 0` and `values.count` is a multiple of `width`.
    public static func floatList(_ name: String, flat values: [Float], width: Int) -> ParquetColumn {
        ParquetColumn(name: name, values: .float(values), listOffsets: [fixedOffsets(count: values.count, width: width)])
    }

    /// A `list<double>` column: one list a row, of any length.
    public static func doubleList(_ name: String, _ rows: [[Double]]) -> ParquetColumn {
        let (values, offsets) = flatten(rows)
        return ParquetColumn(name: name, values: .double(values), listOffsets: [offsets])
    }

    /// A `list<double>` column of fixed-length vectors stored back to back: row `i` is
    /// `values[i * width..<(i + 1) * width]`. Takes `values` without copying it.
    /// - Precondition: `width > 0` and `values.count` is a multiple of `width`.
    public static func doubleList(_ name: String, flat values: [Double], width: Int) -> ParquetColumn {
        ParquetColumn(name: name, values: .double(values), listOffsets: [fixedOffsets(count: values.count, width: width)])
    }

    /// A `list<list<double>>` column: one list of lists a row.
    public static func doubleList(_ name: String, _ rows: [[[Double]]]) -> ParquetColumn {
        let (inner, outer) = flatten(rows)
        let (values, offsets) = flatten(inner)
        return ParquetColumn(name: name, values: .double(values), listOffsets: [outer, offsets])
    }

    /// A `list<list<list<double>>>` column: one three-deep list a row, such as LeRobot's per-channel
    /// image statistics (3 × 1 × 1 a row).
    public static func doubleList(_ name: String, _ rows: [[[[Double]]]]) -> ParquetColumn {
        let (middle, outer) = flatten(rows)
        let (inner, offsets) = flatten(middle)
        let (values, innermost) = flatten(inner)
        return ParquetColumn(name: name, values: .double(values), listOffsets: [outer, offsets, innermost])
    }

    /// A `list<string>` column: one list a row, of any length.
    public static func stringList(_ name: String, _ rows: [[String]]) -> ParquetColumn {
        let (values, offsets) = flatten(rows)
        return ParquetColumn(name: name, values: .strings(values), listOffsets: [offsets])
    }

    /// The items of `rows` back to back, and where each row's items start (one more than `rows`).
    private static func flatten<Element>(_ rows: [[Element]]) -> (items: [Element], offsets: [Int]) {
        var offsets = [Int]()
        offsets.reserveCapacity(rows.count + 1)
        offsets.append(0)
        var total = 0
        for row in rows {
            total += row.count
            offsets.append(total)
        }
        var items = [Element]()
        items.reserveCapacity(total)
        for row in rows { items.append(contentsOf: row) }
        return (items, offsets)
    }

    private static func fixedOffsets(count: Int, width: Int) -> [Int] {
        precondition(width > 0 && count % width == 0, "\(count) values are not rows of \(width)")
        return Array(stride(from: 0, through: count, by: width))
    }
}

// MARK: - Reading values

extension ParquetColumn {
    /// Per list level, outermost first, where each list starts (one more entry than lists): list `i`
    /// of level `k` holds items `offsets[k][i]..<offsets[k][i + 1]` of the next level (of the
    /// values, at the last level). Empty for a primitive column.
    public var offsets: [[Int]] { listOffsets }

    /// The leaf values of a `bool` column or list, flattened; nil for another type.
    public var bools: [Bool]? { if case .boolean(let v) = values { v } else { nil } }
    /// The leaf values of an `int32` column or list, flattened; nil for another type.
    public var int32s: [Int32]? { if case .int32(let v) = values { v } else { nil } }
    /// The leaf values of an `int64` column or list, flattened; nil for another type.
    public var int64s: [Int64]? { if case .int64(let v) = values { v } else { nil } }
    /// The leaf values of a `float` column or list, flattened; nil for another type.
    public var floats: [Float]? { if case .float(let v) = values { v } else { nil } }
    /// The leaf values of a `double` column or list, flattened; nil for another type.
    public var doubles: [Double]? { if case .double(let v) = values { v } else { nil } }
    /// The leaf values of a string column or list (UTF-8, invalid sequences replaced), flattened;
    /// nil for another type.
    public var strings: [String]? {
        guard case .byteArray(let bytes, let offsets) = values else { return nil }
        return (0..<offsets.count - 1).map { String(decoding: bytes[offsets[$0]..<offsets[$0 + 1]], as: UTF8.self) }
    }

    /// Integer leaf values of either width, as `Int64`; nil for a non-integer column.
    public var integers: [Int64]? { int64s ?? int32s.map { $0.map(Int64.init) } }
}
