import ClientKit
import Foundation
import Parquet

/// Writes episodes as a LeRobot dataset that `LeRobotDataset(repo_id, root=DIR)` loads offline:
/// v3.0 (default) or v2.1 (`DatasetSpec.Format`). Compared with lerobot 0.4.4's own writer
/// (`../shared/fixtures/lerobot-v3.0-reference`): same `info.json` keys and feature entries,
/// Parquet schemas (vectors as lists of float32, int64 indices, Snappy), nested `stats/...`
/// episode columns, the tasks table with its pandas index, and AV1 yuv420p video.
///
/// Layout (v3.0): episodes packed into data and video files capped in size as lerobot's own writer
/// caps them (`data_files_size_in_mb`, `video_files_size_in_mb`: ``FileSizeLimits``). File number
/// n is `data/chunk-CCC/file-FFF.parquet` and `videos/<key>/chunk-CCC/file-FFF.mp4` (CCC = n / 1000,
/// FFF = n % 1000), with its episodes' rows in `meta/episodes/chunk-CCC/file-FFF.parquet`;
/// `meta/tasks.parquet`, `meta/stats.json` and `meta/info.json` describe every episode packed so far.
/// v2.1 keeps its one-file-per-episode layout (`episode_NNNNNN`), all metadata rewritten per episode.
///
/// Nothing lost (v3.0): each finished episode is first sealed in its own staging folder
/// (`.robosim-staging/episode-NNNNNN`: its data, its videos and its bookkeeping, flushed, then
/// the folder renamed into place), which writes no dataset file at all. When the next episode would
/// push the open group past a cap, and when the run finishes (``finish()``), the group is packed:
/// its data rows into one Parquet file, its videos joined without re-encoding (ffmpeg's concat
/// demuxer), its `meta/episodes` file, then `meta/tasks.parquet`, `stats.json`, `info.json` and
/// `meta/robosim_collect.json` (the spec and every episode's bookkeeping and stats), each
/// atomically, the last one last; then the staging folders go. Writing an episode costs the same
/// whatever the dataset's size, and a pack costs what its group holds (at most the caps). A crash
/// (kill -9) leaves every packed episode listed and every later finished episode sealed in
/// staging: `--resume` removes files that an interrupted pack left unlisted and packs the staged
/// episodes with the ones it records.
public final class LeRobotWriter {
    public let root: URL
    public let spec: DatasetSpec
    public let limits: FileSizeLimits
    let encoder: VideoEncoder
    var state: State
    /// v3.0: finished episodes sealed in staging, not yet packed, in order.
    var open: [StagedEpisode] = []

    /// Per-episode bookkeeping, kept in `meta/robosim_collect.json`.
    struct EpisodeEntry: Codable {
        var index: Int
        var length: Int
        var from: Int
        var task: Int
        /// Provenance: the server env and its episode number since the collector's seeded reset.
        var env: Int
        var envEpisode: Int
        var runSeed: UInt64
        var success: Bool
        var stats: [String: FeatureStats]
        /// Replay (`sim-collect replay`): the env's seed index in the run, the scene, the server's
        /// version and how actions were sent. Optional: datasets recorded before these were kept
        /// have none (replay then takes `env` as the seed index).
        var seedIndex: Int?
        var scene: String?
        var serverVersion: String?
        var input: ReplayInput?
        /// v3.0 placement: the number of the episode's data file and video files (chunk n / 1000,
        /// file n % 1000), and where its video starts in them, in seconds. Nil in datasets written
        /// one file per episode: the file number is then the episode index, the video starts at 0.
        var dataFile: Int?
        var videoFile: Int?
        var videoFrom: Double?

        var dataFileNumber: Int { dataFile ?? index }
        var videoFileNumber: Int { videoFile ?? index }
        /// The `meta/episodes` file that lists it: its data file's (file 0 for one-file-per-episode datasets).
        var metaFileNumber: Int { dataFile ?? 0 }
    }

    struct State: Codable {
        var spec: DatasetSpec
        var tasks: [String] = []
        var episodes: [EpisodeEntry] = []
        /// v3.0: the number the next packed file gets (nil before packing: one file per episode).
        var files: Int?
        /// v3.0: the file caps in force (nil in datasets written before packing).
        var limits: FileSizeLimits?
        var totalFrames: Int { episodes.last.map { $0.from + $0.length } ?? 0 }
        var nextFile: Int { files ?? episodes.count }
    }

    static let chunkSize = 1000
    static let stateFile = "meta/robosim_collect.json"

    /// Opens `root` for writing. A new dataset needs an empty or missing folder; `resume` appends
    /// to one this writer made with the same spec (fps, features, format), after removing files
    /// that an interrupted run left unlisted. `limits`: the v3.0 file caps (nil: the dataset's own
    /// when resuming, else lerobot's defaults); the state keeps them for the next `--resume`.
    public init(root: URL, spec: DatasetSpec, resume: Bool, encoder: VideoEncoder, limits: FileSizeLimits? = nil) throws {
        self.root = root
        self.spec = spec
        self.encoder = encoder
        // Camera names come from the server (or a dataset's own state, on resume and merge) and name
        // video folders: each must be one plain name, and every video path stays inside the dataset.
        for c in spec.cameras {
            try SafePath.component(c.name, in: root.path, what: "camera name")
            _ = try SafePath.child(of: root, named: Self.videoPath(format: spec.format, camera: c, episode: 0), what: "video path of camera \(c.name)")
        }
        let fm = FileManager.default
        let statePath = root.appendingPathComponent(Self.stateFile)
        if fm.fileExists(atPath: statePath.path) {
            guard resume else {
                throw DatasetError("\(root.path) already holds a dataset: pass --resume to append to it, or choose another --out")
            }
            let saved = try JSONDecoder().decode(State.self, from: Data(contentsOf: statePath))
            guard saved.spec == spec else {
                throw DatasetError("\(root.path) was recorded with other settings (fps, features, cameras or format): \(saved.spec) vs \(spec)")
            }
            state = saved
            self.limits = limits ?? saved.limits ?? .lerobot
            state.limits = self.limits
            try removeUnlisted()
            try rewriteMetadata()
            if spec.format == .lerobotV30 { try reopenStaging() }
        } else {
            if let items = try? fm.contentsOfDirectory(atPath: root.path), !items.filter({ !$0.hasPrefix(".") }).isEmpty {
                throw DatasetError("\(root.path) is not empty and holds no dataset of ours; choose an empty or new --out")
            }
            self.limits = limits ?? .lerobot
            state = State(spec: spec, limits: self.limits)
            // The state goes first: a run killed before its first pack leaves sealed episodes that
            // --resume must find (and a second run without --resume must not overwrite).
            try AtomicFile.write(try JSONEncoder().encode(state), to: statePath)
        }
    }

    /// Finished episodes: packed and staged.
    public var episodeCount: Int { state.episodes.count + open.count }
    public var frameCount: Int { open.last.map { $0.entry.from + $0.entry.length } ?? state.totalFrames }
    public var successCount: Int { state.episodes.filter(\.success).count + open.filter(\.entry.success).count }

    /// Writes one finished episode durably; returns its index. v3.0: sealed in staging, packed
    /// into the dataset's files when its group is full or at ``finish()``.
    @discardableResult
    public func write(_ episode: RecordedEpisode) throws -> Int {
        guard episode.length > 0 else { throw DatasetError("an episode needs at least one frame") }
        if spec.format == .lerobotV30 { return try stage(episode) }
        let index = state.episodes.count
        let from = state.totalFrames
        let taskIndex = state.tasks.firstIndex(of: episode.task) ?? { state.tasks.append(episode.task); return state.tasks.count - 1 }()
        let stats = statistics(of: episode, from: from, index: index, task: taskIndex)
        // 1. Videos and data under temporary names, flushed.
        var pending: [(URL, URL)] = []
        defer { for (temporary, _) in pending { try? FileManager.default.removeItem(at: temporary) } }
        for (c, camera) in spec.cameras.enumerated() {
            let url = root.appendingPathComponent(videoPath(camera: camera, episode: index))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = AtomicFile.temporaryURL(for: url)
            try encoder.encode(episode.images[c], width: camera.width, height: camera.height, fps: spec.fps, to: temporary)
            try AtomicFile.sync(temporary)
            pending.append((temporary, url))
        }
        let data = root.appendingPathComponent(dataPath(episode: index))
        try FileManager.default.createDirectory(at: data.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = AtomicFile.temporaryURL(for: data)
        let bytes = try dataFile(episode, index: index, from: from, task: taskIndex)
        try Data(bytes).write(to: temporary)
        try AtomicFile.sync(temporary)
        let dataFile = (temporary, data)
        pending.append(dataFile)
        // 2. Every metadata file with the episode, prepared (written and flushed) before any rename.
        let previous = state
        state.episodes.append(EpisodeEntry(index: index, length: episode.length, from: from, task: taskIndex, env: episode.env,
                                           envEpisode: episode.envEpisode, runSeed: episode.runSeed, success: episode.succeeded, stats: stats,
                                           seedIndex: episode.seedIndex, scene: episode.scene, serverVersion: episode.serverVersion,
                                           input: episode.input))
        let meta: [(URL, URL)]
        do {
            meta = try prepare(metadataFiles() + [(Self.stateFile, try JSONEncoder().encode(state))])
        } catch {
            state = previous
            throw error
        }
        pending += meta
        // 3. Renames only: videos and the task list (harmless when ahead), the data file, then the
        //    episode list, stats, info and our state. Between the data rename and the episode list's
        //    lies the only moment a crash leaves an unlisted data file (--resume removes it).
        let early = pending.filter { $0.1.pathExtension == "mp4" || $0.1.lastPathComponent.hasPrefix("tasks.") }
        let late = meta.filter { !early.map(\.1).contains($0.1) }
        for (temporary, url) in early { try AtomicFile.moveIntoPlace(temporary, url) }
        try AtomicFile.moveIntoPlace(dataFile.0, dataFile.1)
        for (temporary, url) in late { try AtomicFile.moveIntoPlace(temporary, url) }
        pending.removeAll()
        return index
    }

    /// Lists episodes whose data and video files are already in place under `root` (written
    /// durably by the caller: `sim-collect merge`), after those this writer holds, and writes the
    /// metadata once, each file atomically, `meta/robosim_collect.json` last. `episodes` must continue
    /// the numbering (`index`, `from`), refer to tasks by their place in `tasks` (a superset of ours,
    /// in order) and, in v3.0, name their files (`dataFile`, `videoFile`, `videoFrom`) from
    /// ``State/nextFile`` on; each v3.0 file's `meta/episodes` file is written here.
    func adopt(tasks: [String], episodes: [EpisodeEntry]) throws {
        guard open.isEmpty else { throw DatasetError("cannot adopt episodes while others wait in staging") }
        guard tasks.starts(with: state.tasks) else { throw DatasetError("adopted tasks must extend the dataset's") }
        var next = state
        next.tasks = tasks
        for e in episodes {
            guard e.index == next.episodes.count, e.from == next.totalFrames, tasks.indices.contains(e.task) else {
                throw DatasetError("adopted episode \(e.index) does not continue the dataset (index \(next.episodes.count), frame \(next.totalFrames))")
            }
            if spec.format == .lerobotV30 {
                guard let file = e.dataFile, e.videoFile != nil, file >= state.nextFile else {
                    throw DatasetError("adopted episode \(e.index) names no data file from \(state.nextFile) on")
                }
            }
            next.episodes.append(e)
        }
        if spec.format == .lerobotV30 { next.files = (episodes.compactMap(\.dataFile).max() ?? state.nextFile - 1) + 1 }
        let previous = state
        state = next
        do {
            var files: [(String, Data)] = []
            if spec.format == .lerobotV30 {
                for group in Dictionary(grouping: episodes, by: \.metaFileNumber).sorted(by: { $0.key < $1.key }) {
                    files.append((Self.episodesPath(file: group.key), Data(try episodesFile(group.value))))
                }
            }
            for (relative, bytes) in try files + metadataFiles() + [(Self.stateFile, try JSONEncoder().encode(state))] {
                try AtomicFile.write(bytes, to: root.appendingPathComponent(relative))
            }
        } catch {
            state = previous
            throw error
        }
    }

    /// Writes each (relative path, bytes) to a flushed temporary file beside its destination.
    func prepare(_ files: [(String, Data)]) throws -> [(URL, URL)] {
        var out: [(URL, URL)] = []
        do {
            for (relative, bytes) in files {
                let url = root.appendingPathComponent(relative)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                let temporary = AtomicFile.temporaryURL(for: url)
                try bytes.write(to: temporary)
                try AtomicFile.sync(temporary)
                out.append((temporary, url))
            }
        } catch {
            for (temporary, _) in out { try? FileManager.default.removeItem(at: temporary) }
            throw error
        }
        return out
    }

    // MARK: Paths

    func dataPath(episode: Int) -> String { Self.dataPath(format: spec.format, episode: episode) }

    func videoPath(camera: DatasetSpec.Camera, episode: Int) -> String { Self.videoPath(format: spec.format, camera: camera, episode: episode) }

    /// Where episode `episode`'s rows go in `format` (relative to the root).
    static func dataPath(format: DatasetSpec.Format, episode: Int) -> String {
        let (chunk, file) = (episode / Self.chunkSize, episode % Self.chunkSize)
        switch format {
        case .lerobotV30: return String(format: "data/chunk-%03d/file-%03d.parquet", chunk, file)
        case .lerobotV21: return String(format: "data/chunk-%03d/episode_%06d.parquet", chunk, episode)
        }
    }

    /// Where episode `episode`'s video of `camera` goes in `format` (relative to the root).
    static func videoPath(format: DatasetSpec.Format, camera: DatasetSpec.Camera, episode: Int) -> String {
        let (chunk, file) = (episode / Self.chunkSize, episode % Self.chunkSize)
        switch format {
        case .lerobotV30: return String(format: "videos/%@/chunk-%03d/file-%03d.mp4", camera.key, chunk, file)
        case .lerobotV21: return String(format: "videos/chunk-%03d/%@/episode_%06d.mp4", chunk, camera.key, episode)
        }
    }

    /// Removes data and video files no episode lists (left by a run killed mid-episode), and temporary files.
    private func removeUnlisted() throws {
        let fm = FileManager.default
        var listed = Set<String>()
        for e in state.episodes {
            listed.insert(dataPath(episode: e.dataFileNumber))
            for c in spec.cameras { listed.insert(videoPath(camera: c, episode: e.videoFileNumber)) }
            if spec.format == .lerobotV30 { listed.insert(Self.episodesPath(file: e.metaFileNumber)) }
        }
        for top in ["data", "videos"] + (spec.format == .lerobotV30 ? ["meta/episodes"] : []) {
            guard let walker = fm.enumerator(atPath: root.appendingPathComponent(top).path) else { continue }
            while let item = walker.nextObject() as? String {
                let relative = top + "/" + item
                var isDirectory: ObjCBool = false
                let exists = fm.fileExists(atPath: root.appendingPathComponent(relative).path, isDirectory: &isDirectory)
                if exists, !isDirectory.boolValue, !listed.contains(relative) { try fm.removeItem(at: root.appendingPathComponent(relative)) }
            }
        }
        if let items = try? fm.contentsOfDirectory(atPath: root.appendingPathComponent("meta").path) {
            for item in items where item.hasPrefix(".") && item.contains(".tmp-") { try? fm.removeItem(at: root.appendingPathComponent("meta/" + item)) }
        }
    }

    // MARK: Features and stats

    /// The vector and scalar features in `info.json` order, then the cameras.
    var features: [(key: String, entry: [String: Any])] {
        func vector(_ names: [String]) -> [String: Any] { ["dtype": "float32", "shape": [names.count], "names": names] }
        func scalar(_ dtype: String) -> [String: Any] { ["dtype": dtype, "shape": [1], "names": NSNull()] }
        var out: [(String, [String: Any])] = spec.stateFeatures.map { ($0.key, vector($0.names)) } + [("action", vector(spec.actionNames))]
        for c in spec.cameras {
            out.append((c.key, [
                "dtype": "video", "shape": [c.height, c.width, 3], "names": ["height", "width", "channels"],
                "info": [
                    "video.height": c.height, "video.width": c.width, "video.codec": VideoEncoder.Codec(rawValue: spec.videoCodec)?.infoName ?? spec.videoCodec,
                    "video.pix_fmt": "yuv420p", "video.is_depth_map": false, "video.fps": Self.number(spec.fps), "video.channels": 3,
                    "has_audio": false,
                ] as [String: Any],
            ]))
        }
        out += [("next.reward", scalar("float32")), ("next.done", scalar("bool")), ("next.success", scalar("bool")),
                ("timestamp", scalar("float32")), ("frame_index", scalar("int64")), ("episode_index", scalar("int64")),
                ("index", scalar("int64")), ("task_index", scalar("int64"))]
        return out
    }

    func statistics(of e: RecordedEpisode, from: Int, index: Int, task: Int) -> [String: FeatureStats] {
        let n = e.length
        var out: [String: FeatureStats] = [
            "action": FeatureStats(kind: .vector, values: e.actions.map(Double.init), dimension: spec.actionNames.count, rows: n),
            "next.reward": FeatureStats(kind: .vector, values: e.rewards.map(Double.init), dimension: 1),
            "next.done": FeatureStats(kind: .bool, values: e.dones.map { $0 ? 1 : 0 }, dimension: 1),
            "next.success": FeatureStats(kind: .bool, values: e.successes.map { $0 ? 1 : 0 }, dimension: 1),
            "timestamp": FeatureStats(kind: .vector, values: (0..<n).map { Double(Float(Double($0) / spec.fps)) }, dimension: 1),
            "frame_index": FeatureStats(kind: .int, values: (0..<n).map(Double.init), dimension: 1),
            "episode_index": FeatureStats(kind: .int, values: Array(repeating: Double(index), count: n), dimension: 1),
            "index": FeatureStats(kind: .int, values: (0..<n).map { Double(from + $0) }, dimension: 1),
            "task_index": FeatureStats(kind: .int, values: Array(repeating: Double(task), count: n), dimension: 1),
        ]
        for f in spec.stateFeatures {
            out[f.key] = FeatureStats(kind: .vector, values: f.gather(e.states, stateWidth: spec.stateNames.count).map(Double.init),
                                      dimension: f.names.count, rows: n)
        }
        for (c, camera) in spec.cameras.enumerated() { out[camera.key] = FeatureStats(rgbFrames: e.images[c]) }
        return out
    }

    /// Feature keys with stats, in `info.json` order.
    var statKeys: [String] { features.map(\.key) }

    // MARK: Files

    /// The HF `datasets` features of the data files (schema metadata "huggingface"): vectors are
    /// fixed-length lists, which is how lerobot gets fixed-size tensors back.
    var huggingfaceMetadata: String {
        func value(_ dtype: String) -> [String: Any] { ["dtype": dtype, "_type": "Value"] }
        // lerobot maps a feature of shape [1] to a scalar Value, longer ones to fixed-length lists.
        func list(_ length: Int) -> [String: Any] { length == 1 ? value("float32") : ["feature": value("float32"), "length": length, "_type": "List"] }
        var features: [String: Any] = [
            "action": list(spec.actionNames.count),
            "next.reward": value("float32"), "next.done": value("bool"), "next.success": value("bool"),
            "timestamp": value("float32"), "frame_index": value("int64"), "episode_index": value("int64"),
            "index": value("int64"), "task_index": value("int64"),
        ]
        for f in spec.stateFeatures { features[f.key] = list(f.names.count) }
        return Self.json(["info": ["features": features]])
    }

    func dataFile(_ e: RecordedEpisode, index: Int, from: Int, task: Int) throws -> [UInt8] {
        let n = e.length
        func vectors(_ name: String, _ flat: [Float], _ width: Int) -> ParquetColumn {
            switch width {
            case 0: .floatList(name, Array(repeating: [], count: n))
            case 1: .float(name, flat)   // shape [1]: a scalar column, as lerobot reads it
            default: .floatList(name, flat: flat, width: width)
            }
        }
        let columns: [ParquetColumn] = spec.stateFeatures.map { f in
            vectors(f.key, f.gather(e.states, stateWidth: spec.stateNames.count), f.names.count)
        } + [
            vectors("action", e.actions, spec.actionNames.count),
            .float("next.reward", e.rewards),
            .bool("next.done", e.dones),
            .bool("next.success", e.successes),
            .float("timestamp", (0..<n).map { Float(Double($0) / spec.fps) }),
            .int64("frame_index", (0..<n).map(Int64.init)),
            .int64("episode_index", Array(repeating: Int64(index), count: n)),
            .int64("index", (0..<n).map { Int64(from + $0) }),
            .int64("task_index", Array(repeating: Int64(task), count: n)),
        ]
        return try ParquetWriter.write(columns, metadata: ["huggingface": huggingfaceMetadata])
    }

    /// The metadata files of the episodes in `state` (paths relative to the root): the task list
    /// first, then the episode list, stats and info.
    func metadataFiles() throws -> [(String, Data)] {
        var files: [(String, Data)] = []
        switch spec.format {
        case .lerobotV30:
            files.append(("meta/tasks.parquet", Data(try tasksFile())))
        case .lerobotV21:
            let tasks = state.tasks.enumerated().map { Self.json(["task_index": $0.offset, "task": $0.element]) }
            files.append(("meta/tasks.jsonl", Data((tasks.joined(separator: "\n") + "\n").utf8)))
            let episodes = state.episodes.map { e in Self.json(["episode_index": e.index, "tasks": [state.tasks[e.task]], "length": e.length]) }
            files.append(("meta/episodes.jsonl", Data((episodes.joined(separator: "\n") + "\n").utf8)))
            let stats = state.episodes.map { e in
                Self.json(["episode_index": e.index, "stats": Dictionary(uniqueKeysWithValues: statKeys.compactMap { k in e.stats[k].map { (k, $0.jsonObject) } })])
            }
            files.append(("meta/episodes_stats.jsonl", Data((stats.joined(separator: "\n") + "\n").utf8)))
        }
        var aggregated: [String: Any] = [:]
        for key in statKeys {
            if let s = FeatureStats.aggregate(state.episodes.compactMap { $0.stats[key] }) { aggregated[key] = s.jsonObject }
        }
        files.append(("meta/stats.json", Data(Self.json(aggregated, pretty: true).utf8)))
        files.append(("meta/info.json", Data(Self.json(info(), pretty: true).utf8)))
        return files
    }

    /// Rewrites every metadata file from `state`, each atomically (after a resume: an interrupted
    /// run may have left metadata one episode ahead of our state).
    private func rewriteMetadata() throws {
        guard !state.episodes.isEmpty else { return }
        var files = try metadataFiles()
        // A v3.0 dataset written one file per episode (before packing) lists them all in
        // meta/episodes file 0, which a run killed mid-episode may have left one episode ahead.
        let unpacked = state.episodes.filter { $0.dataFile == nil }
        if spec.format == .lerobotV30, !unpacked.isEmpty { files.append((Self.episodesPath(file: 0), Data(try episodesFile(unpacked)))) }
        for (relative, bytes) in files { try AtomicFile.write(bytes, to: root.appendingPathComponent(relative)) }
    }

    func info() -> [String: Any] {
        let episodes = state.episodes.count
        var info: [String: Any] = [
            "robot_type": spec.robotType ?? NSNull(),
            "total_episodes": episodes,
            "total_frames": state.totalFrames,
            "total_tasks": state.tasks.count,
            "chunks_size": Self.chunkSize,
            "fps": Self.number(spec.fps),
            "splits": ["train": "0:\(episodes)"],
            "features": Dictionary(uniqueKeysWithValues: features.map { ($0.key, $0.entry) }),
        ]
        switch spec.format {
        case .lerobotV30:
            info["codebase_version"] = "v3.0"
            info["data_files_size_in_mb"] = Self.number(limits.dataMB)
            info["video_files_size_in_mb"] = Self.number(limits.videoMB)
            info["data_path"] = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
            info["video_path"] = spec.cameras.isEmpty ? NSNull() : "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        case .lerobotV21:
            info["codebase_version"] = "v2.1"
            info["total_chunks"] = max(1, (episodes + Self.chunkSize - 1) / Self.chunkSize)
            info["total_videos"] = episodes * spec.cameras.count
            info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
            info["video_path"] = spec.cameras.isEmpty ? NSNull() : "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
        }
        return info
    }

    /// `meta/episodes/chunk-CCC/file-FFF.parquet` for file number `file` (v3.0).
    static func episodesPath(file: Int) -> String {
        String(format: "meta/episodes/chunk-%03d/file-%03d.parquet", file / chunkSize, file % chunkSize)
    }

    /// A `meta/episodes` file (v3.0): one row per episode of `e`, which it lists as its own (`meta/episodes/...`).
    func episodesFile(_ e: [EpisodeEntry]) throws -> [UInt8] {
        let n = Double(1) / spec.fps
        var columns: [ParquetColumn] = [
            .int64("episode_index", e.map { Int64($0.index) }),
            .stringList("tasks", e.map { [state.tasks[$0.task]] }),
            .int64("length", e.map { Int64($0.length) }),
            .int64("data/chunk_index", e.map { Int64($0.dataFileNumber / Self.chunkSize) }),
            .int64("data/file_index", e.map { Int64($0.dataFileNumber % Self.chunkSize) }),
            .int64("dataset_from_index", e.map { Int64($0.from) }),
            .int64("dataset_to_index", e.map { Int64($0.from + $0.length) }),
        ]
        for c in spec.cameras {
            columns += [
                .int64("videos/\(c.key)/chunk_index", e.map { Int64($0.videoFileNumber / Self.chunkSize) }),
                .int64("videos/\(c.key)/file_index", e.map { Int64($0.videoFileNumber % Self.chunkSize) }),
                .double("videos/\(c.key)/from_timestamp", e.map { $0.videoFrom ?? 0 }),
                .double("videos/\(c.key)/to_timestamp", e.map { ($0.videoFrom ?? 0) + Double($0.length) * n }),
            ]
        }
        for key in statKeys {
            let stats = e.map { $0.stats[key]! }
            let kind = stats[0].kind
            func values(_ pick: (FeatureStats) -> [Double], _ name: String) -> ParquetColumn {
                switch kind {
                case .image: return .doubleList("stats/\(key)/\(name)", stats.map { pick($0).map { [[$0]] } })
                default: return .doubleList("stats/\(key)/\(name)", stats.map(pick))
                }
            }
            func bounds(_ pick: (FeatureStats) -> [Double], _ name: String) -> ParquetColumn {
                switch kind {
                case .bool: return .boolList("stats/\(key)/\(name)", stats.map { pick($0).map { $0 != 0 } })
                case .int: return .int64List("stats/\(key)/\(name)", stats.map { pick($0).map { Int64($0) } })
                default: return values(pick, name)
                }
            }
            columns += [bounds(\.min, "min"), bounds(\.max, "max"), values(\.mean, "mean"), values(\.std, "std"),
                        .int64List("stats/\(key)/count", stats.map { [Int64($0.count)] })]
            for (k, name) in FeatureStats.quantileNames.enumerated() { columns.append(values({ $0.quantiles[k] }, name)) }
        }
        columns += [.int64("meta/episodes/chunk_index", e.map { Int64($0.metaFileNumber / Self.chunkSize) }),
                    .int64("meta/episodes/file_index", e.map { Int64($0.metaFileNumber % Self.chunkSize) })]
        return try ParquetWriter.write(columns)
    }

    /// `meta/tasks.parquet` (v3.0): the task texts as the pandas index, with their task_index.
    func tasksFile() throws -> [UInt8] {
        let pandas: [String: Any] = [
            "index_columns": ["__index_level_0__"],
            "column_indexes": [["name": NSNull(), "field_name": NSNull(), "pandas_type": "unicode", "numpy_type": "object",
                                "metadata": ["encoding": "UTF-8"]] as [String: Any]],
            "columns": [
                ["name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": NSNull()] as [String: Any],
                ["name": NSNull(), "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object", "metadata": NSNull()],
            ],
            "attributes": [String: Any](),
            "creator": ["library": "robosim", "version": "1"],
            "pandas_version": "2.0.0",
        ]
        return try ParquetWriter.write([.int64("task_index", state.tasks.indices.map(Int64.init)), .string("__index_level_0__", state.tasks)],
                                       metadata: ["pandas": Self.json(pandas)])
    }

    static func json(_ object: Any, pretty: Bool = false) -> String {
        var options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        if pretty { options.insert(.prettyPrinted) }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: options)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Integral rates as integers in JSON (`"fps": 30`), others as numbers.
    static func number(_ x: Double) -> Any { x == x.rounded() && abs(x) < 1e9 ? Int(x) as Any : x as Any }
}

/// A dataset cannot be written or resumed: a one-line reason.
public struct DatasetError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
