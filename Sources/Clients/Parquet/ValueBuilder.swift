/// A column's leaf values as they are read, page after page.
struct ValueBuilder {
    private(set) var values: ParquetValues

    init(type: PhysicalType) {
        switch type {
        case .boolean: values = .boolean([])
        case .int32: values = .int32([])
        case .int64: values = .int64([])
        case .float: values = .float([])
        case .double: values = .double([])
        case .byteArray: values = .byteArray(bytes: [], offsets: [0])
        }
    }

    var count: Int { values.count }

    /// Appends `count` PLAIN-encoded values from `page[range]`; returns where they end. The count is
    /// checked against the bytes before anything is reserved.
    mutating func appendPlain(_ page: [UInt8], range: Range<Int>, count: Int) throws(ParquetError) -> Int {
        func short(_ needed: Int) -> ParquetError {
            ParquetError(.corrupt, "\(count) PLAIN values need \(needed) bytes, the page has \(range.count)")
        }
        guard count >= 0 else { throw ParquetError(.corrupt, "a negative value count") }
        switch values {
        case .boolean(var array):
            guard (count + 7) / 8 <= range.count else { throw short((count + 7) / 8) }
            values = .boolean([])
            array.reserveCapacity(array.count + count)
            for index in 0..<count { array.append(page[range.lowerBound + index / 8] >> UInt8(index % 8) & 1 == 1) }
            values = .boolean(array)
            return range.lowerBound + (count + 7) / 8
        case .int32(var array):
            guard count <= range.count / 4 else { throw short(count * 4) }
            values = .int32([])
            array.reserveCapacity(array.count + count)
            for index in 0..<count { array.append(Int32(bitPattern: Self.word32(page, range.lowerBound + 4 * index))) }
            values = .int32(array)
            return range.lowerBound + 4 * count
        case .int64(var array):
            guard count <= range.count / 8 else { throw short(count * 8) }
            values = .int64([])
            array.reserveCapacity(array.count + count)
            for index in 0..<count { array.append(Int64(bitPattern: Self.word64(page, range.lowerBound + 8 * index))) }
            values = .int64(array)
            return range.lowerBound + 8 * count
        case .float(var array):
            guard count <= range.count / 4 else { throw short(count * 4) }
            values = .float([])
            array.reserveCapacity(array.count + count)
            for index in 0..<count { array.append(Float(bitPattern: Self.word32(page, range.lowerBound + 4 * index))) }
            values = .float(array)
            return range.lowerBound + 4 * count
        case .double(var array):
            guard count <= range.count / 8 else { throw short(count * 8) }
            values = .double([])
            array.reserveCapacity(array.count + count)
            for index in 0..<count { array.append(Double(bitPattern: Self.word64(page, range.lowerBound + 8 * index))) }
            values = .double(array)
            return range.lowerBound + 8 * count
        case .byteArray(var bytes, var offsets):
            // Each value takes at least its 4-byte length.
            guard count <= range.count / 4 else { throw short(count * 4) }
            values = .boolean([])
            offsets.reserveCapacity(offsets.count + count)
            var position = range.lowerBound
            for _ in 0..<count {
                guard range.upperBound - position >= 4 else { throw short(position + 4 - range.lowerBound) }
                let length = Int(Self.word32(page, position))
                position += 4
                guard length <= range.upperBound - position else { throw ParquetError(.corrupt, "a byte array of \(length) bytes past the page") }
                bytes.append(contentsOf: page[position..<position + length])
                position += length
                offsets.append(bytes.count)
            }
            values = .byteArray(bytes: bytes, offsets: offsets)
            return position
        }
    }

    /// Appends `dictionary`'s values at `indices` (each checked).
    mutating func append(from dictionary: ValueBuilder, indices: [UInt32]) throws(ParquetError) {
        let size = dictionary.count
        if let bad = indices.first(where: { Int($0) >= size }) {
            throw ParquetError(.corrupt, "dictionary index \(bad) in a dictionary of \(size)")
        }
        switch (values, dictionary.values) {
        case (.boolean(var array), .boolean(let source)):
            values = .boolean([]); array.append(contentsOf: indices.map { source[Int($0)] }); values = .boolean(array)
        case (.int32(var array), .int32(let source)):
            values = .int32([]); array.append(contentsOf: indices.map { source[Int($0)] }); values = .int32(array)
        case (.int64(var array), .int64(let source)):
            values = .int64([]); array.append(contentsOf: indices.map { source[Int($0)] }); values = .int64(array)
        case (.float(var array), .float(let source)):
            values = .float([]); array.append(contentsOf: indices.map { source[Int($0)] }); values = .float(array)
        case (.double(var array), .double(let source)):
            values = .double([]); array.append(contentsOf: indices.map { source[Int($0)] }); values = .double(array)
        case (.byteArray(var bytes, var offsets), .byteArray(let sourceBytes, let sourceOffsets)):
            values = .boolean([])
            for index in indices {
                bytes.append(contentsOf: sourceBytes[sourceOffsets[Int(index)]..<sourceOffsets[Int(index) + 1]])
                offsets.append(bytes.count)
            }
            values = .byteArray(bytes: bytes, offsets: offsets)
        default:
            throw ParquetError(.corrupt, "a dictionary of another type")
        }
    }

    /// Appends booleans decoded from the RLE hybrid (bit width 1).
    mutating func appendBooleans(_ bits: [UInt32]) {
        guard case .boolean(var array) = values else { return }
        values = .boolean([])
        array.append(contentsOf: bits.map { $0 != 0 })
        values = .boolean(array)
    }

    private static func word32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    private static func word64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        UInt64(word32(bytes, at)) | UInt64(word32(bytes, at + 4)) << 32
    }
}
