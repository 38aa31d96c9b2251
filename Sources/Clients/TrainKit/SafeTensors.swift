import Foundation

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON
/// header naming each tensor's dtype, shape and byte range (plus string metadata under
/// `__metadata__`), then the raw little-endian data.
public enum SafeTensors {
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let values: [Float]
        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The file's bytes: tensors as F32 in the given order, `metadata` as `__metadata__`.
    public static func encode(_ tensors: [Tensor], metadata: [String: String]) throws -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for t in tensors {
            precondition(t.shape.reduce(1, *) == t.values.count, "\(t.name): shape \(t.shape) for \(t.values.count) values")
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.values.count]]
            offset += 4 * t.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for t in tensors {
            t.values.withUnsafeBufferPointer { p in
                for v in p { var bits = v.bitPattern.littleEndian; withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) } }
            }
        }
        return out
    }

    /// Reads a file written by `encode` (F32 tensors): tensors by name, and the metadata.
    public static func decode(_ data: Data) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw TrainError("not a safetensors file: \(bytes.count) bytes") }
        let length = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(bytes.count - 8), length <= 100 << 20 else { throw TrainError("safetensors header of \(length) bytes does not fit") }
        let start = 8 + Int(length)
        guard let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<start])) as? [String: Any] else {
            throw TrainError("safetensors header is not a JSON object")
        }
        var tensors: [String: Tensor] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], entry["dtype"] as? String == "F32", let shape = entry["shape"] as? [Int],
                  shape.count <= 8, shape.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }),
                  let range = entry["data_offsets"] as? [Int], range.count == 2, range[0] >= 0, range[0] <= range[1],
                  range[1] <= bytes.count - start,
                  case let (elements, overflow) = shape.reduce((1, false), { acc, d in
                      let m = acc.0.multipliedReportingOverflow(by: d)
                      return (m.partialValue, acc.1 || m.overflow)
                  }), !overflow, elements <= (range[1] - range[0]) / 4, range[1] - range[0] == 4 * elements else {
                throw TrainError("safetensors tensor '\(name)' is not an F32 tensor inside the file")
            }
            var values = [Float](repeating: 0, count: (range[1] - range[0]) / 4)
            for k in 0..<values.count {
                let at = start + range[0] + 4 * k
                let bits = UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
                values[k] = Float(bitPattern: bits)
            }
            tensors[name] = Tensor(name: name, shape: shape, values: values)
        }
        return (tensors, header["__metadata__"] as? [String: String] ?? [:])
    }
}

/// A training, evaluation or checkpoint problem, in one line.
public struct TrainError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
