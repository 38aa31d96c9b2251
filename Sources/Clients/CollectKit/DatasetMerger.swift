import ClientKit
import Foundation
import Parquet

/// Joins datasets that sim-collect recorded separately (shards of one job, recorded on several
/// machines) into one new dataset (`sim-collect merge OUT IN...`).
///
/// The inputs must agree on format, fps, features (state and action names, cameras, robot type)
/// and video codec. Episodes follow input by input, in order: episode indices and the frame `index`
/// are renumbered continuously, tasks are unified by their text (`task_index` remapped), and the
/// data files are rewritten with the new `episode_index`, `index` and `task_index` (every other
/// column as it was, bit for bit). v3.0 files are taken whole, as packed (each input file becomes
/// one output file, so the caps still hold, and videos are copied as they are, each episode at its
/// recorded place in its file); v2.1 files are per episode. Each episode keeps its
/// stats (those of the renumbered columns recomputed) and its replay bookkeeping (run seed, seed
/// index, episode number in its run), so `sim-collect replay` works on the merged dataset, and
/// `meta/stats.json`, `meta/info.json`, `meta/tasks.parquet` and `meta/episodes` are written by
/// ``LeRobotWriter`` as for a recording.
///
/// Data and video files are written atomically (temporary file, flush, rename), then the metadata,
/// `meta/robosim_collect.json` last: an interrupted merge leaves no dataset that claims to be
/// complete (OUT must then be removed before merging again). The inputs are read only.
public enum DatasetMerger {
    public struct Summary: Sendable {
        public var inputs: Int
        public var episodes: Int
        public var frames: Int
        public var tasks: Int
    }

    /// Merges `inputs` into `out`, a new or empty folder.
    @discardableResult
    public static func merge(inputs: [URL], into out: URL) throws -> Summary {
        guard !inputs.isEmpty else { throw DatasetError("merge needs at least one input dataset") }
        let fm = FileManager.default
        if let items = try? fm.contentsOfDirectory(atPath: out.path), items.contains(where: { !$0.hasPrefix(".") }) {
            throw DatasetError("\(out.path) is not empty: merge writes a new dataset; choose a new or empty folder")
        }
        let shards = try inputs.map(Shard.init)
        let spec = shards[0].state.spec
        for shard in shards.dropFirst() { try check(shard, against: shards[0]) }

        // The output keeps the inputs' caps (the largest, when they differ): its files are theirs.
        let caps = shards.compactMap(\.state.limits)
        let limits = caps.isEmpty ? nil : FileSizeLimits(dataMB: caps.map(\.dataMB).max()!, videoMB: caps.map(\.videoMB).max()!)
        let writer = try LeRobotWriter(root: out, spec: spec, resume: false,
                                       encoder: VideoEncoder(codec: VideoEncoder.Codec(rawValue: spec.videoCodec) ?? .av1), limits: limits)
        var tasks: [String] = []
        var entries: [LeRobotWriter.EpisodeEntry] = []
        var frames = 0
        var files = 0
        let packed = spec.format == .lerobotV30
        for shard in shards {
            let taskMap = shard.state.tasks.map { task in
                tasks.firstIndex(of: task) ?? { tasks.append(task); return tasks.count - 1 }()
            }
            // The input's files: runs of episodes sharing a data file (one episode each in v2.1).
            var groups: [[Int]] = []
            for (k, e) in shard.state.episodes.enumerated() {
                if packed, let last = groups.last?.last, shard.state.episodes[last].dataFileNumber == e.dataFileNumber { groups[groups.count - 1].append(k) } else { groups.append([k]) }
            }
            for group in groups {
                var renamed: [LeRobotWriter.EpisodeEntry] = []
                for k in group {
                    let old = shard.state.episodes[k]
                    guard shard.state.tasks.indices.contains(old.task) else {
                        throw DatasetError("\(shard.root.path): episode \(old.index) names task \(old.task), which the dataset lacks")
                    }
                    guard old.videoFileNumber == shard.state.episodes[group[0]].videoFileNumber else {
                        throw DatasetError("\(shard.root.path): episodes \(group.map { shard.state.episodes[$0].index }) share a data file but not a video file")
                    }
                    var entry = old
                    entry.index = entries.count + renamed.count
                    entry.from = frames
                    entry.task = taskMap[old.task]
                    if packed {
                        entry.dataFile = files
                        entry.videoFile = files
                        entry.videoFrom = old.videoFrom ?? 0
                    }
                    let n = entry.length
                    entry.stats["episode_index"] = FeatureStats(kind: .int, values: Array(repeating: Double(entry.index), count: n), dimension: 1)
                    entry.stats["index"] = FeatureStats(kind: .int, values: (0..<n).map { Double(entry.from + $0) }, dimension: 1)
                    entry.stats["task_index"] = FeatureStats(kind: .int, values: Array(repeating: Double(entry.task), count: n), dimension: 1)
                    renamed.append(entry)
                    frames += n
                }
                let first = shard.state.episodes[group[0]]
                let target = packed ? files : renamed[0].index
                try copyData(of: group.map { shard.located[$0] }, in: shard, to: out.appendingPathComponent(writer.dataPath(episode: target)), as: renamed)
                for camera in spec.cameras {
                    try copyFile(try SafePath.child(of: shard.root, named: LeRobotWriter.videoPath(format: spec.format, camera: camera, episode: first.videoFileNumber),
                                                    what: "video file"),
                                 to: try SafePath.child(of: out, named: writer.videoPath(camera: camera, episode: target), what: "video file"))
                }
                entries += renamed
                files += 1
            }
        }
        try writer.adopt(tasks: tasks, episodes: entries)
        return Summary(inputs: shards.count, episodes: entries.count, frames: frames, tasks: tasks.count)
    }

    /// One input: its bookkeeping and where each episode's rows are (through `meta/episodes`).
    struct Shard {
        let root: URL
        let state: LeRobotWriter.State
        let located: [Replayer.Episode]

        init(_ root: URL) throws {
            self.root = root
            let stateURL = root.appendingPathComponent(LeRobotWriter.stateFile)
            guard FileManager.default.fileExists(atPath: stateURL.path) else {
                throw DatasetError("\(root.path) has no \(LeRobotWriter.stateFile): merge joins datasets that sim-collect recorded")
            }
            state = try JSONDecoder().decode(LeRobotWriter.State.self, from: Data(contentsOf: stateURL))
            located = try Replayer(root: root).episodes
            guard located.map(\.index) == state.episodes.map(\.index) else {
                throw DatasetError("\(root.path): meta/episodes and \(LeRobotWriter.stateFile) list different episodes")
            }
        }
    }

    /// Refuses a shard whose format, fps, features or codec differ from the first input's.
    static func check(_ shard: Shard, against first: Shard) throws {
        let (a, b) = (first.state.spec, shard.state.spec)
        func refuse(_ what: String, _ x: Any, _ y: Any) -> DatasetError {
            DatasetError("cannot merge \(shard.root.path) into \(first.root.path)'s dataset: \(what) differs (\(y) vs \(x))")
        }
        if b.format != a.format { throw refuse("format", a.format.rawValue, b.format.rawValue) }
        if b.fps != a.fps { throw refuse("fps", a.fps, b.fps) }
        if b.stateNames != a.stateNames { throw refuse("observation.state (names)", a.stateNames, b.stateNames) }
        if b.environmentStateNames != a.environmentStateNames {
            throw refuse("observation.environment_state (names)", a.environmentStateNames, b.environmentStateNames)
        }
        if b.actionNames != a.actionNames { throw refuse("action (names)", a.actionNames, b.actionNames) }
        if b.cameras != a.cameras {
            throw refuse("cameras", a.cameras.map { "\($0.name) \($0.width)x\($0.height)" }, b.cameras.map { "\($0.name) \($0.width)x\($0.height)" })
        }
        if b.robotType != a.robotType { throw refuse("robot_type", a.robotType ?? "none", b.robotType ?? "none") }
        if b.videoCodec != a.videoCodec, !a.cameras.isEmpty { throw refuse("video codec", a.videoCodec, b.videoCodec) }
        if b != a { throw refuse("settings", a, b) }
    }

    /// Rewrites one data file, which holds exactly the rows of `located` in order, with their new
    /// `episode_index`, `index` and `task_index` (`entries`, in the same order).
    static func copyData(of located: [Replayer.Episode], in shard: Shard, to url: URL, as entries: [LeRobotWriter.EpisodeEntry]) throws {
        let source = try SafePath.child(of: shard.root, named: located[0].dataFile, what: "data file")
        let table = try ParquetReader.read(contentsOf: source)
        let expected = located.flatMap { e in (0..<e.length).map { Int64(e.from + $0) } }
        guard located.allSatisfy({ $0.dataFile == located[0].dataFile }), let index = table.column("index")?.integers,
              table.rowCount == expected.count, index == expected else {
            throw DatasetError("\(source.path) holds other rows than episodes \(located.map(\.index)), in order: merge takes data files whole, as sim-collect writes them")
        }
        let replaced: [String: ParquetColumn] = [
            "episode_index": .int64("episode_index", entries.flatMap { e in Array(repeating: Int64(e.index), count: e.length) }),
            "index": .int64("index", entries.flatMap { e in (0..<e.length).map { Int64(e.from + $0) } }),
            "task_index": .int64("task_index", entries.flatMap { e in Array(repeating: Int64(e.task), count: e.length) }),
        ]
        for name in replaced.keys where table.column(name) == nil { throw DatasetError("\(source.path) has no column \(name)") }
        let columns = table.columns.map { replaced[$0.name] ?? $0 }
        try AtomicFile.write(Data(try ParquetWriter.write(columns, metadata: table.metadata)), to: url)
    }

    /// Copies a file durably: a flushed temporary copy renamed into place.
    static func copyFile(_ source: URL, to url: URL) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: source.path) else { throw DatasetError("\(source.path) is missing") }
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = AtomicFile.temporaryURL(for: url)
        try? fm.removeItem(at: temporary)
        do {
            try fm.copyItem(at: source, to: temporary)
            try AtomicFile.sync(temporary)
            try AtomicFile.moveIntoPlace(temporary, url)
        } catch {
            try? fm.removeItem(at: temporary)
            throw error
        }
    }
}
