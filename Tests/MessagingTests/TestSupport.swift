import Foundation
import Logging
import Messaging

/// A hub on a fresh in-process (`inproc://`) or loopback endpoint, stopped on deinit.
final class TestHub {
    let hub: Hub

    init(tcp: Bool = false, maxFrameBytes: Int = 64 << 20, maxTopics: Int = 1 << 16) throws {
        let address = tcp ? "tcp://127.0.0.1:*" : "inproc://test-\(UUID().uuidString)"
        var config = try HubConfiguration(listen: address)
        config.maxFrameBytes = maxFrameBytes
        config.maxTopics = maxTopics
        var logger = Logger(label: "test.hub")
        logger.logLevel = .warning
        hub = try Hub(configuration: config, logger: logger)
        hub.start()
    }

    deinit { hub.shutdown() }

    func node(_ name: String) throws -> Node { try Node(name: name, server: hub.serviceEndpoint, heartbeat: 0.2) }

    func client() throws -> ServiceClient { try ServiceClient(server: hub.serviceEndpoint, timeout: 5) }
}

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass; returns whether it held.
// Deadlines are generous: a loaded 2-core CI machine runs dozens of suites at once; success returns at once.
/// Deadlines are generous (120 s) because they are wall-clock: in a parallel `swift test` other
/// suites' long synchronous tests can hold the (2-thread) cooperative pool for a minute on a loaded
/// machine, during which nothing here runs (seen once in CI, at 30 s). A healthy run answers in ms.
func eventually(timeout: Double = 120, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return try condition()
}

/// Publishes `message` every 10 ms until `received` returns a value (ZeroMQ subscriptions take a
/// moment to reach a publisher), up to `timeout` seconds.
func publishUntilReceived<M: SwiftProtobuf.Message, T: Sendable>(
    _ publisher: Publisher<M>, _ message: M, timeout: Double = 120, received: @escaping @Sendable () async -> T?
) async -> T? {
    let task = Task { await received() }
    let deadline = Date().addingTimeInterval(timeout)
    let pump = Task {
        while !Task.isCancelled && Date() < deadline {
            publisher.publish(message)
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
    let result = await withTaskGroup(of: T?.self) { group in
        group.addTask { await task.value }
        group.addTask {
            try? await Task.sleep(for: .seconds(timeout))
            return nil
        }
        let r = await group.next()!
        // Cancel the receiver itself first: the child awaiting `task.value` ends only when it does.
        task.cancel()
        group.cancelAll()
        return r
    }
    pump.cancel()
    task.cancel()
    return result
}

import SwiftProtobuf
