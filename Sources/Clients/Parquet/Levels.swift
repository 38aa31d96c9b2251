/// Dremel repetition and definition levels, and the RLE/bit-packed hybrid encoding that stores them.
///
/// Every column this writer makes is an optional leaf, or the optional leaf of up to three nested
/// lists in the 3-level layout (`optional group (LIST) { repeated group list { optional element } }`),
/// with no nulls. For `depth` lists the maximum repetition level is `depth` and the maximum
/// definition level `2 × depth + 1`: each list contributes its optional group and its repeated group,
/// the leaf its optional. A value has the maximum definition level; an empty list at nesting level
/// `k` (0 outermost) has `2k + 1`, its optional group being present and its repeated group not.
struct Levels {
    /// One array per list level, outermost first: item `i` of level `k` holds items
    /// `offsets[k][i]..<offsets[k][i + 1]` of level `k + 1` (or of the leaf values, at the last level).
    let offsets: [[Int]]
    private(set) var repetition: [UInt8] = []
    private(set) var definition: [UInt8] = []

    var depth: Int { offsets.count }
    var maxRepetition: UInt8 { UInt8(depth) }
    var maxDefinition: UInt8 { UInt8(2 * depth + 1) }

    init(offsets: [[Int]]) {
        precondition(!offsets.isEmpty, "levels are built for list columns only")
        self.offsets = offsets
    }

    /// Appends the levels of `rows` (indices into the outermost level).
    mutating func appendRows(_ rows: Range<Int>) {
        for row in rows { appendList(level: 0, index: row, repetition: 0) }
    }

    /// The levels of list `index` at nesting `level`, whose first entry repeats at `first`.
    private mutating func appendList(level: Int, index: Int, repetition first: UInt8) {
        let start = offsets[level][index]
        let end = offsets[level][index + 1]
        guard start < end else {
            repetition.append(first)
            definition.append(UInt8(2 * level + 1))
            return
        }
        if level == depth - 1 {
            repetition.append(first)
            repetition.append(contentsOf: repeatElement(UInt8(level + 1), count: end - start - 1))
            definition.append(contentsOf: repeatElement(maxDefinition, count: end - start))
        } else {
            appendList(level: level + 1, index: start, repetition: first)
            for item in start + 1..<end { appendList(level: level + 1, index: item, repetition: UInt8(level + 1)) }
        }
    }
}

/// The RLE/bit-packed hybrid encoding: runs of one repeated value (`count << 1` as a varint, then
/// the value in whole bytes) and groups of 8 values bit-packed least significant bit first
/// (`groups << 1 | 1`, then `bitWidth` bytes a group).
enum RLEHybrid {
    /// The bits needed for levels up to `maxLevel` (0 when there are no levels to write).
    static func bitWidth(_ maxLevel: UInt8) -> Int { UInt8.bitWidth - maxLevel.leadingZeroBitCount }

    /// Appends `values` (each below `1 << bitWidth`, `bitWidth` 1...8): repeats of 8 or more as runs,
    /// the rest bit-packed. Bit-packed values are only padded at the very end, so a run that follows
    /// some first lends them values to fill their last group.
    static func append(_ values: [UInt8], bitWidth: Int, to output: inout [UInt8]) {
        let count = values.count
        var literalStart = 0
        var position = 0
        while position < count {
            let value = values[position]
            var runEnd = position + 1
            while runEnd < count && values[runEnd] == value { runEnd += 1 }
            if runEnd - position >= 8 {
                let runStart = position + (8 - (position - literalStart) % 8) % 8
                if runStart > literalStart { appendBitPacked(values[literalStart..<runStart], bitWidth: bitWidth, to: &output) }
                appendRun(value, count: runEnd - runStart, bitWidth: bitWidth, to: &output)
                literalStart = runEnd
            }
            position = runEnd
        }
        if literalStart < count { appendBitPacked(values[literalStart..<count], bitWidth: bitWidth, to: &output) }
    }

    /// Appends one run of `count` copies of `value`.
    static func appendRun(_ value: UInt8, count: Int, bitWidth: Int, to output: inout [UInt8]) {
        Varint.append(UInt64(count) << 1, to: &output)
        output.append(value)  // (bitWidth + 7) / 8 bytes: one, for levels
    }

    /// Appends `values` bit-packed in groups of 8, the last group padded with zeros.
    private static func appendBitPacked(_ values: ArraySlice<UInt8>, bitWidth: Int, to output: inout [UInt8]) {
        let groups = (values.count + 7) / 8
        Varint.append(UInt64(groups) << 1 | 1, to: &output)
        var accumulator: UInt32 = 0
        var bits = 0
        for value in values {
            accumulator |= UInt32(value) << UInt32(bits)
            bits += bitWidth
            while bits >= 8 {
                output.append(UInt8(truncatingIfNeeded: accumulator))
                accumulator >>= 8
                bits -= 8
            }
        }
        // Zero padding to a whole group: 8 × bitWidth bits is bitWidth bytes.
        let written = (values.count * bitWidth) / 8
        if bits > 0 { output.append(UInt8(truncatingIfNeeded: accumulator)) }
        let padding = groups * bitWidth - written - (bits > 0 ? 1 : 0)
        output.append(contentsOf: repeatElement(0, count: padding))
    }
}
