import Foundation

/// Encodes rgb8 frames into an MP4 with ffmpeg (Debian's has libsvtav1 and libx264), in a codec
/// and pixel format that LeRobot decodes: AV1 (libsvtav1, yuv420p, GOP 2, CRF 30) like LeRobot's
/// own writer, or H.264 (libx264, yuv420p) which encodes faster.
public struct VideoEncoder: Sendable {
    public enum Codec: String, Sendable, CaseIterable {
        case av1, h264

        var ffmpegArguments: [String] {
            switch self {
            case .av1: ["-c:v", "libsvtav1", "-pix_fmt", "yuv420p", "-g", "2", "-crf", "30", "-preset", "12"]
            case .h264: ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "2", "-crf", "18", "-preset", "veryfast"]
            }
        }

        /// The codec name LeRobot writes in info.json (`video.codec`).
        public var infoName: String { self == .av1 ? "av1" : "h264" }
    }

    public var codec: Codec
    /// The ffmpeg executable (default: the first `ffmpeg` on PATH).
    public var ffmpeg: String

    public init(codec: Codec = .av1, ffmpeg: String = "ffmpeg") {
        self.codec = codec
        self.ffmpeg = ffmpeg
    }

    /// Encodes `frames` (each `width * height * 3` bytes, rows top-down) at `fps` into `url`
    /// (written in place: callers write to a temporary name and rename). Throws with ffmpeg's
    /// last lines on failure.
    public func encode(_ frames: [[UInt8]], width: Int, height: Int, fps: Double, to url: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)", "-r", Self.rate(fps), "-i", "pipe:0"]
            + codec.ffmpegArguments + ["-r", Self.rate(fps), "-f", "mp4", url.path]
        let input = Pipe()
        process.standardInput = input
        // ffmpeg's messages go to a file, not a pipe: a full pipe would block it while we write frames.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-ffmpeg-\(getpid())-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw VideoError("cannot create \(log.path)") }
        defer { try? FileManager.default.removeItem(at: log) }
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw VideoError("cannot run \(ffmpeg) (install Debian's ffmpeg): \(error.localizedDescription)")
        }
        var writeError: Error?
        do {
            for frame in frames {
                guard frame.count == width * height * 3 else { throw VideoError("a frame has \(frame.count) bytes, expected \(width * height * 3)") }
                try input.fileHandleForWriting.write(contentsOf: frame)
            }
        } catch {
            writeError = error
        }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        if process.terminationStatus != 0 || writeError != nil {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            let last = text.split(separator: "\n").suffix(3).joined(separator: " | ")
            throw VideoError("ffmpeg (\(codec.rawValue)) failed with exit code \(process.terminationStatus): \(last.isEmpty ? "\(writeError.map { "\($0)" } ?? "")" : last)")
        }
    }

    /// Joins MP4 files of the same codec, size and rate into `url`, one after another, without
    /// re-encoding (ffmpeg's concat demuxer, `-c copy`): what packing episodes into one video file
    /// needs. Each input's frames keep their timing; the output is written in place (callers write
    /// to a temporary name and rename).
    public func concatenate(_ inputs: [URL], to url: URL) throws {
        guard !inputs.isEmpty else { throw VideoError("nothing to concatenate") }
        let list = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-concat-\(getpid())-\(UUID().uuidString).txt")
        let lines = inputs.map { "file '" + $0.path.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: list)
        defer { try? FileManager.default.removeItem(at: list) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0",
                             "-i", list.path, "-c", "copy", "-f", "mp4", url.path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw VideoError("cannot run \(ffmpeg) (install Debian's ffmpeg): \(error.localizedDescription)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let last = String(decoding: message.suffix(2000), as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: " | ")
            throw VideoError("ffmpeg (concat) failed with exit code \(process.terminationStatus): \(last)")
        }
    }

    /// fps as ffmpeg reads it: integers exactly, else a rational with denominator 1001 or 1000.
    static func rate(_ fps: Double) -> String {
        if fps == fps.rounded() { return String(Int(fps)) }
        return "\(Int((fps * 1000).rounded()))/1000"
    }
}

/// A video could not be encoded: a one-line reason.
public struct VideoError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
