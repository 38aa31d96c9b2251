import Foundation
import TestSupport
import Testing

@testable import Parquet

/// Columns of every type and list depth, `rows` rows, values exact in both Swift and Python.
private func sampleColumns(rows: Int) -> [ParquetColumn] {
    let range = 0..<rows
    let flags: [Bool] = range.map { $0 % 3 == 0 }
    let small: [Int32] = range.map { Int32($0) - 50 }
    let index: [Int64] = range.map { Int64($0) * 1_000_003 - 7 }
    let reward: [Float] = range.map { Float($0) / 8 - 1 }
    let timestamp: [Double] = range.map { Double($0) / 3 }
    let task: [String] = range.map { "row \($0) ü" + String(repeating: "x", count: $0 % 5) }
    let state: [[Float]] = range.map { row in (0..<(row % 4)).map { Float(row) + Float($0) / 4 } }
    let counts: [[Int64]] = range.map { row in (0..<(row % 3)).map { Int64(row * $0) } }
    let pairs: [[[Double]]] = range.map { row -> [[Double]] in
        row % 5 == 0 ? [] : [[Double(row)], [], [1, -Double(row) / 2]]
    }
    let image: [[[[Double]]]] = range.map { row -> [[[Double]]] in
        row % 7 == 0 ? [] : [[[Double(row)]], [[]], [[0.5, 0.25]]]
    }
    let names: [[String]] = range.map { row -> [String] in row % 4 == 0 ? [] : ["a\(row)", ""] }
    return [
        .bool("flag", flags), .int32("small", small), .int64("index", index), .float("reward", reward),
        .double("timestamp", timestamp), .string("task", task), .floatList("observation.state", state),
        .int64List("counts", counts), .doubleList("pairs", pairs), .doubleList("image", image), .stringList("names", names),
    ]
}

/// Bit-exact equality of two columns (floats by bit pattern).
private func same(_ a: ParquetColumn, _ b: ParquetColumn) -> Bool {
    guard a.name == b.name, a.offsets == b.offsets else { return false }
    if let x = a.floats, let y = b.floats { return x.map(\.bitPattern) == y.map(\.bitPattern) }
    if let x = a.doubles, let y = b.doubles { return x.map(\.bitPattern) == y.map(\.bitPattern) }
    return a == b
}

@Suite("ParquetReader")
struct ParquetReaderTests {
    @Test("reads what ParquetWriter writes: every type, nested lists, row groups, pages, both codecs",
          arguments: [ParquetCompression.snappy, .uncompressed])
    func roundTrip(compression: ParquetCompression) throws {
        let columns = sampleColumns(rows: 1_000)
        // Small pages and row groups: many of each.
        let bytes = try ParquetWriter.write(columns, rowGroupSize: 300, pageSize: 512, metadata: ["huggingface": "{}", "k": "ü"],
                                            compression: compression)
        let table = try ParquetReader.read(bytes)
        #expect(table.rowCount == 1_000)
        #expect(table.metadata == ["huggingface": "{}", "k": "ü"])
        #expect(table.createdBy == ParquetWriter.createdBy)
        #expect(table.columns.map(\.name) == columns.map(\.name))
        for (read, written) in zip(table.columns, columns) { #expect(same(read, written), "\(written.name)") }
    }

    @Test("concatenated columns hold the rows of their parts in order, at every list depth")
    func concatenation() throws {
        let parts = [sampleColumns(rows: 30), sampleColumns(rows: 1), sampleColumns(rows: 59)]
        let joined = try parts[0].indices.map { k in try ParquetColumn.concatenated(parts.map { $0[k] }) }
        let table = try ParquetReader.read(try ParquetWriter.write(joined))
        #expect(table.rowCount == 90)
        for (k, column) in table.columns.enumerated() {
            var row = 0
            for part in parts {
                let source = part[k]
                for r in 0..<source.rowCount {
                    let a = column.valueRange(row..<row + 1), b = source.valueRange(r..<r + 1)
                    #expect(a.count == b.count, "\(column.name) row \(row)")
                    if let x = column.floats { #expect(Array(x[a]) == Array(source.floats![b])) }
                    if let x = column.doubles { #expect(Array(x[a]) == Array(source.doubles![b])) }
                    if let x = column.integers { #expect(Array(x[a]) == Array(source.integers![b])) }
                    if let x = column.strings { #expect(Array(x[a]) == Array(source.strings![b])) }
                    if let x = column.bools { #expect(Array(x[a]) == Array(source.bools![b])) }
                    row += 1
                }
            }
        }
        #expect(throws: ParquetError.self) { try ParquetColumn.concatenated([.int64("a", [1]), .float("a", [1])]) }
        #expect(throws: ParquetError.self) { try ParquetColumn.concatenated([.int64("a", [1]), .int64("b", [1])]) }
        #expect(throws: ParquetError.self) { try ParquetColumn.concatenated([]) }
    }

    @Test("special floats keep their bits; a column subset; no rows")
    func specialValuesAndSubsets() throws {
        let floats: [Float] = [-0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let bytes = try ParquetWriter.write([.float("x", floats), .floatList("v", flat: floats + floats, width: 2), .int64("i", [1, 2, 3, 4, 5, 6])])
        let table = try ParquetReader.read(bytes, columns: ["v"])
        #expect(table.columns.map(\.name) == ["v"])
        #expect(table.column("v")?.floats?.map(\.bitPattern) == (floats + floats).map(\.bitPattern))
        #expect(table.column("v")?.offsets == [[0, 2, 4, 6, 8, 10, 12]])
        #expect(table.column("v")?.valueRange(2..<3) == 4..<6)
        let empty = try ParquetReader.read(try ParquetWriter.write([.int64("i", []), .floatList("v", [])]))
        #expect(empty.rowCount == 0)
        #expect(empty.column("i")?.int64s == [])
        #expect(empty.column("v")?.offsets == [[0]])
    }

    @Test("every truncation of a file is an error, never a crash")
    func truncated() throws {
        let bytes = try ParquetWriter.write(sampleColumns(rows: 40), rowGroupSize: 16)
        var errors = 0
        for length in 0..<bytes.count {
            do {
                _ = try ParquetReader.read(Array(bytes.prefix(length)))
                Issue.record("a file cut to \(length) of \(bytes.count) bytes was read")
            } catch {
                errors += 1
            }
        }
        #expect(errors == bytes.count)
    }

    @Test("flipped bytes give an error or a table, never a crash or a huge allocation", arguments: [ParquetCompression.snappy, .uncompressed])
    func corrupted(compression: ParquetCompression) throws {
        let bytes = try ParquetWriter.write(sampleColumns(rows: 60), rowGroupSize: 25, pageSize: 128, metadata: [:], compression: compression)
        var limits = ParquetReader.Limits()
        limits.maxEntriesPerColumn = 1 << 16
        var generator = SplitMix(seed: compression == .snappy ? 1 : 2)
        var failures: [ParquetError.Code: Int] = [:]
        for _ in 0..<3_000 {
            var damaged = bytes
            for _ in 0..<Int(generator.next() % 3) + 1 {
                let at = Int(generator.next() % UInt64(damaged.count))
                damaged[at] = UInt8(truncatingIfNeeded: generator.next())
            }
            do {
                _ = try ParquetReader.read(damaged, limits: limits)
            } catch {
                failures[error.code, default: 0] += 1
            }
        }
        // Most damage is detected; what is not still decodes to a table of bounded size.
        #expect((failures[.corrupt] ?? 0) > 1_000)
    }

    @Test("hostile sizes: a footer length, a Snappy length and a level run past any real data")
    func hostileSizes() throws {
        var bytes = try ParquetWriter.write([.int64("i", [1, 2, 3])], compression: .uncompressed)
        // The footer length claims more than the file.
        var footer = bytes
        footer.replaceSubrange(footer.count - 8..<footer.count - 4, with: [0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: ParquetError.self) { try ParquetReader.read(footer) }
        // A Snappy block declaring 2 GiB from 3 bytes.
        #expect(throws: ParquetError.self) { try Snappy.decompress([0x80, 0x80, 0x80, 0x80, 0x08, 0x00, 0x00][...], expectedLength: 1 << 31) }
        #expect(throws: ParquetError.self) { try Snappy.decompress([0x04, 0x00, 0x61, 0x05, 0x01][...], expectedLength: 4) }
        #expect(try Snappy.decompress(Snappy.compress(Array("abcabcabcabcabcabc".utf8))[...], expectedLength: 18) == Array("abcabcabcabcabcabc".utf8))
        // A run of 2^40 levels is cut at what is wanted.
        var levels: [UInt8] = []
        let run: [UInt8] = { var b: [UInt8] = []; Varint.append(UInt64(1) << 41, to: &b); return b + [1] }()
        try RLEHybrid.decode(run, range: run.indices, bitWidth: 1, count: 5, into: &levels)
        #expect(levels == [1, 1, 1, 1, 1])
        // Not Parquet at all.
        bytes[0] = 0
        #expect(throws: ParquetError.self) { try ParquetReader.read(bytes) }
    }
}

@Suite(
    "ParquetReader reads pyarrow's files", .tags(.process), .serialized,
    .enabled("pyarrow is not importable by the tests' Python; ROBOSIM_REQUIRE_PYARROW=1 makes that a failure") { PyArrow.shouldRun })
struct ParquetReaderPyArrowTests {
    /// pyarrow writes the sample columns with each of these settings.
    static let settings = [
        "compression='snappy', use_dictionary=False, data_page_version='1.0'",
        "compression='none', use_dictionary=False, data_page_version='1.0'",
        "compression='snappy', use_dictionary=False, data_page_version='2.0'",
        "compression='none', use_dictionary=False, data_page_version='2.0'",
        "compression='snappy', use_dictionary=True, data_page_version='1.0'",
        "compression='snappy', use_dictionary=True, data_page_version='2.0', row_group_size=300, data_page_size=1024",
    ]

    @Test("pyarrow's files decode to the same columns", arguments: settings)
    func pyarrowFiles(settings: String) async throws {
        try await PyArrow.offPool {
            guard PyArrow.available() else { return }
            try withTemporaryFile { url in
                let script = """
                    import sys, pyarrow as pa, pyarrow.parquet as pq
                    rows = 1000
                    f32 = lambda xs: pa.array(xs, pa.float32())
                    table = pa.table({
                        "flag": pa.array([r % 3 == 0 for r in range(rows)]),
                        "small": pa.array([r - 50 for r in range(rows)], pa.int32()),
                        "index": pa.array([r * 1000003 - 7 for r in range(rows)], pa.int64()),
                        "reward": f32([r / 8 - 1 for r in range(rows)]),
                        "timestamp": pa.array([r / 3 for r in range(rows)], pa.float64()),
                        "task": pa.array(["row %d ü" % r + "x" * (r % 5) for r in range(rows)]),
                        "observation.state": pa.array([[r + j / 4 for j in range(r % 4)] for r in range(rows)], pa.list_(pa.float32())),
                        "counts": pa.array([[r * j for j in range(r % 3)] for r in range(rows)], pa.list_(pa.int64())),
                        "pairs": pa.array([[] if r % 5 == 0 else [[float(r)], [], [1.0, -r / 2]] for r in range(rows)], pa.list_(pa.list_(pa.float64()))),
                        "image": pa.array([[] if r % 7 == 0 else [[[float(r)]], [[]], [[0.5, 0.25]]] for r in range(rows)],
                                          pa.list_(pa.list_(pa.list_(pa.float64())))),
                        "names": pa.array([[] if r % 4 == 0 else ["a%d" % r, ""] for r in range(rows)], pa.list_(pa.string())),
                    })
                    pq.write_table(table, sys.argv[1] if len(sys.argv) > 1 else \(String(reflecting: url.path)), \(settings))
                    """
                let result = try PythonScript.run(script: script, input: Data())
                try #require(result.status == 0, "pyarrow failed: \(result.stderr)")
                let table = try ParquetReader.read(contentsOf: url)
                let expected = sampleColumns(rows: 1_000)
                #expect(table.rowCount == 1_000)
                #expect(table.columns.map(\.name) == expected.map(\.name))
                for (read, written) in zip(table.columns, expected) { #expect(same(read, written), "\(written.name) (\(settings))") }
            }
        }
    }
}
