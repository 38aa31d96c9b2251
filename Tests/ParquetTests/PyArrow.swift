import Foundation
import TestSupport
import Testing

extension Tag {
    /// Tests that start another process.
    @Tag static var process: Self
}

/// pyarrow, run in a Python subprocess, as the reader that checks the files ``ParquetWriter`` writes.
///
/// The interpreter is `$ROBOSIM_PYTHON`, else the repository's `.venv/bin/python` (what
/// `scripts/setup.sh` makes, with `python/requirements-dev.txt`, which lists pyarrow), else
/// `python3` on the PATH. When pyarrow cannot be imported the pyarrow tests are skipped, unless
/// `ROBOSIM_REQUIRE_PYARROW=1` (set by `scripts/test.sh`, so CI), where they fail instead.
///
/// Values cross as JSON: floats as the hexadecimal bit patterns of their own width (so −0, ±inf
/// and NaN compare exactly), integers as decimal strings, lists as arrays.
enum PyArrow {
    /// The repository root: three levels above this file (`Tests/ParquetTests/PyArrow.swift`).
    static let repositoryRoot = PythonScript.repositoryRoot

    /// Whether a missing pyarrow is a failure rather than a skip.
    static let required = ProcessInfo.processInfo.environment["ROBOSIM_REQUIRE_PYARROW"] == "1"

    /// The command that runs Python (see `PythonScript`).
    static var python: [String] { PythonScript.python }

    /// Why pyarrow cannot be used, or nil when it can (checked once, by importing it).
    static let unavailableReason: String? = PythonScript.importProblem("pyarrow.parquet", name: "pyarrow")

    /// Whether the pyarrow tests run: pyarrow is importable, or its absence must fail them.
    static var shouldRun: Bool { unavailableReason == nil || required }

    /// Records the failure a test must report when pyarrow is required but missing; true when the
    /// test can go on.
    static func available() -> Bool {
        guard let reason = unavailableReason else { return true }
        Issue.record("ROBOSIM_REQUIRE_PYARROW=1 but \(reason). Install it: .venv/bin/pip install -r python/requirements-dev.txt")
        return false
    }

    /// What pyarrow reads from a file.
    struct FileReport: Decodable {
        var numRows: Int
        var rowGroupRows: [Int]
        var createdBy: String
        var metadata: [String: String]
        /// `[name, str(type)]` per field, e.g. `["observation.state", "list<element: float>"]`.
        var schema: [[String]]
        /// Each column chunk's compression, e.g. `SNAPPY`.
        var codecs: [String]
        /// Column chunks whose statistics differ from the min/max of what pyarrow reads (or lack them).
        var statisticsProblems: [String]
        /// Each column's values, by name (parsed apart, with `JSONSerialization`: large columns
        /// decode many times faster so).
        var columns: [String: JSONValue] = [:]

        private enum CodingKeys: String, CodingKey {
            case numRows, rowGroupRows, createdBy, metadata, schema, codecs, statisticsProblems
        }
    }

    /// pyarrow's reading of the Parquet file at `url`.
    static func read(_ url: URL) throws -> FileReport {
        let output = try call(["mode": "read", "path": url.path])
        var report = try JSONDecoder().decode(FileReport.self, from: output)
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        for (name, values) in object?["columns"] as? [String: Any] ?? [:] {
            report.columns[name] = try JSONValue(parsed: values)
        }
        return report
    }

    /// One column of a reference file, as pyarrow reads it.
    struct Column: Decodable {
        var name: String
        /// `bool`, `int64`, `float`, `double` or `string`.
        var leaf: String
        /// How many lists deep (fixed-size, large and plain lists alike).
        var depth: Int
        var values: JSONValue
    }

    /// The columns and key-value metadata of a file written by pyarrow.
    struct Reference: Decodable {
        var columns: [Column]
        var metadata: [String: String]
        var rowGroupRows: [Int]
    }

    /// pyarrow's reading of the reference file at `url`.
    static func reference(_ url: URL) throws -> Reference {
        try call(["mode": "reference", "path": url.path], as: Reference.self)
    }

    /// How a file of ours compares with a reference file, table against table.
    struct Comparison: Decodable {
        /// Our schema equals the reference's with fixed-size and large lists as lists and large strings as strings.
        var schemaEqual: Bool
        var schema: String
        var expectedSchema: String
        /// Our table equals the reference's cast to that schema.
        var tablesEqual: Bool
    }

    /// Compares the table in `ours` with the one in `reference`.
    static func compare(_ ours: URL, with reference: URL) throws -> Comparison {
        try call(["mode": "compare", "path": ours.path, "reference": reference.path], as: Comparison.self)
    }

    private static func call<Result: Decodable>(_ request: [String: String], as type: Result.Type) throws -> Result {
        try JSONDecoder().decode(Result.self, from: try call(request))
    }

    /// The helper script's JSON reply to `request`.
    private static func call(_ request: [String: String]) throws -> Data {
        let result = try run(script: script, input: try JSONEncoder().encode(request))
        guard result.status == 0 else { throw PyArrowFailure("pyarrow script exited with \(result.status): \(result.stderr)") }
        return result.stdout
    }

    private static let script = #"""
        import json, math, struct, sys
        import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq

        def is_list(t):
            return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)

        def leaf_of(t):
            depth = 0
            while is_list(t):
                depth, t = depth + 1, t.value_type
            names = {pa.float32(): "float", pa.float64(): "double", pa.int64(): "int64", pa.bool_(): "bool",
                     pa.string(): "string", pa.large_string(): "string"}
            return names[t], depth

        def encode(value, leaf, depth):
            if depth:
                return [encode(v, leaf, depth - 1) for v in value]
            if leaf == "float":
                return format(struct.unpack("<I", struct.pack("<f", value))[0], "08x")
            if leaf == "double":
                return format(struct.unpack("<Q", struct.pack("<d", value))[0], "016x")
            if leaf == "int64":
                return str(value)
            return value

        def encode_column(column):
            leaf, depth = leaf_of(column.type)
            return [encode(v, leaf, depth) for v in column.to_pylist()]

        def leaves(array):
            while is_list(array.type):
                array = pc.list_flatten(array)
            return array.to_pylist()

        def statistics_problems(f):
            problems = []
            for g in range(f.metadata.num_row_groups):
                table = f.read_row_group(g)
                for c in range(f.metadata.num_columns):
                    chunk = f.metadata.row_group(g).column(c)
                    where = f"row group {g} column {chunk.path_in_schema}"
                    values = [v for v in leaves(table.column(c).combine_chunks()) if not (isinstance(v, float) and math.isnan(v))]
                    stats = chunk.statistics
                    if not chunk.is_stats_set or stats is None:
                        problems.append(f"{where}: no statistics")
                        continue
                    if stats.null_count != 0:
                        problems.append(f"{where}: null_count {stats.null_count}")
                    if not values:
                        if stats.has_min_max:
                            problems.append(f"{where}: min/max without values")
                        continue
                    if not stats.has_min_max:
                        problems.append(f"{where}: no min/max")
                        continue
                    low, high = min(values), max(values)
                    if stats.min != low or stats.max != high:
                        problems.append(f"{where}: min/max {stats.min!r}/{stats.max!r}, values {low!r}/{high!r}")
                    if isinstance(low, float) and low == 0 and math.copysign(1, stats.min) > 0:
                        problems.append(f"{where}: zero min is +0")
                    if isinstance(high, float) and high == 0 and math.copysign(1, stats.max) < 0:
                        problems.append(f"{where}: zero max is -0")
            return problems

        def metadata(schema):
            return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items() if k != b"ARROW:schema"}

        def row_group_rows(f):
            return [f.metadata.row_group(g).num_rows for g in range(f.metadata.num_row_groups)]

        def normalized(t):
            if is_list(t):
                return pa.list_(pa.field(t.value_field.name, normalized(t.value_type), t.value_field.nullable))
            return pa.string() if t == pa.large_string() else t

        request = json.load(sys.stdin)
        f = pq.ParquetFile(request["path"])
        table = f.read()
        if request["mode"] == "read":
            out = {
                "numRows": f.metadata.num_rows,
                "rowGroupRows": row_group_rows(f),
                "createdBy": f.metadata.created_by,
                "metadata": metadata(f.schema_arrow),
                "schema": [[field.name, str(field.type)] for field in table.schema],
                "codecs": [f.metadata.row_group(g).column(c).compression
                           for g in range(f.metadata.num_row_groups) for c in range(f.metadata.num_columns)],
                "statisticsProblems": statistics_problems(f),
                "columns": {name: encode_column(table.column(name)) for name in table.column_names},
            }
        elif request["mode"] == "reference":
            out = {
                "columns": [dict(zip(("leaf", "depth"), leaf_of(table.column(name).type)), name=name,
                                 values=encode_column(table.column(name))) for name in table.column_names],
                "metadata": metadata(f.schema_arrow),
                "rowGroupRows": row_group_rows(f),
            }
        else:
            reference = pq.read_table(request["reference"])
            expected = pa.schema([pa.field(x.name, normalized(x.type), x.nullable) for x in reference.schema])
            ours = table.schema.remove_metadata()
            out = {
                "schemaEqual": ours.equals(expected),
                "schema": str(ours),
                "expectedSchema": str(expected),
                "tablesEqual": ours.equals(expected) and table.equals(reference.cast(expected)),
            }
        json.dump(out, sys.stdout)
        """#

    private static func run(script: String, input: Data) throws -> (status: Int32, stdout: Data, stderr: String) {
        try PythonScript.run(script: script, input: input)
    }
}


struct PyArrowFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}


extension PyArrow {
    /// Runs `body` on a thread of its own (see `onOwnThread`).
    static func offPool(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await onOwnThread(body)
    }
}
