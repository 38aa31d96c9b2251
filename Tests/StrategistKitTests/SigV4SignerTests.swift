import Foundation
import StrategistKit
import Testing
import LLMKit

/// 2026-11-22T12:34:56Z.
let fixedDate = Date(timeIntervalSince1970: 1_795_350_896)

@Suite("SigV4 signing")
struct SigV4SignerTests {
    @Test("fixedDate is 2026-11-22T12:34:56Z")
    func timestamp() {
        #expect(SigV4Signer.timestamp(fixedDate) == "20261122T123456Z")
        #expect(SigV4Signer.timestamp(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
    }

    @Test("AWS's SigV4 test suite: get-vanilla")
    func getVanilla() throws {
        let headers = SigV4Signer().sign(
            method: "GET", url: try #require(URL(string: "https://example.amazonaws.com/")), headers: [:], body: Data(),
            date: Date(timeIntervalSince1970: 1_440_938_160), region: "us-east-1", service: "service",
            credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"))
        #expect(headers["X-Amz-Date"] == "20150830T123600Z")
        #expect(
            headers["Authorization"]
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(headers["X-Amz-Security-Token"] == nil)
    }

    @Test("the canonical URI encodes the encoded model id again, and normalizes the path")
    func canonicalURI() throws {
        let url = try #require(
            URL(string: "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/./x/../converse"))
        let canonical = SigV4Signer().canonicalRequest(
            method: "post", url: url, headers: [:], body: Data(), date: fixedDate,
            credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret"))
        let lines = canonical.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "POST")
        #expect(lines[1] == "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse")
        #expect(lines[2] == "")
        #expect(lines[3] == "host:bedrock-runtime.us-east-1.amazonaws.com")
        #expect(lines[4] == "x-amz-date:20261122T123456Z")
        #expect(lines.last == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test(
        "equals botocore's SigV4Auth", .tags(.process),
        .enabled("botocore is not importable by the tests' Python; ROBOSIM_REQUIRE_BOTOCORE=1 makes that a failure") {
            Botocore.shouldRun
        })
    func equalsBotocore() throws {
        if let reason = Botocore.unavailableReason {
            Issue.record(
                "ROBOSIM_REQUIRE_BOTOCORE=1 but \(reason). Install it: .venv/bin/pip install -r python/requirements-dev.txt")
            return
        }
        let body = Data(
            #"{"system":[{"text":"You plan pushes."}],"messages":[{"role":"user","content":[{"text":"Where?"}]}],"inferenceConfig":{"maxTokens":256,"temperature":0.2}}"#
                .utf8)
        let converse = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        let json = ["Content-Type": "application/json"]
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
        func make(
            _ url: String, method: String = "POST", headers: [String: String] = json, body: Data = body, token: String? = nil,
            region: String = "us-east-1", service: String = "bedrock"
        ) -> Botocore.Case {
            Botocore.Case(
                method: method, url: url, headers: headers, body: body.base64EncodedString(), accessKeyID: "AKIDEXAMPLE",
                secretAccessKey: secret, sessionToken: token, region: region, service: service, timestamp: "20261122T123456Z")
        }
        let cases: [(String, Botocore.Case)] = [
            ("Converse", make(converse)),
            ("Converse with a session token", make(converse, token: "IQoJb3JpZ2luX2VjEXAMPLE//token+with/slashes==")),
            (
                "inference profile ARN as model id",
                make(
                    "https://bedrock-runtime.us-west-2.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                    region: "us-west-2")
            ),
            (
                "headers needing trim-all, and unsigned ones",
                make(
                    converse,
                    headers: [
                        "Content-Type": "application/json", "X-Custom": "  a   b\tc  ", "User-Agent": "robosim",
                        "Accept": "application/json",
                    ])
            ),
            (
                "query string, GET, empty body",
                make(
                    "https://bedrock.us-east-1.amazonaws.com/foundation-models?byProvider=anthropic&a=1&byOutputModality=TEXT",
                    method: "GET", headers: [:], body: Data())
            ),
            ("plain HTTP on a port, dot segments", make("http://127.0.0.1:8080/a/./b/../model/x%3Ay/converse")),
        ]

        let reference = try Botocore.sign(cases.map(\.1))

        try #require(reference.count == cases.count)
        for ((label, c), expected) in zip(cases, reference) {
            let ours = SigV4Signer().sign(
                method: c.method, url: try #require(URL(string: c.url)), headers: c.headers,
                body: try #require(Data(base64Encoded: c.body)), date: fixedDate, region: c.region, service: c.service,
                credentials: AWSCredentials(accessKeyID: c.accessKeyID, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken))
            #expect(expected["X-Amz-Date"] == "20261122T123456Z", "botocore did not take the fixed time (\(label))")
            #expect(ours["Authorization"] == expected["Authorization"], "\(label)")
            #expect(ours["X-Amz-Date"] == expected["X-Amz-Date"], "\(label)")
            #expect(ours["X-Amz-Security-Token"] == expected["X-Amz-Security-Token"], "\(label)")
        }
    }
}
