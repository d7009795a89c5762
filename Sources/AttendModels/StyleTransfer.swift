// Neural style transfer (Gatys, Ecker & Bethge 2016, "Image Style Transfer Using Convolutional Neural Networks"):
// the output's pixels are optimized so that its deep features match the content image's (content loss) and the
// Gram matrices of its features at several depths match the style image's (style loss):
// Loss_total = contentWeight * Loss_content + styleWeight * Loss_style. The feature network is a pretrained,
// frozen EfficientNet-Lite0; gradients flow only into the pixels.

import AttendNN
import AttendTensor
import Foundation

/// Gatys-style transfer through a pretrained CNN.
///
/// ```swift
/// let net = try EfficientNet.load(weights)
/// var style = NeuralStyle(network: net)
/// let result = style.transfer(content: contentPixels, style: stylePixels, steps: 200) { step, losses in print(step, losses) }
/// // result.image is [3, H, W] in [0, 1]
/// ```
public struct NeuralStyle {
    public struct Losses: CustomStringConvertible {
        public var content: Float
        public var style: Float
        public var description: String { String(format: "content %.4f  style %.4f", content, style) }
    }

    public let network: EfficientNet
    /// Blocks whose Gram matrices carry style (-1 is the stem), shallow to deep.
    public var styleBlocks = [-1, 0, 2, 4, 7]
    /// The block whose activations carry content.
    public var contentBlock = 7
    public var contentWeight: Float = 1
    public var styleWeight: Float = 1e3
    public var learningRate: Float = 0.02

    public init(network: EfficientNet) { self.network = network }

    /// Feature maps [1, C, H, W] of a [3, H, W] image in [0, 1], at the style blocks then the content block.
    func features(_ pixels: Tensor) -> [Tensor] {
        features(batch: pixels.reshape([1] + pixels.shape), at: styleBlocks + [contentBlock])
    }

    /// Feature maps [N, C, h, w] of images [N, 3, H, W] in [0, 1] at the given blocks, in the network's scaling.
    public func features(batch pixels: Tensor, at blocks: [Int]) -> [Tensor] {
        let c = network.config
        let mean = Tensor(c.mean, shape: [1, 3, 1, 1]), std = Tensor(c.std, shape: [1, 3, 1, 1])
        return network.blockOutputs((pixels - mean) / std, at: blocks)
    }

    /// The Gram matrix of each image's feature map, normalized by its size: [N, C, C].
    public static func gramMatrix(_ f: Tensor) -> Tensor {
        let (n, c, hw) = (f.shape[0], f.shape[1], f.shape[2] * f.shape[3])
        let m = f.reshape([n, c, hw])
        return m.matmul(m.transposed(1, 2)) / Float(c * hw)
    }

    /// Targets computed once: the style images' Gram matrices (mixed by weight when several) and the content features.
    public struct Targets {
        let grams: [Tensor]
        let content: Tensor
    }

    /// Targets for a content image and one or more style images with mixing weights (the lecture's `aH1 + bH2`:
    /// the style statistics of several images, mixed).
    public func targets(content: Tensor, styles: [(image: Tensor, weight: Float)]) -> Targets {
        precondition(!styles.isEmpty, "NeuralStyle.targets: at least one style image")
        return withNoGrad {
            let total = styles.map(\.weight).reduce(0, +)
            var grams: [Tensor]? = nil
            for (image, weight) in styles {
                let g = features(image).prefix(styleBlocks.count).map { NeuralStyle.gramMatrix($0) * (weight / total) }
                grams = grams.map { zip($0, g).map { $0 + $1 } } ?? g
            }
            return Targets(grams: grams!, content: features(content).last!)
        }
    }

    /// Content and style losses of an image against the targets (what the optimizer lowers).
    public func losses(_ pixels: Tensor, _ targets: Targets) -> (content: Tensor, style: Tensor) {
        let f = features(pixels)
        let content = (f.last! - targets.content).pow(2).mean()
        var style = Tensor(0)
        for (i, g) in targets.grams.enumerated() {
            style = style + (NeuralStyle.gramMatrix(f[i]) - g).pow(2).sum()
        }
        return (content, style / Float(targets.grams.count))
    }

    public func evaluate(_ pixels: Tensor, _ targets: Targets) -> Losses {
        withNoGrad {
            let (c, s) = losses(pixels, targets)
            return Losses(content: c.item, style: s.item)
        }
    }

    /// Optimizes the pixels (starting from the content image) with Adam, clamping to [0, 1] after each step.
    public func transfer(content: Tensor, styles: [(image: Tensor, weight: Float)], steps: Int,
                         progress: (Int, Losses) -> Void = { _, _ in }) -> Tensor {
        transfer(content: content, targets: targets(content: content, styles: styles), steps: steps, progress: progress)
    }

    /// The same, from targets already computed (a caller that also reports losses against them).
    public func transfer(content: Tensor, targets: Targets, steps: Int, progress: (Int, Losses) -> Void = { _, _ in }) -> Tensor {
        let x = content.copy()
        x.requiresGrad = true
        let optimizer = Adam(parameters: [("pixels", x)], learningRate: learningRate)
        for step in 1...max(steps, 1) {
            let (c, s) = losses(x, targets)
            let total = c * contentWeight + s * styleWeight
            x.zeroGrad()
            total.backward()
            optimizer.update()
            withNoGrad { x.assign(x.relu() - (x - 1).relu()) }  // clamp to [0, 1]
            progress(step, Losses(content: c.item, style: s.item))
        }
        x.requiresGrad = false
        return x
    }
}

// MARK: - Fast, feed-forward transfer

// Huang & Belongie 2017 ("Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization"): the frozen
// encoder turns the content image and each style image into feature maps; adaptive instance normalization gives the
// content features each style's per-channel mean and standard deviation; several styles are mixed by weight (the
// lecture's Mix = aH1 + bH2) and `alpha` blends back toward the plain content features; a decoder trained here renders
// the mix in one pass. The decoder is trained by the paper's content loss and the optimizing variant's Gram-matrix style
// loss; both modes print the same two losses (NeuralStyle's), so they are measured alike.

/// The decoder's shape: the encoder block it reads and the channels at 1/8, 1/4, 1/2 and full resolution.
public struct StyleDecoderConfig: Codable, Equatable {
    /// The EfficientNet block whose output is mixed (block 4: 40 channels at 1/8 of the image).
    public var block = 4
    public var featureChannels = 40
    public var widths = [128, 64, 32, 16]

    public init() {}

    /// The encoder's downsampling at `block`, which the decoder's three doublings undo.
    static let downsampling = 8

    public func validate(against network: EfficientNetConfig, source: String) throws {
        let blocks = network.blocks
        guard (0..<blocks.count).contains(block) else { throw AttendError("\(source): decoder block \(block) is not a block of \(network.name) (0..<\(blocks.count))") }
        let stride = blocks[0...block].reduce(2) { $0 * $1.stride }
        guard stride == StyleDecoderConfig.downsampling, blocks[block].output == featureChannels else {
            throw AttendError("\(source): decoder expects \(featureChannels) channels at 1/\(StyleDecoderConfig.downsampling), block \(block) of \(network.name) gives \(blocks[block].output) at 1/\(stride)")
        }
        guard widths.count == 4, widths.allSatisfy({ (1...1024).contains($0) }) else {
            throw AttendError("\(source): decoder widths must be 4 numbers in 1...1024, got \(widths)")
        }
    }
}

/// Feature maps [N, C, h, w] -> images [N, 3, 8h, 8w] in [0, 1]: a 3x3 convolution, then three times nearest-neighbour
/// doubling and two 3x3 convolutions (ReLU after each), then a 3x3 convolution to RGB through a sigmoid.
public final class StyleDecoder: Module, UnaryLayer {
    public let config: StyleDecoderConfig
    public let input: Conv2d
    public let stages: [[Conv2d]]
    public let output: Conv2d

    public init(config: StyleDecoderConfig = StyleDecoderConfig(), seed: UInt64 = 0) {
        self.config = config
        var g = RandomGenerator(seed: seed)
        let w = config.widths
        input = Conv2d(config.featureChannels, w[0], kernelSize: 3, padding: 1, generator: &g)
        stages = (1..<4).map { i in
            [Conv2d(w[i - 1], w[i], kernelSize: 3, padding: 1, generator: &g), Conv2d(w[i], w[i], kernelSize: 3, padding: 1, generator: &g)]
        }
        output = Conv2d(w[3], 3, kernelSize: 3, padding: 1, generator: &g)
    }

    public func callAsFunction(_ features: Tensor) -> Tensor {
        var h = input(features).relu()
        for stage in stages {
            h = h.upsampleNearest2d(scale: 2)
            for conv in stage { h = conv(h).relu() }
        }
        return output(h).sigmoid()
    }

    public func save(_ path: String) throws {
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(namedTensors(), metadata: ["attend.style-decoder": json], to: path)
    }

    /// Loads a decoder from `attend style train`, checking it fits the encoder it will read.
    public static func load(_ path: String, encoder: EfficientNetConfig) throws -> StyleDecoder {
        let file = try Safetensors.read(path)
        guard let json = file.metadata["attend.style-decoder"],
              let config = try? JSONDecoder().decode(StyleDecoderConfig.self, from: Data(json.utf8)) else {
            throw AttendError("\(path): not an Attend style decoder (no attend.style-decoder metadata)")
        }
        try config.validate(against: encoder, source: path)
        let decoder = StyleDecoder(config: config)
        try decoder.load(file.tensors, source: path)
        for (_, t) in decoder.namedTensors() { t.requiresGrad = false }
        return decoder
    }
}

/// Feed-forward style transfer: encode, mix by adaptive instance normalization, decode.
///
/// ```swift
/// let net = try EfficientNet.load(weights)
/// let fast = FastNeuralStyle(measure: NeuralStyle(network: net), decoder: try StyleDecoder.load("models/style-decoder.safetensors", encoder: net.config))
/// let image = fast.render(content: photo, styles: [(flow, 0.7), (gulp, 0.3)], alpha: 1)   // [3, H, W] in [0, 1]
/// ```
public struct FastNeuralStyle {
    /// The losses and feature network the decoder is trained and measured with.
    public let measure: NeuralStyle
    public let decoder: StyleDecoder

    /// Weight of the identity loss in training: the pixel MSE of the photo rendered in its own style (the decoder
    /// given the photo's unmixed features), which teaches the decoder to invert the encoder far sooner than the
    /// feature losses alone do.
    public var identityWeight: Float = 0

    public init(measure: NeuralStyle, decoder: StyleDecoder) { (self.measure, self.decoder) = (measure, decoder) }

    /// Each content image's feature maps given the per-channel mean and standard deviation of the style's (broadcast
    /// over a batch of one style): (c - mean_c) / std_c * std_s + mean_s, statistics over positions.
    public static func adaptiveInstanceNorm(content c: Tensor, style s: Tensor, epsilon: Float = 1e-5) -> Tensor {
        let (cm, cs) = (c.mean(axes: [2, 3], keepDims: true), (c.variance(axes: [2, 3], keepDims: true) + epsilon).sqrt())
        let (sm, ss) = (s.mean(axes: [2, 3], keepDims: true), (s.variance(axes: [2, 3], keepDims: true) + epsilon).sqrt())
        return (c - cm) / cs * ss + sm
    }

    /// Images [N, 3, H, W] in [0, 1] -> the decoder's input features.
    func encode(_ images: Tensor) -> Tensor { measure.features(batch: images, at: [decoder.config.block])[0] }

    /// The content image [3, H, W] in the mixed style of `styles` (weights normalized to sum 1); `alpha` in [0, 1]
    /// blends the mixed features with the content's own (0 renders the content through the decoder).
    public func render(content: Tensor, styles: [(image: Tensor, weight: Float)], alpha: Float = 1) -> Tensor {
        precondition(!styles.isEmpty, "FastNeuralStyle.render: at least one style image")
        return withNoGrad {
            let (h, w) = (content.shape[1], content.shape[2])
            let fc = encode(content.reshape([1] + content.shape))
            let total = styles.map(\.weight).reduce(0, +)
            var mixed = fc * (1 - alpha)
            for (image, weight) in styles {
                let fs = encode(image.reshape([1] + image.shape))
                mixed = mixed + FastNeuralStyle.adaptiveInstanceNorm(content: fc, style: fs) * (alpha * weight / total)
            }
            let out = decoder(mixed)
            // The encoder rounds odd sizes up at each stride; the decoder's output is cut back to the content's size.
            return out.reshape(Array(out.shape.dropFirst())).slice(axis: 1, 0..<h).slice(axis: 2, 0..<w).contiguous()
        }
    }

    /// One training step's loss on content patches and style patches [N, 3, P, P] (P a multiple of 8): each content
    /// patch is rendered in the style of the style patch beside it. contentWeight * content + styleWeight * style, where
    /// the content loss is the paper's (the output's features at the decoder's block against the mixed features it was
    /// given: what keeps the photo's layout) and the style loss NeuralStyle's Gram loss, per image, batch-averaged.
    public func trainingLoss(content: Tensor, style: Tensor) -> (loss: Tensor, content: Float, style: Float) {
        let m = measure, block = decoder.config.block
        let (n, styleCount) = (content.shape[0], m.styleBlocks.count)
        let (own, input, styleTargets) = withNoGrad { () -> (Tensor, Tensor, [Tensor]) in
            let fc = m.features(batch: content, at: [block])[0]
            let fs = m.features(batch: style, at: [block] + m.styleBlocks)
            return (fc, FastNeuralStyle.adaptiveInstanceNorm(content: fc, style: fs[0]), fs.dropFirst().map { NeuralStyle.gramMatrix($0) })
        }
        let f = m.features(batch: decoder(input), at: m.styleBlocks + [block])
        let contentLoss = (f[styleCount] - input).pow(2).mean()
        var styleLoss = Tensor(0)
        for (i, g) in styleTargets.enumerated() { styleLoss = styleLoss + (NeuralStyle.gramMatrix(f[i]) - g).pow(2).sum() }
        styleLoss = styleLoss / Float(n * styleCount)
        if identityWeight > 0 {
            let identity = (decoder(own) - content).pow(2).mean()
            return (contentLoss * m.contentWeight + styleLoss * m.styleWeight + identity * identityWeight, contentLoss.item, styleLoss.item)
        }
        return (contentLoss * m.contentWeight + styleLoss * m.styleWeight, contentLoss.item, styleLoss.item)
    }
}
