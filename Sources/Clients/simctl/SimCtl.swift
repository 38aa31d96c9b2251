import ArgumentParser
import ClientKit
import Foundation
import Messaging

@main
struct SimCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simctl",
        abstract: "Inspect and drive a RoboSim server, ROS 2 style.",
        discussion: """
            Examples:
              simctl topic list -t
              simctl topic echo /clock --count 3 --json
              simctl topic hz /env_0/joint_states --duration 5
              simctl topic pub /env_0/cmd_vel geometry_msgs/msg/Twist '{"linear":{"x":0.2}}' --rate 10
              simctl service call /sim/describe '{}'
              simctl param list
              simctl param set rate.joint_states=60 'reset.pole_angle=[0.5, 0.5]'
              simctl node list
              simctl record -o run.mcap --all --duration 30
              simctl play run.mcap --rate 2
              simctl keys generate keys/alice             # CURVE keys (docs/security.md)
            """,
        subcommands: [Topic.self, Service.self, Param.self, NodeCommand.self, Record.self, Play.self, Keys.self])
}

/// Fails the command with a one-line reason on stderr and a non-zero exit code.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("simctl: \(message)\n".utf8))
    return ExitCode.failure
}

/// Writes a line to stdout, flushed (so pipes see each message as it comes).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Nodes in the graph.", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the nodes that announced themselves.")
        @OptionGroup var connection: ConnectionOptions

        func run() throws {
            let graph = try connection.client().graph()
            for node in graph.nodes { emit(node.name) }
        }
    }
}
