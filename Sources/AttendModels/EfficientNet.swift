// EfficientNet-Lite (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for CNNs"; the Lite variants of the
// TensorFlow TPU repository): a stem convolution, mobile inverted bottleneck blocks (1x1 expansion, depthwise KxK,
// 1x1 projection, a residual when the shape allows), a 1x1 head and a linear classifier. The Lite variants drop
// squeeze-and-excitation, use ReLU6 and TensorFlow's "SAME" padding. Weights load from the PyTorch port's
// `torch.save` file (lukemelas/EfficientNet-PyTorch names: `_conv_stem`, `_blocks.N._depthwise_conv`, ...), with
// every BatchNorm folded into the convolution before it, so inference runs one convolution per layer. The model stays
// differentiable with respect to its input (style transfer optimizes pixels through it).

import AttendNN
import AttendTensor
import Foundation

/// The architecture: stages of repeated blocks, scaled by width and depth coefficients (Lite0 is 1.0, 1.0 at 224).
public struct EfficientNetConfig: Codable, Equatable {
    public struct Stage: Codable, Equatable {
        public var repeats: Int, kernelSize: Int, stride: Int, expandRatio: Int, inChannels: Int, outChannels: Int
    }
    public var name = "efficientnet-lite0"
    public var stages: [Stage] = [
        Stage(repeats: 1, kernelSize: 3, stride: 1, expandRatio: 1, inChannels: 32, outChannels: 16),
        Stage(repeats: 2, kernelSize: 3, stride: 2, expandRatio: 6, inChannels: 16, outChannels: 24),
        Stage(repeats: 2, kernelSize: 5, stride: 2, expandRatio: 6, inChannels: 24, outChannels: 40),
        Stage(repeats: 3, kernelSize: 3, stride: 2, expandRatio: 6, inChannels: 40, outChannels: 80),
        Stage(repeats: 3, kernelSize: 5, stride: 1, expandRatio: 6, inChannels: 80, outChannels: 112),
        Stage(repeats: 4, kernelSize: 5, stride: 2, expandRatio: 6, inChannels: 112, outChannels: 192),
        Stage(repeats: 1, kernelSize: 3, stride: 1, expandRatio: 6, inChannels: 192, outChannels: 320),
    ]
    public var stemChannels = 32
    public var headChannels = 1280
    public var classCount = 1000
    public var imageSize = 224
    public var batchNormEps: Float = 1e-3
    /// The training preprocessing of the TensorFlow Lite models: (pixel - 127) / 128 on 0-255 values.
    public var mean: [Float] = [127 / 255, 127 / 255, 127 / 255]
    public var std: [Float] = [128 / 255, 128 / 255, 128 / 255]

    public init() {}

    /// Block specifications in order: (kernel, stride, expand, in, out).
    var blocks: [(kernel: Int, stride: Int, expand: Int, input: Int, output: Int)] {
        stages.flatMap { s in
            (0..<s.repeats).map { i in (s.kernelSize, i == 0 ? s.stride : 1, s.expandRatio, i == 0 ? s.inChannels : s.outChannels, s.outChannels) }
        }
    }
}

/// A convolution with its BatchNorm folded in, then ReLU6 (or nothing, for projections).
public final class FoldedConv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor
    public let stride: Int
    public let groups: Int
    public let activates: Bool

    init(weight: Tensor, bias: Tensor, stride: Int, groups: Int, activates: Bool) {
        (self.weight, self.bias, self.stride, self.groups, self.activates) = (weight, bias, stride, groups, activates)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = x.conv2d(weight: weight, bias: bias, stride: stride, padding: .same, groups: groups)
        return activates ? y.relu6() : y
    }
}

/// Mobile inverted bottleneck: expand (1x1) -> depthwise (KxK) -> project (1x1), plus the input when shapes match.
public final class MBConvBlock: Module, UnaryLayer {
    public let expand: FoldedConv2d?
    public let depthwise: FoldedConv2d
    public let project: FoldedConv2d
    public let residual: Bool

    init(expand: FoldedConv2d?, depthwise: FoldedConv2d, project: FoldedConv2d, residual: Bool) {
        (self.expand, self.depthwise, self.project, self.residual) = (expand, depthwise, project, residual)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = project(depthwise(expand.map { $0(x) } ?? x))
        return residual ? h + x : h
    }
}

/// EfficientNet-Lite: images [N, 3, H, W] normalized with `config.mean` / `config.std` -> logits [N, classes].
///
/// ```swift
/// let net = try EfficientNet.load(".cache/assets/efficientnet-lite0/efficientnet-lite0-57934424.pth")
/// let x = try Image.read("chelsea.png").classifierInput(size: 224, mean: net.config.mean, std: net.config.std)  // AttendVision
/// let probabilities = withNoGrad { net(x.reshape([1, 3, 224, 224])).softmax(axis: -1) }
/// let features = withNoGrad { net.pooledFeatures(x.reshape([1, 3, 224, 224])) }   // [1, 1280]
/// ```
public final class EfficientNet: Module, UnaryLayer {
    public let config: EfficientNetConfig
    public let stem: FoldedConv2d
    public let blocks: [MBConvBlock]
    public let head: FoldedConv2d
    public let classifier: Linear

    init(config: EfficientNetConfig, stem: FoldedConv2d, blocks: [MBConvBlock], head: FoldedConv2d, classifier: Linear) {
        (self.config, self.stem, self.blocks, self.head, self.classifier) = (config, stem, blocks, head, classifier)
    }

    /// A deep copy whose convolutions train (`requiresGrad`; each BatchNorm stays folded, so its statistics are
    /// frozen, as fine-tuning with small batches wants), leaving this instance, which others may share, untouched.
    /// The classifier is copied frozen.
    public func trainableCopy() -> EfficientNet {
        func conv(_ c: FoldedConv2d) -> FoldedConv2d {
            let w = c.weight.copy(), b = c.bias.copy()
            w.requiresGrad = true
            b.requiresGrad = true
            return FoldedConv2d(weight: w, bias: b, stride: c.stride, groups: c.groups, activates: c.activates)
        }
        var generator = RandomGenerator(seed: 0)
        let head = Linear(classifier.weight.shape[1], classifier.weight.shape[0], generator: &generator)
        head.weight.assign(classifier.weight)
        head.bias!.assign(classifier.bias!)
        head.weight.requiresGrad = false
        head.bias!.requiresGrad = false
        return EfficientNet(config: config, stem: conv(stem),
                            blocks: blocks.map { MBConvBlock(expand: $0.expand.map(conv), depthwise: conv($0.depthwise), project: conv($0.project), residual: $0.residual) },
                            head: conv(self.head), classifier: head)
    }

    /// The last feature map [N, headChannels, H/32, W/32].
    public func featureMap(_ x: Tensor) -> Tensor { head(blocks.reduce(stem(x)) { $1($0) }) }

    /// Global-average-pooled features [N, headChannels]: the image embedding.
    public func pooledFeatures(_ x: Tensor) -> Tensor { featureMap(x).mean(axes: [2, 3]) }

    public func callAsFunction(_ x: Tensor) -> Tensor { classifier(pooledFeatures(x)) }

    /// The outputs of the chosen blocks (indices 0 ..< blocks.count; -1 is the stem), in the order asked:
    /// feature maps at several depths, as style transfer and dense features use them. Stops after the last asked.
    public func blockOutputs(_ x: Tensor, at indices: [Int]) -> [Tensor] {
        precondition(indices.allSatisfy { $0 >= -1 && $0 < blocks.count }, "blockOutputs: indices must be in -1..<\(blocks.count), got \(indices)")
        var found: [Int: Tensor] = [:]
        var h = stem(x)
        if indices.contains(-1) { found[-1] = h }
        let last = indices.max() ?? -1
        if last >= 0 {
            for i in 0...last {
                h = blocks[i](h)
                if indices.contains(i) { found[i] = h }
            }
        }
        return indices.map { found[$0]! }
    }

    /// Reads a `torch.save` state dict in the lukemelas/EfficientNet-PyTorch layout and folds each BatchNorm into
    /// its convolution. Every tensor's shape is checked against the configuration.
    public static func load(_ path: String, config: EfficientNetConfig = EfficientNetConfig()) throws -> EfficientNet {
        let checkpoint = try TorchCheckpoint.read(path)
        var used = Set<String>()
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let t = checkpoint.tensors[name] else { throw AttendError("\(path): missing tensor '\(name)' (not an \(config.name) checkpoint?)") }
            guard t.shape == shape else { throw AttendError("\(path): tensor '\(name)' has shape \(t.shape), \(config.name) needs \(shape)") }
            used.insert(name)
            return t
        }
        func folded(_ conv: String, _ bn: String, out: Int, inPerGroup: Int, kernel: Int, stride: Int, groups: Int, activates: Bool) throws -> FoldedConv2d {
            let w = try tensor("\(conv).weight", [out, inPerGroup, kernel, kernel])
            let norm = BatchNorm2d(out, eps: config.batchNormEps)
            norm.weight.assign(try tensor("\(bn).weight", [out]))
            norm.bias.assign(try tensor("\(bn).bias", [out]))
            norm.runningMean.assign(try tensor("\(bn).running_mean", [out]))
            norm.runningVar.assign(try tensor("\(bn).running_var", [out]))
            guard norm.runningVar.toArray().allSatisfy({ $0 >= 0 && $0.isFinite }) else {
                throw AttendError("\(path): '\(bn).running_var' holds negative or non-finite variances")
            }
            let (fw, fb) = norm.folded(convolutionWeight: w, bias: nil)
            return FoldedConv2d(weight: fw, bias: fb, stride: stride, groups: groups, activates: activates)
        }
        let stem = try folded("_conv_stem", "_bn0", out: config.stemChannels, inPerGroup: 3, kernel: 3, stride: 2, groups: 1, activates: true)
        var blocks: [MBConvBlock] = []
        for (i, b) in config.blocks.enumerated() {
            let p = "_blocks.\(i)"
            let hidden = b.input * b.expand
            let expand = b.expand == 1 ? nil : try folded("\(p)._expand_conv", "\(p)._bn0", out: hidden, inPerGroup: b.input, kernel: 1, stride: 1, groups: 1, activates: true)
            let depthwise = try folded("\(p)._depthwise_conv", "\(p)._bn1", out: hidden, inPerGroup: 1, kernel: b.kernel, stride: b.stride, groups: hidden, activates: true)
            let project = try folded("\(p)._project_conv", "\(p)._bn2", out: b.output, inPerGroup: hidden, kernel: 1, stride: 1, groups: 1, activates: false)
            blocks.append(MBConvBlock(expand: expand, depthwise: depthwise, project: project, residual: b.stride == 1 && b.input == b.output))
        }
        let last = config.stages.last!.outChannels
        let head = try folded("_conv_head", "_bn1", out: config.headChannels, inPerGroup: last, kernel: 1, stride: 1, groups: 1, activates: true)
        var generator = RandomGenerator(seed: 0)
        let classifier = Linear(config.headChannels, config.classCount, generator: &generator)
        classifier.weight.assign(try tensor("_fc.weight", [config.classCount, config.headChannels]))
        classifier.bias!.assign(try tensor("_fc.bias", [config.classCount]))
        let unknown = checkpoint.names.filter { !used.contains($0) && !$0.hasSuffix("num_batches_tracked") }
        guard unknown.isEmpty else {
            throw AttendError("\(path): \(unknown.count) tensors this \(config.name) does not use, e.g. '\(unknown[0])' (squeeze-and-excitation weights mean a non-Lite EfficientNet)")
        }
        let net = EfficientNet(config: config, stem: stem, blocks: blocks, head: head, classifier: classifier)
        for (_, t) in net.namedTensors() { t.requiresGrad = false }  // a pretrained, frozen network unless a trainer says otherwise
        net.eval()
        return net
    }
}
