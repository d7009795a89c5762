import ArgumentParser
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import AttendTokenizers
import Foundation

struct GPTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpt", abstract: "Train a GPT from scratch (characters or a BPE trained on the corpus) and sample from it.",
                                                    subcommands: [Train.self, Sample.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Next-token prediction on a text file (nanoGPT's loop).")
        @Argument(help: "Training text (UTF-8).") var corpus: String
        @Option(name: .shortAndLong, help: "Checkpoint file (safetensors); written after each evaluation.") var output: String
        @Flag(help: "Continue from --output if it exists.") var resume = false
        @Option(help: "Also write the final model in the Hugging Face GPT-2 layout to this folder.") var exportHuggingFace: String?
        @Option(name: .customLong("loss-curve"), help: "Write train (blue) and validation (orange) loss as a PNG after each evaluation.") var lossCurve: String?
        @Option var layers = 4
        @Option var heads = 4
        @Option var width = 128
        @Option var context = 64
        @Option var dropout: Float = 0
        @Option(name: .customLong("batch-size")) var batchSize = 12
        @Option var iterations = 2000
        @Option(name: .customLong("lr")) var learningRate: Float = 1e-3
        @Option(name: .customLong("min-lr")) var minLearningRate: Float = 1e-4
        @Option var warmup = 100
        @Option(name: .customLong("weight-decay")) var weightDecay: Float = 0.1
        @Option(name: .customLong("grad-clip")) var gradientClip: Float = 1
        @Option(name: .customLong("grad-accumulation")) var gradientAccumulation = 1
        @Option(name: .customLong("eval-interval")) var evalInterval = 250
        @Option(name: .customLong("eval-iters")) var evalIterations = 20
        @Option var seed: UInt64 = 1337
        @Option(help: "characters, or bpe: a byte-level BPE trained on the corpus first.") var tokenizer: TokenizerKind = .characters
        @Option(name: .customLong("vocab-size"), help: "BPE vocabulary size (special token + 256 bytes + merges).") var vocabularySize = 2000

        enum TokenizerKind: String, ExpressibleByArgument { case characters, bpe }

        func run() throws {
            guard let text = try? String(contentsOfFile: corpus, encoding: .utf8) else { throw AttendError("\(corpus): no such file or not UTF-8") }
            let tokenizer: TrainedTokenizer
            switch self.tokenizer {
            case .characters: tokenizer = .characters(CharacterTokenizer(text: text))
            case .bpe:
                var options = BPETrainingOptions()
                options.vocabularySize = vocabularySize
                let started = Date()
                let bar = ProgressBar(total: vocabularySize, label: "bpe", unit: "token")
                var shown = 0
                let bpe = try BPETrainer.train(text.components(separatedBy: "\n"), options: options) { n, _ in
                    if n - shown >= 50 { bar.advance(n - shown); shown = n }
                }
                bar.finish()
                print(String(format: "trained a byte-level BPE with %d tokens in %.1f s", bpe.tokens.count, Date().timeIntervalSince(started)))
                tokenizer = .bpe(bpe)
            }
            let tokens = try tokenizer.encode(text)
            let config = GPTConfig(vocabSize: tokenizer.count, contextLength: context, width: width, layerCount: layers, headCount: heads, dropout: dropout)
            try config.validate()
            var t = GPTTrainingConfig()
            t.batchSize = batchSize; t.iterations = iterations; t.learningRate = learningRate; t.minLearningRate = minLearningRate
            t.warmupIterations = warmup; t.weightDecay = weightDecay; t.gradientClip = gradientClip
            t.gradientAccumulation = gradientAccumulation; t.evalInterval = evalInterval; t.evalIterations = evalIterations; t.seed = seed
            var g = RandomGenerator(seed: seed)
            let model = GPTModel(config, generator: &g)
            let trainer = try GPTTrainer(model: model, tokens: tokens, config: t)
            if resume && FileManager.default.fileExists(atPath: output) {
                try trainer.resume(from: output)
                print("resumed from \(output) at iteration \(trainer.optimizer.step)")
            }
            print("\(tokens.count) tokens, vocabulary \(tokenizer.count); \(model.parameterCount) parameters; \(Parallel.threads) threads")
            let meta = tokenizer.metadata
            let started = Date()
            try trainer.run(checkpoint: { t in
                try t.save(to: output, extra: meta)
                if let lossCurve {
                    let chart = LineChart(series: [
                        .init(points: t.history.map { (Double($0.iteration), Double($0.trainLoss)) }, color: (31, 119, 180)),
                        .init(points: t.history.map { (Double($0.iteration), Double($0.validationLoss)) }, color: (255, 127, 14)),
                    ])
                    try chart.render().writePNG(to: lossCurve)
                }
            }) { e in
                print(String(format: "iter %d: train loss %.4f, val loss %.4f (%.1f s)", e.iteration, e.trainLoss, e.validationLoss,
                             Date().timeIntervalSince(started)))
            }
            if let dir = exportHuggingFace {
                try model.saveHuggingFace(directory: dir)
                // A BPE tokenizer goes with it (tokenizer.json, vocab.json, merges.txt), so `attend generate --model DIR` runs it.
                if case .bpe(let bpe) = tokenizer { try bpe.save(directory: dir) }
                print("exported \(dir)")
            }
            let final = trainer.history.last.map { String(format: "%.4f", $0.validationLoss) } ?? "n/a"
            let total = Date().timeIntervalSince(started)
            print(String(format: "done: %d iterations in %.1f s of training (+ %.1f s evaluating); final val loss %@",
                         trainer.optimizer.step, total - trainer.evaluationSeconds, trainer.evaluationSeconds, final))
        }
    }

    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sample text from a checkpoint written by `attend gpt train`.")
        @Argument(help: "Checkpoint file.") var checkpoint: String
        @Option(help: "Text to continue.") var prompt = "\n"
        @Option(help: "Tokens to sample.") var length = 500
        @Option var temperature: Float = 0.8
        @Option(name: .customLong("top-k")) var topK = 200
        @Option var seed: UInt64 = 1

        func validate() throws {
            guard length >= 1 else { throw ValidationError("--length must be at least 1, got \(length)") }
            guard temperature.isFinite, temperature >= 0 else { throw ValidationError("--temperature must be finite and >= 0") }
            guard topK >= 1 else { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        }

        func run() throws {
            let file = try Safetensors.read(checkpoint)
            guard let configText = file.metadata["gpt_config"], let config = try? JSONDecoder().decode(GPTConfig.self, from: Data(configText.utf8)) else {
                throw AttendError("\(checkpoint): not a checkpoint from `attend gpt train` (metadata 'gpt_config' missing)")
            }
            do { try config.validate() } catch let e as AttendError { throw AttendError("\(checkpoint): metadata 'gpt_config': \(e.message)") }
            let tokenizer = try TrainedTokenizer(metadata: file.metadata, source: checkpoint)
            guard tokenizer.count <= config.vocabSize else {
                throw AttendError("\(checkpoint): the tokenizer has \(tokenizer.count) tokens, more than the model's vocabulary of \(config.vocabSize)")
            }
            var g = RandomGenerator(seed: 0)
            let model = Initialization.skipping { GPTModel(config, generator: &g) }
            try model.load(file.tensors, source: checkpoint, strict: true)
            let started = Date()
            let ids = GPTTrainer.sample(model: model, context: try tokenizer.encode(prompt), count: length, temperature: temperature,
                                        topK: topK, seed: seed)
            let seconds = Date().timeIntervalSince(started)
            print(prompt + tokenizer.decode(ids))
            FileHandle.standardError.write(String(format: "sampled %d tokens in %.3f s (%.0f tokens/s)\n", ids.count, seconds,
                                                  Double(ids.count) / max(seconds, 1e-9)).data(using: .utf8)!)
        }
    }
}
