import Foundation
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A model on Amazon Bedrock through the Bedrock Runtime Converse API:
/// `POST /model/{modelId}/converse`, SigV4-signed for service `bedrock`, reply text from
/// `output.message.content[0].text` (the first text block). Retries per ``RetryPolicy``;
/// `ThrottlingException` counts as throttling whatever its status.
public final class BedrockBackend: ChatBackend {
    /// `"bedrock"`.
    public let name = "bedrock"
    /// The AWS region, e.g. `us-east-1`.
    public let region: String
    /// The model id or inference profile id/ARN, e.g. `anthropic.claude-3-haiku-20240307-v1:0`.
    public let modelID: String
    /// The service root: `https://bedrock-runtime.{region}.amazonaws.com` unless overridden.
    public let endpoint: URL
    /// How failed requests are retried.
    public let retry: RetryPolicy
    private let credentials: AWSCredentials
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let signer = SigV4Signer()
    private let http = HTTPClient()

    /// A backend for `modelID` in `region`. `endpoint` overrides the service root (tests, VPC
    /// endpoints); `now` is the signing clock (tests fix it). Each attempt is signed anew.
    public init(
        region: String, modelID: String, credentials: AWSCredentials, retry: RetryPolicy = .standard, logger: Logger,
        endpoint: URL? = nil, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.region = region
        self.modelID = modelID
        self.credentials = credentials
        self.retry = retry
        self.endpoint =
            endpoint ?? URL(string: "https://bedrock-runtime.\(region).amazonaws.com")
            ?? URL(fileURLWithPath: "/invalid-region")
        self.now = now
        var logger = logger
        logger[metadataKey: "llm.model"] = "\(modelID)"
        self.logger = logger
    }

    /// `{endpoint}/model/{modelId}/converse`, the model id percent-encoded as one path segment
    /// (`:` → `%3A`, `/` → `%2F`).
    public var converseURL: URL? {
        let encoded = SigV4Signer.uriEncode(modelID, keepSlash: false)
        return URL(string: OpenAIBackend.trimmingSlash(endpoint.absoluteString) + "/model/\(encoded)/converse")
    }

    /// Sends `request` as a system prompt and one user turn; see ``ChatBackend/complete(_:)``.
    public func complete(_ request: ChatRequest) async throws(BackendError) -> String {
        guard !region.isEmpty, endpoint.scheme == "http" || endpoint.scheme == "https", let url = converseURL else {
            throw BackendError(
                kind: .client, description: "\(name): invalid region '\(region)' or endpoint \(endpoint.absoluteString)")
        }
        let body = try encode(request)
        return try await retry.run(backend: name, logger: logger) { (_: Int) async throws(BackendError) -> String in
            let reply = try await http.send(signedRequest(url: url, body: body), timeout: retry.timeout, backend: name)
            guard (200..<300).contains(reply.status) else {
                let errorType = Self.errorType(reply)
                throw reply.error(
                    backend: name, throttled: errorType == "ThrottlingException", errorType: errorType
                )
                .reclassified(awsErrorType: errorType)
            }
            return try parse(reply)
        }
    }

    private func signedRequest(url: URL, body: Data) -> URLRequest {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = body
        let headers = ["Content-Type": "application/json", "Accept": "application/json"]
        let signed = signer.sign(
            method: "POST", url: url, headers: headers, body: body, date: now(), region: region, service: "bedrock",
            credentials: credentials)
        for (name, value) in headers.merging(signed, uniquingKeysWith: { $1 }) {
            request.setValue(value, forHTTPHeaderField: name)
        }
        return request
    }

    /// The AWS error code: `x-amzn-ErrorType` (before any `:`), else the body's `__type`.
    static func errorType(_ reply: HTTPReply) -> String? {
        var type = reply.header("x-amzn-errortype")
        if type == nil, let object = (try? JSONSerialization.jsonObject(with: reply.body)) as? [String: Any] {
            type = object["__type"] as? String
        }
        guard var type else { return nil }
        if let colon = type.firstIndex(of: ":") { type = String(type[..<colon]) }
        if let hash = type.lastIndex(of: "#") { type = String(type[type.index(after: hash)...]) }
        return type.trimmingCharacters(in: .whitespaces)
    }

    private func encode(_ request: ChatRequest) throws(BackendError) -> Data {
        let body = ConverseRequest(
            system: [.init(text: request.system)],
            messages: [.init(role: "user", content: [.init(text: request.user)])],
            inferenceConfig: .init(maxTokens: request.maxTokens, temperature: request.temperature))
        do {
            return try JSONEncoder().encode(body)
        } catch {
            throw BackendError(kind: .client, description: "\(name): cannot encode the request: \(error)")
        }
    }

    private func parse(_ reply: HTTPReply) throws(BackendError) -> String {
        let response: ConverseResponse
        do {
            response = try JSONDecoder().decode(ConverseResponse.self, from: reply.body)
        } catch {
            throw BackendError(
                kind: .malformed, description: "\(name): HTTP \(reply.status) reply is not a Converse response: \(error)",
                status: reply.status)
        }
        guard let text = response.output.message.content.lazy.compactMap(\.text).first else {
            throw BackendError(
                kind: .malformed, description: "\(name): output.message.content has no text block", status: reply.status)
        }
        return text
    }
}

extension BackendError {
    /// AWS error codes that say more than the status: expired or invalid credentials are `.auth`,
    /// a model timeout is `.timeout`, an unavailable service `.server`.
    fileprivate func reclassified(awsErrorType type: String?) -> BackendError {
        let kind: Kind? =
            switch type {
            case "ExpiredTokenException", "UnrecognizedClientException", "InvalidSignatureException",
                "IncompleteSignatureException", "MissingAuthenticationTokenException", "AccessDeniedException":
                .auth
            case "ModelTimeoutException": .timeout
            case "ServiceUnavailableException", "InternalServerException": .server
            default: nil
            }
        guard let kind, kind != self.kind, self.kind != .throttled else { return self }
        return BackendError(kind: kind, description: description, status: status, retryAfter: retryAfter)
    }
}

/// The body of `POST /model/{modelId}/converse`.
private struct ConverseRequest: Encodable {
    struct Text: Encodable { let text: String }
    struct Message: Encodable {
        let role: String
        let content: [Text]
    }
    struct InferenceConfig: Encodable {
        let maxTokens: Int
        let temperature: Double
    }
    let system: [Text]
    let messages: [Message]
    let inferenceConfig: InferenceConfig
}

/// The part of a Converse response that is read.
private struct ConverseResponse: Decodable {
    struct Output: Decodable { let message: Message }
    struct Message: Decodable { let content: [Block] }
    struct Block: Decodable { let text: String? }
    let output: Output
}
