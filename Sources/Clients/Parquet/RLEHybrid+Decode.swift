extension RLEHybrid {
    /// Decodes `count` values of the RLE/bit-packed hybrid (`bitWidth` 0...32, at most `Value`'s width) from `bytes[range]`,
    /// appending them to `output`; returns where the encoded values end. Runs longer than what is
    /// still wanted are cut (a run header cannot make it allocate past `count`); a truncated input
    /// gives a `.corrupt` error.
    @discardableResult
    static func decode<Value: FixedWidthInteger & UnsignedInteger>(
        _ bytes: [UInt8], range: Range<Int>, bitWidth: Int, count: Int, into output: inout [Value]
    ) throws(ParquetError) -> Int {
        func corrupt(_ what: String) -> ParquetError { ParquetError(.corrupt, "RLE/bit-packed levels: \(what)") }
        guard (0...min(32, Value.bitWidth)).contains(bitWidth) else { throw corrupt("bit width \(bitWidth)") }
        let target = output.count + count
        output.reserveCapacity(target)
        var position = range.lowerBound
        let end = range.upperBound
        let byteWidth = (bitWidth + 7) / 8
        while output.count < target {
            // The run header.
            var header: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < end, shift < 64 else { throw corrupt("truncated run header") }
                let byte = bytes[position]
                position += 1
                header |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            let wanted = target - output.count
            if header & 1 == 0 {
                let runLength = header >> 1
                guard runLength > 0 else { throw corrupt("empty run") }
                guard end - position >= byteWidth else { throw corrupt("truncated run value") }
                var value: UInt32 = 0
                for index in 0..<byteWidth { value |= UInt32(bytes[position + index]) << (8 * UInt32(index)) }
                position += byteWidth
                guard bitWidth == 32 || value < (1 << UInt32(bitWidth)) else { throw corrupt("run value \(value) wider than \(bitWidth) bits") }
                output.append(contentsOf: repeatElement(Value(truncatingIfNeeded: value), count: Int(min(runLength, UInt64(wanted)))))
            } else {
                let groups = header >> 1
                guard groups > 0, groups <= UInt64(end - position) else { throw corrupt("\(groups) bit-packed groups past the end") }
                let byteCount = Int(groups) * bitWidth
                guard end - position >= byteCount else { throw corrupt("truncated bit-packed group") }
                let values = min(Int(groups) * 8, wanted)
                var bit = position * 8
                let mask: UInt64 = bitWidth == 32 ? 0xFFFF_FFFF : (1 << UInt64(bitWidth)) - 1
                for _ in 0..<values {
                    // Up to 32 bits from up to 5 bytes, least significant first.
                    var word: UInt64 = 0
                    let first = bit / 8
                    let last = min((bit + bitWidth + 7) / 8, position + byteCount)
                    for index in first..<last { word |= UInt64(bytes[index]) << (8 * UInt64(index - first)) }
                    output.append(Value(truncatingIfNeeded: (word >> UInt64(bit % 8)) & mask))
                    bit += bitWidth
                }
                position += byteCount
            }
        }
        return position
    }
}
