import Foundation
import StrategistKit
import TestSupport
import Testing
import LLMKit

private let completion = """
    {"id":"chatcmpl-1","object":"chat.completion","model":"qwen2.5-7b","choices":[{"index":0,
    "message":{"role":"assistant","content":"Push the T-bar 3 cm left."},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29}}
    """

private func backend(
    _ server: TestHTTPServer, _ log: LogRecorder, _ sleeper: SleepRecorder, apiKey: String? = "sk-test", timeout: Double = 10
) -> OpenAIBackend {
    OpenAIBackend(
        endpoint: server.baseURL.appendingPathComponent("v1"), model: "qwen2.5-7b", apiKey: apiKey,
        retry: fastRetry(sleeper, timeout: timeout), logger: log.logger)
}

@Suite("OpenAI-compatible backend over real HTTP", .tags(.socket))
struct OpenAIBackendTests {
    @Test("sends the chat completions request and returns choices[0].message.content")
    func success() async throws {
        let server = try TestHTTPServer([.json(200, completion)])
        defer { server.stop() }
        let log = LogRecorder()
        let sleeper = SleepRecorder()

        let reply = try await backend(server, log, sleeper).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        let requests = server.requests
        try #require(requests.count == 1)
        let request = requests[0]
        #expect(request.method == "POST")
        #expect(request.path == "/v1/chat/completions")
        #expect(request.headers["authorization"] == "Bearer sk-test")
        #expect(request.headers["content-type"] == "application/json")
        let json = try #require(request.json)
        #expect(json["model"] as? String == "qwen2.5-7b")
        #expect(json["max_tokens"] as? Int == 256)
        #expect(json["temperature"] as? Double == 0.2)
        let messages = try #require(json["messages"] as? [[String: String]])
        #expect(messages == [["role": "system", "content": "You plan pushes."], ["role": "user", "content": "Where is the T-bar?"]])
        #expect(log.entries(.warning).isEmpty)
        #expect(log.entries(.debug).map { $0.metadata["llm.attempt"] } == ["1/3"])
        #expect(sleeper.recorded.isEmpty)
    }

    @Test("sends no Authorization header without a key")
    func noKey() async throws {
        let server = try TestHTTPServer([.json(200, completion)])
        defer { server.stop() }
        _ = try await backend(server, LogRecorder(), SleepRecorder(), apiKey: nil).complete(sampleRequest)
        #expect(server.requests.first?.headers["authorization"] == nil)
    }

    @Test("429 is retried after Retry-After, with one warning line")
    func throttledThenSuccess() async throws {
        let server = try TestHTTPServer([
            .json(
                429, #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
                headers: ["Retry-After": "2"]),
            .json(200, completion),
        ])
        defer { server.stop() }
        let log = LogRecorder()
        let sleeper = SleepRecorder()

        let reply = try await backend(server, log, sleeper).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        #expect(server.requests.count == 2)
        #expect(sleeper.recorded == [2])
        let warnings = log.entries(.warning)
        try #require(warnings.count == 1)
        #expect(warnings[0].metadata["llm.backend"] == "openai")
        #expect(warnings[0].metadata["llm.attempt"] == "1/3")
        #expect(warnings[0].metadata["llm.kind"] == "throttled")
        #expect(warnings[0].metadata["llm.status"] == "429")
        #expect(warnings[0].metadata["llm.delay_s"] == "2")
        #expect(warnings[0].metadata["llm.error"]?.contains("Rate limit reached") == true)
        #expect(log.entries(.debug).map { $0.metadata["llm.attempt"] } == ["1/3", "2/3"])
    }

    @Test("500 and 502 are retried with jittered, growing delays")
    func serverErrorsThenSuccess() async throws {
        let server = try TestHTTPServer([
            .json(500, #"{"error":{"message":"internal"}}"#), .respond(status: 502, body: "<html>bad gateway</html>"),
            .json(200, completion),
        ])
        defer { server.stop() }
        let log = LogRecorder()
        let sleeper = SleepRecorder()

        let reply = try await backend(server, log, sleeper).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        #expect(server.requests.count == 3)
        #expect(log.entries(.warning).map { $0.metadata["llm.status"] } == ["500", "502"])
        #expect(log.entries(.warning).map { $0.metadata["llm.kind"] } == ["server", "server"])
        #expect(log.entries(.warning).map { $0.metadata["llm.attempt"] } == ["1/3", "2/3"])
        let delays = sleeper.recorded
        try #require(delays.count == 2)
        #expect(delays[0] >= 0 && delays[0] <= 0.5)
        #expect(delays[1] >= 0 && delays[1] <= 1.0)
    }

    @Test("an attempt that gets no reply within the timeout is retried")
    func timeoutThenSuccess() async throws {
        let server = try TestHTTPServer([.hang(seconds: 60), .json(200, completion)])
        defer { server.stop() }
        let log = LogRecorder()
        let sleeper = SleepRecorder()
        let started = Date()

        let reply = try await backend(server, log, sleeper, timeout: 2).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        #expect(server.requests.count == 2)
        #expect(log.entries(.warning).map { $0.metadata["llm.kind"] } == ["timeout"])
        #expect(log.entries(.warning).map { $0.metadata["llm.status"] } == ["none"])
        // The "timeout" warning and the second request show that the 2 s timeout cut the 60 s hang;
        // the wall clock only bounds it loosely (a loaded CI machine starved this suite for 40 s once).
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 2 && elapsed < 60, "the 2 s per-attempt timeout did not cut the 60 s hang: \(elapsed) s")
    }

    @Test("a connection closed without a reply is retried as a transport error")
    func closedThenSuccess() async throws {
        let server = try TestHTTPServer([.close, .json(200, completion)])
        defer { server.stop() }
        let log = LogRecorder()

        let reply = try await backend(server, log, SleepRecorder()).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        #expect(server.requests.count == 2)
        #expect(log.entries(.warning).map { $0.metadata["llm.kind"] } == ["transport"])
    }

    @Test(
        "a 2xx reply that is not a chat completion fails fast as malformed",
        arguments: [
            "{\"choices\": [", "{\"choices\": []}", #"{"choices":[{"message":{"role":"assistant","content":null}}]}"#,
            #"{"object":"list","data":[]}"#, "",
        ])
    func malformed(body: String) async throws {
        let server = try TestHTTPServer([.json(200, body), .json(200, completion)])
        defer { server.stop() }
        let log = LogRecorder()
        let sleeper = SleepRecorder()

        let error = await backendError { () async throws(BackendError) -> String in
            try await backend(server, log, sleeper).complete(sampleRequest)
        }

        #expect(error?.kind == .malformed)
        #expect(error?.status == 200)
        #expect(server.requests.count == 1)
        #expect(log.entries(.warning).isEmpty)
        #expect(sleeper.recorded.isEmpty)
    }

    @Test("401 is an auth error and 404 a client error, neither retried", arguments: [(401, BackendError.Kind.auth), (404, .client)])
    func notRetried(status: Int, kind: BackendError.Kind) async throws {
        let server = try TestHTTPServer([
            .json(status, #"{"error":{"message":"Incorrect API key provided: sk-test.","type":"invalid_request_error"}}"#),
            .json(200, completion),
        ])
        defer { server.stop() }
        let log = LogRecorder()

        let error = await backendError { () async throws(BackendError) -> String in
            try await backend(server, log, SleepRecorder()).complete(sampleRequest)
        }

        #expect(error?.kind == kind)
        #expect(error?.status == status)
        #expect(error?.description == "openai: HTTP \(status): Incorrect API key provided: sk-test.")
        #expect(server.requests.count == 1)
        #expect(log.entries(.warning).isEmpty)
    }

    @Test("three 503s throw the last error after 3 attempts")
    func serverErrorsExhaust() async throws {
        let server = try TestHTTPServer([
            .json(503, #"{"error":{"message":"overloaded 1"}}"#), .json(503, #"{"error":{"message":"overloaded 2"}}"#),
            .json(503, #"{"error":{"message":"overloaded 3"}}"#), .json(200, completion),
        ])
        defer { server.stop() }
        let log = LogRecorder()
        let sleeper = SleepRecorder()

        let error = await backendError { () async throws(BackendError) -> String in
            try await backend(server, log, sleeper).complete(sampleRequest)
        }

        #expect(error?.kind == .server)
        #expect(error?.status == 503)
        #expect(error?.description == "openai: HTTP 503: overloaded 3 (gave up after 3 attempts)")
        #expect(server.requests.count == 3)
        #expect(log.entries(.warning).map { $0.metadata["llm.attempt"] } == ["1/3", "2/3"])
        #expect(sleeper.recorded.count == 2)
    }

    @Test("no server listening: a transport error after every attempt")
    func connectionRefused() async throws {
        let port = try TestHTTPServer.closedPort()
        let log = LogRecorder()
        let backend = OpenAIBackend(
            endpoint: try #require(URL(string: "http://127.0.0.1:\(port)/v1")), model: "m", apiKey: nil,
            retry: fastRetry(SleepRecorder(), maxAttempts: 2),
            logger: log.logger)

        let error = await backendError { () async throws(BackendError) -> String in try await backend.complete(sampleRequest) }

        #expect(error?.kind == .transport)
        #expect(error?.description.hasPrefix("openai: request failed") == true)
        #expect(log.entries(.warning).count == 1)
    }
}
