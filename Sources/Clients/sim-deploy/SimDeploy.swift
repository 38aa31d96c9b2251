import ArgumentParser
import DeployKit
import Foundation

/// `sim-deploy`: ships trained models to a fleet: signing keys and signed immutable releases; jobs
/// with staged rollout, abort criteria, timeouts and rollback (AWS IoT Jobs' vocabulary); the
/// deployer that applies them; and the robots' agents. Jobs.swift holds the job commands, Agent.swift
/// the agent's.
@main
struct SimDeploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-deploy",
        abstract: "Ship trained models to a fleet of robots: signed releases, jobs with staged rollout, abort and rollback, robot agents.",
        discussion: """
            sim-deploy keygen --out keys/fleet                 # keys/fleet.key (0600) and keys/fleet.pub
            sim-deploy publish runs/cartpole/checkpoint.safetensors --version 1.0.0 --registry registry --key keys/fleet.key
            sim-deploy versions --registry registry --public-key keys/fleet.pub
            sim-deploy deployer --db fleet.sqlite --registry registry &           # serves agents on tcp://127.0.0.1:7900
            sim-deploy agent --robot-id r0 --robot-id r1 --group fleet --env 0 --env 1 --state agents --public-key keys/fleet.pub &
            sim-deploy create-job --db fleet.sqlite --version 1.0.0 --targets fleet --max-per-minute 60 --abort FAILED:20:3
            sim-deploy status JOB --db fleet.sqlite --watch
            """,
        subcommands: [Keygen.self, Publish.self, Versions.self, RunDeployer.self, CreateJob.self, Status.self, Cancel.self,
                      Rollback.self, DescribeExecution.self, Agent.self])
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make an Ed25519 key pair: PREFIX.key (owner-only) and PREFIX.pub.")

    @Option(help: "Path prefix of the key files.")
    var out: String

    func run() throws {
        let (privateKey, publicKey) = try SigningKey().write(prefix: URL(fileURLWithPath: out))
        print("sim-deploy: wrote \(privateKey.path) (keep it secret) and \(publicKey.path) (give it to the agents)")
    }
}

struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a sim-train checkpoint as an immutable, signed version: its SHA-256 and an Ed25519 signature of its manifest.")

    @Argument(help: "A checkpoint.safetensors that sim-train wrote.")
    var checkpoint: String

    @Option(help: "The version name (1-64 letters, digits, '.', '_', '-').")
    var version: String

    @Option(help: "The registry folder.")
    var registry: String

    @Option(help: "The private key file (sim-deploy keygen).")
    var key: String

    func run() throws {
        let release = try Registry(root: URL(fileURLWithPath: registry))
            .publish(checkpoint: URL(fileURLWithPath: checkpoint), version: version, key: try SigningKey.read(URL(fileURLWithPath: key)))
        print("sim-deploy: published \(release.manifest.version) (\(release.manifest.task) on \(release.manifest.scene), \(release.manifest.size) bytes, sha256 \(release.manifest.sha256))")
    }
}

struct Versions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the published versions, oldest first; with --public-key, check each one as an agent would.")

    @Option(help: "The registry folder.")
    var registry: String

    @Option(name: .customLong("public-key"), help: "A public key file: verify each version's signature and checksum.")
    var publicKey: String?

    @Flag(help: "One JSON object per line instead of a table.")
    var json = false

    func run() throws {
        let registry = Registry(root: URL(fileURLWithPath: registry))
        let key = try publicKey.map { try VerifyingKey.read(URL(fileURLWithPath: $0)) }
        var failed = false
        for release in registry.releases() {
            let m = release.manifest
            var check: String?
            if let key {
                do {
                    _ = try registry.verify(version: m.version, key: key)
                    check = "verified"
                } catch {
                    check = "REJECTED (\(error))"
                    failed = true
                }
            }
            if json {
                var object: [String: Any] = ["version": m.version, "created": m.created, "sha256": m.sha256, "size": m.size, "task": m.task, "scene": m.scene]
                if let check { object["check"] = check }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print([m.version, m.created, String(m.sha256.prefix(16)), "\(m.size) B", "\(m.task)@\(m.scene)", check].compactMap { $0 }.joined(separator: "  "))
            }
        }
        if failed { throw ExitCode(1) }
    }
}
