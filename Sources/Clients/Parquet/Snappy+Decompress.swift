extension Snappy {
    /// Decompresses one raw Snappy block that must expand to exactly `expectedLength` bytes (the page
    /// header's uncompressed size). The output is allocated once, at that size, after checking that
    /// the input could expand to it at all (no element yields more than 64 bytes from 2); every
    /// literal and copy is checked against the input and output bounds.
    static func decompress(_ input: ArraySlice<UInt8>, expectedLength: Int) throws(ParquetError) -> [UInt8] {
        func corrupt(_ what: String) -> ParquetError { ParquetError(.corrupt, "snappy: \(what)") }
        var position = input.startIndex
        let end = input.endIndex
        // The preamble: the uncompressed length as a varint.
        var declared: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end, shift < 35 else { throw corrupt("bad length preamble") }
            let byte = input[position]
            position += 1
            declared |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard declared == UInt64(expectedLength) else {
            throw corrupt("block holds \(declared) bytes, the page header says \(expectedLength)")
        }
        guard expectedLength <= 32 * (end - position) + 64 else {
            throw corrupt("\(end - position) bytes cannot expand to \(expectedLength)")
        }
        var output = [UInt8](repeating: 0, count: expectedLength)
        var written = 0
        try output.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<UInt8>) throws(ParquetError) in
            while position < end {
                let tag = input[position]
                position += 1
                var length: Int
                var offset = 0
                switch tag & 3 {
                case 0:  // literal
                    length = Int(tag >> 2) + 1
                    if length > 60 {
                        let extra = length - 60
                        guard end - position >= extra else { throw corrupt("truncated literal length") }
                        length = 0
                        for index in 0..<extra { length |= Int(input[position + index]) << (8 * index) }
                        length += 1
                        position += extra
                    }
                    guard end - position >= length else { throw corrupt("literal of \(length) bytes past the end of the input") }
                    guard expectedLength - written >= length else { throw corrupt("output longer than declared") }
                    for index in 0..<length { out[written + index] = input[position + index] }
                    position += length
                    written += length
                    continue
                case 1:
                    guard end - position >= 1 else { throw corrupt("truncated copy") }
                    length = Int((tag >> 2) & 7) + 4
                    offset = Int(tag >> 5) << 8 | Int(input[position])
                    position += 1
                case 2:
                    guard end - position >= 2 else { throw corrupt("truncated copy") }
                    length = Int(tag >> 2) + 1
                    offset = Int(input[position]) | Int(input[position + 1]) << 8
                    position += 2
                default:
                    guard end - position >= 4 else { throw corrupt("truncated copy") }
                    length = Int(tag >> 2) + 1
                    for index in 0..<4 { offset |= Int(input[position + index]) << (8 * index) }
                    position += 4
                }
                guard offset > 0, offset <= written else { throw corrupt("copy offset \(offset) with \(written) bytes produced") }
                guard expectedLength - written >= length else { throw corrupt("output longer than declared") }
                // Byte by byte: a copy may overlap what it produces (offset < length repeats a pattern).
                for index in 0..<length { out[written + index] = out[written + index - offset] }
                written += length
            }
        }
        guard written == expectedLength else { throw corrupt("block ends after \(written) of \(expectedLength) bytes") }
        return output
    }
}
