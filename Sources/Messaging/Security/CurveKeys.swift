import CZeroMQ
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A CURVE (Curve25519) key pair in ZeroMQ's Z85 text form: 40 characters each.
///
/// Key files (written by `simctl keys generate PATH/NAME`):
/// - `NAME.pub`: the public key, one line.
/// - `NAME.secret`: mode 0600; line 1 the public key, line 2 the secret key.
public struct CurveKeyPair: Sendable, Equatable {
    /// The Z85 public key (40 characters): share it.
    public let publicKey: String
    /// The Z85 secret key (40 characters): keep it.
    public let secretKey: String

    /// A pair from its two Z85 keys; throws when either is not a key or they do not belong together.
    public init(publicKey: String, secretKey: String) throws(SecurityError) {
        guard CurveKey.isValid(publicKey) else { throw SecurityError("the public key is not a 40-character Z85 CURVE key") }
        guard let derived = CurveKey.publicKey(ofSecret: secretKey) else {
            throw SecurityError("the secret key is not a 40-character Z85 CURVE key")
        }
        guard derived == publicKey else {
            throw SecurityError("the secret key does not belong to the public key \(CurveKey.prefix(publicKey))")
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh random pair (zmq_curve_keypair).
    public static func generate() throws(SecurityError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else {
            throw SecurityError("this libzmq cannot make CURVE keys (built without CURVE support?)")
        }
        return try CurveKeyPair(publicKey: String(cString: pub), secretKey: String(cString: sec))
    }

    /// Reads a `.secret` file (line 1 public key, line 2 secret key). Throws naming the file.
    public static func read(secretFile path: String) throws(SecurityError) -> CurveKeyPair {
        let lines = try KeyFiles.lines(of: path)
        guard lines.count == 2 else {
            throw SecurityError("\(path): a .secret file holds two lines (public key, secret key); found \(lines.count)")
        }
        do {
            return try CurveKeyPair(publicKey: lines[0], secretKey: lines[1])
        } catch {
            throw SecurityError("\(path): \(error.description)")
        }
    }

    /// Writes `BASE.pub` and `BASE.secret` (0600), refusing to overwrite either. Returns both paths.
    @discardableResult
    public func write(base: String) throws(SecurityError) -> (publicFile: String, secretFile: String) {
        let pub = base + ".pub", secret = base + ".secret"
        for path in [pub, secret] where FileManager.default.fileExists(atPath: path) {
            throw SecurityError("\(path) exists; refusing to overwrite a key file")
        }
        try KeyFiles.create(secret, contents: "\(publicKey)\n\(secretKey)\n", mode: 0o600)
        do {
            try KeyFiles.create(pub, contents: "\(publicKey)\n", mode: 0o644)
        } catch {
            unlink(secret)
            throw error
        }
        return (pub, secret)
    }
}

/// Z85 CURVE public keys: checks, and reading them from text or files.
public enum CurveKey {
    /// True when `text` is 40 Z85 characters that decode to 32 bytes.
    public static func isValid(_ text: String) -> Bool { decode(text) != nil }

    /// The 32 raw bytes of a Z85 key, or nil.
    public static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = out.withUnsafeMutableBufferPointer { buffer in zmq_z85_decode(buffer.baseAddress, text) != nil }
        return ok ? out : nil
    }

    /// The Z85 text of 32 raw key bytes.
    public static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&out, bytes, 32) != nil else { return nil }
        return String(cString: out)
    }

    /// The public key of a Z85 secret key (zmq_curve_public), or nil when it is not a key.
    public static func publicKey(ofSecret secret: String) -> String? {
        guard isValid(secret) else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&out, secret) == 0 else { return nil }
        return String(cString: out)
    }

    /// The first 8 characters of a key, for logs (enough to tell keys apart, nothing to reuse).
    public static func prefix(_ key: String) -> String { String(key.prefix(8)) + "…" }

    /// A public key given as Z85 text or as a file holding it (a `.pub` file: its first line;
    /// a `.secret` file: its public-key line). Throws naming what was wrong.
    public static func load(_ textOrPath: String) throws(SecurityError) -> String {
        let trimmed = textOrPath.trimmingCharacters(in: .whitespacesAndNewlines)
        if isValid(trimmed) && !FileManager.default.fileExists(atPath: textOrPath) { return trimmed }
        guard FileManager.default.fileExists(atPath: textOrPath) else {
            throw SecurityError("'\(textOrPath)' is neither a 40-character Z85 key nor a key file")
        }
        let lines = try KeyFiles.lines(of: textOrPath)
        guard let first = lines.first, isValid(first) else { throw SecurityError("\(textOrPath): line 1 is not a 40-character Z85 key") }
        return first
    }
}

/// A key or allow-list could not be read or made; the description is one line naming the file.
public struct SecurityError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Small, bounded key-file I/O.
enum KeyFiles {
    /// Largest key or allow-list file read (bytes): 1 MiB is ~20 000 keys.
    static let maxBytes = 1 << 20

    /// The file's non-empty lines, trimmed; `#` starts a comment line.
    static func lines(of path: String) throws(SecurityError) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SecurityError("cannot read \(path)") }
        defer { try? handle.close() }
        let data: Data
        do { data = try handle.read(upToCount: maxBytes + 1) ?? Data() } catch { throw SecurityError("cannot read \(path): \(error)") }
        guard data.count <= maxBytes else { throw SecurityError("\(path) is larger than \(maxBytes) bytes; not a key file") }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// Creates `path` with `mode` (O_EXCL: never over an existing file) and writes `contents`.
    static func create(_ path: String, contents: String, mode: mode_t) throws(SecurityError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SecurityError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = fchmod(fd, mode)  // the umask may have narrowed it; never widen beyond `mode`
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            unlink(path)
            throw SecurityError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
