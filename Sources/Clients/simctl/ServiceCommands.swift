import ArgumentParser
import ClientKit
import Foundation
import Messaging

struct Service: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Services: list, call.", subcommands: [List.self, Call.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the server's services.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(name: [.customShort("t"), .long], help: "Show each service's type.") var showTypes = false

        func run() throws {
            for s in try connection.client().graph().services {
                emit(showTypes ? "\(s.name) [\(s.type)]" : s.name)
            }
        }
    }

    struct Call: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Call a service with a JSON request; print the JSON response.",
            discussion: "Example: simctl service call /sim/reset '{\"env_ids\":[0],\"seed\":7}'")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Service name.") var name: String
        @Argument(help: "The request in protobuf JSON.") var json: String = "{}"
        @Flag(help: "Print the response on one line.") var compact = false

        func run() throws {
            let client = try connection.client()
            guard let info = try client.graph().services.first(where: { $0.name == name }) else {
                throw fail("unknown service '\(name)'")
            }
            let request = try MessageJSON.message(typeName: info.requestType, json: json)
            let reply: [UInt8]
            do {
                reply = try client.call(name, payload: try request.serializedBytes())
            } catch let error as ServiceError {
                throw fail("\(name) failed: \(error)")
            }
            let response = try MessageJSON.decode(typeName: info.responseType, payload: reply)
            emit(compact ? MessageJSON.compact(response) : MessageJSON.pretty(response))
        }
    }
}
