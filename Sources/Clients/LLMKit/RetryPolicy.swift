import Synchronization

/// How a ``ChatBackend`` retries: up to `maxAttempts` attempts, each bounded by `timeout`, with
/// exponential backoff and full jitter between them. Throttling, server errors (5xx), timeouts and
/// transport failures are retried; malformed replies, auth and other client errors are not.
///
/// The delay before retry `n` (after failed attempt `n`, 1-based) is `random() * min(maxDelay,
/// baseDelay * 2^(n-1))`, or the server's `Retry-After` (seconds) capped at `maxDelay` when it sent one.
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included; at least 1. Default 3.
    public var maxAttempts: Int
    /// Backoff scale in seconds: the cap of the first retry's delay. Default 0.5 s.
    public var baseDelay: Double
    /// The longest delay between attempts in seconds, `Retry-After` included. Default 8 s.
    public var maxDelay: Double
    /// Seconds one attempt may take, from sending the request to the end of the reply. Default 30 s.
    public var timeout: Double
    /// Uniform random numbers in `0..<1` for the jitter.
    public var random: @Sendable () -> Double
    /// Waits the given number of seconds between attempts; tests pass one that returns at once.
    public var sleep: @Sendable (Double) async -> Void

    /// A policy with the documented defaults. `seed` makes the jitter reproducible (a SplitMix64
    /// stream); without it the system generator is used. `sleep` defaults to `Task.sleep`.
    public init(
        maxAttempts: Int = 3, baseDelay: Double = 0.5, maxDelay: Double = 8, timeout: Double = 30,
        seed: UInt64? = nil, sleep: @escaping @Sendable (Double) async -> Void = RetryPolicy.taskSleep
    ) {
        let random: @Sendable () -> Double
        if let seed {
            let generator = SeededRandom(seed: seed)
            random = { generator.next() }
        } else {
            random = { Double.random(in: 0..<1) }
        }
        self.init(
            maxAttempts: maxAttempts, baseDelay: baseDelay, maxDelay: maxDelay, timeout: timeout, random: random,
            sleep: sleep)
    }

    /// A policy with an explicit jitter source: `random` returns uniform numbers in `0..<1`.
    public init(
        maxAttempts: Int = 3, baseDelay: Double = 0.5, maxDelay: Double = 8, timeout: Double = 30,
        random: @escaping @Sendable () -> Double, sleep: @escaping @Sendable (Double) async -> Void = RetryPolicy.taskSleep
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = max(0, baseDelay)
        self.maxDelay = max(0, maxDelay)
        self.timeout = timeout > 0 ? timeout : 30
        self.random = random
        self.sleep = sleep
    }

    /// The defaults: 3 attempts, 0.5 s base delay, 8 s cap, 30 s per attempt, system jitter.
    public static var standard: RetryPolicy { RetryPolicy() }

    /// Sleeps with `Task.sleep`; returns early (without error) when the task is cancelled.
    public static let taskSleep: @Sendable (Double) async -> Void = { seconds in
        guard seconds > 0 else { return }
        try? await Task.sleep(for: .seconds(seconds))
    }

    /// Seconds to wait after failed attempt `attempt` (1-based) before the next one: the server's
    /// `retryAfter` capped at `maxDelay` if given, else full jitter over the exponential cap.
    public func delay(afterAttempt attempt: Int, retryAfter: Double? = nil) -> Double {
        if let retryAfter, retryAfter.isFinite, retryAfter >= 0 { return min(retryAfter, maxDelay) }
        let exponent = Double(max(0, min(attempt - 1, 62)))
        let cap = min(maxDelay, baseDelay * pow2(exponent))
        let u = min(max(random(), 0), 1)
        return u * cap
    }

    private func pow2(_ x: Double) -> Double { Double(sign: .plus, exponent: Int(x), significand: 1) }
}

/// A SplitMix64 stream behind a mutex, so one seeded policy can serve concurrent requests.
final class SeededRandom: Sendable {
    private let state: Mutex<UInt64>

    init(seed: UInt64) { state = Mutex(seed) }

    /// The next number, uniform in `0..<1` (53 random bits).
    func next() -> Double {
        let bits = state.withLock { s -> UInt64 in
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return Double(bits >> 11) * 0x1.0p-53
    }
}
