// Writing RGB images as PNG (8-bit truecolor, no interlace): each row gets filter byte 0, the rows are
// deflated with zlib into one IDAT chunk, and every chunk carries its CRC-32.

import AttendTensor
internal import CZlib
import Foundation

/// An 8-bit RGB image, written as PNG.
///
/// ```swift
/// var image = RGBImage(width: 64, height: 32)   // white
/// image.set(10, 5, (255, 0, 0))
/// PixelFont.draw("loss", x: 2, y: 20, on: &image)
/// try image.writePNG(to: "out.png")
/// ```
public struct RGBImage {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = background.0; pixels[3 * i + 1] = background.1; pixels[3 * i + 2] = background.2 }
    }

    public mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 3 * (y * width + x)
        pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
    }

    /// The PNG file bytes.
    public func pngData() throws -> Data {
        var raw = [UInt8]()
        raw.reserveCapacity(height * (1 + 3 * width))
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: pixels[(3 * y * width)..<(3 * (y + 1) * width)])
        }
        var bound = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(bound))
        guard compress2(&compressed, &bound, raw, uLong(raw.count), 6) == Z_OK else { throw AttendError("PNG: zlib compression failed") }
        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func chunk(_ type: String, _ body: [UInt8]) {
            var length = UInt32(body.count).bigEndian
            withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
            let typed = Array(type.utf8) + body
            out.append(contentsOf: typed)
            var crc = UInt32(crc32(0, typed, uInt(typed.count))).bigEndian
            withUnsafeBytes(of: &crc) { out.append(contentsOf: $0) }
        }
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
        chunk("IDAT", Array(compressed[0..<Int(bound)]))
        chunk("IEND", [])
        return out
    }

    /// Writes the image as PNG atomically.
    public func writePNG(to path: String) throws { try AtomicFile.write(try pngData(), to: path) }
}
