// Llama-family decoder (Touvron et al., 2023): RMSNorm, rotary position embeddings (Su et al., 2021),
// grouped-query attention (Ainslie et al., 2023) with a KV cache, and a SwiGLU feed-forward network.
// Loads GGUF checkpoints (e.g. SmolLM2-135M-Instruct), dequantizing weights to Float32.

import AttendNN
import AttendTensor
import CAttendKernels
import Foundation

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
        guard c.hiddenSize % c.headCount == 0, c.headCount % c.kvHeadCount == 0 else {
            throw AttendError("\(f.path): \(c.headCount) heads / \(c.kvHeadCount) KV heads do not divide width \(c.hiddenSize)")
        }
        return c
    }
}

public final class LlamaAttention: Module {
    public let query: Linear, key: Linear, value: Linear, output: Linear

    init(_ c: LlamaConfig, generator: inout RandomGenerator) {
        query = Linear(c.hiddenSize, c.headCount * c.headSize, bias: false, generator: &generator)
        key = Linear(c.hiddenSize, c.kvHeadCount * c.headSize, bias: false, generator: &generator)
        value = Linear(c.hiddenSize, c.kvHeadCount * c.headSize, bias: false, generator: &generator)
        output = Linear(c.headCount * c.headSize, c.hiddenSize, bias: false, generator: &generator)
    }
}

public final class LlamaMLP: Module {
    public let gate: Linear, up: Linear, down: Linear

    init(_ c: LlamaConfig, generator: inout RandomGenerator) {
        gate = Linear(c.hiddenSize, c.intermediateSize, bias: false, generator: &generator)
        up = Linear(c.hiddenSize, c.intermediateSize, bias: false, generator: &generator)
        down = Linear(c.intermediateSize, c.hiddenSize, bias: false, generator: &generator)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { down(gate(x).silu() * up(x)) }
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
}

/// Keys and values of the tokens seen so far, per layer: [kvHeads, capacity, headSize].
public final class KVCache {
    var keys: [Tensor]
    var values: [Tensor]
    public private(set) var count = 0
    public let capacity: Int

    public convenience init(config c: LlamaConfig, capacity: Int) {
        self.init(layers: c.layerCount, kvHeads: c.kvHeadCount, headSize: c.headSize, capacity: capacity)
    }

    public convenience init(layers: Int, kvHeads: Int, headSize: Int, capacity: Int) {
        self.init(layers: layers, shape: [kvHeads, capacity, headSize], capacity: capacity)
    }

    func advance(_ n: Int) { count += n }
    public func reset() { count = 0 }

    /// An independent copy (beam search forks a cache for each surviving hypothesis).
    public func copy() -> KVCache {
        let c = KVCache(layers: keys.count, shape: keys.first?.shape ?? [0, 0, 0], capacity: capacity)
        for l in 0..<keys.count {
            c.keys[l].pointer.update(from: keys[l].pointer, count: keys[l].count)
            c.values[l].pointer.update(from: values[l].pointer, count: values[l].count)
        }
        c.count = count
        return c
    }

    private init(layers: Int, shape: [Int], capacity: Int) {
        self.capacity = capacity
        keys = (0..<layers).map { _ in Tensor(shape: shape) }
        values = (0..<layers).map { _ in Tensor(shape: shape) }
    }
}

public final class LlamaModel: Module {
    public let config: LlamaConfig
    public let embedding: Embedding
    public let layers: [LlamaBlock]
    public let norm: RMSNorm
    /// Nil when the output projection is tied to the embedding (SmolLM2).
    public let output: Linear?
    /// The attention weights of one layer from the last call, [heads, T, S], when `attentionMapLayer` is set.
    public var attentionMapLayer: Int?
    public internal(set) var lastAttention: Tensor?
    let ropeTables: (cos: [Float], sin: [Float])
    /// Weights kept in their GGUF blocks, by parameter path (empty for float checkpoints). Every product with
    /// them reads the blocks: the module's float32 tensors of these weights are not loaded (see
    /// `loadFloatWeights()`), which keeps a Q4_1 model at a sixth of its float32 size in memory.
    var quantized: [String: QuantizedMatrix] = [:]
    /// The file the quantized weights lie in, for `loadFloatWeights()`.
    var ggufSource: GGUFFile?
    /// Decode one token with 8-bit activations (integer block dot products, as llama.cpp): 1.3x faster
    /// than float activations, at the cost of rounding. The prompt always runs in float32 (on tiles of
    /// weights expanded from their blocks). Off: exact float32 everywhere (what the numpy reference checks).
    public var int8Activations = true

    public init(_ config: LlamaConfig, tiedOutput: Bool = true, generator: inout RandomGenerator) {
        self.config = config
        embedding = Embedding(config.vocabSize, config.hiddenSize, generator: &generator)
        layers = (0..<config.layerCount).map { _ in LlamaBlock(config, generator: &generator) }
        norm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps)
        output = tiedOutput ? nil : Linear(config.hiddenSize, config.vocabSize, bias: false, generator: &generator)
        ropeTables = LlamaModel.rope(config)
    }

    /// cos/sin for every position and frequency: [contextLength, headSize / 2].
    static func rope(_ c: LlamaConfig) -> (cos: [Float], sin: [Float]) {
        let half = c.headSize / 2
        var cosT = [Float](repeating: 0, count: c.contextLength * half), sinT = cosT
        for p in 0..<c.contextLength {
            for i in 0..<half {
                let angle = Double(p) * pow(Double(c.ropeTheta), -2 * Double(i) / Double(c.headSize))
                cosT[p * half + i] = Float(Foundation.cos(angle))
                sinT[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        return (cosT, sinT)
    }

    /// Rotates adjacent pairs (2i, 2i+1) of each head by position (llama.cpp's normal RoPE mode, which GGUF
    /// checkpoints are permuted for). x: [T, heads, headSize], contiguous; inference only (no gradient).
    func applyRope(_ x: Tensor, start: Int) -> Tensor {
        let (t, h, d) = (x.shape[0], x.shape[1], x.shape[2])
        let half = d / 2
        let out = Tensor(shape: x.shape)
        let src = x.contiguous().pointer, dst = out.pointer
        ropeTables.cos.withUnsafeBufferPointer { cosT in
            ropeTables.sin.withUnsafeBufferPointer { sinT in
                for p in 0..<t {
                    let row = (start + p) * half
                    for head in 0..<h {
                        let base = (p * h + head) * d
                        for i in 0..<half {
                            let (a, b) = (src[base + 2 * i], src[base + 2 * i + 1])
                            let (c, s) = (cosT[row + i], sinT[row + i])
                            dst[base + 2 * i] = a * c - b * s
                            dst[base + 2 * i + 1] = a * s + b * c
                        }
                    }
                }
            }
        }
        return out
    }

    /// Runs `tokens` after those already in `cache`, appends their keys and values, and returns logits
    /// [T, vocab] (only the last position's when `lastOnly`).
    public func callAsFunction(_ tokens: [Int32], cache: KVCache, lastOnly: Bool = false) -> Tensor {
        let (t, start) = (tokens.count, cache.count)
        precondition(start + t <= min(cache.capacity, config.contextLength),
                     "Llama: \(start + t) tokens exceed the context (\(min(cache.capacity, config.contextLength)))")
        let (hq, hkv, hs) = (config.headCount, config.kvHeadCount, config.headSize)
        let group = hq / hkv
        let int8 = int8Activations && t == 1
        // The last input quantized, so q/k/v (and gate/up) share one quantization of their input.
        var lastQuantized: (input: Tensor, activations: QuantizedActivations)?
        // Quantized weights: one token multiplies straight from the blocks (8-bit or float activations),
        // several rows go through float32 GEMMs on expanded tiles. Float weights: the layer itself.
        func project(_ x: Tensor, _ linear: Linear?, _ name: @autoclosure () -> String) -> Tensor {
            if let q = quantized[name()] {
                if int8 {
                    if let c = lastQuantized, c.input === x { return q.matmul(c.activations) }
                    let a = QuantizedActivations(x)
                    lastQuantized = (x, a)
                    return q.matmul(a)
                }
                return x.count == q.columns ? q.matvec(x) : q.matmul(x)
            }
            return linear.map { $0(x) } ?? x.matmul(embedding.weight.transposed(0, 1))
        }
        return withNoGrad {
            var x = quantized["embedding.weight"]?.rows(tokens) ?? embedding(IntTensor(tokens, shape: [t]))  // (T, C)
            for (l, layer) in layers.enumerated() {
                let h = layer.attentionNorm(x)
                let p = "layers.\(l)."
                let q = applyRope(project(h, layer.attention.query, p + "attention.query.weight").reshape([t, hq, hs]), start: start)  // (T, Hq, hs)
                let k = applyRope(project(h, layer.attention.key, p + "attention.key.weight").reshape([t, hkv, hs]), start: start)     // (T, Hkv, hs)
                let v = project(h, layer.attention.value, p + "attention.value.weight").reshape([t, hkv, hs])
                cache.keys[l].slice(axis: 1, start: start, length: t).assign(k.permute([1, 0, 2]))
                cache.values[l].slice(axis: 1, start: start, length: t).assign(v.permute([1, 0, 2]))
                let s = start + t
                let attended: Tensor  // (T, Hq * hs)
                if t == 1 && attentionMapLayer != l {
                    // One step: read the cache in place (no copies, no GEMM set-up for a 1-row product).
                    attended = Tensor(shape: [1, hq * hs])
                    let scores = Tensor(shape: [hq, s])
                    let (qp, kp, vp, sp, yp) = (q.contiguous().pointer, cache.keys[l].pointer, cache.values[l].pointer, scores.pointer, attended.pointer)
                    let capacity = cache.capacity
                    Parallel.forRanges(hq, costPerItem: s * hs * 2) { r in
                        attend_decode_attention(qp, kp, vp, hq, hkv, s, capacity, hs, 1 / Float(hs).squareRoot(), r.lowerBound, r.upperBound, sp, yp)
                    }
                } else {
                    let keys = cache.keys[l].slice(axis: 1, start: 0, length: s).contiguous().reshape([hkv, 1, s, hs])
                    let values = cache.values[l].slice(axis: 1, start: 0, length: s).contiguous().reshape([hkv, 1, s, hs])
                    let queries = q.permute([1, 0, 2]).contiguous().reshape([hkv, group, t, hs])  // query heads grouped by KV head
                    let (y, weights) = Attention.scaledDotProduct(query: queries, key: keys, value: values, causal: true)
                    if attentionMapLayer == l { lastAttention = weights.reshape([hq, t, s]) }
                    attended = y.reshape([hq, t, hs]).permute([1, 0, 2]).reshape([t, hq * hs])
                }
                x = x + project(attended, layer.attention.output, p + "attention.output.weight")
                let m = layer.mlpNorm(x)
                let gated = project(m, layer.mlp.gate, p + "mlp.gate.weight").silu() * project(m, layer.mlp.up, p + "mlp.up.weight")
                x = x + project(gated, layer.mlp.down, p + "mlp.down.weight")
            }
            cache.advance(t)
            let last = lastOnly ? x.slice(axis: 0, start: t - 1, length: 1) : x
            let hidden = norm(last)
            // Tied output (SmolLM2): the embedding table is the projection.
            return output.map { project(hidden, $0, "output.weight") } ?? project(hidden, nil, "embedding.weight")
        }
    }

    /// Attend path -> GGUF tensor name.
    static let ggufNames: [(ours: String, theirs: String)] = [
        ("attentionNorm.", "attn_norm."), ("attention.query.", "attn_q."), ("attention.key.", "attn_k."),
        ("attention.value.", "attn_v."), ("attention.output.", "attn_output."), ("mlpNorm.", "ffn_norm."),
        ("mlp.gate.", "ffn_gate."), ("mlp.up.", "ffn_up."), ("mlp.down.", "ffn_down."),
    ]

    public static func ggufName(_ ours: String) -> String {
        if ours == "embedding.weight" { return "token_embd.weight" }
        if ours == "norm.weight" { return "output_norm.weight" }
        if ours == "output.weight" { return "output.weight" }
        var name = ours
        if name.hasPrefix("layers.") { name = "blk." + name.dropFirst("layers.".count) }
        for (a, b) in ggufNames where name.contains(a) { return name.replacingOccurrences(of: a, with: b) }
        return name
    }

    /// Loads a llama-architecture GGUF file.
    public static func load(gguf file: GGUFFile) throws -> LlamaModel {
        let config = try LlamaConfig.fromGGUF(file)
        var g = RandomGenerator(seed: 0)
        // The model is built without initializing it. Float tensors are read from the file straight into it;
        // Q4_0 / Q4_1 / Q8_0 matrices stay in the mapped file, and their float tensors are never written, so their
        // memory is never paged in.
        let model = Initialization.skipping { LlamaModel(config, tiedOutput: file.tensors["output.weight"] == nil, generator: &g) }
        for (name, t) in model.namedTensors() {
            if t.rank == 2, let q = try file.quantizedMatrix(ggufName(name)) {
                guard [q.rows, q.columns] == t.shape else {
                    throw AttendError("\(file.path): tensor '\(ggufName(name))' has shape [\(q.rows), \(q.columns)], expected \(t.shape)")
                }
                model.quantized[name] = q
            } else {
                try file.read(ggufName(name), into: t)
            }
        }
        model.ggufSource = file
        model.eval()
        return model
    }

    /// Dequantizes the quantized weights into the module's float32 tensors (540 MB for SmolLM2-135M), for
    /// code that reads the tensors directly: fine-tuning, export. Generation does not need them.
    public func loadFloatWeights() throws {
        guard let file = ggufSource else { return }
        for (name, t) in namedTensors() where quantized[name] != nil { try file.read(LlamaModel.ggufName(name), into: t) }
        ggufSource = nil
    }
}

// MARK: - Hugging Face layout (config.json + model.safetensors)

extension LlamaConfig {
    /// From a Hugging Face LlamaForCausalLM config.json.
    public static func fromHuggingFace(_ json: [String: Any], path: String) throws -> LlamaConfig {
        func int(_ key: String) throws -> Int {
            guard let v = json[key] as? Int else { throw AttendError("\(path): key '\(key)' is missing or not an integer") }
            return v
        }
        if let archs = json["architectures"] as? [String], !archs.contains(where: { $0.hasPrefix("Llama") || $0.hasPrefix("Mistral") }) {
            throw AttendError("\(path): architecture \(archs) is not supported (Attend reads LlamaForCausalLM checkpoints)")
        }
        let heads = try int("num_attention_heads")
        // transformers 5 keeps RoPE settings in rope_parameters; older configs have rope_theta / rope_scaling.
        let rope = json["rope_parameters"] as? [String: Any]
        if let type = rope?["rope_type"] as? String, type != "default" {
            throw AttendError("\(path): rope_type '\(type)' is not supported (only 'default')")
        }
        let theta = (rope?["rope_theta"] as? Double) ?? (json["rope_theta"] as? Double) ?? 10_000
        let c = LlamaConfig(vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"), intermediateSize: try int("intermediate_size"),
                            layerCount: try int("num_hidden_layers"), headCount: heads, kvHeadCount: json["num_key_value_heads"] as? Int ?? heads,
                            ropeTheta: Float(theta), rmsNormEps: Float(json["rms_norm_eps"] as? Double ?? 1e-6),
                            contextLength: json["max_position_embeddings"] as? Int ?? 2048)
        guard c.hiddenSize % c.headCount == 0, c.headCount % c.kvHeadCount == 0 else {
            throw AttendError("\(path): \(c.headCount) heads / \(c.kvHeadCount) KV heads do not divide width \(c.hiddenSize)")
        }
        if let d = json["head_dim"] as? Int, d != c.headSize {
            throw AttendError("\(path): head_dim \(d) differs from hidden_size / num_attention_heads = \(c.headSize), which Attend assumes")
        }
        if let scaling = json["rope_scaling"], !(scaling is NSNull) { throw AttendError("\(path): rope_scaling is not supported") }
        return c
    }
}

extension LlamaModel: CausalLanguageModel {
    public var contextLength: Int { config.contextLength }
    public var vocabularySize: Int { config.vocabSize }
    public func makeCache(capacity: Int) -> KVCache { KVCache(config: config, capacity: capacity) }
}

extension LlamaModel {
    /// Hugging Face name of each of our tensors.
    public static func huggingFaceName(_ ours: String) -> String {
        if ours == "embedding.weight" { return "model.embed_tokens.weight" }
        if ours == "norm.weight" { return "model.norm.weight" }
        if ours == "output.weight" { return "lm_head.weight" }
        let table = [("attentionNorm.", "input_layernorm."), ("attention.query.", "self_attn.q_proj."), ("attention.key.", "self_attn.k_proj."),
                     ("attention.value.", "self_attn.v_proj."), ("attention.output.", "self_attn.o_proj."), ("mlpNorm.", "post_attention_layernorm."),
                     ("mlp.gate.", "mlp.gate_proj."), ("mlp.up.", "mlp.up_proj."), ("mlp.down.", "mlp.down_proj.")]
        var name = "model." + ours
        for (a, b) in table where name.contains(a) { name = name.replacingOccurrences(of: a, with: b); break }
        return name
    }

    /// Hugging Face rotates the two halves of each head ((i, i + d/2) pairs); Attend rotates adjacent pairs
    /// (2i, 2i + 1) as GGUF files are stored. Reordering the rows of the query and key projections per head
    /// (llama.cpp's conversion) makes the two the same model. w: [heads * d, in].
    static func interleaveRotaryRows(_ w: Tensor, heads: Int) -> Tensor {
        let (rows, cols) = (w.shape[0], w.shape[1])
        let d = rows / heads
        return w.contiguous().reshape([heads, 2, d / 2, cols]).permute([0, 2, 1, 3]).contiguous().reshape([rows, cols])
    }

    /// Loads a Hugging Face Llama folder (config.json + model.safetensors, F32/F16/BF16) in float32.
    public static func load(huggingFace directory: String) throws -> LlamaModel {
        let dir = URL(fileURLWithPath: directory)
        let configPath = dir.appendingPathComponent("config.json").path
        guard let data = FileManager.default.contents(atPath: configPath) else { throw AttendError("\(configPath): no such file") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw AttendError("\(configPath): does not parse as a JSON object")
        }
        let config = try LlamaConfig.fromHuggingFace(json, path: configPath)
        let tied = json["tie_word_embeddings"] as? Bool ?? false
        let weightsPath = dir.appendingPathComponent("model.safetensors").path
        let file = try Safetensors.read(weightsPath)
        var g = RandomGenerator(seed: 0)
        let model = LlamaModel(config, tiedOutput: tied || file.tensors["lm_head.weight"] == nil, generator: &g)
        var loaded: [String: Tensor] = [:]
        for (name, _) in model.namedTensors() {
            guard var t = file.tensors[huggingFaceName(name)] else { throw AttendError("\(weightsPath): tensor '\(huggingFaceName(name))' is missing") }
            if name.hasSuffix("attention.query.weight") { t = interleaveRotaryRows(t, heads: config.headCount) }
            if name.hasSuffix("attention.key.weight") { t = interleaveRotaryRows(t, heads: config.kvHeadCount) }
            loaded[name] = t
        }
        try model.load(loaded, source: weightsPath)
        model.eval()
        return model
    }
}
