/// Why a ``ChatBackend`` request failed. `kind` decides whether it is retried (see ``isRetryable``);
/// `description` is one line for a person: backend, HTTP status, and the provider's own message.
public struct BackendError: Error, CustomStringConvertible, Sendable {
    /// The failure classes that the retry policy distinguishes.
    public enum Kind: String, Sendable {
        /// HTTP 429, or AWS `ThrottlingException`: retried, honouring `Retry-After`.
        case throttled
        /// HTTP 5xx: retried.
        case server
        /// No complete reply within the per-attempt timeout (or HTTP 408): retried.
        case timeout
        /// A 2xx reply that is not the expected JSON: not retried.
        case malformed
        /// HTTP 401 or 403 (bad key, expired or unauthorized credentials): not retried.
        case auth
        /// Any other HTTP 4xx (bad model id, invalid parameters): not retried.
        case client
        /// The connection failed or closed without a reply: retried.
        case transport
    }

    /// The failure class.
    public let kind: Kind
    /// One line: what failed, the HTTP status if any, and the provider's message.
    public let description: String
    /// The HTTP status of the reply, if one came.
    public let status: Int?
    /// The server's `Retry-After`, in seconds, if it sent one.
    public let retryAfter: Double?

    /// An error of `kind`; `status` and `retryAfter` (seconds) come from the HTTP reply, if any.
    public init(kind: Kind, description: String, status: Int? = nil, retryAfter: Double? = nil) {
        self.kind = kind
        self.description = description
        self.status = status
        self.retryAfter = retryAfter
    }

    /// Whether another attempt may succeed: throttling, server errors, timeouts and transport failures.
    public var isRetryable: Bool {
        switch kind {
        case .throttled, .server, .timeout, .transport: true
        case .malformed, .auth, .client: false
        }
    }

    /// The same error with `note` appended to its description.
    func adding(_ note: String) -> BackendError {
        BackendError(kind: kind, description: "\(description) (\(note))", status: status, retryAfter: retryAfter)
    }
}
