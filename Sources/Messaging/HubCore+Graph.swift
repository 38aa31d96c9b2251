/// The graph: who announced what, merged with what the hub measured. Hub thread only.
extension HubCore {
    /// Records a node's announcement (or forgets it when it is leaving).
    func announce(_ info: Robosim_NodeInfo) throws(ServiceError) {
        guard !info.name.isEmpty, info.name.utf8.count <= 128 else { throw .invalidArgument("node name must be 1...128 bytes") }
        guard info.host.utf8.count <= 256 else { throw .invalidArgument("host must be at most 256 bytes") }
        let endpoints = info.publishers.count + info.subscriptions.count
        guard endpoints <= configuration.maxEndpointsPerNode else {
            throw .invalidArgument("node '\(Names.quoted(info.name))' announces \(endpoints) publishers and subscriptions; the limit is \(configuration.maxEndpointsPerNode)")
        }
        for e in info.publishers + info.subscriptions {
            do { try Names.validateTopic(e.topic) } catch { throw .invalidArgument("node '\(Names.quoted(info.name))': \(error)") }
        }
        let key = "\(info.name)#\(info.host)#\(info.pid)"
        if info.leaving {
            nodes[key] = nil
            return
        }
        guard nodes[key] != nil || nodes.count < configuration.maxNodes else {
            throw ServiceError(.resourceExhausted, "the graph holds \(configuration.maxNodes) nodes, its limit; node '\(Names.quoted(info.name))' is not recorded")
        }
        let heartbeat = info.heartbeatS > 0 ? min(info.heartbeatS, 60) : 1
        nodes[key] = AnnouncedNode(info: info, expires: Self.now() + heartbeat * configuration.missedHeartbeats)
    }

    /// The `/graph/list` answer.
    func graphList() -> Robosim_GraphListResponse {
        var out = Robosim_GraphListResponse()
        let live = nodes.values.map(\.info).sorted { $0.name < $1.name }
        out.nodes = live

        var byName: [String: Robosim_TopicStatistics] = [:]
        for entry in topics.entries {
            var t = Robosim_TopicStatistics()
            t.name = entry.name
            t.type = String(decoding: entry.typeBytes, as: UTF8.self)
            t.messages = entry.messages
            t.bytes = entry.bytes
            t.rateHz = entry.rateHz
            t.bandwidthBps = entry.bandwidth
            byName[entry.name] = t
        }
        for node in live {
            for p in node.publishers {
                byName[p.topic, default: Self.topic(p)].publishers.append(node.name)
            }
            for s in node.subscriptions {
                byName[s.topic, default: Self.topic(s)].subscribers.append(node.name)
                byName[s.topic]!.dropped += s.dropped
            }
        }
        for name in byName.keys {
            byName[name]!.subscriberConnections = UInt32(subscriptions.reduce(0) { $0 + (name.hasPrefix($1.key) ? $1.value : 0) })
        }
        out.topics = byName.values.sorted { $0.name < $1.name }

        let registered = hub?.services.withLock { $0 } ?? [:]
        out.services = registered.keys.sorted().map { name in
            let s = registered[name]!
            var info = Robosim_ServiceInfo()
            info.name = name
            info.type = s.type.name
            info.requestType = rosTypeName(of: s.type.request)
            info.responseType = rosTypeName(of: s.type.response)
            info.calls = serviceCounters[name]?.calls ?? 0
            info.errors = serviceCounters[name]?.errors ?? 0
            return info
        }
        out.droppedMalformed = droppedMalformed
        out.droppedOversize = droppedOversize + droppedTableFull
        out.serviceErrors = serviceErrors
        return out
    }

    private static func topic(_ e: Robosim_NodeInfo.Endpoint) -> Robosim_TopicStatistics {
        var t = Robosim_TopicStatistics()
        t.name = e.topic
        t.type = e.type
        return t
    }
}
