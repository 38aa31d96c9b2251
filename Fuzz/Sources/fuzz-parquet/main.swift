import FuzzSupport
import Parquet

/// Parquet files (LeRobot datasets: `sim-collect merge`, replay, training from data): the reader's
/// Thrift footer, schema, levels, PLAIN and dictionary pages and Snappy must turn any damage into a
/// `ParquetError`, within the limits, never a trap. Small limits keep each run fast.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var limits = ParquetReader.Limits()
    limits.maxEntriesPerColumn = 1 << 16
    guard let table = try? ParquetReader.read(input.bytes, limits: limits) else { return 0 }
    for column in table.columns { _ = table.column(column.name) }
    return 0
}

runFuzzer(fuzz)
