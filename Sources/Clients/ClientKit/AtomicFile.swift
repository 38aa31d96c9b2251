import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Durable, all-or-nothing file writes: the bytes go to a temporary file in the same folder,
/// which is flushed to disk and renamed over the destination; then the folder itself is flushed.
/// A crash (or `kill -9`) leaves either the old file or the new one, never a part of one.
public enum AtomicFile {
    /// Writes `bytes` to `url` atomically, creating the folder if needed.
    public static func write(_ bytes: some DataProtocol, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = temporaryURL(for: url)
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
            try handle.close()
            try moveIntoPlace(temporary, url)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// A temporary name beside `url` that dataset readers ignore (a hidden name, no .parquet/.mp4 suffix).
    public static func temporaryURL(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    }

    /// Renames a finished temporary file (already flushed) over `url`, then flushes the folder.
    public static func moveIntoPlace(_ temporary: URL, _ url: URL) throws {
        guard rename(temporary.path, url.path) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO, userInfo: [NSFilePathErrorKey: url.path])
        }
        syncFolder(url.deletingLastPathComponent())
    }

    /// Flushes a file's contents to disk.
    public static func sync(_ url: URL) throws {
        let handle = try FileHandle(forUpdating: url)
        try handle.synchronize()
        try handle.close()
    }

    /// Flushes a folder (a rename in it, on disk).
    public static func syncFolder(_ folder: URL) {
        let fd = open(folder.path, O_RDONLY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
