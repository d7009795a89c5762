import ArgumentParser
import AttendDatasets
import AttendLM
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import Foundation

struct LoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lora", abstract: "Adapt a pretrained Llama-family model with LoRA adapters (PEFT's layout).",
                                                    subcommands: [Train.self, Evaluate.self, Merge.self, MakeData.self])

    /// The Llama model `spec` names, or a clear error for another family.
    static func llama(_ loaded: LoadedLanguageModel) throws -> LlamaModel {
        guard let model = loaded.model as? LlamaModel else {
            throw AttendError("\(loaded.source): LoRA is implemented for Llama-family models; this is a \(type(of: loaded.model))")
        }
        return model
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train LoRA adapters on chat examples (JSON Lines of {\"messages\": [...]}); the base stays frozen.")
        @Argument(help: "The base model: a Llama GGUF file, a Hugging Face Llama folder, or a short name.") var model: String
        @Argument(help: "Training conversations, one {\"messages\": [{\"role\": ..., \"content\": ...}, ...]} per line.") var data: String
        @Option(name: .shortAndLong, help: "Adapter folder to write (adapter_config.json, adapter_model.safetensors).") var output: String
        @Option(name: .customLong("held-out"), help: "Held-out conversations (same format); default: the last --held-out-fraction of DATA.") var heldOut: String?
        @Option(name: .customLong("held-out-fraction")) var heldOutFraction = 0.1
        @Option var rank = 8
        @Option var alpha: Float = 16
        @Option(help: "Comma-separated projections: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.") var targets = "q_proj,v_proj"
        @Option var dropout: Float = 0
        @Option var steps = 100
        @Option(name: .customLong("batch-size")) var batchSize = 4
        @Option(name: .customLong("max-length"), help: "Tokens per conversation at most (longer ones are cut).") var maxLength = 256
        @Option(name: .customLong("lr")) var learningRate: Float = 2e-4
        @Option var warmup = 10
        @Option(name: .customLong("weight-decay")) var weightDecay: Float = 0
        @Option(name: .customLong("grad-clip")) var gradientClip: Float = 1
        @Option(name: .customLong("eval-interval")) var evalInterval: Int?
        @Option var seed: UInt64 = 0
        @Option(help: "Held-out answers to print before and after training.") var show = 3
        @Option(help: "Held-out prompts answered greedily before and after training, for the exact-match count.") var answers = 30
        @Option(name: .customLong("loss-curve"), help: "Write the training loss (blue) and held-out loss (orange) as a PNG.") var lossCurve: String?

        func validate() throws {
            guard heldOutFraction > 0, heldOutFraction < 1 else { throw ValidationError("--held-out-fraction must be in (0, 1), got \(heldOutFraction)") }
            try Require.count(show, "--show", 0...10_000)
            try Require.count(answers, "--answers", 0...100_000)
            try Require.count(rank, "--rank", 1...4_096)
            try Require.number(alpha, "--alpha", 0...1e6, aboveLower: true)
            try Require.dropout(dropout, "--dropout")
            try Require.count(steps, "--steps", 1...Require.stepLimit)
            try Require.count(batchSize, "--batch-size", 1...4_096)
            try Require.count(maxLength, "--max-length", 2...Require.sizeLimit)
            try Require.learningRate(learningRate, "--lr")
            try Require.count(warmup, "--warmup", 0...Require.stepLimit)
            try Require.number(weightDecay, "--weight-decay", 0...10)
            try Require.number(gradientClip, "--grad-clip", 0...1e6, aboveLower: true)
            try Require.count(evalInterval, "--eval-interval", 1...Require.stepLimit)
            try OutputPath.check(output, isNotInput: [model, data] + (heldOut.map { [$0] } ?? []))
            if let lossCurve { try OutputPath.check(lossCurve, isNotInput: [model, data, output] + (heldOut.map { [$0] } ?? [])) }
        }

        func run() throws {
            var config = LoRATrainingConfig()
            (config.rank, config.alpha, config.dropout, config.steps, config.batchSize) = (rank, alpha, dropout, steps, batchSize)
            (config.maxLength, config.learningRate, config.warmupSteps, config.weightDecay) = (maxLength, learningRate, warmup, weightDecay)
            (config.gradientClip, config.evaluationInterval, config.seed) = (gradientClip, evalInterval, seed)
            config.targetModules = targets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            try config.validate()
            try OutputPath.check(output, isNotInput: [model, data] + (heldOut.map { [$0] } ?? []))

            var examples = try ChatExample.read(jsonl: data)
            let held: [ChatExample]
            if let heldOut {
                held = try ChatExample.read(jsonl: heldOut)
            } else {
                let n = max(1, Int(Double(examples.count) * heldOutFraction))
                guard examples.count > n else { throw AttendError("\(data): \(examples.count) examples are too few to hold \(n) out; pass --held-out") }
                held = Array(examples.suffix(n))
                examples.removeLast(n)
            }
            let loaded = try ModelLocator.languageModel(model)
            let llama = try LoRACommand.llama(loaded)
            let template = ChatTemplate(ggufTemplate: loaded.chatTemplate)
            let tokenize = { (e: ChatExample) in try template.tokenize(e, tokenizer: loaded.tokenizer, maxLength: maxLength) }
            let trainer = try LoRATrainer(model: llama, train: try examples.map(tokenize), heldOut: try held.map(tokenize), config: config,
                                          padId: loaded.tokenizer.eosId ?? 0)
            let trainable = llama.namedParameters().reduce(0) { $0 + $1.tensor.count }
            print("\(examples.count) training and \(held.count) held-out conversations; \(trainable) adapter parameters (rank \(rank) on \(config.targetModules.joined(separator: ", "))); \(Parallel.threads) threads")

            let before = trainer.heldOutLoss()
            let asked = Array(held.prefix(answers))
            let answersBefore = try answer(asked, loaded: loaded, template: template)
            print(String(format: "held-out loss before: %.4f; exact match %d/%d", before, answersBefore.correct, asked.count))
            let bar = ProgressBar(total: steps, label: "lora", unit: "step")
            try trainer.run(progress: bar) { step, loss in print(String(format: "step %d: held-out loss %.4f", step, loss)) }
            try llama.saveAdapter(directory: output)
            let after = trainer.heldOutLoss()
            let answersAfter = try answer(asked, loaded: loaded, template: template)
            let tokens = Double(steps * batchSize)
            print(String(format: "held-out loss after: %.4f; exact match %d/%d", after, answersAfter.correct, asked.count))
            let times = trainer.stepSeconds.dropFirst().sorted()
            let median = times.isEmpty ? trainer.trainingSeconds / Double(max(steps, 1)) : times[times.count / 2]
            print(String(format: "trained %d steps in %.1f s (median %.3f s/step after the first, %.1f conversations/s); peak RSS %.0f MiB; adapter written to %@",
                         steps, trainer.trainingSeconds, median, tokens / max(trainer.trainingSeconds, 1e-9), PeakMemory.mebibytes, output))
            for i in 0..<min(show, asked.count) {
                let prompt = asked[i].messages.last(where: { $0.role == "user" })?.content ?? ""
                print("---\nuser: \(prompt)\nbefore: \(answersBefore.texts[i])\nafter:  \(answersAfter.texts[i])")
            }
            if let lossCurve {
                let chart = LineChart(series: [
                    .init(points: trainer.lossHistory.map { (Double($0.step), Double($0.loss)) }, color: (31, 119, 180)),
                    .init(points: [(0, Double(before))] + trainer.evaluations.map { (Double($0.step), Double($0.loss)) }, color: (255, 127, 14)),
                ])
                try chart.render().writePNG(to: lossCurve)
            }
        }

        /// Greedy answers to each conversation's prompt (the messages before its last assistant turn) and how many
        /// equal that turn exactly (after trimming whitespace). Each answer may run 8 tokens past the expected one's length.
        func answer(_ examples: [ChatExample], loaded: LoadedLanguageModel, template: ChatTemplate) throws -> (texts: [String], correct: Int) {
            var texts: [String] = [], correct = 0
            var options = SamplingOptions()
            for e in examples {
                guard let last = e.messages.lastIndex(where: { $0.role == "assistant" }) else { continue }
                options.maxTokens = loaded.tokenizer.encode(e.messages[last].content, allowSpecial: false).count + 8
                let prompt = template.render(e.messages[..<last].map { ($0.role, $0.content) })
                let r = try Generation.generate(model: loaded.model, tokenizer: loaded.tokenizer, prompt: loaded.tokenizer.encode(prompt, allowSpecial: true),
                                                options: options)
                let text = r.text.trimmingCharacters(in: .whitespacesAndNewlines)
                if text == e.messages[last].content.trimmingCharacters(in: .whitespacesAndNewlines) { correct += 1 }
                texts.append(text)
            }
            return (texts, correct)
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The mean loss per assistant token of chat examples, with or without an adapter.")
        @Argument(help: "The base model.") var model: String
        @Argument(help: "Conversations (JSON Lines of {\"messages\": [...]}).") var data: String
        @Option(help: "Adapter folder (PEFT layout).") var adapter: String?
        @Flag(name: .customLong("allow-other-base")) var allowOtherBase = false
        @Option(name: .customLong("max-length")) var maxLength = 256
        @Option(name: .customLong("batch-size")) var batchSize = 4
        @Option(help: "Write the logits of the first conversation ([T, vocabulary], tensor 'logits') and its ids to this safetensors file.") var logits: String?

        func validate() throws {
            try Require.count(maxLength, "--max-length", 2...Require.sizeLimit)
            try Require.count(batchSize, "--batch-size", 1...4_096)
            if let logits { try OutputPath.check(logits, isNotInput: [model, data] + (adapter.map { [$0] } ?? [])) }
        }

        func run() throws {
            let loaded = try ModelLocator.languageModel(model)
            let llama = try LoRACommand.llama(loaded)
            try llama.loadFloatWeights()
            if let adapter { try llama.loadAdapter(directory: adapter, allowOtherBase: allowOtherBase) }
            let template = ChatTemplate(ggufTemplate: loaded.chatTemplate)
            let chats = try ChatExample.read(jsonl: data).map { try template.tokenize($0, tokenizer: loaded.tokenizer, maxLength: min(maxLength, llama.contextLength)) }
            let loss = LoRATrainer.meanLoss(model: llama, chats: chats, batchSize: batchSize, padId: loaded.tokenizer.eosId ?? 0)
            print(String(format: "%d conversations, %d trained tokens: mean loss %.6f", chats.count, chats.reduce(0) { $0 + $1.trainedCount }, loss))
            if let logits, let first = chats.first {
                let ids = IntTensor(first.ids, shape: [1, first.ids.count])
                let out = withNoGrad { llama.logits(ids) }.reshape([first.ids.count, -1])
                try Safetensors.write([("logits", out), ("ids", Tensor(first.ids.map(Float.init), shape: [first.ids.count]))], to: logits)
            }
        }
    }

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Merge an adapter into the weights: a GGUF model gives a GGUF file (adapted matrices in float32), a Hugging Face folder a folder.")
        @Argument(help: "The base model (GGUF file or Hugging Face Llama folder).") var model: String
        @Option(help: "Adapter folder (PEFT layout).") var adapter: String
        @Option(name: .shortAndLong, help: "Output GGUF file, or folder for a Hugging Face model.") var output: String
        @Flag(name: .customLong("allow-other-base"), help: "Apply an adapter that names another base model (shapes must still fit).") var allowOtherBase = false

        func validate() throws { try OutputPath.check(output, isNotInput: [model, adapter]) }

        func run() throws {
            let path = try ModelLocator.locate(model, kind: .languageModel)
            let loaded = try ModelLocator.languageModel(path)
            let llama = try LoRACommand.llama(loaded)
            try llama.loadAdapter(directory: adapter, allowOtherBase: allowOtherBase)
            let changed = try llama.mergeAdapters()
            if path.hasSuffix(".gguf") {
                try llama.writeGGUF(changed: changed, to: output)
            } else {
                try llama.saveHuggingFace(directory: output, copyingTokenizerFrom: path)
            }
            print("merged \(changed.count) adapted projections; wrote \(output)")
        }
    }

    struct MakeData: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "make-data", abstract: "Write the instruction set built here: dates to ISO, numbers to words, reversed word lists, as chat JSON Lines.")
        @Option(name: .shortAndLong, help: "Folder for train.jsonl and held-out.jsonl.") var output: String
        @Option(name: .customLong("train")) var trainCount = 1200
        @Option(name: .customLong("held-out")) var heldOutCount = 60
        @Option var seed: UInt64 = 1

        func validate() throws {
            try Require.count(trainCount, "--train", 1...10_000_000)
            try Require.count(heldOutCount, "--held-out", 1...10_000_000)
        }

        func run() throws {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            // Held-out pairs come from another seed, and any that also occur in training are dropped.
            let train = InstructionSet.examples(count: trainCount, seed: seed)
            let seen = Set(train.map { $0.messages[0].content })
            let held = InstructionSet.examples(count: heldOutCount * 2, seed: seed &+ 7919).filter { !seen.contains($0.messages[0].content) }.prefix(heldOutCount)
            for (name, set) in [("train.jsonl", train), ("held-out.jsonl", Array(held))] {
                let lines = try set.map { String(decoding: try InstructionSet.jsonLine($0), as: UTF8.self) }
                try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: output + "/" + name)
            }
            print("wrote \(train.count) training and \(held.count) held-out conversations to \(output)")
        }
    }
}

/// The instruction set of `attend lora make-data`: the three text-to-text tasks asked in words, in turn.
enum InstructionSet {
    static func examples(count: Int, seed: UInt64) -> [ChatExample] {
        let tasks = TextTask.allCases
        let perTask = tasks.map { $0.pairs(count: (count + tasks.count - 1) / tasks.count, seed: seed) }
        return (0..<count).map { i in
            let (task, pair) = (tasks[i % tasks.count], perTask[i % tasks.count][i / tasks.count])
            return ChatExample(messages: [.init(role: "user", content: task.instruction(pair.source)), .init(role: "assistant", content: pair.target)])
        }
    }

    static func jsonLine(_ e: ChatExample) throws -> Data {
        struct Line: Encodable { var messages: [ChatExample.Message] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Line(messages: e.messages))
    }
}

/// This process's peak resident memory (getrusage's ru_maxrss: KiB on Linux, bytes on macOS).
enum PeakMemory {
    static var mebibytes: Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Double(usage.ru_maxrss) / 1_048_576
        #endif
    }
}
