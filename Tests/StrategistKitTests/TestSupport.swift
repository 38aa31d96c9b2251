import Foundation
import Logging
import StrategistKit
import Synchronization
import Testing
import LLMKit

extension Tag {
    /// Tests that open sockets on 127.0.0.1.
    @Tag static var socket: Self
    /// Tests that start another process.
    @Tag static var process: Self
}

/// Keeps every log entry, for tests to assert on (swift-log's in-memory handler, in small).
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    /// A logger at `.trace` whose entries land here.
    var logger: Logger {
        var logger = Logger(label: "test.llm") { _ in Handler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    /// Entries at exactly `level`.
    func entries(_ level: Logger.Level) -> [Entry] { entries.withLock { $0.filter { $0.level == level } } }

    fileprivate func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var all: [String: String] = [:]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { all[key] = "\(value)" }
            recorder.append(Entry(level: event.level, message: "\(event.message)", metadata: all))
        }
    }
}

/// Records the delays a retry policy asks for and returns at once.
final class SleepRecorder: Sendable {
    private let delays = Mutex<[Double]>([])
    var recorded: [Double] { delays.withLock { $0 } }
    var sleep: @Sendable (Double) async -> Void { { [self] seconds in delays.withLock { $0.append(seconds) } } }
}

/// A policy that does not wait between attempts: 3 attempts, 10 s per attempt (ample on a loaded
/// machine; the timeout test sets less), jitter from seed 7.
func fastRetry(_ sleeper: SleepRecorder, maxAttempts: Int = 3, timeout: Double = 10) -> RetryPolicy {
    RetryPolicy(maxAttempts: maxAttempts, timeout: timeout, seed: 7, sleep: sleeper.sleep)
}

let sampleRequest = ChatRequest(system: "You plan pushes.", user: "Where is the T-bar?", maxTokens: 256, temperature: 0.2)

/// Runs `body` and returns the ``BackendError`` it throws, or nil when it returns.
func backendError(_ body: () async throws(BackendError) -> String) async -> BackendError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}
