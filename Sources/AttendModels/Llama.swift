// Llama-family decoder (Touvron et al., 2023): RMSNorm, rotary position embeddings (Su et al., 2021),
// grouped-query attention (Ainslie et al., 2023) with a KV cache, and a SwiGLU feed-forward network.
// Loads GGUF checkpoints (e.g. SmolLM2-135M-Instruct; Q4_0 / Q4_1 / Q8_0 matrices stay in their blocks) and
// Hugging Face folders (float32). With float weights it trains like every other model: `logits(inputEmbeddings:)`
// records gradients for the weights and for the input vectors.

import AttendLM
import AttendNN
import AttendTensor
import CAttendKernels
import Foundation

/// The shape of a Llama model. Decodes a Hugging Face `config.json` (the coding keys are its names);
/// `fromGGUF` reads the same values from GGUF metadata.
public struct LlamaConfig: Codable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var ropeTheta: Float
    public var rmsNormEps: Float
    public var contextLength: Int

    public var headSize: Int { hiddenSize / headCount }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case layerCount = "num_hidden_layers", headCount = "num_attention_heads", kvHeadCount = "num_key_value_heads"
        case ropeTheta = "rope_theta", rmsNormEps = "rms_norm_eps", contextLength = "max_position_embeddings"
        case ropeParameters = "rope_parameters", ropeScaling = "rope_scaling", headDim = "head_dim"
    }

    /// transformers 5 keeps RoPE settings in rope_parameters; older configs have rope_theta / rope_scaling.
    struct RopeParameters: Codable {
        var ropeType: String?
        var ropeTheta: Double?
        enum CodingKeys: String, CodingKey { case ropeType = "rope_type", ropeTheta = "rope_theta" }
    }

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int, kvHeadCount: Int,
                ropeTheta: Float, rmsNormEps: Float, contextLength: Int) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.ropeTheta = ropeTheta
        self.rmsNormEps = rmsNormEps
        self.contextLength = contextLength
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let heads = try c.decode(Int.self, forKey: .headCount)
        let rope = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        if let type = rope?.ropeType, type != "default" {
            throw AttendError("rope_type '\(type)' is not supported (only 'default')")
        }
        if c.contains(.ropeScaling), try !c.decodeNil(forKey: .ropeScaling) { throw AttendError("rope_scaling is not supported") }
        let theta = try rope?.ropeTheta ?? c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10_000
        self.init(vocabSize: try c.decode(Int.self, forKey: .vocabSize), hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
                  intermediateSize: try c.decode(Int.self, forKey: .intermediateSize), layerCount: try c.decode(Int.self, forKey: .layerCount),
                  headCount: heads, kvHeadCount: try c.decodeIfPresent(Int.self, forKey: .kvHeadCount) ?? heads,
                  ropeTheta: Float(theta), rmsNormEps: Float(try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6),
                  contextLength: try c.decodeIfPresent(Int.self, forKey: .contextLength) ?? 2048)
        if let d = try c.decodeIfPresent(Int.self, forKey: .headDim), heads > 0, d != hiddenSize / heads {
            throw AttendError("head_dim \(d) differs from hidden_size / num_attention_heads = \(hiddenSize / heads), which Attend assumes")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(layerCount, forKey: .layerCount)
        try c.encode(headCount, forKey: .headCount)
        try c.encode(kvHeadCount, forKey: .kvHeadCount)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(contextLength, forKey: .contextLength)
    }

    /// A clear error for sizes that cannot make a model: every count positive, heads dividing the width into
    /// even head sizes, query heads a multiple of KV heads, and a context no larger than 2^20 positions.
    public func validate(source: String) throws {
        let sizes = [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                     ("num_hidden_layers", layerCount), ("num_attention_heads", headCount), ("num_key_value_heads", kvHeadCount),
                     ("max_position_embeddings", contextLength)]
        if let (key, value) = sizes.first(where: { $0.1 <= 0 }) { throw AttendError("\(source): \(key) is \(value); it must be positive") }
        guard hiddenSize % headCount == 0, headCount % kvHeadCount == 0, headSize % 2 == 0 else {
            throw AttendError("\(source): \(headCount) heads / \(kvHeadCount) KV heads do not divide width \(hiddenSize) into even head sizes")
        }
        guard contextLength <= 1 << 20 else { throw AttendError("\(source): a context of \(contextLength) positions is more than Attend supports (2^20)") }
        guard ropeTheta.isFinite, ropeTheta > 0, rmsNormEps.isFinite, rmsNormEps >= 0 else {
            throw AttendError("\(source): rope_theta \(ropeTheta) and rms_norm_eps \(rmsNormEps) must be finite and positive")
        }
        // At 4 bits a value, the least a GGUF file stores; float copies of quantized weights are never paged in.
        try ShapeArithmetic.requireFitsInMemory([[2, vocabSize, hiddenSize], [layerCount, 2, hiddenSize, hiddenSize],
                                                 [layerCount, 2, kvHeadCount, headSize, hiddenSize], [layerCount, 3, intermediateSize, hiddenSize]],
                                                source: source, bytesPerValue: 0.5)
    }

    /// From a Hugging Face LlamaForCausalLM config.json already parsed (decoded through the coding keys, then validated).
    public static func fromHuggingFace(_ json: [String: Any], path: String) throws -> LlamaConfig {
        let c = try ConfigDecoding.decode(LlamaConfig.self, from: try JSONSerialization.data(withJSONObject: json), source: path)
        try c.validate(source: path)
        return c
    }

    /// The GGUF metadata keys (llama.*) this configuration comes from.
    public static func fromGGUF(_ f: GGUFFile) throws -> LlamaConfig {
        let arch = f.metadata["general.architecture"]?.string ?? "?"
        guard arch == "llama" else { throw AttendError("\(f.path): architecture '\(arch)' is not supported (Attend runs 'llama' GGUF files)") }
        let vocab = f.metadata["llama.vocab_size"]?.int ?? f.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0
        let c = LlamaConfig(vocabSize: vocab, hiddenSize: try f.requireInt("llama.embedding_length"),
                            intermediateSize: try f.requireInt("llama.feed_forward_length"), layerCount: try f.requireInt("llama.block_count"),
                            headCount: try f.requireInt("llama.attention.head_count"),
                            kvHeadCount: f.metadata["llama.attention.head_count_kv"]?.int ?? f.metadata["llama.attention.head_count"]?.int ?? 1,
                            ropeTheta: Float(f.metadata["llama.rope.freq_base"]?.double ?? 10_000),
                            rmsNormEps: Float(f.metadata["llama.attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
                            contextLength: f.metadata["llama.context_length"]?.int ?? 2048)
        try c.validate(source: f.path)
        return c
    }
}

/// y = x W^T, with W [out, in] in float32 or kept in its GGUF blocks (Q4_0, Q4_1, Q8_0). The checkpoint path of
/// the weight is this layer's (`layers.0.attention.query.weight`) either way.
public final class LlamaLinear: Module {
    public let weight: Tensor
    /// The weight's GGUF blocks; when set, `weight` is not loaded (see `LlamaModel.loadFloatWeights()`).
    public internal(set) var blocks: QuantizedMatrix?
    /// A low-rank update added to the product (LoRA), trained or loaded; nil for a plain projection.
    public internal(set) var adapter: LoRA?

    init(_ inFeatures: Int, _ outFeatures: Int, generator: inout RandomGenerator) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, generator: &generator, requiresGrad: true)
    }

    /// Differentiable with float weights. Quantized weights compute in float32 on expanded tiles, without gradients.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let base: Tensor
        if let q = blocks {
            precondition(!(GradMode.isEnabled && x.requiresGrad), "LlamaLinear: gradients through quantized weights need float weights (call loadFloatWeights() first)")
            base = q.matmul(x.reshape([-1, q.columns])).reshape(Array(x.shape.dropLast()) + [q.rows])
        } else {
            base = x.matmul(weight.transposed(0, 1))
        }
        return adapter.map { base + $0(x) } ?? base
    }
}

/// One inference pass's shared state: whether 8-bit activations are used, and the last input so quantized
/// (q/k/v and gate/up read the same input; it is quantized once).
final class LlamaPass {
    let int8: Bool
    /// A prompt's many rows: 8-bit activations only where they beat float tiles (`prefersInt8Activations`).
    /// Decoding steps (one token per sequence) use them for every quantized matrix.
    let prompt: Bool
    private var last: (input: Tensor, activations: QuantizedActivations)?

    init(int8: Bool, prompt: Bool) { (self.int8, self.prompt) = (int8, prompt) }

    /// x W^T for x [T, in]. With 8-bit activations on: one token multiplies straight from the blocks, and so do
    /// several for matrices whose repacked kernel beats float tiles (Q4_0); otherwise several rows go through
    /// float32 GEMMs on expanded tiles. Float weights: the plain product.
    func project(_ x: Tensor, _ layer: LlamaLinear) -> Tensor {
        let base = project(x, layer.blocks, layer.weight)
        return layer.adapter.map { base + $0(x) } ?? base
    }

    func project(_ x: Tensor, _ blocks: QuantizedMatrix?, _ weight: Tensor) -> Tensor {
        guard let q = blocks else { return x.matmul(weight.transposed(0, 1)) }
        if usesInt8(q) { return q.matmul(activations(x)) }
        return x.count == q.columns ? q.matvec(x) : q.matmul(x)
    }

    /// x W^T for several layers that read the same x (query, key and value; gate and up). Where every one of them
    /// would multiply 8-bit activations, they do so in one parallel pass (`QuantizedMatrix.matmul(_:_:)`), with the
    /// same values as one at a time.
    func project(_ x: Tensor, _ layers: [LlamaLinear]) -> [Tensor] {
        let blocks = layers.compactMap { $0.adapter == nil ? $0.blocks : nil }
        guard blocks.count == layers.count, blocks.allSatisfy(usesInt8) else { return layers.map { project(x, $0) } }
        return QuantizedMatrix.matmul(blocks, activations(x))
    }

    private func usesInt8(_ q: QuantizedMatrix) -> Bool { int8 && (!prompt || q.prefersInt8Activations) }

    /// x in 8-bit blocks, quantized once for the products that read it.
    private func activations(_ x: Tensor) -> QuantizedActivations {
        if let c = last, c.input === x { return c.activations }
        let a = QuantizedActivations(x)
        last = (x, a)
        return a
    }
}

/// cos / sin of every rotary angle for positions start..<start + count, laid out for the vector kernel: each
/// cosine twice, (-sin, +sin) per pair, [count, headSize].
struct RotaryTables {
    let cos2: [Float], sin2: [Float]
    let start: Int, count: Int, half: Int

    init(headSize: Int, theta: Float, start: Int, count: Int) {
        half = headSize / 2
        self.start = start
        self.count = count
        var cos2 = [Float](repeating: 0, count: count * headSize), sin2 = cos2
        for p in 0..<count {
            for i in 0..<half {
                let angle = Double(start + p) * pow(Double(theta), -2 * Double(i) / Double(headSize))
                let (c, s) = (Float(Foundation.cos(angle)), Float(Foundation.sin(angle)))
                (cos2[p * headSize + 2 * i], cos2[p * headSize + 2 * i + 1]) = (c, c)
                (sin2[p * headSize + 2 * i], sin2[p * headSize + 2 * i + 1]) = (-s, s)
            }
        }
        (self.cos2, self.sin2) = (cos2, sin2)
    }

    /// Rotates adjacent pairs (2i, 2i+1) of each head (llama.cpp's normal RoPE mode, which GGUF checkpoints are
    /// permuted for). x: [T, heads, headSize] or [B, T, heads, headSize]; differentiable, vectorized, threaded.
    func apply(_ x: Tensor) -> Tensor {
        precondition(x.shape[x.rank - 3] == count && x.shape[x.rank - 1] == 2 * half, "RoPE: input \(x.shape) for \(count) positions of head size \(2 * half)")
        return x.rotaryPairs(cos2: cos2, sin2: sin2)
    }
}

public final class LlamaAttention: Module {
    public let query: LlamaLinear, key: LlamaLinear, value: LlamaLinear, output: LlamaLinear
    let headCount: Int, kvHeadCount: Int, headSize: Int, ropeTheta: Float

    init(_ c: LlamaConfig, generator: inout RandomGenerator) {
        (headCount, kvHeadCount, headSize, ropeTheta) = (c.headCount, c.kvHeadCount, c.headSize, c.ropeTheta)
        query = LlamaLinear(c.hiddenSize, c.headCount * c.headSize, generator: &generator)
        key = LlamaLinear(c.hiddenSize, c.kvHeadCount * c.headSize, generator: &generator)
        value = LlamaLinear(c.hiddenSize, c.kvHeadCount * c.headSize, generator: &generator)
        output = LlamaLinear(c.headCount * c.headSize, c.hiddenSize, generator: &generator)
    }

    /// Training: x [B, T, C] -> [B, T, C], causal over the whole sequence, differentiable.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        self(x, rope: RotaryTables(headSize: headSize, theta: ropeTheta, start: 0, count: x.shape[1]))
    }

    /// The same with the rotary tables of positions 0 ..< T made once for all layers.
    func callAsFunction(_ x: Tensor, rope: RotaryTables) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let (hq, hkv, hs) = (headCount, kvHeadCount, headSize)
        let q = rope.apply(query(x).reshape([b, t, hq, hs])).permute([0, 2, 1, 3])     // (B, Hq, T, hs)
        var k = rope.apply(key(x).reshape([b, t, hkv, hs])).permute([0, 2, 1, 3])      // (B, Hkv, T, hs)
        var v = value(x).reshape([b, t, hkv, hs]).permute([0, 2, 1, 3])
        if hq != hkv {  // each KV head serves `group` query heads
            let group = hq / hkv
            k = k.reshape([b, hkv, 1, t, hs]).expand(to: [b, hkv, group, t, hs]).reshape([b, hq, t, hs])
            v = v.reshape([b, hkv, 1, t, hs]).expand(to: [b, hkv, group, t, hs]).reshape([b, hq, t, hs])
        }
        let (y, _) = Attention.scaledDotProduct(query: q, key: k, value: v, causal: true)           // (B, Hq, T, hs)
        return output(y.permute([0, 2, 1, 3]).reshape([b, t, hq * hs]))
    }

    /// Inference: x [T, C] after the `cache.count` positions of layer `l`; appends keys and values. Returns the
    /// output [T, C] and, when `keepWeights`, the attention weights [heads, T, S].
    func callAsFunction(_ x: Tensor, cache: KVCache, layer l: Int, rope: RotaryTables, pass: LlamaPass, keepWeights: Bool) -> (Tensor, Tensor?) {
        let (t, start) = (x.shape[0], cache.count)
        let (hq, hkv, hs) = (headCount, kvHeadCount, headSize)
        let qkv = pass.project(x, [query, key, value])
        let q = rope.apply(qkv[0].reshape([t, hq, hs]))  // (T, Hq, hs)
        let k = rope.apply(qkv[1].reshape([t, hkv, hs]))   // (T, Hkv, hs)
        let v = qkv[2].reshape([t, hkv, hs])
        cache.write(layer: l, keys: k, values: v)
        let s = start + t
        var weights: Tensor?
        let attended: Tensor  // (T, Hq * hs)
        if t == 1 && !keepWeights {
            // One step: read the cache in place, each row once for its group of query heads.
            attended = cache.decodeAttention(query: q.reshape([1, hq, hs]), layer: l, kvHeads: hkv)
        } else if !keepWeights {
            // Many rows: the tiled kernel reads the cache in place and never stores the [T, S] scores.
            attended = cache.causalAttention(queries: q, layer: l, kvHeads: hkv)
        } else {
            let (cachedKeys, cachedValues) = cache.keysAndValues(layer: l, length: s)
            let keys = cachedKeys.contiguous().reshape([hkv, 1, s, hs]), values = cachedValues.contiguous().reshape([hkv, 1, s, hs])
            let queries = q.permute([1, 0, 2]).contiguous().reshape([hkv, hq / hkv, t, hs])  // query heads grouped by KV head
            let (y, w) = Attention.scaledDotProduct(query: queries, key: keys, value: values, causal: true)
            if keepWeights { weights = w.reshape([hq, t, s]) }
            attended = y.reshape([hq, t, hs]).permute([1, 0, 2]).reshape([t, hq * hs])
        }
        return (pass.project(attended, output), weights)
    }
}

extension LlamaAttention {
    /// One decoding step of several sequences: row b of x [B, C] goes after the positions in `caches[b]` (rotated by
    /// `ropes[b]`). The projections multiply all rows at once (the weights are read once for the batch); each row
    /// attends over its own cache.
    func decodeStep(_ x: Tensor, caches: [KVCache], layer l: Int, ropes: [RotaryTables], pass: LlamaPass) -> Tensor {
        let b = x.shape[0]
        let (hq, hkv, hs) = (headCount, kvHeadCount, headSize)
        let qkv = pass.project(x, [query, key, value])
        let (q, k, v) = (qkv[0], qkv[1], qkv[2])   // (B, H * hs)
        let attended = Tensor(shape: [b, hq * hs])
        for (i, cache) in caches.enumerated() {
            let qi = ropes[i].apply(q.slice(axis: 0, start: i, length: 1).reshape([1, hq, hs]))
            let ki = ropes[i].apply(k.slice(axis: 0, start: i, length: 1).reshape([1, hkv, hs]))
            let vi = v.slice(axis: 0, start: i, length: 1).reshape([1, hkv, hs])
            cache.write(layer: l, keys: ki, values: vi)
            let row = cache.decodeAttention(query: qi, layer: l, kvHeads: hkv).contiguous()
            (attended.pointer + i * hq * hs).update(from: row.pointer, count: hq * hs)
        }
        return pass.project(attended, output)
    }
}

public final class LlamaMLP: Module {
    public let gate: LlamaLinear, up: LlamaLinear, down: LlamaLinear

    init(_ c: LlamaConfig, generator: inout RandomGenerator) {
        gate = LlamaLinear(c.hiddenSize, c.intermediateSize, generator: &generator)
        up = LlamaLinear(c.hiddenSize, c.intermediateSize, generator: &generator)
        down = LlamaLinear(c.intermediateSize, c.hiddenSize, generator: &generator)
    }

    /// SwiGLU: down(silu(gate(x)) * up(x)). Differentiable with float weights.
    public func callAsFunction(_ x: Tensor) -> Tensor { down(Tensor.swiglu(gate: gate(x), up: up(x))) }

    func callAsFunction(_ x: Tensor, pass: LlamaPass) -> Tensor {
        let gateAndUp = pass.project(x, [gate, up])
        return pass.project(Tensor.swiglu(gate: gateAndUp[0], up: gateAndUp[1]), down)
    }
}

public final class LlamaBlock: Module {
    public let attentionNorm: RMSNorm
    public let attention: LlamaAttention
    public let mlpNorm: RMSNorm
    public let mlp: LlamaMLP

    init(_ c: LlamaConfig, generator: inout RandomGenerator) {
        attentionNorm = RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
        attention = LlamaAttention(c, generator: &generator)
        mlpNorm = RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
        mlp = LlamaMLP(c, generator: &generator)
    }

    /// Training: x [B, T, C] -> [B, T, C] (pre-norm residual attention, then the SwiGLU MLP).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        self(x, rope: RotaryTables(headSize: attention.headSize, theta: attention.ropeTheta, start: 0, count: x.shape[1]))
    }

    func callAsFunction(_ x: Tensor, rope: RotaryTables) -> Tensor {
        let h = x + attention(attentionNorm(x), rope: rope)
        return h + mlp(mlpNorm(h))
    }

    /// Inference after the cached positions of layer `l`.
    func callAsFunction(_ x: Tensor, cache: KVCache, layer l: Int, rope: RotaryTables, pass: LlamaPass, keepWeights: Bool) -> (Tensor, Tensor?) {
        let (a, weights) = attention(attentionNorm(x), cache: cache, layer: l, rope: rope, pass: pass, keepWeights: keepWeights)
        let h = x + a
        return (h + mlp(mlpNorm(h), pass: pass), weights)
    }
}

/// A Llama-family causal language model.
///
/// ```swift
/// let model = try LlamaModel.load(gguf: GGUFFile("SmolLM2-135M-Instruct.Q4_1.gguf"))
/// let cache = model.makeCache(capacity: 256)
/// let logits = model([1, 504, 3458], cache: cache, lastOnly: true)    // [1, 49152]
///
/// // Training (float weights): gradients for every weight and for the input vectors.
/// try model.loadFloatWeights()
/// let loss = Loss.crossEntropy(logits: model.logits(ids), targets: next)
/// loss.backward()
/// ```
public final class LlamaModel: Module, LanguageModel {
    public let config: LlamaConfig
    public let embedding: Embedding
    public let layers: [LlamaBlock]
    public let norm: RMSNorm
    /// Nil when the output projection is tied to the embedding (SmolLM2).
    public let output: LlamaLinear?
    /// The token embedding's GGUF blocks (rows are looked up from them; the tied output multiplies them).
    var embeddingBlocks: QuantizedMatrix?
    /// The file the quantized weights lie in, for `loadFloatWeights()`.
    var ggufSource: GGUFFile?
    /// llama.cpp's arithmetic on quantized weights: decode one token with 8-bit activations (integer block dot
    /// products), 1.3x faster than float activations, and keep the KV cache in half precision (`makeCache`), which
    /// halves what each step reads. The prompt always runs in float32 (on tiles of weights expanded from their
    /// blocks). Off: exact float32 everywhere (what the numpy reference checks).
    public var int8Activations = true
    /// What the model is called where it came from (the GGUF file's or the folder's name); adapters record it.
    public internal(set) var name = ""
    /// Other names the same model goes by (GGUF general.name), which an adapter may record instead.
    public internal(set) var aliases: [String] = []
    /// The settings of the attached LoRA adapters (nil without adapters).
    public internal(set) var loraConfig: LoRAConfig?

    public init(_ config: LlamaConfig, tiedOutput: Bool = true, generator: inout RandomGenerator) {
        self.config = config
        embedding = Embedding(config.vocabSize, config.hiddenSize, generator: &generator)
        layers = (0..<config.layerCount).map { _ in LlamaBlock(config, generator: &generator) }
        norm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps)
        output = tiedOutput ? nil : LlamaLinear(config.hiddenSize, config.vocabSize, generator: &generator)
    }

    public var contextLength: Int { config.contextLength }
    public var vocabularySize: Int { config.vocabSize }
    public var embeddingWidth: Int { config.hiddenSize }
    public var layerCount: Int { config.layerCount }
    public var queryHeadCount: Int { config.headCount }
    /// Half precision when the weights are quantized (GGUF blocks) and `int8Activations` is on: llama.cpp's default
    /// cache, half the bytes per decoding step (at 4,096 positions, 1.43x the tokens/s of a float32 cache). Float
    /// weights, or exact arithmetic asked for, get a float32 cache, which matches the float references.
    public func makeCache(capacity: Int) -> KVCache {
        KVCache(config: config, capacity: capacity, precision: int8Activations && isQuantized ? .float16 : .float32)
    }

    /// Whether any matrix is still in its GGUF blocks (training needs `loadFloatWeights()` first).
    public var isQuantized: Bool { embeddingBlocks != nil || namedModules().contains { ($0.module as? LlamaLinear)?.blocks != nil } }

    public func embed(_ ids: IntTensor) -> Tensor {
        guard let q = embeddingBlocks else { return embedding(ids) }
        return q.rows(ids.data).reshape(ids.shape + [config.hiddenSize])
    }

    /// The output projection of final hidden states [..., C] -> [..., vocab] (tied: the embedding table).
    func project(_ hidden: Tensor, pass: LlamaPass?) -> Tensor {
        if let output { return pass?.project(hidden, output) ?? output(hidden) }
        if let pass { return pass.project(hidden, embeddingBlocks, embedding.weight) }
        precondition(embeddingBlocks == nil || !(GradMode.isEnabled && hidden.requiresGrad),
                     "LlamaModel: gradients through the quantized embedding need float weights (call loadFloatWeights() first)")
        if let q = embeddingBlocks { return q.matmul(hidden.reshape([-1, config.hiddenSize])).reshape(Array(hidden.shape.dropLast()) + [config.vocabSize]) }
        return hidden.matmul(embedding.weight.transposed(0, 1))
    }

    /// Training: input vectors [B, T, C] -> logits [B, T, vocab], causal, no cache; differentiable.
    /// Training: input vectors [B, T, C] -> the final normalized hidden states [B, T, C] (before the output
    /// projection), causal; differentiable. A loss on some positions only projects those (`vocabularyLogits`).
    public func finalHiddenStates(inputEmbeddings x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == config.hiddenSize, "Llama: input embeddings must be [B, T, \(config.hiddenSize)], got \(x.shape)")
        precondition(x.shape[1] <= config.contextLength, "Llama: \(x.shape[1]) positions exceed the context (\(config.contextLength))")
        let rope = RotaryTables(headSize: config.headSize, theta: config.ropeTheta, start: 0, count: x.shape[1])
        var h = x
        for layer in layers { h = layer(h, rope: rope) }
        return norm(h)
    }

    /// Hidden states [..., C] -> logits [..., vocabulary] through the output projection; differentiable.
    public func vocabularyLogits(_ hidden: Tensor) -> Tensor { project(hidden, pass: nil) }

    /// Inference: runs `input` after the positions in `cache`, appends their keys and values, and returns logits.
    public func forward(_ input: LMInput, cache: KVCache, lastOnly: Bool, attentionLayer: Int?) -> LMOutput {
        let (t, start) = (input.count, cache.count)
        precondition(start + t <= min(cache.capacity, config.contextLength),
                     "Llama: \(start + t) tokens exceed the context (\(min(cache.capacity, config.contextLength)))")
        return withNoGrad {
            let pass = LlamaPass(int8: int8Activations, prompt: t > 1)
            let rope = RotaryTables(headSize: config.headSize, theta: config.ropeTheta, start: start, count: t)
            var x = inputEmbeddings(input)  // (T, C)
            var weights: Tensor?
            for (l, layer) in layers.enumerated() {
                let (y, w) = layer(x, cache: cache, layer: l, rope: rope, pass: pass, keepWeights: attentionLayer == l)
                x = y
                if let w { weights = w }
            }
            cache.advance(t)
            let last = lastOnly ? x.slice(axis: 0, start: t - 1, length: 1) : x
            return LMOutput(logits: project(norm(last), pass: pass), attention: weights)
        }
    }

    /// One decoding step for several sequences at once (continuous batching): token b goes after the positions in
    /// `caches[b]`. Returns logits [B, vocab], row b the same as `forward` of that token alone would give.
    public func forwardBatch(_ tokens: [Int32], caches: [KVCache]) -> Tensor {
        precondition(tokens.count == caches.count && !tokens.isEmpty, "Llama.forwardBatch: \(tokens.count) tokens for \(caches.count) caches")
        for c in caches { precondition(c.count + 1 <= min(c.capacity, config.contextLength), "Llama.forwardBatch: a cache is full (\(c.count) of \(c.capacity))") }
        return withNoGrad {
            let pass = LlamaPass(int8: int8Activations, prompt: false)
            let ropes = caches.map { RotaryTables(headSize: config.headSize, theta: config.ropeTheta, start: $0.count, count: 1) }
            var x = embed(IntTensor(tokens, shape: [tokens.count]))   // (B, C)
            for (l, layer) in layers.enumerated() {
                let h = x + layer.attention.decodeStep(layer.attentionNorm(x), caches: caches, layer: l, ropes: ropes, pass: pass)
                x = h + layer.mlp(layer.mlpNorm(h), pass: pass)
            }
            for c in caches { c.advance(1) }
            return project(norm(x), pass: pass)
        }
    }

    // MARK: - GGUF

    /// GGUF tensor names of our parameter paths.
    public static let ggufNames = CheckpointNames(
        exact: ["embedding.weight": "token_embd.weight", "norm.weight": "output_norm.weight", "output.weight": "output.weight"],
        prefixes: [("layers.", "blk.")],
        rules: [("attentionNorm.", "attn_norm."), ("attention.query.", "attn_q."), ("attention.key.", "attn_k."),
                ("attention.value.", "attn_v."), ("attention.output.", "attn_output."), ("mlpNorm.", "ffn_norm."),
                ("mlp.gate.", "ffn_gate."), ("mlp.up.", "ffn_up."), ("mlp.down.", "ffn_down.")])

    public static func ggufName(_ ours: String) -> String { ggufNames(ours) }

    /// Loads a llama-architecture GGUF file.
    public static func load(gguf file: GGUFFile) throws -> LlamaModel {
        let config = try LlamaConfig.fromGGUF(file)
        var g = RandomGenerator(seed: 0)
        // The model is built without initializing it. Float tensors are read from the file straight into it;
        // Q4_0 / Q4_1 / Q8_0 matrices stay in the mapped file, and their float tensors are never written, so their
        // memory is never paged in.
        let model = Initialization.skipping { LlamaModel(config, tiedOutput: file.tensors["output.weight"] == nil, generator: &g) }
        let linears = Dictionary(uniqueKeysWithValues: model.namedModules().compactMap { m in (m.module as? LlamaLinear).map { (m.name + ".weight", $0) } })
        for (name, t) in model.namedTensors() {
            if t.rank == 2, let q = try file.quantizedMatrix(ggufNames(name)) {
                guard [q.rows, q.columns] == t.shape else {
                    throw AttendError("\(file.path): tensor '\(ggufNames(name))' has shape [\(q.rows), \(q.columns)], but the metadata gives '\(name)' the shape \(t.shape)")
                }
                if name == "embedding.weight" { model.embeddingBlocks = q } else { linears[name]?.blocks = q }
            } else {
                try file.read(ggufNames(name), into: t)
            }
        }
        model.ggufSource = file
        model.name = URL(fileURLWithPath: file.path).lastPathComponent
        model.aliases = [file.metadata["general.name"]?.string].compactMap { $0 }
        model.eval()
        return model
    }

    /// Dequantizes the quantized weights into the module's float32 tensors (540 MB for SmolLM2-135M), for
    /// code that reads the tensors directly or trains: fine-tuning, export. Generation does not need them.
    public func loadFloatWeights() throws {
        guard let file = ggufSource else { return }
        for (name, m) in namedModules() {
            guard let linear = m as? LlamaLinear, linear.blocks != nil else { continue }
            try file.read(LlamaModel.ggufNames(name + ".weight"), into: linear.weight)
            linear.blocks = nil
        }
        if embeddingBlocks != nil {
            try file.read(LlamaModel.ggufNames("embedding.weight"), into: embedding.weight)
            embeddingBlocks = nil
        }
        ggufSource = nil
    }
}

extension KVCache {
    /// A cache for a Llama model of configuration `c`.
    public convenience init(config c: LlamaConfig, capacity: Int, precision: Precision = .float32) {
        self.init(layers: c.layerCount, kvHeads: c.kvHeadCount, headSize: c.headSize, capacity: capacity, precision: precision)
    }
}

// MARK: - Hugging Face layout (config.json + model.safetensors)

extension LlamaModel {
    /// Hugging Face names of our parameter paths.
    public static let huggingFaceNames = CheckpointNames(
        exact: ["embedding.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"],
        prefixes: [("", "model.")],
        rules: [("attentionNorm.", "input_layernorm."), ("attention.query.", "self_attn.q_proj."), ("attention.key.", "self_attn.k_proj."),
                ("attention.value.", "self_attn.v_proj."), ("attention.output.", "self_attn.o_proj."), ("mlpNorm.", "post_attention_layernorm."),
                ("mlp.gate.", "mlp.gate_proj."), ("mlp.up.", "mlp.up_proj."), ("mlp.down.", "mlp.down_proj.")])

    /// Hugging Face name of each of our tensors.
    public static func huggingFaceName(_ ours: String) -> String { huggingFaceNames(ours) }

    /// Hugging Face rotates the two halves of each head ((i, i + d/2) pairs); Attend rotates adjacent pairs
    /// (2i, 2i + 1) as GGUF files are stored. Reordering the rows of the query and key projections per head
    /// (llama.cpp's conversion) makes the two the same model. w: [heads * d, in].
    public static func interleaveRotaryRows(_ w: Tensor, heads: Int) -> Tensor {
        let (rows, cols) = (w.shape[0], w.shape[1])
        let d = rows / heads
        return w.contiguous().reshape([heads, 2, d / 2, cols]).permute([0, 2, 1, 3]).contiguous().reshape([rows, cols])
    }

    /// The inverse of `interleaveRotaryRows`: our query / key rows (or their gradients) in Hugging Face's order.
    public static func deinterleaveRotaryRows(_ w: Tensor, heads: Int) -> Tensor {
        let (rows, cols) = (w.shape[0], w.shape[1])
        let d = rows / heads
        return w.contiguous().reshape([heads, d / 2, 2, cols]).permute([0, 2, 1, 3]).contiguous().reshape([rows, cols])
    }

    /// What a Hugging Face config.json says beside the model's shape.
    struct HuggingFaceHeader: Decodable {
        var architectures: [String]?
        var tieWordEmbeddings: Bool?
        enum CodingKeys: String, CodingKey { case architectures, tieWordEmbeddings = "tie_word_embeddings" }
    }

    /// Loads a Hugging Face Llama folder (config.json + model.safetensors, F32/F16/BF16) in float32.
    public static func load(huggingFace directory: String) throws -> LlamaModel {
        let dir = URL(fileURLWithPath: directory)
        let configPath = dir.appendingPathComponent("config.json").path
        guard let data = FileManager.default.contents(atPath: configPath) else { throw AttendError("\(configPath): no such file") }
        let header = try ConfigDecoding.decode(HuggingFaceHeader.self, from: data, source: configPath)
        let config = try ConfigDecoding.decode(LlamaConfig.self, from: data, source: configPath)
        if let archs = header.architectures, !archs.contains(where: { $0.hasPrefix("Llama") || $0.hasPrefix("Mistral") }) {
            throw AttendError("\(configPath): architecture \(archs) is not supported (Attend reads LlamaForCausalLM checkpoints)")
        }
        try config.validate(source: configPath)
        let weightsPath = dir.appendingPathComponent("model.safetensors").path
        let file = try Safetensors.read(weightsPath)
        var g = RandomGenerator(seed: 0)
        let tied = header.tieWordEmbeddings ?? false
        let model = Initialization.skipping { LlamaModel(config, tiedOutput: tied || file.tensors["lm_head.weight"] == nil, generator: &g) }
        let loaded = try huggingFaceNames.select(for: model, from: file.tensors, source: weightsPath) { name, t in
            if name.hasSuffix("attention.query.weight") { return interleaveRotaryRows(t, heads: config.headCount) }
            if name.hasSuffix("attention.key.weight") { return interleaveRotaryRows(t, heads: config.kvHeadCount) }
            return t
        }
        try model.load(loaded, source: weightsPath)
        model.name = dir.standardizedFileURL.lastPathComponent
        model.eval()
        return model
    }
}

extension LlamaModel {
    /// Writes this model (float weights) as a Hugging Face Llama folder: config.json and model.safetensors, query and
    /// key rows back in Hugging Face's order. Tokenizer files in `tokenizerFolder` (tokenizer.json, its config,
    /// generation_config.json) are copied beside them.
    public func saveHuggingFace(directory: String, copyingTokenizerFrom tokenizerFolder: String? = nil) throws {
        if isQuantized { try loadFloatWeights() }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        json["model_type"] = "llama"
        json["architectures"] = ["LlamaForCausalLM"]
        json["tie_word_embeddings"] = output == nil
        json["hidden_act"] = "silu"
        json["torch_dtype"] = "float32"
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]), to: directory + "/config.json")
        let tensors = namedTensors().filter { !$0.name.contains(".adapter.") }.map { name, t -> (name: String, tensor: Tensor) in
            if name.hasSuffix("attention.query.weight") { return (LlamaModel.huggingFaceName(name), LlamaModel.deinterleaveRotaryRows(t, heads: config.headCount)) }
            if name.hasSuffix("attention.key.weight") { return (LlamaModel.huggingFaceName(name), LlamaModel.deinterleaveRotaryRows(t, heads: config.kvHeadCount)) }
            return (LlamaModel.huggingFaceName(name), t)
        }
        try Safetensors.write(tensors, metadata: ["format": "pt"], to: directory + "/model.safetensors")
        guard let from = tokenizerFolder else { return }
        for file in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt"] {
            let (src, dst) = (from + "/" + file, directory + "/" + file)
            guard FileManager.default.fileExists(atPath: src), !FileManager.default.fileExists(atPath: dst) else { continue }
            try FileManager.default.copyItem(atPath: src, toPath: dst)
        }
    }
}
