import ArgumentParser
import CollectKit
import Foundation

/// `sim-collect merge OUT IN...`: joins datasets recorded by several collectors into one.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join datasets that sim-collect recorded (shards of one job) into one new dataset.",
        discussion: """
            Episodes follow input by input; episode indices and the frame index are renumbered continuously, tasks are
            unified by their text, stats aggregated, videos copied, and each episode's replay bookkeeping kept (so
            sim-collect replay works on the result). The inputs must agree on format, fps, features and video codec;
            OUT must be new or empty.

            Example:
              sim-collect merge data/tbar data/tbar-shard0 data/tbar-shard1 data/tbar-shard2
            """)

    @Argument(help: "The merged dataset's folder (new or empty).")
    var out: String

    @Argument(help: "The datasets to join, in order.")
    var inputs: [String]

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one input dataset after OUT") }
    }

    func run() throws {
        let start = Date()
        let summary = try DatasetMerger.merge(inputs: inputs.map { URL(fileURLWithPath: $0) }, into: URL(fileURLWithPath: out))
        print(String(format: "sim-collect merge: %d datasets joined into %@: %d episodes, %d frames, %d tasks; %.1f s",
                     summary.inputs, out, summary.episodes, summary.frames, summary.tasks, Date().timeIntervalSince(start)))
    }
}
