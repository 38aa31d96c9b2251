import ArgumentParser
import Foundation

@main
struct SimBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-bench",
        abstract: "RoboSim benchmarks; each figure beside a reference measured in the same run.",
        discussion: """
            Build in release mode for figures worth recording:
              swift run -c release sim-bench messaging
              swift run -c release sim-bench messaging --sizes 100,1048576 --seconds 3
              swift run -c release sim-bench physics
              swift run -c release sim-bench render
            """,
        subcommands: [MessagingBench.self, PhysicsBench.self, RenderBench.self, PPOBench.self, MCAPBench.self, DeployBench.self])
}

/// Formats a rate with SI suffixes.
func si(_ x: Double) -> String {
    switch x {
    case 1e9...: String(format: "%.2fG", x / 1e9)
    case 1e6...: String(format: "%.2fM", x / 1e6)
    case 1e3...: String(format: "%.1fk", x / 1e3)
    default: String(format: "%.1f", x)
    }
}

func monotonic() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}
