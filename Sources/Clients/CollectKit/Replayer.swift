import ClientKit
import Foundation
import Messaging
import Parquet

/// The outcome of replaying one episode.
public struct ReplayResult: Sendable, CustomStringConvertible {
    /// The dataset's episode index.
    public var episode: Int
    /// Frames recorded.
    public var frames: Int
    /// The first frame where the replay differs, or nil when every frame matches bit for bit.
    public var mismatch: ReplayMismatch?

    public var matches: Bool { mismatch == nil }
    public var description: String {
        if let mismatch { "episode \(episode): MISMATCH at frame \(mismatch.frame) of \(frames), \(mismatch.feature): \(mismatch.detail)" }
        else { "episode \(episode): match (\(frames) frames)" }
    }
}

/// Where a replay first departs from the recording.
public struct ReplayMismatch: Sendable, Equatable {
    /// The frame (`frame_index`).
    public var frame: Int
    /// The feature (`observation.state`, `next.reward`, `next.done`, `next.success`), with the
    /// element name for vectors (`observation.state[tbar_x]`).
    public var feature: String
    /// Recorded and replayed values (floats with their float32 bits).
    public var detail: String
}

/// Replays a dataset's episodes on a lockstep server and checks that the recorded states follow,
/// bit for bit (`sim-collect replay`).
///
/// For each episode, the data rows come from `meta/episodes` (`data/chunk_index`,
/// `data/file_index`, `dataset_from_index`, `dataset_to_index`, read with ``ParquetReader``), so it
/// does not matter how episodes are packed into files; `meta/robosim_collect.json` gives its run
/// seed, seed index and episode number in that run. An env is reset to exactly that episode
/// (`ResetRequest.seed`, `seed_indices`, `episodes`), then each recorded action is sent for the
/// frame's control steps (`fps` below the control rate holds it, as the collector did), and after
/// each frame the replayed `observation.state` (before the action), `next.reward` (the float32 of the
/// frame's summed rewards), `next.done` and `next.success` are compared with the recorded ones, floats
/// by their float32 bits. Several episodes run at once, one per env of the server.
public final class Replayer {
    /// One episode as replay needs it.
    public struct Episode: Sendable {
        public var index: Int
        public var length: Int
        /// Global frame indices `from..<from + length`.
        public var from: Int
        /// The data file holding its rows, relative to the dataset root.
        public var dataFile: String
        public var runSeed: UInt64
        public var seedIndex: Int
        public var envEpisode: Int
        public var scene: String?
    }

    public let root: URL
    public let fps: Double
    public let stateNames: [String]
    /// Where the state's components are stored (`observation.state`, `observation.environment_state`).
    let stateFeatures: [DatasetSpec.StateFeature]
    public let actionNames: [String]
    public let input: ReplayInput
    /// Every episode of the dataset, by index.
    public let episodes: [Episode]

    /// Reads the dataset's metadata (`meta/info.json`, `meta/robosim_collect.json`, `meta/episodes`).
    public init(root: URL) throws {
        self.root = root
        let stateURL = root.appendingPathComponent(LeRobotWriter.stateFile)
        guard FileManager.default.fileExists(atPath: stateURL.path) else {
            throw DatasetError("\(root.path) has no \(LeRobotWriter.stateFile): replay needs a dataset sim-collect recorded")
        }
        let state = try JSONDecoder().decode(LeRobotWriter.State.self, from: try Self.boundedData(stateURL, limit: 1 << 30))
        fps = state.spec.fps
        stateNames = state.spec.stateNames
        stateFeatures = state.spec.stateFeatures
        actionNames = state.spec.actionNames
        let inputs = Set(state.episodes.compactMap(\.input))
        guard inputs.count <= 1 else { throw DatasetError("episodes were recorded with both actions and end-effector targets") }
        // Datasets without the field: the strategist's targets are named ee_x, ee_y, ee_z.
        input = inputs.first ?? (actionNames == ["ee_x", "ee_y", "ee_z"] ? .endEffector : .action)
        let info = try JSONSerialization.jsonObject(with: try Self.boundedData(root.appendingPathComponent("meta/info.json"), limit: 64 << 20))
        guard let info = info as? [String: Any], let dataPath = info["data_path"] as? String else {
            throw DatasetError("meta/info.json has no data_path")
        }
        var rows: [Int: (length: Int, from: Int, file: String)] = [:]
        switch state.spec.format {
        case .lerobotV30:
            for url in try Self.episodeFiles(root) {
                let table = try ParquetReader.read(contentsOf: url, columns: ["episode_index", "length", "data/chunk_index", "data/file_index",
                                                                              "dataset_from_index", "dataset_to_index"])
                func column(_ name: String) throws -> [Int64] {
                    guard let values = table.column(name)?.integers, values.count == table.rowCount else {
                        throw DatasetError("\(url.lastPathComponent) has no integer column \(name)")
                    }
                    return values
                }
                let (index, length, chunk, file, from, to) = (try column("episode_index"), try column("length"), try column("data/chunk_index"),
                                                              try column("data/file_index"), try column("dataset_from_index"), try column("dataset_to_index"))
                for row in 0..<table.rowCount {
                    guard length[row] >= 0, to[row] - from[row] == length[row] else {
                        throw DatasetError("episode \(index[row]): dataset_from_index..dataset_to_index disagrees with its length")
                    }
                    rows[Int(index[row])] = (Int(length[row]), Int(from[row]),
                                             Self.format(dataPath, ["chunk_index": Int(chunk[row]), "file_index": Int(file[row])]))
                }
            }
        case .lerobotV21:
            for e in state.episodes {
                rows[e.index] = (e.length, e.from, Self.format(dataPath, ["episode_chunk": e.index / LeRobotWriter.chunkSize, "episode_index": e.index]))
            }
        }
        episodes = try state.episodes.map { e in
            guard let row = rows[e.index] else { throw DatasetError("episode \(e.index) is not in meta/episodes") }
            guard row.length == e.length, row.from == e.from else {
                throw DatasetError("episode \(e.index): meta/episodes and \(LeRobotWriter.stateFile) disagree on its rows")
            }
            // The file comes from meta/info.json's data_path: it must name a file inside the dataset.
            _ = try SafePath.child(of: root, named: row.file, what: "data file of episode \(e.index) (meta/info.json data_path)")
            return Episode(index: e.index, length: e.length, from: e.from, dataFile: row.file, runSeed: e.runSeed,
                           seedIndex: e.seedIndex ?? e.env, envEpisode: e.envEpisode, scene: e.scene)
        }
    }

    /// Replays `selection` (episode indices; nil: all) on the envs of the server `client` talks to
    /// (which must run the dataset's scene in lockstep mode). `report` gets each result as it is known.
    public func run(client: ServiceClient, selection: [Int]? = nil, clientName: String = "sim-collect-replay",
                    report: (ReplayResult) -> Void = { _ in }) throws -> [ReplayResult] {
        let chosen: [Episode] = try (selection ?? episodes.map(\.index)).map { i in
            guard episodes.indices.contains(i) else { throw DatasetError("no episode \(i): the dataset holds \(episodes.count)") }
            return episodes[i]
        }
        let d = try client.describe()
        guard d.mode == "lockstep" else { throw DatasetError("the server runs in \(d.mode) mode; replay needs --mode lockstep (or --scene)") }
        if let recorded = chosen.compactMap(\.scene).first, recorded != d.scene {
            throw DatasetError("the dataset was recorded on scene \(recorded), the server runs \(d.scene)")
        }
        let names = TaskInfo(describe: d).observationNames
        guard names == stateNames else { throw DatasetError("the server's observations \(names) are not the dataset's \(stateNames)") }
        let stepsPerFrame = try Collector.stepsPerFrame(describe: d, fps: fps)
        let vector = try VectorEnv(client: client, options: .init(clientName: clientName, ttl: 60))
        defer { vector.close() }
        let obsSize = vector.observationSize
        guard obsSize == stateNames.count else { throw DatasetError("the server's observation size \(obsSize) is not the dataset's \(stateNames.count)") }
        if input == .action, vector.actionSize != actionNames.count {
            throw DatasetError("the server's action size \(vector.actionSize) is not the dataset's \(actionNames.count)")
        }
        let width = input == .endEffector ? 3 : vector.actionSize
        var files = FrameFiles(root: root, stateFeatures: stateFeatures, stateWidth: obsSize, actionWidth: width)
        var labels = stateNames.map { "observation.state[\($0)]" }
        for f in stateFeatures { for (i, d) in f.indices.enumerated() { labels[d] = "\(f.key)[\(f.names[i])]" } }

        var pending = chosen[...]
        var slots = [Slot?](repeating: nil, count: vector.count)
        var observations = [Double](repeating: 0, count: vector.count * obsSize)
        var results: [ReplayResult] = []
        func start(_ k: Int) throws {
            guard let episode = pending.popFirst() else { slots[k] = nil; return }
            let frames = try files.frames(of: episode)
            let reply = try vector.reset(seed: episode.runSeed, seedIndices: [UInt64(episode.seedIndex)], episodes: [UInt64(episode.envEpisode)],
                                         positions: [k])
            observations.replaceSubrange(k * obsSize..<(k + 1) * obsSize, with: reply.observations)
            slots[k] = Slot(episode: episode, frames: frames)
        }
        func finish(_ k: Int, _ mismatch: ReplayMismatch?) throws {
            let slot = slots[k]!
            let result = ReplayResult(episode: slot.episode.index, frames: slot.episode.length, mismatch: mismatch)
            results.append(result)
            report(result)
            try start(k)
        }
        for k in 0..<vector.count { try start(k) }
        while true {
            // States before the frame's action.
            for k in slots.indices {
                while let slot = slots[k],
                      let m = Self.compareState(observations[k * obsSize..<(k + 1) * obsSize], slot.frames, frame: slot.frame, labels: labels) {
                    try finish(k, m)
                }
            }
            let active = slots.indices.filter { slots[$0] != nil }
            if active.isEmpty { break }
            var reward = [Double](repeating: 0, count: vector.count), done = [Bool](repeating: false, count: vector.count), success = done
            let commands = active.map { k in slots[k]!.frames.action(slots[k]!.frame) }
            var stepping = Array(active.indices)  // indices into `active`
            for _ in 0..<stepsPerFrame where !stepping.isEmpty {
                let command = stepping.flatMap { commands[$0] }
                let positions = stepping.map { active[$0] }
                let reply = input == .endEffector
                    ? try vector.step(endEffectorTargets: command, positions: positions)
                    : try vector.step(actions: command, positions: positions)
                for (j, k) in positions.enumerated() {
                    reward[k] += reply.rewards[j]
                    success[k] = success[k] || (j < reply.success.count && reply.success[j])
                    if reply.terminated[j] || reply.truncated[j] { done[k] = true }
                    observations.replaceSubrange(k * obsSize..<(k + 1) * obsSize, with: reply.observations[j * obsSize..<(j + 1) * obsSize])
                }
                stepping.removeAll { done[active[$0]] }
            }
            for k in active {
                let slot = slots[k]!
                let f = slot.frame
                let recorded = slot.frames
                var mismatch: ReplayMismatch?
                if Float(reward[k]).bitPattern != recorded.rewards[f].bitPattern {
                    mismatch = ReplayMismatch(frame: f, feature: "next.reward", detail: "recorded \(Self.bits(recorded.rewards[f])), replayed \(Self.bits(Float(reward[k])))")
                } else if success[k] != recorded.successes[f] {
                    mismatch = ReplayMismatch(frame: f, feature: "next.success", detail: "recorded \(recorded.successes[f]), replayed \(success[k])")
                } else if done[k] != recorded.dones[f] || (f == recorded.length - 1 && !done[k]) {
                    mismatch = ReplayMismatch(frame: f, feature: "next.done", detail: "recorded \(recorded.dones[f]), replayed \(done[k])")
                }
                if mismatch != nil || done[k] {
                    try finish(k, mismatch)
                } else {
                    slots[k]!.frame += 1
                }
            }
        }
        return results.sorted { $0.episode < $1.episode }
    }

    /// An episode being replayed on one env.
    private struct Slot {
        var episode: Episode
        var frames: RecordedFrames
        var frame = 0
    }

    /// The first element where the replayed state differs from recorded frame `frame`, if any.
    /// `labels` name each component with its feature (`observation.environment_state[pole_angle]`).
    static func compareState(_ replayed: ArraySlice<Double>, _ frames: RecordedFrames, frame: Int, labels: [String]) -> ReplayMismatch? {
        let recorded = frames.state(frame)
        for (d, (value, expected)) in zip(replayed, recorded).enumerated() where Float(value).bitPattern != expected.bitPattern {
            return ReplayMismatch(frame: frame, feature: d < labels.count ? labels[d] : "observation.state[\(d)]",
                                  detail: "recorded \(bits(expected)), replayed \(bits(Float(value)))")
        }
        return nil
    }

    /// `1.25 (0x3fa00000)`.
    static func bits(_ x: Float) -> String { "\(x) (0x\(String(x.bitPattern, radix: 16)))" }

    /// `template` with `{name}` and `{name:03d}` replaced by `values` (lerobot's path templates).
    static func format(_ template: String, _ values: [String: Int]) -> String {
        var out = template
        for (name, value) in values {
            out = out.replacingOccurrences(of: "{\(name)}", with: String(value))
            for width in 1...9 {
                out = out.replacingOccurrences(of: "{\(name):0\(width)d}", with: String(format: "%0\(width)d", value))
            }
        }
        return out
    }

    /// `meta/episodes/chunk-*/file-*.parquet`, in order.
    static func episodeFiles(_ root: URL) throws -> [URL] {
        let base = root.appendingPathComponent("meta/episodes")
        let fm = FileManager.default
        var out: [URL] = []
        for chunk in (try? fm.contentsOfDirectory(atPath: base.path))?.sorted() ?? [] where chunk.hasPrefix("chunk-") {
            for file in (try? fm.contentsOfDirectory(atPath: base.appendingPathComponent(chunk).path))?.sorted() ?? []
            where file.hasPrefix("file-") && file.hasSuffix(".parquet") {
                out.append(base.appendingPathComponent(chunk).appendingPathComponent(file))
            }
        }
        guard !out.isEmpty else { throw DatasetError("\(base.path) holds no episode files") }
        return out
    }

    /// The file's bytes, refusing files larger than `limit`.
    static func boundedData(_ url: URL, limit: Int) throws -> Data {
        let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
        guard size <= limit else { throw DatasetError("\(url.path) has \(size) bytes; more than \(limit) is not metadata") }
        return try Data(contentsOf: url)
    }
}

/// One episode's recorded frames: what replay compares and sends.
struct RecordedFrames {
    var length: Int
    var stateWidth: Int
    var actionWidth: Int
    var states: [Float]
    var actions: [Float]
    var rewards: [Float]
    var dones: [Bool]
    var successes: [Bool]

    func state(_ frame: Int) -> ArraySlice<Float> { states[frame * stateWidth..<(frame + 1) * stateWidth] }
    func action(_ frame: Int) -> [Double] { actions[frame * actionWidth..<(frame + 1) * actionWidth].map(Double.init) }
}

/// Data files read for replay, the last one kept (episodes packed into one file come one after another).
struct FrameFiles {
    let root: URL
    let stateFeatures: [DatasetSpec.StateFeature]
    let stateWidth: Int
    let actionWidth: Int
    let columns: Set<String>
    private var cached: (path: String, table: ParquetTable)?

    init(root: URL, stateFeatures: [DatasetSpec.StateFeature], stateWidth: Int, actionWidth: Int) {
        self.root = root
        self.stateFeatures = stateFeatures
        self.stateWidth = stateWidth
        self.actionWidth = actionWidth
        columns = Set(stateFeatures.map(\.key)).union(["action", "next.reward", "next.done", "next.success", "index", "episode_index"])
    }

    /// The rows of `episode`: those whose `index` runs from its `dataset_from_index`, checked to be
    /// contiguous, of its episode, and of the dataset's widths.
    mutating func frames(of episode: Replayer.Episode) throws -> RecordedFrames {
        if cached?.path != episode.dataFile {
            let url = try SafePath.child(of: root, named: episode.dataFile, what: "data file of episode \(episode.index)")
            cached = (episode.dataFile, try ParquetReader.read(contentsOf: url, columns: columns))
        }
        let table = cached!.table
        let file = episode.dataFile
        guard let index = table.column("index")?.integers, let episodes = table.column("episode_index")?.integers else {
            throw DatasetError("\(file) has no index or episode_index column")
        }
        guard let first = index.firstIndex(of: Int64(episode.from)) else { throw DatasetError("\(file) holds no row of index \(episode.from) (episode \(episode.index))") }
        let rows = first..<first + episode.length
        guard rows.upperBound <= index.count,
              index[rows].elementsEqual(Int64(episode.from)..<Int64(episode.from + episode.length)),
              episodes[rows].allSatisfy({ $0 == Int64(episode.index) })
        else { throw DatasetError("\(file): the rows of episode \(episode.index) are not indices \(episode.from)..<\(episode.from + episode.length)") }
        func vectors(_ name: String, width: Int) throws -> [Float] {
            guard let column = table.column(name), let values = column.floats else { throw DatasetError("\(file) has no float column \(name)") }
            let range = column.offsets.count == 1 ? column.valueRange(rows) : (column.offsets.isEmpty ? rows : 0..<0)
            guard column.offsets.count <= 1, range.count == rows.count * width,
                  column.offsets.isEmpty || rows.allSatisfy({ column.valueRange($0..<$0 + 1).count == width })
            else { throw DatasetError("\(file): \(name) rows are not vectors of \(width)") }
            return Array(values[range])
        }
        func flags(_ name: String) throws -> [Bool] {
            guard let values = table.column(name)?.bools else { throw DatasetError("\(file) has no bool column \(name)") }
            return Array(values[rows])
        }
        // The state vectors, put back together from their features in the task's order.
        var states = [Float](repeating: 0, count: episode.length * stateWidth)
        for f in stateFeatures {
            guard f.indices.allSatisfy({ $0 < stateWidth }) else { throw DatasetError("\(f.key) does not fit a state of \(stateWidth)") }
            let values = try vectors(f.key, width: f.indices.count)
            for row in 0..<episode.length {
                for (i, d) in f.indices.enumerated() { states[row * stateWidth + d] = values[row * f.indices.count + i] }
            }
        }
        return RecordedFrames(length: episode.length, stateWidth: stateWidth, actionWidth: actionWidth,
                              states: states, actions: try vectors("action", width: actionWidth),
                              rewards: try vectors("next.reward", width: 1), dones: try flags("next.done"), successes: try flags("next.success"))
    }
}
