import Foundation
import Messaging
import Testing

/// The `sim-server` executable as a user runs it: starts, answers, exits 0 on SIGINT and SIGTERM,
/// and exits non-zero with a one-line reason on a bad address.
@Suite(.serialized) struct ProcessTests {
    static var binary: URL? {
        // The test bundle sits next to the products in the build folder.
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("sim-server")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    static func freePort() -> Int { Int.random(in: 20_000...60_000) }

    @Test(arguments: [SIGINT, SIGTERM])
    func startsAnswersAndStopsCleanly(signal: Int32) throws {
        let binary = try #require(Self.binary, "build sim-server first (swift build)")
        let port = Self.freePort()
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--listen", "tcp://127.0.0.1:\(port)", "--log-level", "warning", "--render-backend", "none"]
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let client = try ServiceClient(server: "tcp://127.0.0.1:\(port)", timeout: 10)
        let d = try client.describe()
        #expect(d.subscribeEndpoint == "tcp://127.0.0.1:\(port + 1)")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test func badAddressExitsNonZeroWithOneLine() throws {
        let binary = try #require(Self.binary, "build sim-server first (swift build)")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--listen", "carrier-pigeon://home"]
        let stderr = Pipe()
        process.standardError = stderr
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus != 0)
        #expect(text.contains("must start with tcp://, ipc:// or inproc://"))
    }
}
