import CZeroMQ
import Foundation
import Logging

/// The hub thread's state: sockets, topic statistics, the graph. Touched only by the hub thread
/// (and by `Hub.init` before the thread starts).
final class HubCore: @unchecked Sendable {
    let router: ZMQSocket
    let xpub: ZMQSocket
    let xsub: ZMQSocket
    let configuration: HubConfiguration
    /// The endpoints bound from the configuration (ports resolved).
    let bound: (service: String, subscribe: String, publish: String)
    weak var hub: Hub?

    var topics = TopicTable()
    /// Live ZeroMQ subscriptions by prefix (reference counted, from XPUB_VERBOSER).
    var subscriptions: [String: Int] = [:]
    var nodes: [String: AnnouncedNode] = [:]
    var serviceCounters: [String: (calls: UInt64, errors: UInt64)] = [:]
    var droppedMalformed: UInt64 = 0
    var droppedOversize: UInt64 = 0
    /// New subscription prefixes dropped because their table was full.
    var droppedTableFull: UInt64 = 0
    /// Messages forwarded without statistics because the topic table was full.
    var untrackedMessages: UInt64 = 0
    var serviceErrors: UInt64 = 0

    struct AnnouncedNode {
        var info: Robosim_NodeInfo
        var expires: Double
    }

    /// Messages forwarded per burst before the loop looks at the other sockets.
    static let burst = 1024

    /// Binds the sockets; with `zap`, each is watched for handshakes that fail before ZAP.
    init(configuration: HubConfiguration, context: ZMQContext, local: HubConfiguration?, zap: ZAPHandler?) throws(ZMQError) {
        self.configuration = configuration
        let hardLimit = Int64(configuration.maxFrameBytes) * 4
        router = try ZMQSocket(context, .router)
        // CURVE options before any bind: libzmq copies a socket's options into each listener.
        // (`inproc://` connections have no handshake: only this process reaches them.)
        try configuration.security?.apply(to: router)
        try zap?.watch(router)
        try router.setMaxMessageSize(hardLimit)
        try router.setHighWaterMarks(send: 10_000, receive: 10_000)
        try router.bind(configuration.serviceEndpoint)
        xpub = try ZMQSocket(context, .xpub)
        try configuration.security?.apply(to: xpub)
        try zap?.watch(xpub)
        try xpub.setOption(ZMQ_XPUB_VERBOSER, Int32(1))
        try xpub.setHighWaterMarks(send: configuration.highWaterMark, receive: configuration.highWaterMark)
        try xpub.bind(configuration.subscribeEndpoint)
        xsub = try ZMQSocket(context, .xsub)
        try configuration.security?.apply(to: xsub)
        try zap?.watch(xsub)
        try xsub.setMaxMessageSize(hardLimit)
        try xsub.setHighWaterMarks(send: configuration.highWaterMark, receive: configuration.highWaterMark)
        try xsub.bind(configuration.publishEndpoint)
        bound = (router.lastEndpoint, xpub.lastEndpoint, xsub.lastEndpoint)
        if let local {
            try router.bind(local.serviceEndpoint)
            try xpub.bind(local.subscribeEndpoint)
            try xsub.bind(local.publishEndpoint)
        }
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    func run() {
        // The ZAP handler stops reading the socket monitors after this thread ends (Hub.shutdown):
        // stop them first, as libzmq's I/O thread would wait on events nobody reads. (So a hub
        // started again after a shutdown no longer logs handshakes that fail before ZAP; a hub
        // never started keeps its monitors until its sockets close, queueing up to
        // `HandshakeMonitor.queueLimit` events.)
        defer { for socket in [router, xpub, xsub] { socket.stopMonitor() } }
        guard let hub else { return }
        var poller = ZMQPoller()
        let routerIndex = poller.add(router)
        let xsubIndex = poller.add(xsub)
        let xpubIndex = poller.add(xpub)
        let wakeIndex = poller.add(fd: hub.wakeup.readFD)
        var lastTick = Self.now()
        while hub.running.load(ordering: .acquiring) {
            do {
                try poller.poll(timeoutMs: 100)
            } catch {
                hub.logger.error("hub poll failed", metadata: ["hub.error": "\(error)"])
                break
            }
            if poller.isReadable(wakeIndex) { hub.wakeup.drain() }
            if poller.isReadable(xsubIndex) { forwardTopics() }
            if poller.isReadable(xpubIndex) { forwardSubscriptions() }
            if poller.isReadable(routerIndex) { handleCalls(hub) }
            flushReplies(hub)
            let now = Self.now()
            if now - lastTick >= 1 {
                topics.updateRates(dt: now - lastTick)
                nodes = nodes.filter { $0.value.expires > now }
                lastTick = now
            }
        }
        flushReplies(hub)
    }

    // MARK: Topics

    /// Forwards up to `burst` topic messages from XSUB to XPUB, dropping (and counting) malformed ones.
    func forwardTopics() {
        let topic = ZMQMessage(), type = ZMQMessage(), payload = ZMQMessage(), extra = ZMQMessage()
        let limit = configuration.maxFrameBytes
        for _ in 0..<Self.burst {
            do {
                guard try topic.receive(from: xsub, flags: .dontWait) else { return }
                var frames = 1
                var oversize = topic.count > limit
                if topic.more {
                    _ = try type.receive(from: xsub)
                    frames += 1
                    oversize = oversize || type.count > limit
                    if type.more {
                        _ = try payload.receive(from: xsub)
                        frames += 1
                        oversize = oversize || payload.count > limit
                        var more = payload.more
                        while more {
                            _ = try extra.receive(from: xsub)
                            frames += 1
                            more = extra.more
                        }
                    }
                }
                if frames != 3 { droppedMalformed += 1; continue }
                if oversize { droppedOversize += 1; continue }
                switch entryIndex(topic: topic, type: type) {
                case .invalid: droppedMalformed += 1; continue
                case .tracked(let index): topics.count(index, bytes: payload.count)
                case .untracked: untrackedMessages += 1   // forwarded; the statistics table is full
                }
                _ = try topic.send(to: xpub, flags: [.sendMore, .dontWait])
                _ = try type.send(to: xpub, flags: [.sendMore, .dontWait])
                _ = try payload.send(to: xpub, flags: .dontWait)
            } catch {
                if !error.terminated { hub?.logger.warning("hub forward failed", metadata: ["hub.error": "\(error)"]) }
                return
            }
        }
    }

    /// The statistics entry of a message's topic, validating names the first time they are seen
    /// and the type frame whenever it differs from the one recorded. A valid message on a new topic
    /// when the table is full is still forwarded, without statistics.
    private func entryIndex(topic: ZMQMessage, type: ZMQMessage) -> Entry {
        let found = topic.withBytes { topics.index(of: $0) }
        if let found {
            let sameType = type.withBytes { topics[found].typeBytes.elementsEqual($0) }
            if sameType { return .tracked(found) }
            guard type.withBytes({ Names.isValidType(bytes: $0) }) else { return .invalid }
            return .tracked(found)
        }
        let valid = topic.withBytes { Names.isValidTopic(bytes: $0) } && type.withBytes { Names.isValidType(bytes: $0) }
        guard valid else { return .invalid }
        guard topics.count < configuration.maxTopics else { return .untracked }
        return .tracked(topic.withBytes { name in type.withBytes { topics.insert(name: name, type: $0) } })
    }

    private enum Entry {
        case tracked(Int)
        case untracked
        case invalid
    }

    /// Passes subscriptions from XPUB (subscribers) up to XSUB (publishers) and counts them.
    func forwardSubscriptions() {
        for _ in 0..<Self.burst {
            do {
                guard let frames = try xpub.receiveMultipart(flags: .dontWait) else { return }
                guard frames.count == 1, let first = frames[0].first, first == 0 || first == 1 else {
                    droppedMalformed += 1
                    continue
                }
                let prefix = String(decoding: frames[0].dropFirst(), as: UTF8.self)
                if first == 1, subscriptions[prefix] == nil,
                   subscriptions.count >= configuration.maxSubscriptionPrefixes || frames[0].count > Names.maxNameLength + 1 {
                    droppedTableFull += 1   // not forwarded: that subscriber gets nothing on it
                    continue
                }
                if first == 1 {
                    subscriptions[prefix, default: 0] += 1
                } else if let n = subscriptions[prefix] {
                    subscriptions[prefix] = n > 1 ? n - 1 : nil
                } else {
                    continue   // the unsubscribe of a subscription that was never forwarded
                }
                let prefixes = Array(subscriptions.keys)
                hub?.subscriptionPrefixes.withLock { $0 = prefixes }
                hub?.subscriptionGenerationCounter.add(1, ordering: .releasing)
                try xsub.send(frames[0], flags: .dontWait)
            } catch {
                if !error.terminated { hub?.logger.warning("hub subscription forward failed", metadata: ["hub.error": "\(error)"]) }
                return
            }
        }
    }

    // MARK: Services

    /// Reads up to `burst` calls from the ROUTER and dispatches each; every call gets one reply.
    func handleCalls(_ hub: Hub) {
        // A shutdown does not wait for the rest of a burst.
        for _ in 0..<Self.burst where hub.running.load(ordering: .relaxed) {
            let frames: [[UInt8]]
            do {
                guard let f = try router.receiveMultipart(flags: .dontWait) else { return }
                frames = f
            } catch {
                if !error.terminated { hub.logger.warning("hub receive failed", metadata: ["hub.error": "\(error)"]) }
                return
            }
            dispatch(frames, hub)
        }
    }

    private func dispatch(_ frames: [[UInt8]], _ hub: Hub) {
        // [identity, "", name, payload, (id)] from REQ or DEALER with delimiter;
        // [identity, name, payload, (id)] from a DEALER without one is answered in kind.
        let hasDelimiter = frames.count >= 2 && frames[1].isEmpty
        let envelope = hasDelimiter ? [frames[0], []] : [frames[0]]
        let body = frames.dropFirst(envelope.count)
        let requestID = body.count == 3 ? body.last : nil
        func reject(_ error: ServiceError, service: String = "?") {
            ServiceResponder(service: service, envelope: envelope, requestID: requestID, sink: hub.sink).fail(error)
        }
        guard body.count == 2 || body.count == 3 else {
            return reject(.malformed("expected frames [service, payload] or [service, payload, request id] after the envelope, got \(body.count)"))
        }
        if let big = body.first(where: { $0.count > configuration.maxFrameBytes }) {
            return reject(.tooLarge("a frame of \(big.count) bytes exceeds the limit of \(configuration.maxFrameBytes)"))
        }
        let nameBytes = body[body.startIndex]
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard let service = hub.services.withLock({ $0[name] }) else {
            let shown = name.count > 80 ? String(name.prefix(80)) + "..." : name
            return reject(.notFound("unknown service '\(shown.filter { $0.isASCII && !$0.isNewline })'"), service: name)
        }
        serviceCounters[name, default: (0, 0)].calls += 1
        let responder = ServiceResponder(service: name, envelope: envelope, requestID: requestID, sink: hub.sink)
        service.handler(ServiceRequest(service: name, payload: body[body.startIndex + 1]), responder)
    }

    /// Sends every queued reply on the ROUTER (never blocks: ROUTER drops for unknown or full peers).
    func flushReplies(_ hub: Hub) {
        for reply in hub.sink.takeAll() {
            if reply.failed {
                serviceErrors += 1
                if serviceCounters[reply.service] != nil { serviceCounters[reply.service]!.errors += 1 }
            }
            do {
                try router.send(frames: reply.frames, flags: .dontWait)
            } catch {
                if !error.terminated { hub.logger.warning("hub reply failed", metadata: ["hub.error": "\(error)"]) }
            }
        }
    }
}
