import ArgumentParser
import Foundation
import Messaging

#if canImport(Glibc)
import Glibc
#endif

/// Time from process start to the first `/sim/describe` answer of the `sim-server` executable
/// beside this one, and the time the same executable takes to print `--help` and exit (the cost
/// of starting the process at all).
extension PhysicsBench {
    /// The `sim-server` executable in this executable's folder.
    static var serverBinary: URL {
        let me = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return me.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sim-server")
    }

    /// Medians over `startupRuns` runs, in seconds: `sim-server --help` until it exits, and
    /// `sim-server SCENE --envs N` until the first `/sim/describe` answer. The poller makes a new
    /// client every 5 ms (a call waits at most 5 ms): a client that connected before the server
    /// listened would otherwise wait for ZeroMQ's reconnect interval (100 ms).
    func startupTimes(scene: String) throws -> (help: Double, describe: Double) {
        let binary = Self.serverBinary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw ValidationError("no sim-server beside sim-bench at \(binary.path): build it first (swift build -c release --product sim-server)")
        }
        var help: [Double] = [], describe: [Double] = []
        let context = ZMQContext()
        let load = MachineLoad(limit: maxForeignCores, attempts: 1)
        for _ in 0..<startupRuns {
            load.waitForQuiet()
            let p = Process()
            p.executableURL = binary
            p.arguments = ["--help"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            let h0 = monotonic()
            try p.run()
            p.waitUntilExit()
            help.append(monotonic() - h0)

            let port = Self.freePorts(3)
            let endpoint = "tcp://127.0.0.1:\(port)"
            let server = Process()
            server.executableURL = binary
            server.arguments = [scene, "--envs", "\(startupEnvs)", "--listen", endpoint, "--log-level", "warning"]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            let t0 = monotonic()
            try server.run()
            defer {
                if server.isRunning { kill(server.processIdentifier, SIGINT) }
                server.waitUntilExit()
            }
            while true {
                guard server.isRunning else {
                    throw ValidationError("sim-server \(scene) exited with \(server.terminationStatus) before answering (run it by hand to see why)")
                }
                guard monotonic() - t0 < 60 else { throw ValidationError("sim-server \(scene): no /sim/describe answer within 60 s") }
                let client = try ServiceClient(server: endpoint, context: context, timeout: 0.005)
                do {
                    let d = try client.describe()
                    guard d.envCount == startupEnvs else { throw ValidationError("/sim/describe: \(d.envCount) envs, expected \(startupEnvs)") }
                    describe.append(monotonic() - t0)
                    break
                } catch let e as ServiceError where e.code == .deadlineExceeded {
                    continue  // waited 5 ms already
                } catch is ServiceError {
                    Thread.sleep(forTimeInterval: 0.005)
                }
            }
        }
        return (median(help), median(describe))
    }

    /// A port p such that p ..< p + count are free on 127.0.0.1 now (the server's service, XPUB and XSUB).
    static func freePorts(_ count: Int) -> Int {
        for _ in 0..<200 {
            let base = Int.random(in: 20_000...60_000)
            if (0..<count).allSatisfy({ portIsFree(base + $0) }) { return base }
        }
        return Int.random(in: 20_000...60_000)
    }

    static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
