import Foundation

/// The bytes libFuzzer hands `LLVMFuzzerTestOneInput`, with helpers to split them.
public struct FuzzInput {
    public let bytes: [UInt8]

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    }

    /// The first byte (a selector) and the rest; nil when the input is empty.
    public var selectorAndRest: (UInt8, ArraySlice<UInt8>)? {
        guard let first = bytes.first else { return nil }
        return (first, bytes.dropFirst())
    }

    /// The input as UTF-8 text (invalid sequences repaired, as Swift's `String(decoding:)` does).
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// A scratch file in shared memory (`/dev/shm` when there is one) that each input is written to,
/// for readers that take a path. One per process: libFuzzer runs inputs one at a time.
public final class ScratchFile: @unchecked Sendable {
    // Invariant: libFuzzer calls the target from one thread, one input at a time.
    public let folder: URL
    public let url: URL

    public init(name: String) {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        folder = URL(fileURLWithPath: base).appendingPathComponent("robosim-fuzz-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        url = folder.appendingPathComponent(name)
    }

    /// Writes `bytes` to the file (replacing it) and returns its URL.
    public func write(_ bytes: [UInt8]) -> URL {
        _ = FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        return url
    }

    deinit { try? FileManager.default.removeItem(at: folder) }
}
