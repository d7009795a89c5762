// Loss functions. Cross-entropy is one fused op (Tensor.softmaxCrossEntropy, its gradient rule in Autodiff.swift);
// the others are composed from tensor primitives so their gradients come from the rules there.

import AttendTensor
import Foundation

/// The loss functions, built from differentiable tensor operations so `backward()` runs through them.
///
/// ```swift
/// let loss = Loss.crossEntropy(logits: model(x), targets: y, ignoreIndex: 0)   // padding ids add nothing
/// loss.backward()
/// let clip = Loss.infoNCE(imageEmbeddings, textEmbeddings, temperature: 0.07)   // fixed temperature; Loss.clip learns it
/// ```
public enum Loss {
    /// Mean cross-entropy between logits [..., C] and class ids [...].
    /// Targets equal to `ignoreIndex` contribute nothing (and are not counted in the mean).
    /// With `labelSmoothing` e the target distribution is (1 - e) one-hot + e / C, as in PyTorch.
    public static func crossEntropy(logits: Tensor, targets: IntTensor, ignoreIndex: Int? = nil,
                                    labelSmoothing: Float = 0) -> Tensor {
        let c = logits.shape[logits.rank - 1]
        let n = logits.count / c
        precondition(targets.count == n, "crossEntropy: \(targets.count) targets for logits of shape \(logits.shape)")
        var picked = targets.data
        var weights = [Float](repeating: 1, count: n)
        var counted = n
        for i in 0..<n {
            if let ignore = ignoreIndex, Int(picked[i]) == ignore {
                picked[i] = 0
                weights[i] = 0
                counted -= 1
            } else {
                precondition(picked[i] >= 0 && Int(picked[i]) < c, "crossEntropy: target \(picked[i]) is not a class in 0..<\(c)")
            }
        }
        return logits.reshape([n, c]).softmaxCrossEntropy(targets: picked, weights: weights, labelSmoothing: labelSmoothing,
                                                          scale: 1 / Float(Swift.max(counted, 1)))
    }

    public static func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        let d = prediction - target
        return (d * d).mean()
    }

    /// Binary cross-entropy on logits, computed stably: max(x, 0) - x y + log(1 + exp(-|x|)).
    public static func binaryCrossEntropy(logits x: Tensor, targets y: Tensor) -> Tensor {
        (x.relu() - x * y + ((-x.abs()).exp() + 1).log()).mean()
    }

    /// Cosine similarity along the last dimension.
    public static func cosineSimilarity(_ a: Tensor, _ b: Tensor, eps: Float = 1e-8) -> Tensor {
        let dot = (a * b).sum(axes: [-1])
        let norms = ((a * a).sum(axes: [-1]) * (b * b).sum(axes: [-1]) + eps).sqrt()
        return dot / norms
    }

    /// Rows scaled to unit L2 norm.
    public static func normalize(_ x: Tensor, eps: Float = 1e-12) -> Tensor {
        x * ((x * x).sum(axes: [-1], keepDims: true) + eps).rsqrt()
    }

    /// Symmetric InfoNCE (CLIP): matching rows of `a` and `b` [N, D] are positives, all other pairs negatives.
    /// Rows are L2-normalized; logits are cosine similarities divided by `temperature`.
    public static func infoNCE(_ a: Tensor, _ b: Tensor, temperature: Float = 0.07) -> Tensor {
        clip(imageEmbeddings: normalize(a), textEmbeddings: normalize(b), logitScale: Tensor(1 / temperature))
    }

    /// CLIP's loss as open_clip's `ClipLoss` computes it: logits = scale * I T^T over unit-length image and text
    /// embeddings [N, D] (row i of each is a pair), then the mean of the cross-entropies image -> text (rows) and
    /// text -> image (columns), the diagonal being the targets. `logitScale` is the scale itself (1 / temperature,
    /// a one-element tensor), so its gradient flows when it is a parameter's `exp()`.
    ///
    /// ```swift
    /// let scale = logTemperatureInverse.exp()                      // learnable, as in the paper
    /// let loss = Loss.clip(imageEmbeddings: normalize(i), textEmbeddings: normalize(t), logitScale: scale)
    /// ```
    public static func clip(imageEmbeddings: Tensor, textEmbeddings: Tensor, logitScale: Tensor) -> Tensor {
        precondition(imageEmbeddings.shape == textEmbeddings.shape && imageEmbeddings.rank == 2,
                     "Loss.clip: image embeddings \(imageEmbeddings.shape) and text embeddings \(textEmbeddings.shape) must both be [N, D]")
        let n = imageEmbeddings.shape[0]
        let logits = imageEmbeddings.matmul(textEmbeddings.transposed(0, 1)) * logitScale.reshape([1, 1])
        let targets = IntTensor((0..<n).map { Int32($0) }, shape: [n])
        return (crossEntropy(logits: logits, targets: targets) + crossEntropy(logits: logits.transposed(0, 1), targets: targets)) * 0.5
    }
}
