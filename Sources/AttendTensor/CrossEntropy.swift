// Softmax cross-entropy over rows of logits as one op. Composed (log-softmax, gather, mean), a language model's
// loss over [N, vocabulary] logits made five tensors of that size per step: the log-probabilities, a zeroed
// scatter target for the gather's gradient, exp(log p), their product and the difference. For SmolLM2's 49,152
// words and a LoRA batch of 4 x 256 each is 200 MB, freshly page-faulted every step. Fused, the forward pass reads
// the logits once (each row's log-sum-exp) and the backward pass writes the gradient once.

import CAttendKernels
import Foundation

extension Tensor {
    /// Mean cross-entropy of the rows of `self` ([N, C] logits) against `targets` (one class per row), each row's
    /// term multiplied by `weights[i]` (0 drops a row, as an ignored index does) and the sum by `scale`; with
    /// label smoothing `epsilon` the target distribution is (1 - epsilon) on the target plus epsilon / C on every
    /// class. Differentiable in the logits.
    ///
    /// ```swift
    /// let logits = Tensor.randn([4, 10], seed: 0, requiresGrad: true)
    /// let loss = logits.softmaxCrossEntropy(targets: [1, 0, 9, 3], weights: [1, 1, 1, 1], scale: 0.25)
    /// loss.backward()   // logits.grad = (softmax - one-hot) / 4
    /// ```
    public func softmaxCrossEntropy(targets: [Int32], weights: [Float], labelSmoothing epsilon: Float = 0, scale: Float) -> Tensor {
        precondition(rank == 2, "softmaxCrossEntropy needs logits [N, C], got \(shape)")
        let (n, c) = (shape[0], shape[1])
        precondition(targets.count == n && weights.count == n, "softmaxCrossEntropy: \(targets.count) targets and \(weights.count) weights for \(n) rows")
        precondition(targets.allSatisfy { $0 >= 0 && Int($0) < c }, "softmaxCrossEntropy: a target outside 0..<\(c)")
        let x = contiguous()
        let xp = x.pointer
        var lse = [Float](repeating: 0, count: n), terms = [Double](repeating: 0, count: n)
        lse.withUnsafeMutableBufferPointer { lp in
            terms.withUnsafeMutableBufferPointer { tp in
                Parallel.forRanges(n, costPerItem: 3 * c) { rows in
                    for r in rows {
                        let row = xp + r * c
                        let l = attend_row_logsumexp(row, c)
                        lp[r] = l
                        guard weights[r] != 0 else { continue }
                        var term = Double(l) - Double(row[Int(targets[r])]) * Double(1 - epsilon)
                        if epsilon != 0 { term -= Double(epsilon) * Tensor.rowMean(row, c) }
                        tp[r] = term * Double(weights[r])
                    }
                }
            }
        }
        let loss = Tensor([Float(terms.reduce(0, +) * Double(scale))], shape: [])
        return loss.recording(.softmaxCrossEntropy(targets: targets, weights: weights, logSumExp: lse, smoothing: epsilon, scale: scale),
                              inputs: [self])
    }

    /// Mean of a row, summed in Double.
    static func rowMean(_ row: UnsafePointer<Float>, _ c: Int) -> Double {
        var s = 0.0
        for i in 0..<c { s += Double(row[i]) }
        return s / Double(c)
    }
}

enum SoftmaxCrossEntropy {
    /// d loss / d logits = g scale w_i (softmax_i - (1 - epsilon) onehot(t_i) - epsilon / C), one pass per row.
    static func backward(_ g: Tensor, logits: Tensor, targets: [Int32], weights: [Float], logSumExp: [Float], smoothing epsilon: Float,
                         scale: Float) -> Tensor {
        let (n, c) = (logits.shape[0], logits.shape[1])
        let x = logits.contiguous(), upstream = g.item * scale
        let dx = Tensor(contiguousStorage: TensorStorage(count: n * c, zeroed: false), shape: [n, c])
        let xp = x.pointer, dp = dx.pointer
        Parallel.forRanges(n, costPerItem: 3 * c) { rows in
            for r in rows {
                let k = upstream * weights[r], out = dp + r * c
                if k == 0 {
                    out.update(repeating: 0, count: c)
                    continue
                }
                attend_row_softmax_affine(xp + r * c, c, logSumExp[r], k, -k * epsilon / Float(c), out)
                out[Int(targets[r])] -= k * (1 - epsilon)
            }
        }
        return dx
    }
}
