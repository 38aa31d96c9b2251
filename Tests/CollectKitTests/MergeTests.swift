import ClientKit
import Foundation
import Parquet
import TestSupport
import Testing

@testable import CollectKit

/// `sim-collect merge`: shards recorded on separate servers with different seeds join into one
/// dataset that pyarrow reads with continuous indices and that replays bit for bit.
@Suite("sim-collect merge", .tags(.process), .serialized)
struct MergeTests {
    /// Checks the merged dataset's files with pyarrow: continuous `index` and `episode_index`,
    /// `meta/episodes` rows that point at the right rows and files, tasks and info totals. Prints "ok".
    static let pyarrowCheck = #"""
        import glob, json, os, sys
        import pyarrow.parquet as pq
        root, episodes, frames, tasks, packed = sys.stdin.read().split("\n")[:5]
        episodes, frames, tasks, packed = int(episodes), int(frames), int(tasks), int(packed)
        info = json.load(open(os.path.join(root, "meta/info.json")))
        assert info["total_episodes"] == episodes and info["total_frames"] == frames and info["total_tasks"] == tasks, info
        files = sorted(glob.glob(os.path.join(root, "data/chunk-*/file-*.parquet")))
        data = [pq.read_table(f).to_pydict() for f in files]
        index = [i for d in data for i in d["index"]]
        assert index == list(range(frames)), "index is not 0..N-1"
        episode_index = [e for d in data for e in d["episode_index"]]
        assert sorted(set(episode_index)) == list(range(episodes))
        task_table = pq.read_table(os.path.join(root, "meta/tasks.parquet")).to_pandas()
        assert len(task_table) == tasks and sorted(task_table["task_index"]) == list(range(tasks))
        text = {int(i): t for t, i in zip(task_table.index, task_table["task_index"])}
        # Packed: one meta/episodes file per data file, every episode listed once, in order.
        metas = sorted(glob.glob(os.path.join(root, "meta/episodes/chunk-*/file-*.parquet")))
        assert len(metas) == len(files) == packed, (metas, files)
        meta = {}
        for m in metas:
            for k, v in pq.read_table(m).to_pydict().items():
                meta.setdefault(k, []).extend(v)
        assert meta["episode_index"] == list(range(episodes))
        end = 0
        for row in range(episodes):
            e, f, t = meta["episode_index"][row], meta["dataset_from_index"][row], meta["dataset_to_index"][row]
            assert f == end and t - f == meta["length"][row], (row, f, t)
            end = t
            path = info["data_path"].format(chunk_index=meta["data/chunk_index"][row], file_index=meta["data/file_index"][row])
            whole = pq.read_table(os.path.join(root, path)).to_pydict()
            rows = [k for k, i in enumerate(whole["index"]) if f <= i < t]
            d = {k: [v[r] for r in rows] for k, v in whole.items()}
            assert rows == list(range(rows[0], rows[0] + t - f)), path
            assert d["index"] == list(range(f, t)) and set(d["episode_index"]) == {e}, path
            assert d["frame_index"] == list(range(t - f))
            assert [text[i] for i in set(d["task_index"])] == meta["tasks"][row], (row, meta["tasks"][row])
            assert meta["stats/index/min"][row] == [f] and meta["stats/index/max"][row] == [t - 1]
            assert meta["stats/episode_index/min"][row] == [e]
        assert end == frames
        stats = json.load(open(os.path.join(root, "meta/stats.json")))
        assert stats["index"]["count"] == [frames] and stats["index"]["min"] == [0] and stats["index"]["max"] == [frames - 1], stats["index"]
        assert abs(stats["index"]["mean"][0] - (frames - 1) / 2) < 1e-9
        assert stats["episode_index"]["max"] == [episodes - 1]
        print("ok")
        """#

    @Test("three shards (seeds 1, 2, 3; two tasks) merge with continuous indices, pyarrow agrees, and every episode replays bit for bit")
    func threeShards() async throws {
        try await onOwnThread {
            let shards = [
                try ReplayTests.record(policy: .random, episodes: 2, envs: 2, fps: nil, seed: 1),
                try ReplayTests.record(policy: .random, episodes: 3, envs: 2, fps: nil, seed: 2, task: "push the T-bar, again"),
                try ReplayTests.record(policy: .random, episodes: 2, envs: 1, fps: nil, seed: 3),
            ]
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("merge-test-\(UUID().uuidString)")
            defer { for url in shards + [out] { try? FileManager.default.removeItem(at: url) } }

            let summary = try DatasetMerger.merge(inputs: shards, into: out)
            let states = try shards.map { try JSONDecoder().decode(LeRobotWriter.State.self, from: Data(contentsOf: $0.appendingPathComponent(LeRobotWriter.stateFile))) }
            let frames = states.reduce(0) { $0 + $1.totalFrames }
            #expect(summary.episodes == 7)
            #expect(summary.frames == frames)
            #expect(summary.tasks == 2)

            // Bookkeeping: the shards' episodes in order, with their seeds.
            let merged = try JSONDecoder().decode(LeRobotWriter.State.self, from: Data(contentsOf: out.appendingPathComponent(LeRobotWriter.stateFile)))
            #expect(merged.episodes.map(\.index) == Array(0..<7))
            #expect(merged.episodes.map(\.runSeed) == [1, 1, 2, 2, 2, 3, 3])
            #expect(merged.episodes.map(\.task) == [0, 0, 1, 1, 1, 0, 0])
            #expect(merged.tasks == ["push the T-bar into the slot", "push the T-bar, again"])
            #expect(merged.totalFrames == frames)

            // The files, as pyarrow reads them.
            if PythonScript.importProblem("pyarrow.parquet, pandas", name: "pyarrow") == nil {
                // Each shard packed its episodes into one file (default caps); merge keeps them whole: 3 files.
                let input = Data("\(out.path)\n\(summary.episodes)\n\(frames)\n\(summary.tasks)\n3\n".utf8)
                let result = try PythonScript.run(script: Self.pyarrowCheck, input: input)
                #expect(result.status == 0, "\(result.stderr)")
                #expect(String(decoding: result.stdout, as: UTF8.self).contains("ok"))
            } else if ProcessInfo.processInfo.environment["ROBOSIM_REQUIRE_PYARROW"] == "1" {
                Issue.record("ROBOSIM_REQUIRE_PYARROW=1 but pyarrow (and pandas) cannot be imported")
            }

            // Replay finds every episode's rows and seeds in the merged dataset.
            let results = try ReplayTests.replay(out, envs: 3)
            #expect(results.map(\.episode) == Array(0..<7))
            for result in results { #expect(result.matches, "\(result)") }

            // Merging again into a non-empty folder is refused; resuming the merged dataset opens it.
            #expect(throws: DatasetError.self) { try DatasetMerger.merge(inputs: shards, into: out) }
            let writer = try LeRobotWriter(root: out, spec: merged.spec, resume: true, encoder: VideoEncoder(codec: .h264))
            #expect(writer.episodeCount == 7)
        }
    }

    @Test("datasets of different fps are refused, and nothing is written")
    func mismatchedFps() async throws {
        try await onOwnThread {
            let a = try ReplayTests.record(policy: .random, episodes: 1, envs: 1, fps: nil, seed: 1)
            let b = try ReplayTests.record(policy: .random, episodes: 1, envs: 1, fps: 25, seed: 2)
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("merge-test-\(UUID().uuidString)")
            defer { for url in [a, b, out] { try? FileManager.default.removeItem(at: url) } }
            let error = try #require(throws: DatasetError.self) { try DatasetMerger.merge(inputs: [a, b], into: out) }
            #expect(error.description.contains("fps"), "\(error)")
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(LeRobotWriter.stateFile).path))
            #expect((try? FileManager.default.contentsOfDirectory(atPath: out.path))?.isEmpty ?? true)
        }
    }
}
