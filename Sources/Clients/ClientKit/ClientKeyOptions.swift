import ArgumentParser
import Messaging

/// `--server-key` and `--key`: the CURVE keys of a client program (docs/security.md). Part of
/// `ConnectionOptions`; programs with their own `--server` flags (sim-train) use it alone.
public struct ClientKeyOptions: ParsableArguments, Sendable {
    @Option(
        name: .customLong("server-key"),
        help:
            "The server's CURVE public key (a .pub file or the Z85 text): encrypt and authenticate (needs --key). Default: ROBOSIM_SERVER_KEY."
    )
    public var serverKey: String?

    @Option(help: "This client's key pair (a .secret file from simctl keys generate), allowed by the server. Default: ROBOSIM_KEY.")
    public var key: String?

    public init() {}

    public func validate() throws {
        do { _ = try ClientSecurity.resolve(serverKey: serverKey, key: key) } catch { throw ValidationError(error.description) }
    }

    /// The keys from the flags, else `ROBOSIM_SERVER_KEY`/`ROBOSIM_KEY`; nil without a server key
    /// (plaintext). Checked by `validate()`, so it does not throw after it.
    public var security: ClientSecurity? {
        get throws { try ClientSecurity.resolve(serverKey: serverKey, key: key) }
    }
}
