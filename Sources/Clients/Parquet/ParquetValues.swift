/// A column's leaf values, by physical type; strings as their UTF-8 bytes back to back.
enum ParquetValues: Sendable, Equatable {
    case boolean([Bool])
    case int32([Int32])
    case int64([Int64])
    case float([Float])
    case double([Double])
    /// Value `i` is `bytes[offsets[i]..<offsets[i + 1]]`.
    case byteArray(bytes: [UInt8], offsets: [Int])

    /// UTF-8 strings, stored as `byteArray`.
    static func strings(_ strings: [String]) -> ParquetValues {
        var offsets = [Int]()
        offsets.reserveCapacity(strings.count + 1)
        offsets.append(0)
        var total = 0
        for string in strings {
            total += string.utf8.count
            offsets.append(total)
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(total)
        for string in strings { bytes.append(contentsOf: string.utf8) }
        return .byteArray(bytes: bytes, offsets: offsets)
    }

    var count: Int {
        switch self {
        case .boolean(let values): values.count
        case .int32(let values): values.count
        case .int64(let values): values.count
        case .float(let values): values.count
        case .double(let values): values.count
        case .byteArray(_, let offsets): offsets.count - 1
        }
    }

    var physicalType: PhysicalType {
        switch self {
        case .boolean: .boolean
        case .int32: .int32
        case .int64: .int64
        case .float: .float
        case .double: .double
        case .byteArray: .byteArray
        }
    }

    /// The bytes PLAIN encoding gives `range`.
    func plainSize(_ range: Range<Int>) -> Int {
        switch self {
        case .boolean: (range.count + 7) / 8
        case .int64, .double: range.count * 8
        case .int32, .float: range.count * 4
        case .byteArray(_, let offsets): range.count * 4 + offsets[range.upperBound] - offsets[range.lowerBound]
        }
    }

    /// Appends `range` PLAIN-encoded: booleans bit-packed least significant bit first, numbers
    /// little-endian, byte arrays each after its 4-byte little-endian length.
    func appendPlain(_ range: Range<Int>, to output: inout [UInt8]) {
        switch self {
        case .boolean(let values):
            var byte: UInt8 = 0
            for (index, value) in values[range].enumerated() {
                if value { byte |= 1 << UInt8(index % 8) }
                if index % 8 == 7 {
                    output.append(byte)
                    byte = 0
                }
            }
            if range.count % 8 != 0 { output.append(byte) }
        case .int32(let values): appendLittleEndian(values[range], to: &output)
        case .int64(let values): appendLittleEndian(values[range], to: &output)
        case .float(let values):
            #if _endian(little)
                values[range].withUnsafeBytes { output.append(contentsOf: $0) }
            #else
                appendLittleEndian(values[range].map(\.bitPattern), to: &output)
            #endif
        case .double(let values):
            #if _endian(little)
                values[range].withUnsafeBytes { output.append(contentsOf: $0) }
            #else
                appendLittleEndian(values[range].map(\.bitPattern), to: &output)
            #endif
        case .byteArray(let bytes, let offsets):
            for index in range {
                let value = offsets[index]..<offsets[index + 1]
                appendLittleEndian(CollectionOfOne(UInt32(value.count)), to: &output)
                output.append(contentsOf: bytes[value])
            }
        }
    }
}

/// Appends each integer's bytes, least significant first.
func appendLittleEndian<Values: Collection>(_ values: Values, to output: inout [UInt8]) where Values.Element: FixedWidthInteger {
    output.reserveCapacity(output.count + values.count * Values.Element.bitWidth / 8)
    #if _endian(little)
        if let done = values.withContiguousStorageIfAvailable({ output.append(contentsOf: UnsafeRawBufferPointer($0)) }) {
            return done
        }
    #endif
    for value in values {
        withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) }
    }
}
