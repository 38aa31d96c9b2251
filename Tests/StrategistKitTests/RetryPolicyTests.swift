import StrategistKit
import Testing
import LLMKit

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test("defaults: 3 attempts, 0.5 s base, 8 s cap, 30 s per attempt")
    func defaults() {
        let policy = RetryPolicy()
        #expect(policy.maxAttempts == 3)
        #expect(policy.baseDelay == 0.5)
        #expect(policy.maxDelay == 8)
        #expect(policy.timeout == 30)
    }

    @Test("full jitter over an exponential cap: random() × min(maxDelay, base × 2^(n-1))")
    func exponentialCap() {
        let top = RetryPolicy(random: { 0.999_999 }, sleep: { _ in })
        let caps = (1...6).map { top.delay(afterAttempt: $0) }
        let expected = [0.5, 1, 2, 4, 8, 8]
        for (cap, want) in zip(caps, expected) { #expect(abs(cap - want) < 1e-4) }
        let half = RetryPolicy(random: { 0.5 }, sleep: { _ in })
        #expect(half.delay(afterAttempt: 3) == 1)
        #expect(RetryPolicy(random: { 0 }, sleep: { _ in }).delay(afterAttempt: 4) == 0)
    }

    @Test("Retry-After is honoured, capped at maxDelay")
    func retryAfter() {
        let policy = RetryPolicy(random: { 0.5 }, sleep: { _ in })
        #expect(policy.delay(afterAttempt: 1, retryAfter: 3) == 3)
        #expect(policy.delay(afterAttempt: 1, retryAfter: 120) == 8)
        #expect(policy.delay(afterAttempt: 1, retryAfter: 0) == 0)
    }

    @Test("a seed gives the same jitter every time, within the cap", arguments: [UInt64(1), 42, 0xDEAD_BEEF])
    func seeded(seed: UInt64) {
        let a = RetryPolicy(seed: seed)
        let b = RetryPolicy(seed: seed)
        let first = (1...20).map { a.delay(afterAttempt: 1 + $0 % 5) }
        let second = (1...20).map { b.delay(afterAttempt: 1 + $0 % 5) }
        #expect(first == second)
        for (i, delay) in first.enumerated() { #expect(delay >= 0 && delay <= min(8, 0.5 * Double(1 << ((i + 1) % 5)))) }
        #expect(Set(first).count > 10)
    }

    @Test("at least one attempt")
    func clamps() {
        #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
    }
}
