/// Per-topic counters of the hub, looked up by the raw topic frame without allocating.
/// Owned by the hub thread.
struct TopicTable {
    struct Entry {
        let name: String
        let nameBytes: [UInt8]
        var typeBytes: [UInt8]
        var messages: UInt64 = 0
        var bytes: UInt64 = 0
        var lastMessages: UInt64 = 0
        var lastBytes: UInt64 = 0
        var rateHz: Double = 0
        var bandwidth: Double = 0
    }

    private(set) var entries: [Entry] = []
    /// Topics recorded.
    var count: Int { entries.count }
    private var buckets: [UInt64: [Int]] = [:]
    private var lastIndex = -1

    /// Index of the entry for `name`, or nil.
    mutating func index(of name: UnsafeRawBufferPointer) -> Int? {
        if lastIndex >= 0, entries[lastIndex].nameBytes.elementsEqual(name) { return lastIndex }
        guard let candidates = buckets[Self.hash(name)] else { return nil }
        for i in candidates where entries[i].nameBytes.elementsEqual(name) {
            lastIndex = i
            return i
        }
        return nil
    }

    /// Adds an entry (the caller has validated the names) and returns its index.
    mutating func insert(name: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer) -> Int {
        let bytes = Array(name)
        entries.append(Entry(name: String(decoding: bytes, as: UTF8.self), nameBytes: bytes, typeBytes: Array(type)))
        let i = entries.count - 1
        buckets[Self.hash(name), default: []].append(i)
        lastIndex = i
        return i
    }

    /// Counts one forwarded message of `bytes` payload bytes.
    mutating func count(_ i: Int, bytes: Int) {
        entries.withUnsafeMutableBufferPointer { e in
            e[i].messages &+= 1
            e[i].bytes &+= UInt64(bytes)
        }
    }

    subscript(i: Int) -> Entry {
        get { entries[i] }
        _modify { yield &entries[i] }
    }

    /// Updates rates over the `dt` seconds since the previous call.
    mutating func updateRates(dt: Double) {
        guard dt > 0 else { return }
        for i in entries.indices {
            entries[i].rateHz = Double(entries[i].messages - entries[i].lastMessages) / dt
            entries[i].bandwidth = Double(entries[i].bytes - entries[i].lastBytes) / dt
            entries[i].lastMessages = entries[i].messages
            entries[i].lastBytes = entries[i].bytes
        }
    }

    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
