import Foundation
import Testing

@testable import Parquet

@Suite(
    "pyarrow reads what ParquetWriter writes", .tags(.process), .serialized,
    .enabled("pyarrow is not importable by the tests' Python; ROBOSIM_REQUIRE_PYARROW=1 makes that a failure") {
        PyArrow.shouldRun
    })
struct PyArrowTests {
    @Test("every type and list depth: schema, values, row groups, Snappy, statistics")
    func everyType() async throws {
        // The Python process runs on a thread of its own: blocking the (2-thread) cooperative pool starves other suites.
        try await PyArrow.offPool {
            guard PyArrow.available() else { return }
            let rows = 1_000
            let specialFloats: [Float] = [-0.0, 0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -1.5]
            let specialDoubles: [Double] = [.nan, -0.0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, 1e300, .infinity]
            let texts = ["", "héllo", "日本語", "🤖 robot", "a\u{0}b", "push the T-bar into the slot"]

            let flags = (0..<rows).map { $0 % 3 == 0 }
            var indices = (0..<rows).map { Int64($0) - 500 }
            indices[1] = .min
            indices[2] = .max
            let rewards: [Float] = (0..<rows).map { row -> Float in row < specialFloats.count ? specialFloats[row] : Float(row) * 0.001 - 0.3 }
            let timestamps: [Double] = (0..<rows).map { row -> Double in row < specialDoubles.count ? specialDoubles[row] : Double(row) / 30 }
            let tasks = (0..<rows).map { texts[$0 % texts.count] + ($0 % 2 == 0 ? "" : " \($0)") }
            // The last row group (900..<1000) holds only empty lists: statistics without min/max.
            let states: [[Float]] = (0..<rows).map { row -> [Float] in
                row >= 900 ? [] : (0..<(row % 5)).map { (item: Int) -> Float in Float(row) + Float(item) / 8 }
            }
            let actions = (0..<rows * 3).map { sin(Double($0)) }
            let counts = (0..<rows).map { $0 % 7 == 0 ? [] : [Int64($0), -Int64($0)] }
            let bools = (0..<rows).map { row in (0..<(row % 3)).map { ($0 + row) % 2 == 0 } }
            let names = (0..<rows).map { $0 % 4 == 0 ? [] : ["task \($0)", "ünï"] }
            let pairs: [[[Double]]] = (0..<rows).map { $0 % 6 == 0 ? [] : [[Double($0)], [], [1, -2]] }
            let imageStats: [[[[Double]]]] = (0..<rows).map { row in
                switch row % 10 {
                case 0: []
                case 1: [[], [[]]]
                default: [[[Double(row)]], [[Double(row) + 0.5]], [[-Double(row)]]]
                }
            }

            let columns: [ParquetColumn] = [
                .bool("next.success", flags), .int64("index", indices), .float("next.reward", rewards),
                .double("timestamp", timestamps), .string("task", tasks), .floatList("observation.state", states),
                .doubleList("action", flat: actions, width: 3), .int64List("counts", counts), .boolList("flags", bools),
                .stringList("tasks", names), .doubleList("stats/x/pairs", pairs), .doubleList("stats/observation.images.top/mean", imageStats),
            ]
            let expected: [(name: String, type: String, values: JSONValue)] = [
                ("next.success", "bool", flags.json), ("index", "int64", indices.json), ("next.reward", "float", rewards.json),
                ("timestamp", "double", timestamps.json), ("task", "string", tasks.json),
                ("observation.state", "list<element: float>", states.json),
                ("action", "list<element: double>", stride(from: 0, to: actions.count, by: 3).map { Array(actions[$0..<$0 + 3]) }.json),
                ("counts", "list<element: int64>", counts.json), ("flags", "list<element: bool>", bools.json),
                ("tasks", "list<element: string>", names.json),
                ("stats/x/pairs", "list<element: list<element: double>>", pairs.json),
                ("stats/observation.images.top/mean", "list<element: list<element: list<element: double>>>", imageStats.json),
            ]
            let metadata = ["huggingface": #"{"info": {"features": {}}}"#, "robosim": "ünïcode ✓"]

            let report = try withTemporaryFile { url in
                try ParquetWriter.write(columns, to: url, rowGroupSize: 300, metadata: metadata)
                return try PyArrow.read(url)
            }

            #expect(report.schema == expected.map { [$0.name, $0.type] })
            #expect(report.numRows == rows)
            #expect(report.rowGroupRows == [300, 300, 300, 100])
            #expect(report.codecs == Array(repeating: "SNAPPY", count: 4 * columns.count))
            #expect(report.statisticsProblems == [])
            #expect(report.createdBy == ParquetWriter.createdBy)
            #expect(report.metadata == metadata)
            for column in expected {
                let values = try #require(report.columns[column.name], "no column \(column.name)")
                #expect(values.firstDifference(from: column.values) == nil, "\(column.name)")
            }
        }
    }

    @Test("many rows: several row groups of many pages", arguments: [ParquetCompression.snappy, .uncompressed])
    func manyPages(compression: ParquetCompression) async throws {
        // The Python process runs on a thread of its own: blocking the (2-thread) cooperative pool starves other suites.
        try await PyArrow.offPool {
            guard PyArrow.available() else { return }
            let rows = 60_000
            let indices = (0..<rows).map(Int64.init)
            let states = (0..<rows * 4).map { Float(sin(Double($0) / 100)) }
            let tasks = (0..<rows).map { ["push the T-bar", "reach", "pick the cube"][$0 / 1_000 % 3] }
            let episodes = (0..<rows).map { row in Array(repeating: Int64(row / 500), count: row % 3) }
            let columns: [ParquetColumn] = [
                .int64("index", indices), .floatList("observation.state", flat: states, width: 4), .string("task", tasks),
                .int64List("episodes", episodes),
            ]
            // Pages of 4 KiB: a hundred and more in each column chunk.
            let bytes = try ParquetWriter.write(columns, rowGroupSize: 25_000, pageSize: 4_096, metadata: [:], compression: compression)
            let report = try withTemporaryFile { url in
                try Data(bytes).write(to: url)
                return try PyArrow.read(url)
            }

            #expect(report.rowGroupRows == [25_000, 25_000, 10_000])
            #expect(report.codecs == Array(repeating: compression == .snappy ? "SNAPPY" : "UNCOMPRESSED", count: 3 * columns.count))
            #expect(report.statisticsProblems == [])
            #expect(report.columns["index"]?.firstDifference(from: indices.json) == nil)
            let vectors = stride(from: 0, to: states.count, by: 4).map { Array(states[$0..<$0 + 4]) }
            #expect(report.columns["observation.state"]?.firstDifference(from: vectors.json) == nil)
            #expect(report.columns["task"]?.firstDifference(from: tasks.json) == nil)
            #expect(report.columns["episodes"]?.firstDifference(from: episodes.json) == nil)
        }
    }

    @Test("no rows: the schema alone")
    func empty() async throws {
        // The Python process runs on a thread of its own: blocking the (2-thread) cooperative pool starves other suites.
        try await PyArrow.offPool {
            guard PyArrow.available() else { return }
            let report = try withTemporaryFile { url in
                try ParquetWriter.write(
                    [.float("reward", []), .floatList("state", []), .doubleList("mean", [] as [[[[Double]]]]), .string("task", [])], to: url)
                return try PyArrow.read(url)
            }
            #expect(report.numRows == 0)
            #expect(report.rowGroupRows == [])
            #expect(
                report.schema == [
                    ["reward", "float"], ["state", "list<element: float>"],
                    ["mean", "list<element: list<element: list<element: double>>>"], ["task", "string"],
                ])
        }
    }
}

/// Runs `body` with the URL of a file in a fresh temporary directory, removed afterwards.
func withTemporaryFile<Result>(_ body: (URL) throws -> Result) throws -> Result {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parquet-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory.appendingPathComponent("file.parquet"))
}
