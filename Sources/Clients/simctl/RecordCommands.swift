import ArgumentParser
import ClientKit
import Foundation
import Messaging
import Synchronization

/// `simctl record`: topics to an MCAP file (protobuf schemas as FileDescriptorSets, message
/// encoding `protobuf`, chunked, with summary and indexes). The node's I/O thread only queues what
/// arrives; a writer thread of its own writes it, so a slow disk never stalls the subscriptions.
struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record topics to an MCAP file until Ctrl-C (or --duration).",
        discussion: """
            simctl record -o run.mcap --all --duration 30
            simctl record -o cams.mcap /env_0/camera/overhead/image_raw /env_0/robot/pose
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(name: [.short, .customLong("output")], help: "The MCAP file to write.")
    var output: String

    @Argument(help: "Topics to record (with --all: every topic, as they appear).")
    var topics: [String] = []

    @Flag(help: "Record every topic with a known type, including topics that appear later.")
    var all = false

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(name: .customLong("max-queue-mb"), help: "Bytes waiting for the disk beyond which messages are dropped (and counted).")
    var maxQueueMB = 512

    func validate() throws {
        guard all != !topics.isEmpty else { throw ValidationError("name topics, or --all") }
        if let duration { guard duration > 0, duration.isFinite else { throw ValidationError("--duration must be positive") } }
        guard maxQueueMB >= 1, maxQueueMB <= 1 << 16 else { throw ValidationError("--max-queue-mb must be 1-65536") }
    }

    func run() throws {
        let node = try connection.node(prefix: "simctl_record")
        let recorder = try Recorder(url: URL(fileURLWithPath: output), node: node, maxQueueBytes: maxQueueMB << 20)
        let stop = DispatchSemaphore(value: 0)
        for signal in [SIGINT, SIGTERM] {
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            retainedSources.append(source)
        }
        let deadline = duration.map { Date().addingTimeInterval($0) }
        let wanted = Set(topics)
        var announced = false
        repeat {
            do {
                let added = try recorder.subscribeNew(graph: node.client.graph(timeout: connection.timeout), only: all ? nil : wanted)
                for topic in added where announced { FileHandle.standardError.write(Data("simctl: recording \(topic)\n".utf8)) }
                if !announced, all || recorder.topicCount == wanted.count {
                    FileHandle.standardError.write(Data("simctl: recording \(recorder.topicCount) topics to \(output)\n".utf8))
                    announced = true
                }
            } catch let error as MCAP.FormatError {
                throw fail("recording to \(output): \(error)")
            } catch let error as CocoaError {
                throw fail("recording to \(output): \(error.localizedDescription)")
            } catch {
                FileHandle.standardError.write(Data("simctl: \(error) (retrying)\n".utf8))
            }
            let wait: DispatchTime = deadline.map { .now() + min(0.5, max(0, $0.timeIntervalSinceNow)) } ?? .now() + 0.5
            if stop.wait(timeout: wait) == .success { break }
        } while deadline.map { $0.timeIntervalSinceNow > 0 } ?? true
        let summary = try recorder.finish()
        node.close()
        emit(summary)
    }
}

nonisolated(unsafe) var retainedSources: [any DispatchSourceSignal] = []

/// Subscriptions into an MCAP writer, through a bounded queue and a writer thread.
final class Recorder: @unchecked Sendable {
    // Invariant: `writer`, `schemaIDs`, `channelIDs` and `subscriptions` are used by the thread that
    // calls subscribeNew/finish and (writer only) by the writer thread, never both at once: channels
    // are added under `lock`, which the writer thread also takes per message.
    private let node: Node
    private let writer: MCAPWriter
    private let lock = NSLock()
    private var schemaIDs: [String: UInt16] = [:]
    private var channelIDs: [String: UInt16] = [:]
    private var subscriptions: [CallbackSubscription] = []
    private let queue = Mutex<(items: [(UInt16, UInt64, Data)], bytes: Int, done: Bool)>(([], 0, false))
    private let ready = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let maxQueueBytes: Int
    private let dropped = Atomic<UInt64>(0)
    private var counts: [UInt16: UInt64] = [:]
    private var sequences: [UInt16: UInt32] = [:]
    private var writeError: (any Error)?

    init(url: URL, node: Node, maxQueueBytes: Int) throws {
        self.node = node
        self.maxQueueBytes = maxQueueBytes
        writer = try MCAPWriter(url: url, profile: "robosim")
        let thread = Thread { [self] in drain() }
        thread.name = "simctl.record.writer"
        thread.start()
    }

    var topicCount: Int { lock.withLock { channelIDs.count } }

    /// Subscribes to the graph's topics not recorded yet (those in `only`, when given) whose type
    /// has a schema. Returns the new ones.
    func subscribeNew(graph: Robosim_GraphListResponse, only: Set<String>?) throws -> [String] {
        let types = graph.publishedTopics()
        var added: [String] = []
        for (topic, type) in types.sorted(by: { $0.key < $1.key }) where only?.contains(topic) ?? true {
            // Foxglove's names (`ros.sensor_msgs.Image`), so that Foxglove's panels show the file.
            guard lock.withLock({ channelIDs[topic] == nil }), let schema = ProtoSchemas.foxgloveSchema(rosType: type) else { continue }
            let channel: UInt16 = try lock.withLock {
                let schemaID: UInt16
                if let id = schemaIDs[schema.name] {
                    schemaID = id
                } else {
                    schemaID = try writer.addSchema(name: schema.name, encoding: "protobuf", data: schema.descriptorSet)
                    schemaIDs[schema.name] = schemaID
                }
                let id = try writer.addChannel(schemaID: schemaID, topic: topic, messageEncoding: "protobuf", metadata: ["ros_type": type])
                channelIDs[topic] = id
                return id
            }
            // Reliable with a deep queue: the recorder keeps every message the hub forwards to it.
            subscriptions.append(try node.onRawMessage(topic, typeName: type, qos: .reliable(depth: 100_000)) { [self] raw in
                enqueue(channel, raw.payload)
            })
            added.append(topic)
        }
        return added
    }

    private func enqueue(_ channel: UInt16, _ payload: Data) {
        let now = UInt64(Date().timeIntervalSince1970 * 1e9)
        // nil: the recording has ended (a message that was on its way); false: over the queue's bound.
        let accepted = queue.withLock { q -> Bool? in
            guard !q.done else { return nil }
            guard q.bytes + payload.count <= maxQueueBytes else { return false }
            q.items.append((channel, now, payload))
            q.bytes += payload.count
            return true
        }
        if accepted == true { ready.signal() } else if accepted == false { dropped.add(1, ordering: .relaxed) }
    }

    private func drain() {
        while true {
            ready.wait()
            let (items, done) = queue.withLock { q -> ([(UInt16, UInt64, Data)], Bool) in
                let items = q.items
                q.items = []
                q.bytes = 0
                return (items, q.done)
            }
            for (channel, time, payload) in items where writeError == nil {
                lock.withLock {
                    let sequence = sequences[channel, default: 0]
                    sequences[channel] = sequence &+ 1
                    do {
                        try writer.add(channel: channel, sequence: sequence, logTime: time, publishTime: time, data: payload)
                        counts[channel, default: 0] += 1
                    } catch {
                        writeError = error
                    }
                }
            }
            if done { break }
        }
        finished.signal()
    }

    /// Stops the subscriptions, writes what is queued and the summary; returns one line per topic.
    func finish() throws -> String {
        subscriptions = []
        queue.withLock { $0.done = true }
        ready.signal()
        finished.wait()
        if let writeError { throw writeError }
        try lock.withLock { try writer.finish() }
        let total = counts.values.reduce(0, +)
        var lines = lock.withLock { channelIDs.sorted { $0.key < $1.key }.map { "\($0.key)\t\(counts[$0.value] ?? 0)" } }
        lines.append("total\t\(total) messages, \(dropped.load(ordering: .relaxed)) dropped")
        return lines.joined(separator: "\n")
    }
}

/// `simctl play`: publishes an MCAP file's messages on their topics with their timing.
struct Play: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish an MCAP file's protobuf messages on their topics, with the recorded timing.",
        discussion: """
            simctl play run.mcap                  # real time
            simctl play run.mcap --rate 4         # four times as fast
            simctl play run.mcap --topic /env_0/robot/pose
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The MCAP file.")
    var file: String

    @Option(help: "Speed factor (2: twice as fast).")
    var rate = 1.0

    @Option(name: .customLong("topic"), help: "Only these topics (repeatable; default: all).")
    var only: [String] = []

    @Option(name: .customLong("wait"), help: "Seconds to let subscribers connect before the first message.")
    var wait = 1.0

    func validate() throws {
        guard rate > 0, rate.isFinite, rate <= 1000 else { throw ValidationError("--rate must be in (0, 1000]") }
        guard wait >= 0, wait <= 60 else { throw ValidationError("--wait must be 0-60 s") }
    }

    func run() throws {
        var reader = try MCAPReader(url: URL(fileURLWithPath: file))
        let node = try connection.node(prefix: "simctl_play")
        var publishers: [UInt16: RawPublisher] = [:]
        var skipped = Set<UInt16>()
        var start: (wall: Date, log: UInt64)?
        var published = 0, dropped = 0
        let wanted = Set(only)
        let began = Date()
        try reader.forEachMessage { m, channel, schema in
            if skipped.contains(m.channelID) { return }
            if publishers[m.channelID] == nil {
                guard let channel, let schema, channel.messageEncoding == "protobuf", wanted.isEmpty || wanted.contains(channel.topic) else {
                    skipped.insert(m.channelID)
                    return
                }
                let type = rosTypeName(protoName: ProtoSchemas.protoName(fromSchemaName: schema.name))
                guard MessageTypes.type(named: type) != nil else {
                    FileHandle.standardError.write(Data("simctl: skipping \(channel.topic): unknown type \(schema.name)\n".utf8))
                    skipped.insert(m.channelID)
                    return
                }
                publishers[m.channelID] = try node.advertiseRaw(channel.topic, typeName: type, qos: .standard)
                if start == nil { Thread.sleep(forTimeInterval: wait) }
            }
            if start == nil { start = (Date(), m.logTime) }
            // A message stamped before the first one (files need not be in time order) goes at once.
            let due = start!.wall.addingTimeInterval(m.logTime > start!.log ? Double(m.logTime - start!.log) / 1e9 / rate : 0)
            let ahead = due.timeIntervalSinceNow
            if ahead > 0 { Thread.sleep(forTimeInterval: ahead) }
            if publishers[m.channelID]!.publish(serialized: [UInt8](m.data)) { published += 1 } else { dropped += 1 }
        }
        Thread.sleep(forTimeInterval: 0.2)   // let the last messages leave
        node.close()
        emit("published \(published) messages on \(publishers.count) topics in \(String(format: "%.1f", Date().timeIntervalSince(began))) s\(dropped > 0 ? ", \(dropped) dropped" : "")")
    }
}
