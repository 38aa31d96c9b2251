import MCP

/// The tools sim-mcp offers: names, descriptions, JSON input schemas and annotations. The schemas
/// state the same bounds that `ToolArguments` enforces, so an agent can stay inside them; the
/// annotations say truthfully which tools only read, which overwrite state, and which can be
/// repeated without further effect. Every tool acts on the one simulator (a closed world).
public enum SimTools {
    /// Largest coordinate accepted in a target (m); the server's safety layer has the real limits.
    public static let maxCoordinate = 100.0
    /// Largest env index accepted before asking the server (which has its own count).
    public static let maxEnvIndex = 1 << 20 - 1
    /// Most envs named in one call, and most control steps in one `step_envs` call.
    public static let maxEnvs = 1024
    public static let maxSteps = 500
    /// Most values in one action (the server's action size is checked too).
    public static let maxActionSize = 4096
    /// Most parameters named or set in one call (the server's limit too).
    public static let maxParameters = 256

    /// The name of every tool, in the order listed.
    public static var names: [String] { all.map(\.name) }

    /// Every tool, in the order `tools/list` gives them.
    public static let all: [Tool] = [
        Tool(
            name: "describe_server", title: "Describe the simulator",
            description: """
                What the connected sim-server runs: scene, mode (realtime or lockstep), env count, the task (observation \
                and action names with units and bounds, reward terms, what success means), cameras, the per-env topics \
                and the services, command counters of the safety layer, and this session's lease.
                """,
            inputSchema: object([:]),
            annotations: readOnly("Describe the simulator")),
        Tool(
            name: "list_graph", title: "List topics, services and nodes",
            description: """
                /graph/list: every node, topic (type, publishers, subscribers, rate, messages, drops) and service (calls, \
                errors). `prefix` keeps only topics whose name starts with it (e.g. "/env_0/"); at most 500 topics are listed.
                """,
            inputSchema: object(["prefix": string("Only topics whose name starts with this, e.g. /env_0/", maxLength: 256)]),
            annotations: readOnly("List topics, services and nodes")),
        Tool(
            name: "read_topic", title: "Read one message of a topic",
            description: """
                Waits for the next message on a topic and returns it as JSON (protobuf JSON mapping, ROS field names). \
                Image payloads are left out (use get_camera_frame). On a lockstep server topics only go out when envs are \
                stepped or reset.
                """,
            inputSchema: object(
                [
                    "topic": string("Topic name, e.g. /env_0/robot/pose", maxLength: 256),
                    "timeout_s": number("Seconds to wait for a message", min: 0.1, max: 30, default: 5),
                ], required: ["topic"]),
            annotations: readOnly("Read one message of a topic")),
        Tool(
            name: "get_camera_frame", title: "Get a camera frame",
            description: """
                The current image of one env's camera as a PNG (rendered by the server from the env's present state, \
                or else the latest message of /env_i/camera/<cam>/image_raw), with its size and sim time.
                """,
            inputSchema: object([
                "env": integer("Env index", min: 0, max: maxEnvIndex, default: 0),
                "camera": string("Camera name (describe_server lists them); default: the scene's first camera", maxLength: 128),
            ]),
            annotations: readOnly("Get a camera frame")),
        Tool(
            name: "lease_envs", title: "Lease envs for lockstep control",
            description: """
                Claims envs for this session (/sim/lease): `env_ids`, or `count` free ones (default 1). Lockstep servers \
                step and reset only leased envs. One lease per session; it ends with release_envs, when the session \
                closes, or after `ttl_s` seconds without a call that uses it.
                """,
            inputSchema: object([
                "env_ids": integers("Envs to lease", min: 0, max: maxEnvIndex, maxItems: maxEnvs),
                "count": integer("Number of free envs to lease (when env_ids is not given)", min: 1, max: maxEnvs, default: 1),
                "ttl_s": number("Seconds of silence after which the server ends the lease", min: 5, max: 3600, default: 600),
            ]),
            annotations: .init(
                title: "Lease envs", readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false)),
        Tool(
            name: "release_envs", title: "Release the lease",
            description: "Ends this session's lease (/sim/release); its envs become free for other clients. Nothing to do without a lease.",
            inputSchema: object([:]),
            annotations: .init(
                title: "Release the lease", readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false)),
        Tool(
            name: "reset_envs", title: "Reset envs",
            description: """
                Starts a new episode in envs (/sim/reset): the leased envs by default. With `seed` the episodes restart \
                from (seed, env index), reproducibly. Ends the envs' running episodes. Returns each env's observation by name.
                """,
            inputSchema: object([
                "env_ids": integers("Envs to reset (default: this session's leased envs)", min: 0, max: maxEnvIndex, maxItems: maxEnvs),
                "seed": integer("Seed of the envs' episodes", min: 0, max: 1 << 53, default: nil),
            ]),
            annotations: .init(title: "Reset envs", readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false)
        ),
        Tool(
            name: "step_envs", title: "Step leased envs",
            description: """
                Lockstep servers: applies one action per env (the task's action vector: describe_server lists its \
                names and bounds; values outside the bounds are clipped) for `steps` control steps (/sim/step), on \
                leased envs. Returns each env's observation by name, the summed reward, and whether its episode \
                terminated, was truncated or succeeded (an ended episode restarts at once).
                """,
            inputSchema: object(
                [
                    "env_ids": integers(
                        "Envs to step, all leased (default: every leased env)", min: 0, max: maxEnvIndex, maxItems: maxEnvs),
                    "actions": .object([
                        "type": "array", "maxItems": .int(maxEnvs),
                        "description": "One action per env, in env_ids order; each a list of action_size numbers",
                        "items": .object([
                            "type": "array", "maxItems": .int(maxActionSize),
                            "items": .object(["type": "number", "minimum": -1e6, "maximum": 1e6]),
                        ]),
                    ]),
                    "steps": integer("Control steps to take with these actions", min: 1, max: maxSteps, default: 1),
                ], required: ["actions"]),
            annotations: .init(title: "Step envs", readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false)
        ),
        Tool(
            name: "move_end_effector", title: "Move the end effector",
            description: """
                Drives an arm's end effector (tool tip) to `target` (x, y, z in the world frame, metres) through the \
                server's safety layer, inverse kinematics and motion generator, and waits until it is within \
                `tolerance_m`. Lockstep: steps the env (leased) up to `max_steps` control steps; realtime: publishes \
                /env_i/ee_target and watches /env_i/robot/pose for up to `timeout_s`. A target the server refuses \
                (unreachable, outside the workspace) is a tool error carrying the server's reason.
                """,
            inputSchema: object(
                [
                    "env": integer("Env index", min: 0, max: maxEnvIndex, default: 0),
                    "target": numbers("x, y, z of the tool tip in the world frame (m)", count: 3, min: -maxCoordinate, max: maxCoordinate),
                    "tolerance_m": number("Distance counted as arrived (m)", min: 0.002, max: 0.1, default: 0.01),
                    "max_steps": integer("Lockstep: most control steps to take", min: 1, max: 3000, default: 500),
                    "timeout_s": number("Realtime: most seconds to wait", min: 0.5, max: 60, default: 15),
                ], required: ["target"]),
            annotations: .init(
                title: "Move the end effector", readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false)),
        Tool(
            name: "send_velocity", title: "Send a velocity command",
            description: """
                Realtime servers: publishes a velocity command (geometry_msgs/msg/Twist on /env_i/cmd_vel: a mobile \
                base's forward speed and turn rate) for `duration_s` seconds, then a stop. The server's safety layer \
                checks it; a refused command (a robot without a base, too fast, a lockstep server) is a tool error \
                with the server's reason.
                """,
            inputSchema: object([
                "env": integer("Env index", min: 0, max: maxEnvIndex, default: 0),
                "linear": numbers("Linear velocity x, y, z (m/s)", count: 3, min: -100, max: 100),
                "angular": numbers("Angular velocity x, y, z (rad/s)", count: 3, min: -100, max: 100),
                "duration_s": number("Seconds to keep sending it", min: 0.05, max: 10, default: 1),
            ]),
            annotations: .init(
                title: "Send a velocity command", readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false)),
        Tool(
            name: "propose_tbar_strategy", title: "Propose a T-bar push",
            description: """
                tbar_push scenes: the offline planner's next push (StrategistKit) for an env, from the T-bar, slot and \
                tool poses on its topics (or the ones given): the push side, contact point, direction and the waypoints \
                to send with move_end_effector, with its rationale. Changes nothing.
                """,
            inputSchema: object([
                "env": integer("Env index", min: 0, max: maxEnvIndex, default: 0),
                "tbar": numbers(
                    "The T-bar's x, y (m) and yaw (rad), instead of /env_i/objects", count: 3, min: -maxCoordinate, max: maxCoordinate),
                "slot": numbers(
                    "The slot's x, y (m) and yaw (rad), instead of /env_i/objects", count: 3, min: -maxCoordinate, max: maxCoordinate),
                "tool": numbers(
                    "The tool tip's x, y, z (m), instead of /env_i/robot/pose", count: 3, min: -maxCoordinate, max: maxCoordinate),
            ]),
            annotations: readOnly("Propose a T-bar push")),
        Tool(
            name: "get_parameters", title: "Get parameters",
            description: "Server parameters (/sim/get_parameters) with their values and descriptions: all, or those named.",
            inputSchema: object(["names": strings("Parameter names (default: all)", maxItems: maxParameters)]),
            annotations: readOnly("Get parameters")),
        Tool(
            name: "set_parameters", title: "Set parameters",
            description: """
                Sets server parameters, all or none (/sim/set_parameters): rates, real_time_factor, paused, reset ranges. \
                Values are text, numbers, booleans or [low, high] ranges. Affects every client of the server.
                """,
            inputSchema: object(
                [
                    "parameters": .object([
                        "type": "object", "maxProperties": .int(maxParameters),
                        "description": "NAME: VALUE pairs, e.g. {\"rate.tf\": 10, \"reset.tbar_x\": [-0.1, 0.1]}",
                        "additionalProperties": .object(["type": .array(["string", "number", "boolean", "array"])]),
                    ])
                ], required: ["parameters"]),
            annotations: .init(
                title: "Set parameters", readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false)),
    ]

    // MARK: Schema helpers

    static func readOnly(_ title: String) -> Tool.Annotations {
        .init(title: title, readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false)
    }

    static func object(_ properties: [String: Value], required: [String] = []) -> Value {
        var schema: [String: Value] = ["type": "object", "properties": .object(properties), "additionalProperties": false]
        if !required.isEmpty { schema["required"] = .array(required.map { .string($0) }) }
        return .object(schema)
    }

    static func string(_ description: String, maxLength: Int) -> Value {
        .object(["type": "string", "description": .string(description), "maxLength": .int(maxLength)])
    }

    static func number(_ description: String, min: Double, max: Double, default value: Double?) -> Value {
        var s: [String: Value] = ["type": "number", "description": .string(description), "minimum": .double(min), "maximum": .double(max)]
        if let value { s["default"] = .double(value) }
        return .object(s)
    }

    static func integer(_ description: String, min: Int, max: Int, default value: Int?) -> Value {
        var s: [String: Value] = ["type": "integer", "description": .string(description), "minimum": .int(min), "maximum": .int(max)]
        if let value { s["default"] = .int(value) }
        return .object(s)
    }

    static func numbers(_ description: String, count: Int, min: Double, max: Double) -> Value {
        .object([
            "type": "array", "description": .string(description), "minItems": .int(count), "maxItems": .int(count),
            "items": .object(["type": "number", "minimum": .double(min), "maximum": .double(max)]),
        ])
    }

    static func integers(_ description: String, min: Int, max: Int, maxItems: Int) -> Value {
        .object([
            "type": "array", "description": .string(description), "minItems": 1, "maxItems": .int(maxItems), "uniqueItems": true,
            "items": .object(["type": "integer", "minimum": .int(min), "maximum": .int(max)]),
        ])
    }

    static func strings(_ description: String, maxItems: Int) -> Value {
        .object([
            "type": "array", "description": .string(description), "maxItems": .int(maxItems),
            "items": .object(["type": "string", "maxLength": .int(ToolArguments.maxStringBytes)]),
        ])
    }

    /// The argument names a tool's schema declares.
    static func argumentNames(of tool: String) -> Set<String> {
        guard let t = all.first(where: { $0.name == tool }), case .object(let schema) = t.inputSchema,
            case .object(let properties)? = schema["properties"]
        else { return [] }
        return Set(properties.keys)
    }
}
