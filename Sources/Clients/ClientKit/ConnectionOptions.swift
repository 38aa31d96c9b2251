import ArgumentParser
import Messaging

/// `--server`, `--timeout` and the CURVE keys (`--server-key`, `--key`), shared by every client program.
public struct ConnectionOptions: ParsableArguments, Sendable {
    @Option(help: "Server address (its ROUTER). Default: SIM_SERVER, else tcp://127.0.0.1:7700.")
    public var server: String?

    @Option(help: "Seconds to wait for a service reply.")
    public var timeout: Double = 5

    @OptionGroup public var keys: ClientKeyOptions

    public init() {}

    /// The address to use: `--server`, else `SIM_SERVER`, else the default.
    public var address: String { server ?? Node.defaultServer }

    public func validate() throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    /// The CURVE keys from `--server-key`/`--key`, else `ROBOSIM_SERVER_KEY`/`ROBOSIM_KEY`; nil
    /// without a server key (plaintext).
    public var security: ClientSecurity? {
        get throws { try keys.security }
    }

    /// A service client for the server.
    public func client() throws -> ServiceClient {
        try ServiceClient(server: address, timeout: timeout, security: try security)
    }

    /// A node named `<prefix>_<pid>` joined to the server's graph.
    public func node(prefix: String) throws -> Node {
        try Node(name: "\(prefix)_\(ProcessInfo.processInfo.processIdentifier)", server: address, timeout: timeout, security: try security)
    }
}

import Foundation
