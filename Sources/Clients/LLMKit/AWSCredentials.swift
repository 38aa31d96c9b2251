import Foundation

/// AWS credentials for signing requests (SigV4). `description` hides the secret and the token.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The access key id, `AKIA...` (long-term) or `ASIA...` (temporary).
    public var accessKeyID: String
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token of temporary credentials; sent as `x-amz-security-token`.
    public var sessionToken: String?

    /// Credentials from their parts; an empty `sessionToken` counts as none.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken?.isEmpty == true ? nil : sessionToken
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secret: <redacted>\(sessionToken == nil ? "" : ", session token: <redacted>"))"
    }

    /// Finds credentials the way the AWS CLI does, in this order:
    /// 1. unless `profile` is given, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with
    ///    `AWS_SESSION_TOKEN` if set) from `environment`;
    /// 2. the profile `profile`, else `AWS_PROFILE`, else `default`, of the shared credentials file
    ///    `AWS_SHARED_CREDENTIALS_FILE`, else `{home}/.aws/credentials` (`home` defaults to `HOME`).
    /// Throws ``AWSCredentialsError`` naming what is missing. Reads the file; call it once at start-up.
    public static func resolve(environment: [String: String], profile: String?, home: String?) throws -> AWSCredentials {
        func env(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        if profile == nil {
            switch (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            case let (id?, secret?):
                return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: env("AWS_SESSION_TOKEN"))
            case (_?, nil):
                throw AWSCredentialsError("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
            case (nil, _?):
                throw AWSCredentialsError("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
            case (nil, nil):
                break
            }
        }
        let profileName = profile ?? env("AWS_PROFILE") ?? "default"
        let home = home ?? env("HOME")
        let path: String
        if let configured = env("AWS_SHARED_CREDENTIALS_FILE") {
            if configured == "~" || configured.hasPrefix("~/"), let home {
                path = home + configured.dropFirst()
            } else {
                path = configured
            }
        } else if let home {
            path = home + "/.aws/credentials"
        } else {
            throw AWSCredentialsError(
                "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and neither "
                    + "AWS_SHARED_CREDENTIALS_FILE nor HOME is, so there is no shared credentials file to read")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            let envPart = profile == nil ? "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and " : ""
            throw AWSCredentialsError("no AWS credentials: \(envPart)the shared credentials file \(path) \(why)")
        }
        let profiles = SharedCredentialsFile.parse(text)
        guard let section = profiles[profileName] else {
            let known = profiles.keys.sorted().joined(separator: ", ")
            throw AWSCredentialsError(
                "no AWS credentials: profile '\(profileName)' is not in \(path) (profiles there: \(known.isEmpty ? "none" : known))")
        }
        let missing = ["aws_access_key_id", "aws_secret_access_key"].filter { (section[$0] ?? "").isEmpty }
        guard missing.isEmpty, let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else {
            throw AWSCredentialsError(
                "no AWS credentials: profile '\(profileName)' in \(path) has no \(missing.joined(separator: " and "))")
        }
        return AWSCredentials(
            accessKeyID: id, secretAccessKey: secret,
            sessionToken: section["aws_session_token"] ?? section["aws_security_token"])
    }

    /// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION`, else nil.
    public static func region(environment: [String: String]) -> String? {
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty { return value }
        }
        return nil
    }
}

/// Why ``AWSCredentials/resolve(environment:profile:home:)`` found no credentials.
public struct AWSCredentialsError: Error, CustomStringConvertible, Sendable {
    /// One line naming what is missing and where it was looked for.
    public let description: String

    init(_ description: String) { self.description = description }
}

/// The INI format of `~/.aws/credentials`: `[profile]` sections of `key = value` lines; `#` and `;`
/// start comments; `[profile name]` (the config file's spelling) is accepted too.
enum SharedCredentialsFile {
    /// Sections by profile name, each a map of lower-cased keys to values.
    static func parse(_ text: String) -> [String: [String: String]] {
        var profiles: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = name.dropFirst("profile ".count).trimmingCharacters(in: .whitespaces) }
                current = name
                if profiles[name] == nil { profiles[name] = [:] }
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            profiles[current, default: [:]][key] = value
        }
        return profiles
    }
}
