extension ParquetColumn {
    /// The rows of `parts`, one after another: one column of their common name, type and list depth
    /// (what packing several episodes' data into one file needs). Throws `.invalidArgument` when
    /// the parts differ in name, type or depth, or when there are none.
    public static func concatenated(_ parts: [ParquetColumn]) throws(ParquetError) -> ParquetColumn {
        guard let first = parts.first else { throw ParquetError(.invalidArgument, "no columns to concatenate") }
        for part in parts where part.name != first.name || part.listDepth != first.listDepth || part.values.physicalType != first.values.physicalType {
            throw ParquetError(.invalidArgument, "column '\(part.name)' cannot follow '\(first.name)': another name, type or list depth")
        }
        if parts.count == 1 { return first }
        // Each level's offsets continue from where the previous part's ended.
        var levels = [[Int]](repeating: [0], count: first.listDepth)
        for part in parts {
            for (k, offsets) in part.listOffsets.enumerated() {
                let base = levels[k].last!
                levels[k].append(contentsOf: offsets.dropFirst().map { base + $0 })
            }
        }
        let values: ParquetValues
        switch first.values {
        case .boolean: values = .boolean(parts.flatMap { $0.bools! })
        case .int32: values = .int32(parts.flatMap { $0.int32s! })
        case .int64: values = .int64(parts.flatMap { $0.int64s! })
        case .float: values = .float(parts.flatMap { $0.floats! })
        case .double: values = .double(parts.flatMap { $0.doubles! })
        case .byteArray:
            var bytes: [UInt8] = []
            var offsets = [0]
            for part in parts {
                guard case .byteArray(let b, let o) = part.values else { continue }
                let base = bytes.count
                bytes.append(contentsOf: b)
                offsets.append(contentsOf: o.dropFirst().map { base + $0 })
            }
            values = .byteArray(bytes: bytes, offsets: offsets)
        }
        return ParquetColumn(name: first.name, values: values, listOffsets: levels)
    }
}
