/// Reads one leaf column's chunks, row group after row group, and assembles them into a
/// ``ParquetColumn``: page headers, decompression, levels, values.
///
/// Levels become per-list item counts as they are read (a list column's `listOffsets`), values
/// are appended to one array: memory grows with what the file holds, each count checked against
/// the bytes that hold it or against `maxEntries` first.
struct ColumnChunkReader {
    let leaf: ColumnSchema
    let bytes: [UInt8]
    /// Where page data must end: the footer's start.
    let dataEnd: Int
    let maxEntries: Int

    private var values: ValueBuilder
    /// Per list level: the item count of each list so far.
    private var counts: [[Int]]
    private var entries = 0
    private var rows = 0
    /// The dictionary of the current chunk, when it has one.
    private var dictionary: ValueBuilder?

    init(leaf: ColumnSchema, bytes: [UInt8], dataEnd: Int, maxEntries: Int) {
        self.leaf = leaf
        self.bytes = bytes
        self.dataEnd = dataEnd
        self.maxEntries = maxEntries
        values = ValueBuilder(type: leaf.type)
        counts = Array(repeating: [], count: leaf.maxRepetition)
    }

    private func corrupt(_ what: String) -> ParquetError { ParquetError(.corrupt, "column '\(leaf.name)': \(what)") }
    private func unsupported(_ what: String) -> ParquetError { ParquetError(.unsupported, "column '\(leaf.name)': \(what)") }

    /// Reads one column chunk of a row group of `rows` rows.
    mutating func read(_ chunk: FooterReader.Chunk, rows expectedRows: Int) throws(ParquetError) {
        guard chunk.filePath == nil else { throw unsupported("its chunk lives in another file (\(chunk.filePath!))") }
        guard chunk.hasMetaData else { throw corrupt("a chunk without metadata") }
        guard chunk.type == leaf.type.rawValue else { throw corrupt("chunk type \(chunk.type), schema type \(leaf.type.rawValue)") }
        guard chunk.codec == CompressionCodec.uncompressed.rawValue || chunk.codec == CompressionCodec.snappy.rawValue else {
            throw unsupported("compression codec \(chunk.codec) (only uncompressed and Snappy are read)")
        }
        guard chunk.numValues >= 0, chunk.numValues <= Int64(maxEntries - entries) else {
            throw ParquetError(.tooLarge, "column '\(leaf.name)': \(chunk.numValues) more values; the limit is \(maxEntries)")
        }
        var start = chunk.dataPageOffset
        if let dictionary = chunk.dictionaryPageOffset, dictionary > 0, dictionary < start { start = dictionary }
        guard start >= 4, chunk.totalCompressedSize >= 0, start < Int64(dataEnd), chunk.totalCompressedSize <= Int64(dataEnd) - start else {
            throw corrupt("chunk at \(start) of \(chunk.totalCompressedSize) bytes outside the data (\(dataEnd) bytes)")
        }
        var position = Int(start)
        let end = Int(start + chunk.totalCompressedSize)
        let chunkEntries = Int(chunk.numValues)
        let firstEntry = entries
        let firstRow = rows
        dictionary = nil
        while entries - firstEntry < chunkEntries {
            guard position < end else { throw corrupt("chunk ends after \(entries - firstEntry) of \(chunkEntries) values") }
            let header = try FooterReader.pageHeader(bytes, position: &position, end: end)
            guard header.compressedSize >= 0, header.uncompressedSize >= 0, Int(header.compressedSize) <= end - position else {
                throw corrupt("page of \(header.compressedSize) bytes with \(end - position) left in the chunk")
            }
            let body = position..<position + Int(header.compressedSize)
            position = body.upperBound
            switch header.type {
            case 0, 3:  // DATA_PAGE, DATA_PAGE_V2
                guard header.hasPageHeader, header.numValues >= 0, Int(header.numValues) <= chunkEntries - (entries - firstEntry) else {
                    throw corrupt("a data page of \(header.numValues) values with \(chunkEntries - (entries - firstEntry)) left")
                }
                try readDataPage(header, body: body, codec: chunk.codec, v2: header.type == 3)
            case 2:  // DICTIONARY_PAGE
                guard header.hasPageHeader, dictionary == nil, entries == firstEntry else { throw corrupt("a misplaced dictionary page") }
                guard header.encoding == Encoding.plain.rawValue || header.encoding == 2 else {
                    throw unsupported("dictionary encoding \(header.encoding)")
                }
                let page = try decompress(body, codec: chunk.codec, size: Int(header.uncompressedSize))
                var dictionary = ValueBuilder(type: leaf.type)
                guard header.numValues >= 0 else { throw corrupt("a dictionary of \(header.numValues) values") }
                _ = try dictionary.appendPlain(page, range: page.indices, count: Int(header.numValues))
                self.dictionary = dictionary
            default: continue  // index pages and unknown pages: skipped
            }
        }
        guard rows - firstRow == expectedRows else { throw corrupt("chunk holds \(rows - firstRow) rows, its row group \(expectedRows)") }
    }

    private func decompress(_ range: Range<Int>, codec: Int32, size: Int) throws(ParquetError) -> [UInt8] {
        if codec == CompressionCodec.snappy.rawValue { return try Snappy.decompress(bytes[range], expectedLength: size) }
        guard range.count == size else { throw corrupt("an uncompressed page of \(range.count) bytes, its header says \(size)") }
        return Array(bytes[range])
    }

    private mutating func readDataPage(_ header: FooterReader.PageHeader, body: Range<Int>, codec: Int32, v2: Bool) throws(ParquetError) {
        let count = Int(header.numValues)
        // Levels fit a byte: the schema nests at most `Limits.maxNesting` deep.
        var repetition: [UInt8] = []
        var definition: [UInt8] = []
        let page: [UInt8]
        var position: Int
        if v2 {
            let levelBytes = Int(header.repetitionBytes) + Int(header.definitionBytes)
            guard header.repetitionBytes >= 0, header.definitionBytes >= 0, levelBytes <= body.count else {
                throw corrupt("v2 page levels of \(levelBytes) bytes in a page of \(body.count)")
            }
            let repetitionEnd = body.lowerBound + Int(header.repetitionBytes)
            if leaf.maxRepetition > 0 {
                try RLEHybrid.decode(bytes, range: body.lowerBound..<repetitionEnd, bitWidth: bitWidth(leaf.maxRepetition), count: count, into: &repetition)
            }
            if leaf.maxDefinition > 0 {
                try RLEHybrid.decode(bytes, range: repetitionEnd..<repetitionEnd + Int(header.definitionBytes),
                                     bitWidth: bitWidth(leaf.maxDefinition), count: count, into: &definition)
            }
            let valueRange = body.lowerBound + levelBytes..<body.upperBound
            let valueSize = Int(header.uncompressedSize) - levelBytes
            guard valueSize >= 0 else { throw corrupt("v2 page smaller than its levels") }
            page = header.isCompressed ? try decompress(valueRange, codec: codec, size: valueSize) : Array(bytes[valueRange])
            position = 0
        } else {
            page = try decompress(body, codec: codec, size: Int(header.uncompressedSize))
            position = 0
            if leaf.maxRepetition > 0 { position = try lengthPrefixedLevels(page, at: position, encoding: header.repetitionEncoding, max: leaf.maxRepetition, count: count, into: &repetition) }
            if leaf.maxDefinition > 0 { position = try lengthPrefixedLevels(page, at: position, encoding: header.definitionEncoding, max: leaf.maxDefinition, count: count, into: &definition) }
        }
        // Levels to lists; count the values present.
        var present = 0
        if leaf.maxRepetition == 0 {
            for level in definition where Int(level) != leaf.maxDefinition { throw unsupported("null values (definition level \(level))") }
            present = count
            rows += count
        } else {
            for index in 0..<count {
                let r = Int(repetition[index]), d = Int(definition[index])
                guard r <= leaf.maxRepetition, d <= leaf.maxDefinition else { throw corrupt("levels \(r)/\(d) above their maxima") }
                var level: Int
                if r == 0 {
                    rows += 1
                    counts[0].append(0)
                    level = 0
                } else {
                    // A new item of the open list at level r - 1: a new list of level r, or the leaf.
                    guard !counts[r - 1].isEmpty, d >= leaf.itemDefinition[r - 1] else { throw corrupt("a repeated entry of definition level \(d)") }
                    counts[r - 1][counts[r - 1].count - 1] += 1
                    level = r
                    if level < leaf.maxRepetition { counts[level].append(0) }
                }
                // The list just opened at `level`: empty, or holding one item (the next level's list, or the leaf).
                while level < leaf.maxRepetition {
                    if d < leaf.listDefinition[level] { throw unsupported("null lists (definition level \(d))") }
                    if d < leaf.itemDefinition[level] { break }
                    counts[level][counts[level].count - 1] += 1
                    level += 1
                    if level < leaf.maxRepetition { counts[level].append(0) }
                }
                if level == leaf.maxRepetition {
                    guard d == leaf.maxDefinition else { throw unsupported("null values (definition level \(d))") }
                    present += 1
                }
            }
        }
        entries += count
        switch header.encoding {
        case Encoding.plain.rawValue:
            _ = try values.appendPlain(page, range: position..<page.count, count: present)
        case 2, 8:  // PLAIN_DICTIONARY, RLE_DICTIONARY
            guard let dictionary else { throw corrupt("dictionary-encoded page without a dictionary page") }
            guard position < page.count else { throw corrupt("dictionary page data without a bit width") }
            let width = Int(page[position])
            var indices: [UInt32] = []
            try RLEHybrid.decode(page, range: position + 1..<page.count, bitWidth: width, count: present, into: &indices)
            try values.append(from: dictionary, indices: indices)
        case Encoding.rle.rawValue where leaf.type == .boolean:
            guard page.count - position >= 4 else { throw corrupt("RLE booleans without a length") }
            let length = Int(page[position]) | Int(page[position + 1]) << 8 | Int(page[position + 2]) << 16 | Int(page[position + 3]) << 24
            guard length <= page.count - position - 4 else { throw corrupt("RLE booleans of \(length) bytes past the page") }
            var bits: [UInt32] = []
            try RLEHybrid.decode(page, range: position + 4..<position + 4 + length, bitWidth: 1, count: present, into: &bits)
            values.appendBooleans(bits)
        default:
            throw unsupported("value encoding \(header.encoding)")
        }
    }

    private func bitWidth(_ maxLevel: Int) -> Int { Int.bitWidth - maxLevel.leadingZeroBitCount }

    /// v1 levels: RLE hybrid after a 4-byte length; returns where they end.
    private func lengthPrefixedLevels(_ page: [UInt8], at position: Int, encoding: Int32, max: Int, count: Int,
                                      into output: inout [UInt8]) throws(ParquetError) -> Int {
        guard encoding == Encoding.rle.rawValue else { throw unsupported("level encoding \(encoding)") }
        guard page.count - position >= 4 else { throw corrupt("levels without a length") }
        let length = Int(page[position]) | Int(page[position + 1]) << 8 | Int(page[position + 2]) << 16 | Int(page[position + 3]) << 24
        guard length <= page.count - position - 4 else { throw corrupt("levels of \(length) bytes past the page") }
        try RLEHybrid.decode(page, range: position + 4..<position + 4 + length, bitWidth: bitWidth(max), count: count, into: &output)
        return position + 4 + length
    }

    /// The column read so far.
    func column() throws(ParquetError) -> ParquetColumn {
        let offsets = counts.map { level -> [Int] in
            var out = [0]
            out.reserveCapacity(level.count + 1)
            var total = 0
            for count in level {
                total += count
                out.append(total)
            }
            return out
        }
        // Each level's items are the next level's lists (or the values).
        for (k, level) in offsets.enumerated() {
            let next = k + 1 < offsets.count ? offsets[k + 1].count - 1 : values.count
            guard level.last == next else { throw corrupt("list level \(k) holds \(level.last ?? 0) items, the next level \(next)") }
        }
        return ParquetColumn(name: leaf.name, values: values.values, listOffsets: offsets)
    }
}
