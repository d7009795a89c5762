// Images in and out: PNG through libpng (1-16 bits, grey, alpha, palette, interlaced) and JPEG through libjpeg
// (baseline and progressive, grey and colour; written at a chosen quality). Pixels are Float32 planes (CHW) with
// values in [0, 1], the layout convolutions read. Decoders refuse a declared size over `Image.maxPixels` (or more
// pixels than the file's bytes could encode) before allocating.

import AttendTensor
import CAttendImageCodecs
import Foundation

/// A picture as channel planes of Float32 in [0, 1]: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels.
///
/// ```swift
/// let cat = try Image.read("chelsea.png").rgb()
/// let input = cat.resized(shorterSide: 256).centerCropped(width: 224, height: 224)
///     .tensor(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])    // [3, 224, 224]
/// try cat.flippedHorizontally().write(to: "flipped.jpg", quality: 90)
/// ```
public struct Image: Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// channels x height x width values, plane after plane.
    public var pixels: [Float]

    /// The most pixels a decoder accepts: 2^28 (16,384 x 16,384), past Pillow's decompression-bomb limit.
    public static let maxPixels = 1 << 28

    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(width > 0 && height > 0 && (1...4).contains(channels), "Image: \(width) x \(height) x \(channels) is not an image")
        precondition(pixels.count == width * height * channels, "Image: \(pixels.count) values for \(width) x \(height) x \(channels)")
        (self.width, self.height, self.channels, self.pixels) = (width, height, channels, pixels)
    }

    /// An image from a [C, H, W] tensor; values are clamped to [0, 1].
    public init(tensor: Tensor) {
        precondition(tensor.rank == 3 && (1...4).contains(tensor.shape[0]), "Image(tensor:) needs [C, H, W] with 1-4 channels, got \(tensor.shape)")
        self.init(width: tensor.shape[2], height: tensor.shape[1], channels: tensor.shape[0],
                  pixels: tensor.toArray().map { Swift.min(Swift.max($0, 0), 1) })
    }

    /// The pixel planes as a [C, H, W] tensor, each channel normalized as (x - mean) / std when given.
    public func tensor(mean: [Float]? = nil, std: [Float]? = nil) -> Tensor {
        var values = pixels
        if let mean, let std {
            precondition(mean.count == channels && std.count == channels, "Image.tensor: \(channels) channels need as many means and stds")
            let plane = width * height
            for c in 0..<channels {
                let (m, s) = (mean[c], 1 / std[c])
                for i in (c * plane)..<((c + 1) * plane) { values[i] = (values[i] - m) * s }
            }
        }
        return Tensor(values, shape: [channels, height, width])
    }

    /// Three colour channels: grey is repeated, alpha dropped (as Pillow's `convert("RGB")`).
    public func rgb() -> Image {
        let plane = width * height
        switch channels {
        case 3: return self
        case 4: return Image(width: width, height: height, channels: 3, pixels: Array(pixels[0..<(3 * plane)]))
        default:
            let grey = pixels[0..<plane]
            return Image(width: width, height: height, channels: 3, pixels: Array(grey) + Array(grey) + Array(grey))
        }
    }

    // MARK: Reading

    /// Reads a PNG or JPEG file (chosen by its first bytes, not its name).
    public static func read(_ path: String, maxPixels: Int = Image.maxPixels) throws -> Image {
        let data = try MappedFile.contents(of: path)
        return try decode(data, source: path, maxPixels: maxPixels)
    }

    /// Decodes PNG or JPEG bytes; `source` names them in errors.
    public static func decode(_ data: Data, source: String, maxPixels: Int = Image.maxPixels) throws -> Image {
        let isPNG = data.starts(with: [0x89, 0x50, 0x4E, 0x47])
        let isJPEG = data.starts(with: [0xFF, 0xD8])
        guard isPNG || isJPEG else {
            throw AttendError("\(source): not an image Attend reads (PNG or JPEG), judged by its first bytes")
        }
        // A compressed stream cannot expand without bound: deflate stays under 1,032:1 and a JPEG needs at least
        // about a bit per 8 x 8 block, so the header's size must also fit what the file's bytes could hold.
        let byBytes = isPNG ? (data.count + 1024) * 1032 : (data.count + 1024) * 512
        let limit = Swift.min(maxPixels, byBytes)
        var image = attend_image()
        let status = data.withUnsafeBytes { raw in
            let p = raw.bindMemory(to: UInt8.self).baseAddress!
            return isPNG ? attend_png_decode(p, raw.count, limit, &image) : attend_jpeg_decode(p, raw.count, limit, &image)
        }
        defer { attend_image_free(&image) }
        let message = withUnsafeBytes(of: image.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard status == 0 else { throw AttendError("\(source): cannot decode \(isPNG ? "PNG" : "JPEG"): \(message)") }
        let (w, h, c) = (image.width, image.height, Int(image.channels))
        let plane = w * h
        var pixels = [Float](repeating: 0, count: plane * c)
        pixels.withUnsafeMutableBufferPointer { out in
            if image.bit_depth == 16, let src = image.pixels16 {
                let scale: Float = 1 / 65535
                for i in 0..<plane { for ch in 0..<c { out[ch * plane + i] = Float(src[i * c + ch]) * scale } }
            } else if let src = image.pixels8 {
                let scale: Float = 1 / 255
                for i in 0..<plane { for ch in 0..<c { out[ch * plane + i] = Float(src[i * c + ch]) * scale } }
            }
        }
        return Image(width: w, height: h, channels: c, pixels: pixels)
    }

    // MARK: Writing

    /// The image as 8-bit samples, interleaved (what encoders take).
    public func interleaved8() -> [UInt8] {
        let plane = width * height
        var out = [UInt8](repeating: 0, count: plane * channels)
        for i in 0..<plane {
            for c in 0..<channels { out[i * channels + c] = UInt8((Swift.min(Swift.max(pixels[c * plane + i], 0), 1) * 255).rounded()) }
        }
        return out
    }

    /// PNG bytes (8 or 16 bits per sample).
    public func pngData(bitDepth: Int = 8) throws -> Data {
        precondition(bitDepth == 8 || bitDepth == 16, "pngData: bitDepth must be 8 or 16")
        if bitDepth == 8 {
            let samples = interleaved8()
            return try encode { out, size, error, errorSize in
                samples.withUnsafeBufferPointer { p in attend_png_encode(p.baseAddress, width, height, Int32(channels), 8, out, size, error, errorSize) }
            }
        }
        let plane = width * height
        var samples = [UInt16](repeating: 0, count: plane * channels)
        for i in 0..<plane {
            for c in 0..<channels { samples[i * channels + c] = UInt16((Swift.min(Swift.max(pixels[c * plane + i], 0), 1) * 65535).rounded()) }
        }
        return try encode { out, size, error, errorSize in
            samples.withUnsafeBytes { p in
                attend_png_encode(p.bindMemory(to: UInt8.self).baseAddress, width, height, Int32(channels), 16, out, size, error, errorSize)
            }
        }
    }

    /// JPEG bytes at `quality` (1-100); grey stays grey, alpha is dropped.
    public func jpegData(quality: Int = 90, progressive: Bool = false) throws -> Data {
        precondition((1...100).contains(quality), "jpegData: quality must be 1...100, got \(quality)")
        let source = channels == 1 || channels == 3 ? self : (channels == 2 ? Image(width: width, height: height, channels: 1, pixels: Array(pixels[0..<(width * height)])) : rgb())
        let samples = source.interleaved8()
        return try encode { out, size, error, errorSize in
            samples.withUnsafeBufferPointer { p in
                attend_jpeg_encode(p.baseAddress, width, height, Int32(source.channels), Int32(quality), progressive ? 1 : 0, out, size, error, errorSize)
            }
        }
    }

    /// Writes PNG or JPEG by the file's extension, through a temporary file renamed into place.
    public func write(to path: String, quality: Int = 90) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        let data: Data
        switch ext {
        case "png": data = try pngData()
        case "jpg", "jpeg": data = try jpegData(quality: quality)
        default: throw AttendError("\(path): the extension '.\(ext)' is not an image format Attend writes (.png, .jpg, .jpeg)")
        }
        try AtomicFile.write(data, to: path)
    }

    private func encode(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>, Int) -> Int32) throws -> Data {
        var buffer: UnsafeMutablePointer<UInt8>?
        var size = 0
        var error = [CChar](repeating: 0, count: 200)
        let status = error.withUnsafeMutableBufferPointer { e in body(&buffer, &size, e.baseAddress!, e.count) }
        defer { attend_buffer_free(buffer) }
        guard status == 0, let buffer else {
            throw AttendError("cannot encode a \(width) x \(height) image: \(String(cString: error))")
        }
        return Data(bytes: buffer, count: size)
    }
}
