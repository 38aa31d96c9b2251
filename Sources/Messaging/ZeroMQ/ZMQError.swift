import CZeroMQ

/// A libzmq call failed: `errno` and libzmq's text for it.
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    /// The errno value libzmq reported (`EAGAIN`, `ETERM`, ...).
    public let code: Int32
    /// What the call was doing.
    public let operation: String

    init(_ operation: String, code: Int32 = zmq_errno()) {
        self.code = code
        self.operation = operation
    }

    public var description: String {
        "\(operation): \(String(cString: zmq_strerror(code)))"
    }

    /// True when a non-blocking call would have blocked.
    public var wouldBlock: Bool { code == EAGAIN }
    /// True when the context is being terminated.
    public var terminated: Bool { code == ETERM }
}
