import Foundation
import Messaging
import PluginAPI
import SimEngine

/// Changes that `/sim/set_parameters` asked for, checked on the hub thread and applied together by
/// the step loop between two control steps. Plain values.
struct ParameterChanges: Sendable {
    var realTimeFactor: Double?
    var paused: Bool?
    /// New topic rates by topic (`joint_states`), Hz of sim time.
    var rates: [String: Double] = [:]
    /// New reset ranges by name (`pole_angle`).
    var resetRanges: [String: ClosedRange<Double>] = [:]

    /// The parameter names changed, for logs.
    var names: [String] {
        (realTimeFactor == nil ? [] : ["real_time_factor"]) + (paused == nil ? [] : ["paused"])
            + rates.keys.sorted().map { "rate.\($0)" } + resetRanges.keys.sorted().map { "reset.\($0)" }
    }
}

/// The parameters the step loop owns, as they are in force. Plain values.
struct LoopParameters: Sendable {
    var rates: TopicRates
    var resetRanges: ResetRanges
}

/// `/sim/get_parameters` and `/sim/set_parameters`: names, current values and checks.
extension SimServer {
    /// The topic rates and reset ranges in force (the manifest's before the step loop starts). Any thread.
    var loopParameters: LoopParameters {
        loopIfRunning()?.parameters
            ?? LoopParameters(rates: TopicRates(manifest: scene.manifest.topicRatesHz, cameras: cameraSpecs.map { ($0.name, $0.rateHz) }),
                              resetRanges: ResetRanges(world.configuration.resetRanges))
    }

    /// Every parameter with its current value. Any thread.
    func parameters() -> [Robosim_Parameter] {
        func p(_ name: String, _ value: String, _ description: String) -> Robosim_Parameter {
            var x = Robosim_Parameter()
            x.name = name
            x.value = value
            x.description_p = description
            return x
        }
        let loop = loopIfRunning()
        let live = loopParameters
        var out = [
            p("real_time_factor", "\(loop?.realTimeFactor ?? configuration.realTimeFactor)",
              "realtime mode: sim seconds per wall second (0: as fast as possible)"),
            p("paused", "\(loop?.paused.load(ordering: .relaxed) ?? false)", "realtime mode: physics stopped"),
            p("mode", configuration.mode.rawValue, "realtime or lockstep (read-only)"),
            p("env_count", "\(envCount)", "read-only"),
            p("threads", "\(world.threads)", "worker threads (read-only)"),
            p("physics_dt", "\(world.configuration.physicsDt)", "seconds (read-only)"),
            p("decimation", "\(world.configuration.decimation)", "physics steps per control step (read-only)"),
            p("episode_length_s", "\(world.configuration.episodeLength)", "read-only"),
            p("seed", "\(configuration.seed)", "base seed (read-only)"),
        ]
        for name in live.rates.names {
            let topic = name == "robot_pose" ? "robot/pose" : name.hasPrefix("camera.") ? "camera/\(name.dropFirst(7))/*" : name
            out.append(p("rate.\(name)", "\(live.rates[name])",
                         "/env_i/\(topic) rate in Hz of sim time (\(TopicRates.minHz) <= rate <= \(Int(TopicRates.maxHz)); at most one message per control step)"))
        }
        for (name, r) in live.resetRanges.ranges.sorted(by: { $0.key < $1.key }) {
            out.append(p("reset.\(name)", Self.format(r), "reset randomization range [low, high]; applies from the next episode start"))
        }
        return out
    }

    /// Checks every parameter of a `/sim/set_parameters` request; throws on the first bad one, so a
    /// request changes all of its parameters or none. Hub thread (reads only immutable facts).
    func parameterChanges(_ parameters: [Robosim_Parameter]) throws(ServiceError) -> ParameterChanges {
        guard parameters.count <= WireLimits.maxParameters else {
            throw .invalidArgument("\(parameters.count) parameters; the limit is \(WireLimits.maxParameters) per call")
        }
        var changes = ParameterChanges()
        for p in parameters {
            guard p.value.utf8.count <= WireLimits.parameterValueBytes, p.name.utf8.count <= WireLimits.parameterValueBytes else {
                throw .invalidArgument("parameter '\(Names.quoted(p.name))': names and values are at most \(WireLimits.parameterValueBytes) bytes")
            }
            let value = p.value.trimmingCharacters(in: .whitespaces)
            switch p.name {
            case "real_time_factor":
                guard let v = Double(value), v == 0 || WireLimits.realTimeFactor.contains(v) else {
                    throw .invalidArgument("real_time_factor must be 0 (as fast as possible) or in [\(WireLimits.realTimeFactor.lowerBound), \(WireLimits.realTimeFactor.upperBound)], got '\(Names.quoted(p.value))'")
                }
                changes.realTimeFactor = v
            case "paused":
                guard let v = Bool(value) else { throw .invalidArgument("paused must be true or false, got '\(Names.quoted(p.value))'") }
                changes.paused = v
            case let name where name.hasPrefix("rate.") && loopParameters.rates.index(String(name.dropFirst(5))) != nil:
                guard let v = Double(value), TopicRates.isValid(v) else {
                    throw .invalidArgument("\(name) must be a rate in Hz, at least \(TopicRates.minHz) and at most \(Int(TopicRates.maxHz)), got '\(Names.quoted(p.value))'")
                }
                changes.rates[String(name.dropFirst(5))] = v
            case let name where name.hasPrefix("reset.") && world.configuration.resetRanges[String(name.dropFirst(6))] != nil:
                guard let r = Self.parseRange(value), abs(r.lowerBound) <= WireLimits.resetMagnitude, abs(r.upperBound) <= WireLimits.resetMagnitude else {
                    throw .invalidArgument("\(name) must be [low, high]: finite numbers, low <= high, both within ±\(WireLimits.resetMagnitude), got '\(Names.quoted(p.value))'")
                }
                changes.resetRanges[String(name.dropFirst(6))] = r
            default:
                if self.parameters().contains(where: { $0.name == p.name }) { throw .invalidArgument("parameter '\(p.name)' is read-only") }
                throw .notFound("no parameter '\(Names.quoted(p.name))'")
            }
        }
        return changes
    }

    /// `[low, high]` (JSON-like: two numbers in brackets, comma-separated) as a range; nil unless
    /// both are finite and low <= high.
    static func parseRange(_ text: String) -> ClosedRange<Double>? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("["), t.hasSuffix("]"), t.count >= 2 else { return nil }
        let parts = t.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2,
              let low = Double(parts[0].trimmingCharacters(in: .whitespaces)),
              let high = Double(parts[1].trimmingCharacters(in: .whitespaces)),
              low.isFinite, high.isFinite, low <= high
        else { return nil }
        return low...high
    }

    /// A range as `[low, high]`, the form `parseRange` reads.
    static func format(_ r: ClosedRange<Double>) -> String { "[\(r.lowerBound), \(r.upperBound)]" }
}
