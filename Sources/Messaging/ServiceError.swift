/// An error a service returns to its caller: maps one-to-one onto the wire's `robosim.Error`.
public struct ServiceError: Error, Equatable, CustomStringConvertible, Sendable {
    public typealias Code = Robosim_ErrorCode

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.wireName): \(message)" }

    /// The `robosim.Error` message for the wire.
    public var wire: Robosim_Error {
        var e = Robosim_Error()
        e.code = code
        e.message = message
        return e
    }

    public static func invalidArgument(_ m: String) -> ServiceError { .init(.invalidArgument, m) }
    public static func notFound(_ m: String) -> ServiceError { .init(.notFound, m) }
    public static func malformed(_ m: String) -> ServiceError { .init(.malformed, m) }
    public static func tooLarge(_ m: String) -> ServiceError { .init(.tooLarge, m) }
    public static func failedPrecondition(_ m: String) -> ServiceError { .init(.failedPrecondition, m) }
    public static func internalError(_ m: String) -> ServiceError { .init(.internal, m) }
    public static func unavailable(_ m: String) -> ServiceError { .init(.unavailable, m) }
    public static func deadlineExceeded(_ m: String) -> ServiceError { .init(.deadlineExceeded, m) }
}

extension Robosim_ErrorCode {
    /// The protobuf enum value name (`INVALID_ARGUMENT`).
    public var wireName: String {
        switch self {
        case .unspecified: "ERROR_CODE_UNSPECIFIED"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .notFound: "NOT_FOUND"
        case .malformed: "MALFORMED"
        case .tooLarge: "TOO_LARGE"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .UNRECOGNIZED(let v): "UNRECOGNIZED(\(v))"
        }
    }
}

/// Status frames of a service reply.
public enum ServiceStatus {
    public static let ok: [UInt8] = Array("ok".utf8)
    public static let error: [UInt8] = Array("error".utf8)
}
