import Logging
import Synchronization

/// Keeps every log entry in memory, for tests to assert on (swift-log's in-memory handler, in
/// small). Thread-safe: loggers made from it may log from any thread.
public final class LogRecorder: Sendable {
    /// One logged line: its level, message and metadata (values as text).
    public struct Entry: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])
    private let label: String
    private let level: Logger.Level

    /// A recorder whose `logger` is labelled `label` and logs at `level` and above
    /// (defaults: `test`, `.trace`).
    public init(label: String = "test", level: Logger.Level = .trace) {
        self.label = label
        self.level = level
    }

    /// A logger whose entries land here.
    public var logger: Logger {
        var logger = Logger(label: label) { _ in Handler(recorder: self) }
        logger.logLevel = level
        return logger
    }

    /// Entries at exactly `level`, oldest first.
    public func entries(_ level: Logger.Level) -> [Entry] { entries.withLock { $0.filter { $0.level == level } } }

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
