import Testing

@testable import Parquet

@Suite("ParquetWriter")
struct ParquetWriterTests {
    @Test("PAR1 at both ends, the footer's length before the last")
    func layout() throws {
        let bytes = try ParquetWriter.write([.int64("index", [1, 2, 3])], metadata: ["k": "v"])
        #expect(Array(bytes.prefix(4)) == Array("PAR1".utf8))
        #expect(Array(bytes.suffix(4)) == Array("PAR1".utf8))
        let footerLength = bytes.suffix(8).prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(footerLength > 0 && footerLength < bytes.count - 12)
        // The footer names the writer and carries the metadata.
        let footer = bytes[(bytes.count - 8 - footerLength)..<(bytes.count - 8)]
        #expect(footer.firstRange(of: Array(ParquetWriter.createdBy.utf8)) != nil)
        #expect(footer.firstRange(of: [0x18, 0x01, 0x6B, 0x18, 0x01, 0x76]) != nil)  // key "k", value "v"
    }

    @Test("equal input gives equal bytes (metadata sorted by key)")
    func deterministic() throws {
        let columns: [ParquetColumn] = [.string("task", ["a", "b"]), .floatList("v", [[1, 2], []])]
        let metadata = ["b": "2", "a": "1", "c": "3", "huggingface": "{}"]
        #expect(try ParquetWriter.write(columns, metadata: metadata) == ParquetWriter.write(columns, metadata: metadata))
    }

    @Test(
        "invalid arguments throw",
        arguments: [
            ([], 10, ParquetError.Code.invalidArgument),
            ([.int64("a", [1]), .int64("b", [1, 2])], 10, .invalidArgument),
            ([.int64("a", [1])], 0, .invalidArgument),
            ([.int64("a", [1]), .bool("a", [true])], 10, .invalidName),
            ([.int64("", [1])], 10, .invalidName),
        ] as [([ParquetColumn], Int, ParquetError.Code)])
    func invalid(columns: [ParquetColumn], rowGroupSize: Int, code: ParquetError.Code) {
        let error = #expect(throws: ParquetError.self) { try ParquetWriter.write(columns, rowGroupSize: rowGroupSize) }
        #expect(error?.code == code)
    }

    @Test("row counts and list depths")
    func columns() {
        #expect(ParquetColumn.floatList("v", flat: [1, 2, 3, 4, 5, 6], width: 3).rowCount == 2)
        #expect(ParquetColumn.floatList("v", [[1], [], [2, 3]]).listOffsets == [[0, 1, 1, 3]])
        let nested = ParquetColumn.doubleList("s", [[[[1]], [[2]], [[3]]]] as [[[[Double]]]])
        #expect(nested.rowCount == 1 && nested.listDepth == 3)
        #expect(ParquetColumn.string("t", []).rowCount == 0)
    }

    @Test("schema: 3-level lists, names with '.' and '/' kept whole")
    func schema() {
        let elements = Schema.elements([
            .float("next.reward", [1]), .doubleList("stats/action/min", [[[1]]] as [[[Double]]]), .string("task", ["x"]),
        ])
        #expect(elements.map(\.name) == ["schema", "next.reward", "stats/action/min", "list", "element", "list", "element", "task"])
        #expect(elements.map(\.numChildren) == [3, nil, 1, 1, 1, 1, nil, nil])
        #expect(elements.map(\.repetition) == [nil, .optional, .optional, .repeated, .optional, .repeated, .optional, .optional])
        #expect(elements.map(\.logicalType) == [nil, nil, .list, nil, .list, nil, nil, .string])
        #expect(Schema.path(.floatList("observation.state", [[1]])) == ["observation.state", "list", "element"])
    }

    @Test("statistics: NaN left out, zeros signed, strings by UTF-8 bytes, booleans as one byte")
    func statistics() {
        func floats(_ values: [Float]) -> (Float?, Float?) {
            let statistics = ParquetValues.float(values).statistics(0..<values.count)
            func value(_ bytes: [UInt8]?) -> Float? {
                bytes.map { Float(bitPattern: $0.reversed().reduce(0) { $0 << 8 | UInt32($1) }) }
            }
            return (value(statistics.minValue), value(statistics.maxValue))
        }
        #expect(floats([.nan, 2, -1, .nan]) == (-1, 2))
        #expect(floats([.nan]) == (nil, nil))
        let zeros = floats([0, 1])
        #expect(zeros.0?.sign == .minus && zeros.0 == 0)
        #expect(floats([-1, -0.0]).1?.sign == .plus)
        #expect(floats([-.infinity, .infinity]) == (-.infinity, .infinity))

        let strings = ParquetValues.strings(["z", "é", "a", ""]).statistics(0..<4)
        #expect(strings.minValue == [] && strings.maxValue == Array("é".utf8))
        let partial = ParquetValues.strings(["z", "é", "a", ""]).statistics(0..<1)
        #expect(partial.minValue == Array("z".utf8))
        #expect(ParquetValues.boolean([true, true]).statistics(0..<2).minValue == [1])
        #expect(ParquetValues.boolean([true, false]).statistics(0..<2).minValue == [0])
        #expect(ParquetValues.int64([5, -3]).statistics(0..<2).minValue == [0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(ParquetValues.int64([]).statistics(0..<0).minValue == nil)
    }

    @Test("PLAIN: booleans bit-packed, byte arrays after a 4-byte length")
    func plain() {
        var output: [UInt8] = []
        ParquetValues.boolean([true, false, true, true, false, false, false, false, true]).appendPlain(0..<9, to: &output)
        #expect(output == [0x0D, 0x01])
        output = []
        ParquetValues.strings(["ab", "", "c"]).appendPlain(0..<3, to: &output)
        #expect(output == [2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 1, 0, 0, 0, 0x63])
        output = []
        ParquetValues.float([1, -2]).appendPlain(1..<2, to: &output)
        #expect(output == [0x00, 0x00, 0x00, 0xC0])
    }
}
