/// An immutable map from byte strings (topic names) to values, looked up by a raw buffer without
/// allocating. Rebuilt when the set of keys changes (rarely: on subscribe or unsubscribe).
struct ByteKeyedTable<Value> {
    // Sendable when its values are: it is an immutable value once built.
    private var buckets: [UInt64: [(key: [UInt8], value: Value)]] = [:]

    init(_ dictionary: [String: Value]) {
        for (key, value) in dictionary {
            let bytes = Array(key.utf8)
            buckets[bytes.withUnsafeBytes { TopicTable.hash($0) }, default: []].append((bytes, value))
        }
    }

    func lookup(_ key: UnsafeRawBufferPointer) -> Value? {
        guard let bucket = buckets[TopicTable.hash(key)] else { return nil }
        return bucket.first { $0.key.elementsEqual(key) }?.value
    }
}

/// Strings for type frames, cached by bytes so that a steady stream of one type allocates nothing.
/// Used by one thread.
final class TypeNameCache {
    private var last: [UInt8] = []
    private var lastName = ""

    func name(_ frame: ZMQMessage) -> String {
        frame.withBytes { bytes in
            if !last.elementsEqual(bytes) {
                last = Array(bytes)
                lastName = String(decoding: bytes, as: UTF8.self)
            }
            return lastName
        }
    }
}

extension ByteKeyedTable: Sendable where Value: Sendable {}
