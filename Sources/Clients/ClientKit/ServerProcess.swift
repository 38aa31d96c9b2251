import Foundation
import Messaging

/// A `sim-server` that a client starts for itself (`sim-collect --scene`, trainers): the binary
/// beside the client's executable, on a free local port, in lockstep mode, ending with the client
/// (`--parent-pid`: whatever ends the client, kill -9 included).
public final class ServerProcess: @unchecked Sendable {
    // Invariant: `process` is started in init and only waited on in stop().

    /// Where clients connect (`tcp://127.0.0.1:PORT`).
    public let address: String
    private let process: Process

    /// Starts `sim-server SCENE --mode lockstep` and waits until it answers `/sim/describe`.
    /// Tries other ports when one is taken; throws with the last exit status when it never starts.
    public init(scene: String, envs: Int? = nil, seed: UInt64 = 0, extraArguments: [String] = []) throws {
        let me = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let binary = me.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sim-server")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw ServiceError(.failedPrecondition, "no sim-server beside \(me.lastPathComponent) (\(binary.path)); build it (swift build) or use --server")
        }
        var lastStatus: Int32 = 0
        for _ in 0..<5 {
            // A taken port makes the server exit at once: then another port.
            let endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000...60_000))"
            let p = Process()
            p.executableURL = binary
            // It listens on loopback without keys: this client's own key variables are not its.
            var environment = ProcessInfo.processInfo.environment
            for name in [ClientSecurity.keyVariable, ServerSecurity.allowVariable] { environment[name] = nil }
            p.environment = environment
            p.arguments = [scene, "--mode", "lockstep", "--listen", endpoint, "--seed", "\(seed)", "--log-level", "warning",
                           "--parent-pid", "\(getpid())"] + (envs.map { ["--envs", "\($0)"] } ?? []) + extraArguments
            try p.run()
            let deadline = Date().addingTimeInterval(120)
            while p.isRunning && Date() < deadline {
                // Ours, not another server that happens to hold the port: its version line names
                // no pid, so check that ours is still running after it answered.
                if let client = try? ServiceClient(server: endpoint, timeout: 0.5), (try? client.describe()) != nil, p.isRunning {
                    address = endpoint
                    process = p
                    return
                }
            }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            lastStatus = p.terminationStatus
        }
        throw ServiceError(.unavailable, "sim-server \(scene) did not start (last exit status \(lastStatus)); run it by hand to see why")
    }

    deinit { stop() }

    /// Stops the server (SIGINT: a graceful shutdown; SIGKILL after 10 s) and waits for it. Idempotent.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Runs `handler` on the first SIGINT or SIGTERM (for a graceful stop); a second one exits the
/// process at once with status 130. Keep the returned sources alive as long as the handler applies.
public func onInterrupt(_ handler: @escaping () -> Void) -> [any DispatchSourceSignal] {
    let interrupts = InterruptCounter()
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            if interrupts.increment() >= 2 { _exit(130) }
            handler()
        }
        source.resume()
        sources.append(source)
    }
    return sources
}

private final class InterruptCounter: @unchecked Sendable {
    // Invariant: `count` is guarded by `lock`.
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int { lock.withLock { count += 1; return count } }
}
