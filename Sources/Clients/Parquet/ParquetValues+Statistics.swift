extension ParquetValues {
    /// The statistics of `range`, as parquet-cpp writes them: `null_count` 0 and the plain-encoded
    /// minimum and maximum (a byte array's bytes without their length). Floating-point NaNs are left
    /// out, a zero minimum is written as −0 and a zero maximum as +0 (so that either zero compares
    /// inside the range); with no value to compare, min and max are left out.
    func statistics(_ range: Range<Int>) -> Statistics {
        guard !range.isEmpty else { return Statistics() }
        switch self {
        case .boolean(let values):
            let slice = values[range]
            let min = slice.contains(false) ? 0 : 1 as UInt8
            let max = slice.contains(true) ? 1 : 0 as UInt8
            return Statistics(minValue: [min], maxValue: [max])
        case .int32(let values):
            let slice = values[range]
            return Statistics(minValue: littleEndian(slice.min()!), maxValue: littleEndian(slice.max()!))
        case .int64(let values):
            let slice = values[range]
            return Statistics(minValue: littleEndian(slice.min()!), maxValue: littleEndian(slice.max()!))
        case .float(let values):
            guard let (min, max) = floatingRange(values[range]) else { return Statistics() }
            return Statistics(minValue: littleEndian(min.bitPattern), maxValue: littleEndian(max.bitPattern))
        case .double(let values):
            guard let (min, max) = floatingRange(values[range]) else { return Statistics() }
            return Statistics(minValue: littleEndian(min.bitPattern), maxValue: littleEndian(max.bitPattern))
        case .byteArray(let bytes, let offsets):
            return bytes.withUnsafeBufferPointer { bytes in
                func value(_ index: Int) -> UnsafeBufferPointer<UInt8> {
                    UnsafeBufferPointer(rebasing: bytes[offsets[index]..<offsets[index + 1]])
                }
                var min = value(range.lowerBound)
                var max = min
                for index in range.dropFirst() {
                    let candidate = value(index)
                    if candidate.lexicographicallyPrecedes(min) { min = candidate }
                    if max.lexicographicallyPrecedes(candidate) { max = candidate }
                }
                return Statistics(minValue: Array(min), maxValue: Array(max))
            }
        }
    }

    /// The smallest and largest non-NaN values, zeros signed as the statistics want; nil when all are NaN.
    private func floatingRange<Value: BinaryFloatingPoint>(_ values: ArraySlice<Value>) -> (Value, Value)? {
        var min = Value.nan
        var max = Value.nan
        for value in values where !value.isNaN {
            if min.isNaN || value < min { min = value }
            if max.isNaN || value > max { max = value }
        }
        guard !min.isNaN else { return nil }
        return (min == 0 ? -Value.zero : min, max == 0 ? Value.zero : max)
    }

    private func littleEndian<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}
