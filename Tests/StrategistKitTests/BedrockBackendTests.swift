import Foundation
import StrategistKit
import TestSupport
import Testing
import LLMKit

private let converseReply = """
    {"output":{"message":{"role":"assistant","content":[{"text":"Push the T-bar 3 cm left."}]}},
    "stopReason":"end_turn","usage":{"inputTokens":20,"outputTokens":9,"totalTokens":29},"metrics":{"latencyMs":412}}
    """
private let haiku = "anthropic.claude-3-haiku-20240307-v1:0"
private let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

private func backend(
    _ server: TestHTTPServer, _ log: LogRecorder, _ sleeper: SleepRecorder, modelID: String = haiku,
    credentials: AWSCredentials = credentials
) -> BedrockBackend {
    BedrockBackend(
        region: "us-east-1", modelID: modelID, credentials: credentials, retry: fastRetry(sleeper), logger: log.logger,
        endpoint: server.baseURL, now: { fixedDate })
}

/// Checks the request's signature the way AWS does: re-signs what arrived (method, path, the
/// signed headers as received, body) and compares `Authorization`.
private func expectValidSignature(
    _ request: TestHTTPServer.Request, server: TestHTTPServer, credentials: AWSCredentials,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let authorization = try #require(request.headers["authorization"], sourceLocation: sourceLocation)
    let signedList = try #require(
        authorization.firstMatch(of: /SignedHeaders=([a-z0-9;-]+),/)?.1, sourceLocation: sourceLocation)
    var headers: [String: String] = [:]
    for name in signedList.split(separator: ";") { headers[String(name)] = request.headers[String(name)] }
    let resigned = SigV4Signer().sign(
        method: request.method, url: try #require(URL(string: server.baseURL.absoluteString + request.path)), headers: headers,
        body: request.body, date: fixedDate, region: "us-east-1", service: "bedrock", credentials: credentials)
    #expect(resigned["Authorization"] == authorization, "the signature does not cover the request as sent", sourceLocation: sourceLocation)
}

@Suite("Bedrock Converse backend over real HTTP", .tags(.socket))
struct BedrockBackendTests {
    @Test("sends a signed Converse request and returns output.message.content[0].text")
    func success() async throws {
        let server = try TestHTTPServer([.json(200, converseReply)])
        defer { server.stop() }
        let log = LogRecorder()

        let reply = try await backend(server, log, SleepRecorder()).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        let requests = server.requests
        try #require(requests.count == 1)
        let request = requests[0]
        #expect(request.method == "POST")
        #expect(request.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
        #expect(request.headers["x-amz-date"] == "20261122T123456Z")
        #expect(request.headers["x-amz-security-token"] == nil)
        #expect(request.headers["content-type"] == "application/json")
        let authorization = try #require(request.headers["authorization"])
        let match = try #require(
            authorization.wholeMatch(
                of:
                    /AWS4-HMAC-SHA256 Credential=AKID\/20261122\/us-east-1\/bedrock\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})/
            ))
        #expect(match.1.split(separator: ";").contains("host"))
        #expect(match.1.split(separator: ";").contains("x-amz-date"))
        try expectValidSignature(request, server: server, credentials: credentials)

        let json = try #require(request.json)
        #expect(json["system"] as? [[String: String]] == [["text": "You plan pushes."]])
        let messages = try #require(json["messages"] as? [[String: Any]])
        try #require(messages.count == 1)
        #expect(messages[0]["role"] as? String == "user")
        #expect(messages[0]["content"] as? [[String: String]] == [["text": "Where is the T-bar?"]])
        let inference = try #require(json["inferenceConfig"] as? [String: Any])
        #expect(inference["maxTokens"] as? Int == 256)
        #expect(inference["temperature"] as? Double == 0.2)
        #expect(log.entries(.warning).isEmpty)
    }

    @Test("temporary credentials send and sign x-amz-security-token; an ARN model id is one encoded segment")
    func sessionTokenAndARN() async throws {
        let server = try TestHTTPServer([.json(200, converseReply)])
        defer { server.stop() }
        let temporary = AWSCredentials(accessKeyID: "ASIATEMP", secretAccessKey: "secret", sessionToken: "token/with+chars==")
        let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"

        _ = try await backend(server, LogRecorder(), SleepRecorder(), modelID: arn, credentials: temporary)
            .complete(sampleRequest)

        let request = try #require(server.requests.first)
        #expect(
            request.path
                == "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        )
        #expect(request.headers["x-amz-security-token"] == "token/with+chars==")
        #expect(request.headers["authorization"]?.contains("x-amz-security-token") == true)
        try expectValidSignature(request, server: server, credentials: temporary)
    }

    @Test(
        "ThrottlingException is retried, whether 400 with x-amzn-ErrorType or 429",
        arguments: [
            TestHTTPServer.Step.json(
                400, #"{"message":"Too many requests, please wait before trying again."}"#,
                headers: ["x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"]),
            .json(
                429, #"{"message":"Too many requests, please wait before trying again."}"#,
                headers: ["x-amzn-ErrorType": "ThrottlingException"]),
        ])
    func throttled(first: TestHTTPServer.Step) async throws {
        let server = try TestHTTPServer([first, .json(200, converseReply)])
        defer { server.stop() }
        let log = LogRecorder()

        let reply = try await backend(server, log, SleepRecorder()).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        #expect(server.requests.count == 2)
        let warnings = log.entries(.warning)
        try #require(warnings.count == 1)
        #expect(warnings[0].metadata["llm.backend"] == "bedrock")
        #expect(warnings[0].metadata["llm.kind"] == "throttled")
        #expect(warnings[0].metadata["llm.error"]?.contains("ThrottlingException: Too many requests") == true)
        #expect(warnings[0].metadata["llm.model"] == haiku)
    }

    @Test("5xx is retried; each attempt is signed anew")
    func serverErrors() async throws {
        let server = try TestHTTPServer([
            .json(500, #"{"message":"Internal server error"}"#, headers: ["x-amzn-ErrorType": "InternalServerException"]),
            .json(
                503, #"{"message":"Bedrock is unable to process your request."}"#,
                headers: ["x-amzn-ErrorType": "ServiceUnavailableException"]),
            .json(200, converseReply),
        ])
        defer { server.stop() }
        let log = LogRecorder()

        let reply = try await backend(server, log, SleepRecorder()).complete(sampleRequest)

        #expect(reply == "Push the T-bar 3 cm left.")
        #expect(server.requests.count == 3)
        #expect(log.entries(.warning).map { $0.metadata["llm.status"] } == ["500", "503"])
        for request in server.requests { try expectValidSignature(request, server: server, credentials: credentials) }
    }

    @Test(
        "a 200 reply that is not a Converse response fails fast as malformed",
        arguments: ["<html>", #"{"output":{"message":{"role":"assistant","content":[]}}}"#, #"{"output":{}}"#, #"{"message":"hi"}"#])
    func malformed(body: String) async throws {
        let server = try TestHTTPServer([.json(200, body), .json(200, converseReply)])
        defer { server.stop() }
        let log = LogRecorder()

        let error = await backendError { () async throws(BackendError) -> String in
            try await backend(server, log, SleepRecorder()).complete(sampleRequest)
        }

        #expect(error?.kind == .malformed)
        #expect(server.requests.count == 1)
        #expect(log.entries(.warning).isEmpty)
    }

    @Test(
        "auth and validation errors are not retried",
        arguments: [
            (403, "AccessDeniedException", BackendError.Kind.auth), (400, "ExpiredTokenException", .auth),
            (403, "InvalidSignatureException", .auth), (400, "ValidationException", .client),
            (404, "ResourceNotFoundException", .client),
        ])
    func notRetried(status: Int, type: String, kind: BackendError.Kind) async throws {
        let server = try TestHTTPServer([
            .json(status, #"{"message":"details"}"#, headers: ["x-amzn-ErrorType": "\(type):http://internal.amazon.com/coral/"]),
            .json(200, converseReply),
        ])
        defer { server.stop() }

        let error = await backendError { () async throws(BackendError) -> String in
            try await backend(server, LogRecorder(), SleepRecorder()).complete(sampleRequest)
        }

        #expect(error?.kind == kind)
        #expect(error?.description == "bedrock: HTTP \(status) \(type): details")
        #expect(server.requests.count == 1)
    }

    @Test("the default endpoint is the region's bedrock-runtime host")
    func defaultEndpoint() {
        let backend = BedrockBackend(region: "eu-west-3", modelID: haiku, credentials: credentials, logger: LogRecorder().logger)
        #expect(
            backend.converseURL?.absoluteString
                == "https://bedrock-runtime.eu-west-3.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
    }
}
