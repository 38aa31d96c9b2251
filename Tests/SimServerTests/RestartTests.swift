import ClientKit
import Foundation
import Messaging
import Testing

/// A vector env on a real `sim-server` process that is killed (SIGKILL) and started again on the
/// same address: the vector reconnects by itself, reports the interrupted step truncated, and its
/// later episodes are those of an uninterrupted run; a server that never comes back fails the call
/// within the reconnect timeout.
@Suite(.serialized) struct RestartTests {
    /// A sim-server process on a fixed address that can be killed and started again.
    final class Server {
        private(set) var address = ""
        var arguments: [String]
        var process: Process?
        private var started = false

        init(envs: Int = 4) {
            arguments = ["Scenes/cartpole", "--mode", "lockstep", "--envs", "\(envs)", "--seed", "3", "--log-level", "error",
                         "--render-backend", "none", "--parent-pid", "\(getpid())"]
        }

        /// Starts it; the first start picks ports (again when they are taken), later ones reuse them.
        func start() throws {
            guard !started else { return try run() }
            for attempt in 1...5 {
                address = "tcp://127.0.0.1:\(Int.random(in: 20_000...50_000) / 4 * 4)"
                do {
                    try run()
                    started = true
                    return
                } catch where attempt < 5 {
                    kill9()
                }
            }
        }

        private func run() throws {
            let binary = try #require(ProcessTests.binary, "build sim-server first (swift build)")
            let p = Process()
            p.executableURL = binary
            p.arguments = arguments + ["--listen", address]
            try p.run()
            process = p
            // Ready when it answers (the same port is bound again after a kill: give it time).
            let client = try ServiceClient(server: address, timeout: 1)
            let deadline = Date().addingTimeInterval(30)
            while (try? client.describe()) == nil {
                guard Date() < deadline, p.isRunning else { throw ServiceError(.unavailable, "sim-server did not start on \(address)") }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }

        func kill9() {
            guard let p = process else { return }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            process = nil
        }

        deinit { kill9() }
    }

    /// Actions that do not look at the state (the same in every run) and end episodes soon.
    static func actions(step t: Int, envs: Int) -> [Double] {
        (0..<envs).map { k in k % 2 == 0 ? 1 : -1 }
    }

    /// Per env, the first observation of each episode (reset, auto-reset, restart) over `steps` steps;
    /// `kill` runs before step `killAt` (and may restart the server).
    static func run(_ env: VectorEnv, steps: Int, killAt: Int? = nil, kill: () throws -> Void = {})
        throws -> (starts: [[[Double]]], restartStep: VectorEnv.StepResult?, inFlight: Int) {
        let n = env.count, o = env.observationSize
        let first = try env.reset(seed: 11).observations
        var starts = (0..<n).map { [Array(first[($0 * o)..<(($0 + 1) * o)])] }
        var inFlight = [Bool](repeating: false, count: n)
        var restartStep: VectorEnv.StepResult?
        var lostAtKill = 0
        for t in 0..<steps {
            if t == killAt {
                lostAtKill = inFlight.filter { $0 }.count
                try kill()
            }
            let r = try env.step(actions: actions(step: t, envs: n))
            if !r.restartedPositions.isEmpty { restartStep = r }
            for k in 0..<n where r.terminated[k] || r.truncated[k] {
                starts[k].append(Array(r.observations[(k * o)..<((k + 1) * o)]))
            }
            for k in 0..<n { inFlight[k] = !(r.terminated[k] || r.truncated[k]) }
        }
        return (starts, restartStep, lostAtKill)
    }

    @Test(.timeLimit(.minutes(2)), arguments: [VectorEnv.Transport.shm, .socket])
    func reconnectsAfterKillAndRestart(transport: VectorEnv.Transport) throws {
        let server = Server()
        try server.start()
        // Socket calls notice a dead server by their timeout: keep it short.
        let client = try ServiceClient(server: server.address, timeout: 2)
        let reference = try VectorEnv(client: client, options: .init(transport: transport, reconnectTimeout: 20))
        let uninterrupted = try Self.run(reference, steps: 160).starts
        reference.close()

        let env = try VectorEnv(client: client, options: .init(transport: transport, reconnectTimeout: 20))
        defer { env.close() }
        #expect(env.transport == transport)
        let interrupted = try Self.run(env, steps: 160, killAt: 40) {
            server.kill9()
            // Back after a while: the vector polls /sim/describe meanwhile.
            Thread.sleep(forTimeInterval: 0.7)
            try server.start()
        }
        #expect(env.reconnects == 1 && env.restarts == 1)
        #expect(env.serverInstance != reference.serverInstance && env.serverInstance.count == 32)
        #expect(env.transport == transport)
        let step = try #require(interrupted.restartStep, "no step reported the restart")
        #expect(step.restartedPositions == Array(0..<env.count))
        #expect(step.truncated.allSatisfy { $0 })
        #expect(step.terminated.allSatisfy { !$0 })
        #expect(step.rewards.allSatisfy { $0 == 0 })
        #expect(step.restartedServers == [server.address])
        #expect(env.episodesLost == interrupted.inFlight)
        #expect(env.episodesLost >= 1)
        // Each env's episode in flight starts again, then the episodes an uninterrupted run has.
        for k in 0..<env.count {
            let a = interrupted.starts[k], b = uninterrupted[k]
            // The restart's start repeats the episode in flight: drop the first repetition.
            let i = try #require(a.indices.dropFirst().first { a[$0] == a[$0 - 1] }, "env \(k): no restarted episode in \(a.count) starts")
            var merged = a
            merged.remove(at: i)
            #expect(merged.count >= i + 2, "env \(k): too few episodes after the restart")
            let m = min(merged.count, b.count)
            #expect(Array(merged.prefix(m)) == Array(b.prefix(m)), "env \(k): episodes after the restart differ from an uninterrupted run")
        }
    }

    /// A lease that expires on a live server (the client idle past its ttl) is recovered the same
    /// way, and the server's instance id says it was no restart.
    @Test(.timeLimit(.minutes(1)))
    func anExpiredLeaseOnTheSameServerIsNoRestart() throws {
        let server = Server()
        try server.start()
        let client = try ServiceClient(server: server.address, timeout: 2)
        let env = try VectorEnv(client: client, options: .init(ttl: 0.5, transport: .socket, reconnectTimeout: 5))
        defer { env.close() }
        let first = try env.reset(seed: 1).observations
        let (instance, lease) = (env.serverInstance, env.lease)
        Thread.sleep(forTimeInterval: 1.5)
        let r = try env.step(actions: Self.actions(step: 0, envs: env.count))
        #expect(env.reconnects == 1 && env.restarts == 0)
        #expect(env.serverInstance == instance && env.lease != lease)
        #expect(r.restartedPositions == Array(0..<env.count) && r.truncated.allSatisfy { $0 })
        #expect(r.observations == first, "the cut episodes start again from their first observation")
        #expect(env.episodesLost == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func cutLinkFailsWithinTheReconnectTimeout() throws {
        let server = Server()
        try server.start()
        let client = try ServiceClient(server: server.address, timeout: 2)
        let env = try VectorEnv(client: client, options: .init(transport: .shm, reconnectTimeout: 3))
        _ = try env.reset(seed: 1)
        _ = try env.step(actions: Self.actions(step: 0, envs: env.count))
        server.kill9()
        let started = Date()
        let error = #expect(throws: ServiceError.self) { try env.step(actions: Self.actions(step: 1, envs: env.count)) }
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 3 && waited < 3 + 2.5, "gave up after \(waited) s")
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains(server.address) == true)
        #expect(error?.message.contains("did not come back within 3 s") == true)
        #expect(env.reconnects == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func aServerBackWithOtherEnvsIsRefused() throws {
        let server = Server()
        try server.start()
        let client = try ServiceClient(server: server.address, timeout: 2)
        let env = try VectorEnv(client: client, options: .init(count: 4, transport: .shm, reconnectTimeout: 20))
        _ = try env.reset(seed: 1)
        server.kill9()
        server.arguments[server.arguments.firstIndex(of: "--envs")! + 1] = "2"
        try server.start()
        let error = #expect(throws: ServiceError.self) { try env.step(actions: Self.actions(step: 0, envs: env.count)) }
        #expect(error?.code == .failedPrecondition)
        #expect(error?.message.contains("2 envs (was 4)") == true)
    }

    @Test(.timeLimit(.minutes(1)))
    func noReconnectionWithATimeoutOfZero() throws {
        let server = Server()
        try server.start()
        let client = try ServiceClient(server: server.address, timeout: 2)
        let env = try VectorEnv(client: client, options: .init(transport: .shm, reconnectTimeout: 0))
        _ = try env.reset(seed: 1)
        server.kill9()
        let error = #expect(throws: ServiceError.self) { try env.step(actions: Self.actions(step: 0, envs: env.count)) }
        #expect(error?.code == .unavailable)
        #expect(env.reconnects == 0)
    }
}
