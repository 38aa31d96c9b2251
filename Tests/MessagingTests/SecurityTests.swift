import Foundation
import Logging
import Messaging
import SwiftProtobuf
import TestSupport
import Testing

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
        #expect(!refusals.isEmpty)
        #expect(
            refusals.allSatisfy { $0.metadata["zap.key"] == CurveKey.prefix(stranger.publicKey) && $0.metadata["zap.peer"] == "127.0.0.1" })
        #expect(refusals.count <= 10)  // rate-limited
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
