/// The protobuf wire format, for the few messages sim-train writes without generated code
/// (TensorBoard's `Event`, ONNX's `ModelProto`): varints, fixed 32/64-bit values, and
/// length-delimited bytes and submessages.
struct Protobuf {
    var data: [UInt8] = []

    mutating func key(_ field: Int, _ wire: Int) { varintRaw(UInt64(field << 3 | wire)) }

    mutating func varintRaw(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            data.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        data.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ v: UInt64) {
        key(field, 0)
        varintRaw(v)
    }

    mutating func int(_ field: Int, _ v: Int) { varint(field, UInt64(bitPattern: Int64(v))) }

    mutating func double(_ field: Int, _ v: Double) {
        key(field, 1)
        data += (0..<8).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) }
    }

    mutating func float(_ field: Int, _ v: Float) {
        key(field, 5)
        data += (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) }
    }

    mutating func bytes(_ field: Int, _ v: [UInt8]) {
        key(field, 2)
        varintRaw(UInt64(v.count))
        data += v
    }

    mutating func string(_ field: Int, _ v: String) { bytes(field, Array(v.utf8)) }

    mutating func message(_ field: Int, _ build: (inout Protobuf) -> Void) {
        var m = Protobuf()
        build(&m)
        bytes(field, m.data)
    }
}
