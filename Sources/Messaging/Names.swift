/// ROS 2 name rules for topics, services and message types, as RoboSim applies them on the wire.
public enum Names {
    /// Longest topic or service name accepted, in bytes.
    /// What a client sent, as error messages quote it: at most 80 characters.
    public static func quoted(_ text: String) -> String { text.count > 80 ? text.prefix(80) + "..." : text }

    public static let maxNameLength = 256

    /// Why a name was refused.
    public struct Violation: Error, Equatable, CustomStringConvertible {
        public let name: String
        public let reason: String
        public var description: String { "invalid name '\(Names.quoted(name))': \(reason)" }
    }

    /// Checks a fully qualified topic or service name: `/` followed by tokens of `[A-Za-z0-9_]`
    /// separated by single `/`; no token starts with a digit; no `__`; no trailing `/`.
    public static func validateTopic(_ name: String) throws(Violation) {
        try validateTopic(bytes: Array(name.utf8), text: name)
    }

    /// True when `name` is a valid fully qualified topic or service name.
    public static func isValidTopic(_ name: String) -> Bool {
        (try? validateTopic(name)) != nil
    }

    /// Checks a name given as raw bytes (what the hub sees on the wire).
    public static func isValidTopic(bytes: UnsafeRawBufferPointer) -> Bool {
        topicProblem(bytes) == nil
    }

    static func validateTopic(bytes: [UInt8], text: String) throws(Violation) {
        if let reason = bytes.withUnsafeBytes({ topicProblem($0) }) { throw Violation(name: text, reason: reason) }
    }

    private static func topicProblem(_ b: UnsafeRawBufferPointer) -> String? {
        if b.isEmpty { return "empty" }
        if b.count > maxNameLength { return "longer than \(maxNameLength) bytes" }
        if b[0] != UInt8(ascii: "/") { return "must start with '/'" }
        if b.count == 1 { return "'/' alone is not a topic" }
        if b[b.count - 1] == UInt8(ascii: "/") { return "must not end with '/'" }
        var tokenStart = true
        var previous: UInt8 = 0
        for i in 1..<b.count {
            let c = b[i]
            if c == UInt8(ascii: "/") {
                if tokenStart { return "empty token ('//')" }
                tokenStart = true
            } else if isAlnum(c) || c == UInt8(ascii: "_") {
                if tokenStart && isDigit(c) { return "a token must not start with a digit" }
                if c == UInt8(ascii: "_") && previous == UInt8(ascii: "_") { return "must not contain '__'" }
                tokenStart = false
            } else {
                return "character '\(printable(c))' not allowed (only A-Z a-z 0-9 _ /)"
            }
            previous = c
        }
        return nil
    }

    /// Checks a type name `package/msg/Name` or `package/srv/Name`: package lower snake case,
    /// Name upper camel case.
    public static func validateType(_ name: String) throws(Violation) {
        if let reason = Array(name.utf8).withUnsafeBytes({ typeProblem($0) }) { throw Violation(name: name, reason: reason) }
    }

    /// True when the raw bytes are a valid type name.
    public static func isValidType(bytes: UnsafeRawBufferPointer) -> Bool { typeProblem(bytes) == nil }

    private static func typeProblem(_ b: UnsafeRawBufferPointer) -> String? {
        if b.isEmpty || b.count > maxNameLength { return "length must be 1...\(maxNameLength)" }
        let parts = b.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if parts.count != 3 { return "expected package/msg/Name" }
        let package = parts[0], kind = parts[1], message = parts[2]
        guard let p0 = package.first, isLower(p0), package.allSatisfy({ isLower($0) || isDigit($0) || $0 == UInt8(ascii: "_") })
        else { return "package must be lower snake case" }
        if !(kind.elementsEqual("msg".utf8) || kind.elementsEqual("srv".utf8)) { return "middle part must be 'msg' or 'srv'" }
        guard let m0 = message.first, isUpper(m0), message.allSatisfy({ isAlnum($0) }) else { return "message name must be UpperCamelCase" }
        return nil
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    private static func isLower(_ c: UInt8) -> Bool { c >= 97 && c <= 122 }
    private static func isUpper(_ c: UInt8) -> Bool { c >= 65 && c <= 90 }
    private static func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || isLower(c) || isUpper(c) }
    private static func printable(_ c: UInt8) -> String { c >= 32 && c < 127 ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16) }

    /// The per-environment namespace `/env_<i>`.
    public static func env(_ index: Int) -> String { "/env_\(index)" }
}
