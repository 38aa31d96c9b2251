import ArgumentParser
import ClientKit
import CollectKit
import Foundation
import Messaging

/// `sim-collect replay DATASET`: re-runs recorded episodes from their seeds and checks their states.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-run recorded episodes from their recorded seeds and check that the recorded states follow bit for bit.",
        discussion: """
            Each episode's env is reset to the recorded (run seed, seed index, episode number), its recorded actions
            are sent again, and observation.state, next.reward, next.done and next.success are compared with the dataset
            (float32 bits) frame by frame. Prints one line per episode (match, or the first mismatching frame and
            feature) and exits non-zero when any episode differs. Episodes run on every env of the server at once.

            Examples:
              sim-collect replay data/tbar --scene Scenes/tbar_push --envs 8
              sim-collect replay data/tbar --episodes 0,3,10-15 --server tcp://127.0.0.1:7700
            """)

    @Argument(help: "The dataset folder (recorded by sim-collect).")
    var dataset: String

    @Option(help: "Episodes to replay: indices and ranges, e.g. 0,3,10-15 (default: all).")
    var episodes: String?

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Start a lockstep sim-server on this scene (the executable beside sim-collect) instead of using --server.")
    var scene: String?

    @Option(help: "With --scene: parallel envs (default: the scene's default_envs).")
    var envs: Int?

    func validate() throws {
        if let envs { guard envs >= 1 else { throw ValidationError("--envs must be at least 1") } }
        if envs != nil && scene == nil { throw ValidationError("--envs goes with --scene (a running server has its own env count)") }
        if connection.server != nil && scene != nil { throw ValidationError("give --server or --scene, not both") }
        if let episodes { _ = try Self.parse(episodes) }
    }

    /// `0,3,10-15` as indices, in order.
    static func parse(_ list: String) throws -> [Int] {
        var out: [Int] = []
        for part in list.split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            switch bounds.count {
            case 1 where bounds[0] != nil && bounds[0]! >= 0: out.append(bounds[0]!)
            case 2 where bounds[0] != nil && bounds[1] != nil && 0 <= bounds[0]! && bounds[0]! <= bounds[1]! && bounds[1]! - bounds[0]! < 10_000_000:
                out += Array(bounds[0]!...bounds[1]!)
            default: throw ValidationError("--episodes: '\(part)' is not an index or a range a-b")
            }
        }
        guard !out.isEmpty else { throw ValidationError("--episodes lists no episode") }
        return out
    }

    func run() throws {
        let replayer = try Replayer(root: URL(fileURLWithPath: dataset))
        let selection = try episodes.map(Self.parse)
        let server = try scene.map { try ServerProcess(scene: $0, envs: envs) }
        defer { server?.stop() }
        let client = try ServiceClient(server: server?.address ?? connection.address, timeout: max(connection.timeout, 30),
                                       security: server == nil ? try connection.security : nil)
        let results = try replayer.run(client: client, selection: selection) { print($0) }
        let bad = results.filter { !$0.matches }
        print("sim-collect replay: \(results.count - bad.count) of \(results.count) episodes match bit for bit")
        if !bad.isEmpty {
            throw ReplayFailed(description: "\(bad.count) of \(results.count) episodes differ from the recording (first: episode \(bad[0].episode))")
        }
    }
}

struct ReplayFailed: Error, CustomStringConvertible {
    let description: String
}
