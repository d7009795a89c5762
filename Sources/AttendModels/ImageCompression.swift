// Learned image compression (Ballé, Laparra & Simoncelli 2017, "End-to-end Optimized Image Compression"; the
// factorized entropy model of Ballé et al. 2018, appendix 6.1): an analysis transform (four stride-2 convolutions
// with generalized divisive normalization) maps an image to a latent grid at 1/16 of its size; the latent is rounded
// to integers (additive uniform noise stands in for rounding in training, so it stays differentiable); a learned
// per-channel density gives each integer its probability, and a range coder (rANS) writes it in about
// -log2 p bits; a synthesis transform (sub-pixel convolutions with inverse GDN) decodes. Training minimizes
// rate + lambda * 255^2 * MSE, and each lambda gives one point on the rate-distortion curve.

import AttendNN
import AttendTensor
import Foundation

public struct CompressionConfig: Codable, Equatable {
    /// Channels inside the transforms.
    public var channels = 64
    /// Channels of the latent grid.
    public var latentChannels = 96
    /// The rate-distortion trade-off: loss = bits per pixel + lambda * 255^2 * MSE.
    public var lambda: Float = 0.01

    public init(channels: Int = 64, latentChannels: Int = 96, lambda: Float = 0.01) {
        (self.channels, self.latentChannels, self.lambda) = (channels, latentChannels, lambda)
    }

    enum CodingKeys: String, CodingKey { case channels, latentChannels = "latent_channels", lambda }

    func validate(source: String) throws {
        guard (1...1024).contains(channels), (1...1024).contains(latentChannels) else {
            throw AttendError("\(source): channels \(channels) and latent_channels \(latentChannels) must be 1...1024")
        }
        guard lambda.isFinite && lambda > 0 else { throw AttendError("\(source): lambda must be positive, got \(lambda)") }
    }
}

/// Simplified generalized divisive normalization (Johnston et al. 2019): y = x / (beta + gamma |x|), with gamma a
/// 1x1 convolution across channels; the inverse (for synthesis) multiplies instead. beta and gamma are kept
/// non-negative by squaring their parameters.
public final class GDN: Module, UnaryLayer {
    public let betaRoot: Tensor
    public let gammaRoot: Tensor
    public let inverse: Bool

    public init(_ channels: Int, inverse: Bool) {
        betaRoot = Tensor.ones([channels], requiresGrad: true)
        var eye = [Float](repeating: 0, count: channels * channels)
        for i in 0..<channels { eye[i * channels + i] = Float(0.1).squareRoot() }
        gammaRoot = Tensor(eye, shape: [channels, channels, 1, 1], requiresGrad: true)
        self.inverse = inverse
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let norm = x.abs().conv2d(weight: gammaRoot * gammaRoot, bias: betaRoot * betaRoot + 1e-6)
        return inverse ? x * norm : x / norm
    }
}

/// Rearranges [N, C * r * r, H, W] into [N, C, H * r, W * r] (the sub-pixel convolution's upsampling).
func pixelShuffle(_ x: Tensor, _ r: Int) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1] / (r * r), x.shape[2], x.shape[3])
    return x.reshape([n, c, r, r, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([n, c, h * r, w * r])
}

/// A learned density per latent channel (Ballé et al. 2018, 6.1): a monotone function f_c built from matrices kept
/// positive by softplus, so that sigmoid(f_c) is a cumulative distribution; an integer k gets probability
/// sigmoid(f_c(k + 0.5)) - sigmoid(f_c(k - 0.5)).
public final class FactorizedDensity: Module {
    public let matrices: [Tensor]
    public let biases: [Tensor]
    public let factors: [Tensor]
    static let filters = [1, 3, 3, 3, 1]

    public init(channels: Int, initScale: Float = 10) {
        var g = RandomGenerator(seed: 0x5EED)
        let f = FactorizedDensity.filters
        let scale = pow(initScale, 1 / Float(f.count - 1))
        var m: [Tensor] = [], b: [Tensor] = [], a: [Tensor] = []
        for k in 0..<(f.count - 1) {
            let value = Foundation.log(Foundation.expm1(1 / scale / Float(f[k + 1])))
            m.append(Tensor(shape: [channels, f[k + 1], f[k]], repeating: value, requiresGrad: true))
            b.append(Tensor.uniform([channels, f[k + 1], 1], low: -0.5, high: 0.5, generator: &g, requiresGrad: true))
            if k < f.count - 2 { a.append(Tensor.zeros([channels, f[k + 1], 1], requiresGrad: true)) }
        }
        (matrices, biases, factors) = (m, b, a)
    }

    static func softplus(_ x: Tensor) -> Tensor { x.relu() + ((-x.abs()).exp() + 1).log() }

    /// f_c(x) for x [C, 1, K] -> [C, 1, K].
    func logits(_ x: Tensor) -> Tensor {
        var h = x
        for k in 0..<matrices.count {
            h = FactorizedDensity.softplus(matrices[k]).matmul(h) + biases[k]
            if k < factors.count { h = h + factors[k].tanh() * h.tanh() }
        }
        return h
    }

    /// Probability of each (noisy or integer) value of y [N, C, H, W] under its channel's density, at least 1e-9.
    public func likelihood(_ y: Tensor) -> Tensor {
        let (n, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        let v = y.permute([1, 0, 2, 3]).reshape([c, 1, n * h * w])
        let upper = logits(v + 0.5), lower = logits(v - 0.5)
        // Subtract on the side where both sigmoids are small, which keeps the difference accurate in the tails.
        let sign = withNoGrad { Tensor((upper + lower).toArray().map { $0 > 0 ? -1 : 1 }, shape: upper.shape) }
        let p = ((sign * upper).sigmoid() - (sign * lower).sigmoid()).abs()
        let floor = p.relu() - (p - 1e-9).relu()  // min(p, 1e-9) ...
        let bounded = p - floor + Tensor(1e-9)   // ... so bounded = max(p, 1e-9)
        return bounded.reshape([c, n, h, w]).permute([1, 0, 2, 3])
    }

    /// Cumulative probabilities at k - 0.5 for k in lo ... hi + 1 of one channel, in double precision from Float logits.
    func cdf(channel: Int, lo: Int, hi: Int) -> [Double] {
        let points = (lo...(hi + 1)).map { Float($0) - 0.5 }
        let x = Tensor(points, shape: [1, 1, points.count])
        let logits = withNoGrad { () -> [Float] in
            var h = x
            for k in 0..<matrices.count {
                h = FactorizedDensity.softplus(matrices[k].slice(axis: 0, start: channel, length: 1)).matmul(h)
                    + biases[k].slice(axis: 0, start: channel, length: 1)
                if k < factors.count { h = h + factors[k].slice(axis: 0, start: channel, length: 1).tanh() * h.tanh() }
            }
            return h.toArray()
        }
        return logits.map { 1 / (1 + Foundation.exp(-Double($0))) }
    }
}

/// The codec: analysis and synthesis transforms, the density, and the file format.
///
/// ```swift
/// let codec = try LearnedImageCodec.load("models/compression-0.0067.safetensors")
/// let bytes = try codec.compress(image)          // image: [3, H, W] in [0, 1]
/// let restored = try codec.decompress(bytes, source: "photo.atic")   // [3, H, W]
/// ```
public final class LearnedImageCodec: Module {
    public let config: CompressionConfig
    public let analysis: [Conv2d]
    public let analysisNorms: [GDN]
    public let synthesis: [Conv2d]
    public let synthesisNorms: [GDN]
    public let density: FactorizedDensity

    public init(config: CompressionConfig, seed: UInt64 = 0) {
        self.config = config
        var g = RandomGenerator(seed: seed)
        let (n, m) = (config.channels, config.latentChannels)
        analysis = [Conv2d(3, n, kernelSize: 5, stride: 2, padding: 2, generator: &g), Conv2d(n, n, kernelSize: 5, stride: 2, padding: 2, generator: &g),
                    Conv2d(n, n, kernelSize: 5, stride: 2, padding: 2, generator: &g), Conv2d(n, m, kernelSize: 5, stride: 2, padding: 2, generator: &g)]
        analysisNorms = (0..<3).map { _ in GDN(n, inverse: false) }
        synthesis = [Conv2d(m, 4 * n, kernelSize: 3, padding: 1, generator: &g), Conv2d(n, 4 * n, kernelSize: 3, padding: 1, generator: &g),
                     Conv2d(n, 4 * n, kernelSize: 3, padding: 1, generator: &g), Conv2d(n, 4 * 3, kernelSize: 3, padding: 1, generator: &g)]
        synthesisNorms = (0..<3).map { _ in GDN(n, inverse: true) }
        density = FactorizedDensity(channels: m)
    }

    /// Image [N, 3, H, W] (H, W multiples of 16) -> latent [N, M, H/16, W/16] before quantization.
    public func encode(_ x: Tensor) -> Tensor {
        var h = x * 2 - 1
        for i in 0..<3 { h = analysisNorms[i](analysis[i](h)) }
        return analysis[3](h)
    }

    /// Latent -> image [N, 3, H, W] (not clamped).
    public func decode(_ y: Tensor) -> Tensor {
        var h = y
        for i in 0..<3 { h = synthesisNorms[i](pixelShuffle(synthesis[i](h), 2)) }
        return (pixelShuffle(synthesis[3](h), 2) + 1) * 0.5
    }

    /// One training forward: noisy latent, reconstruction, bits per pixel and MSE; loss = bpp + lambda * 255^2 * MSE.
    public func trainingLoss(_ x: Tensor, generator: inout RandomGenerator) -> (loss: Tensor, bpp: Float, mse: Float) {
        let y = encode(x)
        let noisy = y + Tensor.uniform(y.shape, low: -0.5, high: 0.5, generator: &generator)
        let reconstruction = decode(noisy)
        let pixels = Float(x.shape[0] * x.shape[2] * x.shape[3])
        let bits = density.likelihood(noisy).log().sum() * (-1 / Float(Foundation.log(2.0)))
        let bpp = bits / pixels
        let mse = (reconstruction - x).pow(2).mean()
        return (bpp + mse * (config.lambda * 255 * 255), bpp.item, mse.item)
    }

    // MARK: The file format

    static let magic: [UInt8] = Array("ATIC".utf8)
    public static let maxPixels = 1 << 24

    /// A fingerprint of the weights, written into every file so a file is never decoded by another model.
    public lazy var fingerprint: UInt64 = {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for (name, t) in namedTensors() {
            for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
            for v in t.toArray() { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01B3 }
        }
        return h
    }()

    /// Integer range [lo, hi] coded for each channel: where its density holds all but about 1e-6 of the mass.
    /// Latent values outside are clamped (the clamp is what keeps the alphabet finite; it is rare by construction).
    lazy var ranges: [(lo: Int, hi: Int)] = {
        (0..<config.latentChannels).map { c in
            let cdf = density.cdf(channel: c, lo: -64, hi: 64)  // cdf[i] = P(X < -64 + i - 0.5)
            let lo = (0..<cdf.count).last { cdf[$0] < 1e-6 }.map { -64 + $0 } ?? -64
            let hi = (0..<cdf.count).first { cdf[$0] > 1 - 1e-6 }.map { -64 + $0 - 1 } ?? 64
            return (max(-64, min(lo, 0)), min(64, max(hi, 0)))
        }
    }()

    /// Frequency tables (16-bit precision, every symbol at least 1) for each channel.
    lazy var tables: [RANS.Table] = {
        (0..<config.latentChannels).map { c in
            let (lo, hi) = ranges[c]
            let cdf = density.cdf(channel: c, lo: lo, hi: hi)
            var pmf = (0..<(hi - lo + 1)).map { cdf[$0 + 1] - cdf[$0] }
            // The clamped tails belong to the end symbols.
            pmf[0] += cdf[0]
            pmf[pmf.count - 1] += 1 - cdf[cdf.count - 1]
            return RANS.Table(probabilities: pmf)
        }
    }()

    /// Compresses a [3, H, W] image in [0, 1] to bytes: header, then the range-coded latent.
    public func compress(_ image: Tensor) throws -> Data {
        precondition(image.rank == 3 && image.shape[0] == 3, "compress needs [3, H, W], got \(image.shape)")
        let (h, w) = (image.shape[1], image.shape[2])
        guard w * h <= LearnedImageCodec.maxPixels else {
            throw AttendError("a \(w) x \(h) image is larger than the \(LearnedImageCodec.maxPixels) pixels Attend's codec decodes")
        }
        let padded = LearnedImageCodec.padToMultiple(image, 16)
        let y = withNoGrad { encode(padded.reshape([1] + padded.shape)) }
        let (m, gh, gw) = (y.shape[1], y.shape[2], y.shape[3])
        let values = y.toArray()
        var symbols: [(table: Int, symbol: Int)] = []
        symbols.reserveCapacity(values.count)
        for c in 0..<m {
            let (lo, hi) = ranges[c]
            for i in 0..<(gh * gw) {
                let q = min(max(Int(values[c * gh * gw + i].rounded()), lo), hi)
                symbols.append((c, q - lo))
            }
        }
        let payload = RANS.encode(symbols, tables: tables)
        var out = Data(LearnedImageCodec.magic)
        out.append(1)  // format version
        withUnsafeBytes(of: fingerprint.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(w).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(h).littleEndian) { out.append(contentsOf: $0) }
        out.append(payload)
        return out
    }

    /// Decodes bytes written by `compress` with the same weights: [3, H, W] in [0, 1].
    public func decompress(_ data: Data, source: String) throws -> Tensor {
        let header = 4 + 1 + 8 + 4 + 4
        guard data.count >= header, Array(data.prefix(4)) == LearnedImageCodec.magic else {
            throw AttendError("\(source): not an Attend compressed image (no ATIC header)")
        }
        let bytes = [UInt8](data)
        guard bytes[4] == 1 else { throw AttendError("\(source): format version \(bytes[4]); this Attend reads version 1") }
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        var stored: UInt64 = 0
        for i in 0..<8 { stored |= UInt64(bytes[5 + i]) << (8 * UInt64(i)) }
        guard stored == fingerprint else {
            throw AttendError("\(source): compressed by another model (fingerprint \(String(stored, radix: 16)), this one is \(String(fingerprint, radix: 16)))")
        }
        let (w, h) = (u32(13), u32(17))
        // Decoding holds about 32 floats per pixel in the synthesis transform, so the size is capped at 16 megapixels.
        guard w > 0, h > 0, w * h <= LearnedImageCodec.maxPixels else {
            throw AttendError("\(source): the header declares \(w) x \(h) pixels; Attend decodes up to \(LearnedImageCodec.maxPixels) pixels")
        }
        let (gh, gw) = ((h + 15) / 16, (w + 15) / 16)
        let m = config.latentChannels
        let order = (0..<m).flatMap { c in [Int](repeating: c, count: gh * gw) }
        guard let symbols = RANS.decode(Array(bytes[header...]), tables: order.map { tables[$0] }) else {
            throw AttendError("\(source): the coded latent is truncated or corrupt")
        }
        var latent = [Float](repeating: 0, count: m * gh * gw)
        for (i, s) in symbols.enumerated() { latent[i] = Float(s + ranges[order[i]].lo) }
        let y = Tensor(latent, shape: [1, m, gh, gw])
        let x = withNoGrad { decode(y) }
        let cropped = x.reshape([3, gh * 16, gw * 16]).slice(axis: 1, start: 0, length: h).slice(axis: 2, start: 0, length: w).contiguous()
        return withNoGrad { cropped.relu() - (cropped - 1).relu() }
    }

    /// The image padded on the bottom and right (edge pixels repeated) to a multiple of `k`.
    static func padToMultiple(_ x: Tensor, _ k: Int) -> Tensor {
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (ph, pw) = ((h + k - 1) / k * k, (w + k - 1) / k * k)
        if ph == h && pw == w { return x }
        let src = x.contiguous().toArray()
        var out = [Float](repeating: 0, count: c * ph * pw)
        for ch in 0..<c {
            for y in 0..<ph {
                for xx in 0..<pw { out[(ch * ph + y) * pw + xx] = src[(ch * h + min(y, h - 1)) * w + min(xx, w - 1)] }
            }
        }
        return Tensor(out, shape: [c, ph, pw])
    }

    // MARK: Weights

    public func save(_ path: String) throws {
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(namedTensors(), metadata: ["attend.compression": json], to: path)
    }

    /// Reads a codec for coding (weights frozen).
    ///
    /// With `lambda`, the weights are trainable and the codec trains for that trade-off instead: a warm start,
    /// the usual way to get several rates from one long training (the transforms learned at one rate are a far
    /// better start for the next than random weights).
    ///
    /// ```swift
    /// let higherRate = try LearnedImageCodec.load("models/compression-0.0035.safetensors", lambda: 0.0067)
    /// higherRate.train()   // then trainingLoss, backward and an optimizer, as `attend ae train --from` does
    /// ```
    public static func load(_ path: String, lambda: Float? = nil) throws -> LearnedImageCodec {
        let file = try Safetensors.read(path)
        guard let json = file.metadata["attend.compression"],
              var config = try? JSONDecoder().decode(CompressionConfig.self, from: Data(json.utf8)) else {
            throw AttendError("\(path): not an Attend compression model (no attend.compression metadata)")
        }
        try config.validate(source: path)
        if let lambda { config.lambda = lambda }
        let codec = LearnedImageCodec(config: config)
        try codec.load(file.tensors, source: path)
        for (_, t) in codec.namedTensors() { t.requiresGrad = lambda != nil }
        return codec
    }
}

/// rANS (Duda 2013; the byte-wise variant of Giesen's ryg_rans): 32-bit state, 16-bit probability precision,
/// symbols coded in reverse and decoded forward.
public enum RANS {
    static let precision: UInt32 = 16
    static let lowerBound: UInt32 = 1 << 23

    public struct Table {
        public let frequencies: [UInt32]
        public let starts: [UInt32]
        /// symbol for each of the 2^16 slots, for decoding.
        let slots: [UInt16]

        /// Quantizes probabilities to integer frequencies summing to 2^16, each at least 1.
        public init(probabilities: [Double]) {
            precondition(!probabilities.isEmpty && probabilities.count < 1 << 15, "RANS.Table: 1 to 32767 symbols")
            let total = Int(1 << RANS.precision)
            let sum = max(probabilities.reduce(0, +), 1e-300)
            var f = probabilities.map { max(1, Int(($0 / sum * Double(total - probabilities.count)).rounded(.down)) + 1) }
            // Hand the rounding's remainder to the most probable symbols (or take it from them).
            var excess = f.reduce(0, +) - total
            let order = f.indices.sorted { f[$0] > f[$1] }
            var i = 0
            while excess != 0 {
                let s = order[i % order.count]
                if excess > 0 { if f[s] > 1 { f[s] -= 1; excess -= 1 } } else { f[s] += 1; excess += 1 }
                i += 1
            }
            frequencies = f.map(UInt32.init)
            var starts: [UInt32] = [], acc: UInt32 = 0
            for v in frequencies { starts.append(acc); acc += v }
            self.starts = starts
            var slots = [UInt16](repeating: 0, count: total)
            for (s, (start, freq)) in zip(starts, frequencies).enumerated() {
                for j in Int(start)..<Int(start + freq) { slots[j] = UInt16(s) }
            }
            self.slots = slots
        }
    }

    public static func encode(_ symbols: [(table: Int, symbol: Int)], tables: [Table]) -> Data {
        var state = lowerBound
        var out: [UInt8] = []
        for (t, s) in symbols.reversed() {
            let freq = tables[t].frequencies[s], start = tables[t].starts[s]
            let limit = ((lowerBound >> precision) << 8) * freq
            while state >= limit {
                out.append(UInt8(state & 0xFF))
                state >>= 8
            }
            state = ((state / freq) << precision) + (state % freq) + start
        }
        for _ in 0..<4 {
            out.append(UInt8(state & 0xFF))
            state >>= 8
        }
        return Data(out.reversed())
    }

    /// The symbols, one per table given; nil when the bytes run out or the state ends inconsistent.
    public static func decode(_ bytes: [UInt8], tables: [Table]) -> [Int]? {
        guard bytes.count >= 4 else { return nil }
        var state: UInt32 = 0
        var at = 0
        for _ in 0..<4 { state = state << 8 | UInt32(bytes[at]); at += 1 }
        var result: [Int] = []
        result.reserveCapacity(tables.count)
        let mask = UInt32(1 << precision) - 1
        for table in tables {
            let slot = state & mask
            let s = Int(table.slots[Int(slot)])
            state = table.frequencies[s] * (state >> precision) + slot - table.starts[s]
            while state < lowerBound {
                guard at < bytes.count else { return nil }
                state = state << 8 | UInt32(bytes[at])
                at += 1
            }
            result.append(s)
        }
        return state == lowerBound && at == bytes.count ? result : nil
    }
}

extension LearnedImageCodec {
    /// A batch [count, 3, size, size] of random patches (random photo, position and horizontal flip).
    public static func patches(from photos: [Tensor], count: Int, size: Int, generator: inout RandomGenerator) -> Tensor {
        var out = [Float](repeating: 0, count: count * 3 * size * size)
        for b in 0..<count {
            let photo = photos[Int(generator.next() % UInt64(photos.count))]
            let (h, w) = (photo.shape[1], photo.shape[2])
            let y0 = Int(generator.next() % UInt64(h - size + 1)), x0 = Int(generator.next() % UInt64(w - size + 1))
            let flip = generator.next() & 1 == 1
            let p = photo.pointer
            for c in 0..<3 {
                for y in 0..<size {
                    let row = p + (c * h + y0 + y) * w + x0
                    let dst = (b * 3 + c) * size * size + y * size
                    for x in 0..<size { out[dst + x] = row[flip ? size - 1 - x : x] }
                }
            }
        }
        return Tensor(out, shape: [count, 3, size, size])
    }
}
