import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU used by other processes while a measurement runs, from /proc/stat (Linux) less this
/// process's own CPU time: on a shared 2-core machine a busy neighbour halves a 2-thread figure,
/// so measurements wait for a quiet machine and are retried when disturbed.
struct MachineLoad {
    /// Most cores other processes may use during a measurement before it is taken again.
    var limit: Double
    /// Attempts per measurement; the least disturbed one is kept.
    var attempts: Int
    /// Measurements taken, retried, and kept although disturbed.
    private(set) var measured = 0, retried = 0, disturbed = 0

    /// Busy CPU seconds of the whole machine, summed over cores (nil where /proc/stat is missing).
    static func machineBusySeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        // user nice system idle iowait irq softirq steal ...
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 8 else { return nil }
        let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
        return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Cores used by other processes during `body`, and its result.
    static func foreignCores<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let busy0 = machineBusySeconds(), own0 = cpuSeconds(), t0 = monotonic()
        let result = try body()
        guard let busy0, let busy1 = machineBusySeconds() else { return (result, 0) }
        let wall = monotonic() - t0
        return (result, max(0, (busy1 - busy0) - (cpuSeconds() - own0)) / max(wall, 1e-3))
    }

    /// Waits (at most `timeout` seconds) until other processes use less than half the limit over
    /// half a second.
    func waitForQuiet(timeout: Double = 120) {
        let end = monotonic() + timeout
        while monotonic() < end {
            let (_, foreign) = Self.foreignCores { Thread.sleep(forTimeInterval: 0.5) }
            if foreign < limit / 2 { return }
        }
    }

    /// Runs `body` on a quiet machine; again, up to `attempts` times, while other processes used
    /// more than `limit` cores during it. Returns the result of the least disturbed attempt.
    mutating func measure<T>(_ body: () throws -> T) rethrows -> T {
        measured += 1
        var best: (T, Double)?
        for attempt in 0..<attempts {
            if attempt > 0 { retried += 1 }
            waitForQuiet()
            let (result, foreign) = try Self.foreignCores(body)
            if best == nil || foreign < best!.1 { best = (result, foreign) }
            if foreign <= limit { return result }
        }
        disturbed += 1
        return best!.0
    }

    /// One line for the report.
    var summary: String {
        "\(measured) measurements; \(retried) retries because other processes used more than \(String(format: "%.2f", limit)) cores; "
            + "\(disturbed) kept although disturbed after \(attempts) attempts"
    }
}
