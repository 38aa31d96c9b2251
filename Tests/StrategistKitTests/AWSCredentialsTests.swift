import Foundation
import StrategistKit
import Testing
import LLMKit

/// A temporary home with `.aws/credentials` holding `text`, removed by `cleanUp()`.
private struct TemporaryHome {
    let path: String
    var credentialsFile: String { path + "/.aws/credentials" }

    init(credentials text: String?) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-aws-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path + "/.aws", withIntermediateDirectories: true)
        if let text { try text.write(toFile: path + "/.aws/credentials", atomically: true, encoding: .utf8) }
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: path) }
}

private let twoProfiles = """
    # written by aws configure
    [default]
    aws_access_key_id = AKIADEFAULT
    aws_secret_access_key = defaultsecret

    [dev]
    ; temporary credentials
    aws_access_key_id=ASIADEV
    aws_secret_access_key =  devsecret/with+slash
    aws_session_token = devtoken==
    region = eu-west-1

    [broken]
    aws_access_key_id = AKIABROKEN
    """

@Suite("AWS credentials resolution")
struct AWSCredentialsTests {
    @Test("from the environment, with and without a session token")
    func environment() throws {
        let plain = try AWSCredentials.resolve(
            environment: ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret"], profile: nil, home: "/nonexistent")
        #expect(plain == AWSCredentials(accessKeyID: "AKIAENV", secretAccessKey: "envsecret"))
        #expect(plain.sessionToken == nil)

        let temporary = try AWSCredentials.resolve(
            environment: ["AWS_ACCESS_KEY_ID": "ASIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken"],
            profile: nil, home: "/nonexistent")
        #expect(temporary.sessionToken == "envtoken")
        #expect(!temporary.description.contains("envsecret") && !temporary.description.contains("envtoken"))
    }

    @Test("half the environment pair names the missing half")
    func partialEnvironment() {
        #expect {
            try AWSCredentials.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIAENV"], profile: nil, home: "/nonexistent")
        } throws: { "\($0)" == "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not" }
    }

    @Test("from the shared credentials file: default, AWS_PROFILE, an explicit profile, AWS_SHARED_CREDENTIALS_FILE")
    func sharedFile() throws {
        let home = try TemporaryHome(credentials: twoProfiles)
        defer { home.cleanUp() }

        let byDefault = try AWSCredentials.resolve(environment: [:], profile: nil, home: home.path)
        #expect(byDefault == AWSCredentials(accessKeyID: "AKIADEFAULT", secretAccessKey: "defaultsecret"))

        let dev = AWSCredentials(accessKeyID: "ASIADEV", secretAccessKey: "devsecret/with+slash", sessionToken: "devtoken==")
        #expect(try AWSCredentials.resolve(environment: ["AWS_PROFILE": "dev"], profile: nil, home: home.path) == dev)
        // HOME from the environment when no home is given.
        #expect(try AWSCredentials.resolve(environment: ["HOME": home.path, "AWS_PROFILE": "dev"], profile: nil, home: nil) == dev)
        // An explicit profile wins over AWS_PROFILE and over the environment's keys.
        let environment = ["AWS_PROFILE": "default", "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret"]
        #expect(try AWSCredentials.resolve(environment: environment, profile: "dev", home: home.path) == dev)
        // AWS_SHARED_CREDENTIALS_FILE wins over home.
        #expect(
            try AWSCredentials.resolve(
                environment: ["AWS_SHARED_CREDENTIALS_FILE": home.credentialsFile], profile: "dev", home: "/nonexistent") == dev)
    }

    @Test("missing: no file, no profile, no secret; each error names what is missing")
    func missing() throws {
        let home = try TemporaryHome(credentials: twoProfiles)
        defer { home.cleanUp() }
        let empty = try TemporaryHome(credentials: nil)
        defer { empty.cleanUp() }

        #expect {
            try AWSCredentials.resolve(environment: [:], profile: nil, home: empty.path)
        } throws: {
            "\($0)" == "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and the shared "
                + "credentials file \(empty.credentialsFile) does not exist"
        }
        #expect {
            try AWSCredentials.resolve(environment: ["AWS_PROFILE": "prod"], profile: nil, home: home.path)
        } throws: {
            "\($0)" == "no AWS credentials: profile 'prod' is not in \(home.credentialsFile) (profiles there: broken, default, dev)"
        }
        #expect {
            try AWSCredentials.resolve(environment: [:], profile: "broken", home: home.path)
        } throws: {
            "\($0)" == "no AWS credentials: profile 'broken' in \(home.credentialsFile) has no aws_secret_access_key"
        }
        #expect(throws: AWSCredentialsError.self) {
            try AWSCredentials.resolve(environment: [:], profile: nil, home: nil)
        }
    }

    @Test("the region from AWS_REGION, else AWS_DEFAULT_REGION")
    func region() {
        #expect(AWSCredentials.region(environment: ["AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"]) == "us-west-2")
        #expect(AWSCredentials.region(environment: ["AWS_DEFAULT_REGION": "eu-west-1"]) == "eu-west-1")
        #expect(AWSCredentials.region(environment: [:]) == nil)
    }
}
