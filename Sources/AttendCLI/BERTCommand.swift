import ArgumentParser
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import AttendTokenizers
import Foundation

struct BERTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bert", abstract: "Pretrain a BERT encoder by masked LM on a corpus, then fine-tune it to classify texts or text pairs.",
        subcommands: [Pretrain.self, FineTune.self])

    struct Pretrain: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Masked-LM pretraining on a text file (one passage per line).")
        @Argument(help: "Corpus: UTF-8, one passage per line.") var corpus: String
        @Option(name: .shortAndLong, help: "Checkpoint (safetensors) with the tokenizer; written every 500 steps and at the end.") var output: String
        @Flag(help: "Continue from --output if it exists.") var resume = false
        @Option(name: .customLong("vocab-size"), help: "Byte-level BPE vocabulary trained on the corpus.") var vocabularySize = 8000
        @Option var layers = 4
        @Option var heads = 4
        @Option var width = 128
        @Option(name: .customLong("ffn")) var feedForward = 512
        @Option(name: .customLong("max-length")) var maxLength = 128
        @Option var dropout: Float = 0.1
        @Option var steps = 2000
        @Option(name: .customLong("batch-size")) var batchSize = 32
        @Option(name: .customLong("lr")) var learningRate: Float = 1e-3
        @Option var seed: UInt64 = 1
        @Option(name: .customLong("loss-curve"), help: "Write the masked-LM loss as a PNG after each log line.") var lossCurve: String?
        @Option(name: .customLong("loss-log"), help: "Write each step's masked-LM loss, one per line (the mean over every process's masked tokens).") var lossLog: String?
        @Option(name: .customLong("log-every"), help: "Print the loss every this many steps.") var logEvery = 100
        @Flag(help: "Join an MPI job started without a launcher's environment (mpirun and srun are detected without this).") var distributed = false

        func validate() throws {
            try Require.count(vocabularySize, "--vocab-size", (256 + BERTSpecialTokens.names.count)...1_000_000)
            try Require.count(layers, "--layers", 1...1_024)
            try Require.count(heads, "--heads", 1...1_024)
            try Require.count(width, "--width", 1...65_536)
            guard width % heads == 0 else { throw ValidationError("--width \(width) must be a multiple of --heads \(heads)") }
            try Require.count(feedForward, "--ffn", 1...262_144)
            try Require.count(maxLength, "--max-length", 8...65_536)
            try Require.dropout(dropout, "--dropout")
            try Require.count(steps, "--steps", 1...Require.stepLimit)
            try Require.count(batchSize, "--batch-size", 1...65_536)
            try Require.learningRate(learningRate, "--lr")
            try OutputPath.check(output, isNotInput: [corpus])
            if let lossCurve { try OutputPath.check(lossCurve, isNotInput: [corpus, output]) }
            if let lossLog { try OutputPath.check(lossLog, isNotInput: [corpus, output] + (lossCurve.map { [$0] } ?? [])) }
            try Require.count(logEvery, "--log-every", 1...Require.stepLimit)
        }

        func run() throws {
            let texts = try readLines(corpus)
            let parallel = try DataParallelRun.start(distributed: distributed)
            func say(_ line: String) { if parallel.isRoot { print(line) } }
            let started = Date()
            var tokenizer: ByteLevelBPETokenizer
            var config = BERTConfig(vocabSize: vocabularySize, hiddenSize: width, layerCount: layers, headCount: heads, intermediateSize: feedForward,
                                    maxPositions: maxLength, typeVocabSize: 2, layerNormEps: 1e-12, hiddenDropout: dropout)
            try config.validate()
            if resume, FileManager.default.fileExists(atPath: output) {
                let meta = try Safetensors.read(output).metadata
                guard case .bpe(let saved) = try TrainedTokenizer(metadata: meta, source: output) else {
                    throw AttendError("\(output): not a checkpoint from `attend bert pretrain` (no BPE tokenizer)")
                }
                tokenizer = saved
                config.vocabSize = tokenizer.tokens.count
            } else {
                var options = BPETrainingOptions()
                options.vocabularySize = vocabularySize
                options.specialTokens = BERTSpecialTokens.names
                tokenizer = try BPETrainer.train(texts, options: options)
                config.vocabSize = tokenizer.tokens.count
                say(String(format: "trained a byte-level BPE with %d tokens in %.1f s", tokenizer.tokens.count, Date().timeIntervalSince(started)))
            }
            let specials = try BERTSpecialTokens(tokenizer: tokenizer)
            let encoded = texts.map { tokenizer.encode($0, allowSpecial: false) }
            // The last 2% of passages measure masked-token accuracy; they are not trained on.
            let heldOut = max(1, encoded.count / 50)
            let train = Array(encoded.dropLast(heldOut)), validation = Array(encoded.suffix(heldOut))
            var t = BERTPretrainingConfig()
            t.steps = steps; t.batchSize = batchSize; t.learningRate = learningRate; t.seed = seed
            t.warmupSteps = min(t.warmupSteps, steps / 10)
            var g = RandomGenerator(seed: seed)
            let model = BERTForMaskedLM(config, generator: &g)
            let trainer = try BERTPretrainer(model: model, texts: train, specials: specials, config: t)
            if resume, FileManager.default.fileExists(atPath: output) {
                let meta = try TrainingCheckpoint.load(model: model, optimizer: trainer.optimizer, from: output)
                // Compared decoded: JSONEncoder's key order differs from one process to the next.
                if let saved = meta["bert_config"], (try? JSONDecoder().decode(BERTConfig.self, from: Data(saved.utf8))) != config {
                    throw AttendError("\(output): the checkpoint is for a different model (\(saved))")
                }
                say("resumed from \(output) at step \(trainer.optimizer.step)")
            }
            var meta = TrainedTokenizer.bpe(tokenizer).metadata
            meta["bert_config"] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
            meta["pretraining_config"] = String(decoding: try JSONEncoder().encode(t), as: UTF8.self)
            try parallel.requireSameStart(settings: "\(config) \(t)", dataBytes: texts.reduce(0) { $0 + $1.utf8.count })
            try trainer.setShard(index: parallel.rank, count: parallel.size)
            try parallel.synchronize(model, step: trainer.optimizer.step)
            // Each rank's loss is the mean over its masked tokens, whose number differs between ranks: weighing by it
            // gives the gradient and loss of the mean over all of the batch's masked tokens, as one process has them.
            trainer.gradientHook = parallel.gradientHook { Double(trainer.maskedTokens) }
            var losses: [Float] = []
            trainer.lossHook = { loss in
                let mean = try parallel.meanLoss(loss, weight: Double(trainer.maskedTokens))
                losses.append(mean)
                return mean
            }
            let tokenCount = train.reduce(0) { $0 + $1.count }
            say("\(train.count) passages (\(tokenCount) tokens) for training, \(validation.count) held out; \(model.parameterCount) parameters; \(Parallel.threads) threads"
                + (parallel.size > 1 ? " per process, \(parallel.size) processes (MPI), \(batchSize / parallel.size) passages each per batch" : ""))
            let trainingStarted = Date()
            var curve: [(x: Double, y: Double)] = []
            try trainer.run(progress: parallel.isRoot, logEvery: logEvery, checkpoint: {
                guard parallel.isRoot else { return }
                try TrainingCheckpoint.save(model: $0.model, optimizer: $0.optimizer, to: output, metadata: meta)
            }) { step, loss in
                say(String(format: "step %d: masked-LM loss %.4f (%.1f s)", step, loss, Date().timeIntervalSince(trainingStarted)))
                curve.append((Double(step), Double(loss)))
                if parallel.isRoot, let lossCurve { try? LineChart(series: [.init(points: curve, color: (31, 119, 180))]).render().writePNG(to: lossCurve) }
            }
            let trainingSeconds = Date().timeIntervalSince(trainingStarted)
            try parallel.finish(model, trainingSeconds: trainingSeconds)
            guard parallel.isRoot else { return }
            if let lossLog { try AtomicFile.write(Data(losses.map { String($0) + "\n" }.joined().utf8), to: lossLog) }
            let e = trainer.evaluate(validation)
            print(String(format: "held-out masked tokens: loss %.4f, accuracy %.2f%%; %.1f s of training; saved %@", e.loss, 100 * e.accuracy,
                         trainingSeconds, output))
        }
    }

    struct FineTune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "finetune",
            abstract: "Fine-tune a pretrained checkpoint to classify. TSV rows: label<TAB>text, or label<TAB>text<TAB>text for pairs.")
        @Argument(help: "Checkpoint from `attend bert pretrain`.") var model: String
        @Option(help: "Training TSV.") var train: String
        @Option(help: "Test TSV (accuracy is reported on it).") var test: String
        @Option(name: .shortAndLong, help: "Write the fine-tuned classifier here (safetensors).") var output: String?
        @Flag(name: .customLong("from-scratch"), help: "Ablation: the same model with random weights instead of the pretrained ones.") var fromScratch = false
        @Option var epochs = 5
        @Option(name: .customLong("batch-size")) var batchSize = 32
        @Option(name: .customLong("lr")) var learningRate: Float = 3e-4
        @Option var seed: UInt64 = 1
        @Option(name: .customLong("loss-log"), help: "Write each step's training loss, one per line.") var lossLog: String?
        @Flag(help: "Join an MPI job started without a launcher's environment (mpirun and srun are detected without this).") var distributed = false

        func validate() throws {
            try Require.count(epochs, "--epochs", 1...100_000)
            if let lossLog { try OutputPath.check(lossLog, isNotInput: [model, train, test] + (output.map { [$0] } ?? [])) }
            try Require.count(batchSize, "--batch-size", 1...65_536)
            try Require.learningRate(learningRate, "--lr")
            if let output { try OutputPath.check(output, isNotInput: [model, train, test]) }
        }

        func run() throws {
            let file = try Safetensors.read(model)
            guard let configText = file.metadata["bert_config"],
                  let config = try? JSONDecoder().decode(BERTConfig.self, from: Data(configText.utf8)),
                  case .bpe(let tokenizer) = try TrainedTokenizer(metadata: file.metadata, source: model) else {
                throw AttendError("\(model): not a checkpoint from `attend bert pretrain` (metadata 'bert_config' or the BPE tokenizer missing)")
            }
            try config.validate()
            let specials = try BERTSpecialTokens(tokenizer: tokenizer)
            var g = RandomGenerator(seed: seed)
            let pretrained = BERTForMaskedLM(config, generator: &g)
            if !fromScratch {
                // Only the model's tensors; the optimizer state in the file is for pretraining.
                try pretrained.load(file.tensors.filter { !$0.key.hasPrefix("optimizer/") }, source: model, strict: true)
            }
            let (trainRows, labels) = try readExamples(train, tokenizer: tokenizer, labels: nil)
            let (testRows, _) = try readExamples(test, tokenizer: tokenizer, labels: labels)
            let isPair = trainRows.first?.b != nil
            let classifier = BERTClassifier(bert: pretrained.bert, classCount: labels.count, dropout: config.hiddenDropout ?? 0.1, generator: &g)
            let parallel = try DataParallelRun.start(distributed: distributed)
            func say(_ line: String) { if parallel.isRoot { print(line) } }
            say("\(trainRows.count) training and \(testRows.count) test \(isPair ? "pairs" : "texts"), \(labels.count) classes: \(labels.joined(separator: ", "))"
                + (parallel.size > 1 ? "; \(parallel.size) processes (MPI), each on its share of every batch" : ""))
            say(fromScratch ? "encoder: random weights (no pretraining)" : "encoder: pretrained weights from \(model)")
            var t = BERTFineTuningConfig()
            t.epochs = epochs; t.batchSize = batchSize; t.learningRate = learningRate; t.seed = seed
            t.maxLength = config.maxPositions
            try parallel.requireSameStart(settings: "\(config) \(t) \(labels) \(fromScratch)", dataBytes: trainRows.count + testRows.count)
            try parallel.synchronize(classifier, step: 0)
            let started = Date()
            var losses: [Float] = []
            let accuracies = try BERTFineTuning.run(classifier, train: trainRows, test: testRows, specials: specials, config: t,
                                                    progress: parallel.isRoot, share: parallel.share, onStep: { losses.append($0) }) { epoch, loss, accuracy in
                say(String(format: "epoch %d: training loss %.4f, test accuracy %.2f%% (%.1f s)", epoch, loss, 100 * accuracy,
                           Date().timeIntervalSince(started)))
            }
            try parallel.finish(classifier, trainingSeconds: Date().timeIntervalSince(started))
            guard parallel.isRoot else { return }
            if let lossLog { try AtomicFile.write(Data(losses.map { "\($0)\n" }.joined().utf8), to: lossLog) }
            print(String(format: "test accuracy: %.2f%%", 100 * accuracies.last!))
            if let output {
                var meta = TrainedTokenizer.bpe(tokenizer).metadata
                meta["bert_config"] = configText
                meta["labels"] = labels.joined(separator: "\n")
                try classifier.save(to: output, metadata: meta)
                print("saved \(output)")
            }
        }
    }
}

/// Non-empty lines of a UTF-8 file.
func readLines(_ path: String) throws -> [String] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AttendError("\(path): no such file or not UTF-8") }
    return text.split(separator: "\n").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
}

/// Reads label<TAB>text[<TAB>text] rows. Labels are numbered in sorted order unless `labels` is given, in
/// which case a row with an unknown label is an error naming the line.
func readExamples(_ path: String, tokenizer: ByteLevelBPETokenizer, labels: [String]?) throws -> ([ClassificationExample], [String]) {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AttendError("\(path): no such file or not UTF-8") }
    var rows: [(String, String, String?)] = []
    var columns: Int?
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard f.count == 2 || f.count == 3 else { throw AttendError("\(path):\(n + 1): expected label<TAB>text or label<TAB>text<TAB>text, got \(f.count) fields") }
        if let c = columns, c != f.count { throw AttendError("\(path):\(n + 1): \(f.count) fields, but earlier rows have \(c)") }
        columns = f.count
        rows.append((f[0], f[1], f.count == 3 ? f[2] : nil))
    }
    guard !rows.isEmpty else { throw AttendError("\(path): no rows") }
    let names = labels ?? Array(Set(rows.map(\.0))).sorted()
    guard names.count >= 2 else { throw AttendError("\(path): classification needs at least two labels, found \(names)") }
    let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    let examples = try rows.enumerated().map { n, r -> ClassificationExample in
        guard let label = index[r.0] else { throw AttendError("\(path): row \(n + 1) has label '\(r.0)', which the training file does not have") }
        return ClassificationExample(tokenizer.encode(r.1, allowSpecial: false), r.2.map { tokenizer.encode($0, allowSpecial: false) }, label: label)
    }
    return (examples, names)
}
