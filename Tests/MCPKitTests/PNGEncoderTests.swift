import Foundation
import Testing

@testable import MCPKit

@Suite struct PNGEncoderTests {
    /// The PNG of a 2 x 2 RGB image, byte for byte: signature, IHDR, one IDAT of a stored zlib stream,
    /// IEND, with the CRCs and Adler-32 that zlib itself computes for the same bytes.
    @Test func twoByTwoRGB() throws {
        let pixels: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]
        let png = try PNGEncoder.encode(width: 2, height: 2, layout: .rgb, pixels: pixels)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // IHDR: length 13, "IHDR", 2 x 2, depth 8, colour type 2.
        #expect(Array(png[8..<33]) == [0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0, 0xFD, 0xD4, 0x9A, 0x73])
        // IDAT: zlib header, one final stored block of 14 bytes (two rows of filter 0 + 6 bytes), Adler-32.
        let raw: [UInt8] = [0] + pixels[0..<6] + [0] + pixels[6..<12]
        let idat = Array(png[41..<(41 + 2 + 5 + 14 + 4)])
        #expect(Array(idat.prefix(7)) == [0x78, 0x01, 0x01, 14, 0, ~14 & 0xFF, 0xFF])
        #expect(Array(idat[7..<21]) == raw)
        #expect(PNGEncoder.adler32(raw) == 0x1FEE_05FB)  // zlib.adler32 of the same bytes
        #expect(Array(png.suffix(12)) == [0, 0, 0, 0, 73, 69, 78, 68, 0xAE, 0x42, 0x60, 0x82])
    }

    @Test func checksumsMatchReferenceValues() {
        // zlib.crc32(b"123456789") == 0xCBF43926; zlib.adler32(b"Wikipedia") == 0x11E60398.
        #expect(PNGEncoder.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(PNGEncoder.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        // Past the 5552-byte reduction interval.
        let long = [UInt8](repeating: 0xFF, count: 100_000)
        var a: UInt64 = 1, b: UInt64 = 0
        for x in long { a = (a + UInt64(x)) % 65521; b = (b + a) % 65521 }
        #expect(PNGEncoder.adler32(long) == UInt32(b << 16 | a))
    }

    @Test func largeImagesSpanSeveralStoredBlocks() throws {
        // 300 x 300 RGB: 270300 filtered bytes, four full 65535-byte blocks and a last one of 8160.
        let pixels = [UInt8](repeating: 7, count: 300 * 300 * 3)
        let png = try PNGEncoder.encode(width: 300, height: 300, layout: .rgb, pixels: pixels)
        let zlib = PNGEncoder.zlibStored([UInt8](repeating: 1, count: 270_300))
        #expect(zlib.count == 2 + 4 * (5 + 65535) + 5 + 8160 + 4)
        for block in 0..<4 { #expect(zlib[2 + block * (5 + 65535)] == 0) }  // BFINAL 0, BTYPE 00
        let last = 2 + 4 * (5 + 65535)
        #expect(Array(zlib[last..<(last + 5)]) == [1, 0xE0, 0x1F, 0x1F, 0xE0])  // BFINAL 1; LEN 8160, NLEN
        #expect(png.count == 8 + 25 + 12 + zlib.count + 12)
    }

    @Test func rowStrideSkipsPadding() throws {
        // Rows of 2 RGB pixels padded to 8 bytes: the padding never reaches the PNG.
        let padded: [UInt8] = [1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12]
        let png = try PNGEncoder.encode(width: 2, height: 2, layout: .rgb, rowStride: 8, pixels: padded)
        let expected = try PNGEncoder.encode(width: 2, height: 2, layout: .rgb, pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
        #expect(png == expected)
    }

    @Test(arguments: [(0, 1, 3), (1, 0, 3), (2, 2, 11), (20000, 1, 60000)])
    func badSizesAreRefused(width: Int, height: Int, bytes: Int) {
        #expect(throws: PNGEncoder.Failure.self) {
            _ = try PNGEncoder.encode(width: width, height: height, layout: .rgb, pixels: [UInt8](repeating: 0, count: bytes))
        }
    }
}
