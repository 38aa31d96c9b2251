/// A Snappy compressor for the raw block format (what Parquet's SNAPPY codec stores in a page).
///
/// The block is a varint of the uncompressed length, then elements: literals (bytes stored as they
/// are) and copies (a length and a back-reference offset into what has been produced). The input is
/// compressed in fragments of 64 KiB, each with a fresh hash table of 4-byte sequences, so every
/// offset fits two bytes; a miss advances faster the longer matches fail to come (cheap on
/// incompressible data).
enum Snappy {
    /// The largest fragment compressed with one hash table; offsets stay below 65536.
    static let fragmentSize = 1 << 16

    /// The most bytes `compress` can produce for `count` input bytes.
    static func maxCompressedLength(_ count: Int) -> Int { 32 + count + count / 6 }

    /// `input` as one Snappy block.
    static func compress(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(maxCompressedLength(input.count))
        Varint.append(UInt64(input.count), to: &output)
        // A table no larger than the first (largest) fragment needs: small pages stay cheap.
        let tableBits = max(8, min(14, Int.bitWidth - min(input.count, fragmentSize).leadingZeroBitCount))
        var table = [Int32](repeating: -1, count: 1 << tableBits)
        input.withUnsafeBufferPointer { source in
            var start = 0
            while start < source.count {
                let end = min(start + fragmentSize, source.count)
                compressFragment(UnsafeBufferPointer(rebasing: source[start..<end]), table: &table, tableBits: tableBits, into: &output)
                start = end
            }
        }
        return output
    }

    /// Appends the elements for `fragment` (at most 64 KiB); positions in `table` are relative to its start.
    private static func compressFragment(
        _ fragment: UnsafeBufferPointer<UInt8>, table: inout [Int32], tableBits: Int, into output: inout [UInt8]
    ) {
        let count = fragment.count
        var literalStart = 0
        // Shorter fragments are not worth a search: a copy needs 4 bytes, and saves little.
        if count >= 16, let base = fragment.baseAddress.map(UnsafeRawPointer.init) {
            for slot in table.indices { table[slot] = -1 }
            func word(_ at: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
            func hash(_ word: UInt32) -> Int { Int((word &* 0x1E35_A7BD) >> UInt32(32 - tableBits)) }
            let lastWordStart = count - 4
            var position = 0
            var skip = 32
            while position <= lastWordStart {
                let current = word(position)
                let slot = hash(current)
                let candidate = Int(table[slot])
                table[slot] = Int32(position)
                guard candidate >= 0, word(candidate) == current else {
                    position += skip >> 5
                    skip += 1
                    continue
                }
                appendLiteral(UnsafeBufferPointer(rebasing: fragment[literalStart..<position]), to: &output)
                let length = 4 + matchLength(base, count: count, earlier: candidate + 4, later: position + 4)
                appendCopy(offset: position - candidate, length: length, to: &output)
                position += length
                literalStart = position
                skip = 32
                if position - 1 <= lastWordStart { table[hash(word(position - 1))] = Int32(position - 1) }
            }
        }
        appendLiteral(UnsafeBufferPointer(rebasing: fragment[literalStart..<count]), to: &output)
    }

    /// How many bytes from `later` on equal those from `earlier` on (`earlier < later`), up to the end.
    private static func matchLength(_ base: UnsafeRawPointer, count: Int, earlier: Int, later: Int) -> Int {
        var length = 0
        while later + length + 8 <= count {
            let a = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: earlier + length, as: UInt64.self))
            let b = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: later + length, as: UInt64.self))
            let difference = a ^ b
            if difference != 0 { return length + difference.trailingZeroBitCount / 8 }
            length += 8
        }
        while later + length < count
            && base.load(fromByteOffset: earlier + length, as: UInt8.self) == base.load(fromByteOffset: later + length, as: UInt8.self)
        {
            length += 1
        }
        return length
    }

    /// A literal element: tag `00` with length − 1 in the tag below 60, else in the 1–4 bytes that follow.
    private static func appendLiteral(_ bytes: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let stored = UInt32(bytes.count - 1)
        if stored < 60 {
            output.append(UInt8(stored) << 2)
        } else {
            let lengthBytes = (32 - stored.leadingZeroBitCount + 7) / 8
            output.append(UInt8(59 + lengthBytes) << 2)
            for index in 0..<lengthBytes { output.append(UInt8(truncatingIfNeeded: stored >> (8 * index))) }
        }
        output.append(contentsOf: bytes)
    }

    /// Copy elements for a match of `length` ≥ 4 at `offset` < 65536: tag `01` (length 4–11, offset
    /// below 2048, 11-bit offset) where it fits, else tag `10` (length 1–64, 16-bit offset).
    private static func appendCopy(offset: Int, length: Int, to output: inout [UInt8]) {
        var rest = length
        // Leave at least 4 for the last element, so that it can use the short form.
        while rest >= 68 {
            appendCopy2(offset: offset, length: 64, to: &output)
            rest -= 64
        }
        if rest > 64 {
            appendCopy2(offset: offset, length: 60, to: &output)
            rest -= 60
        }
        if rest <= 11 && offset < 2048 {
            output.append(0b01 | UInt8(rest - 4) << 2 | UInt8(offset >> 8) << 5)
            output.append(UInt8(truncatingIfNeeded: offset))
        } else {
            appendCopy2(offset: offset, length: rest, to: &output)
        }
    }

    private static func appendCopy2(offset: Int, length: Int, to output: inout [UInt8]) {
        output.append(0b10 | UInt8(length - 1) << 2)
        output.append(UInt8(truncatingIfNeeded: offset))
        output.append(UInt8(truncatingIfNeeded: offset >> 8))
    }
}
