import ArgumentParser
import ClientKit
import Foundation
import Messaging

struct Topic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Topics: list, info, echo, hz, pub.",
        subcommands: [List.self, Info.self, Echo.self, Hz.self, Pub.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics known to the graph.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(name: [.customShort("t"), .long], help: "Show each topic's type.") var showTypes = false

        func run() throws {
            for t in try connection.client().graph().topics {
                emit(showTypes ? "\(t.name) [\(t.type)]" : t.name)
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Type, publishers, subscribers and statistics of a topic.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name.") var topic: String

        func run() throws {
            guard let t = try connection.client().graph().topics.first(where: { $0.name == topic }) else {
                throw fail("unknown topic '\(topic)'")
            }
            emit("Topic: \(t.name)")
            emit("Type: \(t.type)")
            emit("Publisher count: \(t.publishers.count) \(t.publishers)")
            emit("Subscription count: \(t.subscribers.count) \(t.subscribers) (connections: \(t.subscriberConnections))")
            emit(String(format: "Rate: %.2f Hz, bandwidth %.0f B/s", t.rateHz, t.bandwidthBps))
            emit("Messages forwarded: \(t.messages) (\(t.bytes) bytes), dropped: \(t.dropped)")
        }
    }

    struct Echo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print messages of a topic.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name.") var topic: String
        @Option(help: "Exit after this many messages.") var count: Int?
        @Flag(help: "One JSON object per line (protobuf JSON mapping, ROS field names).") var json = false
        @Option(name: .customLong("wait"), help: "Give up (exit 1) when no message came within this many seconds.") var wait: Double?
        @Option(help: "Queue depth; the newest messages are kept.") var depth = 100

        func validate() throws {
            if let count, count < 1 { throw ValidationError("--count must be at least 1") }
            if !Names.isValidTopic(topic) { throw ValidationError("invalid topic name '\(topic)'") }
        }

        func run() async throws {
            let node = try connection.node(prefix: "simctl_echo")
            defer { node.close() }
            let subscription = try node.subscribeRaw(topic, qos: .sensorData(depth: depth))
            let (limit, asJSON, name) = (count, json, topic)
            let printed = try await withDeadline(wait) {
                var n = 0
                for await raw in subscription {
                    do {
                        let message = try MessageJSON.decode(typeName: raw.typeName, payload: raw.payload)
                        emit(asJSON ? MessageJSON.compact(message) : MessageJSON.pretty(message) + "\n---")
                    } catch {
                        FileHandle.standardError.write(Data("simctl: \(name): \(error)\n".utf8))
                    }
                    n += 1
                    if let limit, n >= limit { break }
                }
                return n
            }
            if printed == nil { throw fail("no message on \(topic) within \(wait ?? 0) s") }
        }
    }

    struct Hz: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Measure the rate of a topic.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name.") var topic: String
        @Option(help: "Stop after this many seconds (default: until Ctrl-C).") var duration: Double?
        @Option(help: "Messages in the rolling window.") var window = 1000

        func run() async throws {
            let node = try connection.node(prefix: "simctl_hz")
            defer { node.close() }
            let subscription = try node.subscribeRaw(topic, qos: .reliable(depth: 100_000))
            let windowSize = window
            let start = Date()
            let stats = try await withDeadline(duration) { () async -> RateStats in
                var stats = RateStats(window: windowSize)
                var lastReport = Date()
                for await _ in subscription {
                    stats.add(Date().timeIntervalSince(start))
                    if Date().timeIntervalSince(lastReport) >= 1, let line = stats.report() {
                        emit(line)
                        lastReport = Date()
                    }
                }
                return stats
            }
            _ = stats
            emit("received \(subscription.received) messages on \(topic) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }

    struct Pub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a message given as JSON.",
            discussion: "Example: simctl topic pub /env_0/cmd_vel geometry_msgs/msg/Twist '{\"linear\":{\"x\":0.2}}' --rate 10")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name.") var topic: String
        @Argument(help: "Message type, e.g. geometry_msgs/msg/Twist.") var type: String
        @Argument(help: "The message in protobuf JSON.") var json: String = "{}"
        @Option(help: "Publish repeatedly at this rate in Hz.") var rate: Double?
        @Option(help: "Stop after this many messages (default: 1 without --rate, unlimited with it).") var count: Int?
        @Option(name: .customLong("wait-matching"), help: "Seconds to wait for a subscriber before publishing.") var waitMatching: Double = 1

        func validate() throws {
            if !Names.isValidTopic(topic) { throw ValidationError("invalid topic name '\(topic)'") }
            if let rate, !(rate > 0 && rate <= 100_000) { throw ValidationError("--rate must be in (0, 100000]") }
            if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        }

        func run() async throws {
            let message = try MessageJSON.message(typeName: type, json: json)
            let payload: [UInt8] = try message.serializedBytes()
            let node = try connection.node(prefix: "simctl_pub")
            defer { node.close() }
            let publisher = try node.advertiseRaw(topic, typeName: type, qos: .standard)
            try await waitForSubscriber(node)
            let total = count ?? (rate == nil ? 1 : Int.max)
            var sent = 0
            let clock = ContinuousClock()
            var next = clock.now
            while sent < total && !Task.isCancelled {
                publisher.publish(serialized: payload)
                sent += 1
                guard let rate else { continue }
                next = next.advanced(by: .seconds(1 / rate))
                try await clock.sleep(until: next)
            }
            // Give ZeroMQ a moment to flush before the socket closes.
            try await Task.sleep(for: .milliseconds(100))
            FileHandle.standardError.write(Data("simctl: published \(sent) message(s) on \(topic)\n".utf8))
        }

        /// Waits until the hub reports a subscription matching the topic (ZeroMQ drops messages
        /// published before a subscription reaches the publisher), up to `--wait-matching` seconds.
        private func waitForSubscriber(_ node: Node) async throws {
            let deadline = Date().addingTimeInterval(waitMatching)
            while Date() < deadline {
                let graph = try node.client.graph()
                if let t = graph.topics.first(where: { $0.name == topic }), t.subscriberConnections > 0 {
                    try await Task.sleep(for: .milliseconds(50))  // subscription still travels hub -> us
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}

/// Rolling receive-rate statistics, like `ros2 topic hz`.
struct RateStats {
    let window: Int
    private var times: [Double] = []

    init(window: Int) { self.window = max(2, window) }

    mutating func add(_ t: Double) {
        times.append(t)
        if times.count > window { times.removeFirst(times.count - window) }
    }

    func report() -> String? {
        guard times.count >= 2 else { return nil }
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let sd = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)).squareRoot()
        return String(format: "average rate: %.3f\n\tmin: %.4fs max: %.4fs std dev: %.5fs window: %d",
                      mean > 0 ? 1 / mean : 0, gaps.min()!, gaps.max()!, sd, times.count)
    }
}
