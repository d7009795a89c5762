// Geometry and resampling: resize (Pillow's separable convolution: the filter widened by the scale factor when
// shrinking, which is the antialiasing), crop, centre crop, flips. Resizing reproduces Pillow's arithmetic for 8-bit
// images, rounding to whole levels between the horizontal and the vertical pass as Pillow does, so the result is
// within 1/255 of Pillow's. Gaussian blur as scipy's `ndimage.gaussian_filter` with repeated edges.

import AttendTensor
import Foundation

extension Image {
    public enum Filter: String, CaseIterable, Sendable {
        case nearest, bilinear, bicubic

        var support: Double {
            switch self {
            case .nearest: return 0.5
            case .bilinear: return 1
            case .bicubic: return 2
            }
        }

        func weight(_ x: Double) -> Double {
            switch self {
            case .nearest:
                return 1  // one tap (see coefficients)
            case .bilinear:
                let a = Swift.abs(x)
                return a < 1 ? 1 - a : 0
            case .bicubic:
                // Keys' cubic with a = -0.5, as Pillow and PIL's BICUBIC.
                let a = -0.5, t = Swift.abs(x)
                if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
                if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
                return 0
            }
        }
    }

    /// Resized to width x height. Shrinking widens the filter by the scale factor (antialiasing), as Pillow does.
    /// `roundToLevels` rounds to 1/255 steps after each pass, as Pillow does on 8-bit images (the default, since
    /// decoded photos are 8-bit); false keeps full Float32 precision.
    public func resized(width newWidth: Int, height newHeight: Int, filter: Filter = .bicubic, roundToLevels: Bool = true) -> Image {
        precondition(newWidth > 0 && newHeight > 0, "resized: target size \(newWidth) x \(newHeight) must be positive")
        var current = self
        if newWidth != width {
            current = current.resampled(axisIsWidth: true, to: newWidth, filter: filter, roundToLevels: roundToLevels)
        }
        if newHeight != height {
            current = current.resampled(axisIsWidth: false, to: newHeight, filter: filter, roundToLevels: roundToLevels)
        }
        return current
    }

    /// Resized so the shorter side is `shorterSide` and the aspect ratio is kept (torchvision's `Resize(int)`:
    /// the longer side is truncated, not rounded).
    public func resized(shorterSide: Int, filter: Filter = .bicubic) -> Image {
        precondition(shorterSide > 0, "resized: shorterSide must be positive")
        if width <= height {
            return resized(width: shorterSide, height: Swift.max(1, Int(Double(shorterSide) * Double(height) / Double(width))), filter: filter)
        }
        return resized(width: Swift.max(1, Int(Double(shorterSide) * Double(width) / Double(height))), height: shorterSide, filter: filter)
    }

    /// Pillow's coefficient tables for one axis: for each output index, the first input index and the weights.
    static func coefficients(inSize: Int, outSize: Int, filter: Filter) -> (first: [Int], weights: [[Double]]) {
        let scale = Double(inSize) / Double(outSize)
        if filter == .nearest {
            // Pillow's NEAREST picks one source pixel, the one under the output pixel's centre; no averaging.
            return ((0..<outSize).map { Swift.min(Int((Double($0) + 0.5) * scale), inSize - 1) }, Array(repeating: [1], count: outSize))
        }
        let filterScale = Swift.max(scale, 1)
        let support = filter.support * filterScale
        var first: [Int] = [], weights: [[Double]] = []
        first.reserveCapacity(outSize)
        for i in 0..<outSize {
            let center = (Double(i) + 0.5) * scale
            let lo = Swift.max(Int(center - support + 0.5), 0)  // truncation toward zero, as Pillow's (int) cast
            let hi = Swift.min(Int(center + support + 0.5), inSize)
            var w = (lo..<Swift.max(hi, lo)).map { filter.weight((Double($0) - center + 0.5) / filterScale) }
            let total = w.reduce(0, +)
            if total != 0 { w = w.map { $0 / total } }
            first.append(lo)
            weights.append(w)
        }
        return (first, weights)
    }

    private func resampled(axisIsWidth: Bool, to size: Int, filter: Filter, roundToLevels: Bool) -> Image {
        let inSize = axisIsWidth ? width : height
        let (first, weights) = Image.coefficients(inSize: inSize, outSize: size, filter: filter)
        let (outW, outH) = axisIsWidth ? (size, height) : (width, size)
        var out = [Float](repeating: 0, count: outW * outH * channels)
        let (inPlane, outPlane) = (width * height, outW * outH)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    let s = src.baseAddress! + c * inPlane, d = dst.baseAddress! + c * outPlane
                    for y in 0..<outH {
                        for x in 0..<outW {
                            let (o, w) = axisIsWidth ? (first[x], weights[x]) : (first[y], weights[y])
                            var acc = 0.0
                            if axisIsWidth {
                                for k in 0..<w.count { acc += w[k] * Double(s[y * width + o + k]) }
                            } else {
                                for k in 0..<w.count { acc += w[k] * Double(s[(o + k) * width + x]) }
                            }
                            var v = Float(acc)
                            if roundToLevels { v = (Swift.min(Swift.max(v, 0), 1) * 255).rounded() / 255 }
                            d[y * outW + x] = v
                        }
                    }
                }
            }
        }
        return Image(width: outW, height: outH, channels: channels, pixels: out)
    }

    /// The rectangle at (x, y) of the given size; it must lie inside the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Image {
        precondition(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= width && y + h <= height,
                     "cropped: (\(x), \(y)) + \(w) x \(h) does not fit a \(width) x \(height) image")
        var out = [Float](repeating: 0, count: w * h * channels)
        for c in 0..<channels {
            for row in 0..<h {
                let from = c * width * height + (y + row) * width + x
                out.replaceSubrange((c * w * h + row * w)..<(c * w * h + row * w + w), with: pixels[from..<(from + w)])
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// The centred rectangle of this size (torchvision's `CenterCrop`: offsets rounded half to even).
    public func centerCropped(width w: Int, height h: Int) -> Image {
        precondition(w <= width && h <= height, "centerCropped: \(w) x \(h) is larger than the \(width) x \(height) image")
        let x = Int((Double(width - w) / 2).rounded(.toNearestOrEven)), y = Int((Double(height - h) / 2).rounded(.toNearestOrEven))
        return cropped(x: x, y: y, width: w, height: h)
    }

    /// Scaled (keeping its aspect ratio) until it covers width x height, then centre-cropped to exactly that size:
    /// how a style image is fitted to a photo.
    public func covering(width w: Int, height h: Int) -> Image {
        let scale = Swift.max(Double(w) / Double(width), Double(h) / Double(height))
        let scaled = resized(width: Swift.max(w, Int((Double(width) * scale).rounded(.up))), height: Swift.max(h, Int((Double(height) * scale).rounded(.up))))
        return scaled.centerCropped(width: w, height: h)
    }

    /// Blurred by a Gaussian of standard deviation `sigma` pixels, rows then columns, the edge pixels repeated past
    /// the border: scipy's `ndimage.gaussian_filter(x, sigma, mode="nearest", truncate=truncate)` on each channel
    /// (taps out to `Int(truncate * sigma + 0.5)` pixels, weights normalized to sum to 1). `sigma` 0 returns the image.
    ///
    /// ```swift
    /// let soft = picture.gaussianBlurred(sigma: 1.5)   // a drawing-like softness for a 28 x 28 picture
    /// ```
    public func gaussianBlurred(sigma: Double, truncate: Double = 4) -> Image {
        precondition(sigma.isFinite && sigma >= 0 && truncate.isFinite && truncate > 0, "gaussianBlurred: sigma \(sigma), truncate \(truncate)")
        let radius = Int(truncate * sigma + 0.5)
        if radius == 0 { return self }
        var taps = (-radius...radius).map { Float(Foundation.exp(-0.5 * Double($0 * $0) / (sigma * sigma))) }
        let total = taps.reduce(0, +)
        for i in taps.indices { taps[i] /= total }
        // One pass along a line of `count` values `stride` apart; the edge values stand in past both ends.
        func pass(_ from: [Float], _ to: inout [Float], start: Int, count: Int, stride: Int) {
            for i in 0..<count {
                var sum: Float = 0
                for (k, w) in taps.enumerated() {
                    let j = Swift.min(Swift.max(i + k - radius, 0), count - 1)
                    sum += w * from[start + j * stride]
                }
                to[start + i * stride] = sum
            }
        }
        var rows = pixels, out = pixels
        let plane = width * height
        for c in 0..<channels {
            for y in 0..<height { pass(pixels, &rows, start: c * plane + y * width, count: width, stride: 1) }
            for x in 0..<width { pass(rows, &out, start: c * plane + x, count: height, stride: width) }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }

    public func flippedHorizontally() -> Image {
        var out = pixels
        for c in 0..<channels {
            for y in 0..<height {
                let row = c * width * height + y * width
                for x in 0..<width { out[row + x] = pixels[row + width - 1 - x] }
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }

    public func flippedVertically() -> Image {
        var out = pixels
        for c in 0..<channels {
            for y in 0..<height {
                let (to, from) = (c * width * height + y * width, c * width * height + (height - 1 - y) * width)
                out.replaceSubrange(to..<(to + width), with: pixels[from..<(from + width)])
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }
}

extension Image {
    /// Throws when one side is more than `ratio` times the other: resizing such an image by its shorter side (as
    /// classifiers and style transfer do) would make the longer side enormous.
    public func requireAspectRatio(atMost ratio: Int = 64, source: String) throws {
        guard max(width, height) <= ratio * min(width, height) else {
            throw AttendError("\(source): \(width) x \(height) pixels is more than \(ratio) times as long as it is wide; crop it first")
        }
    }

    /// What an ImageNet classifier takes: RGB, the shorter side resized to size / 0.875 (bicubic), the centre
    /// size x size crop, normalized per channel: [3, size, size] (torchvision's and timm's evaluation transform).
    public func classifierInput(size: Int, mean: [Float], std: [Float], cropFraction: Double = 0.875) -> Tensor {
        let resize = Int((Double(size) / cropFraction).rounded(.down))
        return rgb().resized(shorterSide: resize).centerCropped(width: size, height: size).tensor(mean: mean, std: std)
    }
}

extension Image {
    /// A width x height RGB image of one colour (three values in [0, 1]).
    public init(width: Int, height: Int, colour: [Float]) {
        precondition(colour.count == 3, "Image(colour:) takes red, green and blue, got \(colour.count) values")
        let plane = width * height
        self.init(width: width, height: height, channels: 3,
                  pixels: [Float](repeating: colour[0], count: plane) + [Float](repeating: colour[1], count: plane)
                      + [Float](repeating: colour[2], count: plane))
    }

    /// Whether the image has an alpha channel (grey + alpha or RGBA).
    public var hasAlpha: Bool { channels == 2 || channels == 4 }

    /// This image laid over `background` with its top-left corner at (x, y), blended by its alpha channel (an image
    /// without one covers what it overlaps). The result is RGB, the background's size; what falls outside is cut.
    ///
    /// ```swift
    /// let stamp = try Image.read("cat.png")                               // RGBA, transparent around the cat
    /// let picture = stamp.composited(onto: Image(width: 200, height: 200, colour: [1, 1, 1]), x: 20, y: 10)
    /// ```
    public func composited(onto background: Image, x: Int, y: Int) -> Image {
        let base = background.rgb(), colour = rgb()
        var out = base.pixels
        let plane = width * height, outPlane = base.width * base.height
        let rows = Swift.max(0, -y)..<Swift.max(Swift.max(0, -y), Swift.min(height, base.height - y))
        let columns = Swift.max(0, -x)..<Swift.max(Swift.max(0, -x), Swift.min(width, base.width - x))
        let alpha = hasAlpha ? (channels - 1) * plane : -1
        for row in rows {
            for column in columns {
                let from = row * width + column, to = (y + row) * base.width + x + column
                let a = alpha >= 0 ? pixels[alpha + from] : 1
                for c in 0..<3 { out[c * outPlane + to] = a * colour.pixels[c * plane + from] + (1 - a) * out[c * outPlane + to] }
            }
        }
        return Image(width: base.width, height: base.height, channels: 3, pixels: out)
    }

    /// Shrunk so the longer side is at most `longerSide` (kept as it is when already small enough). With alpha the
    /// colours are resized premultiplied, so that transparent pixels' colours do not bleed into the edges.
    public func shrunk(toLongerSide longerSide: Int) -> Image {
        precondition(longerSide > 0, "shrunk: longerSide must be positive")
        guard Swift.max(width, height) > longerSide else { return self }
        let scale = Double(longerSide) / Double(Swift.max(width, height))
        let (w, h) = (Swift.max(1, Int((Double(width) * scale).rounded())), Swift.max(1, Int((Double(height) * scale).rounded())))
        guard hasAlpha else { return resized(width: w, height: h) }
        let plane = width * height, alpha = (channels - 1) * plane
        var premultiplied = pixels
        for c in 0..<(channels - 1) { for i in 0..<plane { premultiplied[c * plane + i] *= pixels[alpha + i] } }
        var small = Image(width: width, height: height, channels: channels, pixels: premultiplied)
            .resized(width: w, height: h, roundToLevels: false)
        let smallPlane = w * h, smallAlpha = (channels - 1) * smallPlane
        for i in 0..<smallPlane {
            let a = Swift.min(Swift.max(small.pixels[smallAlpha + i], 0), 1)
            small.pixels[smallAlpha + i] = a
            for c in 0..<(channels - 1) {
                small.pixels[c * smallPlane + i] = a > 1e-6 ? Swift.min(Swift.max(small.pixels[c * smallPlane + i] / a, 0), 1) : 0
            }
        }
        return small
    }
}
