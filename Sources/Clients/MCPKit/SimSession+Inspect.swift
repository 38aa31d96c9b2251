import ClientKit
import Foundation
import MCP
import Messaging
import SwiftProtobuf

/// The read-only tools: describe, graph, one topic message, a camera frame, parameters. Each runs on
/// a thread of its own (`offload`) and blocks on the server.
extension SimSession {
    /// Most characters of JSON `read_topic` returns.
    static let maxTopicJSON = 100_000
    /// Most topics `list_graph` lists.
    static let maxGraphTopics = 500

    func describeServer() throws(ToolFailure) -> [Tool.Content] {
        let d = try link.describe()
        let task = d.task
        let actions: [[String: Any]] = d.actionNames.indices.map { k in
            var a: [String: Any] = ["name": d.actionNames[k], "unit": k < task.actions.count ? task.actions[k].unit : ""]
            if k < d.actionLow.count { a["low"] = d.actionLow[k] }
            if k < d.actionHigh.count { a["high"] = d.actionHigh[k] }
            return a
        }
        // The per-env topics once, with /env_i for the index; the others as they are.
        var perEnv: [[String: Any]] = [], global: [[String: Any]] = []
        for t in d.topics {
            if t.name.hasPrefix("/env_0/") {
                perEnv.append(["name": "/env_i/" + t.name.dropFirst("/env_0/".count), "type": t.type, "rate_hz": t.rateHz])
            } else if !t.name.hasPrefix("/env_") {
                global.append(["name": t.name, "type": t.type, "rate_hz": t.rateHz])
            }
        }
        var out: [String: Any] = [
            "server": link.server,
            "scene": d.scene,
            "version": d.version,
            "mode": d.mode,
            "env_count": Int(d.envCount),
            "sim_time_s": d.simTime,
            "control_dt_s": d.physicsDt * Double(max(1, d.decimation)),
            "task": [
                "name": task.name,
                "robot": task.robot,
                "success": task.success,
                "observations": d.observationNames.enumerated().map { k, name in
                    ["name": name, "unit": k < task.observations.count ? task.observations[k].unit : ""]
                },
                "actions": actions,
                "action_choices": Int(task.actionChoices),
                "reward_terms": task.rewardTerms.map { ["name": $0.name, "weight": $0.weight] },
            ] as [String: Any],
            "cameras": d.cameras.map {
                [
                    "name": $0.name, "width": Int($0.width), "height": Int($0.height), "rate_hz": $0.rateHz, "rgb": $0.rgb,
                    "depth": $0.depth, "observation": $0.observation,
                ] as [String: Any]
            },
            "render_backend": d.renderBackend,
            "per_env_topics": perEnv,
            "topics": global,
            "services": d.services,
            "commands": d.commands.filter { $0.accepted > 0 || $0.rejected > 0 }.map {
                ["topic": $0.topic, "accepted": Int($0.accepted), "rejected": Int($0.rejected), "last_rejection": $0.lastRejection]
                    as [String: Any]
            },
        ]
        out["lease"] = lease.map { ["env_ids": $0.envs] as Any } ?? NSNull()
        return Self.json(out)
    }

    func listGraph(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        let prefix = try args.string("prefix", maxBytes: 256) ?? ""
        let g: Robosim_GraphListResponse = try link.call("/graph/list", Robosim_GraphListRequest())
        let topics = g.topics.filter { $0.name.hasPrefix(prefix) }
        let out: [String: Any] = [
            "nodes": g.nodes.map {
                ["name": $0.name, "pid": Int($0.pid), "publishers": $0.publishers.count, "subscriptions": $0.subscriptions.count]
                    as [String: Any]
            },
            "topics": topics.prefix(Self.maxGraphTopics).map {
                [
                    "name": $0.name, "type": $0.type, "publishers": $0.publishers, "subscribers": $0.subscribers, "rate_hz": $0.rateHz,
                    "messages": Int($0.messages), "dropped": Int($0.dropped),
                ] as [String: Any]
            },
            "topics_left_out": max(0, topics.count - Self.maxGraphTopics),
            "services": g.services.map {
                ["name": $0.name, "type": $0.type, "calls": Int($0.calls), "errors": Int($0.errors)] as [String: Any]
            },
            "hub_dropped_malformed": Int(g.droppedMalformed),
            "hub_dropped_oversize": Int(g.droppedOversize),
        ]
        return Self.json(out)
    }

    func readTopic(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        guard let topic = try args.string("topic", maxBytes: Names.maxNameLength) else { throw ToolFailure("missing argument 'topic'") }
        do { try Names.validateTopic(topic) } catch { throw ToolFailure("\(error)") }
        let timeout = try args.double("timeout_s", in: 0.1...30, default: 5)
        let node = try link.node()
        let subscription: RawSubscription
        do { subscription = try node.subscribeRaw(topic, qos: .sensorData(depth: 1)) } catch { throw ToolFailure("\(error)") }
        guard let raw = Self.first(of: subscription, within: timeout) else {
            let mode = (try? link.describe().mode) ?? ""
            throw ToolFailure(
                "no message on \(topic) within \(timeout) s"
                    + (mode == "lockstep" ? " (a lockstep server publishes only when envs are stepped or reset)" : ""))
        }
        let message: any SwiftProtobuf.Message
        do { message = try MessageJSON.decode(typeName: raw.typeName, payload: raw.payload) } catch {
            throw ToolFailure("\(topic): \(error)")
        }
        var note: String?
        var shown = message
        if var image = message as? SensorMsgs_Image {
            note = "image data (\(image.data.count) bytes) left out: use get_camera_frame"
            image.data = Data()
            shown = image
        }
        var text = MessageJSON.pretty(shown)
        if text.count > Self.maxTopicJSON {
            note = "the message's JSON is \(text.count) characters; only the first \(Self.maxTopicJSON) are shown"
            text = String(text.prefix(Self.maxTopicJSON))
        }
        var header = "\(topic) (\(raw.typeName))"
        if let note { header += "; \(note)" }
        return [.text(text: header + "\n" + text, annotations: nil, _meta: nil)]
    }

    /// The first message of `subscription` within `seconds`, blocking the calling thread.
    static func first(of subscription: RawSubscription, within seconds: Double) -> RawMessage? {
        let box = ResultBox<RawMessage?>()
        let task = Task {
            var iterator = subscription.makeAsyncIterator()
            box.set(await iterator.next())
        }
        let got = box.wait(seconds: seconds)
        task.cancel()
        return got ?? nil
    }

    func cameraFrame(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        let d = try link.describe()
        let env = try checkedEnv(try args.int("env", in: 0...SimTools.maxEnvIndex, default: 0), d)
        guard !d.cameras.isEmpty else { throw ToolFailure("the scene \(d.scene) has no camera") }
        let name = try args.string("camera", maxBytes: 128) ?? d.cameras[0].name
        guard let camera = d.cameras.first(where: { $0.name == name }) else {
            throw ToolFailure("no camera '\(Names.quoted(name))' (cameras: \(d.cameras.map(\.name).joined(separator: ", ")))")
        }
        // The env's present state, rendered; else the camera topic's latest image.
        var image: SensorMsgs_Image?
        var source = "/sim/render"
        var problems: [String] = []
        if d.renderBackend != "none" {
            var r = Robosim_RenderRequest()
            r.envIds = [UInt32(env)]
            r.cameras = [camera.name]
            do throws(ToolFailure) {
                r.lease = try leaseID(for: [env])
                let reply: Robosim_RenderResponse = try link.call("/sim/render", r, timeout: max(link.timeout, 10))
                image = reply.images.first { $0.encoding == "rgb8" }
                if image == nil { problems.append("/sim/render gave no rgb8 image") }
            } catch {
                problems.append(error.description)
            }
        } else {
            problems.append("the server renders nothing (render backend: none)")
        }
        if image == nil {
            let topic = "\(Names.env(env))/camera/\(camera.name)/image_raw"
            source = topic
            let node = try link.node()
            do {
                let subscription = try node.subscribeRaw(topic, typeName: "sensor_msgs/msg/Image", qos: .sensorData(depth: 1))
                let wait = camera.rateHz > 0 ? min(5, max(1, 3 / camera.rateHz)) : 2
                if let raw = Self.first(of: subscription, within: wait) {
                    image = try? SensorMsgs_Image(serializedBytes: raw.payload)
                } else {
                    problems.append("no image on \(topic) within \(wait) s")
                }
            } catch {
                problems.append("\(error)")
            }
        }
        guard let image else { throw ToolFailure("no frame of camera \(camera.name) in env \(env): " + problems.joined(separator: "; ")) }
        let png = try Self.png(image)
        let info: [String: Any] = [
            "env": env, "camera": camera.name, "width": Int(image.width), "height": Int(image.height),
            "encoding": image.encoding, "stamp_s": image.header.stamp.seconds, "source": source, "png_bytes": png.count,
        ]
        return [.image(data: Data(png).base64EncodedString(), mimeType: "image/png", annotations: nil, _meta: nil)] + Self.json(info)
    }

    /// A `sensor_msgs/Image` (rgb8, rgba8, mono8) as PNG bytes.
    static func png(_ image: SensorMsgs_Image) throws(ToolFailure) -> [UInt8] {
        let layout: PNGEncoder.Layout
        switch image.encoding {
        case "rgb8": layout = .rgb
        case "rgba8": layout = .rgba
        case "mono8": layout = .gray
        default: throw ToolFailure("cannot encode a '\(Names.quoted(image.encoding))' image as PNG (rgb8, rgba8, mono8 only)")
        }
        let width = Int(image.width), height = Int(image.height)
        let stride = image.step > 0 ? Int(image.step) : width * layout.channels
        do { return try PNGEncoder.encode(width: width, height: height, layout: layout, rowStride: stride, pixels: image.data) } catch {
            throw ToolFailure("the image cannot be encoded: \(error)")
        }
    }

    func getParameters(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        var r = Robosim_GetParametersRequest()
        r.names = try args.strings("names", count: 0...SimTools.maxParameters) ?? []
        let reply: Robosim_GetParametersResponse = try link.call("/sim/get_parameters", r)
        return Self.json(["parameters": reply.parameters.map { ["name": $0.name, "value": $0.value, "description": $0.description_p] }])
    }
}

/// A value handed from a task to a waiting thread.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Invariant: `value` is read and written only with `condition` locked.
    private let condition = NSCondition()
    private var value: T?

    func set(_ v: T) {
        condition.lock()
        value = v
        condition.broadcast()
        condition.unlock()
    }

    /// The value, waiting up to `seconds` for it (nil on timeout).
    func wait(seconds: Double) -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while value == nil {
            if !condition.wait(until: deadline) { break }
        }
        return value
    }
}
