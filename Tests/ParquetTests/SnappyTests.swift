import TestSupport
import Foundation
import Testing

@testable import Parquet

@Suite("Snappy")
struct SnappyTests {
    @Test("empty and one-byte inputs: the length, then a literal")
    func tiny() {
        #expect(Snappy.compress([]) == [0x00])
        #expect(Snappy.compress([0x61]) == [0x01, 0x00, 0x61])
    }

    @Test("a repeated byte is a literal and a copy of overlapping offset 1")
    func repeatedByte() {
        // Length 20, literal "a", copy of 19 at offset 1 (tag 10: 18 << 2 | 2, offset 1).
        let compressed = Snappy.compress(Array(repeating: 0x61, count: 20))
        #expect(compressed == [0x14, 0x00, 0x61, 0x4A, 0x01, 0x00])
        #expect(decompress(compressed) == Array(repeating: 0x61, count: 20))
    }

    @Test(
        "round trips",
        arguments: [
            "empty", "short", "text", "zeros", "random", "fragment", "fragment+1", "mixed", "long-literal", "far-match",
        ])
    func roundTrip(input name: String) throws {
        let input = Self.input(name)
        let compressed = Snappy.compress(input)
        #expect(compressed.count <= Snappy.maxCompressedLength(input.count))
        let restored = try #require(decompress(compressed), "\(name) does not decompress")
        #expect(restored.count == input.count)
        #expect(restored == input, "\(name)")
    }

    @Test("repetitive data shrinks")
    func shrinks() {
        let zeros = Self.input("zeros")
        #expect(Snappy.compress(zeros).count < zeros.count / 20)
        let text = Self.input("text")
        #expect(Snappy.compress(text).count < text.count / 4)
        // Floats of a slow signal, as a dataset's actions are.
        var floats: [UInt8] = []
        for step in 0..<10_000 { withUnsafeBytes(of: Float(step / 50) * 0.25) { floats += $0 } }
        #expect(Snappy.compress(floats).count < floats.count / 4)
    }

    @Test("incompressible data grows by little")
    func incompressible() {
        let random = Self.input("random")
        #expect(Snappy.compress(random).count < random.count + random.count / 100 + 16)
    }

    static func input(_ name: String) -> [UInt8] {
        var generator = SplitMix(seed: 42)
        let random = (0..<200_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Array(
            String(repeating: "observation.state action next.reward episode_index frame_index timestamp task ", count: 500).utf8)
        switch name {
        case "empty": return []
        case "short": return Array("hello hello hello".utf8)
        case "text": return text
        case "zeros": return Array(repeating: 0, count: 300_000)
        case "random": return random
        case "fragment": return Array(text.prefix(Snappy.fragmentSize))
        case "fragment+1": return Array((text + text).prefix(Snappy.fragmentSize + 1))
        case "mixed":
            // Alternating stretches of noise and repeats, crossing fragment boundaries.
            var bytes: [UInt8] = []
            for index in 0..<40 {
                bytes += index % 2 == 0 ? Array(random[(index * 3_000)..<(index * 3_000 + 2_500)]) : Array(text.prefix(5_000))
            }
            return bytes
        case "long-literal": return Array(random.prefix(70_000)) + Array(repeating: 7, count: 1_000)
        case "far-match":
            // A block repeated after 40 000 bytes of noise: a copy with a two-byte offset.
            let block = Array(random.prefix(300))
            return block + Array(random[1_000..<41_000]) + block
        default: return []
        }
    }
}

/// A Snappy raw-block decompressor, to check the compressor against: nil when `compressed` is not
/// a valid block.
func decompress(_ compressed: [UInt8]) -> [UInt8]? {
    var position = 0
    guard let length = readVarint(compressed, &position) else { return nil }
    var output: [UInt8] = []
    output.reserveCapacity(Int(length))
    while position < compressed.count {
        let tag = compressed[position]
        position += 1
        switch tag & 0b11 {
        case 0b00:
            var literal = Int(tag >> 2)
            if literal >= 60 {
                let lengthBytes = literal - 59
                guard position + lengthBytes <= compressed.count else { return nil }
                literal = 0
                for index in 0..<lengthBytes { literal |= Int(compressed[position + index]) << (8 * index) }
                position += lengthBytes
            }
            literal += 1
            guard position + literal <= compressed.count else { return nil }
            output += compressed[position..<position + literal]
            position += literal
        case 0b01:
            guard position < compressed.count else { return nil }
            let length = Int(tag >> 2 & 0b111) + 4
            let offset = Int(tag >> 5) << 8 | Int(compressed[position])
            position += 1
            guard copy(length: length, offset: offset, into: &output) else { return nil }
        case 0b10:
            guard position + 2 <= compressed.count else { return nil }
            let length = Int(tag >> 2) + 1
            let offset = Int(compressed[position]) | Int(compressed[position + 1]) << 8
            position += 2
            guard copy(length: length, offset: offset, into: &output) else { return nil }
        default:
            guard position + 4 <= compressed.count else { return nil }
            let length = Int(tag >> 2) + 1
            var offset = 0
            for index in 0..<4 { offset |= Int(compressed[position + index]) << (8 * index) }
            position += 4
            guard copy(length: length, offset: offset, into: &output) else { return nil }
        }
    }
    return output.count == Int(length) ? output : nil
}

/// Copies `length` bytes from `offset` back, byte by byte (the source may overlap what it writes).
private func copy(length: Int, offset: Int, into output: inout [UInt8]) -> Bool {
    guard offset > 0, offset <= output.count else { return false }
    let start = output.count - offset
    for index in 0..<length { output.append(output[start + index]) }
    return true
}
