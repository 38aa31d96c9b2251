import Foundation

/// A minimal PNG writer for camera frames: 8-bit grayscale, RGB or RGBA, filter 0 on every row, and
/// the zlib stream made of stored (uncompressed) deflate blocks, with its Adler-32 and each chunk's
/// CRC-32 (PNG spec, 2nd ed.; RFC 1950 and 1951). No compression: a 128 x 128 RGB frame is ~49 KB.
/// Pure functions, callable from any thread.
public enum PNGEncoder {
    /// The pixel layouts it writes, with their PNG colour type and bytes per pixel.
    public enum Layout: Sendable {
        case gray, rgb, rgba

        var colorType: UInt8 {
            switch self {
            case .gray: 0
            case .rgb: 2
            case .rgba: 6
            }
        }

        /// Bytes per pixel.
        public var channels: Int {
            switch self {
            case .gray: 1
            case .rgb: 3
            case .rgba: 4
            }
        }
    }

    /// Why pixels could not be encoded.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Largest width or height accepted (pixels).
    public static let maxSide = 16384

    /// Encodes `height` rows of `width` pixels, each row starting `rowStride` bytes after the previous
    /// one in `pixels` (at least `width x channels`; an image's `step`).
    public static func encode(width: Int, height: Int, layout: Layout, rowStride: Int? = nil, pixels: some Collection<UInt8>)
        throws(Failure) -> [UInt8]
    {
        guard (1...maxSide).contains(width), (1...maxSide).contains(height) else {
            throw Failure(description: "image size \(width) x \(height) is outside 1...\(maxSide)")
        }
        let rowBytes = width * layout.channels
        let stride = rowStride ?? rowBytes
        guard stride >= rowBytes else { throw Failure(description: "row stride \(stride) is shorter than a row (\(rowBytes) bytes)") }
        guard pixels.count >= stride * (height - 1) + rowBytes else {
            throw Failure(description: "\(pixels.count) pixel bytes; \(width) x \(height) needs \(stride * (height - 1) + rowBytes)")
        }
        let source = Array(pixels)

        // The filtered scanlines: a 0 (filter "None") before each row.
        var raw = [UInt8]()
        raw.reserveCapacity((rowBytes + 1) * height)
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: source[(y * stride)..<(y * stride + rowBytes)])
        }

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, layout.colorType, 0, 0, 0]  // bit depth, colour type, deflate, adaptive filters, no interlace
        appendChunk("IHDR", header, to: &png)
        appendChunk("IDAT", zlibStored(raw), to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951, BTYPE 00) holding `data`.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // deflate, 32 KiB window; no preset dictionary; (0x7801 % 31 == 0)
        out.reserveCapacity(data.count + data.count / 65535 * 5 + 11)
        var offset = 0
        repeat {
            let length = min(65535, data.count - offset)
            let last = offset + length == data.count
            out.append(last ? 1 : 0)
            out.append(UInt8(length & 0xFF))
            out.append(UInt8(length >> 8))
            out.append(UInt8(~length & 0xFF))
            out.append(UInt8((~length >> 8) & 0xFF))
            out.append(contentsOf: data[offset..<(offset + length)])
            offset += length
        } while offset < data.count
        out.appendBigEndian(adler32(data))
        return out
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        png.appendBigEndian(UInt32(data.count))
        let typeAndData = Array(type.utf8) + data
        png += typeAndData
        png.appendBigEndian(crc32(typeAndData))
    }

    /// Adler-32 (RFC 1950).
    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        // 5552 bytes is the most that can be summed before the 32-bit sums must be reduced.
        var index = 0
        while index < data.count {
            let end = min(index + 5552, data.count)
            for k in index..<end {
                a &+= UInt32(data[k])
                b &+= a
            }
            a %= 65521
            b %= 65521
            index = end
        }
        return b << 16 | a
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 as PNG (and zlib, gzip) compute it.
    static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in data { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

extension [UInt8] {
    fileprivate mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(value >> 24))
        append(UInt8((value >> 16) & 0xFF))
        append(UInt8((value >> 8) & 0xFF))
        append(UInt8(value & 0xFF))
    }
}
