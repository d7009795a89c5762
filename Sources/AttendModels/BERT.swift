// BERT (Devlin et al., 2019): token + position + segment embeddings, then post-norm Transformer encoder
// blocks. Loads Hugging Face checkpoints (config.json + model.safetensors); `SentenceEmbedder` adds the
// pooling and normalization of Sentence-BERT (Reimers & Gurevych, 2019), e.g. all-MiniLM-L6-v2.

import AttendNN
import AttendTensor
import AttendTokenizers
import Foundation

/// A BERT encoder's sizes; decodes a Hugging Face config.json (its snake_case keys).
///
/// ```swift
/// let config = BERTConfig(vocabSize: 8000, hiddenSize: 128, layerCount: 4, headCount: 4, intermediateSize: 512, maxPositions: 128)
/// try config.validate()
/// let miniLM = try JSONDecoder().decode(BERTConfig.self, from: Data(contentsOf: URL(fileURLWithPath: "all-MiniLM-L6-v2/config.json")))
/// ```
public struct BERTConfig: Codable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var hiddenActivation: String
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    /// Dropout after attention and feed-forward sub-layers while training (hidden_dropout_prob).
    public var hiddenDropout: Float?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads", intermediateSize = "intermediate_size", hiddenActivation = "hidden_act"
        case maxPositions = "max_position_embeddings", typeVocabSize = "type_vocab_size", layerNormEps = "layer_norm_eps"
        case hiddenDropout = "hidden_dropout_prob"
    }

    public init(vocabSize: Int, hiddenSize: Int, layerCount: Int, headCount: Int, intermediateSize: Int,
                hiddenActivation: String = "gelu", maxPositions: Int = 512, typeVocabSize: Int = 2, layerNormEps: Float = 1e-12,
                hiddenDropout: Float? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.hiddenActivation = hiddenActivation
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenDropout = hiddenDropout
    }

    /// A clear error, naming the key, for sizes that cannot make a model: every count positive and within what one
    /// machine can hold, heads dividing the width.
    public func validate(source: String = "BERT config") throws {
        let sizes = [("vocab_size", vocabSize, 1 << 24), ("hidden_size", hiddenSize, 1 << 16), ("num_hidden_layers", layerCount, 1 << 10),
                     ("num_attention_heads", headCount, 1 << 10), ("intermediate_size", intermediateSize, 1 << 20),
                     ("max_position_embeddings", maxPositions, 1 << 20), ("type_vocab_size", typeVocabSize, 1 << 10)]
        if let (key, value, limit) = sizes.first(where: { $0.1 <= 0 || $0.1 > $0.2 }) {
            throw AttendError("\(source): \(key) is \(value); it must be in 1...\(limit)")
        }
        guard hiddenSize % headCount == 0 else {
            throw AttendError("\(source): num_attention_heads \(headCount) does not divide hidden_size \(hiddenSize)")
        }
        guard layerNormEps.isFinite, layerNormEps >= 0 else { throw AttendError("\(source): layer_norm_eps \(layerNormEps) must be finite and >= 0") }
        if let hiddenDropout, !(hiddenDropout.isFinite && hiddenDropout >= 0 && hiddenDropout < 1) {
            throw AttendError("\(source): hidden_dropout_prob \(hiddenDropout) must be in [0, 1)")
        }
        guard activation != nil else { throw AttendError("\(source): hidden_act '\(hiddenActivation)' is not supported") }
        // Each size is capped above, their products are not: 2^24 words of width 2^16 is 4 TiB.
        try ShapeArithmetic.requireFitsInMemory([[vocabSize + maxPositions + typeVocabSize, hiddenSize], [layerCount, 4, hiddenSize, hiddenSize],
                                                 [layerCount, 2, intermediateSize, hiddenSize]], source: source)
    }

    var activation: Activation.Kind? {
        switch hiddenActivation {
        case "gelu": return .gelu
        case "gelu_new", "gelu_pytorch_tanh": return .geluTanh
        case "relu": return .relu
        case "silu", "swish": return .silu
        default: return nil
        }
    }
}

public final class BERTEmbeddings: Module {
    public let wordEmbeddings: Embedding
    public let positionEmbeddings: Embedding
    public let tokenTypeEmbeddings: Embedding
    public let layerNorm: LayerNorm

    init(_ c: BERTConfig, generator: inout RandomGenerator) {
        wordEmbeddings = Embedding(c.vocabSize, c.hiddenSize, generator: &generator)
        positionEmbeddings = Embedding(c.maxPositions, c.hiddenSize, generator: &generator)
        tokenTypeEmbeddings = Embedding(c.typeVocabSize, c.hiddenSize, generator: &generator)
        layerNorm = LayerNorm(c.hiddenSize, eps: c.layerNormEps)
    }

    /// ids, typeIds: [B, T] -> [B, T, C].
    public func callAsFunction(_ ids: IntTensor, typeIds: IntTensor? = nil) -> Tensor {
        let t = ids.shape[1]
        let positions = positionEmbeddings(IntTensor((0..<t).map { Int32($0) }, shape: [t]))  // (T, C), broadcast over B
        let types = tokenTypeEmbeddings(typeIds ?? IntTensor([Int32](repeating: 0, count: ids.count), shape: ids.shape))
        return layerNorm(wordEmbeddings(ids) + positions + types)
    }
}

/// The BERT encoder: embeddings, then post-norm Transformer blocks. It returns hidden states; task heads
/// (`BERTForMaskedLM`, `BERTClassifier`, `SentenceEmbedder`) wrap it.
///
/// ```swift
/// let bert = try BERTModel.load(directory: "all-MiniLM-L6-v2")
/// let tokenizer = try WordPieceTokenizer.load(directory: "all-MiniLM-L6-v2")
/// let ids = tokenizer.encode("A man is eating food.")
/// let h = bert(IntTensor(ids, shape: [1, ids.count]), lengths: [ids.count])   // [1, T, 384]
/// ```
public final class BERTModel: Module {
    public let config: BERTConfig
    public let embeddings: BERTEmbeddings
    public let layers: [TransformerEncoderBlock]

    public init(_ config: BERTConfig, generator: inout RandomGenerator) {
        precondition(config.hiddenSize % config.headCount == 0, "BERT: hidden size \(config.hiddenSize) is not divisible by \(config.headCount) heads")
        self.config = config
        embeddings = BERTEmbeddings(config, generator: &generator)
        let block = TransformerBlockConfig(dimension: config.hiddenSize, headCount: config.headCount,
                                           hiddenDimension: config.intermediateSize, dropout: config.hiddenDropout ?? 0,
                                           activation: config.activation ?? .gelu,
                                           preNorm: false, layerNormEps: config.layerNormEps)
        layers = (0..<config.layerCount).map { _ in TransformerEncoderBlock(block, generator: &generator) }
    }

    /// ids: [B, T]; lengths: real tokens per row (the rest is padding). Returns hidden states [B, T, C].
    public func callAsFunction(_ ids: IntTensor, lengths: [Int]? = nil, typeIds: IntTensor? = nil) -> Tensor {
        states(ids, lengths: lengths, typeIds: typeIds, lastLayerPositions: ids.shape[1])
    }

    /// The [CLS] position's hidden state [B, C], equal to `self(ids, lengths:, typeIds:)[:, 0]`: the last layer runs
    /// for that position alone (keys and values from every token), which is all a classifier head reads.
    public func classStates(_ ids: IntTensor, lengths: [Int]? = nil, typeIds: IntTensor? = nil) -> Tensor {
        states(ids, lengths: lengths, typeIds: typeIds, lastLayerPositions: 1).reshape([ids.shape[0], -1])
    }

    /// Hidden states [B, n, C] of the first n positions, the last layer run for those alone.
    func states(_ ids: IntTensor, lengths: [Int]?, typeIds: IntTensor?, lastLayerPositions n: Int) -> Tensor {
        precondition(ids.shape.count == 2, "BERT expects ids of shape [batch, tokens], got \(ids.shape)")
        precondition(ids.shape[1] <= config.maxPositions, "BERT: \(ids.shape[1]) tokens exceed the \(config.maxPositions) positions")
        let mask = lengths.map { Attention.paddingMask(lengths: $0, maxLength: ids.shape[1]) }
        var h = embeddings(ids, typeIds: typeIds)
        for (i, layer) in layers.enumerated() {
            h = i == layers.count - 1 && n < ids.shape[1] ? layer.firstPositions(n, of: h, mask: mask) : layer(h, mask: mask, keyLengths: lengths)
        }
        return n < h.shape[1] ? h.slice(axis: 1, start: 0, length: n) : h
    }

    /// Hugging Face BertModel names of our parameter paths.
    public static let huggingFaceNames = CheckpointNames(
        prefixes: [("layers.", "encoder.layer.")],
        rules: [("embeddings.wordEmbeddings.", "embeddings.word_embeddings."), ("embeddings.positionEmbeddings.", "embeddings.position_embeddings."),
                ("embeddings.tokenTypeEmbeddings.", "embeddings.token_type_embeddings."), ("embeddings.layerNorm.", "embeddings.LayerNorm."),
                ("attention.query.", "attention.self.query."), ("attention.key.", "attention.self.key."), ("attention.value.", "attention.self.value."),
                ("attention.output.", "attention.output.dense."), ("attentionNorm.", "attention.output.LayerNorm."),
                ("feedForward.up.", "intermediate.dense."), ("feedForward.down.", "output.dense."), ("feedForwardNorm.", "output.LayerNorm.")])

    public static func checkpointName(_ ours: String) -> String { huggingFaceNames(ours) }

    /// Loads a Hugging Face BERT folder: config.json and model.safetensors.
    public static func load(directory: String) throws -> BERTModel {
        let dir = URL(fileURLWithPath: directory)
        let configPath = dir.appendingPathComponent("config.json").path
        guard let data = FileManager.default.contents(atPath: configPath) else { throw AttendError("\(configPath): no such file") }
        let config = try ConfigDecoding.decode(BERTConfig.self, from: data, source: configPath, kind: "a BERT config")
        try config.validate(source: configPath)
        var g = RandomGenerator(seed: 0)
        let model = BERTModel(config, generator: &g)
        let weightsPath = dir.appendingPathComponent("model.safetensors").path
        let file = try Safetensors.read(weightsPath)
        // Task heads save the encoder under "bert."; accept both layouts.
        var tensors = file.tensors
        for (k, v) in file.tensors where k.hasPrefix("bert.") { tensors[String(k.dropFirst(5))] = v }
        try model.load(try huggingFaceNames.select(for: model, from: tensors, source: weightsPath), source: weightsPath)
        model.eval()
        return model
    }
}

/// Sentence embeddings from a BERT encoder: pooled token states, optionally L2-normalized (sentence-transformers'
/// recipe). A `VectorEncoder` of strings.
///
/// ```swift
/// let embedder = try ModelLocator.sentenceEmbedder("all-MiniLM-L6-v2")
/// let v = embedder.embed(["A man is eating food.", "A man is eating bread."])   // [2, 384], unit length
/// let cosine = (v.slice(axis: 0, start: 0, length: 1) * v.slice(axis: 0, start: 1, length: 1)).sum().item
/// ```
public final class SentenceEmbedder: VectorEncoder {
    public enum Pooling: String, Codable { case mean, cls, max }

    public let model: BERTModel
    public let tokenizer: WordPieceTokenizer
    public var pooling: Pooling
    public var normalize: Bool
    public var maxLength: Int

    /// How the encoder's linear layers multiply: float32 gives sentence-transformers' vectors (cosine 1.000000);
    /// int8 (per-row scales, Linear.quantizeInt8) 1.9x float32's passages per second on 200-word passages on
    /// AVX-512 VNNI, at a cosine of 0.988 or more to the float32 vector (docs/BENCHMARKS.md, "Sentence embeddings on
    /// passages").
    public enum Precision: String, CaseIterable, Codable, Sendable { case float32, int8 }

    public var precision: Precision = .float32 {
        didSet { if precision != oldValue { model.quantizeLinearLayersInt8(precision == .int8) } }
    }

    public init(model: BERTModel, tokenizer: WordPieceTokenizer, pooling: Pooling = .mean, normalize: Bool = true, maxLength: Int = 256) {
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.maxLength = min(maxLength, model.config.maxPositions)
    }

    /// Loads a sentence-transformers folder: the BERT files, `1_Pooling/config.json`, `modules.json`
    /// (a Normalize module turns on normalization) and `sentence_bert_config.json` (max_seq_length).
    public static func load(directory: String) throws -> SentenceEmbedder {
        let dir = URL(fileURLWithPath: directory)
        let model = try BERTModel.load(directory: directory), tokenizer = try WordPieceTokenizer.load(directory: directory)
        // A token id past the embedding table would read outside it.
        guard tokenizer.tokens.count <= model.config.vocabSize else {
            throw AttendError("\(dir.appendingPathComponent("vocab.txt").path): \(tokenizer.tokens.count) tokens, more than the model's vocab_size \(model.config.vocabSize)")
        }
        let embedder = SentenceEmbedder(model: model, tokenizer: tokenizer)
        func json(_ path: String) throws -> [String: Any]? {
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent(path).path) else { return nil }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw AttendError("\(dir.appendingPathComponent(path).path): does not parse as a JSON object")
            }
            return object
        }
        if let pooling = try json("1_Pooling/config.json") {
            if pooling["pooling_mode_cls_token"] as? Bool == true { embedder.pooling = .cls }
            if pooling["pooling_mode_max_tokens"] as? Bool == true { embedder.pooling = .max }
            if pooling["pooling_mode_mean_tokens"] as? Bool == true { embedder.pooling = .mean }
        }
        if let modulesData = FileManager.default.contents(atPath: dir.appendingPathComponent("modules.json").path),
           let modules = try? JSONSerialization.jsonObject(with: modulesData) as? [[String: Any]] {
            embedder.normalize = modules.contains { ($0["type"] as? String)?.hasSuffix("Normalize") == true }
        }
        if let st = try json("sentence_bert_config.json"), let value = st["max_seq_length"] {
            guard let n = value as? Int, n >= 2 else {
                throw AttendError("\(dir.appendingPathComponent("sentence_bert_config.json").path): max_seq_length is \(value); it must be a whole number >= 2 ([CLS] and [SEP])")
            }
            embedder.maxLength = min(n, embedder.model.config.maxPositions)
        }
        return embedder
    }

    public var dimension: Int { model.config.hiddenSize }
    public var producesUnitVectors: Bool { normalize }
    public func encode(_ inputs: [String]) throws -> Tensor { embed(inputs) }

    /// Embeddings [N, D] for `sentences`, in order. Sentences are batched by length to limit padding.
    public func embed(_ sentences: [String], batchSize: Int = 32) -> Tensor {
        precondition(batchSize >= 1, "SentenceEmbedder.embed: batch size \(batchSize) must be at least 1")
        let encoded = sentences.map { tokenizer.encode($0, maxLength: maxLength) }
        let order = encoded.indices.sorted { encoded[$0].count > encoded[$1].count }
        let d = model.config.hiddenSize
        let out = Tensor(shape: [sentences.count, d])
        withNoGrad {
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let batch = Array(order[start..<min(order.count, start + batchSize)])
                let lengths = batch.map { encoded[$0].count }
                let h = model(IntTensor.padded(batch.map { encoded[$0] }, with: tokenizer.padId), lengths: lengths)  // (B, T, C)
                var pooled = pool(h, lengths: lengths)                                     // (B, C)
                if normalize { pooled = Loss.normalize(pooled) }
                let p = pooled.contiguous().pointer
                for (r, i) in batch.enumerated() { (out.pointer + i * d).update(from: p + r * d, count: d) }
            }
        }
        return out
    }

    /// A copy whose encoder trains (every tensor `requiresGrad`, float32), for fine-tuning inside another model
    /// without touching this instance, which others may share.
    public func trainableCopy() -> SentenceEmbedder {
        var generator = RandomGenerator(seed: 0)
        let copy = Initialization.skipping { BERTModel(model.config, generator: &generator) }
        for ((name, mine), (theirs, source)) in zip(copy.namedTensors(), model.namedTensors()) {
            precondition(name == theirs, "trainableCopy: \(name) against \(theirs)")
            mine.assign(source)
            mine.requiresGrad = true
        }
        copy.eval()
        return SentenceEmbedder(model: copy, tokenizer: tokenizer, pooling: pooling, normalize: normalize, maxLength: maxLength)
    }

    /// Embeddings [N, D] of `sentences` as one padded batch in their order, keeping the gradient: what training an
    /// unlocked encoder needs (`embed` sorts, batches and computes without gradient).
    public func embedForTraining(_ sentences: [String]) -> Tensor {
        let encoded = sentences.map { tokenizer.encode($0, maxLength: maxLength) }
        let lengths = encoded.map(\.count)
        let pooled = pool(model(IntTensor.padded(encoded, with: tokenizer.padId), lengths: lengths), lengths: lengths)
        return normalize ? Loss.normalize(pooled) : pooled
    }

    func pool(_ h: Tensor, lengths: [Int]) -> Tensor {
        let (b, t) = (h.shape[0], h.shape[1])
        switch pooling {
        case .cls:
            return h.slice(axis: 1, start: 0, length: 1).reshape([b, -1])
        case .mean, .max:
            let keep = Tensor(shape: [b, t, 1])
            for (r, n) in lengths.enumerated() { for k in 0..<n { keep.pointer[r * t + k] = 1 } }
            if pooling == .max { return h.maskedFill(1 - keep, -.infinity).max(axis: 1) }
            let counts = Tensor(lengths.map { Float(max($0, 1)) }, shape: [b, 1])
            return (h * keep).sum(axes: [1]) / counts
        }
    }
}
