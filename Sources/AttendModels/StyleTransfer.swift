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
        let c = network.config
        let mean = Tensor(c.mean, shape: [1, 3, 1, 1]), std = Tensor(c.std, shape: [1, 3, 1, 1])
        let x = (pixels.reshape([1] + pixels.shape) - mean) / std
        return network.blockOutputs(x, at: styleBlocks + [contentBlock])
    }

    /// The Gram matrix of a feature map, normalized by its size: [C, C].
    static func gram(_ f: Tensor) -> Tensor {
        let (c, hw) = (f.shape[1], f.shape[2] * f.shape[3])
        let m = f.reshape([c, hw])
        return m.matmul(m.transposed(0, 1)) / Float(c * hw)
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
                let g = features(image).prefix(styleBlocks.count).map { NeuralStyle.gram($0) * (weight / total) }
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
            style = style + (NeuralStyle.gram(f[i]) - g).pow(2).sum()
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
