/// Writes one column's rows of one row group as v1 data pages, and describes them as a `ColumnChunk`.
///
/// A page holds whole rows (so a list never spans two pages) and ends at the first row that takes
/// its PLAIN values to `pageSize` bytes. Its body, compressed as a whole, is the repetition levels
/// (list columns only) and the definition levels, each after its 4-byte little-endian length, then
/// the values.
struct ColumnChunkWriter {
    let column: ParquetColumn
    let compression: ParquetCompression
    let pageSize: Int
    /// The page body being built, reused from page to page.
    private var body: [UInt8] = []

    init(column: ParquetColumn, compression: ParquetCompression, pageSize: Int) {
        self.column = column
        self.compression = compression
        self.pageSize = pageSize
    }

    /// Appends the pages of `rows` (not empty) to `output`, whose count is their file offset.
    mutating func write(_ rows: Range<Int>, to output: inout [UInt8]) throws(ParquetError) -> ColumnChunk {
        let dataPageOffset = output.count
        var uncompressedSize = 0
        var compressedSize = 0
        var levelCount = 0
        var pageStart = rows.lowerBound
        while pageStart < rows.upperBound {
            let pageEnd = pageEnd(from: pageStart, limit: rows.upperBound)
            let page = try writePage(pageStart..<pageEnd, to: &output)
            uncompressedSize += page.uncompressedSize
            compressedSize += page.compressedSize
            levelCount += page.levelCount
            pageStart = pageEnd
        }
        return ColumnChunk(
            type: column.values.physicalType, path: Schema.path(column), codec: compression == .snappy ? .snappy : .uncompressed,
            numValues: Int64(levelCount), totalUncompressedSize: Int64(uncompressedSize), totalCompressedSize: Int64(compressedSize),
            dataPageOffset: Int64(dataPageOffset), statistics: column.values.statistics(column.valueRange(rows)))
    }

    /// Where the page starting at row `start` ends: past the first row that brings its values to
    /// `pageSize` bytes, or at `limit`.
    private func pageEnd(from start: Int, limit: Int) -> Int {
        let firstValue = column.valueRange(start..<start).lowerBound
        var end = start + 1
        while end < limit && column.values.plainSize(firstValue..<column.valueRange(end..<end).lowerBound) < pageSize {
            end += 1
        }
        return end
    }

    /// Appends the page header and body of `rows`; sizes include the header.
    private mutating func writePage(
        _ rows: Range<Int>, to output: inout [UInt8]
    ) throws(ParquetError) -> (uncompressedSize: Int, compressedSize: Int, levelCount: Int) {
        body.removeAll(keepingCapacity: true)
        let values = column.valueRange(rows)
        let levelCount: Int
        if column.listDepth == 0 {
            // An optional leaf with no nulls: one run of definition level 1.
            levelCount = values.count
            Self.appendLengthPrefixed(to: &body) { RLEHybrid.appendRun(1, count: values.count, bitWidth: 1, to: &$0) }
        } else {
            var levels = Levels(offsets: column.listOffsets)
            levels.appendRows(rows)
            levelCount = levels.definition.count
            Self.appendLengthPrefixed(to: &body) {
                RLEHybrid.append(levels.repetition, bitWidth: RLEHybrid.bitWidth(levels.maxRepetition), to: &$0)
            }
            Self.appendLengthPrefixed(to: &body) {
                RLEHybrid.append(levels.definition, bitWidth: RLEHybrid.bitWidth(levels.maxDefinition), to: &$0)
            }
        }
        column.values.appendPlain(values, to: &body)
        let stored = compression == .snappy ? Snappy.compress(body) : body
        guard let uncompressedSize = Int32(exactly: body.count), let compressedSize = Int32(exactly: stored.count),
            let numValues = Int32(exactly: levelCount)
        else {
            throw ParquetError(.tooLarge, "a page of column '\(column.name)' has \(body.count) bytes and \(levelCount) levels")
        }
        let header = DataPageHeader(uncompressedSize: uncompressedSize, compressedSize: compressedSize, numValues: numValues).bytes
        output.append(contentsOf: header)
        output.append(contentsOf: stored)
        return (header.count + body.count, header.count + stored.count, levelCount)
    }

    /// Appends what `fill` appends, after its length as 4 little-endian bytes.
    private static func appendLengthPrefixed(to buffer: inout [UInt8], _ fill: (inout [UInt8]) -> Void) {
        let start = buffer.count
        buffer.append(contentsOf: [0, 0, 0, 0])
        fill(&buffer)
        let length = UInt32(buffer.count - start - 4)
        for index in 0..<4 { buffer[start + index] = UInt8(truncatingIfNeeded: length >> (8 * index)) }
    }
}
