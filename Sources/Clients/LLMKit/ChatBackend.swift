/// One chat exchange: a system prompt and a user message; the reply is the model's text.
public struct ChatRequest: Sendable {
    /// The system prompt (the strategist's role and output format).
    public var system: String
    /// The user message (the situation to plan for).
    public var user: String
    /// The most tokens the model may generate in its reply.
    public var maxTokens: Int
    /// Sampling temperature, 0 (deterministic) to 1 or more (provider-dependent).
    public var temperature: Double

    /// A request; `maxTokens` defaults to 1024 and `temperature` to 0.
    public init(system: String, user: String, maxTokens: Int = 1024, temperature: Double = 0) {
        self.system = system
        self.user = user
        self.maxTokens = maxTokens
        self.temperature = temperature
    }
}

/// A large language model behind an HTTP API. Implementations retry transient failures themselves
/// (see ``RetryPolicy``) and throw only when the request cannot succeed or the retries are spent.
public protocol ChatBackend: Sendable {
    /// Short backend name for logs and errors: `"bedrock"`, `"openai"`.
    var name: String { get }
    /// Sends `request` and returns the model's reply text. Callable from any task; concurrent
    /// calls are independent.
    func complete(_ request: ChatRequest) async throws(BackendError) -> String
}
