import Foundation

/// A value as the pyarrow helper sends it: strings (floats as bit patterns, integers in decimal,
/// text), booleans, and arrays of those.
indirect enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case string(String)
    case array([JSONValue])
    case null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else {
            self = .array(try container.decode([JSONValue].self))
        }
    }

    /// What `JSONSerialization` parsed.
    init(parsed value: Any) throws {
        switch value {
        case let text as String: self = .string(text)
        case let items as [Any]: self = .array(try items.map(JSONValue.init(parsed:)))
        case is NSNull: self = .null
        // The helper sends no numbers (integers cross as strings), so a number here is a boolean.
        case let flag as Bool: self = .bool(flag)
        default: throw PyArrowFailure("unexpected JSON value \(value)")
        }
    }

    var description: String {
        switch self {
        case .bool(let value): "\(value)"
        case .string(let value): "\"\(value)\""
        case .array(let values): "[\(values.map(\.description).joined(separator: ", "))]"
        case .null: "null"
        }
    }

    var array: [JSONValue]? {
        if case .array(let values) = self { values } else { nil }
    }

    var string: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// Where `self` first differs from `expected` (`[12][0]: 3f800000, expected 40000000`), or nil
    /// when they are equal: a short message for large columns.
    func firstDifference(from expected: JSONValue, at path: String = "") -> String? {
        switch (self, expected) {
        case (.array(let values), .array(let expectedValues)):
            for (index, (value, expectedValue)) in zip(values, expectedValues).enumerated() {
                if let difference = value.firstDifference(from: expectedValue, at: "\(path)[\(index)]") { return difference }
            }
            return values.count == expectedValues.count
                ? nil : "\(path): \(values.count) items, expected \(expectedValues.count)"
        default:
            return self == expected ? nil : "\(path): \(self), expected \(expected)"
        }
    }
}

/// Values the tests write, as the pyarrow helper reports them, and back.
protocol PyArrowValue {
    var json: JSONValue { get }
    init?(json: JSONValue)
}

extension Bool: PyArrowValue {
    var json: JSONValue { .bool(self) }
    init?(json: JSONValue) {
        guard case .bool(let value) = json else { return nil }
        self = value
    }
}

extension Int64: PyArrowValue {
    var json: JSONValue { .string(String(self)) }
    init?(json: JSONValue) {
        guard let value = json.string.flatMap({ Int64($0) }) else { return nil }
        self = value
    }
}

extension Float: PyArrowValue {
    /// NaN as Python's `struct.pack("<f")` of it: the quiet NaN without payload.
    var json: JSONValue { .string(hex(isNaN ? Float.nan.bitPattern : bitPattern, digits: 8)) }
    init?(json: JSONValue) {
        guard let value = json.string.flatMap({ UInt32($0, radix: 16) }) else { return nil }
        self.init(bitPattern: value)
    }
}

extension Double: PyArrowValue {
    var json: JSONValue { .string(hex(isNaN ? Double.nan.bitPattern : bitPattern, digits: 16)) }
    init?(json: JSONValue) {
        guard let value = json.string.flatMap({ UInt64($0, radix: 16) }) else { return nil }
        self.init(bitPattern: value)
    }
}

extension String: PyArrowValue {
    var json: JSONValue { .string(self) }
    init?(json: JSONValue) {
        guard let value = json.string else { return nil }
        self = value
    }
}

extension Array: PyArrowValue where Element: PyArrowValue {
    var json: JSONValue { .array(map(\.json)) }
    init?(json: JSONValue) {
        guard let items = json.array else { return nil }
        let values = items.compactMap(Element.init(json:))
        guard values.count == items.count else { return nil }
        self = values
    }
}

private func hex(_ value: some BinaryInteger, digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}
