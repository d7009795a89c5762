import AttendLM
import AttendNN
import AttendTensor
import AttendTokenizers
import CAttendKernels
import Foundation
import XCTest
@testable import AttendModels

/// LoRA against PEFT on the tiny Llama (scripts/reference/make_lora_fixtures.py): an adapter folder PEFT saved,
/// the logits with it, its gradients, and the logits after PEFT's merge. Tolerance 1e-4 absolute.
final class LoRATests: XCTestCase {
    let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    var tinyLlama: String { fixtures.appendingPathComponent("tiny-llama").path }
    var peftAdapter: String { fixtures.appendingPathComponent("tiny-llama-lora").path }

    func expected() throws -> [String: Tensor] { try Safetensors.read(fixtures.appendingPathComponent("tiny_llama_lora.safetensors").path).tensors }

    func tokens(_ e: [String: Tensor]) throws -> IntTensor {
        let ids = try XCTUnwrap(e["ids"])
        return IntTensor(ids.toArray().map { Int32($0) }, shape: ids.shape)
    }

    func assertClose(_ a: Tensor, _ b: Tensor?, _ what: String, tolerance: Float = 1e-4, file: StaticString = #filePath, line: UInt = #line) throws {
        let b = try XCTUnwrap(b, what)
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let worst = zip(a.toArray(), b.toArray()).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, tolerance, what, file: file, line: line)
    }

    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-lora-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// A PEFT adapter on all seven projection kinds (q and k reordered for the rotary layout): the same logits,
    /// training path and cached inference path, and the same gradients for every adapter tensor.
    func testPEFTAdapterGivesPEFTLogitsAndGradients() throws {
        let e = try expected()
        let model = try LlamaModel.load(huggingFace: tinyLlama)
        let plain = withNoGrad { model.logits(try! tokens(e)) }
        try model.loadAdapter(directory: peftAdapter)
        XCTAssertEqual(model.loraConfig?.rank, 4)
        XCTAssertEqual(model.loraConfig?.scale, 2)
        let ids = try tokens(e)
        let logits = model.logits(ids)
        try assertClose(logits, e["logits_adapted"], "logits with the adapter")
        let moved = zip(plain.toArray(), logits.toArray()).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(moved, 1e-2, "the adapter changes the output")

        // Only the adapters train: the base is frozen.
        let trained = model.namedParameters()
        XCTAssertEqual(trained.count, 2 * 7 * model.config.layerCount)
        XCTAssertTrue(trained.allSatisfy { $0.name.contains(".adapter.") }, "\(trained.map(\.name))")
        (logits * e["r"]!).sum().backward()
        let names = Dictionary(uniqueKeysWithValues: model.adapterTensors().map { ($0.name, $0.tensor) })
        XCTAssertEqual(names.count, e.keys.filter { $0.hasPrefix("grad.") }.count)
        for (stem, peft, _, lora) in model.adapters() {
            try assertClose(lora.down.grad!, e["grad." + stem + ".lora_A.weight"], "gradient of \(stem).lora_A")
            var upGrad = lora.up.grad!
            if peft == "q_proj" { upGrad = LlamaModel.deinterleaveRotaryRows(upGrad, heads: model.config.headCount) }
            if peft == "k_proj" { upGrad = LlamaModel.deinterleaveRotaryRows(upGrad, heads: model.config.kvHeadCount) }
            try assertClose(upGrad, e["grad." + stem + ".lora_B.weight"], "gradient of \(stem).lora_B")
        }

        // Cached inference (unmerged, as generation runs) gives the same rows.
        let cache = model.makeCache(capacity: 9)
        let row = model.forward(LMInput(Array(ids.data.prefix(9))), cache: cache, lastOnly: false, attentionLayer: nil).logits
        try assertClose(row, e["logits_adapted"]!.slice(axis: 0, start: 0, length: 1).reshape([9, -1]).contiguous(), "cached inference with the adapter")
    }

    func testMergeEqualsPEFTMerge() throws {
        let e = try expected()
        let model = try LlamaModel.load(huggingFace: tinyLlama)
        try model.loadAdapter(directory: peftAdapter)
        let merged = try model.mergeAdapters()
        XCTAssertEqual(merged.count, 7 * model.config.layerCount)
        XCTAssertTrue(model.adapters().isEmpty)
        try assertClose(withNoGrad { model.logits(try! tokens(e)) }, e["logits_merged"], "logits after merging")
    }

    /// Saving writes PEFT's names and order (B back in Hugging Face's row order); loading it again gives the
    /// same tensors, bit for bit.
    func testSaveLoadRoundTripInPEFTLayout() throws {
        let model = try LlamaModel.load(huggingFace: tinyLlama)
        try model.loadAdapter(directory: peftAdapter)
        let dir = try temporaryDirectory()
        try model.saveAdapter(directory: dir)
        // Read as raw safetensors (header JSON, then bytes), not through Attend's reader: dtype, shape and the bytes
        // of every tensor.
        func raw(_ path: String) throws -> [String: [String: AnyHashable]] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any])
            var out: [String: [String: AnyHashable]] = [:]
            for (name, entry) in header where name != "__metadata__" {
                let e = try XCTUnwrap(entry as? [String: Any]), offsets = try XCTUnwrap(e["data_offsets"] as? [Int])
                out[name] = ["dtype": try XCTUnwrap(e["dtype"] as? String), "shape": try XCTUnwrap(e["shape"] as? [Int]),
                             "bytes": data.subdata(in: (8 + length + offsets[0])..<(8 + length + offsets[1]))]
            }
            return out
        }
        let peft = try raw(peftAdapter + "/adapter_model.safetensors"), ours = try raw(dir + "/adapter_model.safetensors")
        XCTAssertEqual(peft.count, 2 * 7 * 2, "A and B for 7 projections in each of the tiny Llama's 2 layers")
        XCTAssertEqual(Set(peft.keys), Set(ours.keys))
        for (name, t) in peft { XCTAssertEqual(ours[name], t, name) }
        let config = try LoRAConfig.read(directory: dir)
        XCTAssertEqual(config.rank, 4)
        XCTAssertEqual(config.alpha, 8)
        XCTAssertEqual(Set(config.targetModules), ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    }

    /// Fresh adapters leave the output unchanged (B = 0) and only the targeted projections train.
    func testFreshAdaptersStartAtTheBaseModel() throws {
        let model = try LlamaModel.load(huggingFace: tinyLlama)
        let ids = IntTensor([1, 5, 9, 3], shape: [1, 4])
        let before = withNoGrad { model.logits(ids) }
        try model.addAdapters(LoRAConfig(rank: 2, alpha: 4, targetModules: ["q_proj", "v_proj"]), seed: 7)
        XCTAssertEqual(withNoGrad { model.logits(ids) }.toArray(), before.toArray())
        XCTAssertEqual(model.namedParameters().count, 2 * 2 * model.config.layerCount)
        XCTAssertThrowsError(try model.addAdapters(LoRAConfig(rank: 2, alpha: 4, targetModules: ["q_proj"]))) {
            XCTAssertTrue("\($0)".contains("already has adapters"), "\($0)")
        }
    }

    func testBadAdaptersAreRefusedWithTheirReason() throws {
        func fresh() throws -> LlamaModel { try LlamaModel.load(huggingFace: tinyLlama) }
        // A rank larger than the projection (k_proj is 16 x 32 here).
        XCTAssertThrowsError(try fresh().addAdapters(LoRAConfig(rank: 17, alpha: 4, targetModules: ["k_proj"]))) {
            XCTAssertTrue("\($0)".contains("rank 17 is larger than the k_proj projection (16 x 32)"), "\($0)")
        }
        XCTAssertThrowsError(try fresh().addAdapters(LoRAConfig(rank: 2, alpha: 4, targetModules: ["c_attn"]))) {
            XCTAssertTrue("\($0)".contains("'c_attn' is not a Llama projection"), "\($0)")
        }
        XCTAssertThrowsError(try fresh().addAdapters(LoRAConfig(rank: 0, alpha: 4, targetModules: ["q_proj"]))) {
            XCTAssertTrue("\($0)".contains("must be at least 1"), "\($0)")
        }

        // An adapter for another base model: by name, and by shape when the name is allowed through.
        let dir = try temporaryDirectory()
        for file in ["adapter_config.json", "adapter_model.safetensors"] {
            try FileManager.default.copyItem(atPath: peftAdapter + "/" + file, toPath: dir + "/" + file)
        }
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_config.json"))) as! [String: Any]
        json["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
        XCTAssertThrowsError(try fresh().loadAdapter(directory: dir)) {
            XCTAssertTrue("\($0)".contains("trained on 'HuggingFaceTB/SmolLM2-135M-Instruct', not on this model ('tiny-llama')"), "\($0)")
        }
        let weights = try Safetensors.read(dir + "/adapter_model.safetensors")
        var reshaped = weights.names.map { (name: $0, tensor: weights.tensors[$0]!) }
        reshaped[0].tensor = Tensor(shape: [4, 40])
        try Safetensors.write(reshaped, to: dir + "/adapter_model.safetensors")
        XCTAssertThrowsError(try fresh().loadAdapter(directory: dir, allowOtherBase: true)) {
            XCTAssertTrue("\($0)".contains("another base model"), "\($0)")
        }

        // Settings that change the computation Attend does not implement.
        json["use_dora"] = true
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
        XCTAssertThrowsError(try LoRAConfig.read(directory: dir)) { XCTAssertTrue("\($0)".contains("use_dora is set"), "\($0)") }
        json["use_dora"] = false
        json["target_modules"] = ".*proj"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
        XCTAssertThrowsError(try LoRAConfig.read(directory: dir)) { XCTAssertTrue("\($0)".contains("is a pattern"), "\($0)") }
        XCTAssertThrowsError(try LoRAConfig.read(directory: dir + "/missing")) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
    }

    func testNormalizedNamesMatchAcrossHubGGUFAndFiles() {
        let names = ["HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2 135M Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", "/x/SmolLM2-135M-Instruct.Q8_0.gguf"]
        XCTAssertEqual(Set(names.map(LlamaModel.normalizedName)), ["smollm2135minstruct"])
        XCTAssertNotEqual(LlamaModel.normalizedName("SmolLM2-135M"), LlamaModel.normalizedName("SmolLM2-135M-Instruct"))
    }

    /// Chat data: the mask covers the assistant's content and its end mark only; the loss falls as the adapters
    /// train with the base frozen (its weights do not move).
    func testChatTrainingMasksPromptsAndLearns() throws {
        let lines = (0..<8).map { i in #"{"messages": [{"role": "user", "content": "\#(i)"}, {"role": "assistant", "content": "\#(i)\#(i)"}]}"# }
        let examples = try ChatExample.parse(lines.joined(separator: "\n"), source: "chat.jsonl")
        let template = ChatTemplate(ggufTemplate: nil)
        let alphabet = examples.map { template.render($0.messages.map { ($0.role, $0.content) }) + "<|im_end|>\n" }.joined()
        let tokenizer = CharacterTokenizer(text: alphabet)
        XCTAssertLessThanOrEqual(tokenizer.count, 64)
        let chats = try examples.map { try template.tokenize($0, tokenizer: tokenizer, maxLength: 64) }
        let trainedText = tokenizer.decode(chats[3].ids.indices.filter { chats[3].trained[$0] }.map { chats[3].ids[$0] })
        XCTAssertEqual(trainedText, "33<|im_end|>")
        XCTAssertLessThanOrEqual(chats.map(\.ids.count).max()!, 64, "nothing is cut")
        let batch = ChatBatch(Array(chats.prefix(2)), padId: 0)
        XCTAssertEqual(batch.trainedTokens, chats[0].trainedCount + chats[1].trainedCount)
        XCTAssertEqual(batch.targets.data.filter { $0 != ChatBatch.ignored }, batch.trainedTargets.data)

        let model = try LlamaModel.load(huggingFace: tinyLlama)
        let frozen = model.layers[0].mlp.up.weight.toArray()
        var config = LoRATrainingConfig()
        (config.rank, config.steps, config.learningRate, config.warmupSteps, config.batchSize) = (4, 80, 2e-2, 2, 4)
        config.targetModules = ["q_proj", "v_proj", "up_proj"]
        config.maxLength = 64
        var tooLong = config
        tooLong.maxLength = 65
        XCTAssertThrowsError(try LoRATrainer(model: model, train: chats, heldOut: chats, config: tooLong)) {
            XCTAssertTrue("\($0)".contains("--max-length 65 is longer than the model's context of 64 positions"), "\($0)")
        }
        let trainer = try LoRATrainer(model: model, train: chats, heldOut: chats, config: config)
        let before = trainer.heldOutLoss()
        try trainer.run()
        let after = trainer.heldOutLoss()
        XCTAssertLessThan(after, before - 1, "held-out loss \(before) -> \(after)")
        XCTAssertEqual(model.layers[0].mlp.up.weight.toArray(), frozen, "the base stays frozen")
        XCTAssertEqual(trainer.evaluations.last?.step, 80)
    }

    func testChatDataErrorsNameTheLine() {
        func error(_ text: String) -> String {
            do { _ = try ChatExample.parse(text, source: "d.jsonl"); return "no error" } catch { return "\(error)" }
        }
        let good = #"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#
        XCTAssertTrue(error(good + "\n{not json").contains("d.jsonl:2: not valid JSON"), error(good + "\n{not json"))
        XCTAssertTrue(error(#"{"text": "x"}"#).contains("d.jsonl:1: no \"messages\" list"), error(#"{"text": "x"}"#))
        XCTAssertTrue(error(#"{"messages": [{"role": "user"}]}"#).contains("d.jsonl:1: 'messages.0.content' is missing"), error(#"{"messages": [{"role": "user"}]}"#))
        XCTAssertTrue(error(#"{"messages": [{"role": "bot", "content": "x"}]}"#).contains("role is 'bot'"))
        XCTAssertTrue(error(#"{"messages": [{"role": "user", "content": "x"}]}"#).contains("no assistant message"))
        XCTAssertTrue(error(#"{"messages": "hi"}"#).contains("d.jsonl:1: 'messages' has the wrong type"), error(#"{"messages": "hi"}"#))
        XCTAssertTrue(error("\n\n").contains("no examples"))
    }

    /// Merging a GGUF model's adapter and writing the file back: the written file loads, keeps every other tensor
    /// in its blocks, and gives the adapted model's logits.
    func testMergedGGUFRoundTrip() throws {
        let gguf = smolLMPath
        let model = try LlamaModel.load(gguf: GGUFFile(gguf))
        model.int8Activations = false
        try model.addAdapters(LoRAConfig(rank: 2, alpha: 4, targetModules: ["q_proj"]), seed: 1)
        var g = RandomGenerator(seed: 2)
        for (_, _, _, lora) in model.adapters() { lora.up.assign(Tensor.randn(lora.up.shape, std: 0.1, generator: &g)) }
        let ids: [Int32] = [1, 4, 2, 7]
        let adapted = model.forward(LMInput(ids), cache: model.makeCache(capacity: 8), lastOnly: false, attentionLayer: nil).logits
        let changed = try model.mergeAdapters()
        let dir = try temporaryDirectory()
        try model.writeGGUF(changed: changed, to: dir + "/merged.gguf")
        XCTAssertThrowsError(try model.writeGGUF(changed: changed, to: gguf)) { XCTAssertTrue("\($0)".contains("would overwrite"), "\($0)") }
        let file = try GGUFFile(dir + "/merged.gguf")
        let source = try GGUFFile(gguf)
        for name in source.tensorNames {
            let replaced = changed.map { LlamaModel.ggufName($0) }.contains(name)
            XCTAssertEqual(file.tensors[name]?.type, replaced ? 0 : source.tensors[name]?.type, name)
        }
        XCTAssertEqual(file.metadata, source.metadata)
        let reloaded = try LlamaModel.load(gguf: file)
        reloaded.int8Activations = false
        let logits = reloaded.forward(LMInput(ids), cache: reloaded.makeCache(capacity: 8), lastOnly: false, attentionLayer: nil).logits
        try assertClose(logits, adapted, "merged GGUF logits", tolerance: 1e-3)
    }
}
