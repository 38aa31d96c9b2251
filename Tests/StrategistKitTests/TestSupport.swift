import Foundation
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
