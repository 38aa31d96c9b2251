import Foundation
import Parquet
import Testing

@Suite(
    "the same tables as lerobot's files", .tags(.process), .serialized,
    .enabled("pyarrow is not importable by the tests' Python; ROBOSIM_REQUIRE_PYARROW=1 makes that a failure") {
        PyArrow.shouldRun
    })
struct ReferenceTests {
    /// lerobot 0.4.4's files (see `Fixtures/README.md`).
    static let fixtures = PyArrow.repositoryRoot.appendingPathComponent("Tests/ParquetTests/Fixtures/lerobot-v3.0-reference")

    @Test(
        "our file of the reference's columns reads to the reference's table (fixed-size lists as lists)",
        arguments: ["data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet", "meta/tasks.parquet"])
    func sameTable(path: String) async throws {
        // The Python process runs on a thread of its own: blocking the (2-thread) cooperative pool starves other suites.
        try await PyArrow.offPool {
            guard PyArrow.available() else { return }
            let referenceURL = Self.fixtures.appendingPathComponent(path)
            let reference = try PyArrow.reference(referenceURL)
            let columns = try reference.columns.map(Self.column)

            let (comparison, report) = try withTemporaryFile { url in
                try ParquetWriter.write(columns, to: url, rowGroupSize: reference.rowGroupRows.first ?? 1, metadata: reference.metadata)
                return (try PyArrow.compare(url, with: referenceURL), try PyArrow.read(url))
            }

            #expect(comparison.schemaEqual, "ours:\n\(comparison.schema)\nexpected:\n\(comparison.expectedSchema)")
            #expect(comparison.tablesEqual)
            #expect(report.rowGroupRows == reference.rowGroupRows)
            #expect(report.metadata == reference.metadata)
            #expect(report.codecs.allSatisfy { $0 == "SNAPPY" })
            #expect(report.statisticsProblems == [])
        }
    }

    /// The writer's column for a reference column, from its leaf type and list depth.
    static func column(_ column: PyArrow.Column) throws -> ParquetColumn {
        func values<Values: PyArrowValue>(_ type: Values.Type) throws -> Values {
            try #require(Values(json: column.values), "column \(column.name) is not \(type)")
        }
        switch (column.leaf, column.depth) {
        case ("bool", 0): return .bool(column.name, try values([Bool].self))
        case ("int64", 0): return .int64(column.name, try values([Int64].self))
        case ("float", 0): return .float(column.name, try values([Float].self))
        case ("double", 0): return .double(column.name, try values([Double].self))
        case ("string", 0): return .string(column.name, try values([String].self))
        case ("bool", 1): return .boolList(column.name, try values([[Bool]].self))
        case ("int64", 1): return .int64List(column.name, try values([[Int64]].self))
        case ("float", 1): return .floatList(column.name, try values([[Float]].self))
        case ("double", 1): return .doubleList(column.name, try values([[Double]].self))
        case ("string", 1): return .stringList(column.name, try values([[String]].self))
        case ("double", 2): return .doubleList(column.name, try values([[[Double]]].self))
        case ("double", 3): return .doubleList(column.name, try values([[[[Double]]]].self))
        default: throw PyArrowFailure("column \(column.name): no writer column for \(column.leaf) in \(column.depth) lists")
        }
    }
}
