import ArgumentParser
import AttendSafety
import AttendLM
import AttendModels
import AttendPlots
import AttendTensor
import AttendTokenizers
import Foundation

struct SamplingArguments: ParsableArguments {
    @Option(help: "Llama-family GGUF file; a Hugging Face Llama, GPT-2 or OPT folder (config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt); a hub repo id; or a short name (SmolLM2-135M-Instruct).") var model = "SmolLM2-135M-Instruct"
    @Option(name: .customLong("max-tokens"), help: "Tokens to generate at most.") var maxTokens = 128
    @Option(help: "0 = greedy.") var temperature: Float = 0
    @Option(name: .customLong("top-k")) var topK: Int?
    @Option(name: .customLong("top-p")) var topP: Float?
    @Option(name: .customLong("min-p")) var minP: Float?
    @Option(name: .customLong("repetition-penalty")) var repetitionPenalty: Float = 1
    @Option(name: .customLong("presence-penalty")) var presencePenalty: Float = 0
    @Option(name: .customLong("frequency-penalty")) var frequencyPenalty: Float = 0
    @Option(help: "Stop when this text appears (repeatable).") var stop: [String] = []
    @Option(help: "Sampling seed.") var seed: UInt64 = 0
    @Flag(help: "Exact float32 arithmetic on the dequantized weights instead of llama.cpp's 8-bit activations (slower).") var exact = false
    @Option(help: "A LoRA adapter folder (PEFT layout, from `attend lora train` or PEFT) applied without merging (Llama models).") var adapter: String?
    @Flag(name: .customLong("allow-other-base"), help: "Apply an --adapter that names another base model (shapes must still fit).") var allowOtherBase = false
    @Option(help: "A GBNF grammar file (llama.cpp's notation, rule 'root'): the output is a sentence of it.") var grammar: String?
    @Option(name: .customLong("json-schema"), help: "A JSON schema file: the output is JSON the schema describes.") var jsonSchema: String?
    @Flag(name: .customLong("ignore-eos"), help: "Generate --max-tokens tokens even past the end-of-sequence token (for timings).") var ignoreEOS = false

    /// The grammar or schema file's text as a constraint (read and compiled once in validate()).
    var constraint: OutputConstraint? {
        if let grammar { return .grammar((try? String(contentsOfFile: grammar, encoding: .utf8)) ?? "") }
        if let jsonSchema { return .jsonSchema((try? String(contentsOfFile: jsonSchema, encoding: .utf8)) ?? "") }
        return nil
    }

    var options: SamplingOptions {
        var o = SamplingOptions()
        o.maxTokens = maxTokens
        o.temperature = temperature
        o.topK = topK
        o.topP = topP
        o.minP = minP
        o.repetitionPenalty = repetitionPenalty
        o.presencePenalty = presencePenalty
        o.frequencyPenalty = frequencyPenalty
        o.stop = stop
        o.seed = seed
        o.constraint = constraint
        o.ignoreEOS = ignoreEOS
        return o
    }

    func validate() throws {
        try Require.count(maxTokens, "--max-tokens", 1...1_000_000)
        try Require.number(temperature, "--temperature", 0...100)
        try Require.count(topK, "--top-k", 0...Int(Int32.max))
        try Require.number(topP, "--top-p", 0...1, aboveLower: true)
        try Require.number(minP, "--min-p", 0...1)
        try Require.number(repetitionPenalty, "--repetition-penalty", 0...100, aboveLower: true)
        try Require.number(presencePenalty, "--presence-penalty", -100...100)
        try Require.number(frequencyPenalty, "--frequency-penalty", -100...100)
        for s in stop where s.isEmpty { throw ValidationError("--stop: an empty stop text would stop before the first token") }
        guard grammar == nil || jsonSchema == nil else { throw ValidationError("give --grammar or --json-schema, not both") }
        for (flag, path) in [("--grammar", grammar), ("--json-schema", jsonSchema)] {
            guard let path else { continue }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("\(flag) \(path): cannot be read as UTF-8 text") }
            do { _ = try (flag == "--grammar" ? OutputConstraint.grammar(text) : .jsonSchema(text)).compile() } catch {
                throw ValidationError("\(flag) \(path): \(error)")
            }
        }
    }

    func load() throws -> LoadedLanguageModel {
        let loaded = try ModelLocator.languageModel(model, int8Activations: !exact)
        if let adapter {
            guard let llama = loaded.model as? LlamaModel else {
                throw AttendError("--adapter: \(loaded.source) is a \(type(of: loaded.model)); LoRA adapters apply to Llama-family models")
            }
            try llama.loadAdapter(directory: adapter, allowOtherBase: allowOtherBase)
        }
        return loaded
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generate text with a pretrained language model (GGUF, or a Hugging Face Llama, GPT-2 or OPT folder), streaming.")
    @OptionGroup var sampling: SamplingArguments
    @Option(help: "The prompt.") var prompt: String
    @Flag(help: "Wrap the prompt in the model's chat template as a user message.") var chat = false
    @OptionGroup var safety: SafetyOptions
    @Flag(name: .customLong("print-ids"), help: "Finish with a JSON line of token ids and speeds (for benchmarks).") var printIds = false
    @Option(help: "Beam search with this many beams instead of sampling (no streaming).") var beams: Int?
    @Option(name: .customLong("length-penalty"), help: "Beam scores are divided by length^this.") var lengthPenalty: Float = 1
    @Option(name: .customLong("attention-map"), help: "Write the prompt's self-attention weights (--layer, --head) as a PNG heatmap with the tokens on the axes.")
    var attentionMap: String?
    @Option(help: "Layer for --attention-map (0-based; negative counts from the end).") var layer = -1
    @Option(help: "Query head for --attention-map (0-based).") var head = 0

    func validate() throws {
        try Require.count(beams, "--beams", 1...64)
        try Require.number(lengthPenalty, "--length-penalty", -10...10)
        try Require.count(layer, "--layer", -1_000...1_000)
        try Require.count(head, "--head", 0...1_000)
        if let attentionMap { try OutputPath.check(attentionMap, isNotInput: [sampling.model]) }
    }

    func run() throws {
        let loaded = try sampling.load()
        let (model, tokenizer) = (loaded.model, loaded.tokenizer)
        let stage = try safety.stage()
        let ids = loaded.promptIds(try SafetyOptions.screen(prompt, stage, what: "prompt"), chat: chat)
        if let attentionMap {
            let (weights, l) = try Generation.attentionMap(model: model, prompt: ids, layer: layer, head: head)
            let labels = ids.map { Generation.visibleToken(tokenizer.decode([$0])) }
            try Heatmap.render(weights, cell: ids.count > 40 ? 10 : 18, rowLabels: labels, columnLabels: labels,
                               title: "layer \(l) head \(head): rows attend to columns").writePNG(to: attentionMap)
            FileHandle.standardError.write("attention map of \(ids.count) prompt tokens (layer \(l), head \(head)) written to \(attentionMap)\n".data(using: .utf8)!)
        }
        if let beams {
            let best = try Generation.beamSearch(model: model, eosId: tokenizer.eosId, prompt: ids, beams: beams,
                                                 maxTokens: sampling.maxTokens, lengthPenalty: lengthPenalty)
            print(tokenizer.decode(best.tokens))
            FileHandle.standardError.write(String(format: "beam score %.4f\n", best.score).data(using: .utf8)!)
            return
        }
        let r = try SafeGeneration.generate(model: model, tokenizer: tokenizer, input: LMInput(ids), options: sampling.options,
                                             filter: SafetyOptions.filter(stage)) {
            print($0, terminator: "")
            fflush(stdout)
        }
        print()
        if r.finishReason == "content_filter" { FileHandle.standardError.write("(the answer was stopped by the safety policy)\n".data(using: .utf8)!) }
        if printIds {
            let stats: [String: Any] = ["prompt_tokens": r.promptTokens, "prompt_tps": Double(r.promptTokens) / r.promptSeconds,
                                        "generated": r.tokens.count, "generation_tps": Double(r.tokens.count) / max(r.generationSeconds, 1e-9),
                                        "ids": r.tokens.map(Int.init)]
            print(String(decoding: try JSONSerialization.data(withJSONObject: stats), as: UTF8.self))
        }
        FileHandle.standardError.write(String(format: "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s (%@)\n",
                                              r.promptTokens, Double(r.promptTokens) / r.promptSeconds, r.tokens.count,
                                              Double(r.tokens.count) / max(r.generationSeconds, 1e-9), r.finishReason).data(using: .utf8)!)
    }
}

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chat", abstract: "Chat with an instruct model: one message per line on standard input.")
    @OptionGroup var sampling: SamplingArguments
    @Option(help: "System message (default: the template's own).") var system: String?
    @Option(help: "A picture (PNG or JPEG) the first message is about, seen through the multimodal LM's projector.") var image: String?
    @Option(help: "The projector for --image (from attend vlm train).") var projector = "models/vlm.safetensors"
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint (the image encoder for --image).") var efficientnet: String?
    @OptionGroup var safety: SafetyOptions

    func run() throws {
        let loaded = try sampling.load()
        let (model, tokenizer) = (loaded.model, loaded.tokenizer)
        let template = ChatTemplate(ggufTemplate: loaded.chatTemplate)
        // With a picture, its projected cells stand where <image> is in the first user message.
        var seeing: (model: VisionLanguageModel, cells: Tensor)?
        if let image {
            let vlm = try VisionLanguageModel.load(projector, imageEncoder: try EfficientNet.load(efficientnet ?? ImageAssets.efficientNetLite0), language: loaded,
                                                   labels: { try ImageNetLabels.load(folder: ImageAssets.imageNetLabels) })
            seeing = (vlm, vlm.imageCells(try readPicture(image)))
        }
        var history: [(role: String, content: String)] = system.map { [("system", $0)] } ?? seeing.map { [("system", $0.model.config.system)] } ?? []
        let stage = try safety.stage()
        let interactive = isatty(fileno(stdin)) != 0
        while true {
            if interactive { print("> ", terminator: ""); fflush(stdout) }
            guard let line = readLine() else { break }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let message: String
            do { message = try SafetyOptions.screen(line, stage, what: "message") } catch { print("(\(error))"); continue }
            let first = !history.contains { $0.role == "user" }
            history.append(("user", first && seeing != nil ? VisionLanguageModel.placeholder + "\n" + message : message))
            let rendered = template.render(history)
            let input: LMInput
            do { input = try seeing.map { try $0.model.chatInput(rendered: rendered, cells: $0.cells) } ?? LMInput(tokenizer.encode(rendered)) } catch {
                print("(\(error))")   // a message that itself holds <image>
                history.removeLast()
                continue
            }
            let r = try SafeGeneration.generate(model: model, tokenizer: tokenizer, input: input,
                                                options: sampling.options, filter: SafetyOptions.filter(stage)) {
                print($0, terminator: "")
                fflush(stdout)
            }
            print(r.finishReason == "content_filter" ? "\n(the answer was stopped by the safety policy)" : "")
            history.append(("assistant", r.text))
        }
    }
}
