import ArgumentParser
import AttendLM
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import AttendTokenizers
import Foundation

struct GPTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpt", abstract: "Train a GPT from scratch (characters or a BPE trained on the corpus) and sample from it.",
                                                    subcommands: [Train.self, Sample.self, FineTune.self])

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
        @Flag(help: "Data-parallel over MPI (on by itself when started by mpirun or srun): each process trains on its slice of every batch, gradients are averaged, rank 0 writes.")
        var distributed = false
        @Option(name: .customLong("loss-log"), help: "Write each iteration's training loss (over the whole batch) to this file, one per line.") var lossLog: String?

        enum TokenizerKind: String, ExpressibleByArgument { case characters, bpe }

        func validate() throws {
            try Require.count(layers, "--layers", 1...1_024)
            try Require.count(heads, "--heads", 1...1_024)
            try Require.count(width, "--width", 1...65_536)
            guard width % heads == 0 else { throw ValidationError("--width \(width) must be a multiple of --heads \(heads)") }
            try Require.count(context, "--context", 1...65_536)
            try Require.dropout(dropout, "--dropout")
            try Require.count(batchSize, "--batch-size", 1...65_536)
            try Require.count(iterations, "--iterations", 1...Require.stepLimit)
            try Require.learningRate(learningRate, "--lr")
            try Require.learningRate(minLearningRate, "--min-lr")
            try Require.count(warmup, "--warmup", 0...Require.stepLimit)
            try Require.number(weightDecay, "--weight-decay", 0...10)
            try Require.number(gradientClip, "--grad-clip", 0...1e6, aboveLower: true)
            try Require.count(gradientAccumulation, "--grad-accumulation", 1...65_536)
            try Require.count(evalInterval, "--eval-interval", 1...Require.stepLimit)
            try Require.count(evalIterations, "--eval-iters", 1...1_000_000)
            try Require.count(vocabularySize, "--vocab-size", 257...1_000_000)
            try OutputPath.check(output, isNotInput: [corpus])
            if let lossCurve { try OutputPath.check(lossCurve, isNotInput: [corpus, output]) }
            if let lossLog { try OutputPath.check(lossLog, isNotInput: [corpus, output] + (lossCurve.map { [$0] } ?? [])) }
        }

        func run() throws {
            guard let text = try? String(contentsOfFile: corpus, encoding: .utf8) else { throw AttendError("\(corpus): no such file or not UTF-8") }
            let parallel = try DataParallelRun.start(distributed: distributed)
            func say(_ line: String) { if parallel.isRoot { print(line) } }
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
                say(String(format: "trained a byte-level BPE with %d tokens in %.1f s", bpe.tokens.count, Date().timeIntervalSince(started)))
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
                say("resumed from \(output) at iteration \(trainer.optimizer.step)")
            }
            try parallel.requireSameStart(settings: "\(config) \(t)", dataBytes: text.utf8.count)
            try trainer.setShard(index: parallel.rank, count: parallel.size)
            try parallel.synchronize(model, step: trainer.optimizer.step)
            trainer.gradientHook = parallel.gradientHook
            var losses: [Float] = []
            trainer.lossHook = { loss in
                let mean = try parallel.meanLoss(loss)
                losses.append(mean)
                return mean
            }
            say("\(tokens.count) tokens, vocabulary \(tokenizer.count); \(model.parameterCount) parameters; \(Parallel.threads) threads"
                + (parallel.size > 1 ? " per process, \(parallel.size) processes (MPI), \(batchSize / parallel.size) windows each per batch" : ""))
            let meta = tokenizer.metadata
            let started = Date()
            try trainer.run(progress: parallel.isRoot, checkpoint: { t in
                guard parallel.isRoot else { return }
                try t.save(to: output, extra: meta)
                if let lossCurve {
                    let chart = LineChart(series: [
                        .init(points: t.history.map { (Double($0.iteration), Double($0.trainLoss)) }, color: (31, 119, 180)),
                        .init(points: t.history.map { (Double($0.iteration), Double($0.validationLoss)) }, color: (255, 127, 14)),
                    ])
                    try chart.render().writePNG(to: lossCurve)
                }
            }) { e in
                say(String(format: "iter %d: train loss %.4f, val loss %.4f (%.1f s)", e.iteration, e.trainLoss, e.validationLoss,
                           Date().timeIntervalSince(started)))
            }
            let trainingSeconds = Date().timeIntervalSince(started) - trainer.evaluationSeconds
            try parallel.finish(model, trainingSeconds: trainingSeconds)
            guard parallel.isRoot else { return }
            if let lossLog { try AtomicFile.write(Data(losses.map { String($0) + "\n" }.joined().utf8), to: lossLog) }
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

    struct FineTune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "finetune",
            abstract: "GPT-1's fine-tuning: a pretrained decoder, a task layout, a linear head on the extract token, task loss + LM loss.",
            discussion: """
            TSV rows by layout: classification label<TAB>text; entailment and similarity label<TAB>text<TAB>text;
            multiple-choice answer<TAB>context<TAB>option<TAB>option... (answer: the 0-based index of the right option).
            """)
        @Argument(help: "The decoder: a checkpoint from `attend gpt train`, a GPT-2 or Llama Hugging Face folder, or a Llama GGUF file / short name (float weights are loaded).") var model: String
        @Option(help: "classification, entailment, similarity or multiple-choice.") var layout: GPTTaskLayout
        @Option(help: "Training TSV.") var train: String
        @Option(help: "Test TSV (accuracy is reported on it).") var test: String
        @Option(name: .customLong("lm-weight"), help: "Weight of the auxiliary language-model loss (GPT-1: 0.5; 0 turns it off).") var lmWeight: Float = 0.5
        @Flag(name: .customLong("zero-shot"), help: "Multiple choice: first report the zero-shot accuracy (the option the decoder finds most likely).") var zeroShot = false
        @Flag(name: .customLong("from-scratch"), help: "Ablation: the same decoder with random weights.") var fromScratch = false
        @Option var epochs = 3
        @Option(name: .customLong("batch-size")) var batchSize = 16
        @Option(name: .customLong("lr")) var learningRate: Float = 1e-4
        @Option var seed: UInt64 = 1

        func run() throws {
            var config = GPTFineTuningConfig()
            (config.epochs, config.batchSize, config.learningRate, config.lmLossWeight, config.seed) = (epochs, batchSize, learningRate, lmWeight, seed)
            try config.validate()
            let (decoder, encode) = try loadDecoder()
            let (trainRows, labels) = try readTaskExamples(train, layout: layout, labels: nil, encode: encode)
            let (testRows, _) = try readTaskExamples(test, layout: layout, labels: labels, encode: encode)
            print("\(trainRows.count) training and \(testRows.count) test examples, layout \(layout.rawValue)" + (layout == .multipleChoice ? "" : ", \(labels.count) classes: \(labels.joined(separator: ", "))"))
            if zeroShot {
                guard layout == .multipleChoice else { throw ValidationError("--zero-shot applies to the multiple-choice layout") }
                print(String(format: "zero-shot accuracy (highest mean log-probability option): %.2f%%", 100 * GPTFineTuning.zeroShotChoice(decoder, testRows)))
            }
            var g = RandomGenerator(seed: seed)
            let task = GPTTaskModel(decoder: decoder, layout: layout, classCount: layout == .multipleChoice ? 0 : labels.count, generator: &g)
            let started = Date()
            let accuracies = try GPTFineTuning.run(task, train: trainRows, test: testRows, config: config) { epoch, loss, accuracy in
                print(String(format: "epoch %d: task loss %.4f, test accuracy %.2f%% (%.1f s)", epoch, loss, 100 * accuracy, Date().timeIntervalSince(started)))
            }
            print(String(format: "test accuracy: %.2f%%", 100 * accuracies.last!))
        }

        /// The decoder and how to tokenize for it.
        func loadDecoder() throws -> (Module & LanguageModel, (String) throws -> [Int32]) {
            if model.hasSuffix(".safetensors") {
                let file = try Safetensors.read(model)
                guard let configText = file.metadata["gpt_config"], let config = try? JSONDecoder().decode(GPTConfig.self, from: Data(configText.utf8)) else {
                    throw AttendError("\(model): not a checkpoint from `attend gpt train` (metadata 'gpt_config' missing)")
                }
                try config.validate()
                let tokenizer = try TrainedTokenizer(metadata: file.metadata, source: model)
                var g = RandomGenerator(seed: seed)
                let gpt = GPTModel(config, generator: &g)
                if !fromScratch { try gpt.load(file.tensors.filter { !$0.key.hasPrefix("optimizer/") }, source: model, strict: true) }
                return (gpt, { try tokenizer.encode($0) })
            }
            let loaded = try ModelLocator.languageModel(model)
            guard let decoder = loaded.model as? (Module & LanguageModel) else { throw AttendError("\(model): this model cannot be fine-tuned") }
            if let llama = decoder as? LlamaModel, llama.isQuantized { try llama.loadFloatWeights() }
            if fromScratch {
                var g = RandomGenerator(seed: seed)
                for (_, t) in decoder.namedParameters() where t.rank >= 2 { t.assign(Tensor.randn(t.shape, std: 0.02, generator: &g)) }
            }
            for (_, t) in decoder.namedTensors() { t.requiresGrad = true }
            return (decoder, { loaded.tokenizer.encode($0, allowSpecial: false) })
        }
    }
}

/// Reads a GPT-1 task TSV (see `attend gpt finetune --help`). Class labels are numbered in sorted order unless
/// `labels` is given; multiple-choice answers are option indices. Errors name the file and line.
func readTaskExamples(_ path: String, layout: GPTTaskLayout, labels: [String]?, encode: @escaping (String) throws -> [Int32]) throws -> ([TaskExample], [String]) {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AttendError("\(path): no such file or not UTF-8") }
    var rows: [(line: Int, label: String, texts: [String])] = []
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        try layout.check(textCount: f.count - 1, source: "\(path):\(n + 1)")
        if let first = rows.first, first.texts.count != f.count - 1 {
            throw AttendError("\(path):\(n + 1): \(f.count - 1) texts, but line \(first.line) has \(first.texts.count)")
        }
        rows.append((n + 1, f[0], Array(f.dropFirst())))
    }
    guard !rows.isEmpty else { throw AttendError("\(path): no rows") }
    if layout == .multipleChoice {
        let examples = try rows.map { r -> TaskExample in
            guard let answer = Int(r.label), answer >= 0, answer < r.texts.count - 1 else {
                throw AttendError("\(path):\(r.line): the answer '\(r.label)' is not an option index in 0..<\(r.texts.count - 1)")
            }
            return TaskExample(texts: try r.texts.map(encode), label: answer)
        }
        return (examples, [])
    }
    let names = labels ?? Array(Set(rows.map(\.label))).sorted()
    guard names.count >= 2 else { throw AttendError("\(path): classification needs at least two labels, found \(names)") }
    let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    let examples = try rows.map { r -> TaskExample in
        guard let label = index[r.label] else { throw AttendError("\(path):\(r.line): label '\(r.label)' is not one of the training file's (\(names.joined(separator: ", ")))") }
        return TaskExample(texts: try r.texts.map(encode), label: label)
    }
    return (examples, names)
}

extension GPTTaskLayout: ExpressibleByArgument {}
