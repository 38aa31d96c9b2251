import Foundation
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A model behind an OpenAI-compatible Chat Completions API (OpenAI, vLLM, llama.cpp server,
/// Ollama, LM Studio...): `POST {endpoint}/chat/completions`, reply text from
/// `choices[0].message.content`. Retries per ``RetryPolicy``.
public final class OpenAIBackend: ChatBackend {
    /// `"openai"`.
    public let name = "openai"
    /// The API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`.
    public let endpoint: URL
    /// The model name sent as `model`.
    public let model: String
    /// How failed requests are retried.
    public let retry: RetryPolicy
    private let apiKey: String?
    private let logger: Logger
    private let http = HTTPClient()

    /// A backend for `model` at `endpoint`. `apiKey` (the caller reads `OPENAI_API_KEY`) is sent as
    /// `Authorization: Bearer KEY` when given and not empty; local servers usually need none.
    public init(endpoint: URL, model: String, apiKey: String?, retry: RetryPolicy = .standard, logger: Logger) {
        self.endpoint = endpoint
        self.model = model
        self.apiKey = apiKey
        self.retry = retry
        var logger = logger
        logger[metadataKey: "llm.model"] = "\(model)"
        self.logger = logger
    }

    /// The URL requests go to: `{endpoint}/chat/completions`.
    public var completionsURL: URL? { URL(string: Self.trimmingSlash(endpoint.absoluteString) + "/chat/completions") }

    /// Sends `request` as one system and one user message; see ``ChatBackend/complete(_:)``.
    public func complete(_ request: ChatRequest) async throws(BackendError) -> String {
        guard let url = completionsURL else {
            throw BackendError(kind: .client, description: "\(name): invalid endpoint \(endpoint.absoluteString)")
        }
        let body = try encode(request)
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = "POST"
        urlRequest.httpBody = body
        urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        urlRequest.setValue("application/json", forHTTPHeaderField: "Accept")
        if let apiKey, !apiKey.isEmpty { urlRequest.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        return try await retry.run(backend: name, logger: logger) { (_: Int) async throws(BackendError) -> String in
            let reply = try await http.send(urlRequest, timeout: retry.timeout, backend: name)
            guard (200..<300).contains(reply.status) else { throw reply.error(backend: name) }
            return try parse(reply)
        }
    }

    private func encode(_ request: ChatRequest) throws(BackendError) -> Data {
        let body = ChatCompletionsRequest(
            model: model,
            messages: [.init(role: "system", content: request.system), .init(role: "user", content: request.user)],
            maxTokens: request.maxTokens, temperature: request.temperature)
        do {
            return try JSONEncoder().encode(body)
        } catch {
            throw BackendError(kind: .client, description: "\(name): cannot encode the request: \(error)")
        }
    }

    private func parse(_ reply: HTTPReply) throws(BackendError) -> String {
        let response: ChatCompletionsResponse
        do {
            response = try JSONDecoder().decode(ChatCompletionsResponse.self, from: reply.body)
        } catch {
            throw BackendError(
                kind: .malformed, description: "\(name): HTTP \(reply.status) reply is not a chat completion: \(error)",
                status: reply.status)
        }
        guard let first = response.choices.first else {
            throw BackendError(kind: .malformed, description: "\(name): the reply has no choices", status: reply.status)
        }
        guard let content = first.message.content else {
            throw BackendError(
                kind: .malformed, description: "\(name): choices[0].message.content is missing or null",
                status: reply.status)
        }
        return content
    }

    static func trimmingSlash(_ string: String) -> String {
        var string = string
        while string.hasSuffix("/") { string.removeLast() }
        return string
    }
}

/// The body of `POST /chat/completions`.
private struct ChatCompletionsRequest: Encodable {
    struct Message: Encodable {
        let role: String
        let content: String
    }
    let model: String
    let messages: [Message]
    let maxTokens: Int
    let temperature: Double

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature
        case maxTokens = "max_tokens"
    }
}

/// The part of a chat completion that is read.
private struct ChatCompletionsResponse: Decodable {
    struct Choice: Decodable {
        struct Message: Decodable { let content: String? }
        let message: Message
    }
    let choices: [Choice]
}
