/// Per-environment state of a plugin: one slot per env, indexed by `EnvView.index`.
///
/// The server calls a plugin for different envs concurrently but never for the same env twice at
/// once, so reading and writing slot `i` only from calls for env `i` is race-free. That is the
/// invariant that makes this type `Sendable`; do not touch another env's slot.
public final class PerEnv<Value>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<Value>

    /// `count` slots (the configuration's `envCount`), each starting at `initial`.
    public init(count: Int, initial: Value) {
        storage = .allocate(capacity: max(0, count))
        storage.initialize(repeating: initial)
    }

    deinit {
        storage.deinitialize()
        storage.deallocate()
    }

    public var count: Int { storage.count }

    public subscript(env: Int) -> Value {
        get { storage[env] }
        set { storage[env] = newValue }
    }
}
