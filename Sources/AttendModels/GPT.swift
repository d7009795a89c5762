// GPT-2 (Radford et al., 2019): token + learned position embeddings, pre-norm Transformer blocks with
// causal self-attention and a tanh-GELU MLP, a final LayerNorm, and an output layer tied to the token
// embedding. Trains from scratch (next-token prediction) and loads / saves the Hugging Face GPT-2 layout.

import AttendLM
import AttendNN
import AttendTensor
import Foundation

/// The shape of a GPT. Its coding keys are the Hugging Face GPT-2 `config.json` names, so the same type reads
/// an exported folder and the metadata of Attend's own checkpoints.
public struct GPTConfig: Codable, Equatable {
    public var vocabSize: Int
    public var contextLength: Int
    public var width: Int
    public var layerCount: Int
    public var headCount: Int
    public var dropout: Float = 0
    public var layerNormEps: Float = 1e-5
    /// Feed-forward width (GPT-2: 4 x width when nil; OPT: ffn_dim).
    public var feedForwardSize: Int?
    /// GPT-2 uses tanh-GELU; OPT uses ReLU.
    public var activation: Activation.Kind = .geluTanh
    /// OPT's learned positions start at row 2 of its table.
    public var positionOffset = 0

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", contextLength = "n_positions", width = "n_embd", layerCount = "n_layer"
        case headCount = "n_head", dropout = "resid_pdrop", layerNormEps = "layer_norm_epsilon", feedForwardSize = "n_inner"
        case activation = "activation_function", positionOffset = "position_offset"
    }

    public init(vocabSize: Int, contextLength: Int, width: Int, layerCount: Int, headCount: Int, dropout: Float = 0) {
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.width = width
        self.layerCount = layerCount
        self.headCount = headCount
        self.dropout = dropout
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        contextLength = try c.decode(Int.self, forKey: .contextLength)
        width = try c.decode(Int.self, forKey: .width)
        layerCount = try c.decode(Int.self, forKey: .layerCount)
        headCount = try c.decode(Int.self, forKey: .headCount)
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
        feedForwardSize = try c.decodeIfPresent(Int.self, forKey: .feedForwardSize)
        if let name = try c.decodeIfPresent(String.self, forKey: .activation) {
            // transformers writes GPT-2's tanh approximation under either name.
            guard let kind = name == "gelu_pytorch_tanh" ? .geluTanh : Activation.Kind(rawValue: name) else {
                throw AttendError("activation_function '\(name)' is not supported (GPT-2 uses gelu_new)")
            }
            activation = kind
        }
        positionOffset = try c.decodeIfPresent(Int.self, forKey: .positionOffset) ?? 0
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(width, forKey: .width)
        try c.encode(layerCount, forKey: .layerCount)
        try c.encode(headCount, forKey: .headCount)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encodeIfPresent(feedForwardSize, forKey: .feedForwardSize)
        try c.encode(activation, forKey: .activation)
        if positionOffset != 0 { try c.encode(positionOffset, forKey: .positionOffset) }
    }

    /// A clear error when the shape of the model does not work (heads must divide the width).
    public func validate() throws {
        let sizes = [("vocab_size", vocabSize), ("n_positions", contextLength), ("n_embd", width), ("n_layer", layerCount), ("n_head", headCount)]
        if let (key, value) = sizes.first(where: { $0.1 <= 0 }) { throw AttendError("GPT config: \(key) is \(value); it must be positive") }
        guard width % headCount == 0 else { throw AttendError("GPT config: \(headCount) heads do not divide width \(width)") }
        if let f = feedForwardSize, f <= 0 { throw AttendError("GPT config: n_inner is \(f); it must be positive") }
        guard contextLength <= 1 << 20, positionOffset >= 0 else { throw AttendError("GPT config: n_positions \(contextLength) is more than 2^20") }
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw AttendError("GPT config: dropout \(dropout) is not in [0, 1)") }
        let feedForward: [Int] = feedForwardSize.map { [layerCount, 2, $0, width] } ?? [layerCount, 2, 4, width, width]
        try ShapeArithmetic.requireFitsInMemory([[vocabSize, width], [contextLength, width], [positionOffset, width],
                                                 [layerCount, 4, width, width], feedForward], source: "GPT config")
    }
}

/// GPT-2 (and OPT, which runs on it): trained here from scratch or loaded from a Hugging Face folder.
///
/// ```swift
/// var g = RandomGenerator(seed: 0)
/// let model = GPTModel(GPTConfig(vocabSize: 65, contextLength: 256, width: 384, layerCount: 6, headCount: 6), generator: &g)
/// let logits = model(ids)                                   // ids [B, T] -> [B, T, 65], differentiable
/// let cache = model.makeCache(capacity: 256)
/// let next = model([0, 1, 2], cache: cache, lastOnly: true) // inference with a KV cache
/// ```
public final class GPTModel: Module, LanguageModel {
    public var contextLength: Int { config.contextLength }
    public var vocabularySize: Int { config.vocabSize }
    public var embeddingWidth: Int { config.width }
    public var layerCount: Int { config.layerCount }
    public var queryHeadCount: Int { config.headCount }
    public func makeCache(capacity: Int) -> KVCache {
        KVCache(layers: config.layerCount, kvHeads: config.headCount, headSize: config.width / config.headCount, capacity: capacity)
    }

    public let config: GPTConfig
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding
    public let blocks: [TransformerEncoderBlock]
    public let finalNorm: LayerNorm
    public let dropout: Dropout

    public init(_ config: GPTConfig, generator: inout RandomGenerator) {
        precondition(config.width % config.headCount == 0, "GPT: \(config.headCount) heads do not divide width \(config.width)")
        self.config = config
        tokenEmbedding = Embedding(config.vocabSize, config.width, generator: &generator)
        positionEmbedding = Embedding(config.contextLength + config.positionOffset, config.width, generator: &generator)
        let block = TransformerBlockConfig(dimension: config.width, headCount: config.headCount,
                                           hiddenDimension: config.feedForwardSize ?? 4 * config.width, dropout: config.dropout,
                                           activation: config.activation, preNorm: true, layerNormEps: config.layerNormEps)
        blocks = (0..<config.layerCount).map { _ in TransformerEncoderBlock(block, generator: &generator) }
        finalNorm = LayerNorm(config.width, eps: config.layerNormEps)
        dropout = Dropout(config.dropout, branchingFrom: generator, salt: 2)
        super.init()
        // GPT-2's initialization: N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2 L).
        withNoGrad {
            for (name, t) in namedParameters() {
                if name.hasSuffix(".bias") { t.assign(Tensor.zeros(t.shape)); continue }
                if t.rank < 2 { continue }
                let residual = name.hasSuffix("attention.output.weight") || name.hasSuffix("feedForward.down.weight")
                let std: Float = residual ? 0.02 / Float(2 * config.layerCount).squareRoot() : 0.02
                t.assign(Tensor.randn(t.shape, std: std, generator: &generator))
            }
        }
    }

    /// ids: [B, T] -> logits [B, T, vocab].
    public func callAsFunction(_ ids: IntTensor) -> Tensor { logits(inputEmbeddings: embed(ids)) }

    /// Token embeddings (positions are added inside the model, so spliced vectors get them too).
    public func embed(_ ids: IntTensor) -> Tensor { tokenEmbedding(ids) }

    /// Input vectors [B, T, C] -> the final normalized hidden states [B, T, C], causal; differentiable.
    public func finalHiddenStates(inputEmbeddings e: Tensor) -> Tensor {
        let t = e.shape[1]
        precondition(t <= config.contextLength, "GPT: \(t) tokens exceed the context of \(config.contextLength)")
        let positions = IntTensor((0..<t).map { Int32($0 + config.positionOffset) }, shape: [t])
        var x = dropout(e + positionEmbedding(positions))
        for block in blocks { x = block(x, causal: true) }
        return finalNorm(x)
    }

    /// Hidden states [..., C] -> logits [..., vocab] through the tied output layer.
    public func vocabularyLogits(_ hidden: Tensor) -> Tensor { hidden.matmul(tokenEmbedding.weight.transposed(0, 1)) }

    // MARK: - Inference with a KV cache

    /// Runs `input` after the positions in `cache` (inference only), appends their keys and values, and returns
    /// logits [T, vocab] (only the last position's when `lastOnly`). Same result as `callAsFunction(_:)`
    /// over the whole sequence, one token at a time at the cost of one.
    public func forward(_ input: LMInput, cache: KVCache, lastOnly: Bool, attentionLayer: Int?) -> LMOutput {
        let (t, start) = (input.count, cache.count)
        precondition(start + t <= min(cache.capacity, config.contextLength), "GPT: \(start + t) tokens exceed the context")
        let (h, hs) = (config.headCount, config.width / config.headCount)
        return withNoGrad {
            let positions = IntTensor((start..<(start + t)).map { Int32($0 + config.positionOffset) }, shape: [t])
            var x = inputEmbeddings(input) + positionEmbedding(positions)  // (T, C)
            var attention: Tensor?
            for (l, block) in blocks.enumerated() {
                let a = block.attention
                let n = block.attentionNorm(x)
                let q = a.query(n).reshape([t, h, hs])  // (T, H, hs)
                cache.write(layer: l, keys: a.key(n).reshape([t, h, hs]), values: a.value(n).reshape([t, h, hs]))
                let attended: Tensor  // (T, C)
                if attentionLayer == l {
                    let s = start + t
                    let (keys, values) = cache.keysAndValues(layer: l, length: s)
                    let (y, weights) = Attention.scaledDotProduct(query: q.permute([1, 0, 2]), key: keys, value: values, causal: true)  // (H, T, hs)
                    attention = weights
                    attended = y.permute([1, 0, 2]).reshape([t, config.width])
                } else {
                    // The fused kernels, reading the cache in place.
                    attended = t == 1 ? cache.decodeAttention(query: q, layer: l, kvHeads: h) : cache.causalAttention(queries: q, layer: l, kvHeads: h)
                }
                x = x + a.output(attended)
                x = x + block.feedForward(block.feedForwardNorm(x))
            }
            cache.advance(t)
            let last = lastOnly ? x.slice(axis: 0, start: t - 1, length: 1) : x
            return LMOutput(logits: finalNorm(last).matmul(tokenEmbedding.weight.transposed(0, 1)), attention: attention)
        }
    }

    // MARK: - Hugging Face layout

    /// Hugging Face GPT2LMHeadModel names of a block's tensors (relative to "transformer.h.N."), except the query,
    /// key and value, which GPT-2 fuses into one c_attn. Its Conv1D weights are stored [in, out], transposed.
    public static let huggingFaceBlockNames = CheckpointNames(rules: [
        ("attentionNorm.", "ln_1."), ("attention.output.", "attn.c_proj."), ("feedForwardNorm.", "ln_2."),
        ("feedForward.up.", "mlp.c_fc."), ("feedForward.down.", "mlp.c_proj."),
    ])

    /// A block tensor stored by GPT-2 outside the fused c_attn, and whether it is a transposed Conv1D weight.
    static func separateBlockTensors(_ block: TransformerEncoderBlock) -> [(ours: String, theirs: String, tensor: Tensor, transposed: Bool)] {
        block.namedTensors().filter { !["attention.query.", "attention.key.", "attention.value."].contains(where: $0.name.hasPrefix) }.map {
            let theirs = huggingFaceBlockNames($0.name)
            return ($0.name, theirs, $0.tensor, theirs.hasSuffix(".weight") && !theirs.hasPrefix("ln_"))
        }
    }

    /// The tensors under Hugging Face GPT-2 names: c_attn fuses query, key and value; Conv1D weights transposed.
    public func huggingFaceTensors() -> [(name: String, tensor: Tensor)] {
        withNoGrad {
            var out: [(String, Tensor)] = [("transformer.wte.weight", tokenEmbedding.weight), ("transformer.wpe.weight", positionEmbedding.weight)]
            for (l, b) in blocks.enumerated() {
                let p = "transformer.h.\(l)."
                let a = b.attention
                out.append((p + "attn.c_attn.weight", Tensor.concat([a.query.weight, a.key.weight, a.value.weight], axis: 0).transposed(0, 1).contiguous()))
                out.append((p + "attn.c_attn.bias", Tensor.concat([a.query.bias!, a.key.bias!, a.value.bias!], axis: 0)))
                for t in GPTModel.separateBlockTensors(b) {
                    out.append((p + t.theirs, t.transposed ? t.tensor.transposed(0, 1).contiguous() : t.tensor))
                }
            }
            out.append(("transformer.ln_f.weight", finalNorm.weight))
            out.append(("transformer.ln_f.bias", finalNorm.bias!))
            return out
        }
    }

    /// Writes config.json and model.safetensors in the Hugging Face GPT-2 layout (atomically).
    public func saveHuggingFace(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        json["model_type"] = "gpt2"
        json["architectures"] = ["GPT2LMHeadModel"]
        json["activation_function"] = "gelu_new"
        json["n_ctx"] = config.contextLength
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                             to: directory + "/config.json")
        try Safetensors.write(huggingFaceTensors(), metadata: ["format": "pt"], to: directory + "/model.safetensors")
    }

    /// Loads a Hugging Face GPT-2 folder (config.json + model.safetensors; "transformer." prefix optional).
    public static func loadHuggingFace(directory: String) throws -> GPTModel {
        let configPath = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: configPath) else { throw AttendError("\(configPath): no such file") }
        let config = try ConfigDecoding.decode(GPTConfig.self, from: data, source: configPath, kind: "a GPT-2 config")
        do { try config.validate() } catch let e as AttendError { throw AttendError("\(configPath): \(e.message)") }
        var config0 = config
        config0.dropout = 0
        var g = RandomGenerator(seed: 0)
        let model = GPTModel(config0, generator: &g)
        let path = directory + "/model.safetensors"
        var file = try Safetensors.read(path).tensors
        for (k, v) in file where !k.hasPrefix("transformer.") && !k.hasPrefix("lm_head.") { file["transformer." + k] = v }
        func take(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let t = file[name] else { throw AttendError("\(path): tensor '\(name)' is missing") }
            guard t.shape == shape else { throw AttendError("\(path): tensor '\(name)' has shape \(t.shape), expected \(shape)") }
            return t
        }
        let (c, v, n) = (config.width, config.vocabSize, config.contextLength)
        model.tokenEmbedding.weight.assign(try take("transformer.wte.weight", [v, c]))
        model.positionEmbedding.weight.assign(try take("transformer.wpe.weight", [n, c]))
        for (l, b) in model.blocks.enumerated() {
            let p = "transformer.h.\(l)."
            let w = try take(p + "attn.c_attn.weight", [c, 3 * c]).transposed(0, 1)  // (3C, C)
            let bias = try take(p + "attn.c_attn.bias", [3 * c])
            for (i, linear) in [b.attention.query, b.attention.key, b.attention.value].enumerated() {
                linear.weight.assign(w.slice(axis: 0, start: i * c, length: c))
                linear.bias!.assign(bias.slice(axis: 0, start: i * c, length: c))
            }
            for t in separateBlockTensors(b) {
                let shape = t.transposed ? [t.tensor.shape[1], t.tensor.shape[0]] : t.tensor.shape
                let loaded = try take(p + t.theirs, shape)
                t.tensor.assign(t.transposed ? loaded.transposed(0, 1) : loaded)
            }
        }
        model.finalNorm.weight.assign(try take("transformer.ln_f.weight", [c]))
        model.finalNorm.bias!.assign(try take("transformer.ln_f.bias", [c]))
        model.eval()
        return model
    }
}
