// OPT (Zhang et al., 2022, Meta): a GPT-style decoder with ReLU feed-forward layers and learned positions
// offset by 2. It runs on GPTModel; this file maps the Hugging Face OPT checkpoint layout onto it.

import AttendNN
import AttendTensor
import Foundation

/// The fields of a Hugging Face OPT config.json that `GPTModel.loadOPT` reads.
///
/// ```swift
/// let data = try Data(contentsOf: URL(fileURLWithPath: "opt-125m/config.json"))
/// let opt = try ConfigDecoding.decode(OPTConfig.self, from: data, source: "opt-125m/config.json", kind: "an OPT config")
/// let model = try GPTModel.loadOPT(directory: "opt-125m")
/// ```
public struct OPTConfig: Codable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var ffnDim: Int
    public var maxPositions: Int
    public var activation: String
    public var layerNormBefore: Bool
    public var wordEmbedProjectionDim: Int?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", layerCount = "num_hidden_layers", headCount = "num_attention_heads"
        case ffnDim = "ffn_dim", maxPositions = "max_position_embeddings", activation = "activation_function"
        case layerNormBefore = "do_layer_norm_before", wordEmbedProjectionDim = "word_embed_proj_dim"
    }
}

extension GPTModel {
    /// Hugging Face OPTForCausalLM names of our parameter paths (the same weight layout: Linear is [out, in]).
    public static let optNames = CheckpointNames(
        exact: ["tokenEmbedding.weight": "model.decoder.embed_tokens.weight", "positionEmbedding.weight": "model.decoder.embed_positions.weight",
                "finalNorm.weight": "model.decoder.final_layer_norm.weight", "finalNorm.bias": "model.decoder.final_layer_norm.bias"],
        prefixes: [("blocks.", "model.decoder.layers.")],
        rules: [("attention.query.", "self_attn.q_proj."), ("attention.key.", "self_attn.k_proj."), ("attention.value.", "self_attn.v_proj."),
                ("attention.output.", "self_attn.out_proj."), ("attentionNorm.", "self_attn_layer_norm."),
                ("feedForward.up.", "fc1."), ("feedForward.down.", "fc2."), ("feedForwardNorm.", "final_layer_norm.")])

    /// Loads a Hugging Face OPT folder (config.json + model.safetensors) with pre-norm blocks and no
    /// embedding projection (true for the released sizes except 350m).
    public static func loadOPT(directory: String) throws -> GPTModel {
        let configPath = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: configPath) else { throw AttendError("\(configPath): no such file") }
        let opt = try ConfigDecoding.decode(OPTConfig.self, from: data, source: configPath, kind: "an OPT config")
        guard opt.layerNormBefore else { throw AttendError("\(configPath): post-norm OPT (do_layer_norm_before false, OPT-350m) is not supported") }
        guard opt.wordEmbedProjectionDim == nil || opt.wordEmbedProjectionDim == opt.hiddenSize else {
            throw AttendError("\(configPath): word_embed_proj_dim \(opt.wordEmbedProjectionDim!) != hidden_size (project_in/out) is not supported")
        }
        guard opt.activation == "relu" else { throw AttendError("\(configPath): activation '\(opt.activation)' is not supported (OPT uses relu)") }
        var config = GPTConfig(vocabSize: opt.vocabSize, contextLength: opt.maxPositions, width: opt.hiddenSize,
                               layerCount: opt.layerCount, headCount: opt.headCount)
        config.feedForwardSize = opt.ffnDim
        config.activation = .relu
        config.positionOffset = 2
        try config.validate()
        var g = RandomGenerator(seed: 0)
        let model = GPTModel(config, generator: &g)
        let path = directory + "/model.safetensors"
        var file = try Safetensors.read(path).tensors
        for (k, v) in file where k.hasPrefix("decoder.") { file["model." + k] = v }
        let mapped = try optNames.select(for: model, from: file, source: path)
        try model.load(mapped, source: path)
        model.eval()
        return model
    }
}
