// Basic layers. Weight layouts follow PyTorch (Linear.weight is [out, in]) so checkpoints load as they are.

import AttendTensor
import Foundation

/// y = x W^T + b. Initialized like PyTorch: uniform in +-1/sqrt(inFeatures).
public final class Linear: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout RandomGenerator) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, generator: &generator, requiresGrad: true)
        self.bias = bias ? Tensor.uniform([outFeatures], low: -bound, high: bound, generator: &generator, requiresGrad: true) : nil
    }

    public convenience init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        self.init(inFeatures, outFeatures, bias: bias, generator: &RandomGenerator.global)
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// The weights in int8 (`quantizeInt8()`), used by calls without gradients. A copy: training the float weights
    /// afterwards does not reach it, so quantize an inference model once its weights are final.
    public private(set) var int8: Int8Matrix?

    /// Packs the weights in int8 for inference: 4x the multiply-adds per instruction of float32 on AVX-512 VNNI,
    /// within the quantization steps of float32 (one scale per output row, activations scaled per row at each
    /// call; MiniLM's vectors stay within cosine 0.988 of float32, docs/BENCHMARKS.md). `false` goes back to float32.
    public func quantizeInt8(_ on: Bool = true) { int8 = on ? Int8Matrix(weight) : nil }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear(\(inFeatures) -> \(outFeatures)) got input of shape \(x.shape)")
        if let int8, !GradMode.isEnabled { return int8.apply(x, bias: bias) }
        let y = x.matmul(weight.transposed(0, 1))
        return bias.map { y + $0 } ?? y
    }
}

/// A lookup table of vectors: ids [...] -> [..., dim]. Initialized N(0, 1) like PyTorch.
public final class Embedding: Module {
    public let weight: Tensor

    public init(_ count: Int, _ dimension: Int, generator: inout RandomGenerator) {
        weight = Tensor.randn([count, dimension], generator: &generator, requiresGrad: true)
    }

    public convenience init(_ count: Int, _ dimension: Int) {
        self.init(count, dimension, generator: &RandomGenerator.global)
    }

    public func callAsFunction(_ ids: IntTensor) -> Tensor { weight.indexSelect(ids) }
}

/// Layer normalization over the last dimension.
public final class LayerNorm: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let eps: Float

    public init(_ dimension: Int, eps: Float = 1e-5, bias: Bool = true) {
        weight = Tensor.ones([dimension], requiresGrad: true)
        self.bias = bias ? Tensor.zeros([dimension], requiresGrad: true) : nil
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }
}

/// Root-mean-square normalization (Llama): x / sqrt(mean(x^2) + eps) * weight.
public final class RMSNorm: Module, UnaryLayer {
    public let weight: Tensor
    public let eps: Float

    public init(_ dimension: Int, eps: Float = 1e-6) {
        weight = Tensor.ones([dimension], requiresGrad: true)
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight, eps: eps) }
}

/// Zeroes elements with probability p during training and scales the rest by 1/(1-p).
public final class Dropout: Module, UnaryLayer {
    public let probability: Float
    private var generator: RandomGenerator

    public init(_ probability: Float, seed: UInt64 = 0xD20) {
        precondition(probability >= 0 && probability < 1, "Dropout probability must be in [0, 1), got \(probability)")
        self.probability = probability
        generator = RandomGenerator(seed: seed)
    }

    /// A Dropout built while `generator` initializes a model: its mask stream starts from the generator's state (a
    /// copy: the generator does not advance, so the model's weights are what they would be without it), so each
    /// Dropout of a model draws its own masks. `salt` tells apart Dropouts built at the same state.
    ///
    /// ```swift
    /// up = Linear(d, 4 * d, generator: &generator)
    /// dropout = Dropout(0.1, branchingFrom: generator)
    /// ```
    public convenience init(_ probability: Float, branchingFrom generator: RandomGenerator, salt: UInt64 = 0) {
        var copy = generator
        self.init(probability, seed: copy.next() ^ (0xD20 &+ (salt &+ 1) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// Restarts the mask stream from `seed` (data-parallel training gives each process its own, so the processes'
    /// shares of a batch do not get the same masks).
    public func reseed(_ seed: UInt64) { generator = RandomGenerator(seed: seed) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining && probability > 0 else { return x }
        let keep = Tensor(shape: x.shape)
        let p = keep.pointer, scale = 1 / (1 - probability)
        for i in 0..<keep.count { p[i] = generator.nextUniform() >= probability ? scale : 0 }
        return x * keep
    }
}

/// A parameter-free activation as a layer.
public final class Activation: Module, UnaryLayer {
    public enum Kind: String, Codable {
        case relu, relu6, gelu, geluTanh = "gelu_new", silu, tanh, sigmoid
    }

    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public func callAsFunction(_ x: Tensor) -> Tensor { Activation.apply(kind, x) }

    public static func apply(_ kind: Kind, _ x: Tensor) -> Tensor {
        switch kind {
        case .relu: return x.relu()
        case .relu6: return x.relu6()
        case .gelu: return x.gelu()
        case .geluTanh: return x.gelu(approximate: true)
        case .silu: return x.silu()
        case .tanh: return x.tanh()
        case .sigmoid: return x.sigmoid()
        }
    }
}

/// Applies layers in order.
public final class Sequential: Module, UnaryLayer {
    public let layers: [UnaryLayer]

    public init(_ layers: [UnaryLayer]) { self.layers = layers }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }
}

/// Flattens all dimensions after the first.
public final class Flatten: Module, UnaryLayer {
    public override init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x.flatten(from: 1) }
}

/// 2-D convolution layer, weight [out, in, k, k]; PyTorch's default initialization.
public final class Conv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, generator: inout RandomGenerator) {
        let bound = 1 / Float(inChannels * kernelSize * kernelSize).squareRoot()
        weight = Tensor.uniform([outChannels, inChannels, kernelSize, kernelSize], low: -bound, high: bound,
                                generator: &generator, requiresGrad: true)
        self.bias = bias ? Tensor.uniform([outChannels], low: -bound, high: bound, generator: &generator, requiresGrad: true) : nil
        self.stride = stride
        self.padding = padding
    }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.init(inChannels, outChannels, kernelSize: kernelSize, stride: stride, padding: padding, bias: bias,
                  generator: &RandomGenerator.global)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

public final class MaxPool2d: Module, UnaryLayer {
    public let kernelSize: Int
    public let stride: Int
    public init(_ kernelSize: Int, stride: Int? = nil) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.maxPool2d(kernel: kernelSize, stride: stride) }
}

public final class AvgPool2d: Module, UnaryLayer {
    public let kernelSize: Int
    public let stride: Int
    public init(_ kernelSize: Int, stride: Int? = nil) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.avgPool2d(kernel: kernelSize, stride: stride) }
}

public final class UpsampleNearest2d: Module, UnaryLayer {
    public let scale: Int
    public init(scale: Int) { self.scale = scale }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.upsampleNearest2d(scale: scale) }
}

extension Module {
    /// Packs every `Linear` in this tree in int8 for inference (`Linear.quantizeInt8()`), or back to float32 with
    /// `false`, and returns how many.
    ///
    /// ```swift
    /// let bert = try BERTModel.load(directory: "all-MiniLM-L6-v2")
    /// bert.quantizeLinearLayersInt8()      // 36: four attention and two feed-forward projections in 6 layers
    /// ```
    @discardableResult
    public func quantizeLinearLayersInt8(_ on: Bool = true) -> Int {
        let linears = namedModules().compactMap { $0.module as? Linear }
        for linear in linears { linear.quantizeInt8(on) }
        return linears.count
    }
}
