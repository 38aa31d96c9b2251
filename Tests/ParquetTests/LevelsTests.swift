import TestSupport
import Testing

@testable import Parquet

@Suite("Levels and the RLE/bit-packed hybrid")
struct LevelsTests {
    @Test("bit widths of maximum levels")
    func bitWidths() {
        #expect([0, 1, 2, 3, 4, 7, 8].map(RLEHybrid.bitWidth) == [0, 1, 2, 2, 3, 3, 4])
    }

    @Test("a repeat of 8 or more is a run: count << 1, then the value")
    func run() {
        #expect(encode(Array(repeating: 1, count: 10), bitWidth: 1) == [0x14, 0x01])
        #expect(encode(Array(repeating: 3, count: 300), bitWidth: 2) == [0xD8, 0x04, 0x03])
    }

    @Test("bit packing, least significant bit first: the format's example of 0...7 in 3 bits")
    func bitPacked() {
        #expect(encode([0, 1, 2, 3, 4, 5, 6, 7], bitWidth: 3) == [0x03, 0x88, 0xC6, 0xFA])
        #expect(encode([0, 1, 0, 1, 0, 1, 0, 1], bitWidth: 1) == [0x03, 0xAA])
        // The last group is padded with zeros.
        #expect(encode([1, 1, 1], bitWidth: 1) == [0x03, 0x07])
        #expect(encode([1, 2, 1, 2, 1, 2, 1, 2, 3], bitWidth: 2) == [0x05, 0x99, 0x99, 0x03, 0x00])
    }

    @Test("values before a run fill their last group from it: no padding but at the end")
    func literalsThenRun() {
        // [1, 2, 3] and five zeros packed, then a run of the five zeros left.
        #expect(encode([1, 2, 3] + Array(repeating: 0, count: 10), bitWidth: 2) == [0x03, 0x39, 0x00, 0x0A, 0x00])
        // A run right after whole groups takes nothing from them.
        #expect(encode([0, 1, 0, 1, 0, 1, 0, 1] + Array(repeating: 0, count: 8), bitWidth: 1) == [0x03, 0xAA, 0x10, 0x00])
    }

    @Test("random levels decode to themselves", arguments: [1, 2, 3])
    func roundTrip(bitWidth: Int) {
        var generator = SplitMix(seed: UInt64(bitWidth))
        for _ in 0..<200 {
            let count = Int(generator.next() % 300)
            var values: [UInt8] = []
            while values.count < count {
                // Runs of random length, so that both encodings and their joins come up.
                let value = UInt8(generator.next() % (1 << UInt64(bitWidth)))
                values += Array(repeating: value, count: Int(generator.next() % 20) + 1)
            }
            #expect(decodeHybrid(encode(values, bitWidth: bitWidth), bitWidth: bitWidth, count: values.count) == values)
        }
    }

    @Test("list<T>: an empty list is definition level 1, a value 3; each row starts at repetition 0")
    func listLevels() {
        var levels = Levels(offsets: [[0, 2, 2, 3]])  // [[a, b], [], [c]]
        levels.appendRows(0..<3)
        #expect(levels.repetition == [0, 1, 0, 0])
        #expect(levels.definition == [3, 3, 1, 3])
        #expect(levels.maxRepetition == 1 && levels.maxDefinition == 3)
    }

    @Test("list<list<list<T>>>: empty lists at each depth, repeats at each depth")
    func nestedLevels() {
        // Row 0: [[[a, b]], [[]], []]; row 1: []; row 2: [[[c], [d]]].
        let column = ParquetColumn.doubleList("x", [[[[1, 2]], [[]], []], [], [[[3], [4]]]])
        var levels = Levels(offsets: column.listOffsets)
        levels.appendRows(0..<3)
        #expect(levels.repetition == [0, 3, 1, 1, 0, 0, 2])
        #expect(levels.definition == [7, 7, 5, 3, 1, 7, 7])
        // A row range in the middle.
        var middle = Levels(offsets: column.listOffsets)
        middle.appendRows(1..<3)
        #expect(middle.repetition == [0, 0, 2])
        #expect(middle.definition == [1, 7, 7])
        #expect(column.valueRange(1..<3) == 2..<4)
    }

    private func encode(_ values: [UInt8], bitWidth: Int) -> [UInt8] {
        var output: [UInt8] = []
        RLEHybrid.append(values, bitWidth: bitWidth, to: &output)
        return output
    }
}

/// Decodes `count` values of the RLE/bit-packed hybrid (levels: values in one byte).
func decodeHybrid(_ bytes: [UInt8], bitWidth: Int, count: Int) -> [UInt8]? {
    var values: [UInt8] = []
    var position = 0
    while values.count < count {
        guard let header = readVarint(bytes, &position) else { return nil }
        if header & 1 == 0 {
            guard position < bytes.count else { return nil }
            values += Array(repeating: bytes[position], count: Int(header >> 1))
            position += 1
        } else {
            let groups = Int(header >> 1)
            guard position + groups * bitWidth <= bytes.count else { return nil }
            for index in 0..<groups * 8 {
                let bit = index * bitWidth
                var value = 0
                for offset in 0..<bitWidth where bytes[position + (bit + offset) / 8] >> ((bit + offset) % 8) & 1 == 1 {
                    value |= 1 << offset
                }
                values.append(UInt8(value))
            }
            position += groups * bitWidth
        }
    }
    return position == bytes.count ? Array(values.prefix(count)) : nil
}

/// Reads an unsigned LEB128 varint at `position`, moving past it.
func readVarint(_ bytes: [UInt8], _ position: inout Int) -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while position < bytes.count && shift < 64 {
        let byte = bytes[position]
        position += 1
        value |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return value }
        shift += 7
    }
    return nil
}
