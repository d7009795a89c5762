// Batch normalization over the channels of [N, C, H, W] images (Ioffe & Szegedy 2015), as PyTorch's BatchNorm2d:
// batch statistics while training (the running averages updated with `momentum`, the variance unbiased), the
// running averages at inference, where it is an affine map per channel and can be folded into the convolution
// before it.

import AttendTensor

/// BatchNorm2d: y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.
///
/// ```swift
/// let bn = BatchNorm2d(32, eps: 1e-3)
/// let y = bn(Tensor.randn([8, 32, 14, 14], seed: 0))       // training: batch statistics
/// bn.eval()
/// let (w, b) = bn.folded(convolutionWeight: conv.weight, bias: nil)   // one convolution instead of two passes
/// ```
public final class BatchNorm2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor
    /// Running averages, updated in training and used in evaluation; not trained by gradients.
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let eps: Float
    /// PyTorch's convention: new = (1 - momentum) * old + momentum * batch.
    public let momentum: Float

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        precondition(channels > 0 && eps > 0 && momentum >= 0 && momentum <= 1, "BatchNorm2d: channels \(channels), eps \(eps), momentum \(momentum)")
        weight = Tensor.ones([channels], requiresGrad: true)
        bias = Tensor.zeros([channels], requiresGrad: true)
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        self.eps = eps
        self.momentum = momentum
    }

    public var channels: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == channels, "BatchNorm2d(\(channels)) needs [N, \(channels), H, W], got \(x.shape)")
        let c = channels
        guard isTraining else {
            let (scale, shift) = affine()
            return x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
        }
        let count = x.shape[0] * x.shape[2] * x.shape[3]
        precondition(count > 1, "BatchNorm2d in training needs more than one value per channel, got \(x.shape)")
        let mean = x.mean(axes: [0, 2, 3], keepDims: true)
        let centered = x - mean
        let variance = (centered * centered).mean(axes: [0, 2, 3], keepDims: true)
        withNoGrad {
            let m = momentum, unbiased = Float(count) / Float(count - 1)
            runningMean.assign(runningMean * (1 - m) + mean.detached().reshape([c]) * m)
            runningVar.assign(runningVar * (1 - m) + variance.detached().reshape([c]) * (m * unbiased))
        }
        return centered * (variance + eps).rsqrt() * weight.reshape([1, c, 1, 1]) + bias.reshape([1, c, 1, 1])
    }

    /// The evaluation-mode map as y = x * scale + shift, per channel.
    public func affine() -> (scale: Tensor, shift: Tensor) {
        let scale = weight * (runningVar + eps).rsqrt()
        return (scale, bias - runningMean * scale)
    }

    /// A convolution's weight [O, ...] and bias [O] with this (evaluation-mode) normalization folded in, so that
    /// conv(x, w', b') == bn(conv(x, w, b)).
    public func folded(convolutionWeight w: Tensor, bias b: Tensor?) -> (weight: Tensor, bias: Tensor) {
        precondition(w.shape[0] == channels, "BatchNorm2d.folded: the convolution has \(w.shape[0]) outputs, the norm \(channels) channels")
        return withNoGrad {
            let (scale, shift) = affine()
            let shape = [channels] + [Int](repeating: 1, count: w.rank - 1)
            return ((w * scale.reshape(shape)).contiguous().copy(), (b.map { $0 * scale + shift } ?? shift).copy())
        }
    }
}
