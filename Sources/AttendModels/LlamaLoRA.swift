// LoRA on a Llama model: adapters attached to chosen projections, the base frozen, saved and loaded in PEFT's
// folder layout (adapter_config.json + adapter_model.safetensors under PEFT's tensor names), merged into the
// weights, and the merged model written back to GGUF.

import AttendNN
import AttendTensor
import Foundation

extension LlamaModel {
    /// The projections of a block LoRA can adapt, by their paths in the block. Their PEFT names (q_proj ...)
    /// and tensor stems come from `huggingFaceNames`.
    static let loraProjections: [(ours: String, module: KeyPath<LlamaBlock, LlamaLinear>)] = [
        ("attention.query", \.attention.query), ("attention.key", \.attention.key), ("attention.value", \.attention.value),
        ("attention.output", \.attention.output), ("mlp.gate", \.mlp.gate), ("mlp.up", \.mlp.up), ("mlp.down", \.mlp.down),
    ]

    /// PEFT's names of the projections LoRA can adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
    public static var loraTargetNames: [String] { loraProjections.map { peftName(huggingFaceName("layers.0.\($0.ours).weight")) } }

    /// "model.layers.0.self_attn.q_proj.weight" -> "q_proj".
    static func peftName(_ huggingFace: String) -> String { String(huggingFace.split(separator: ".").dropLast().last ?? "") }

    /// Every adaptable projection of every layer: PEFT's name, our weight's path, PEFT's tensor stem
    /// (`base_model.model.model.layers.0.self_attn.q_proj`) and the layer.
    func projections() -> [(peft: String, path: String, stem: String, linear: LlamaLinear)] {
        layers.enumerated().flatMap { l, block in
            LlamaModel.loraProjections.map { ours, module in
                let path = "layers.\(l).\(ours).weight", hf = LlamaModel.huggingFaceName(path)
                return (LlamaModel.peftName(hf), path, "base_model.model." + hf.dropLast(".weight".count), block[keyPath: module])
            }
        }
    }

    /// The projections an adapter of `config` attaches to.
    func loraTargets(_ config: LoRAConfig, source: String) throws -> [(peft: String, path: String, stem: String, linear: LlamaLinear)] {
        let known = LlamaModel.loraTargetNames
        for name in config.targetModules where !known.contains(name) {
            throw AttendError("\(source): target module '\(name)' is not a Llama projection (one of \(known.joined(separator: ", ")))")
        }
        return projections().filter { config.targetModules.contains($0.peft) }
    }

    /// Attaches fresh adapters (A random, B zero: the model's outputs are unchanged) to the projections
    /// `config.targetModules` names, and freezes every other tensor, so an optimizer over
    /// `namedParameters()` trains the adapters alone.
    ///
    /// ```swift
    /// try model.loadFloatWeights()
    /// try model.addAdapters(LoRAConfig(rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"]))
    /// model.namedParameters().count   // 2 per adapted projection
    /// ```
    public func addAdapters(_ config: LoRAConfig, seed: UInt64 = 0, source: String = "LoRA") throws {
        try config.validate(source: source)
        guard adapters().isEmpty else {
            throw AttendError("\(source): the model already has adapters; merge or remove them first")
        }
        let targets = try loraTargets(config, source: source)
        for (peft, _, _, linear) in targets {
            let (out, inp) = (linear.weight.shape[0], linear.weight.shape[1])
            guard config.rank <= min(out, inp) else {
                throw AttendError("\(source): rank \(config.rank) is larger than the \(peft) projection (\(out) x \(inp)); it must be at most \(min(out, inp))")
            }
        }
        for (_, t) in namedTensors() { t.requiresGrad = false }
        var g = RandomGenerator(seed: seed)
        for (_, _, _, linear) in targets {
            linear.adapter = LoRA(inFeatures: linear.weight.shape[1], outFeatures: linear.weight.shape[0], rank: config.rank,
                                  scale: config.scale, dropout: config.dropout, generator: &g)
        }
        var c = config
        c.baseModel = c.baseModel ?? name
        loraConfig = c
    }

    /// The attached adapters with their PEFT tensor names' stem (`base_model.model.model.layers.0.self_attn.q_proj`).
    func adapters() -> [(stem: String, peft: String, linear: LlamaLinear, lora: LoRA)] {
        projections().compactMap { p in p.linear.adapter.map { (p.stem, p.peft, p.linear, $0) } }
    }

    /// Query and key rows are stored in GGUF's rotary order (see `interleaveRotaryRows`); an adapter's B of
    /// those projections is reordered the same way, per head.
    private func rotaryHeads(_ peft: String) -> Int? {
        peft == "q_proj" ? config.headCount : peft == "k_proj" ? config.kvHeadCount : nil
    }

    /// The adapters' tensors under PEFT's names, B rows in Hugging Face's order.
    public func adapterTensors() -> [(name: String, tensor: Tensor)] {
        adapters().flatMap { stem, peft, _, lora -> [(name: String, tensor: Tensor)] in
            let up = rotaryHeads(peft).map { LlamaModel.deinterleaveRotaryRows(lora.up, heads: $0) } ?? lora.up.contiguous()
            return [(stem + ".lora_A.weight", lora.down.contiguous()), (stem + ".lora_B.weight", up)]
        }
    }

    /// Writes the adapters as a PEFT folder: `adapter_config.json` and `adapter_model.safetensors` (each
    /// through a temporary file renamed into place). PEFT's `PeftModel.from_pretrained` reads it.
    public func saveAdapter(directory: String) throws {
        guard let config = loraConfig, !adapters().isEmpty else { throw AttendError("the model has no adapters to save") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let dir = URL(fileURLWithPath: directory)
        try Safetensors.write(adapterTensors(), metadata: ["format": "pt"], to: dir.appendingPathComponent("adapter_model.safetensors").path)
        try AtomicFile.write(try config.json(), to: dir.appendingPathComponent("adapter_config.json").path)
    }

    /// Loads a PEFT LoRA folder (written by PEFT or by `saveAdapter`) onto this model, unmerged: generation
    /// adds the low-rank update to each adapted projection. Refuses an adapter whose base model or shapes
    /// differ from this one, naming both.
    public func loadAdapter(directory: String, allowOtherBase: Bool = false) throws {
        var config = try LoRAConfig.read(directory: directory)
        let weightsPath = URL(fileURLWithPath: directory).appendingPathComponent("adapter_model.safetensors").path
        if let base = config.baseModel, !allowOtherBase, !name.isEmpty,
           !([name] + aliases).map(LlamaModel.normalizedName).contains(LlamaModel.normalizedName(base)) {
            throw AttendError("\(directory): the adapter was trained on '\(base)', not on this model ('\(name)'); pass the matching model (or allow another base explicitly)")
        }
        let file = try Safetensors.read(weightsPath)
        let trainedOn = config.baseModel ?? "an unnamed model"
        try addAdapters(config, source: directory)
        var used = Set<String>()
        for (stem, peft, _, lora) in adapters() {
            for (suffix, target) in [(".lora_A.weight", lora.down), (".lora_B.weight", lora.up)] {
                // PEFT names tensors without the adapter name when saving; some versions keep ".default".
                let names = [stem + suffix, stem + suffix.replacingOccurrences(of: ".weight", with: ".default.weight")]
                guard let key = names.first(where: { file.tensors[$0] != nil }), var t = file.tensors[key] else {
                    throw AttendError("\(weightsPath): tensor '\(stem + suffix)' is missing (adapter_config.json targets \(peft))")
                }
                guard t.shape == target.shape else {
                    throw AttendError("\(weightsPath): tensor '\(key)' has shape \(t.shape), but this model ('\(name)') needs \(target.shape) for rank \(config.rank); the adapter was trained on \(trainedOn), another base model")
                }
                if suffix.hasPrefix(".lora_B"), let heads = rotaryHeads(peft) { t = LlamaModel.interleaveRotaryRows(t, heads: heads) }
                withNoGrad { target.assign(t) }
                used.insert(key)
            }
        }
        if let extra = file.names.first(where: { !used.contains($0) }) {
            throw AttendError("\(weightsPath): tensor '\(extra)' is not an adapter of target_modules \(config.targetModules) on this \(layers.count)-layer model; the adapter belongs to another base model (trained on \(trainedOn))")
        }
        config.baseModel = config.baseModel ?? name
        loraConfig = config
        eval()
    }

    /// Adds each adapter's update into its weight (W + scale B A) and removes the adapters. Quantized
    /// projections that carry an adapter are dequantized first (the others stay in their blocks). Returns
    /// the module paths of the weights that changed.
    @discardableResult
    public func mergeAdapters() throws -> [String] {
        var merged: [String] = []
        for (_, path, _, linear) in projections() {
            guard let lora = linear.adapter else { continue }
            if linear.blocks != nil {
                guard let file = ggufSource else { throw AttendError("cannot dequantize '\(path)' without its GGUF file") }
                try file.read(LlamaModel.ggufNames(path), into: linear.weight)
                linear.blocks = nil
            }
            withNoGrad { linear.weight.assign(linear.weight + lora.delta()) }
            linear.adapter = nil
            merged.append(path)
        }
        loraConfig = nil
        return merged
    }

    /// Writes this model as a GGUF file: the metadata and every untouched tensor copied from the file it was
    /// loaded from, the weights at `changed` (module paths, e.g. from `mergeAdapters()`) in float32.
    /// llama.cpp reads the result.
    public func writeGGUF(changed: [String], to path: String) throws {
        guard let source = ggufSource else { throw AttendError("writing GGUF needs a model loaded from a GGUF file") }
        let tensors = Dictionary(uniqueKeysWithValues: namedTensors().map { ($0.name, $0.tensor) })
        var replacements: [String: Tensor] = [:]
        for p in changed {
            guard let t = tensors[p] else { throw AttendError("'\(p)' is not a tensor of this model") }
            replacements[LlamaModel.ggufNames(p)] = t
        }
        try source.write(replacing: replacements, to: path)
    }

    /// A model name reduced to letters and digits, without a path, extension or quantization suffix:
    /// "HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2 135M Instruct" and "SmolLM2-135M-Instruct.Q4_1.gguf" agree.
    static func normalizedName(_ s: String) -> String {
        var base = Substring(s.split(separator: "/").last ?? Substring(s))
        for ext in [".gguf", ".safetensors"] where base.lowercased().hasSuffix(ext) { base = base.dropLast(ext.count) }
        var n = base.lowercased()
        if let r = n.range(of: #"[.-](q[0-9]_[0-9k](_[a-z])?|f16|f32|bf16)$"#, options: .regularExpression) { n.removeSubrange(r) }
        return n.filter { $0.isLetter || $0.isNumber }
    }
}
