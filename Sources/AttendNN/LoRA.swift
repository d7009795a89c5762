// Low-rank adaptation (Hu et al., 2021): a frozen projection W gains a trainable update scale * B A, with A
// [rank, in] and B [out, rank]; B starts at zero, so training starts from the pretrained model. The settings
// decode PEFT's adapter_config.json (its key names), so adapters trained by either side load in the other.

import AttendTensor
import Foundation

/// An adapter's settings, in PEFT's `adapter_config.json` layout (`r`, `lora_alpha`, `target_modules`, ...).
///
/// ```swift
/// let config = LoRAConfig(rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"])
/// config.scale   // 2: the update is added as (alpha / rank) * B A x
/// ```
public struct LoRAConfig: Codable, Equatable {
    public var rank: Int
    public var alpha: Float
    /// Projection names in the checkpoint's own words (Hugging Face: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
    public var targetModules: [String]
    public var dropout: Float
    /// rsLoRA (Kalajdzievski, 2023): alpha / sqrt(rank) instead of alpha / rank.
    public var useRSLoRA: Bool
    /// The model the adapter was trained on, as the trainer named it (PEFT: a hub id or a path).
    public var baseModel: String?
    public var peftType = "LORA"
    public var taskType: String? = "CAUSAL_LM"
    public var bias = "none"
    public var fanInFanOut = false
    /// PEFT settings that change what the adapter computes and Attend does not implement, by key: refused.
    var unsupported: [String] = []

    enum CodingKeys: String, CodingKey {
        case rank = "r", alpha = "lora_alpha", targetModules = "target_modules", dropout = "lora_dropout", useRSLoRA = "use_rslora"
        case baseModel = "base_model_name_or_path", peftType = "peft_type", taskType = "task_type", bias
        case fanInFanOut = "fan_in_fan_out"
    }

    /// Keys whose non-default values Attend refuses rather than silently ignores.
    enum VariantKeys: String, CodingKey, CaseIterable {
        case useDoRA = "use_dora", loraBias = "lora_bias", rankPattern = "rank_pattern", alphaPattern = "alpha_pattern"
        case modulesToSave = "modules_to_save", layersToTransform = "layers_to_transform", trainableTokens = "trainable_token_indices"
        case targetParameters = "target_parameters", layerReplication = "layer_replication"
    }

    public init(rank: Int, alpha: Float, targetModules: [String], dropout: Float = 0, useRSLoRA: Bool = false, baseModel: String? = nil) {
        self.rank = rank
        self.alpha = alpha
        self.targetModules = targetModules
        self.dropout = dropout
        self.useRSLoRA = useRSLoRA
        self.baseModel = baseModel
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rank = try c.decode(Int.self, forKey: .rank)
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha) ?? 8
        // PEFT writes a list, or one regular expression as a string; Attend reads the list form.
        if let names = try? c.decode([String].self, forKey: .targetModules) {
            targetModules = names
        } else {
            let pattern = (try? c.decode(String.self, forKey: .targetModules)) ?? "?"
            throw AttendError("target_modules '\(pattern)' is a pattern; Attend reads a list of projection names")
        }
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        useRSLoRA = try c.decodeIfPresent(Bool.self, forKey: .useRSLoRA) ?? false
        baseModel = try c.decodeIfPresent(String.self, forKey: .baseModel)
        peftType = try c.decodeIfPresent(String.self, forKey: .peftType) ?? "LORA"
        taskType = try c.decodeIfPresent(String.self, forKey: .taskType)
        bias = try c.decodeIfPresent(String.self, forKey: .bias) ?? "none"
        fanInFanOut = try c.decodeIfPresent(Bool.self, forKey: .fanInFanOut) ?? false
        let variants = try decoder.container(keyedBy: VariantKeys.self)
        for key in VariantKeys.allCases where variants.contains(key) {
            if try variants.decodeNil(forKey: key) { continue }
            let trivial = (try? variants.decode(Bool.self, forKey: key)) == false
                || (try? variants.decode([String: Double].self, forKey: key))?.isEmpty == true
                || (try? variants.decode([String].self, forKey: key))?.isEmpty == true
            if !trivial { unsupported.append(key.rawValue) }
        }
    }

    /// The factor the low-rank product is multiplied by.
    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// A clear error for settings Attend cannot apply, naming `source`.
    public func validate(source: String) throws {
        guard peftType == "LORA" else { throw AttendError("\(source): peft_type '\(peftType)' is not supported (only LORA)") }
        guard rank >= 1 else { throw AttendError("\(source): r (the rank) is \(rank); it must be at least 1") }
        guard alpha.isFinite, alpha > 0 else { throw AttendError("\(source): lora_alpha \(alpha) must be finite and positive") }
        guard dropout >= 0, dropout < 1 else { throw AttendError("\(source): lora_dropout \(dropout) must be in [0, 1)") }
        guard !targetModules.isEmpty else { throw AttendError("\(source): target_modules is empty") }
        guard bias == "none" else { throw AttendError("\(source): bias '\(bias)' is not supported (only 'none': Llama projections have no biases)") }
        if let key = unsupported.first { throw AttendError("\(source): \(key) is set; Attend applies plain LoRA adapters only") }
        guard !fanInFanOut else { throw AttendError("\(source): fan_in_fan_out adapters (GPT-2 Conv1D layout) are not supported") }
    }

    /// Reads `directory/adapter_config.json`.
    public static func read(directory: String) throws -> LoRAConfig {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("adapter_config.json").path
        guard let data = FileManager.default.contents(atPath: path) else { throw AttendError("\(path): no such file (an adapter folder holds adapter_config.json and adapter_model.safetensors)") }
        let config = try ConfigDecoding.decode(LoRAConfig.self, from: data, source: path)
        try config.validate(source: path)
        return config
    }

    /// The JSON PEFT reads, keys sorted.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// The trainable low-rank update of one projection: `callAsFunction(x)` is scale * (x A^T) B^T.
///
/// ```swift
/// let lora = LoRA(inFeatures: 576, outFeatures: 576, rank: 8, scale: 2, generator: &g)
/// let y = x.matmul(w.transposed(0, 1)) + lora(x)   // equals the base projection until B moves
/// ```
public final class LoRA: Module {
    /// A [rank, in] (PEFT's lora_A).
    public let down: Tensor
    /// B [out, rank] (PEFT's lora_B), zero at the start.
    public let up: Tensor
    public let scale: Float
    let dropout: Dropout?

    /// A drawn like PEFT's default (Kaiming-uniform with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))), B zero.
    public init(inFeatures: Int, outFeatures: Int, rank: Int, scale: Float, dropout: Float = 0, generator: inout RandomGenerator) {
        let bound = 1 / Float(inFeatures).squareRoot()
        down = Tensor.uniform([rank, inFeatures], low: -bound, high: bound, generator: &generator, requiresGrad: true)
        up = Tensor.zeros([outFeatures, rank], requiresGrad: true)
        self.scale = scale
        self.dropout = dropout > 0 ? Dropout(dropout, seed: generator.next()) : nil
    }

    public var rank: Int { down.shape[0] }

    /// The update for x [..., in] -> [..., out]; differentiable in A, B and x.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let input = dropout.map { $0(x) } ?? x
        return input.matmul(down.transposed(0, 1)).matmul(up.transposed(0, 1)) * scale
    }

    /// scale * B A [out, in]: what merging adds to the weight.
    public func delta() -> Tensor { withNoGrad { up.matmul(down) * scale } }
}
