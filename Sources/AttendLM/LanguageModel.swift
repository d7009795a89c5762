// The language-model interface every decoder family implements (Llama, GPT-2, OPT, the GPTs trained here),
// so that one generation engine, one server and one trainer serve them all. Its input is token ids, input
// embeddings, or both spliced together: the way a multimodal model feeds image vectors to the decoder
// (llama.cpp's `llama_batch.embd`, mlx-swift-lm's `LMInput`).

import AttendTensor
import CAttendKernels

/// What a language model reads: token ids, and vectors spliced in between them (image features projected
/// into the model's embedding space), in order.
///
/// ```swift
/// let input = LMInput([1, 42, 7])                                         // tokens only
/// let withImage = LMInput(segments: [.tokens(prefix), .embeddings(imageVectors), .tokens(question)])
/// withImage.count                                                          // prefix + image rows + question
/// ```
public struct LMInput {
    public enum Segment {
        case tokens([Int32])
        /// Vectors [n, width] that stand in the sequence as n positions.
        case embeddings(Tensor)
    }

    public var segments: [Segment]

    public init(_ tokens: [Int32]) { segments = [.tokens(tokens)] }
    public init(segments: [Segment]) { self.segments = segments }

    /// Positions in the sequence (tokens plus embedding rows).
    public var count: Int {
        segments.reduce(0) { n, s in
            switch s {
            case .tokens(let t): return n + t.count
            case .embeddings(let e): return n + e.shape[0]
            }
        }
    }

    /// The token ids alone (what repetition penalties look at).
    public var tokenIds: [Int32] {
        segments.flatMap { s -> [Int32] in if case .tokens(let t) = s { return t } else { return [] } }
    }

    /// Token ids when there are no spliced vectors.
    public var onlyTokens: [Int32]? {
        if segments.allSatisfy({ if case .tokens = $0 { return true } else { return false } }) { return tokenIds }
        return nil
    }
}

/// What one forward pass returns: logits [T, vocab] (or [1, vocab] for the last position), and the attention
/// weights [heads, T, S] of one layer when they were asked for.
public struct LMOutput {
    public var logits: Tensor
    public var attention: Tensor?

    public init(logits: Tensor, attention: Tensor? = nil) {
        self.logits = logits
        self.attention = attention
    }
}

/// A decoder-only language model: Llama (GGUF or Hugging Face), GPT-2, OPT, or a GPT trained here.
///
/// Inference runs through `forward(_:cache:lastOnly:attentionLayer:)`, one prompt or one token at a time
/// after what the KV cache holds. Training runs through `logits(inputEmbeddings:)`, which records gradients
/// for the weights and for the input vectors (so a projector in front of a frozen LM trains).
///
/// ```swift
/// let cache = model.makeCache(capacity: 64)
/// let logits = model([1, 17, 3], cache: cache, lastOnly: true)            // [1, vocab]
/// let next = model([Int32(logits.argmax(axis: -1).data[0])], cache: cache, lastOnly: true)
/// ```
public protocol LanguageModel: AnyObject {
    var contextLength: Int { get }
    var vocabularySize: Int { get }
    /// Width of the token embeddings, which spliced input vectors must have.
    var embeddingWidth: Int { get }
    var layerCount: Int { get }
    var queryHeadCount: Int { get }
    /// An empty cache for `capacity` positions.
    func makeCache(capacity: Int) -> KVCache
    /// Token embeddings: ids [...] -> [..., width]. Differentiable with float weights.
    func embed(_ ids: IntTensor) -> Tensor
    /// Reads `input` after the positions already in `cache` (inference: no gradients), appends their keys and
    /// values, and returns logits [T, vocab] (only the last position's when `lastOnly`), with the attention
    /// weights [heads, T, S] of `attentionLayer` when it is set.
    func forward(_ input: LMInput, cache: KVCache, lastOnly: Bool, attentionLayer: Int?) -> LMOutput
    /// The last layer's normalized hidden states [B, T, width] for input vectors [B, T, width], causal, with no
    /// cache: what a task head reads (GPT-1's fine-tuning) and what `vocabularyLogits` projects. Differentiable.
    func finalHiddenStates(inputEmbeddings: Tensor) -> Tensor
    /// Hidden states [..., width] -> logits [..., vocab] through the output layer. Differentiable.
    func vocabularyLogits(_ hidden: Tensor) -> Tensor
    /// One decoding step for several sequences at once: token b goes after the positions in `caches[b]`; returns
    /// logits [B, vocab]. Models that batch it read their weights once per step for all sequences; the default runs
    /// `forward` once per sequence.
    func forwardBatch(_ tokens: [Int32], caches: [KVCache]) -> Tensor
}

extension LanguageModel {
    public func forwardBatch(_ tokens: [Int32], caches: [KVCache]) -> Tensor {
        Tensor.concat(zip(tokens, caches).map { forward(LMInput([$0]), cache: $1, lastOnly: true, attentionLayer: nil).logits }, axis: 0)
    }
}

extension LanguageModel {
    /// Logits [B, T, vocab] for whole sequences of input vectors [B, T, width], causal, with no cache.
    /// Records gradients (for the weights and for `inputEmbeddings`) when gradient mode is on.
    public func logits(inputEmbeddings: Tensor) -> Tensor { vocabularyLogits(finalHiddenStates(inputEmbeddings: inputEmbeddings)) }
}

extension LanguageModel {
    /// Logits for token ids after those in `cache` (see `forward`).
    public func callAsFunction(_ tokens: [Int32], cache: KVCache, lastOnly: Bool = false) -> Tensor {
        forward(LMInput(tokens), cache: cache, lastOnly: lastOnly, attentionLayer: nil).logits
    }

    /// Logits [B, T, vocab] for token ids [B, T] (training).
    public func logits(_ ids: IntTensor) -> Tensor { logits(inputEmbeddings: embed(ids)) }

    /// The input's rows [T, width]: token embeddings with the spliced vectors in their places.
    public func inputEmbeddings(_ input: LMInput) -> Tensor {
        let parts = input.segments.compactMap { s -> Tensor? in
            switch s {
            case .tokens(let t): return t.isEmpty ? nil : embed(IntTensor(t, shape: [t.count]))
            case .embeddings(let e):
                precondition(e.rank == 2 && e.shape[1] == embeddingWidth,
                             "LMInput: spliced vectors must be [n, \(embeddingWidth)], got \(e.shape)")
                return e
            }
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
    }

    /// A clear error for token ids the model has no embedding for (a tokenizer from another model).
    public func checkTokenIds(_ ids: [Int32]) throws {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw AttendError("token id \(bad) is outside the model's vocabulary of \(vocabularySize) (is the tokenizer from another model?)")
        }
    }

    /// Checks an input before a forward pass: valid ids, spliced vectors of the model's width, and room in the context.
    public func check(_ input: LMInput) throws {
        try checkTokenIds(input.tokenIds)
        for case .embeddings(let e) in input.segments where e.rank != 2 || e.shape[1] != embeddingWidth {
            throw AttendError("spliced input vectors have shape \(e.shape); the model reads [n, \(embeddingWidth)]")
        }
        guard input.count > 0 else { throw AttendError("the prompt is empty") }
    }
}

/// Keys and values of the positions seen so far, per layer: [kvHeads, capacity, headSize]. One cache per
/// sequence; beam search forks it with `copy()`.
///
/// A `.float16` cache stores them as IEEE half precision, as llama.cpp does: half the memory, and half the bytes
/// that each decoding step reads, which at a few thousand positions is most of what a step costs. Llama models with
/// quantized (GGUF) weights use one; float models keep `.float32`, whose results match the float references.
///
/// ```swift
/// let cache = KVCache(layers: 30, kvHeads: 3, headSize: 64, capacity: 4096, precision: .float16)
/// cache.write(layer: 0, keys: k, values: v)        // k, v [T, 3, 64] at positions cache.count ..< cache.count + T
/// let y = cache.causalAttention(queries: q, layer: 0, kvHeads: 3)
/// ```
public final class KVCache {
    public enum Precision: Sendable { case float32, float16 }

    /// Float32 storage, [kvHeads, capacity, headSize] per layer (empty for a `.float16` cache).
    package var keys: [Tensor]
    package var values: [Tensor]
    /// Float16 storage, the same layout (empty for a `.float32` cache).
    package let halfKeys: [UnsafeMutablePointer<UInt16>]
    package let halfValues: [UnsafeMutablePointer<UInt16>]
    public private(set) var count = 0
    public let capacity: Int
    public let kvHeads: Int
    public let headSize: Int
    public let precision: Precision
    public var layerCount: Int { precision == .float32 ? keys.count : halfKeys.count }

    public init(layers: Int, kvHeads: Int, headSize: Int, capacity: Int, precision: Precision = .float32) {
        (self.capacity, self.kvHeads, self.headSize, self.precision) = (capacity, kvHeads, headSize, precision)
        let shape = [kvHeads, capacity, headSize], n = kvHeads * capacity * headSize
        if precision == .float32 {
            keys = (0..<layers).map { _ in Tensor(shape: shape) }
            values = (0..<layers).map { _ in Tensor(shape: shape) }
            (halfKeys, halfValues) = ([], [])
        } else {
            (keys, values) = ([], [])
            halfKeys = (0..<layers).map { _ in UnsafeMutablePointer<UInt16>.allocate(capacity: Swift.max(n, 1)) }
            halfValues = (0..<layers).map { _ in UnsafeMutablePointer<UInt16>.allocate(capacity: Swift.max(n, 1)) }
        }
    }

    deinit {
        for p in halfKeys { p.deallocate() }
        for p in halfValues { p.deallocate() }
    }

    /// Counts `n` more positions as written (a model calls it after writing their keys and values in every layer).
    public func advance(_ n: Int) { count += n }
    public func reset() { count = 0 }

    /// Forgets everything after the first `n` positions (a shared prompt prefix stays).
    public func truncate(to n: Int) {
        precondition(n >= 0 && n <= count, "KVCache.truncate(to: \(n)) with \(count) positions")
        count = n
    }

    /// Writes keys and values [T, kvHeads, headSize] of layer `l` at positions `count ..< count + T` (a model writes
    /// every layer, then calls `advance(T)`).
    public func write(layer l: Int, keys k: Tensor, values v: Tensor) {
        let t = k.shape[0], start = count
        precondition(k.shape == [t, kvHeads, headSize] && v.shape == k.shape && start + t <= capacity,
                     "KVCache.write: keys \(k.shape), values \(v.shape) at \(start) in a cache of [\(kvHeads), \(capacity), \(headSize)]")
        switch precision {
        case .float32:
            keys[l].slice(axis: 1, start: start, length: t).assign(k.permute([1, 0, 2]))
            values[l].slice(axis: 1, start: start, length: t).assign(v.permute([1, 0, 2]))
        case .float16:
            let (kc, vc) = (k.contiguous(), v.contiguous())
            attend_store_half_rows(kc.pointer, t, kvHeads, headSize, halfKeys[l], capacity, start)
            attend_store_half_rows(vc.pointer, t, kvHeads, headSize, halfValues[l], capacity, start)
        }
    }

    /// Keys and values of layer `l` at positions `0 ..< length` as float tensors [kvHeads, length, headSize] (a view of
    /// a float32 cache; a widened copy of a float16 one).
    public func keysAndValues(layer l: Int, length: Int) -> (keys: Tensor, values: Tensor) {
        precondition(length <= capacity, "KVCache.keysAndValues: \(length) positions in a cache of \(capacity)")
        switch precision {
        case .float32:
            return (keys[l].slice(axis: 1, start: 0, length: length), values[l].slice(axis: 1, start: 0, length: length))
        case .float16:
            let k = Tensor(shape: [kvHeads, length, headSize]), v = Tensor(shape: [kvHeads, length, headSize])
            attend_load_half_rows(halfKeys[l], kvHeads, capacity, headSize, length, k.pointer)
            attend_load_half_rows(halfValues[l], kvHeads, capacity, headSize, length, v.pointer)
            return (k, v)
        }
    }

    /// An independent copy (beam search forks a cache for each surviving hypothesis).
    public func copy() -> KVCache {
        let c = KVCache(layers: layerCount, kvHeads: kvHeads, headSize: headSize, capacity: capacity, precision: precision)
        copyPrefix(count, into: c)
        return c
    }

    /// Copies the first `n` positions of every layer into `other` (a cache of the same model and precision, any
    /// capacity of at least `n`), which then holds exactly those: how a prompt that starts like an earlier one reuses
    /// its keys and values.
    public func copyPrefix(_ n: Int, into other: KVCache) {
        precondition(n <= count && n <= other.capacity && other.layerCount == layerCount && other.kvHeads == kvHeads
                     && other.headSize == headSize && other.precision == precision,
                     "KVCache.copyPrefix(\(n)) of \(count) positions into capacity \(other.capacity), or caches of different models")
        let (heads, hs) = (kvHeads, headSize)
        for l in 0..<layerCount {
            for h in 0..<heads {
                let (from, to) = (h * capacity * hs, h * other.capacity * hs)
                switch precision {
                case .float32:
                    (other.keys[l].pointer + to).update(from: keys[l].pointer + from, count: n * hs)
                    (other.values[l].pointer + to).update(from: values[l].pointer + from, count: n * hs)
                case .float16:
                    (other.halfKeys[l] + to).update(from: halfKeys[l] + from, count: n * hs)
                    (other.halfValues[l] + to).update(from: halfValues[l] + from, count: n * hs)
                }
            }
        }
        other.count = n
    }
}

extension KVCache {
    /// Causal attention of queries [T, heads, headSize] at the positions after the `count` already here, over
    /// every position of `layer` up to and including theirs (their keys and values already written), with the
    /// fused tiled kernel: no [T, S] score matrix, no copy of the cache. Grouped-query heads share KV head
    /// `h / (heads / kvHeads)`. Returns [T, heads * headSize]. Inference only.
    public func causalAttention(queries q: Tensor, layer l: Int, kvHeads: Int) -> Tensor {
        let (t, hq, hs) = (q.shape[0], q.shape[1], q.shape[2])
        precondition(q.rank == 3 && hs <= 256 && hq % kvHeads == 0 && count + t <= capacity && kvHeads == self.kvHeads && hs == headSize,
                     "causalAttention: queries \(q.shape), \(kvHeads) KV heads, \(count) + \(t) positions in a cache of [\(self.kvHeads), \(capacity), \(headSize)]")
        let y = Tensor(shape: [t, hq * hs])
        let qc = q.contiguous()
        // A float16 cache is widened once per call for the tiled kernel (a prompt's many rows reuse every key).
        let (k, v) = precision == .float32 ? (keys[l], values[l]) : keysAndValues(layer: l, length: count + t)
        let (qp, kp, vp, yp) = (qc.pointer, k.pointer, v.pointer, y.pointer)
        let (start, capacity) = (count, k.shape[1])
        let scale = 1 / Float(hs).squareRoot()
        let items = attend_prefill_attention_items(t, hq)
        // Items differ in cost (later rows see more keys), so the pool hands them out one at a time; a small
        // problem runs on this thread.
        if t * (start + t) * hq * hs < 1 << 17 {
            attend_prefill_attention(qp, kp, vp, t, start, hq, kvHeads, capacity, hs, scale, 0, items, yp)
        } else {
            Parallel.forChunks(items) { w in attend_prefill_attention(qp, kp, vp, t, start, hq, kvHeads, capacity, hs, scale, w, w + 1, yp) }
        }
        return y
    }

    /// One decoding step: the query [1, heads, headSize] of the position after the `count` here (its key and value
    /// already written) against every position of `layer`. Each cached row is read once for the group of query
    /// heads sharing it, and long caches are split over the threads by key ranges (flash-decoding's split), the
    /// parts merged by their softmax statistics. Returns [1, heads * headSize].
    public func decodeAttention(query q: Tensor, layer l: Int, kvHeads: Int) -> Tensor {
        let (hq, hs) = (q.shape[1], q.shape[2])
        let s = count + 1
        precondition(q.shape[0] == 1 && hq % kvHeads == 0 && s <= capacity && kvHeads == self.kvHeads && hs == headSize,
                     "decodeAttention: query \(q.shape), \(kvHeads) KV heads, \(s) positions in a cache of [\(self.kvHeads), \(capacity), \(headSize)]")
        let parts = Swift.max(1, Swift.min(Parallel.threads, s * kvHeads * hs / 32_768))
        let y = Tensor(shape: [1, hq * hs])
        let qc = q.contiguous()
        let scores = Tensor(shape: [hq * s]), m = Tensor(shape: [parts * hq]), sums = Tensor(shape: [parts * hq])
        let o = Tensor(shape: [parts * hq * hs])
        let (qp, sp, mp, lp, op) = (qc.pointer, scores.pointer, m.pointer, sums.pointer, o.pointer)
        let capacity = capacity
        let scale = 1 / Float(hs).squareRoot()
        switch precision {
        case .float32:
            let (kp, vp) = (keys[l].pointer, values[l].pointer)
            Parallel.forChunks(parts) { p in
                let (j0, j1) = (s * p / parts, s * (p + 1) / parts)
                attend_decode_attention_part(qp, kp, vp, hq, kvHeads, capacity, hs, scale, j0, j1, sp + hq * j0, mp + p * hq, lp + p * hq, op + p * hq * hs)
            }
        case .float16:
            let (kp, vp) = (halfKeys[l], halfValues[l])
            Parallel.forChunks(parts) { p in
                let (j0, j1) = (s * p / parts, s * (p + 1) / parts)
                attend_decode_attention_part_half(qp, kp, vp, hq, kvHeads, capacity, hs, scale, j0, j1, sp + hq * j0, mp + p * hq, lp + p * hq,
                                                  op + p * hq * hs)
            }
        }
        attend_decode_attention_merge(parts, hq, hs, mp, lp, op, y.pointer)
        return y
    }
}
