import ArgumentParser
import Foundation
import Logging

/// The command-line options that pick and configure an LLM backend, shared by every program that
/// asks one (`sim-strategist`, `sim-train reward-search`): `--backend offline|bedrock|openai` and
/// each backend's settings.
public struct LLMOptions: ParsableArguments, Sendable {
    public enum Backend: String, ExpressibleByArgument, CaseIterable, Sendable { case offline, bedrock, openai }

    @Option(help: "LLM backend: offline (no network), bedrock or openai.")
    public var backend: Backend = .offline

    @Option(help: "Bedrock: AWS region (default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).")
    public var region: String?

    @Option(name: .customLong("model-id"), help: "Bedrock: model id or inference profile.")
    public var modelID = "anthropic.claude-3-5-haiku-20241022-v1:0"

    @Option(help: "Bedrock: shared-credentials profile (default AWS_PROFILE, else the environment's keys, else 'default').")
    public var profile: String?

    @Option(help: "OpenAI-compatible: base URL of the API (…/v1).")
    public var endpoint = "http://127.0.0.1:8000/v1"

    @Option(help: "OpenAI-compatible: model name.")
    public var model = "local-model"

    @Option(name: .customLong("api-key-env"), help: "OpenAI-compatible: environment variable holding the API key (none: no key).")
    public var apiKeyEnv = "OPENAI_API_KEY"

    @Option(name: .customLong("llm-timeout"), help: "Seconds per LLM request attempt.")
    public var llmTimeout = 30.0

    @Option(help: "LLM request attempts (retries on throttling, 5xx and timeouts, with backoff).")
    public var attempts = 3

    public init() {}

    public func validate() throws {
        guard llmTimeout > 0, llmTimeout <= 600, attempts >= 1, attempts <= 20 else {
            throw ValidationError("--llm-timeout must be in (0, 600] and --attempts in 1...20")
        }
    }

    /// The chosen backend; nil for `offline`.
    public func makeBackend(logger: Logger) throws -> (any ChatBackend)? {
        let retry = RetryPolicy(maxAttempts: attempts, timeout: llmTimeout)
        switch backend {
        case .offline:
            return nil
        case .openai:
            guard let url = URL(string: endpoint), url.scheme == "http" || url.scheme == "https" else {
                throw ValidationError("--endpoint '\(endpoint)' is not an http(s) URL")
            }
            let key = ProcessInfo.processInfo.environment[apiKeyEnv].flatMap { $0.isEmpty ? nil : $0 }
            return OpenAIBackend(endpoint: url, model: model, apiKey: key, retry: retry, logger: logger)
        case .bedrock:
            let env = ProcessInfo.processInfo.environment
            let credentials = try AWSCredentials.resolve(environment: env, profile: profile, home: env["HOME"])
            let region = self.region ?? AWSCredentials.region(environment: env) ?? "us-east-1"
            return BedrockBackend(region: region, modelID: modelID, credentials: credentials, retry: retry, logger: logger)
        }
    }
}
