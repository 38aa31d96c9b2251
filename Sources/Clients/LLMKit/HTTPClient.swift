import Dispatch
import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One HTTP reply: status, headers (names lower-cased) and body.
struct HTTPReply: Sendable {
    let status: Int
    let headers: [String: String]
    let body: Data

    /// The header `name` (any case), if present.
    func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// `Retry-After` in seconds, when the server sent it as a number.
    var retryAfter: Double? {
        guard let value = header("retry-after")?.trimmingCharacters(in: .whitespaces), let seconds = Double(value),
            seconds.isFinite, seconds >= 0
        else { return nil }
        return seconds
    }
}

/// Sends one request at a time per call through a private ephemeral `URLSession`, with a hard
/// deadline per attempt. Thread-safe: any task may call ``send(_:timeout:backend:)``.
final class HTTPClient: Sendable {
    private let session: URLSession

    init() {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpShouldSetCookies = false
        configuration.httpCookieStorage = nil
        session = URLSession(configuration: configuration)
    }

    deinit { session.finishTasksAndInvalidate() }

    /// Sends `request`; a reply with any HTTP status is returned, a failure to get one is thrown as
    /// `.timeout` (no complete reply within `timeout` seconds) or `.transport`.
    func send(_ request: URLRequest, timeout: Double, backend: String) async throws(BackendError) -> HTTPReply {
        var request = request
        request.timeoutInterval = timeout
        let attempt = AttemptState()
        let session = self.session
        let result: Result<HTTPReply, BackendError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPReply, BackendError>, Never>) in
                let task = session.dataTask(with: request) { data, response, error in
                    continuation.resume(
                        returning: Self.result(
                            data: data, response: response, error: error, timedOut: attempt.timedOut, timeout: timeout,
                            backend: backend))
                }
                attempt.start(task)
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { attempt.timeOut() }
            }
        } onCancel: {
            attempt.cancel()
        }
        return try result.get()
    }

    private static func result(
        data: Data?, response: URLResponse?, error: (any Error)?, timedOut: Bool, timeout: Double, backend: String
    ) -> Result<HTTPReply, BackendError> {
        if let error {
            if timedOut || (error as? URLError)?.code == .timedOut {
                return .failure(BackendError(kind: .timeout, description: "\(backend): no reply within \(seconds(timeout)) s"))
            }
            let reason = (error as? URLError)?.code == .cancelled ? "cancelled" : "\(error.localizedDescription)"
            return .failure(BackendError(kind: .transport, description: "\(backend): request failed: \(reason)"))
        }
        guard let http = response as? HTTPURLResponse else {
            return .failure(BackendError(kind: .transport, description: "\(backend): the reply is not HTTP"))
        }
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String { headers[key.lowercased()] = "\(value)" }
        }
        return .success(HTTPReply(status: http.statusCode, headers: headers, body: data ?? Data()))
    }
}

/// Formats seconds for messages: `0.5`, `30`.
func seconds(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : String(format: "%.2f", value)
}

/// The state of one attempt, shared by the completion handler, the deadline timer and the
/// cancellation handler; whichever comes first wins.
private final class AttemptState: Sendable {
    private struct State {
        var task: URLSessionDataTask?
        var timedOut = false
        var cancelled = false
    }

    // URLSessionDataTask is thread-safe to cancel; the mutex guards which event came first.
    private let state = Mutex(State())

    var timedOut: Bool { state.withLock { $0.timedOut } }

    /// Records and starts the task, or cancels it at once when the caller was already cancelled.
    func start(_ task: URLSessionDataTask) {
        let cancelled = state.withLock { s in
            s.task = task
            return s.cancelled
        }
        task.resume()
        if cancelled { task.cancel() }
    }

    /// The deadline passed: mark the attempt timed out and stop the transfer.
    func timeOut() {
        let task = state.withLock { s -> URLSessionDataTask? in
            s.timedOut = true
            return s.task
        }
        task?.cancel()
    }

    /// The calling task was cancelled: stop the transfer.
    func cancel() {
        let task = state.withLock { s -> URLSessionDataTask? in
            s.cancelled = true
            return s.task
        }
        task?.cancel()
    }
}
