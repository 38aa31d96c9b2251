/// A reward expression (CONTRACT.md, "Reward expressions"): arithmetic over named values, compiled
/// once into a flat program that evaluates in bounded time with no allocation. Never code: no loops,
/// no calls beyond the fixed functions, no I/O.
///
/// Grammar (precedence low to high; comparisons and logic give 1 or 0):
///
///     expr    := or ('?' expr ':' expr)?
///     or      := and ('||' and)*
///     and     := cmp ('&&' cmp)*
///     cmp     := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)?
///     sum     := product (('+' | '-') product)*
///     product := unary (('*' | '/') unary)*
///     unary   := ('-' | '!') unary | power
///     power   := primary ('^' unary)?
///     primary := number | name | function '(' expr (',' expr)* ')' | '(' expr ')'
///
/// Functions: `min(a, b, ...)`, `max(a, b, ...)`, `abs(x)`, `exp(x)`, `sqrt(x)`, `tanh(x)`,
/// `clip(x, lo, hi)`. Names: letters, digits, `_` and `.`, not starting with a digit, or any other
/// characters between backquotes (`` `robot0:x` ``); each must be one of the variables the
/// expression is compiled against.
public struct RewardExpression: Sendable, Equatable, CustomStringConvertible {
    /// The source text.
    public let source: String
    /// The variables the expression reads (indices into the compile-time list, ascending).
    public let used: [Int]
    let program: [Instruction]
    /// Largest stack the program needs.
    let stackSize: Int

    /// Limits that bound every expression's size and cost.
    public enum Limits {
        /// Bytes of source.
        public static let sourceBytes = 4096
        /// Instructions (each one evaluation step): the cost of one evaluation.
        public static let instructions = 512
        /// Nesting depth (parentheses, operators, arguments) and evaluation stack.
        public static let depth = 64
        /// Arguments of `min`/`max`.
        public static let arguments = 32
    }

    /// Parses and checks `source` against `variables` (the names it may read, by index).
    public init(_ source: String, variables: [String]) throws(RewardError) {
        guard source.utf8.count <= Limits.sourceBytes else {
            throw RewardError(position: Limits.sourceBytes + 1, "the expression has \(source.utf8.count) bytes; the limit is \(Limits.sourceBytes)")
        }
        var index: [String: Int] = [:]
        for (i, name) in variables.enumerated() where index[name] == nil { index[name] = i }
        var parser = Parser(bytes: Array(source.utf8), variables: index, names: variables)
        program = try parser.parseAll()
        self.source = source
        used = Array(Set(program.compactMap { if case .load(let i) = $0 { i } else { nil } })).sorted()
        stackSize = try Self.checkStack(program)
    }

    public var description: String { source }

    /// The names a task's reward expressions read, in the order the server binds them: the reward
    /// terms (raw values) and observations by their own names, `term.`, `obs.` and `action.`
    /// prefixed names, then `reward` (the task's weighted sum), `success` and `terminated`.
    public static func variables(terms: [String], observations: [String], actions: [String]) -> [String] {
        terms + observations + terms.map { "term." + $0 } + observations.map { "obs." + $0 }
            + actions.map { "action." + $0 } + ["reward", "success", "terminated"]
    }

    /// The grammar, functions and limits, as prompts and documentation give them.
    public static let grammar = """
        expr    := or ('?' expr ':' expr)?            -- c ? a : b
        or      := and ('||' and)*                    -- logic and comparisons give 1 or 0
        and     := cmp ('&&' cmp)*
        cmp     := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)?   -- no chains: a < b && b < c
        sum     := product (('+' | '-') product)*
        product := unary (('*' | '/') unary)*
        unary   := ('-' | '!') unary | power
        power   := primary ('^' unary)?               -- right-associative; -2^2 is -4
        primary := number | name | function '(' expr (',' expr)* ')' | '(' expr ')'
        Functions: min(a, b, ...) and max(a, b, ...) (1 to 32 arguments), abs(x), exp(x), sqrt(x), tanh(x), clip(x, lo, hi).
        Names: letters, digits, '_' and '.', not starting with a digit; any other name between backquotes.
        Limits: \(Limits.sourceBytes) bytes, \(Limits.instructions) operations, nesting \(Limits.depth). A value that is not finite counts as 0.
        """

    /// The stack depth the program reaches (also proves it well formed).
    private static func checkStack(_ program: [Instruction]) throws(RewardError) -> Int {
        var depth = 0, deepest = 0
        for op in program {
            depth += op.stackEffect
            deepest = max(deepest, depth)
        }
        guard depth == 1, deepest <= Limits.depth else { throw RewardError(position: 1, "the expression nests deeper than \(Limits.depth)") }
        return deepest
    }

    /// The value for `values` (indexed like the compile-time variables). Not finite (a division by
    /// zero, `sqrt(-1)`): 0. NaN passes through `min`, `max` and `clip` whatever the argument order.
    public func evaluate(_ values: UnsafeBufferPointer<Double>) -> Double {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: max(1, stackSize)) { stack in
            var top = -1
            for op in program {
                switch op {
                case .constant(let c):
                    top += 1
                    stack[top] = c
                case .load(let i):
                    top += 1
                    stack[top] = values[i]
                case .unary(let f):
                    stack[top] = f.apply(stack[top])
                case .binary(let f):
                    let b = stack[top]
                    top -= 1
                    stack[top] = f.apply(stack[top], b)
                case .clip:
                    let hi = stack[top], lo = stack[top - 1]
                    top -= 2
                    let x = stack[top]
                    stack[top] = x.isNaN || lo.isNaN || hi.isNaN ? .nan : min(max(x, lo), hi)
                case .select:
                    let otherwise = stack[top], then = stack[top - 1]
                    top -= 2
                    stack[top] = stack[top] != 0 ? then : otherwise
                }
            }
            let v = stack[0]
            return v.isFinite ? v : 0
        }
    }

    /// Convenience for arrays.
    public func evaluate(_ values: [Double]) -> Double { values.withUnsafeBufferPointer { evaluate($0) } }
}

/// A reward expression that cannot be used: the 1-based byte position in the source and why.
public struct RewardError: Error, Sendable, Equatable, CustomStringConvertible {
    public let position: Int
    public let message: String
    public init(position: Int, _ message: String) {
        self.position = position
        self.message = message
    }
    public var description: String { "at \(position): \(message)" }
}

enum Instruction: Sendable, Equatable {
    case constant(Double)
    case load(Int)
    case unary(Unary)
    case binary(Binary)
    /// x lo hi → clip(x, lo, hi)
    case clip
    /// c a b → c != 0 ? a : b
    case select

    var stackEffect: Int {
        switch self {
        case .constant, .load: 1
        case .unary: 0
        case .binary: -1
        case .clip, .select: -2
        }
    }

    enum Unary: Sendable, Equatable {
        case negate, not, abs, exp, sqrt, tanh
        func apply(_ x: Double) -> Double {
            switch self {
            case .negate: -x
            case .not: x == 0 ? 1 : 0
            case .abs: Swift.abs(x)
            case .exp: RewardMath.exp(x)
            case .sqrt: x.squareRoot()
            case .tanh: RewardMath.tanh(x)
            }
        }
    }

    enum Binary: Sendable, Equatable {
        case add, subtract, multiply, divide, power, min, max
        case less, lessEqual, greater, greaterEqual, equal, notEqual, and, or
        func apply(_ a: Double, _ b: Double) -> Double {
            switch self {
            case .add: a + b
            case .subtract: a - b
            case .multiply: a * b
            case .divide: a / b
            case .power: RewardMath.pow(a, b)
            case .min: a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
            case .max: a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
            case .less: a < b ? 1 : 0
            case .lessEqual: a <= b ? 1 : 0
            case .greater: a > b ? 1 : 0
            case .greaterEqual: a >= b ? 1 : 0
            case .equal: a == b ? 1 : 0
            case .notEqual: a != b ? 1 : 0
            case .and: a != 0 && b != 0 ? 1 : 0
            case .or: a != 0 || b != 0 ? 1 : 0
            }
        }
    }
}
