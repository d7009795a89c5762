// Scaled dot-product attention (Vaswani et al., 2017) and multi-head attention, for self- and
// cross-attention with causal and padding masks. Masks are 0/1 tensors where 1 means "may not attend".

import AttendTensor
import CAttendKernels
import Foundation

/// Scaled dot-product attention and its masks (1 = may not attend).
///
/// ```swift
/// let q = Tensor.randn([2, 4, 10, 16], seed: 0), k = Tensor.randn([2, 4, 12, 16], seed: 1), v = Tensor.randn([2, 4, 12, 16], seed: 2)
/// let mask = Attention.paddingMask(lengths: [12, 7], maxLength: 12)   // [2, 1, 1, 12]
/// let (out, weights) = Attention.scaledDotProduct(query: q, key: k, value: v, mask: mask, causal: true)   // [2, 4, 10, 16], [2, 4, 10, 12]
/// ```
public enum Attention {
    /// softmax(Q K^T / sqrt(d) + mask) V.
    ///
    /// - Parameters:
    ///   - query: [..., Tq, D]; key: [..., Tk, D]; value: [..., Tk, Dv].
    ///   - mask: 1 where attention is blocked, broadcastable to [..., Tq, Tk].
    ///   - causal: block keys after each query position (aligned to the end when Tk > Tq, as with a KV cache).
    /// - Returns: the output [..., Tq, Dv] and the attention weights [..., Tq, Tk].
    public static func scaledDotProduct(query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil,
                                        causal: Bool = false) -> (output: Tensor, weights: Tensor) {
        let d = query.shape[query.rank - 1]
        precondition(key.shape[key.rank - 1] == d, "attention: query \(query.shape) and key \(key.shape) differ in width")
        // The scale goes on the queries ([.., T, d]) rather than the scores ([.., T, T]): fewer products.
        var scores = (query * (1 / Float(d).squareRoot())).matmul(key.transposed(-2, -1))
        if let mask { scores = scores.maskedFill(mask, -.infinity) }
        let weights = causal ? scores.causalSoftmax() : scores.softmax(axis: -1)
        return (weights.matmul(value), weights)
    }

    /// Self-attention for inference with the fused tiled kernel (no [T, T] scores stored): queries [B, T, H, hs],
    /// keys and values [B, H, T, hs], both contiguous. Causal, or with `keyLengths`: row b attends to its first
    /// keyLengths[b] keys (the rest is padding). Returns [B, T, H * hs]. No gradients.
    public static func fusedSelfAttention(query q: Tensor, key k: Tensor, value v: Tensor, keyLengths: [Int]?, causal: Bool) -> Tensor {
        let (b, t, h, hs) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        precondition(k.shape == [b, h, t, hs] && v.shape == k.shape && hs <= 256 && (keyLengths?.count ?? b) == b,
                     "fusedSelfAttention: query \(q.shape), key \(k.shape), value \(v.shape), \(keyLengths?.count ?? b) lengths")
        precondition(causal != (keyLengths != nil), "fusedSelfAttention: causal, or key lengths, not both")
        let y = Tensor(shape: [b, t, h * hs])
        let (qc, kc, vc) = (q.contiguous(), k.contiguous(), v.contiguous())
        let (qp, kp, vp, yp) = (qc.pointer, kc.pointer, vc.pointer, y.pointer)
        let perRow = Int(attend_prefill_attention_items(t, h)), stride = t * h * hs
        let lengths = keyLengths.map { $0.map { Swift.min(Swift.max($0, 1), t) } }
        let scale = 1 / Float(hs).squareRoot()
        func run(_ w0: Int, _ w1: Int) {
            var w = w0
            while w < w1 {
                let r = w / perRow, end = Swift.min(w1, (r + 1) * perRow)
                attend_fused_attention(qp + r * stride, kp + r * stride, vp + r * stride, t, 0, lengths.map { $0[r] } ?? -1, h, h, t, hs, scale,
                                       w - r * perRow, end - r * perRow, yp + r * stride)
                w = end
            }
        }
        if b * t * t * h * hs < 1 << 17 { run(0, b * perRow) } else { Parallel.forChunks(b * perRow) { run($0, $0 + 1) } }
        return y
    }

    /// [Tq, Tk] with 1 above the diagonal: query i (at absolute position Tk - Tq + i) may see keys 0...that.
    public static func causalMask(queries tq: Int, keys tk: Int) -> Tensor {
        let m = Tensor(shape: [tq, tk])
        let p = m.pointer, shift = tk - tq
        for i in 0..<tq { for j in 0..<tk where j > i + shift { p[i * tk + j] = 1 } }
        return m
    }

    /// A key padding mask [B, 1, 1, T] from each sequence's true length.
    public static func paddingMask(lengths: [Int], maxLength t: Int) -> Tensor {
        let m = Tensor(shape: [lengths.count, 1, 1, t])
        let p = m.pointer
        for (b, len) in lengths.enumerated() { for j in len..<max(len, t) { p[b * t + j] = 1 } }
        return m
    }
}

/// Multi-head attention: project, split into heads, attend, merge, project.
public final class MultiHeadAttention: Module {
    public let query: Linear
    public let key: Linear
    public let value: Linear
    public let output: Linear
    public let headCount: Int
    /// The attention weights [B, H, Tq, Tk] of the last call, kept when `keepWeights` is set (for attention maps).
    public private(set) var lastWeights: Tensor?
    public var keepWeights = false

    /// - Parameters:
    ///   - dimension: model width (query input and output).
    ///   - keyValueDimension: width of the key/value input for cross-attention (defaults to `dimension`).
    public init(dimension: Int, headCount: Int, keyValueDimension: Int? = nil, bias: Bool = true,
                generator: inout RandomGenerator) {
        precondition(dimension % headCount == 0, "MultiHeadAttention: width \(dimension) is not divisible by \(headCount) heads")
        let kv = keyValueDimension ?? dimension
        query = Linear(dimension, dimension, bias: bias, generator: &generator)
        key = Linear(kv, dimension, bias: bias, generator: &generator)
        value = Linear(kv, dimension, bias: bias, generator: &generator)
        output = Linear(dimension, dimension, bias: bias, generator: &generator)
        self.headCount = headCount
    }

    public convenience init(dimension: Int, headCount: Int, keyValueDimension: Int? = nil, bias: Bool = true) {
        self.init(dimension: dimension, headCount: headCount, keyValueDimension: keyValueDimension, bias: bias,
                  generator: &RandomGenerator.global)
    }

    /// Self-attention when `context` is nil, else cross-attention from `x` to `context`.
    /// x: [B, Tq, C]; context: [B, Tk, Ckv]; mask: 1 = blocked, broadcastable to [B, H, Tq, Tk]. `keyLengths`, when
    /// given, says the same as a padding mask (row b's first keyLengths[b] keys are real). Self-attention without a
    /// mask, or with the lengths, runs on fused kernels: the tiled inference kernel without gradients, else
    /// `Tensor.selfAttention`; a mask without lengths, cross-attention and `keepWeights` compose it from primitives.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, mask: Tensor? = nil, causal: Bool = false, keyLengths: [Int]? = nil) -> Tensor {
        let source = context ?? x
        let (b, tq, c) = (x.shape[0], x.shape[1], x.shape[2])
        let tk = source.shape[1]
        let hs = c / headCount
        if context == nil && !keepWeights && (mask == nil || keyLengths != nil) {
            if GradMode.isEnabled, let qkv = packedProjection(x) {
                // Training: one op, forward and backward without [B, H, T, T] tensors, over one [C -> 3C] product.
                return output(Tensor.selfAttention(packed: qkv, heads: headCount, causal: causal, keyLengths: keyLengths))
            }
            let q = query(x).reshape([b, tq, headCount, hs])
            if !GradMode.isEnabled && hs <= 256 && causal == (keyLengths == nil) {
                let k = key(x).reshape([b, tq, headCount, hs]).transposed(1, 2)
                let v = value(x).reshape([b, tq, headCount, hs]).transposed(1, 2)
                return output(Attention.fusedSelfAttention(query: q, key: k, value: v, keyLengths: keyLengths, causal: causal))
            }
            // The unmasked encoder, and projections that cannot be joined: the same op over three products.
            let k = key(x).reshape([b, tq, headCount, hs]), v = value(x).reshape([b, tq, headCount, hs])
            return output(Tensor.selfAttention(query: q, key: k, value: v, causal: causal, keyLengths: keyLengths))
        }
        let q = query(x).reshape([b, tq, headCount, hs]).transposed(1, 2)       // (B, H, Tq, hs)
        let k = key(source).reshape([b, tk, headCount, hs]).transposed(1, 2)    // (B, H, Tk, hs)
        let v = value(source).reshape([b, tk, headCount, hs]).transposed(1, 2)  // (B, H, Tk, hs)
        let (y, weights) = Attention.scaledDotProduct(query: q, key: k, value: v, mask: mask, causal: causal)
        if keepWeights { lastWeights = weights.detached() }
        return output(y.transposed(1, 2).reshape([b, tq, c]))
    }

    /// x times the query, key and value weights joined into one [3C, C] matrix (and their biases), or nil when the
    /// three cannot be joined (different input widths, a bias on some only). One product reads x once and its
    /// backward gives x one gradient where three products read x three times and added three gradients (0-3% of a
    /// GPT step at width 384, measured with the gradient changes of the same commit). The joined weights are a copy
    /// made per call (3C^2 floats, against B T C of x); the gradients reach the three weights through the
    /// concatenation.
    private func packedProjection(_ x: Tensor) -> Tensor? {
        guard key.inFeatures == query.inFeatures, value.inFeatures == query.inFeatures,
              (query.bias == nil) == (key.bias == nil), (key.bias == nil) == (value.bias == nil) else { return nil }
        let y = x.matmul(Tensor.concat([query.weight, key.weight, value.weight], axis: 0).transposed(0, 1))
        guard let qb = query.bias, let kb = key.bias, let vb = value.bias else { return y }
        return y + Tensor.concat([qb, kb, vb], axis: 0)
    }
}
