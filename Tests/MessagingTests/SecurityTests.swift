import Foundation
import Logging
import SwiftProtobuf
import TestSupport
import Testing

@testable import Messaging

/// CURVE transport and the ZAP allow-list, over real TCP sockets on loopback.
@Suite(.serialized) struct SecurityTests {
    @Test func keyFilesRoundTrip() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = folder.appendingPathComponent("server").path
        let pair = try CurveKeyPair.generate()
        let (pub, secret) = try pair.write(base: base)
        #expect(pub == base + ".pub" && secret == base + ".secret")
        #expect(try CurveKeyPair.read(secretFile: secret) == pair)
        #expect(try CurveKey.load(pub) == pair.publicKey)
        #expect(try CurveKey.load(pair.publicKey) == pair.publicKey)
        #expect(try String(contentsOfFile: pub, encoding: .utf8) == pair.publicKey + "\n")
        let lines = try String(contentsOfFile: secret, encoding: .utf8).split(separator: "\n")
        #expect(lines == [Substring(pair.publicKey), Substring(pair.secretKey)])
        let mode = try FileManager.default.attributesOfItem(atPath: secret)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(CurveKey.publicKey(ofSecret: pair.secretKey) == pair.publicKey)
        // Never over an existing key.
        #expect(throws: SecurityError.self) { try CurveKeyPair.generate().write(base: base) }
        #expect(try CurveKeyPair.read(secretFile: secret) == pair)
        // A secret that does not belong to its public key, and a file that is not a key.
        let other = try CurveKeyPair.generate()
        #expect(throws: SecurityError.self) { try CurveKeyPair(publicKey: pair.publicKey, secretKey: other.secretKey) }
        #expect(throws: SecurityError.self) { try CurveKey.load("not a key") }
        // Allow-lists: a .pub file, a directory of them, a file of keys; never a .secret.
        try other.write(base: folder.appendingPathComponent("client").path)
        #expect(Set(try ServerSecurity.loadAllowList(folder.path)) == [pair.publicKey, other.publicKey])
        let list = folder.appendingPathComponent("allowed.txt").path
        try "# fleet\n\(pair.publicKey)\n\n\(other.publicKey)\n".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(try ServerSecurity.loadAllowList(list) == [pair.publicKey, other.publicKey])
        #expect(throws: SecurityError.self) { try ServerSecurity.loadAllowList(secret) }
        // Flags and environment.
        let env = ["ROBOSIM_SERVER_KEY": pub, "ROBOSIM_KEY": secret]
        #expect(try ClientSecurity.resolve(serverKey: nil, key: nil, environment: env)?.serverKey == pair.publicKey)
        #expect(try ClientSecurity.resolve(serverKey: nil, key: nil, environment: [:]) == nil)
        #expect(throws: SecurityError.self) { try ClientSecurity.resolve(serverKey: pub, key: nil, environment: [:]) }
        let server = try ServerSecurity.resolve(
            key: nil, allow: [], environment: ["ROBOSIM_KEY": secret, "ROBOSIM_ALLOW": "\(list):\(pub)"])
        #expect(server?.allowedClients == [pair.publicKey, other.publicKey])
        #expect(throws: SecurityError.self) { try ServerSecurity.resolve(key: secret, allow: [], environment: [:]) }
    }

    @Test func allowListedClientGetsServicesAndTopics() async throws {
        let keys = try Keys()
        let hub = try SecureHub(keys)
        let node = try Node(
            name: "allowed", server: hub.hub.serviceEndpoint, heartbeat: 0.2, timeout: 10, security: keys.client(keys.allowed))
        defer { node.close() }
        let described = try node.client.describe()
        #expect(described.services.contains("/sim/describe"))
        // A topic from the server's own (in-process) node reaches the remote, authenticated subscriber.
        let local = try Node(name: "server_side", hub: hub.hub)
        defer { local.close() }
        let publisher = try local.advertise("/chatter", StdMsgs_String.self)
        let subscription = try node.subscribe("/chatter", StdMsgs_String.self)
        let got = await publishUntilReceived(publisher, .with { $0.data = "sealed" }, timeout: 30) {
            await subscription.first { _ in true }
        }
        #expect(got?.data == "sealed")
        // And a topic the remote node publishes (its PUB to the XSUB) reaches the server side.
        let back = try node.advertise("/reply", StdMsgs_String.self)
        let backSubscription = try local.subscribe("/reply", StdMsgs_String.self)
        let gotBack = await publishUntilReceived(back, .with { $0.data = "ack" }, timeout: 30) {
            await backSubscription.first { _ in true }
        }
        #expect(gotBack?.data == "ack")
        #expect(hub.hub.admittedClients >= 4)  // DEALER, announcer, SUB, PUB (at least)
        #expect(hub.hub.refusedClients == 0)
    }

    @Test func unknownKeyGetsNothingAndIsLogged() async throws {
        let keys = try Keys()
        let hub = try SecureHub(keys)
        let stranger = try CurveKeyPair.generate()
        let client = try ServiceClient(server: hub.hub.serviceEndpoint, timeout: 1.5, security: keys.client(stranger))
        #expect(throws: ServiceError.self) { _ = try client.describe() }
        do {
            _ = try client.describe()
        } catch {
            #expect(error.code == .deadlineExceeded)
        }
        // A node with the wrong key cannot even join (no /sim/describe answer).
        #expect(throws: ServiceError.self) {
            _ = try Node(name: "stranger", server: hub.hub.serviceEndpoint, timeout: 1, security: keys.client(stranger))
        }
        // Its SUB, connected straight to the XPUB, gets no topic message while allowed traffic flows.
        let rawSub = try ZMQSocket(ZMQContext.shared, .sub)
        try keys.client(stranger).apply(to: rawSub)
        try rawSub.subscribe("/chatter")
        try rawSub.connect(hub.hub.subscribeEndpoint)
        let plainSub = try ZMQSocket(ZMQContext.shared, .sub)
        try plainSub.subscribe("/chatter")
        try plainSub.connect(hub.hub.subscribeEndpoint)
        let local = try Node(name: "server_side", hub: hub.hub)
        defer { local.close() }
        let publisher = try local.advertise("/chatter", StdMsgs_String.self)
        let friend = try Node(
            name: "friend", server: hub.hub.serviceEndpoint, heartbeat: 0.2, timeout: 10, security: keys.client(keys.allowed))
        defer { friend.close() }
        let friendSubscription = try friend.subscribe("/chatter", StdMsgs_String.self)
        let got = await publishUntilReceived(publisher, .with { $0.data = "secret" }, timeout: 30) {
            await friendSubscription.first { _ in true }
        }
        #expect(got?.data == "secret")  // the topic is flowing...
        for _ in 0..<50 {
            publisher.publish(.with { $0.data = "secret" })
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try rawSub.receiveMultipart(flags: .dontWait) == nil)  // ...but not to the stranger
        #expect(try plainSub.receiveMultipart(flags: .dontWait) == nil)  // nor to a plaintext client
        #expect(hub.hub.refusedClients >= 3)
        let refusals = hub.log.entries(.warning).filter { $0.message == "refused a client" }
        #expect(refusals.count <= 10)  // rate-limited
        // The ZAP handler's refusals name the stranger's key (the plaintext SUB's are logged too:
        // see handshakesFailingBeforeZAPAreLoggedAndCounted).
        let byKey = refusals.filter { $0.metadata["zap.reason"] == "key not allowed" }
        #expect(!byKey.isEmpty)
        #expect(
            byKey.allSatisfy { $0.metadata["zap.key"] == CurveKey.prefix(stranger.publicKey) && $0.metadata["zap.peer"] == "127.0.0.1" })
    }

    /// A flood of refused handshakes logs at most a burst of lines; every one is counted.
    @Test func refusalLogIsRateLimited() throws {
        let keys = try Keys()
        let hub = try SecureHub(keys)
        let stranger = try keys.client(try CurveKeyPair.generate())
        let sockets = try (0..<25).map { _ in
            let s = try ZMQSocket(ZMQContext.shared, .dealer)
            try stranger.apply(to: s)
            try s.connect(hub.hub.serviceEndpoint)
            return s
        }
        defer { withExtendedLifetime(sockets) {} }
        #expect(eventually(timeout: 30) { hub.hub.refusedClients >= 25 })
        #expect(hub.log.entries(.warning).filter { $0.message == "refused a client" }.count == 10)
    }

    /// A plaintext client and a CURVE client that encrypts to another server key fail the handshake
    /// before ZAP is asked; the socket monitors log and count them like the handler's refusals, and
    /// an allowed client is still served.
    @Test func handshakesFailingBeforeZAPAreLoggedAndCounted() async throws {
        let keys = try Keys()
        let started = Date()   // before the hub: its first log window starts after this
        let hub = try SecureHub(keys)
        let refusals = { (endpoint: String) in
            hub.log.entries(.warning).filter { $0.message == "refused a client" && $0.metadata["zap.endpoint"] == endpoint }
        }
        // The greeting of a client without CURVE (ZMTP 3.0, NULL mechanism), sent whole on a connection
        // left open: the server reads the mechanism and refuses it.
        let raw = try plaintextGreeting(to: hub.hub.serviceEndpoint)
        defer { close(raw) }
        #expect(eventually(timeout: 30) { !refusals(hub.hub.serviceEndpoint).isEmpty })
        let mismatch = try #require(refusals(hub.hub.serviceEndpoint).first)
        #expect(mismatch.metadata["zap.reason"] == "handshake failed: mechanism mismatch (a client without CURVE?)")
        #expect(mismatch.metadata["zap.key"] == "none")
        // Its peer is learnt when the monitor sees the connection before it fails; in one process
        // a plaintext handshake fails within microseconds, so it may be unknown.
        #expect(["127.0.0.1", "?"].contains(mismatch.metadata["zap.peer"]))
        #expect(Int(mismatch.metadata["zap.refused_total"] ?? "") ?? 0 >= 1)

        // A real plaintext ZeroMQ client (on the publish port) sees the mismatch too, and may hang up
        // before the server reads its mechanism: either reason is logged (it does not retry).
        let plain = try ZMQSocket(ZMQContext.shared, .pub)
        try plain.connect(hub.hub.publishEndpoint)
        withExtendedLifetime(plain) { #expect(eventually(timeout: 30) { !refusals(hub.hub.publishEndpoint).isEmpty }) }
        let reason = refusals(hub.hub.publishEndpoint).first?.metadata["zap.reason"] ?? ""
        #expect(reason.contains("mechanism mismatch") || reason.contains("ended mid-handshake"), "\(reason)")

        // An allow-listed key that encrypts to another server's key, on the subscribe port: its HELLO
        // does not open. That handshake takes round trips, so its peer is known.
        let impostor = try CurveKeyPair.generate()
        let wrongServer = try ClientSecurity(serverKey: impostor.publicKey, keyPair: keys.allowed)
        let sub = try ZMQSocket(ZMQContext.shared, .sub)
        try wrongServer.apply(to: sub)
        try sub.subscribe("")
        try sub.connect(hub.hub.subscribeEndpoint)
        withExtendedLifetime(sub) {
            #expect(eventually(timeout: 60) { refusals(hub.hub.subscribeEndpoint).contains { $0.metadata["zap.peer"] == "127.0.0.1" } })
        }
        let wrongKey = try #require(refusals(hub.hub.subscribeEndpoint).first)
        #expect(wrongKey.metadata["zap.reason"] == "handshake failed: protocol error, a CURVE box did not open (wrong server key?)")
        #expect(hub.hub.refusedClients >= 3)
        // The same rate limit: 10 lines per 10 s window (the wrong-key client retries every 100 ms,
        // so a slow run spans several windows).
        let windows = Int(Date().timeIntervalSince(started) / 10) + 1
        #expect(hub.log.entries(.warning).filter { $0.message == "refused a client" }.count <= 10 * windows)

        // The right key is still served, and counted apart.
        let node = try Node(
            name: "allowed", server: hub.hub.serviceEndpoint, heartbeat: 0.2, timeout: 10, security: keys.client(keys.allowed))
        defer { node.close() }
        #expect(try node.client.describe().services.contains("/sim/describe"))
        #expect(hub.hub.admittedClients >= 1)
        #expect(hub.log.entries(.warning).allSatisfy { $0.metadata["zap.reason"] != "key not allowed" })
    }

    /// The pairing of monitor events: a failure takes the peer of the descriptor that closes right
    /// after it; ZAP's own refusals (status 400) are left to the handler.
    @Test func handshakeTrackerPairsFailuresWithPeers() {
        let at = "tcp://127.0.0.1:7700"
        func event(_ kind: UInt16, _ value: UInt32) -> ZMQMonitorEvent { ZMQMonitorEvent(event: kind, value: value, endpoint: at) }
        var looked: [Int32] = []
        let peer = { (fd: Int32, endpoint: String) -> String? in
            looked.append(fd)
            return endpoint == at && fd != 13 ? "10.0.0.\(fd)" : nil
        }
        var tracker = HandshakeTracker()
        let failures = tracker.consume(
            [
                event(ZMQMonitorEvent.accepted, 11), event(ZMQMonitorEvent.accepted, 12), event(ZMQMonitorEvent.accepted, 13),
                event(ZMQMonitorEvent.handshakeFailedProtocol, ZMQMonitorEvent.cryptographic), event(ZMQMonitorEvent.disconnected, 12),
                event(ZMQMonitorEvent.handshakeFailedAuth, 400), event(ZMQMonitorEvent.disconnected, 11),  // ZAP's: already logged
                event(ZMQMonitorEvent.handshakeFailedProtocol, ZMQMonitorEvent.mechanismMismatch), event(ZMQMonitorEvent.disconnected, 13),
                // Descriptor 14 accepted twice in one batch: the first connection closed and its number was reused.
                event(ZMQMonitorEvent.accepted, 14), event(ZMQMonitorEvent.handshakeFailedNoDetail, UInt32(ECONNRESET)),
                event(ZMQMonitorEvent.disconnected, 14), event(ZMQMonitorEvent.accepted, 14),
                event(ZMQMonitorEvent.handshakeFailedAuth, 500),
            ], peer: peer)
        #expect(failures.map(\.peer) == ["10.0.0.12", "?", "?"])
        #expect(failures.map(\.endpoint) == [at, at, at])
        #expect(failures[0].reason.hasSuffix("(wrong server key?)") && failures[1].reason.contains("mechanism mismatch"))
        #expect(failures[2].reason.contains("mid-handshake") && failures[2].reason.contains("reset"))
        #expect(looked == [11, 12, 13, 14])  // never the reused 14 before its second ACCEPTED
        #expect(tracker.peers == [14: "10.0.0.14"])
        // A failure waits for its DISCONNECTED across batches.
        let next = tracker.consume([event(ZMQMonitorEvent.disconnected, 14)], peer: peer)
        #expect(next == [HandshakeTracker.Failure(reason: "handshake failed: authentication status 500", peer: "10.0.0.14", endpoint: at)])
        #expect(tracker.peers.isEmpty)
    }

    @Test func exposedListenNeedsKeysOrInsecure() throws {
        let exposed = try HubConfiguration(listen: "tcp://0.0.0.0:*")
        #expect(throws: HubError.self) { _ = try Hub(configuration: exposed) }
        var insecure = exposed
        insecure.allowInsecure = true
        let hub = try Hub(configuration: insecure, context: ZMQContext())
        hub.shutdown()
        let loopback = [
            "tcp://127.0.0.1:7700", "tcp://127.3.4.5:*", "tcp://localhost:7700", "tcp://[::1]:7700", "ipc:///tmp/x", "inproc://x",
        ]
        for a in loopback { #expect(ListenAddress.isLoopback(a), "\(a)") }
        for a in [
            "tcp://0.0.0.0:7700", "tcp://*:7700", "tcp://10.0.0.2:7700", "tcp://eth0:7700", "tcp://[::]:7700", "tcp://127.0.0.1.evil:1",
        ] {
            #expect(!ListenAddress.isLoopback(a), "\(a)")
        }
        #expect(ListenAddress.isLoopbackHost("127.0.0.1") && ListenAddress.isLoopbackHost("::1"))
        #expect(!ListenAddress.isLoopbackHost("0.0.0.0"))
    }
}

/// Connects to `endpoint` (`tcp://127.0.0.1:PORT`) and sends, all at once, the 64-byte greeting of a
/// ZeroMQ 3.0 peer with the NULL mechanism: what a client without CURVE sends first. Returns the
/// descriptor (close it).
private func plaintextGreeting(to endpoint: String) throws -> Int32 {
    let port = try #require(endpoint.split(separator: ":").last.flatMap { UInt16($0) })
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    try #require(fd >= 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var greeting = [UInt8](repeating: 0, count: 64)  // signature, version 3.0, mechanism, as-server 0, filler
    greeting[0] = 0xFF
    greeting[9] = 0x7F
    greeting[10] = 3
    greeting.replaceSubrange(12..<16, with: Array("NULL".utf8))
    let sent = connected == 0 ? send(fd, greeting, greeting.count, 0) : -1
    if sent != greeting.count { close(fd) }
    try #require(sent == greeting.count, "cannot send a greeting to \(endpoint)")
    return fd
}

/// A server key pair, an allowed client key pair, and the allow-list.
private struct Keys {
    let server: CurveKeyPair
    let allowed: CurveKeyPair

    init() throws {
        server = try CurveKeyPair.generate()
        allowed = try CurveKeyPair.generate()
    }

    func client(_ pair: CurveKeyPair) throws -> ClientSecurity { try ClientSecurity(serverKey: server.publicKey, keyPair: pair) }
}

/// A CURVE hub on loopback in a context of its own (one ZAP handler per context), logging to memory.
private final class SecureHub {
    let hub: Hub
    let log = LogRecorder(label: "test.hub", level: .info)

    init(_ keys: Keys) throws {
        var config = try HubConfiguration(listen: "tcp://127.0.0.1:*")
        config.security = try ServerSecurity(keyPair: keys.server, allowedClients: [keys.allowed.publicKey])
        hub = try Hub(configuration: config, context: ZMQContext(), logger: log.logger)
        hub.start()
    }

    deinit { hub.shutdown() }
}
