import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A small blocking HTTP/1.1 server on 127.0.0.1 (ephemeral port) for tests: each connection is
/// handled on its own thread, reads one request (request line, headers, `Content-Length` body),
/// records it, and answers with the next step of a script. Every reply closes the connection.
final class TestHTTPServer: Sendable {
    /// One scripted answer.
    enum Step: Sendable {
        /// Reply with `status`, `headers` and `body`.
        case respond(status: Int, headers: [String: String] = [:], body: String)
        /// Read the request, then send nothing for `seconds` (the client times out), then close.
        case hang(seconds: Double)
        /// Read the request, then close the connection without a reply.
        case close

        /// A JSON reply.
        static func json(_ status: Int = 200, _ body: String, headers: [String: String] = [:]) -> Step {
            .respond(status: status, headers: headers.merging(["Content-Type": "application/json"]) { a, _ in a }, body: body)
        }
    }

    /// A request as the server received it.
    struct Request: Sendable {
        let method: String
        let path: String
        /// Header names lower-cased; a repeated header's values joined with `,`.
        let headers: [String: String]
        let body: Data

        /// The body parsed as a JSON object, or nil.
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    private struct State {
        var script: [Step]
        var requests: [Request] = []
        var stopped = false
    }

    /// The port the server listens on.
    let port: Int
    private let listener: Int32
    private let state: Mutex<State>

    /// Starts a server that answers with `script`, in order; requests past its end get 418.
    init(_ script: [Step]) throws {
        state = Mutex(State(script: script))
        (listener, port) = try Self.makeListener()
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "TestHTTPServer:\(port)"
        thread.start()
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then closed at once).
    static func closedPort() throws -> Int {
        let (fd, port) = try makeListener()
        close(fd)
        return port
    }

    /// A socket listening on 127.0.0.1 at an ephemeral port.
    private static func makeListener() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXFailure("socket", errno) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw POSIXFailure("bind/listen", code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// `http://127.0.0.1:PORT`.
    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// The requests received so far, in arrival order.
    var requests: [Request] { state.withLock { $0.requests } }

    /// Stops accepting and closes the listening socket within 50 ms; connections that hang are
    /// closed as soon. Call it when the test ends (the server's threads keep it alive until then).
    func stop() { state.withLock { $0.stopped = true } }

    private var stopped: Bool { state.withLock { $0.stopped } }

    /// Only this thread closes the listener, so its descriptor is never reused while in use.
    private func acceptLoop() {
        defer { close(listener) }
        while !stopped {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0, !stopped else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            let thread = Thread { [self] in serve(connection) }
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let request = readRequest(fd) else { return }
        let step = state.withLock { s -> Step in
            s.requests.append(request)
            return s.script.isEmpty
                ? .respond(status: 418, body: "test server: script exhausted") : s.script.removeFirst()
        }
        switch step {
        case .respond(let status, let headers, let body):
            var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
            let bytes = Data(body.utf8)
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            head += "Content-Length: \(bytes.count)\r\nConnection: close\r\n\r\n"
            sendAll(fd, Data(head.utf8) + bytes)
        case .hang(let seconds):
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline && !stopped { usleep(20_000) }
        case .close:
            break
        }
    }

    private func readRequest(_ fd: Int32) -> Request? {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let separator = Data("\r\n\r\n".utf8)
        var headerEnd: Range<Data.Index>?
        while headerEnd == nil {
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { return nil }
            buffer.append(contentsOf: chunk[0..<n])
            headerEnd = buffer.range(of: separator)
        }
        guard let headerEnd, let head = String(data: buffer[..<headerEnd.lowerBound], encoding: .utf8) else { return nil }
        let lines = head.components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { "\($0),\(value)" } ?? value
        }
        if headers["expect"]?.lowercased() == "100-continue" { sendAll(fd, Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        var body = Data(buffer[headerEnd.upperBound...])
        while body.count < length {
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { return nil }
            body.append(contentsOf: chunk[0..<n])
        }
        return Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: body)
    }

    private func sendAll(_ fd: Int32, _ data: Data) {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                offset += n
            }
        }
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 418: "I'm a teapot"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

/// A failed POSIX call in test set-up.
struct POSIXFailure: Error, CustomStringConvertible {
    let call: String
    let code: Int32
    init(_ call: String, _ code: Int32) {
        self.call = call
        self.code = code
    }
    var description: String { "\(call) failed: \(String(cString: strerror(code)))" }
}
