import Foundation

enum RewardMath {
    static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    static func pow(_ a: Double, _ b: Double) -> Double { Foundation.pow(a, b) }
}

/// Recursive descent over UTF-8 bytes, emitting postfix instructions. Depth and size are bounded
/// as it goes, so no input can exhaust the stack or memory.
struct Parser {
    let bytes: [UInt8]
    let variables: [String: Int]
    let names: [String]
    var pos = 0
    var depth = 0
    /// Values the emitted program holds on its evaluation stack at this point.
    var stack = 0
    var out: [Instruction] = []

    init(bytes: [UInt8], variables: [String: Int], names: [String]) {
        self.bytes = bytes
        self.variables = variables
        self.names = names
    }

    mutating func parseAll() throws(RewardError) -> [Instruction] {
        skipSpace()
        guard pos < bytes.count else { throw error("empty expression: give arithmetic over the task's names") }
        try expression()
        skipSpace()
        guard pos == bytes.count else { throw error("unexpected \(shown(pos)) after a complete expression") }
        return out
    }

    // MARK: Grammar

    private mutating func expression() throws(RewardError) {
        try enter()
        defer { depth -= 1 }
        try logicalOr()
        if take("?") {
            try expression()
            guard take(":") else { throw error("expected ':' of 'condition ? a : b', found \(shown(pos))") }
            try expression()
            try emit(.select)
        }
    }

    private mutating func logicalOr() throws(RewardError) {
        try logicalAnd()
        while take("||") {
            try logicalAnd()
            try emit(.binary(.or))
        }
    }

    private mutating func logicalAnd() throws(RewardError) {
        try comparison()
        while take("&&") {
            try comparison()
            try emit(.binary(.and))
        }
    }

    private mutating func comparison() throws(RewardError) {
        try sum()
        let ops: [(String, Instruction.Binary)] = [("<=", .lessEqual), (">=", .greaterEqual), ("==", .equal), ("!=", .notEqual),
                                                   ("<", .less), (">", .greater)]
        for (token, op) in ops where take(token) {
            try sum()
            try emit(.binary(op))
            if peek("<") || peek(">") || peek("==") || peek("!=") {
                throw error("comparisons do not chain: use '&&' (as in 'a < b && b < c')")
            }
            return
        }
    }

    private mutating func sum() throws(RewardError) {
        try product()
        while true {
            if take("+") { try product(); try emit(.binary(.add)) }
            else if take("-") { try product(); try emit(.binary(.subtract)) }
            else { return }
        }
    }

    private mutating func product() throws(RewardError) {
        try unary()
        while true {
            if take("*") { try unary(); try emit(.binary(.multiply)) }
            else if take("/") { try unary(); try emit(.binary(.divide)) }
            else { return }
        }
    }

    private mutating func unary() throws(RewardError) {
        try enter()
        defer { depth -= 1 }
        if take("-") {
            try unary()
            try emit(.unary(.negate))
        } else if !peek("!=") && take("!") {
            try unary()
            try emit(.unary(.not))
        } else {
            try power()
        }
    }

    private mutating func power() throws(RewardError) {
        try primary()
        if take("^") {
            try unary()
            try emit(.binary(.power))
        }
    }

    private mutating func primary() throws(RewardError) {
        skipSpace()
        guard pos < bytes.count else { throw error("the expression ends where a value was expected") }
        let c = bytes[pos]
        if c == UInt8(ascii: "(") {
            pos += 1
            try expression()
            guard take(")") else { throw error("expected ')', found \(shown(pos))") }
        } else if isDigit(c) || c == UInt8(ascii: ".") {
            try number()
        } else if c == UInt8(ascii: "`") {
            // A name of any other characters (MJCF allows `robot0:x`), between backquotes.
            let start = pos
            pos += 1
            let nameStart = pos
            while pos < bytes.count, bytes[pos] != UInt8(ascii: "`") { pos += 1 }
            guard pos < bytes.count else { throw RewardError(position: start + 1, "a quoted name has no closing '`'") }
            let name = String(decoding: bytes[nameStart..<pos], as: UTF8.self)
            pos += 1
            guard let i = variables[name] else { throw RewardError(position: start + 1, "unknown name '\(name)'\(suggestion(name))") }
            try emit(.load(i))
        } else if isNameStart(c) {
            let start = pos
            while pos < bytes.count, isNameByte(bytes[pos]) { pos += 1 }
            let name = String(decoding: bytes[start..<pos], as: UTF8.self)
            skipSpace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "(") {
                try call(name, at: start)
            } else if let i = variables[name] {
                try emit(.load(i))
            } else {
                throw RewardError(position: start + 1, "unknown name '\(name)'\(suggestion(name))")
            }
        } else {
            throw error("unexpected \(shown(pos)) where a value was expected (a number, a name, a function or '(')")
        }
    }

    private mutating func call(_ name: String, at start: Int) throws(RewardError) {
        pos += 1  // '('
        var count = 0
        skipSpace()
        if !peek(")") {
            repeat {
                count += 1
                guard count <= RewardExpression.Limits.arguments else {
                    throw error("\(name) takes at most \(RewardExpression.Limits.arguments) arguments")
                }
                try expression()
                // min/max fold pairwise as arguments arrive.
                if count >= 2, name == "min" || name == "max" { try emit(.binary(name == "min" ? .min : .max)) }
            } while take(",")
        }
        guard take(")") else { throw error("expected ',' or ')' in \(name)(...), found \(shown(pos))") }
        let arity: ClosedRange<Int>
        switch name {
        case "min", "max": arity = 1...RewardExpression.Limits.arguments
        case "abs", "exp", "sqrt", "tanh": arity = 1...1
        case "clip": arity = 3...3
        default:
            throw RewardError(position: start + 1, "unknown function '\(name)' (functions: min, max, abs, exp, sqrt, tanh, clip)")
        }
        guard arity.contains(count) else {
            let wanted = arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "at least \(arity.lowerBound)"
            throw RewardError(position: start + 1, "\(name) takes \(wanted) argument\(arity.lowerBound == 1 ? "" : "s"), got \(count)")
        }
        switch name {
        case "abs": try emit(.unary(.abs))
        case "exp": try emit(.unary(.exp))
        case "sqrt": try emit(.unary(.sqrt))
        case "tanh": try emit(.unary(.tanh))
        case "clip": try emit(.clip)
        default: break  // min/max: folded above
        }
    }

    private mutating func number() throws(RewardError) {
        let start = pos
        while pos < bytes.count, isDigit(bytes[pos]) || bytes[pos] == UInt8(ascii: ".") { pos += 1 }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            while pos < bytes.count, isDigit(bytes[pos]) { pos += 1 }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard pos - start <= 64, let value = Double(text), value.isFinite else {
            throw RewardError(position: start + 1, "'\(text.prefix(64))' is not a finite number")
        }
        try emit(.constant(value))
    }

    // MARK: Helpers

    private mutating func emit(_ op: Instruction) throws(RewardError) {
        guard out.count < RewardExpression.Limits.instructions else {
            throw error("the expression is too long: more than \(RewardExpression.Limits.instructions) operations")
        }
        stack += op.stackEffect
        guard stack <= RewardExpression.Limits.depth else {
            throw error("the expression holds more than \(RewardExpression.Limits.depth) pending values (nested too deeply)")
        }
        out.append(op)
    }

    private mutating func enter() throws(RewardError) {
        depth += 1
        guard depth <= RewardExpression.Limits.depth else { throw error("the expression nests deeper than \(RewardExpression.Limits.depth)") }
    }

    private mutating func skipSpace() {
        while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x09 || bytes[pos] == 0x0A || bytes[pos] == 0x0D { pos += 1 }
    }

    private func peek(_ token: String) -> Bool {
        var i = pos
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
        let t = Array(token.utf8)
        return i + t.count <= bytes.count && Array(bytes[i..<(i + t.count)]) == t
    }

    private mutating func take(_ token: String) -> Bool {
        skipSpace()
        let t = Array(token.utf8)
        guard pos + t.count <= bytes.count, Array(bytes[pos..<(pos + t.count)]) == t else { return false }
        pos += t.count
        return true
    }

    private func error(_ message: String) -> RewardError { RewardError(position: min(pos, bytes.count) + 1, message) }

    private func shown(_ at: Int) -> String {
        guard at < bytes.count else { return "the end" }
        let end = min(bytes.count, at + 12)
        return "'" + String(decoding: bytes[at..<end], as: UTF8.self) + (end < bytes.count ? "...'" : "'")
    }

    private func suggestion(_ name: String) -> String {
        let close = names.filter { $0.contains(name) || name.contains($0) }.prefix(5)
        let known = close.isEmpty ? Array(names.prefix(12)) : Array(close)
        return known.isEmpty ? "" : " (\(close.isEmpty ? "names include" : "did you mean"): \(known.joined(separator: ", "))\(close.isEmpty && names.count > 12 ? ", ..." : ""))"
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private func isNameStart(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F }
    private func isNameByte(_ c: UInt8) -> Bool { isNameStart(c) || isDigit(c) || c == 0x2E }
}
