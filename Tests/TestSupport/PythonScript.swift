import Foundation

/// Runs Python scripts for tests that compare with a Python reference (botocore, pyarrow).
///
/// The interpreter is `$ROBOSIM_PYTHON`, else the repository's `.venv/bin/python` (what
/// `scripts/setup.sh` makes, with `python/requirements-dev.txt`), else `python3` on the PATH.
public enum PythonScript {
    /// The repository root: two levels above this file's folder (`Tests/TestSupport/`).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The command that runs Python: executable and leading arguments.
    public static let python: [String] = {
        let environment = ProcessInfo.processInfo.environment
        if let configured = environment["ROBOSIM_PYTHON"], !configured.isEmpty { return [configured] }
        let venv = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        if FileManager.default.isExecutableFile(atPath: venv) { return [venv] }
        return ["/usr/bin/env", "python3"]
    }()

    /// Why `modules` cannot be imported, or nil when they can.
    public static func importProblem(_ modules: String, name: String) -> String? {
        do {
            let result = try run(script: "import \(modules)", input: Data())
            if result.status == 0 { return nil }
            return "\(python.joined(separator: " ")) cannot import \(name): \(result.stderr.split(separator: "\n").last ?? "")"
        } catch {
            return "cannot run \(python.joined(separator: " ")): \(error)"
        }
    }

    /// Runs `script` with `input` on stdin; returns the exit status, stdout and stderr.
    public static func run(script: String, input: Data) throws -> (status: Int32, stdout: Data, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python[0])
        process.arguments = Array(python.dropFirst()) + ["-c", script]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        // Read stderr on another thread so that neither pipe can fill and block the child.
        let errors = ErrorCollector()
        let reader = Thread { errors.set(stderr.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errorText = String(decoding: errors.wait(), as: UTF8.self)
        return (process.terminationStatus, output, errorText)
    }
}

/// Runs `body` on a thread of its own and waits for it without holding one of the (two, on CI)
/// cooperative threads: long blocking work there starves every other suite's async tests.
/// Expectations made inside are recorded, but reported without the test's name.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// The stderr of a child, handed from the thread that reads it.
private final class ErrorCollector: @unchecked Sendable {
    // Invariant: `data` is written once, before `done` is signalled, and read only after waiting on it.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    func set(_ value: Data) {
        data = value
        done.signal()
    }
    func wait() -> Data {
        done.wait()
        return data
    }
}
