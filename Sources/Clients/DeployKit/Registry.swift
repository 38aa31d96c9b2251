import ClientKit
import Crypto
import Foundation
import TrainKit

/// What a release says about itself; `manifest.json` holds it (sorted keys) and `manifest.sig` the
/// Ed25519 signature of exactly those bytes, so the checksum and the version are signed too.
public struct Manifest: Codable, Sendable, Equatable {
    public var version: String
    /// Hex SHA-256 of the artifact.
    public var sha256: String
    public var size: Int
    /// ISO 8601, UTC.
    public var created: String
    public var task: String
    public var scene: String
    public var observationNames: [String]
    public var actionNames: [String]
}

/// A published version in the registry.
public struct Release: Sendable, Equatable {
    public let manifest: Manifest
    public let folder: URL
    public var artifact: URL { folder.appendingPathComponent(Registry.artifactName) }
}

/// Why a release was refused: the states an agent reports as REJECTED.
public enum Rejection: Error, Equatable, CustomStringConvertible, Sendable {
    case missing(String)
    case unsigned
    case badSignature
    case checksumMismatch(expected: String, found: String)
    case malformed(String)

    public var description: String {
        switch self {
        case .missing(let what): "missing: \(what)"
        case .unsigned: "unsigned: the release has no signature"
        case .badSignature: "the signature does not match the manifest and the public key"
        case .checksumMismatch(let expected, let found): "checksum mismatch: the manifest says \(expected), the artifact is \(found)"
        case .malformed(let why): "malformed release: \(why)"
        }
    }
}

/// A folder of immutable, signed model releases (`sim-deploy publish`, `sim-deploy versions`):
/// `versions/<V>/artifact.safetensors`, `manifest.json`, `manifest.sig`. A version is published
/// once: its folder is written under a hidden name, flushed, and renamed into place, so a crash
/// never leaves half a release, and publishing an existing version is refused.
public struct Registry: Sendable {
    public let root: URL
    static let artifactName = "artifact.safetensors"
    /// The files of a release, as agents download them.
    public static let files = ["manifest.json", "manifest.sig", artifactName]
    /// Artifacts larger than this are refused (checkpoints here are kilobytes to megabytes).
    public static let maxArtifactBytes = 1 << 30
    static let maxManifestBytes = 1 << 20

    public init(root: URL) { self.root = root }

    var versionsFolder: URL { root.appendingPathComponent("versions", isDirectory: true) }

    /// Version `v`'s folder (always as a directory URL, so equal releases compare equal).
    func folder(_ v: String) -> URL { versionsFolder.appendingPathComponent(v, isDirectory: true) }

    /// A version name: 1 to 64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit.
    public static func isValidVersion(_ v: String) -> Bool {
        guard let first = v.unicodeScalars.first, v.unicodeScalars.count <= 64, CharacterSet.alphanumerics.contains(first), first.isASCII else { return false }
        return v.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    /// Publishes `checkpoint` (a `sim-train` checkpoint, read to check it) as `version`, signed with `key`.
    @discardableResult
    public func publish(checkpoint: URL, version: String, key: SigningKey, now: Date = Date()) throws -> Release {
        guard Self.isValidVersion(version) else {
            throw DeployError("version '\(version)' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        let fm = FileManager.default
        let folder = folder(version)
        guard !fm.fileExists(atPath: folder.path) else { throw DeployError("version \(version) is already published: versions are immutable") }
        // Read once, bounded; the bytes checked as a checkpoint are the bytes hashed and signed.
        let bytes: Data
        do { bytes = try Self.bounded(checkpoint, limit: Self.maxArtifactBytes) } catch {
            throw DeployError("\(checkpoint.path) cannot be read, or is over \(Self.maxArtifactBytes) bytes: \(error)")
        }
        try fm.createDirectory(at: versionsFolder, withIntermediateDirectories: true)
        let temporary = versionsFolder.appendingPathComponent(".\(version).tmp-\(getpid())", isDirectory: true)
        try? fm.removeItem(at: temporary)
        try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
        var published = false
        defer { if !published { try? fm.removeItem(at: temporary) } }
        let artifact = temporary.appendingPathComponent(Self.artifactName)
        try Self.writeSynced(bytes, to: artifact)
        let policy: Checkpoint
        do { policy = try Checkpoint.read(artifact) } catch { throw DeployError("\(checkpoint.path) is not a sim-train checkpoint: \(error)") }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        let manifest = Manifest(version: version, sha256: Self.sha256(bytes), size: bytes.count, created: formatter.string(from: now),
                                task: policy.metadata.task, scene: policy.metadata.scene,
                                observationNames: policy.metadata.observationNames, actionNames: policy.metadata.actionNames)
        let manifestBytes = try Self.encode(manifest)
        let signature = try key.signature(for: manifestBytes)

        try Self.writeSynced(manifestBytes, to: temporary.appendingPathComponent("manifest.json"))
        try Self.writeSynced(Data(signature.base64EncodedString().utf8), to: temporary.appendingPathComponent("manifest.sig"))
        guard rename(temporary.path, folder.path) == 0 else { throw DeployError("cannot publish \(version): \(String(cString: strerror(errno)))") }
        published = true
        AtomicFile.syncFolder(versionsFolder)   // the rename, on disk
        return Release(manifest: manifest, folder: folder)
    }

    /// Every published version, oldest first (folders whose manifest cannot be read are left out).
    public func releases() -> [Release] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: versionsFolder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.compactMap { name in
            let folder = folder(name)
            guard let data = try? Self.bounded(folder.appendingPathComponent("manifest.json"), limit: Self.maxManifestBytes),
                  let manifest = try? JSONDecoder().decode(Manifest.self, from: data), manifest.version == name else { return nil }
            return Release(manifest: manifest, folder: folder)
        }.sorted { ($0.manifest.created, $0.manifest.version) < ($1.manifest.created, $1.manifest.version) }
    }

    /// Checks release `version` against `key` as an agent does before installing it: the signature
    /// of the manifest, then the artifact's size and SHA-256. Returns the release and its bytes.
    public func verify(version: String, key: VerifyingKey) throws(Rejection) -> (Release, Data) {
        guard Self.isValidVersion(version) else { throw .malformed("version name '\(version)'") }
        let folder = folder(version)
        guard let manifestBytes = try? Self.bounded(folder.appendingPathComponent("manifest.json"), limit: Self.maxManifestBytes) else {
            throw .missing("\(version)/manifest.json")
        }
        guard let signatureText = try? Self.bounded(folder.appendingPathComponent("manifest.sig"), limit: 4096) else { throw .unsigned }
        guard let signature = Data(base64Encoded: String(decoding: signatureText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
              key.isValid(signature, for: manifestBytes) else { throw .badSignature }
        guard let manifest = try? JSONDecoder().decode(Manifest.self, from: manifestBytes), manifest.version == version else {
            throw .malformed("the signed manifest is not version \(version)'s")
        }
        guard manifest.size >= 0, manifest.size <= Self.maxArtifactBytes,
              let bytes = try? Self.bounded(folder.appendingPathComponent(Self.artifactName), limit: Self.maxArtifactBytes) else {
            throw .missing("\(version)/\(Self.artifactName)")
        }
        let found = Self.sha256(bytes)
        guard found == manifest.sha256, bytes.count == manifest.size else { throw .checksumMismatch(expected: manifest.sha256, found: found) }
        return (Release(manifest: manifest, folder: folder), bytes)
    }

    static func writeSynced(_ data: Data, to url: URL) throws {
        try data.write(to: url)
        try AtomicFile.sync(url)
    }

    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    static func encode(_ manifest: Manifest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(manifest)
    }

    /// A file's bytes, refusing files over `limit` before reading them.
    static func bounded(_ url: URL, limit: Int) throws -> Data {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let data = try handle.read(upToCount: limit + 1) ?? Data()
        guard data.count <= limit else { throw DeployError("\(url.path) is larger than \(limit) bytes") }
        return data
    }
}
