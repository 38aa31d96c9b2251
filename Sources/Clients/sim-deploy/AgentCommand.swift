import ArgumentParser
import ClientKit
import DeployKit
import Foundation
import Logging
import Messaging

struct Agent: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run robots' agents: take job executions from the deployer, verify, install, health-check in the robot's env, commit or roll back.",
        discussion: """
            Each robot is an env of a sim-server (--env I, or any free env). Its state is under STATE/<robot>/: state.json
            (the active version, the one before, the execution in hand), models/<version>.safetensors and active.safetensors.
            sim-deploy agent --robot-id r0 --env 0 --group fleet --state agents --public-key keys/fleet.pub --server tcp://127.0.0.1:7700
            """)

    @Option(name: .customLong("robot-id"), help: "A robot this process serves. Repeatable.")
    var robotIDs: [String]

    @Option(name: .customLong("env"), help: "The sim-server env of each robot, in --robot-id order (none: any free env).")
    var envs: [Int] = []

    @Option(help: "A group the robots belong to. Repeatable.")
    var group: [String] = []

    @Option(help: "The agents' state folder.")
    var state: String

    @Option(name: .customLong("public-key"), help: "The fleet's public key (sim-deploy keygen): releases not signed by it are REJECTED.")
    var publicKey: String

    @Option(help: "The deployer's address.")
    var deployer = "tcp://127.0.0.1:7900"

    @Option(help: "The sim-server the robots' envs are on (default: SIM_SERVER, else tcp://127.0.0.1:7700).")
    var server = Node.defaultServer

    @Option(help: "Seconds between polls of the deployer when no notification comes (0.1-60).")
    var poll = 2.0

    /// `--reconnect-timeout`: how long a health check waits for a restarted sim-server.
    @OptionGroup var reconnect: ReconnectOptions

    @Option(name: .customLong("server-key"), help: "The sim-server's public key (a .pub file or the Z85 text): CURVE to it. Default: ROBOSIM_SERVER_KEY.")
    var serverKey: String?

    @Option(name: .customLong("deployer-key"), help: "The deployer's public key (a .pub file or the Z85 text): CURVE to it.")
    var deployerKey: String?

    @Option(help: "This agent's key pair (a .secret file), allowed by the servers named above. Default: ROBOSIM_KEY.")
    var key: String?

    func run() throws {
        guard !robotIDs.isEmpty, robotIDs.count <= 1024 else { throw ValidationError("give 1-1024 --robot-id") }
        guard Set(robotIDs).count == robotIDs.count else { throw ValidationError("a --robot-id is given twice") }
        guard envs.isEmpty || envs.count == robotIDs.count else { throw ValidationError("give one --env per --robot-id, or none") }
        guard envs.allSatisfy({ (0..<65536).contains($0) }) else { throw ValidationError("--env is an env index, 0 or more") }
        guard poll >= 0.1, poll <= 60 else { throw ValidationError("--poll must be 0.1-60 s") }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let serverSecurity: ClientSecurity?, deployerSecurity: ClientSecurity?
        do {
            serverSecurity = try ClientSecurity.resolve(serverKey: serverKey, key: self.key)
            // The deployer's key is its own flag (no environment default): the agent's own key is shared.
            deployerSecurity = try deployerKey.map { k throws(SecurityError) in
                try ClientSecurity.resolve(serverKey: k, key: self.key)!
            }
        } catch {
            throw ValidationError(error.description)
        }
        let key = try VerifyingKey.read(URL(fileURLWithPath: publicKey))
        let agents = try robotIDs.enumerated().map { k, id in
            var options = RobotAgent.Options(robotID: id, groups: group, stateFolder: URL(fileURLWithPath: state, isDirectory: true), deployer: deployer,
                                             simServer: server, envIndex: envs.isEmpty ? nil : envs[k], key: key)
            options.poll = poll
            options.reconnectTimeout = reconnect.seconds
            options.simServerSecurity = serverSecurity
            options.deployerSecurity = deployerSecurity
            return try RobotAgent(options: options, logger: Logger(label: "sim-deploy.agent"))
        }
        AgentGroup(agents: agents, deployer: deployer, security: deployerSecurity, logger: Logger(label: "sim-deploy.agent")).run()
    }
}
