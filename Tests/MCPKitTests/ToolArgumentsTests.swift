import MCP
import Testing

@testable import MCPKit

@Suite struct ToolArgumentsTests {
    @Test func readsBoundedValues() throws {
        let args = try ToolArguments(
            ["env": 2, "target": [0.1, -0.2, 0.9], "ids": [0, 3], "timeout_s": 1.5, "name": "overhead", "whole": 4.0],
            allowed: ["env", "target", "ids", "timeout_s", "name", "whole"])
        #expect(try args.int("env", in: 0...10) == 2)
        #expect(try args.int("whole", in: 0...10) == 4)
        #expect(try args.doubles("target", count: 3...3, in: -100...100) == [0.1, -0.2, 0.9])
        #expect(try args.ints("ids", count: 1...4, in: 0...7, unique: true) == [0, 3])
        #expect(try args.double("timeout_s", in: 0.1...30) == 1.5)
        #expect(try args.double("absent", in: 0...1, default: 0.25) == 0.25)
        #expect(try args.string("name") == "overhead")
    }

    static let badInputs: [([String: Value], String)] = [
        (["env": 2.5], "'env' must be an integer"),
        (["env": -1], "'env' = -1 is outside 0...10"),
        (["env": "0"], "'env' must be an integer"),
        (["target": [1, 2]], "'target' has 2 items; expected 3"),
        (["target": [1, 2, 1000]], "'target[2]' = 1000.0 is outside [-100.0, 100.0]"),
        (["target": [1, "x", 2]], "'target[1]' must be a number"),
        (["ids": [1, 1]], "'ids' names an item twice"),
        (["nope": 1], "unknown argument 'nope'"),
    ]

    @Test(arguments: badInputs)
    func refusesBadInput(values: [String: Value], message: String) {
        do {
            let args = try ToolArguments(values, allowed: ["env", "target", "ids"])
            _ = try args.int("env", in: 0...10, default: 0)
            _ = try args.doubles("target", count: 3...3, in: -100...100)
            _ = try args.ints("ids", count: 1...4, in: 0...7, unique: true)
            Issue.record("accepted \(values)")
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
        }
    }

    @Test func nonFiniteNumbersAreRefused() {
        #expect(throws: ToolFailure.self) { try ToolArguments.number(.double(.nan), name: "x", in: -1...1) }
        #expect(throws: ToolFailure.self) { try ToolArguments.number(.double(.infinity), name: "x", in: -.infinity...(.infinity)) }
    }

    @Test func longStringsAreRefused() throws {
        let args = try ToolArguments(["topic": .string(String(repeating: "a", count: 2000))], allowed: ["topic"])
        #expect(throws: ToolFailure.self) { try args.string("topic") }
    }

    @Test func parameterValuesBecomeText() throws {
        #expect(try SimSession.parameterText(10, name: "rate.tf") == "10.0")
        #expect(try SimSession.parameterText(true, name: "paused") == "true")
        #expect(try SimSession.parameterText([-0.1, 0.1], name: "reset.x") == "[-0.1, 0.1]")
        #expect(try SimSession.parameterText("2", name: "real_time_factor") == "2")
        #expect(throws: ToolFailure.self) { try SimSession.parameterText([1, 2, 3], name: "reset.x") }
    }
}

@Suite struct SimToolsTests {
    /// Every tool declares an object schema whose properties are what its handler reads, and
    /// annotations that say whether it only reads.
    @Test func catalogue() {
        let readOnly: Set = ["describe_server", "list_graph", "read_topic", "get_camera_frame", "propose_tbar_strategy", "get_parameters"]
        let destructive: Set = ["reset_envs", "set_parameters"]
        #expect(SimTools.names.count == 13)
        #expect(Set(SimTools.names).count == SimTools.names.count)
        for tool in SimTools.all {
            guard case .object(let schema) = tool.inputSchema else { Issue.record("\(tool.name): schema"); continue }
            #expect(schema["type"] == "object")
            #expect(schema["additionalProperties"] == false)
            #expect(tool.annotations.readOnlyHint == readOnly.contains(tool.name), "\(tool.name)")
            #expect(tool.annotations.destructiveHint == destructive.contains(tool.name), "\(tool.name)")
            #expect(tool.annotations.openWorldHint == false)
            #expect(tool.annotations.idempotentHint != nil)
        }
        #expect(SimTools.argumentNames(of: "move_end_effector") == ["env", "target", "tolerance_m", "max_steps", "timeout_s"])
    }

    @Test func jsonNumbersAreRounded() {
        #expect(JSONText.render(["x": 0.1 + 0.2]).contains("0.3"))
        #expect(!JSONText.render(["x": 0.1 + 0.2]).contains("0.30000000000000004"))
    }
}
