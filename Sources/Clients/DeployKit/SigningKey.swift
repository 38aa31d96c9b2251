import Crypto
import Foundation

/// An Ed25519 key pair for signing releases (`sim-deploy keygen`). The private key file holds
/// `{"kind": "ed25519", "private": base64}` and is created readable by its owner only; the public
/// key file holds `{"kind": "ed25519", "public": base64}` and is what agents are given.
public struct SigningKey: Sendable {
    /// The key's raw 32 bytes (Crypto's key types are not Sendable; this is).
    let raw: Data
    var key: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: raw) }   // checked when made

    public init() { raw = Curve25519.Signing.PrivateKey().rawRepresentation }

    public var publicKey: VerifyingKey { VerifyingKey(key: key.publicKey) }

    func signature(for bytes: Data) throws -> Data { try key.signature(for: bytes) }

    /// Writes `<prefix>.key` (mode 0600) and `<prefix>.pub`; refuses to overwrite either.
    public func write(prefix: URL) throws -> (privateKey: URL, publicKey: URL) {
        let privateURL = prefix.appendingPathExtension("key"), publicURL = prefix.appendingPathExtension("pub")
        let fm = FileManager.default
        for url in [privateURL, publicURL] where fm.fileExists(atPath: url.path) {
            throw DeployError("\(url.path) exists: keygen never overwrites a key")
        }
        try fm.createDirectory(at: prefix.deletingLastPathComponent(), withIntermediateDirectories: true)
        let privateJSON = try KeyFile.encode(KeyFile(kind: "ed25519", privateKey: key.rawRepresentation.base64EncodedString(), publicKey: nil))
        // Created owner-only and exclusively (O_EXCL): never another's file, never readable by others.
        let fd = open(privateURL.path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else { throw DeployError("cannot create \(privateURL.path): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try handle.write(contentsOf: privateJSON)
        try handle.synchronize()
        try publicKey.write(to: publicURL)
        return (privateURL, publicURL)
    }

    /// Reads a private key file that `write(prefix:)` made.
    public static func read(_ url: URL) throws -> SigningKey {
        SigningKey(key: try KeyFile.key(url, \.privateKey, "private") { try Curve25519.Signing.PrivateKey(rawRepresentation: $0) })
    }

    init(key: Curve25519.Signing.PrivateKey) { raw = key.rawRepresentation }
}

/// The public half: what checks a release's signature.
public struct VerifyingKey: Sendable, Equatable {
    let raw: Data
    var key: Curve25519.Signing.PublicKey { try! Curve25519.Signing.PublicKey(rawRepresentation: raw) }   // checked when made

    init(key: Curve25519.Signing.PublicKey) { raw = key.rawRepresentation }

    func isValid(_ signature: Data, for bytes: Data) -> Bool { key.isValidSignature(signature, for: bytes) }

    func write(to url: URL) throws {
        let data = try KeyFile.encode(KeyFile(kind: "ed25519", privateKey: nil, publicKey: key.rawRepresentation.base64EncodedString()))
        try data.write(to: url, options: .atomic)
    }

    /// Reads a public key file (`<prefix>.pub`).
    public static func read(_ url: URL) throws -> VerifyingKey {
        VerifyingKey(key: try KeyFile.key(url, \.publicKey, "public") { try Curve25519.Signing.PublicKey(rawRepresentation: $0) })
    }
}

/// The JSON of a key file.
struct KeyFile: Codable {
    var kind: String
    var privateKey: String?
    var publicKey: String?

    enum CodingKeys: String, CodingKey {
        case kind
        case privateKey = "private"
        case publicKey = "public"
    }

    static func encode(_ file: KeyFile) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(file)
    }

    /// The key in field `field` of the key file at `url`, made by `make` from its raw bytes.
    static func key<K>(_ url: URL, _ field: KeyPath<KeyFile, String?>, _ what: String, _ make: (Data) throws -> K) throws -> K {
        guard let text = try read(url)[keyPath: field], let raw = Data(base64Encoded: text), let key = try? make(raw) else {
            throw DeployError("\(url.path) holds no ed25519 \(what) key")
        }
        return key
    }

    static func read(_ url: URL) throws -> KeyFile {
        let data = try Data(contentsOf: url)
        guard data.count <= 4096, let file = try? JSONDecoder().decode(KeyFile.self, from: data), file.kind == "ed25519" else {
            throw DeployError("\(url.path) is not an ed25519 key file of sim-deploy keygen")
        }
        return file
    }
}

/// A deployment step failed: a one-line reason for the user.
public struct DeployError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
