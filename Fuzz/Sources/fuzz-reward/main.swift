import FuzzSupport
import RewardLanguage

/// The reward expression language: parse and check (`/sim/set_reward`, sim-train's `--reward`), then
/// evaluate whatever parses on a few fixed values. The first byte picks how many variables exist.
/// Statics, not top-level globals: libFuzzer's `main` runs instead of this file's top-level code,
/// so only lazily initialized values exist.
enum Fixture {
    static let names = ["x", "y", "alive", "success", "pole_angle", "cart_velocity", "action_0", "terminated"]
    static let values: [[Double]] = [
        [0, 0, 0, 0, 0, 0, 0, 0], [1, -1, 0.5, 1, .pi, -2, 3, 0], [.nan, .infinity, -.infinity, 1e308, -1e308, .leastNonzeroMagnitude, -0.0, 1],
    ]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let (selector, rest) = FuzzInput(data, size).selectorAndRest else { return 0 }
    let variables = Array(Fixture.names.prefix(Int(selector) % (Fixture.names.count + 1)))
    guard let expression = try? RewardExpression(String(decoding: rest, as: UTF8.self), variables: variables) else { return 0 }
    precondition(expression.used.allSatisfy { variables.indices.contains($0) }, "a used variable outside the table")
    for row in Fixture.values {
        let v = expression.evaluate(Array(row.prefix(max(variables.count, 1))))
        precondition(v.isFinite, "evaluate returned \(v)")
    }
    return 0
}

runFuzzer(fuzz)
