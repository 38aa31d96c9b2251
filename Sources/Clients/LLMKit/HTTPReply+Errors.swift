import Foundation

extension HTTPReply {
    /// The error for a non-2xx reply: 429 (or `throttled`) → `.throttled`, 408 → `.timeout`,
    /// 401/403 → `.auth`, 5xx → `.server`, any other status → `.client`. `errorType` is the
    /// provider's error code (AWS `x-amzn-ErrorType`), shown in the description.
    func error(backend: String, throttled: Bool = false, errorType: String? = nil) -> BackendError {
        let kind: BackendError.Kind =
            switch status {
            case _ where throttled, 429: .throttled
            case 408: .timeout
            case 401, 403: .auth
            case 500...599: .server
            default: .client
            }
        var text = "\(backend): HTTP \(status)"
        if let errorType, !errorType.isEmpty { text += " \(errorType)" }
        if let message = providerMessage { text += ": \(message)" }
        return BackendError(kind: kind, description: text, status: status, retryAfter: retryAfter)
    }

    /// The provider's error message: `error.message`, `error`, `message`, `Message` or `detail` of a
    /// JSON body, else the body's text; one line, at most 300 characters.
    var providerMessage: String? {
        var message: String?
        if let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] {
            if let error = object["error"] as? [String: Any], let text = error["message"] as? String {
                message = text
            } else {
                message = ["error", "message", "Message", "detail"].lazy.compactMap { object[$0] as? String }.first
            }
        }
        if message == nil, let text = String(data: body, encoding: .utf8) { message = text }
        guard let message else { return nil }
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        guard !line.isEmpty else { return nil }
        return line.count > 300 ? String(line.prefix(300)) + "…" : line
    }
}
