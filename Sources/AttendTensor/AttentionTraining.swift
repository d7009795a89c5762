// Self-attention as one differentiable op (forward and backward in `attend_attention_train_*`): the training
// forward of every Transformer here used to build the [B, H, T, T] scores, mask them, soften them, and keep them
// for the backward, which built three more tensors of that size. This op stores the output and a log-sum-exp per
// row, recomputes the probabilities block by block in the backward, and multiplies only the causal blocks a row sees.

import CAttendKernels

extension Tensor {
    /// softmax(q k^T / sqrt(hs)) v for each head, differentiable, without [T, T] tensors.
    ///
    /// - Parameters:
    ///   - query, key, value: [B, T, H, hs] (the projections reshaped into heads; no transpose needed).
    ///   - causal: row i sees keys 0...i.
    ///   - keyLengths: when given, row b's first keyLengths[b] keys are real, the rest padding nobody sees (each
    ///     clamped to 1...T). Both together: a row sees keys up to itself and below its sequence's length.
    /// - Returns: [B, T, H * hs], the heads side by side (what the output projection takes).
    ///
    /// ```swift
    /// let q = Tensor.randn([2, 5, 3, 8], seed: 0), k = Tensor.randn([2, 5, 3, 8], seed: 1), v = Tensor.randn([2, 5, 3, 8], seed: 2)
    /// let y = Tensor.selfAttention(query: q, key: k, value: v, causal: true)   // [2, 5, 24]
    /// ```
    public static func selfAttention(query: Tensor, key: Tensor, value: Tensor, causal: Bool, keyLengths: [Int]? = nil) -> Tensor {
        precondition(query.rank == 4 && key.shape == query.shape && value.shape == query.shape,
                     "selfAttention: query \(query.shape), key \(key.shape), value \(value.shape) must all be [B, T, H, hs]")
        let (b, t, h, hs) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        precondition((keyLengths?.count ?? b) == b, "selfAttention: \(keyLengths?.count ?? b) key lengths for \(b) sequences")
        let kvLengths = keyLengths.map { $0.map { Swift.min(Swift.max($0, 1), t) } } ?? [Int](repeating: t, count: b)
        let (qc, kc, vc) = (query.contiguous(), key.contiguous(), value.contiguous())
        let y = Tensor(contiguousStorage: TensorStorage(count: b * t * h * hs, zeroed: false), shape: [b, t, h * hs])
        var logSumExp = [Float](repeating: 0, count: b * h * t)
        let scale = 1 / Float(hs).squareRoot(), ld = h * hs
        let (qp, kp, vp, yp) = (qc.pointer, kc.pointer, vc.pointer, y.pointer)
        logSumExp.withUnsafeMutableBufferPointer { lse in
            let lp = lse.baseAddress!
            AttentionTraining.forHeads(b * h, t: t, hs: hs) { item, scratch in
                let (s, head) = (item / h, item % h), offset = s * t * ld + head * hs
                attend_attention_train_forward(qp + offset, kp + offset, vp + offset, t, hs, ld, kvLengths[s], causal ? 1 : 0, scale,
                                               yp + offset, lp + item * t, scratch)
            }
        }
        return y.recording(.selfAttention(causal: causal, keyLengths: kvLengths, logSumExp: logSumExp), inputs: [query, key, value])
    }
}

enum AttentionTraining {
    /// Runs `body(item, scratch)` for items 0..<items (one sequence and head each) on the pool, with a scratch of
    /// what the kernels need for t rows, allocated once per chunk.
    static func forHeads(_ items: Int, t: Int, hs: Int, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let scratchCount = attend_attention_train_scratch(t)
        Parallel.forRanges(items, costPerItem: t * t * hs) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
            defer { scratch.deallocate() }
            for item in range { body(item, scratch) }
        }
    }

    /// The gradients of `Tensor.selfAttention` with respect to query, key and value, each [B, T, H, hs].
    static func backward(_ g: Tensor, query: Tensor, key: Tensor, value: Tensor, output y: Tensor, causal: Bool, keyLengths: [Int],
                         logSumExp: [Float]) -> (Tensor, Tensor, Tensor) {
        let (b, t, h, hs) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        let (qc, kc, vc, yc, gc) = (query.contiguous(), key.contiguous(), value.contiguous(), y.contiguous(), g.contiguous())
        let (dq, dk, dv) = (Tensor(contiguousStorage: TensorStorage(count: qc.count, zeroed: false), shape: query.shape),
                            Tensor(contiguousStorage: TensorStorage(count: qc.count, zeroed: false), shape: query.shape),
                            Tensor(contiguousStorage: TensorStorage(count: qc.count, zeroed: false), shape: query.shape))
        let scale = 1 / Float(hs).squareRoot(), ld = h * hs
        let (qp, kp, vp, yp, gp) = (qc.pointer, kc.pointer, vc.pointer, yc.pointer, gc.pointer)
        let (dqp, dkp, dvp) = (dq.pointer, dk.pointer, dv.pointer)
        logSumExp.withUnsafeBufferPointer { lse in
            let lp = lse.baseAddress!
            forHeads(b * h, t: t, hs: hs) { item, scratch in
                let (s, head) = (item / h, item % h), offset = s * t * ld + head * hs
                attend_attention_train_backward(qp + offset, kp + offset, vp + offset, yp + offset, gp + offset, lp + item * t, t, hs, ld,
                                                keyLengths[s], causal ? 1 : 0, scale, dqp + offset, dkp + offset, dvp + offset, scratch)
            }
        }
        return (dq, dk, dv)
    }
}
