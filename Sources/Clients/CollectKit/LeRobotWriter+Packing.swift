import ClientKit
import Foundation
import Parquet

/// How large a v3.0 data or video file may grow before the next episode starts a new one: lerobot's
/// `data_files_size_in_mb` and `video_files_size_in_mb` (MiB), which `meta/info.json` records. An
/// episode larger than a cap gets a file of its own, as in lerobot's writer.
public struct FileSizeLimits: Sendable, Equatable, Codable {
    public var dataMB: Double
    public var videoMB: Double

    public init(dataMB: Double, videoMB: Double) {
        self.dataMB = dataMB
        self.videoMB = videoMB
    }

    /// lerobot 0.4.4's defaults: 100 MiB of data and 200 MiB of video per file.
    public static let lerobot = FileSizeLimits(dataMB: 100, videoMB: 200)

    var dataBytes: Double { dataMB * 1_048_576 }
    var videoBytes: Double { videoMB * 1_048_576 }
}

/// A finished episode sealed in staging (v3.0), waiting to be packed: its bookkeeping (without
/// placement), its task's text (task indices of unpacked episodes are not yet on disk) and the
/// sizes of its files.
struct StagedEpisode: Codable {
    var entry: LeRobotWriter.EpisodeEntry
    var task: String
    var dataBytes: Int
    var videoBytes: [Int]
}

extension LeRobotWriter {
    static let stagingFolder = ".robosim-staging"

    /// Reopens a dataset this writer made, with its own settings (spec and video codec), as
    /// `--resume` does: for packing what a killed run left in staging without recording more.
    public static func reopen(root: URL, limits: FileSizeLimits? = nil) throws -> LeRobotWriter {
        let url = root.appendingPathComponent(stateFile)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DatasetError("\(root.path) has no \(stateFile): not a dataset sim-collect recorded")
        }
        let spec = try JSONDecoder().decode(State.self, from: Data(contentsOf: url)).spec
        return try LeRobotWriter(root: root, spec: spec, resume: true,
                                 encoder: VideoEncoder(codec: VideoEncoder.Codec(rawValue: spec.videoCodec) ?? .av1), limits: limits)
    }

    /// Finished episodes sealed in staging, not yet packed.
    public var stagedCount: Int { open.count }

    func stagingURL(_ index: Int) -> URL {
        root.appendingPathComponent(Self.stagingFolder).appendingPathComponent(String(format: "episode-%06d", index))
    }

    /// Seals `episode` in its staging folder (data, videos and bookkeeping flushed, then the folder
    /// renamed into place), packing the open group first when this episode would push it past a cap.
    func stage(_ episode: RecordedEpisode) throws -> Int {
        let index = episodeCount
        let from = frameCount
        let taskIndex = state.tasks.firstIndex(of: episode.task) ?? { state.tasks.append(episode.task); return state.tasks.count - 1 }()
        let entry = EpisodeEntry(index: index, length: episode.length, from: from, task: taskIndex, env: episode.env,
                                 envEpisode: episode.envEpisode, runSeed: episode.runSeed, success: episode.succeeded,
                                 stats: statistics(of: episode, from: from, index: index, task: taskIndex),
                                 seedIndex: episode.seedIndex, scene: episode.scene, serverVersion: episode.serverVersion, input: episode.input)
        let fm = FileManager.default
        let folder = stagingURL(index)
        let temporary = folder.deletingLastPathComponent().appendingPathComponent(".\(folder.lastPathComponent).tmp-\(getpid())")
        try? fm.removeItem(at: temporary)
        try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
        var sealed = false
        defer { if !sealed { try? fm.removeItem(at: temporary) } }
        var videoBytes: [Int] = []
        for (c, camera) in spec.cameras.enumerated() {
            let url = temporary.appendingPathComponent("video-\(c).mp4")
            try encoder.encode(episode.images[c], width: camera.width, height: camera.height, fps: spec.fps, to: url)
            try AtomicFile.sync(url)
            videoBytes.append(try Self.size(url))
        }
        let data = try dataFile(episode, index: index, from: from, task: taskIndex)
        try Self.writeSynced(Data(data), to: temporary.appendingPathComponent("data.parquet"))
        let staged = StagedEpisode(entry: entry, task: episode.task, dataBytes: data.count, videoBytes: videoBytes)
        try Self.writeSynced(try JSONEncoder().encode(staged), to: temporary.appendingPathComponent("episode.json"))
        AtomicFile.syncFolder(temporary)
        try? fm.removeItem(at: folder)
        try AtomicFile.moveIntoPlace(temporary, folder)
        sealed = true
        while !open.isEmpty && exceedsLimits(adding: staged) { try pack() }
        open.append(staged)
        return index
    }

    /// Whether adding `staged` would push the open group's data or one camera's video past its cap.
    func exceedsLimits(adding staged: StagedEpisode) -> Bool {
        let data = open.reduce(staged.dataBytes) { $0 + $1.dataBytes }
        if Double(data) > limits.dataBytes { return true }
        for c in staged.videoBytes.indices {
            let video = open.reduce(staged.videoBytes[c]) { $0 + ($1.videoBytes.indices.contains(c) ? $1.videoBytes[c] : 0) }
            if Double(video) > limits.videoBytes { return true }
        }
        return false
    }

    /// Packs every staged episode: data, videos, their `meta/episodes` file, then the dataset's
    /// metadata and `meta/robosim_collect.json` last, each atomically; then removes their staging folders.
    public func finish() throws {
        while !open.isEmpty { try pack() }
        let staging = root.appendingPathComponent(Self.stagingFolder)
        if (try? FileManager.default.contentsOfDirectory(atPath: staging.path))?.isEmpty == true { try? FileManager.default.removeItem(at: staging) }
    }

    /// Packs the open group into the next file number, or its longest leading part whose files keep
    /// within the caps (a joined file can come out a little larger than its parts: one more
    /// container's sample tables); the rest stays open.
    func pack() throws {
        guard !open.isEmpty else { return }
        var count = open.count
        while let over = try pack(count) { count = max(1, min(count - 1, Int(Double(count) / over))) }
    }

    /// Packs the first `count` open episodes and returns nil, or returns by how much (a ratio > 1)
    /// a file would pass its cap, writing nothing, when `count` > 1.
    private func pack(_ count: Int) throws -> Double? {
        let group = Array(open.prefix(count))
        let file = state.nextFile
        let fm = FileManager.default
        // Data: every staged file's rows, one after another.
        let tables = try group.map { try ParquetReader.read(contentsOf: stagingURL($0.entry.index).appendingPathComponent("data.parquet")) }
        let columns = try tables[0].columns.map { first in
            try ParquetColumn.concatenated(try tables.map { table in
                guard let column = table.column(first.name) else { throw DatasetError("a staged episode's data has no column \(first.name)") }
                return column
            })
        }
        let data = try ParquetWriter.write(columns, metadata: tables[0].metadata)
        if count > 1, Double(data.count) > limits.dataBytes { return Double(data.count) / limits.dataBytes }
        // Videos: joined without re-encoding, each episode starting where the previous one ended.
        var videos: [(URL, URL)] = []
        defer { for (temporary, _) in videos { try? fm.removeItem(at: temporary) } }
        for (c, camera) in spec.cameras.enumerated() {
            let url = root.appendingPathComponent(videoPath(camera: camera, episode: file))
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = AtomicFile.temporaryURL(for: url)
            try? fm.removeItem(at: temporary)
            videos.append((temporary, url))
            let inputs = group.map { stagingURL($0.entry.index).appendingPathComponent("video-\(c).mp4") }
            if inputs.count == 1 { try fm.copyItem(at: inputs[0], to: temporary) } else { try encoder.concatenate(inputs, to: temporary) }
            let size = Double(try Self.size(temporary))
            if count > 1, size > limits.videoBytes { return size / limits.videoBytes }
        }
        try AtomicFile.write(data, to: root.appendingPathComponent(dataPath(episode: file)))
        for (temporary, url) in videos {
            try AtomicFile.sync(temporary)
            try AtomicFile.moveIntoPlace(temporary, url)
        }
        videos.removeAll()
        var entries: [EpisodeEntry] = []
        var start = 0.0
        for staged in group {
            var e = staged.entry
            e.dataFile = file
            e.videoFile = file
            e.videoFrom = start
            start += Double(e.length) / spec.fps
            entries.append(e)
        }
        try AtomicFile.write(try episodesFile(entries), to: root.appendingPathComponent(Self.episodesPath(file: file)))
        let previous = state
        state.episodes += entries
        state.files = file + 1
        do {
            for (relative, bytes) in try metadataFiles() + [(Self.stateFile, try JSONEncoder().encode(state))] {
                try AtomicFile.write(bytes, to: root.appendingPathComponent(relative))
            }
        } catch {
            state = previous
            throw error
        }
        for staged in group { try? fm.removeItem(at: stagingURL(staged.entry.index)) }
        open.removeFirst(count)
        return nil
    }

    /// On `--resume`: drops staging folders a crash left half-written or already packed, and takes
    /// the sealed ones that follow the packed episodes back into the open group, in order.
    func reopenStaging() throws {
        let fm = FileManager.default
        let folder = root.appendingPathComponent(Self.stagingFolder)
        guard let items = try? fm.contentsOfDirectory(atPath: folder.path) else { return }
        var sealed: [Int: URL] = [:]
        for item in items {
            let url = folder.appendingPathComponent(item)
            if item.hasPrefix("episode-"), let index = Int(item.dropFirst("episode-".count)), index >= state.episodes.count,
               item == stagingURL(index).lastPathComponent {
                sealed[index] = url
            } else {
                try? fm.removeItem(at: url)
            }
        }
        for index in sealed.keys.sorted() {
            let url = sealed[index]!
            guard index == episodeCount, var staged = try? JSONDecoder().decode(StagedEpisode.self, from: Data(contentsOf: url.appendingPathComponent("episode.json"))),
                  staged.entry.index == index, staged.entry.from == frameCount, staged.videoBytes.count == spec.cameras.count,
                  fm.fileExists(atPath: url.appendingPathComponent("data.parquet").path),
                  spec.cameras.indices.allSatisfy({ fm.fileExists(atPath: url.appendingPathComponent("video-\($0).mp4").path) })
            else {
                // Not a sealed continuation of the dataset (it cannot happen with one writer): dropped.
                try? fm.removeItem(at: url)
                continue
            }
            let task = state.tasks.firstIndex(of: staged.task) ?? { state.tasks.append(staged.task); return state.tasks.count - 1 }()
            guard task == staged.entry.task else {
                throw DatasetError("staged episode \(index) was recorded as task \(staged.entry.task), which is now \(task): remove \(url.path) or merge it separately")
            }
            staged.entry.dataFile = nil
            open.append(staged)
        }
    }

    static func size(_ url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
    }

    static func writeSynced(_ data: Data, to url: URL) throws {
        try data.write(to: url)
        try AtomicFile.sync(url)
    }
}
