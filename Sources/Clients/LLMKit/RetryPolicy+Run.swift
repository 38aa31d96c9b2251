import Logging

extension RetryPolicy {
    /// Runs `attempt` until it succeeds, fails with an error that is not retryable, or `maxAttempts`
    /// are spent; then throws the last error, its description noting the attempts made.
    ///
    /// Logs one `.debug` line per attempt and one `.warning` line per retry (metadata `llm.backend`,
    /// `llm.attempt` as `n/max`, `llm.kind`, `llm.status`, `llm.delay_s`, `llm.error`).
    func run(
        backend: String, logger: Logger, _ attempt: (Int) async throws(BackendError) -> String
    ) async throws(BackendError) -> String {
        var number = 1
        while true {
            logger.debug(
                "LLM request", metadata: ["llm.backend": "\(backend)", "llm.attempt": "\(number)/\(maxAttempts)"])
            let failure: BackendError
            do {
                return try await attempt(number)
            } catch {
                failure = error
            }
            guard failure.isRetryable else { throw failure }
            guard number < maxAttempts else {
                throw failure.adding("gave up after \(maxAttempts) attempt\(maxAttempts == 1 ? "" : "s")")
            }
            let delay = self.delay(afterAttempt: number, retryAfter: failure.retryAfter)
            logger.warning(
                "LLM request failed, retrying",
                metadata: [
                    "llm.backend": "\(backend)",
                    "llm.attempt": "\(number)/\(maxAttempts)",
                    "llm.kind": "\(failure.kind.rawValue)",
                    "llm.status": "\(failure.status.map(String.init) ?? "none")",
                    "llm.delay_s": "\(seconds(delay))",
                    "llm.error": "\(failure.description)",
                ])
            await sleep(delay)
            if Task.isCancelled {
                throw BackendError(kind: .transport, description: "\(backend): cancelled while waiting to retry")
            }
            number += 1
        }
    }
}
