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
        let kvLengths = AttentionTraining.clampedLengths(keyLengths, batch: b, t: t)
        let (qc, kc, vc) = (query.contiguous(), key.contiguous(), value.contiguous())
        let layout = AttentionTraining.Layout(batch: b, t: t, heads: h, headSize: hs, ldq: h * hs)
        let (y, logSumExp) = AttentionTraining.forward(layout, q: qc.pointer, k: kc.pointer, v: vc.pointer, causal: causal, keyLengths: kvLengths)
        return y.recording(.selfAttention(causal: causal, keyLengths: kvLengths, logSumExp: logSumExp), inputs: [query, key, value])
    }

    /// `selfAttention` over one projection that holds the queries, keys and values side by side, as the fused
    /// [C -> 3C] product of `MultiHeadAttention` gives them: one product reads the input once where three read it
    /// three times, and the gradient comes back as one [B, T, 3C] tensor for that product's backward.
    ///
    /// - Parameters:
    ///   - qkv: [B, T, 3 H hs]: the queries in the first H hs columns, then the keys, then the values.
    ///   - heads: H.
    /// - Returns: [B, T, H hs].
    ///
    /// ```swift
    /// let qkv = Tensor.randn([2, 5, 3 * 24], seed: 0)
    /// let y = Tensor.selfAttention(packed: qkv, heads: 3, causal: true)   // [2, 5, 24]
    /// ```
    public static func selfAttention(packed qkv: Tensor, heads h: Int, causal: Bool, keyLengths: [Int]? = nil) -> Tensor {
        precondition(qkv.rank == 3 && h > 0 && qkv.shape[2] % (3 * h) == 0,
                     "selfAttention: packed projection \(qkv.shape) must be [B, T, 3 x \(h) heads x head size]")
        let (b, t, hs) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / (3 * h))
        let kvLengths = AttentionTraining.clampedLengths(keyLengths, batch: b, t: t)
        let packed = qkv.contiguous(), c = h * hs
        let layout = AttentionTraining.Layout(batch: b, t: t, heads: h, headSize: hs, ldq: 3 * c)
        let (y, logSumExp) = AttentionTraining.forward(layout, q: packed.pointer, k: packed.pointer + c, v: packed.pointer + 2 * c,
                                                       causal: causal, keyLengths: kvLengths)
        return y.recording(.packedSelfAttention(heads: h, causal: causal, keyLengths: kvLengths, logSumExp: logSumExp), inputs: [qkv])
    }
}

enum AttentionTraining {
    /// Where one sequence's heads lie: q, k, v (and their gradients) rows `ldq` floats apart, y rows H hs apart.
    struct Layout {
        let batch: Int, t: Int, heads: Int, headSize: Int, ldq: Int
        var ldy: Int { heads * headSize }
        /// The offset of (sequence s, head) in the q/k/v rows and in the y rows.
        func offsets(_ item: Int) -> (q: Int, y: Int) {
            let (s, head) = (item / heads, item % heads)
            return (s * t * ldq + head * headSize, s * t * ldy + head * headSize)
        }
    }

    static func clampedLengths(_ keyLengths: [Int]?, batch b: Int, t: Int) -> [Int] {
        precondition((keyLengths?.count ?? b) == b, "selfAttention: \(keyLengths?.count ?? b) key lengths for \(b) sequences")
        return keyLengths.map { $0.map { Swift.min(Swift.max($0, 1), t) } } ?? [Int](repeating: t, count: b)
    }

    /// The output [B, T, H hs] and each row's log-sum-exp.
    static func forward(_ l: Layout, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, causal: Bool,
                        keyLengths: [Int]) -> (Tensor, [Float]) {
        let y = Tensor(contiguousStorage: TensorStorage(count: l.batch * l.t * l.ldy, zeroed: false), shape: [l.batch, l.t, l.ldy])
        var logSumExp = [Float](repeating: 0, count: l.batch * l.heads * l.t)
        let scale = 1 / Float(l.headSize).squareRoot(), yp = y.pointer
        logSumExp.withUnsafeMutableBufferPointer { lse in
            let lp = lse.baseAddress!
            forHeads(l.batch * l.heads, t: l.t, hs: l.headSize) { item, scratch in
                let (oq, oy) = l.offsets(item)
                attend_attention_train_forward(q + oq, k + oq, v + oq, l.t, l.headSize, l.ldq, l.ldy, keyLengths[item / l.heads],
                                               causal ? 1 : 0, scale, yp + oy, lp + item * l.t, scratch)
            }
        }
        return (y, logSumExp)
    }

    /// Writes dq, dk, dv (rows `ldq` apart, like q, k, v) from the output y and its gradient g.
    static func backward(_ l: Layout, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, y: Tensor, g: Tensor,
                         causal: Bool, keyLengths: [Int], logSumExp: [Float],
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>) {
        let (yc, gc) = (y.contiguous(), g.contiguous())
        let scale = 1 / Float(l.headSize).squareRoot(), yp = yc.pointer, gp = gc.pointer
        logSumExp.withUnsafeBufferPointer { lse in
            let lp = lse.baseAddress!
            forHeads(l.batch * l.heads, t: l.t, hs: l.headSize) { item, scratch in
                let (oq, oy) = l.offsets(item)
                attend_attention_train_backward(q + oq, k + oq, v + oq, yp + oy, gp + oy, lp + item * l.t, l.t, l.headSize, l.ldq, l.ldy,
                                                keyLengths[item / l.heads], causal ? 1 : 0, scale, dq + oq, dk + oq, dv + oq, scratch)
            }
        }
    }

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
        let (qc, kc, vc) = (query.contiguous(), key.contiguous(), value.contiguous())
        let (dq, dk, dv) = (Tensor(contiguousStorage: TensorStorage(count: qc.count, zeroed: false), shape: query.shape),
                            Tensor(contiguousStorage: TensorStorage(count: qc.count, zeroed: false), shape: query.shape),
                            Tensor(contiguousStorage: TensorStorage(count: qc.count, zeroed: false), shape: query.shape))
        backward(Layout(batch: b, t: t, heads: h, headSize: hs, ldq: h * hs), q: qc.pointer, k: kc.pointer, v: vc.pointer, y: y, g: g,
                 causal: causal, keyLengths: keyLengths, logSumExp: logSumExp, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer)
        return (dq, dk, dv)
    }

    /// The gradient of `Tensor.selfAttention(packed:)` with respect to its [B, T, 3C] input.
    static func backward(_ g: Tensor, packed qkv: Tensor, heads h: Int, output y: Tensor, causal: Bool, keyLengths: [Int],
                         logSumExp: [Float]) -> Tensor {
        let (b, t, c) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
        let packed = qkv.contiguous()
        let d = Tensor(contiguousStorage: TensorStorage(count: packed.count, zeroed: false), shape: qkv.shape)
        let (p, dp) = (packed.pointer, d.pointer)
        backward(Layout(batch: b, t: t, heads: h, headSize: c / h, ldq: 3 * c), q: p, k: p + c, v: p + 2 * c, y: y, g: g,
                 causal: causal, keyLengths: keyLengths, logSumExp: logSumExp, dq: dp, dk: dp + c, dv: dp + 2 * c)
        return d
    }
}
