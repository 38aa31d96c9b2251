import MCP
import Messaging

/// Why a tool call could not be done: bad input, a refusal by the server, a timeout. Goes back to the
/// agent as a tool result with `isError: true` and this message, never as a crash or a protocol error.
public struct ToolFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// A server's refusal, with its code (`INVALID_ARGUMENT: ...`).
    init(_ error: ServiceError) { description = "sim-server: \(error)" }
}

/// A tool call's arguments, read with bounds: every number finite and in its range, every string and
/// list within its size, no unknown names. Each reader throws a `ToolFailure` naming the argument.
public struct ToolArguments: Sendable {
    let values: [String: Value]

    /// Longest string argument accepted anywhere (bytes).
    public static let maxStringBytes = 1024

    /// Refuses names not in `allowed` (a misspelt argument is an error, not silently ignored).
    public init(_ values: [String: Value]?, allowed: Set<String>) throws(ToolFailure) {
        self.values = values ?? [:]
        if let unknown = self.values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ToolFailure("unknown argument '\(Names.quoted(unknown))' (arguments: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    /// True when the argument is present and not null.
    public func has(_ name: String) -> Bool {
        guard let v = values[name] else { return false }
        return !v.isNull
    }

    /// A number in `range` (finite), or `fallback` when absent.
    public func double(_ name: String, in range: ClosedRange<Double>, default fallback: Double? = nil) throws(ToolFailure) -> Double {
        guard has(name) else {
            if let fallback { return fallback }
            throw ToolFailure("missing argument '\(name)' (a number in [\(range.lowerBound), \(range.upperBound)])")
        }
        return try Self.number(values[name]!, name: name, in: range)
    }

    /// An integer in `range`, or `fallback` when absent. A number with a fraction is refused.
    public func int(_ name: String, in range: ClosedRange<Int>, default fallback: Int? = nil) throws(ToolFailure) -> Int {
        guard has(name) else {
            if let fallback { return fallback }
            throw ToolFailure("missing argument '\(name)' (an integer in \(range.lowerBound)...\(range.upperBound))")
        }
        return try Self.integer(values[name]!, name: name, in: range)
    }

    /// A boolean, or `fallback` when absent.
    public func bool(_ name: String, default fallback: Bool) throws(ToolFailure) -> Bool {
        guard has(name) else { return fallback }
        guard case .bool(let b) = values[name]! else { throw ToolFailure("'\(name)' must be true or false") }
        return b
    }

    /// A string of at most `maxBytes` bytes, or `fallback` when absent (nil: optional).
    public func string(_ name: String, maxBytes: Int = maxStringBytes) throws(ToolFailure) -> String? {
        guard has(name) else { return nil }
        guard case .string(let s) = values[name]! else { throw ToolFailure("'\(name)' must be a string") }
        guard s.utf8.count <= maxBytes else { throw ToolFailure("'\(name)' is \(s.utf8.count) bytes; the limit is \(maxBytes)") }
        return s
    }

    /// A list of `count` numbers (finite, each in `range`), or nil when absent.
    public func doubles(_ name: String, count: ClosedRange<Int>, in range: ClosedRange<Double>) throws(ToolFailure) -> [Double]? {
        guard has(name) else { return nil }
        let items = try list(name, count: count)
        var out = [Double]()
        for (k, item) in items.enumerated() { out.append(try Self.number(item, name: "\(name)[\(k)]", in: range)) }
        return out
    }

    /// A list of integers (each in `range`), or nil when absent.
    public func ints(_ name: String, count: ClosedRange<Int>, in range: ClosedRange<Int>, unique: Bool = false) throws(ToolFailure)
        -> [Int]?
    {
        guard has(name) else { return nil }
        let items = try list(name, count: count)
        var out = [Int]()
        for (k, item) in items.enumerated() { out.append(try Self.integer(item, name: "\(name)[\(k)]", in: range)) }
        if unique, Set(out).count != out.count { throw ToolFailure("'\(name)' names an item twice") }
        return out
    }

    /// A list of strings (each at most `maxBytes`), or nil when absent.
    public func strings(_ name: String, count: ClosedRange<Int>, maxBytes: Int = maxStringBytes) throws(ToolFailure) -> [String]? {
        guard has(name) else { return nil }
        let items = try list(name, count: count)
        var out = [String]()
        for (k, item) in items.enumerated() {
            guard case .string(let s) = item else { throw ToolFailure("'\(name)[\(k)]' must be a string") }
            guard s.utf8.count <= maxBytes else { throw ToolFailure("'\(name)[\(k)]' is \(s.utf8.count) bytes; the limit is \(maxBytes)") }
            out.append(s)
        }
        return out
    }

    /// A list of lists of numbers: `outer` inner lists, each of `inner` numbers in `range`.
    public func matrix(_ name: String, outer: ClosedRange<Int>, inner: ClosedRange<Int>, in range: ClosedRange<Double>) throws(ToolFailure)
        -> [[Double]]?
    {
        guard has(name) else { return nil }
        let rows = try list(name, count: outer)
        var out = [[Double]]()
        for (r, row) in rows.enumerated() {
            guard case .array(let items) = row else { throw ToolFailure("'\(name)[\(r)]' must be a list of numbers") }
            guard inner.contains(items.count) else {
                throw ToolFailure("'\(name)[\(r)]' has \(items.count) numbers; expected \(Self.describe(inner))")
            }
            var values = [Double]()
            for (k, item) in items.enumerated() { values.append(try Self.number(item, name: "\(name)[\(r)][\(k)]", in: range)) }
            out.append(values)
        }
        return out
    }

    /// An object of at most `count` entries, or nil when absent.
    public func object(_ name: String, count: ClosedRange<Int>) throws(ToolFailure) -> [String: Value]? {
        guard has(name) else { return nil }
        guard case .object(let o) = values[name]! else { throw ToolFailure("'\(name)' must be an object") }
        guard count.contains(o.count) else { throw ToolFailure("'\(name)' has \(o.count) entries; expected \(Self.describe(count))") }
        return o
    }

    private func list(_ name: String, count: ClosedRange<Int>) throws(ToolFailure) -> [Value] {
        guard case .array(let items) = values[name]! else { throw ToolFailure("'\(name)' must be a list") }
        guard count.contains(items.count) else { throw ToolFailure("'\(name)' has \(items.count) items; expected \(Self.describe(count))") }
        return items
    }

    static func number(_ value: Value, name: String, in range: ClosedRange<Double>) throws(ToolFailure) -> Double {
        let x: Double
        switch value {
        case .int(let i): x = Double(i)
        case .double(let d): x = d
        default: throw ToolFailure("'\(name)' must be a number")
        }
        guard x.isFinite else { throw ToolFailure("'\(name)' must be finite") }
        guard range.contains(x) else { throw ToolFailure("'\(name)' = \(x) is outside [\(range.lowerBound), \(range.upperBound)]") }
        return x
    }

    static func integer(_ value: Value, name: String, in range: ClosedRange<Int>) throws(ToolFailure) -> Int {
        let i: Int
        switch value {
        case .int(let v): i = v
        case .double(let d) where d.isFinite && d.rounded() == d && abs(d) < 9e15: i = Int(d)
        default: throw ToolFailure("'\(name)' must be an integer")
        }
        guard range.contains(i) else { throw ToolFailure("'\(name)' = \(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    static func describe(_ r: ClosedRange<Int>) -> String {
        r.lowerBound == r.upperBound ? "\(r.lowerBound)" : "\(r.lowerBound) to \(r.upperBound)"
    }
}
