import ArgumentParser
import ClientKit
import Foundation
import Messaging

struct Param: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Server parameters: list, get, set (over /sim/get_parameters and /sim/set_parameters).",
        discussion: """
            Examples:
              simctl param list
              simctl param get rate.joint_states reset.pole_angle
              simctl param set rate.tf=10 'reset.pole_angle=[-0.1, 0.1]'
            """,
        subcommands: [List.self, Get.self, SetValues.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every parameter as NAME = VALUE.",
            discussion: "Example: simctl param list --describe")
        @OptionGroup var connection: ConnectionOptions
        @Flag(name: [.customShort("d"), .long], help: "Show each parameter's description.") var describe = false

        func run() throws {
            for p in try getParameters(connection, names: []) {
                emit(describe ? "\(p.name) = \(p.value)\t# \(p.description_p)" : "\(p.name) = \(p.value)")
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the value of each named parameter, one per line, in the order given.",
            discussion: "Example: simctl param get rate.joint_states real_time_factor")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Parameter names (see 'simctl param list').") var names: [String]

        func validate() throws {
            if names.isEmpty { throw ValidationError("name at least one parameter") }
        }

        func run() throws {
            let found = try getParameters(connection, names: names)
            for name in names {
                guard let p = found.first(where: { $0.name == name }) else { throw fail("no parameter '\(name)' in the reply") }
                emit(p.value)
            }
        }
    }

    struct SetValues: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set parameters, all or none; print their new values as NAME = VALUE.",
            discussion: """
                A range is [low, high]; quote it for the shell. Changes apply between two control steps.
                Examples:
                  simctl param set rate.joint_states=60
                  simctl param set 'reset.pole_angle=[0.5, 0.5]' real_time_factor=2
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "NAME=VALUE pairs.") var assignments: [String]

        /// The assignments split at their first `=`.
        var pairs: [(name: String, value: String)] {
            assignments.map { a in
                let i = a.firstIndex(of: "=") ?? a.endIndex
                return (String(a[..<i]), i < a.endIndex ? String(a[a.index(after: i)...]) : "")
            }
        }

        func validate() throws {
            if assignments.isEmpty { throw ValidationError("give at least one NAME=VALUE") }
            for a in assignments {
                guard let i = a.firstIndex(of: "="), i != a.startIndex else { throw ValidationError("'\(a)' is not NAME=VALUE") }
            }
        }

        func run() throws {
            var request = Robosim_SetParametersRequest()
            request.parameters = pairs.map { pair in Robosim_Parameter.with { $0.name = pair.name; $0.value = pair.value } }
            let response: Robosim_SetParametersResponse
            do {
                response = try connection.client().call("/sim/set_parameters", request)
            } catch {
                throw fail("/sim/set_parameters failed: \(error)")
            }
            for p in response.parameters { emit("\(p.name) = \(p.value)") }
        }
    }
}

/// `/sim/get_parameters` for `names` (empty: every parameter); a failure is a one-line reason.
private func getParameters(_ connection: ConnectionOptions, names: [String]) throws -> [Robosim_Parameter] {
    do {
        let response: Robosim_GetParametersResponse = try connection.client().call(
            "/sim/get_parameters", Robosim_GetParametersRequest.with { $0.names = names })
        return response.parameters
    } catch {
        throw fail("/sim/get_parameters failed: \(error)")
    }
}
