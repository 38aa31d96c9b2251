import Crypto
import Foundation

/// AWS Signature Version 4 for services other than S3, as botocore's `SigV4Auth` computes it.
///
/// Signs the request's method, path, query, the given headers plus `host`, `x-amz-date` (and
/// `x-amz-security-token` with temporary credentials), and the SHA-256 of the body. The canonical
/// URI is the URL's already percent-encoded path, normalized (`.`/`..` and empty segments removed)
/// and percent-encoded once more, as non-S3 services require: a model id `a:b` is sent as `a%3Ab`
/// and signed as `a%253Ab`. Pure: the same inputs and `date` give the same headers.
public struct SigV4Signer: Sendable {
    /// Hop-by-hop and tracing headers that botocore never signs.
    static let unsignedHeaders: Set<String> = [
        "authorization", "baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te", "traceparent", "tracestate", "trailer", "transfer-encoding",
        "upgrade", "user-agent", "x-amzn-trace-id",
    ]

    /// A signer. With `includeContentSHA256`, the payload hash is also sent and signed as
    /// `X-Amz-Content-Sha256` (optional for Bedrock; S3 requires it). Default false, as botocore.
    public init(includeContentSHA256: Bool = false) { self.includeContentSHA256 = includeContentSHA256 }

    /// Whether to add and sign `X-Amz-Content-Sha256`.
    public var includeContentSHA256: Bool

    /// The headers to add to the request: `X-Amz-Date`, `X-Amz-Security-Token` (temporary
    /// credentials only), `X-Amz-Content-Sha256` (if enabled) and `Authorization`. `headers` are the
    /// request's other headers, all signed (but for hop-by-hop ones); `Host` is signed as the HTTP
    /// client sends it (the URL's host, with the port when not the scheme's default) unless
    /// `headers` has one. `date` is the signing time (UTC; requests are valid for 15 minutes).
    public func sign(
        method: String, url: URL, headers: [String: String], body: Data, date: Date, region: String, service: String,
        credentials: AWSCredentials
    ) -> [String: String] {
        let parts = canonicalParts(
            method: method, url: url, headers: headers, body: body, date: date, credentials: credentials)
        let timestamp = Self.timestamp(date)
        let day = String(timestamp.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", timestamp, scope, Self.hex(SHA256.hash(data: Data(parts.canonicalRequest.utf8))),
        ].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for element in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(element.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        var added = parts.addedHeaders
        added["Authorization"] =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(parts.signedHeaders), Signature=\(signature)"
        return added
    }

    /// The canonical request (step 1 of SigV4), for debugging a signature mismatch.
    public func canonicalRequest(
        method: String, url: URL, headers: [String: String], body: Data, date: Date, credentials: AWSCredentials
    ) -> String {
        canonicalParts(method: method, url: url, headers: headers, body: body, date: date, credentials: credentials)
            .canonicalRequest
    }

    private func canonicalParts(
        method: String, url: URL, headers: [String: String], body: Data, date: Date, credentials: AWSCredentials
    ) -> (canonicalRequest: String, signedHeaders: String, addedHeaders: [String: String]) {
        let payloadHash = Self.hex(SHA256.hash(data: body))
        var added = ["X-Amz-Date": Self.timestamp(date)]
        if let token = credentials.sessionToken { added["X-Amz-Security-Token"] = token }
        if includeContentSHA256 { added["X-Amz-Content-Sha256"] = payloadHash }

        var signed: [String: [String]] = [:]
        let replaced = Set(added.keys.map { $0.lowercased() })
        for (name, value) in headers {
            let lower = name.lowercased()
            guard !Self.unsignedHeaders.contains(lower), !replaced.contains(lower) else { continue }
            signed[lower, default: []].append(value)
        }
        for (name, value) in added { signed[name.lowercased()] = [value] }
        if signed["host"] == nil { signed["host"] = [Self.host(of: url)] }

        let names = signed.keys.sorted()
        let canonicalHeaders = names.map { name in
            "\(name):" + signed[name, default: []].map(Self.trimAll).joined(separator: ",")
        }
        let signedHeaders = names.joined(separator: ";")
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let canonicalRequest = [
            method.uppercased(),
            Self.canonicalURI(components?.percentEncodedPath ?? ""),
            Self.canonicalQuery(components?.percentEncodedQuery),
            canonicalHeaders.joined(separator: "\n") + "\n",
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        return (canonicalRequest, signedHeaders, added)
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ value: Int?, _ width: Int) -> String {
            let digits = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return pad(c.year, 4) + pad(c.month, 2) + pad(c.day, 2) + "T" + pad(c.hour, 2) + pad(c.minute, 2)
            + pad(c.second, 2) + "Z"
    }

    /// The already-encoded `path` with dot and empty segments removed (a trailing `/` kept), then
    /// percent-encoded again: every byte but `A-Z a-z 0-9 - . _ ~ /`.
    static func canonicalURI(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(segment)
        }
        var normalized = "/" + segments.joined(separator: "/")
        if path.hasSuffix("/") && !segments.isEmpty { normalized += "/" }
        return uriEncode(normalized, keepSlash: true)
    }

    /// Query parameters as `key=value` pairs, each re-encoded with the unreserved set, sorted by key
    /// then value, joined with `&`; a parameter without `=` gets an empty value.
    static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: true).map { pair -> (String, String) in
            let key: Substring
            let value: Substring
            if let equals = pair.firstIndex(of: "=") {
                key = pair[..<equals]
                value = pair[pair.index(after: equals)...]
            } else {
                key = pair
                value = ""
            }
            func normalize(_ s: Substring) -> String { uriEncode(String(s).removingPercentEncoding ?? String(s), keepSlash: false) }
            return (normalize(key), normalize(value))
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Percent-encodes every UTF-8 byte except the unreserved characters (and `/` if `keepSlash`).
    static func uriEncode(_ string: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += "%" + hexByte(byte).uppercased()
            }
        }
        return out
    }

    /// The `Host` header an HTTP client sends for `url`: lower-cased host, IPv6 in brackets, and
    /// `:port` unless it is the scheme's default.
    static func host(of url: URL) -> String {
        var host = (url.host ?? "").lowercased()
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        if let port = url.port {
            let scheme = url.scheme?.lowercased()
            let isDefault = (scheme == "http" && port == 80) || (scheme == "https" && port == 443)
            if !isDefault { host += ":\(port)" }
        }
        return host
    }

    /// Lower-case hexadecimal digest or MAC.
    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        bytes.map(hexByte).joined()
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
    }

    /// Header value with leading and trailing space removed and inner runs of space collapsed.
    private static func trimAll(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }
}
