/// Where and how a `Hub` listens. Plain values with documented defaults.
public struct HubConfiguration: Sendable {
    /// Default server address (the ROUTER for services): `tcp://127.0.0.1:7700`.
    public static let defaultListen = "tcp://127.0.0.1:7700"

    /// The ROUTER endpoint for service calls.
    public var serviceEndpoint: String
    /// The XPUB endpoint subscribers connect to.
    public var subscribeEndpoint: String
    /// The XSUB endpoint client publishers connect to.
    public var publishEndpoint: String
    /// Largest frame accepted (bytes). Larger topic messages are dropped and counted; larger service
    /// calls get a `TOO_LARGE` error. Default 64 MiB. ZeroMQ disconnects a peer sending over 4x this.
    public var maxFrameBytes: Int = 64 << 20
    /// ZeroMQ high-water mark of the forwarding sockets (messages per peer). Default 1000.
    public var highWaterMark: Int32 = 1000
    /// A node that has not announced itself for this many of its heartbeats is forgotten. Default 3.
    public var missedHeartbeats: Double = 3
    /// Bounds of the hub's tables, so that no client can grow its memory without limit: announced
    /// nodes (`/graph/announce` beyond it gets `RESOURCE_EXHAUSTED`), publishers plus subscriptions
    /// one node may announce, topics with statistics (messages on further new topics are still
    /// forwarded, without statistics), and distinct subscription prefixes (further new ones are
    /// dropped and counted; their subscribers get nothing on them).
    public var maxNodes = 1024
    public var maxEndpointsPerNode = 1 << 16
    public var maxTopics = 1 << 16
    public var maxSubscriptionPrefixes = 1 << 14
    /// CURVE keys and the client allow-list (default nil: plaintext). See `ServerSecurity`.
    public var security: ServerSecurity?
    /// Lets a hub without `security` listen on an address other hosts can reach (default false:
    /// `Hub.init` refuses; with true it logs a warning). Loopback, `ipc://` and `inproc://` need neither.
    public var allowInsecure = false

    /// Throws when the configuration would expose plaintext sockets beyond this host.
    public func checkExposure() throws(HubError) {
        guard security == nil, !allowInsecure, !ListenAddress.isLoopback(serviceEndpoint) else { return }
        throw HubError(
            "refusing to listen on \(serviceEndpoint) without keys: anyone who can reach it could drive the simulator; give --key and --allow (docs/security.md), or --insecure")
    }

    /// Derives the three endpoints from one listen address: for `tcp://HOST:PORT` the data sockets
    /// take PORT+1 (XPUB) and PORT+2 (XSUB); with PORT `*` or 0 every socket takes a free port; for
    /// `ipc://` and `inproc://` they take the address plus `-pub` and `-sub`.
    public init(listen: String = HubConfiguration.defaultListen) throws(HubError) {
        serviceEndpoint = listen
        if listen.hasPrefix("tcp://") {
            guard let colon = listen.lastIndex(of: ":"), colon > listen.index(listen.startIndex, offsetBy: 5) else {
                throw HubError("listen address '\(listen)' needs a port: tcp://HOST:PORT")
            }
            let host = listen[..<colon]
            let portText = listen[listen.index(after: colon)...]
            if portText == "*" || portText == "0" {
                serviceEndpoint = "\(host):*"
                subscribeEndpoint = "\(host):*"
                publishEndpoint = "\(host):*"
            } else if let port = Int(portText), port > 0, port < 65534 {
                subscribeEndpoint = "\(host):\(port + 1)"
                publishEndpoint = "\(host):\(port + 2)"
            } else {
                throw HubError("listen address '\(listen)': port must be 1...65533, 0 or *")
            }
        } else if listen.hasPrefix("ipc://") || listen.hasPrefix("inproc://") {
            subscribeEndpoint = listen + "-pub"
            publishEndpoint = listen + "-sub"
        } else {
            throw HubError("listen address '\(listen)' must start with tcp://, ipc:// or inproc://")
        }
    }
}

/// A hub failed to start (bad address, port in use).
public struct HubError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Client-side endpoint resolution.
public enum Endpoints {
    /// A data endpoint from `/sim/describe` as seen from a client that reached the server at
    /// `server`: a wildcard host (`*`, `0.0.0.0`, `[::]`) becomes the server address's host, so a
    /// server bound to all interfaces (containers) is reachable at the address the client used.
    public static func resolve(_ endpoint: String, server: String) -> String {
        guard endpoint.hasPrefix("tcp://"), server.hasPrefix("tcp://"),
              let colon = endpoint.lastIndex(of: ":"), let serverColon = server.lastIndex(of: ":")
        else { return endpoint }
        let host = endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon]
        guard host == "*" || host == "0.0.0.0" || host == "[::]" || host == "::" else { return endpoint }
        let serverHost = server[server.index(server.startIndex, offsetBy: 6)..<serverColon]
        return "tcp://\(serverHost)\(endpoint[colon...])"
    }
}
