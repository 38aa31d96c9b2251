import CZeroMQ
import Foundation

/// What a client needs to talk to a server that uses CURVE: the server's public key and the
/// client's own key pair (whose public key must be on the server's allow-list).
///
/// `ServiceClient` and `Node` set it on every socket they open (ZMQ_CURVE_SERVERKEY, PUBLICKEY,
/// SECRETKEY) before connecting. Without it their sockets speak plaintext (ZeroMQ's NULL mechanism).
public struct ClientSecurity: Sendable, Equatable {
    /// The server's Z85 public key.
    public var serverKey: String
    /// This client's key pair.
    public var keyPair: CurveKeyPair

    public init(serverKey: String, keyPair: CurveKeyPair) throws(SecurityError) {
        guard CurveKey.isValid(serverKey) else { throw SecurityError("the server key is not a 40-character Z85 CURVE key") }
        self.serverKey = serverKey
        self.keyPair = keyPair
    }

    /// Environment variable naming the server's public key (a `.pub` file or the Z85 text).
    public static let serverKeyVariable = "ROBOSIM_SERVER_KEY"
    /// Environment variable naming this program's `.secret` file (clients and servers alike).
    public static let keyVariable = "ROBOSIM_KEY"

    /// The security a client program runs with, from its flags, else the environment
    /// (`ROBOSIM_SERVER_KEY`, `ROBOSIM_KEY`): nil when no server key is given (plaintext).
    /// A server key without an own key is an error: the server admits only allow-listed keys.
    public static func resolve(
        serverKey: String?, key: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecurityError) -> ClientSecurity? {
        func nonEmpty(_ s: String?) -> String? { s.flatMap { $0.isEmpty ? nil : $0 } }
        guard let server = nonEmpty(serverKey) ?? nonEmpty(environment[serverKeyVariable]) else {
            if nonEmpty(key) != nil {
                throw SecurityError("--key needs --server-key (or \(serverKeyVariable)): the server's public key")
            }
            return nil
        }
        guard let own = nonEmpty(key) ?? nonEmpty(environment[keyVariable]) else {
            throw SecurityError(
                "--server-key needs --key FILE.secret (or \(keyVariable)): this client's key pair, whose public key the server allows (simctl keys generate)"
            )
        }
        return try ClientSecurity(serverKey: try CurveKey.load(server), keyPair: try CurveKeyPair.read(secretFile: own))
    }

    /// Makes `socket` a CURVE client of the server. Call before `connect`.
    public func apply(to socket: ZMQSocket) throws(ZMQError) {
        try socket.setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8))
        try socket.setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(keyPair.publicKey.utf8))
        try socket.setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keyPair.secretKey.utf8))
    }
}

extension Optional where Wrapped == ClientSecurity {
    /// Applies the security, if any, to a socket about to connect.
    func apply(to socket: ZMQSocket) throws(ZMQError) {
        if case .some(let s) = self { try s.apply(to: socket) }
    }
}
