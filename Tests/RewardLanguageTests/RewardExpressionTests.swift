import TestSupport
import Testing
@testable import RewardLanguage

@Suite struct RewardExpressionTests {
    let names = ["pole_angle", "cart_velocity", "alive", "success", "obs.pole_angle", "action.cart_force", "robot0:x"]
    let values: [Double] = [0.5, -2, 1, 0, 0.5, 0.25, 3]

    func value(_ source: String) throws -> Double { try RewardExpression(source, variables: names).evaluate(values) }

    @Test(arguments: [
        ("1 + 2 * 3", 7.0), ("(1 + 2) * 3", 9), ("2 ^ 3 ^ 2", 512), ("-2 ^ 2", -4), ("2 ^ -1", 0.5),
        ("10 / 4 - 1", 1.5), ("1 - 2 - 3", -4), ("1e-3 * 1000", 1), (".5 + 1.", 1.5),
        ("pole_angle * 2", 1), ("-cart_velocity", 2), ("alive - 2 * pole_angle ^ 2", 0.5),
        ("abs(cart_velocity)", 2), ("sqrt(16)", 4), ("exp(0)", 1), ("min(3, 1, 2)", 1), ("max(3, 1, 2, 9)", 9), ("min(4)", 4),
        ("clip(cart_velocity, -1, 1)", -1), ("clip(5, 0, 2)", 2), ("tanh(0)", 0),
        ("pole_angle < 1", 1), ("pole_angle >= 1", 0), ("1 == 1", 1), ("1 != 1", 0), ("!success", 1), ("!1", 0),
        ("pole_angle < 1 && cart_velocity < 0", 1), ("success || alive", 1), ("success && alive", 0),
        ("success ? 10 : -1", -1), ("alive ? 1 + 1 : 0", 2), ("obs.pole_angle + action.cart_force", 0.75),
        ("1 / 0", 0), ("sqrt(-1)", 0), ("exp(1000)", 0), ("  alive  ", 1), ("`robot0:x` * 2", 6), ("`alive`", 1),
    ])
    func evaluates(source: String, expected: Double) throws {
        #expect(try value(source) == expected, "\(source)")
    }

    @Test func readsOnlyTheNamesItUses() throws {
        let e = try RewardExpression("alive - 0.5 * abs(cart_velocity) + alive", variables: names)
        #expect(e.used == [1, 2])
    }

    @Test(arguments: [
        ("", 1, "empty"), ("1 +", 4, "ends"), ("foo + 1", 1, "unknown name 'foo'"), ("pole * 2", 1, "did you mean: pole_angle"),
        ("1 2", 3, "unexpected"), ("(1 + 2", 7, "expected ')'"), ("max(1, 2", 9, "expected ',' or ')'"), ("sin(1)", 1, "unknown function 'sin'"),
        ("clip(1, 2)", 1, "clip takes 3 arguments"), ("abs()", 1, "abs takes 1 argument"), ("1 < 2 < 3", 7, "do not chain"),
        ("1e999", 1, "not a finite number"), ("1..2", 1, "not a finite number"), ("a | b", 1, "unknown name 'a'"), ("alive | 1", 7, "unexpected"),
        ("alive ? 1", 10, "expected ':'"), ("#", 1, "unexpected '#'"), ("import os", 1, "unknown name 'import'"),
        ("`robot0:y`", 1, "unknown name 'robot0:y'"), ("1 + `open", 5, "no closing"),
    ])
    func refusesWithThePosition(source: String, position: Int, text: String) {
        do {
            _ = try RewardExpression(source, variables: names)
            Issue.record("accepted \(source)")
        } catch {
            #expect(error.position == position && error.message.contains(text), "\(source): \(error)")
        }
    }

    @Test func sizeDepthAndCostAreBounded() {
        let deep = String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100)
        #expect(throws: RewardError.self) { try RewardExpression(deep, variables: []) }
        let negations = String(repeating: "-", count: 100) + "1"
        #expect(throws: RewardError.self) { try RewardExpression(negations, variables: []) }
        let long = Array(repeating: "1", count: 600).joined(separator: "+")
        #expect(throws: RewardError.self) { try RewardExpression(long, variables: []) }
        let huge = String(repeating: " ", count: 5000) + "1"
        #expect(throws: RewardError.self) { try RewardExpression(huge, variables: []) }
        let ternaries = Array(repeating: "alive ? 1 : ", count: 40).joined() + "0"
        do {
            _ = try RewardExpression(ternaries, variables: names)
            Issue.record("40 nested ternaries accepted")
        } catch {
            #expect(error.position > 1 && error.message.contains("pending values"), "\(error)")
        }
        let args = "max(" + Array(repeating: "1", count: 40).joined(separator: ",") + ")"
        #expect(throws: RewardError.self) { try RewardExpression(args, variables: []) }
        // At the limits, fine.
        let ok = String(repeating: "(", count: 30) + "1" + String(repeating: ")", count: 30)
        #expect((try? RewardExpression(ok, variables: []).evaluate([])) == 1)
    }

    /// 100,000 random and mutated inputs: each parses to a value or fails with a position inside
    /// the input; none traps, none runs long.
    @Test func fuzzedInputsGiveValuesOrErrors() {
        var rng = SplitMix(seed: 12345)
        let seeds = ["alive - 2 * pole_angle ^ 2", "clip(cart_velocity, -1, 1) * (success ? 10 : 1)", "max(min(1, 2), abs(-3)) / 0",
                     "!(pole_angle < 0.2 && cart_velocity > -1) || action.cart_force", "exp(tanh(sqrt(abs(obs.pole_angle))))"]
        let alphabet = Array("0123456789.eE+-*/^()<>=!&|?:, _abcdefghijklmnopqrstuvwxyz".utf8) + [0, 0xFF, 0xC3, 0x28]
        let tokens = ["(", ")", "min(", "max(", "clip(", "abs(", "?", ":", "&&", "||", "^", "-", "!", "1e308", "1e-308", "pole_angle", ",", "<=", "=="]
        var parsed = 0, errors = 0
        for k in 0..<100_000 {
            var bytes: [UInt8]
            if k % 3 == 0 {
                bytes = (0..<Int(rng.next() % 64)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            } else {
                bytes = Array(seeds[Int(rng.next() % UInt64(seeds.count))].utf8)
                for _ in 0..<Int(1 + rng.next() % 6) {
                    let at = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count + 1))
                    switch rng.next() % 4 {
                    case 0: bytes.insert(contentsOf: tokens[Int(rng.next() % UInt64(tokens.count))].utf8, at: at)
                    case 1: if at < bytes.count { bytes.remove(at: at) }
                    case 2: if at < bytes.count { bytes[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                    default: bytes.insert(contentsOf: bytes.prefix(16), at: at)
                    }
                }
            }
            let source = String(decoding: bytes, as: UTF8.self)
            do {
                let e = try RewardExpression(source, variables: names)
                let v = e.evaluate(values)
                if !v.isFinite { Issue.record("\(source) gave \(v)") }
                parsed += 1
            } catch {
                if !(error.position >= 1 && error.position <= source.utf8.count + 1) { Issue.record("\(source): position \(error.position)") }
                errors += 1
            }
        }
        #expect(parsed > 1000 && errors > 1000, "parsed \(parsed), errors \(errors)")
    }
}

@Suite struct RewardNaNTests {
    @Test func nanPassesThroughMinMaxAndClipInAnyOrder() throws {
        for source in ["max(1, sqrt(-1))", "max(sqrt(-1), 1)", "min(sqrt(-1), 1)", "clip(1, sqrt(-1), 2)", "clip(sqrt(-1), 0, 1)"] {
            #expect(try RewardExpression(source, variables: []).evaluate([]) == 0, "\(source)")  // NaN counts as 0
        }
        #expect(try RewardExpression("max(1, sqrt(-1)) + 5", variables: []).evaluate([]) == 0)
    }
}
