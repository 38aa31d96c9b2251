import Foundation
import TestSupport
import LLMKit

/// botocore's SigV4, run in a Python subprocess, as the reference for ``SigV4Signer``.
///
/// The interpreter is `$ROBOSIM_PYTHON`, else the repository's `.venv/bin/python` (what
/// `scripts/setup.sh` makes, with `python/requirements-dev.txt`, which lists botocore), else
/// `python3` on the PATH. When botocore cannot be imported the comparison is skipped, unless
/// `ROBOSIM_REQUIRE_BOTOCORE=1` (set by `scripts/test.sh`, so CI), where it fails instead.
enum Botocore {
    /// The repository root: three levels above this file (`Tests/StrategistKitTests/Botocore.swift`).
    static let repositoryRoot = PythonScript.repositoryRoot

    /// Whether a missing botocore is a failure rather than a skip.
    static let required = ProcessInfo.processInfo.environment["ROBOSIM_REQUIRE_BOTOCORE"] == "1"

    /// The command that runs Python (see `PythonScript`).
    static var python: [String] { PythonScript.python }

    /// Why botocore cannot be used, or nil when it can (checked once, by importing it).
    static let unavailableReason: String? = PythonScript.importProblem("botocore, botocore.auth, botocore.awsrequest, botocore.credentials", name: "botocore")

    /// Whether the comparison test runs: botocore is importable, or its absence must fail the test.
    static var shouldRun: Bool { unavailableReason == nil || required }

    /// One request to sign.
    struct Case: Codable {
        var method = "POST"
        var url: String
        var headers: [String: String]
        /// Base64 of the body.
        var body: String
        var accessKeyID: String
        var secretAccessKey: String
        var sessionToken: String?
        var region = "us-east-1"
        var service = "bedrock"
        /// `yyyyMMddTHHmmssZ`, the signing time.
        var timestamp: String
    }

    /// The headers botocore's `SigV4Auth.add_auth` sets for each case: `Authorization`,
    /// `X-Amz-Date`, and `X-Amz-Security-Token` with a session token.
    static func sign(_ cases: [Case]) throws -> [[String: String]] {
        let result = try run(script: signScript, input: try JSONEncoder().encode(cases))
        guard result.status == 0 else {
            throw BotocoreFailure("botocore signing script exited with \(result.status): \(result.stderr)")
        }
        return try JSONDecoder().decode([[String: String]].self, from: result.stdout)
    }

    /// botocore reads the signing time from `botocore.auth.get_current_datetime()` (botocore ≥ 1.33;
    /// earlier ones from `datetime.datetime.utcnow()` through the module's `datetime`), so the
    /// script fixes whichever this botocore has.
    private static let signScript = #"""
        import base64, datetime, json, sys, types
        import botocore.auth as auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        out = []
        for c in json.load(sys.stdin):
            fixed = datetime.datetime.strptime(c["timestamp"], "%Y%m%dT%H%M%SZ")
            if hasattr(auth, "get_current_datetime"):
                auth.get_current_datetime = lambda *a, _f=fixed, **k: _f
            else:
                class Fixed(datetime.datetime):
                    @classmethod
                    def utcnow(cls, _f=fixed):
                        return _f
                    @classmethod
                    def now(cls, tz=None, _f=fixed):
                        return _f if tz is None else _f.replace(tzinfo=tz)
                auth.datetime = types.SimpleNamespace(datetime=Fixed)
            request = AWSRequest(method=c["method"], url=c["url"], headers=c["headers"], data=base64.b64decode(c["body"]))
            credentials = Credentials(c["accessKeyID"], c["secretAccessKey"], c.get("sessionToken"))
            auth.SigV4Auth(credentials, c["service"], c["region"]).add_auth(request)
            out.append({k: request.headers[k] for k in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token") if k in request.headers})
        json.dump(out, sys.stdout)
        """#

    private static func run(script: String, input: Data) throws -> (status: Int32, stdout: Data, stderr: String) {
        try PythonScript.run(script: script, input: input)
    }
}


struct BotocoreFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
