import Foundation
import Messaging
import Testing
@testable import DeployKit
@testable import TrainKit

/// `sim-deploy keygen`, `publish`, `versions`: signed, immutable releases, and what an agent
/// rejects (tampered, unsigned, signed by another key).
@Suite struct RegistryTests {
    /// A small real cartpole checkpoint, as sim-train writes them.
    static func checkpoint(in folder: URL, seed: UInt64 = 1) throws -> URL {
        var random = TrainRandom(seed: seed)
        let policy = ActorCritic(observationSize: 4, actionSize: 1, hidden: [8], random: &random)
        var configuration = PPOConfiguration()
        configuration.hidden = [8]
        configuration.normalizeObservations = false
        let checkpoint = Checkpoint(
            metadata: .init(task: "cartpole", scene: "cartpole", observationNames: ["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"],
                            actionNames: ["cart_force"], actionLow: [-1], actionHigh: [1], hidden: [8], reward: "", envSteps: 0, seed: seed,
                            configuration: configuration, versions: [:]),
            policy: policy, observationNormalization: nil)
        let url = folder.appendingPathComponent("checkpoint-\(seed).safetensors")
        try checkpoint.write(to: url)
        return url
    }

    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("registry-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func keysRoundTripAndThePrivateOneIsOwnerOnly() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = SigningKey()
        let (privateURL, publicURL) = try key.write(prefix: dir.appendingPathComponent("keys/fleet"))
        let mode = try FileManager.default.attributesOfItem(atPath: privateURL.path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try SigningKey.read(privateURL).raw == key.raw)
        #expect(try VerifyingKey.read(publicURL) == key.publicKey)
        #expect(throws: DeployError.self) { try key.write(prefix: dir.appendingPathComponent("keys/fleet")) }   // never overwritten
        #expect(throws: DeployError.self) { try SigningKey.read(publicURL) }                                     // a public key is not a private one
        try Data("{\"kind\": \"ed25519\", \"private\": \"AAAA\"}".utf8).write(to: dir.appendingPathComponent("bad.key"))
        #expect(throws: DeployError.self) { try SigningKey.read(dir.appendingPathComponent("bad.key")) }
    }

    @Test func publishedVersionsVerifyAndAreImmutable() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = SigningKey()
        let registry = Registry(root: dir.appendingPathComponent("registry"))
        let source = try Self.checkpoint(in: dir)
        let release = try registry.publish(checkpoint: source, version: "1.0.0", key: key, now: Date(timeIntervalSince1970: 1_000))
        try registry.publish(checkpoint: try Self.checkpoint(in: dir, seed: 2), version: "1.1.0", key: key, now: Date(timeIntervalSince1970: 2_000))
        #expect(registry.releases().map(\.manifest.version) == ["1.0.0", "1.1.0"])
        #expect(release.manifest.task == "cartpole" && release.manifest.actionNames == ["cart_force"])
        let (verified, bytes) = try registry.verify(version: "1.0.0", key: key.publicKey)
        let original = try Data(contentsOf: source)
        #expect(verified == release && bytes == original)
        #expect(release.manifest.sha256 == Registry.sha256(bytes) && release.manifest.sha256.count == 64)
        // Loadable as a checkpoint from the registry.
        #expect(try Checkpoint.read(release.artifact).metadata.task == "cartpole")
        // Immutable; names bounded; only checkpoints.
        #expect(throws: DeployError.self) { try registry.publish(checkpoint: source, version: "1.0.0", key: key) }
        for bad in ["", "../x", "a/b", ".hidden", String(repeating: "9", count: 65), "v 1", "é"] {
            #expect(throws: DeployError.self, "\(bad)") { try registry.publish(checkpoint: source, version: bad, key: key) }
        }
        let text = dir.appendingPathComponent("notes.txt")
        try Data("not a model".utf8).write(to: text)
        #expect(throws: DeployError.self) { try registry.publish(checkpoint: text, version: "2.0.0", key: key) }
        #expect(!FileManager.default.fileExists(atPath: registry.root.appendingPathComponent("versions/2.0.0").path))
    }

    @Test func tamperedUnsignedAndForeignReleasesAreRejected() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = SigningKey()
        let registry = Registry(root: dir.appendingPathComponent("registry"))
        for v in ["artifact", "manifest", "unsigned", "foreign", "garbled"] {
            try registry.publish(checkpoint: try Self.checkpoint(in: dir), version: v, key: key)
        }
        func folder(_ v: String) -> URL { registry.root.appendingPathComponent("versions/\(v)") }
        // One flipped byte in the artifact: the checksum no longer matches the signed manifest.
        var artifact = try Data(contentsOf: folder("artifact").appendingPathComponent("artifact.safetensors"))
        artifact[artifact.count / 2] ^= 0x01
        try artifact.write(to: folder("artifact").appendingPathComponent("artifact.safetensors"))
        // A manifest edited to match a swapped artifact: the signature no longer matches.
        let manifestURL = folder("manifest").appendingPathComponent("manifest.json")
        var manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL))
        manifest.sha256 = String(repeating: "0", count: 64)
        try Registry.encode(manifest).write(to: manifestURL)
        try FileManager.default.removeItem(at: folder("unsigned").appendingPathComponent("manifest.sig"))
        try Data("not base64 !".utf8).write(to: folder("garbled").appendingPathComponent("manifest.sig"))
        let other = SigningKey()

        func rejection(_ v: String, _ k: VerifyingKey) -> Rejection? {
            do { _ = try registry.verify(version: v, key: k); return nil } catch { return error }
        }
        if case .checksumMismatch = rejection("artifact", key.publicKey) {} else { Issue.record("a tampered artifact was not rejected by checksum") }
        #expect(rejection("manifest", key.publicKey) == .badSignature)
        #expect(rejection("unsigned", key.publicKey) == .unsigned)
        #expect(rejection("foreign", other.publicKey) == .badSignature)
        #expect(rejection("garbled", key.publicKey) == .badSignature)
        #expect(rejection("foreign", key.publicKey) == nil)
        #expect(rejection("nope", key.publicKey) == .missing("nope/manifest.json"))
        #expect(rejection("../artifact", key.publicKey) == .malformed("version name '../artifact'"))
    }

    /// The deployer's /deploy/artifact: names checked, and a version folder linked out of the
    /// registry is refused (SafePath), naming the value and the folder.
    @Test func artifactRequestsStayInTheRegistry() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let registry = Registry(root: dir.appendingPathComponent("registry"))
        try registry.publish(checkpoint: try Self.checkpoint(in: dir), version: "1.0.0", key: SigningKey())
        func request(_ version: String, _ file: String) -> Robosim_DeployArtifactRequest {
            var r = Robosim_DeployArtifactRequest()
            r.version = version
            r.file = file
            r.maxBytes = 16
            return r
        }
        #expect(try Deployer.chunk(registry: registry, request("1.0.0", "manifest.json")).found)
        for (version, file) in [("../1.0.0", "manifest.json"), ("1.0.0", "../../secret"), ("/etc", "manifest.json"), ("..", "manifest.json")] {
            #expect(throws: (any Error).self, "\(version) \(file)") { try Deployer.chunk(registry: registry, request(version, file)) }
        }
        // A version folder that is a symbolic link to a copy outside the registry.
        let outside = dir.appendingPathComponent("outside")
        try FileManager.default.copyItem(at: registry.folder("1.0.0"), to: outside)
        try FileManager.default.createSymbolicLink(at: registry.folder("2.0.0"), withDestinationURL: outside)
        do {
            _ = try Deployer.chunk(registry: registry, request("2.0.0", "manifest.json"))
            Issue.record("served a file through a link out of the registry")
        } catch {
            #expect("\(error)".contains("release file '2.0.0/manifest.json' is refused"), "\(error)")
            #expect("\(error)".contains("outside the folder; it must stay inside \(registry.versionsFolder.path)"), "\(error)")
        }
    }
}
