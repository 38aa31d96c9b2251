import ArgumentParser
import ClientKit
import Foundation
import Logging
import Messaging
import StrategistKit
import Synchronization
import LLMKit

@main
struct SimStrategist: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-strategist",
        abstract: "Plan and carry out T-bar pushes on a RoboSim server's envs (offline planner, Amazon Bedrock or an OpenAI-compatible LLM).",
        discussion: """
            Subscribes to each env's /env_i/objects, /env_i/robot/pose and /env_i/episode, asks the backend for a
            strategy (which side to push, contact point, direction, waypoints, rationale), validates it against the
            schema and the workspace (falling back to the offline planner on any failure), publishes it on
            /env_i/strategy and carries it out through /env_i/ee_target, re-planning after every push.

            Examples:
              sim-server Scenes/tbar_push --envs 8 --rtf 2 &
              sim-strategist --episodes 50 --seed 7                  # offline planner, all envs, then a summary
              sim-strategist --envs 0,1 --log-dir runs/strategist    # prompts, replies and plans per episode
              sim-strategist --backend openai --endpoint http://127.0.0.1:8000/v1 --model qwen2.5-7b-instruct
              AWS_PROFILE=dev sim-strategist --backend bedrock --region us-east-1 \\
                  --model-id anthropic.claude-3-5-haiku-20241022-v1:0
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Envs to drive: 'all' or a comma-separated list of indices.")
    var envs = "all"

    @OptionGroup var llm: LLMOptions

    @Option(help: "Stop after this many episodes ended (0: run until interrupted), then print a summary.")
    var episodes = 0

    @Option(help: "Reset the driven envs with this seed first, so episodes are (seed, env, episode)-seeded from the start.")
    var seed: UInt64?

    @Option(name: .customLong("log-dir"), help: "Write each episode's prompts, replies and plans to DIR/env_<i>_episode_<k>.jsonl.")
    var logDir: String?

    @Option(help: "Control ticks per second of sim time (paced on /clock, whatever the server's --rtf).")
    var rate = 50.0

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard episodes >= 0 else { throw ValidationError("--episodes must be >= 0") }
        guard rate > 0, rate <= 1000 else { throw ValidationError("--rate must be in (0, 1000]") }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "robosim.strategist")
        let chat: (any ChatBackend)?
        do { chat = try llm.makeBackend(logger: logger) } catch {
            throw fail("\(error)")
        }
        let client: ServiceClient
        let described: Robosim_DescribeResponse
        do {
            client = try connection.client()
            described = try client.describe()
        } catch {
            throw fail("cannot reach the server at \(connection.address): \(error)")
        }
        let ids: [Int]
        do { ids = try envIDs(count: Int(described.envCount)) } catch { throw fail("\(error)") }
        guard ids.allSatisfy({ i in described.topics.contains { $0.name == "/env_\(i)/ee_target" } }),
              ids.allSatisfy({ i in described.topics.contains { $0.name == "/env_\(i)/objects" } })
        else {
            throw fail("scene '\(described.scene)' has no arm with /env_i/ee_target and task objects: run sim-server on Scenes/tbar_push")
        }
        guard described.mode == "realtime" else {
            throw fail("the server runs in \(described.mode) mode; the strategist drives /env_i/ee_target, which needs realtime mode")
        }
        let node: Node
        do { node = try connection.node(prefix: "sim_strategist") } catch { throw fail("\(error)") }
        defer { node.close() }
        // With --seed: seeded resets, at start and after a server restart (at the episodes in flight).
        let reseed: (@Sendable ([Int], [UInt64]) throws -> Void)? = seed.map { seed in
            { @Sendable ids, episodes in
                let _: Robosim_ResetResponse = try client.call("/sim/reset", Robosim_ResetRequest.with {
                    $0.envIds = ids.map(UInt32.init)
                    $0.seed = seed
                    $0.episodes = episodes
                })
            }
        }
        // The server's instance id tells a restarted server from the one before, whatever its clock
        // says. Read on a client of its own, so that a read waiting on a server that is down does not
        // hold up a reseed (a client's calls are serialized).
        let probe: ServiceClient
        do { probe = try connection.client() } catch { throw fail("\(error)") }
        let identify: @Sendable () throws -> String = { try probe.describe(timeout: 1).instanceID }
        if described.instanceID.isEmpty {
            logger.notice("the server sends no instance id (an older server): a restart is known only by its clock going back")
        }
        let run = try StrategistRun(node: node, ids: ids, source: StrategySource(backend: chat, planner: OfflinePlanner(), logger: logger),
                                    logDir: logDir, logger: logger, reseed: reseed, identify: identify, instance: described.instanceID)
        if let reseed {
            do { try reseed(ids, []) } catch { throw fail("/sim/reset failed: \(error)") }
        }
        logger.info("sim-strategist running", metadata: [
            "strategist.backend": "\(run.source.name)", "strategist.envs": "\(ids.count)", "strategist.scene": "\(described.scene)",
        ])
        let summary = await run.loop(episodes: episodes, period: 1 / rate)
        print(summary.report(episodes: episodes))
        if summary.ended == 0 && episodes > 0 { throw fail("no episode ended") }
    }

    func envIDs(count: Int) throws -> [Int] {
        if envs == "all" { return Array(0..<count) }
        var out: [Int] = []
        for part in envs.split(separator: ",") {
            guard let i = Int(part.trimmingCharacters(in: .whitespaces)), i >= 0, i < count else {
                throw ValidationError("--envs: '\(part)' is not an env index below \(count)")
            }
            if !out.contains(i) { out.append(i) }
        }
        guard !out.isEmpty else { throw ValidationError("--envs names no env") }
        return out
    }

    func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("sim-strategist: \(message)\n".utf8))
        return ExitCode.failure
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
