import Testing

@testable import Parquet

@Suite("Thrift compact protocol")
struct ThriftTests {
    @Test(
        "varints: seven bits a byte, least significant first",
        arguments: [
            (UInt64(0), [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (300, [0xAC, 0x02]),
            (16_384, [0x80, 0x80, 0x01]), (UInt64.max, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ] as [(UInt64, [UInt8])])
    func varint(value: UInt64, bytes: [UInt8]) {
        var output: [UInt8] = []
        Varint.append(value, to: &output)
        #expect(output == bytes)
    }

    @Test("zigzag interleaves signs")
    func zigzagValues() {
        #expect([0, -1, 1, -2, 2, -64, 64].map(zigzag) == [0, 1, 2, 3, 4, 127, 128])
        #expect(zigzag(.max) == UInt64.max - 1)
        #expect(zigzag(.min) == UInt64.max)
    }

    @Test("short field headers carry the id delta and the type")
    func shortHeaders() {
        var thrift = ThriftWriter()
        thrift.writeStruct {
            $0.field(1, Int32(5))
            $0.field(2, true)
            $0.field(3, false)
            $0.field(4, Int64(-1))
            $0.field(7, "ab")
            $0.field(8, Int16(-3))
        }
        #expect(thrift.bytes == [0x15, 0x0A, 0x11, 0x12, 0x16, 0x01, 0x38, 0x02, 0x61, 0x62, 0x14, 0x05, 0x00])
    }

    @Test("a delta above 15 writes the type, then the id as a zigzag varint")
    func longHeader() {
        var thrift = ThriftWriter()
        thrift.writeStruct {
            $0.field(1, Int32(0))
            $0.field(20, Int64(150))
        }
        #expect(thrift.bytes == [0x15, 0x00, 0x06, 0x28, 0xAC, 0x02, 0x00])
    }

    @Test("nested structs count field ids from zero, and the outer struct goes on from its own last id")
    func nested() {
        var thrift = ThriftWriter()
        thrift.writeStruct {
            $0.field(1) { $0.field(1, Int32(1)) }
            $0.field(2, Int32(2))
            $0.field(3) { _ in }
        }
        #expect(thrift.bytes == [0x1C, 0x15, 0x02, 0x00, 0x15, 0x04, 0x1C, 0x00, 0x00])
    }

    @Test("list headers: size and element type in a byte below 15, else 0xF and a varint size")
    func lists() {
        var thrift = ThriftWriter()
        thrift.writeStruct {
            $0.field(1, i32s: [1, -1, 2])
            $0.field(2, strings: Array(repeating: "x", count: 15))
            $0.field(3, structs: [Int32(7)]) { $0.field(1, $1) }
        }
        let strings: [UInt8] = [0x19, 0xF8, 0x0F] + Array(repeating: [0x01, 0x78], count: 15).joined()
        #expect(thrift.bytes == [0x19, 0x35, 0x02, 0x01, 0x04] + strings + [0x19, 0x1C, 0x15, 0x0E, 0x00, 0x00])
    }

    @Test("a v1 data page header")
    func dataPageHeader() {
        let header = DataPageHeader(uncompressedSize: 100, compressedSize: 50, numValues: 10)
        #expect(
            header.bytes == [
                0x15, 0x00, 0x15, 0xC8, 0x01, 0x15, 0x64, 0x2C,
                0x15, 0x14, 0x15, 0x00, 0x15, 0x06, 0x15, 0x06, 0x00,
                0x00,
            ])
    }

    @Test("schema elements: a string leaf with its logical and converted type")
    func schemaElement() {
        var thrift = ThriftWriter()
        thrift.writeStruct {
            SchemaElement(name: "t", type: .byteArray, repetition: .optional, convertedType: .utf8, logicalType: .string).write(to: &$0)
        }
        // type 6, repetition 1, name "t", converted_type 0, logicalType { STRING {} }
        #expect(thrift.bytes == [0x15, 0x0C, 0x25, 0x02, 0x18, 0x01, 0x74, 0x25, 0x00, 0x4C, 0x1C, 0x00, 0x00, 0x00])
    }
}
