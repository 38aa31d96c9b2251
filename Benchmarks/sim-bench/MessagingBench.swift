import ArgumentParser
import CZeroMQ
import Foundation
import Logging
import Messaging
import Synchronization

/// Pub/sub throughput through the hub vs raw libzmq PUB->SUB, and service round trips vs raw REQ/REP.
struct MessagingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "messaging",
        abstract: "Topic throughput through the hub and service round trip, beside raw libzmq.")

    @Option(help: "Message payload sizes in bytes, comma-separated.")
    var sizes: String = "100,1048576"

    @Option(help: "Seconds of publishing per measurement.")
    var seconds: Double = 2

    @Option(help: "Service calls for the round-trip measurement.")
    var calls: Int = 20_000

    @Option(help: "Repetitions of each measurement; the median is reported.")
    var repeats: Int = 3

    @Option(help: "Messages in flight (at most 64 MiB): the publisher waits for the receiver beyond this (credit-based flow control).")
    var window: Int = 500

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let sizeList = sizes.split(separator: ",").compactMap { Int($0) }
        print("# sim-bench messaging: loopback TCP, libzmq \(ZMQContext.libraryVersion), \(ProcessInfo.processInfo.activeProcessorCount) cores, median of \(repeats)")
        print("| measurement | raw libzmq | RoboSim | ratio |")
        print("|---|---|---|---|")
        for size in sizeList {
            var raw: [Throughput] = [], server: [Throughput] = [], client: [Throughput] = []
            for _ in 0..<repeats {
                raw.append(try rawPubSub(size: size))
                server.append(try await hubPubSub(size: size, serverSide: true))
                client.append(try await hubPubSub(size: size, serverSide: false))
            }
            let r = Throughput.median(raw)
            let proxied = try rawProxyPubSub(size: size)
            print("| pub/sub \(size) B, raw PUB -> zmq_proxy -> SUB, 3 frames | \(si(r.messagesPerSecond)) msg/s | \(si(proxied.messagesPerSecond)) msg/s | \(String(format: "%.2f", proxied.messagesPerSecond / r.messagesPerSecond)) |")
            for (label, runs) in [("server topic -> client", server), ("client -> hub -> client", client)] {
                let h = Throughput.median(runs)
                print("| pub/sub \(size) B, \(label) | \(si(r.messagesPerSecond)) msg/s (\(si(r.bytesPerSecond))B/s) | \(si(h.messagesPerSecond)) msg/s (\(si(h.bytesPerSecond))B/s) | \(String(format: "%.2f", h.messagesPerSecond / r.messagesPerSecond)) |")
            }
        }
        let rawRTT = try rawRoundTrips(count: calls)
        let hubRTT = try hubRoundTrips(count: calls)
        for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
            let r = percentile(rawRTT, p) * 1e6, h = percentile(hubRTT, p) * 1e6
            print("| service round trip \(name) | \(String(format: "%.1f", r)) µs | \(String(format: "%.1f", h)) µs | \(String(format: "%.2f", h / r)) |")
        }
    }

    struct Throughput {
        var messages: Int
        var bytes: Int
        var elapsed: Double
        var messagesPerSecond: Double { Double(messages) / elapsed }
        var bytesPerSecond: Double { Double(bytes) / elapsed }
        static func median(_ xs: [Throughput]) -> Throughput { xs.sorted { $0.messagesPerSecond < $1.messagesPerSecond }[xs.count / 2] }
    }

    /// Free loopback TCP endpoints chosen by binding to port 0.
    static func ephemeral(_ socket: ZMQSocket) throws -> String {
        try socket.bind("tcp://127.0.0.1:*")
        return socket.lastEndpoint
    }

    /// Receiver-side counters: messages, bytes, and the times of the first and last message.
    struct Tally {
        var messages = 0, bytes = 0
        var first = 0.0, last = 0.0
        mutating func add(_ n: Int) {
            let now = monotonic()
            if messages == 0 { first = now }
            messages += 1
            bytes += n
            last = now
        }
        var throughput: Throughput { Throughput(messages: messages, bytes: bytes, elapsed: max(last - first, 1e-9)) }
    }

    /// Sends `payload` for `seconds` on a new thread, as fast as the receiver keeps up: at most
    /// `window` messages in flight (credit-based flow control, below every high-water mark, so
    /// nothing is dropped and a spinning publisher does not starve the receiving side of CPU);
    /// then, until `done` is set, the one-byte end marker every 10 ms.
    func startPublisher(_ label: String, seconds: Double, payload: [UInt8], received: Flag, done: Flag, send: @escaping @Sendable ([UInt8]) -> Void) {
        // At most `--window` messages and 64 MiB in flight.
        let window = min(self.window, max(8, (64 << 20) / max(1, payload.count)))
        let thread = Thread {
            let end = monotonic() + seconds
            var sent = 0
            while monotonic() < end {
                for _ in 0..<32 {
                    send(payload)
                    sent += 1
                }
                // Wait for credit; give up after 1 s (a message was lost) rather than hang.
                let giveUp = monotonic() + 1
                while sent - received.value.load(ordering: .acquiring) > window, monotonic() < giveUp { usleep(20) }
                if monotonic() >= giveUp {
                    FileHandle.standardError.write(Data("warning: \(label) \(payload.count) B: a message was lost (sent \(sent), received \(received.value.load(ordering: .acquiring))); this figure is low\n".utf8))
                }
            }
            while done.value.load(ordering: .acquiring) == 0 {
                send([0xff])
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        thread.start()
    }

    // MARK: Raw libzmq reference

    /// One PUB thread sending single-frame messages as fast as it can, one SUB thread receiving;
    /// each side with its own context (its own I/O thread), as separate processes would.
    func rawPubSub(size: Int, frames: Int = 1) throws -> Throughput {
        let pubContext = ZMQContext(), subContext = ZMQContext()
        let pub = try ZMQSocket(pubContext, .pub)
        try pub.setHighWaterMarks(send: 0, receive: 0)
        let endpoint = try Self.ephemeral(pub)
        let sub = try ZMQSocket(subContext, .sub)
        try sub.setHighWaterMarks(send: 0, receive: 0)
        try sub.subscribe("")
        try sub.connect(endpoint)
        repeat { try pub.send([UInt8](), flags: .dontWait) } while !(try sub.waitReadable(timeout: 0.005))
        Thread.sleep(forTimeInterval: 0.05)
        while try sub.receiveFrame(flags: .dontWait) != nil {}
        let done = Flag(), received = Flag()
        let owned = Owned(pub)
        let header = frames > 1 ? [[UInt8]](repeating: Array("/bench".utf8), count: frames - 1) : []
        startPublisher("raw PUB->SUB", seconds: seconds, payload: [UInt8](repeating: 7, count: size), received: received, done: done) { bytes in
            for h in header { _ = try? owned.value.send(h, flags: .sendMore) }
            _ = try? owned.value.send(bytes)
        }
        var tally = Tally()
        let m = ZMQMessage()
        while try m.receive(from: sub) {
            while m.more { _ = try m.receive(from: sub) }
            if m.count == 0 { continue }  // a late probe
            if m.count == 1 { break }
            tally.add(m.count)
            received.value.store(tally.messages, ordering: .releasing)
        }
        done.value.store(1, ordering: .releasing)
        Thread.sleep(forTimeInterval: 0.05)
        return tally.throughput
    }

    /// Raw PUB -> libzmq's own zmq_proxy (XSUB -> XPUB, in C, its own thread) -> raw SUB, with
    /// RoboSim's three-frame layout: the cost of a forwarding hop with nothing of ours in the path.
    func rawProxyPubSub(size: Int) throws -> Throughput {
        let proxyContext = ZMQContext(), pubContext = ZMQContext(), subContext = ZMQContext()
        let xsub = try ZMQSocket(proxyContext, .xsub), xpub = try ZMQSocket(proxyContext, .xpub)
        for s in [xsub, xpub] { try s.setHighWaterMarks(send: 0, receive: 0) }
        let inEndpoint = try Self.ephemeral(xsub), outEndpoint = try Self.ephemeral(xpub)
        let control = try ZMQSocket(proxyContext, .pair)
        let controlEndpoint = "inproc://proxy-control-\(UUID().uuidString)"
        try control.bind(controlEndpoint)
        let sockets = Owned((xsub, xpub, try ZMQSocket(proxyContext, .pair)))
        try sockets.value.2.connect(controlEndpoint)
        let proxy = Thread {
            let (xsub, xpub, ctl) = sockets.value
            zmq_proxy_steerable(xsub.unsafeHandle, xpub.unsafeHandle, nil, ctl.unsafeHandle)
        }
        proxy.start()
        defer {
            _ = try? control.send("TERMINATE")
            Thread.sleep(forTimeInterval: 0.05)
        }
        let pub = try ZMQSocket(pubContext, .pub)
        try pub.setHighWaterMarks(send: 0, receive: 0)
        try pub.connect(inEndpoint)
        let sub = try ZMQSocket(subContext, .sub)
        try sub.setHighWaterMarks(send: 0, receive: 0)
        try sub.subscribe("/bench")
        try sub.connect(outEndpoint)
        let type = Array("std_msgs/msg/String".utf8), topic = Array("/bench".utf8)
        repeat {
            try pub.send(frames: [topic, type, []], flags: .dontWait)
        } while !(try sub.waitReadable(timeout: 0.005))
        Thread.sleep(forTimeInterval: 0.05)
        while try sub.receiveMultipart(flags: .dontWait) != nil {}
        let done = Flag(), received = Flag()
        let owned = Owned(pub)
        startPublisher("raw zmq_proxy", seconds: seconds, payload: [UInt8](repeating: 7, count: size), received: received, done: done) { bytes in
            _ = try? owned.value.send(topic, flags: .sendMore)
            _ = try? owned.value.send(type, flags: .sendMore)
            _ = try? owned.value.send(bytes)
        }
        var tally = Tally()
        let m = ZMQMessage()
        while try m.receive(from: sub) {
            _ = try m.receive(from: sub)
            _ = try m.receive(from: sub)
            if m.count == 0 { continue }
            if m.count == 1 { break }
            tally.add(m.count)
            received.value.store(tally.messages, ordering: .releasing)
        }
        done.value.store(1, ordering: .releasing)
        return tally.throughput
    }

    // MARK: Through the hub

    /// A Node publisher -> hub (XSUB/XPUB forwarding with validation and statistics) -> Node
    /// subscription, each part with its own context as in separate processes; the consumer reads
    /// the subscription's AsyncSequence.
    /// With `serverSide`, the publisher lives in the hub's process (how the server publishes its
    /// topics: over `inproc://`), so one TCP hop remains, as in the raw reference.
    func hubPubSub(size: Int, serverSide: Bool) async throws -> Throughput {
        let hubContext = ZMQContext(), pubContext = ZMQContext(), subContext = ZMQContext()
        let hub = try Hub(configuration: try HubConfiguration(listen: "tcp://127.0.0.1:*"), context: hubContext)
        hub.start()
        defer { hub.shutdown() }
        let talker = serverSide ? try Node(name: "bench_pub", hub: hub) : try Node(name: "bench_pub", server: hub.serviceEndpoint, context: pubContext)
        let listener = try Node(name: "bench_sub", server: hub.serviceEndpoint, context: subContext)
        defer { talker.close(); listener.close() }
        let publisher = try talker.advertiseRaw("/bench", typeName: "std_msgs/msg/String", qos: .reliable())
        let subscription = try listener.subscribeRaw("/bench", qos: .reliable(depth: 1 << 22))
        let probe = Task {
            while !Task.isCancelled {
                publisher.publish(serialized: [])
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        var iterator = subscription.makeAsyncIterator()
        _ = await iterator.next()
        probe.cancel()
        try await Task.sleep(for: .milliseconds(50))
        let done = Flag(), received = Flag()
        startPublisher("hub", seconds: seconds, payload: [UInt8](repeating: 7, count: size), received: received, done: done) { bytes in
            publisher.publish(serialized: bytes)
        }
        var tally = Tally()
        while let m = await iterator.next() {
            if m.payload.isEmpty { continue }  // a late probe
            if m.payload.count == 1 { break }
            tally.add(m.payload.count)
            received.value.store(tally.messages, ordering: .releasing)
        }
        done.value.store(1, ordering: .releasing)
        try await Task.sleep(for: .milliseconds(50))
        return tally.throughput
    }

    // MARK: Service round trips

    func rawRoundTrips(count: Int) throws -> [Double] {
        let serverContext = ZMQContext(), clientContext = ZMQContext()
        let rep = try ZMQSocket(serverContext, .rep)
        let endpoint = try Self.ephemeral(rep)
        let stop = Flag()
        let owned = Owned(rep)
        let server = Thread {
            let rep = owned.value
            while stop.value.load(ordering: .acquiring) == 0 {
                guard (try? rep.waitReadable(timeout: 0.1)) == true, let frames = try? rep.receiveMultipart() else { continue }
                _ = try? rep.send(frames: [Array("ok".utf8), frames.last ?? []])
            }
        }
        server.start()
        defer { stop.value.store(1, ordering: .releasing) }
        let req = try ZMQSocket(clientContext, .req)
        try req.connect(endpoint)
        var times: [Double] = []
        times.reserveCapacity(count)
        let request: [[UInt8]] = [Array("/bench/echo".utf8), [UInt8](repeating: 1, count: 32)]
        for i in 0..<(count + 1000) {
            let t0 = monotonic()
            try req.send(frames: request)
            _ = try req.receiveMultipart()
            if i >= 1000 { times.append(monotonic() - t0) }
        }
        return times.sorted()
    }

    func hubRoundTrips(count: Int) throws -> [Double] {
        let hubContext = ZMQContext(), clientContext = ZMQContext()
        let hub = try Hub(configuration: try HubConfiguration(listen: "tcp://127.0.0.1:*"), context: hubContext)
        try hub.serve("/bench/echo", type: .init("robosim/srv/Echo", request: StdMsgs_String.self, response: StdMsgs_String.self)) {
            (m: StdMsgs_String) throws(ServiceError) in m
        }
        hub.start()
        defer { hub.shutdown() }
        let client = try ServiceClient(server: hub.serviceEndpoint, context: clientContext)
        var request = StdMsgs_String()
        request.data = String(repeating: "x", count: 30)
        var times: [Double] = []
        times.reserveCapacity(count)
        for i in 0..<(count + 1000) {
            let t0 = monotonic()
            let _: StdMsgs_String = try client.call("/bench/echo", request)
            if i >= 1000 { times.append(monotonic() - t0) }
        }
        return times.sorted()
    }
}

/// A flag shared between threads.
final class Flag: Sendable {
    let value = Atomic<Int>(0)
}

/// Hands a socket to exactly one other thread. Invariant: after the hand-over only that thread uses it.
final class Owned<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
