import CZeroMQ
import Foundation

/// A hub's CURVE identity and the client keys it admits.
///
/// With it, the hub's three sockets (ROUTER, XPUB, XSUB) are CURVE servers in the ZAP domain
/// `robosim`, and a ZAP handler admits only clients whose public key is in `allowedClients`;
/// every other handshake fails, and the refusal is logged (rate-limited) and counted.
public struct ServerSecurity: Sendable, Equatable {
    /// The server's key pair; clients need its public key.
    public var keyPair: CurveKeyPair
    /// Z85 public keys of the clients admitted. Never empty.
    public var allowedClients: Set<String>

    /// The ZAP domain of the hub's sockets.
    public static let zapDomain = "robosim"

    public init(keyPair: CurveKeyPair, allowedClients: Set<String>) throws(SecurityError) {
        guard !allowedClients.isEmpty else {
            throw SecurityError("a server key needs an allow-list (--allow FILE|DIR): without one no client could connect")
        }
        for k in allowedClients where !CurveKey.isValid(k) { throw SecurityError("allow-list entry '\(k.prefix(48))' is not a Z85 key") }
        self.keyPair = keyPair
        self.allowedClients = allowedClients
    }

    /// Environment variable with allow-list paths, colon-separated (as `--allow`, repeated).
    public static let allowVariable = "ROBOSIM_ALLOW"

    /// The security a server runs with, from its flags, else the environment (`ROBOSIM_KEY`,
    /// `ROBOSIM_ALLOW`): nil without a key. `allow` paths: a `.pub` file, a file of keys (one a
    /// line, `#` comments), or a directory whose `*.pub` files are read.
    public static func resolve(
        key: String?, allow: [String], environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecurityError) -> ServerSecurity? {
        let keyPath = key.flatMap { $0.isEmpty ? nil : $0 } ?? environment[ClientSecurity.keyVariable].flatMap { $0.isEmpty ? nil : $0 }
        let allowPaths = !allow.isEmpty ? allow : (environment[allowVariable] ?? "").split(separator: ":").map(String.init)
        guard let keyPath else {
            if !allowPaths.isEmpty {
                throw SecurityError("--allow needs --key FILE.secret (or \(ClientSecurity.keyVariable)): the server's key pair")
            }
            return nil
        }
        let pair = try CurveKeyPair.read(secretFile: keyPath)
        var allowed = Set<String>()
        for path in allowPaths { allowed.formUnion(try loadAllowList(path)) }
        return try ServerSecurity(keyPair: pair, allowedClients: allowed)
    }

    /// The keys one `--allow` path names.
    public static func loadAllowList(_ path: String) throws(SecurityError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SecurityError("allow-list \(path) does not exist")
        }
        if isDirectory.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw SecurityError("cannot list \(path): \(error.localizedDescription)")
            }
            var keys: [String] = []
            for name in names.sorted() where name.hasSuffix(".pub") {
                keys += try loadAllowList((path as NSString).appendingPathComponent(name))
            }
            return keys
        }
        guard !path.hasSuffix(".secret") else { throw SecurityError("\(path): allow a client's .pub file, not its .secret") }
        let lines = try KeyFiles.lines(of: path)
        for (n, line) in lines.enumerated() where !CurveKey.isValid(line) {
            throw SecurityError("\(path): key \(n + 1) is not a 40-character Z85 key")
        }
        return lines
    }

    /// Makes `socket` a CURVE server in the `robosim` ZAP domain. Call before `bind`.
    func apply(to socket: ZMQSocket) throws(ZMQError) {
        try socket.setOption(ZMQ_CURVE_SERVER, Int32(1))
        try socket.setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keyPair.secretKey.utf8))
        try socket.setOption(ZMQ_ZAP_DOMAIN, bytes: Array(Self.zapDomain.utf8))
        // ZMQ_ZAP_ENFORCE_DOMAIN (a draft option; 93): where libzmq has it, a handshake fails
        // instead of succeeding when no ZAP handler answers. Debian's build lacks it; there the
        // hub keeps its handler bound for as long as its sockets live.
        try? socket.setOption(93, Int32(1))
    }
}

/// Which listen addresses are reachable only from this host.
public enum ListenAddress {
    /// True for `ipc://`, `inproc://`, and `tcp://` on 127.x.x.x, `[::1]` or `localhost`.
    public static func isLoopback(_ address: String) -> Bool {
        if address.hasPrefix("ipc://") || address.hasPrefix("inproc://") { return true }
        guard address.hasPrefix("tcp://") else { return false }
        var host = String(address.dropFirst(6))
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        // A ZeroMQ "interface;address" pair: the local interface is what is bound.
        if let semicolon = host.firstIndex(of: ";") { host = String(host[..<semicolon]) }
        host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// True when `host` (a bare interface name or address, as `--viewer-host` takes) is loopback.
    public static func isLoopbackHost(_ host: String) -> Bool {
        isLoopback("tcp://\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host):1")
    }
}
