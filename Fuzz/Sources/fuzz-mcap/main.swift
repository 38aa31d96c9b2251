import ClientKit
import Foundation
import FuzzSupport

/// MCAP files (`simctl play`, datasets recorded with `simctl record`): `MCAPReader` walks every
/// record, chunks included; a damaged file must be an `MCAP.FormatError`, never a trap.
enum Fixture {
    static let scratch = ScratchFile(name: "input.mcap")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let url = Fixture.scratch.write(input.bytes)
    guard var reader = try? MCAPReader(url: url) else { return 0 }
    var count = 0, bytes = 0
    try? reader.forEachMessage { message, channel, schema in
        count += 1
        bytes += message.data.count
        precondition(bytes <= input.bytes.count, "messages carry more bytes than the file")
        if let channel { precondition(channel.id == message.channelID) }
        if let schema, let channel { precondition(schema.id == channel.schemaID) }
    }
    precondition(count <= input.bytes.count / 9, "more messages than records fit in the file")
    return 0
}

runFuzzer(fuzz)
