// Pretraining a BERT encoder by masked-language modelling, then fine-tuning it for classification by
// changing only the input layout (Devlin et al., 2019; GPT-1 did the same for a decoder):
//   one text:  [CLS] a [SEP]            segment 0
//   a pair:    [CLS] a [SEP] b [SEP]    segment 0 for a and its [SEP], 1 for b
// A classifier reads the [CLS] state through BERT's pooler (dense + tanh).

import AttendNN
import AttendTensor
import AttendTokenizers
import Foundation

/// The special tokens a BERT here needs, as ids of its tokenizer.
public struct BERTSpecialTokens: Codable, Equatable {
    public var pad: Int32, cls: Int32, sep: Int32, mask: Int32
    public static let names = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"]

    public init(pad: Int32, cls: Int32, sep: Int32, mask: Int32) {
        self.pad = pad
        self.cls = cls
        self.sep = sep
        self.mask = mask
    }

    /// Looks the four tokens up by name; throws naming the missing one.
    public init(tokenizer: ByteLevelBPETokenizer) throws {
        var ids: [Int32] = []
        for name in BERTSpecialTokens.names {
            guard let id = tokenizer.id(of: name) else { throw AttendError("the tokenizer has no '\(name)' token (needs \(BERTSpecialTokens.names))") }
            ids.append(id)
        }
        self.init(pad: ids[0], cls: ids[1], sep: ids[2], mask: ids[3])
    }
}

/// One model input: token ids and segment ids of the same length.
public struct BERTInput {
    public var ids: [Int32]
    public var segments: [Int32]

    /// [CLS] a [SEP] (b [SEP]), cutting the longer text first until it fits `maxLength`.
    public init(_ a: [Int32], _ b: [Int32]? = nil, specials s: BERTSpecialTokens, maxLength: Int) {
        var a = a, b = b
        let budget = maxLength - (b == nil ? 2 : 3)
        while a.count + (b?.count ?? 0) > max(budget, 0) {
            if let bb = b, bb.count > a.count { b!.removeLast() } else if !a.isEmpty { a.removeLast() } else { b?.removeLast() }
        }
        ids = [s.cls] + a + [s.sep]
        segments = [Int32](repeating: 0, count: ids.count)
        if let b {
            ids += b + [s.sep]
            segments += [Int32](repeating: 1, count: b.count + 1)
        }
    }
}

/// Padded ids, segments and lengths for a batch of inputs.
struct BERTBatch {
    let ids: IntTensor, segments: IntTensor, lengths: [Int]

    init(ids: IntTensor, segments: IntTensor, lengths: [Int]) {
        self.ids = ids
        self.segments = segments
        self.lengths = lengths
    }

    init(_ inputs: [BERTInput], pad: Int32) {
        let t = inputs.map(\.ids.count).max() ?? 1
        ids = IntTensor.padded(inputs.map(\.ids), with: pad, width: t)
        segments = IntTensor.padded(inputs.map(\.segments), with: 0, width: t)
        lengths = inputs.map(\.ids.count)
    }
}

/// BERT with its masked-LM head: dense + GELU + LayerNorm, then the (tied) token embedding plus a bias.
///
/// ```swift
/// var g = RandomGenerator(seed: 1)
/// let model = BERTForMaskedLM(BERTConfig(vocabSize: 8000, hiddenSize: 128, layerCount: 4, headCount: 4, intermediateSize: 512), generator: &g)
/// let logits = model.logits(ids, segments: segments, lengths: lengths, positions: masked)   // [masked.count, 8000]
/// ```
public final class BERTForMaskedLM: Module {
    public let bert: BERTModel
    public let transform: Linear
    public let transformNorm: LayerNorm
    public let outputBias: Tensor

    public init(_ config: BERTConfig, generator: inout RandomGenerator) {
        bert = BERTModel(config, generator: &generator)
        transform = Linear(config.hiddenSize, config.hiddenSize, generator: &generator)
        transformNorm = LayerNorm(config.hiddenSize, eps: config.layerNormEps)
        outputBias = Tensor.zeros([config.vocabSize], requiresGrad: true)
        super.init()
        // BERT's initialization: N(0, 0.02) matrices and embeddings, zero biases.
        withNoGrad {
            for (name, t) in namedParameters() {
                if name.hasSuffix("bias") { t.assign(Tensor.zeros(t.shape)) } else if t.rank >= 2 {
                    t.assign(Tensor.randn(t.shape, std: 0.02, generator: &generator))
                }
            }
        }
    }

    /// Hugging Face BertForMaskedLM names of our parameter paths: the encoder under "bert.", then the head.
    public static let huggingFaceNames: CheckpointNames = {
        var n = BERTModel.huggingFaceNames.nested(under: "bert.", as: "bert.")
        for p in ["weight", "bias"] {
            n.exact["transform.\(p)"] = "cls.predictions.transform.dense.\(p)"
            n.exact["transformNorm.\(p)"] = "cls.predictions.transform.LayerNorm.\(p)"
        }
        n.exact["outputBias"] = "cls.predictions.bias"
        return n
    }()

    public static func huggingFaceName(_ ours: String) -> String { huggingFaceNames(ours) }

    /// Loads tensors named as in a Hugging Face BertForMaskedLM checkpoint.
    public func loadHuggingFace(_ tensors: [String: Tensor], source: String) throws {
        try load(try Self.huggingFaceNames.select(for: self, from: tensors, source: source), source: source)
    }

    /// Logits [N, vocab] at the `positions` (flat indices into [B * T]) of the hidden states.
    public func logits(_ ids: IntTensor, segments: IntTensor, lengths: [Int], positions: IntTensor) -> Tensor {
        let h = bert(ids, lengths: lengths, typeIds: segments)
        let picked = h.reshape([-1, bert.config.hiddenSize]).indexSelect(positions)
        let x = transformNorm(Activation.apply(bert.config.activation ?? .gelu, transform(picked)))
        return x.matmul(bert.embeddings.wordEmbeddings.weight.transposed(0, 1)) + outputBias
    }
}

/// A masked-LM batch: inputs with some tokens replaced, and the original tokens at those positions.
public struct MaskedLMBatch {
    let batch: BERTBatch
    let positions: IntTensor
    let targets: IntTensor

    /// BERT's recipe: 15% of the real tokens (at least one per row) are predicted; of those 80% become
    /// [MASK], 10% a random token, 10% stay. [CLS], [SEP] and padding are never picked. `rows` keeps a slice of
    /// the batch (a data-parallel rank's share): every row is masked first, so the kept rows carry exactly the masks
    /// a single process would give them.
    init(_ inputs: [BERTInput], specials: BERTSpecialTokens, vocabularySize: Int, generator g: inout RandomGenerator,
         maskFraction: Double = 0.15, rows: Range<Int>? = nil) {
        var inputs = inputs
        var chosenPerRow: [[(k: Int, target: Int32)]] = Array(repeating: [], count: inputs.count)
        let reserved = Set([specials.pad, specials.cls, specials.sep, specials.mask])
        for r in inputs.indices {
            let candidates = inputs[r].ids.indices.filter { !reserved.contains(inputs[r].ids[$0]) }
            guard !candidates.isEmpty else { continue }
            var chosen = candidates.filter { _ in Double(g.next() % 1_000_000) / 1e6 < maskFraction }
            if chosen.isEmpty { chosen = [candidates[Int(g.next() % UInt64(candidates.count))]] }
            for k in chosen {
                chosenPerRow[r].append((k, inputs[r].ids[k]))
                let roll = g.next() % 10
                if roll < 8 {
                    inputs[r].ids[k] = specials.mask
                } else if roll == 8 {
                    var random: Int32
                    repeat { random = Int32(g.next() % UInt64(vocabularySize)) } while reserved.contains(random)
                    inputs[r].ids[k] = random
                }
            }
        }
        let kept = rows ?? inputs.indices
        let t = inputs[kept].map(\.ids.count).max() ?? 1
        var positions: [Int32] = [], targets: [Int32] = []
        for (row, r) in kept.enumerated() {
            for (k, target) in chosenPerRow[r] {
                positions.append(Int32(row * t + k))
                targets.append(target)
            }
        }
        batch = BERTBatch(Array(inputs[kept]), pad: specials.pad)
        self.positions = IntTensor(positions, shape: [positions.count])
        self.targets = IntTensor(targets, shape: [targets.count])
    }
}

/// Masked-LM pretraining settings: steps, batch, AdamW with warmup and cosine decay to a tenth of the peak, clipping.
///
/// ```swift
/// var config = BERTPretrainingConfig()
/// config.steps = 10_000
/// config.warmupSteps = 1000
/// ```
public struct BERTPretrainingConfig: Codable, Equatable {
    public var steps = 2000
    public var batchSize = 32
    public var learningRate: Float = 1e-3
    public var warmupSteps = 200
    public var weightDecay: Float = 0.01
    public var gradientClip: Float = 1
    public var seed: UInt64 = 1
    public init() {}
}

/// Masked-LM pretraining over tokenized texts (each becomes [CLS] text [SEP], cut to the model's positions).
///
/// ```swift
/// let specials = try BERTSpecialTokens(tokenizer: tokenizer)   // a BPE trained with BERTSpecialTokens.names
/// let encoded = texts.map { tokenizer.encode($0, allowSpecial: false) }
/// let trainer = try BERTPretrainer(model: BERTForMaskedLM(config, generator: &g), texts: encoded, specials: specials,
///                                  config: BERTPretrainingConfig())
/// try trainer.run(onLog: { step, loss in print("step \(step): masked-LM loss \(loss)") })
/// let (loss, accuracy) = trainer.evaluate(heldOut)
/// ```
public final class BERTPretrainer {
    public let model: BERTForMaskedLM
    public let config: BERTPretrainingConfig
    public let specials: BERTSpecialTokens
    public let optimizer: Adam
    let texts: [[Int32]]
    let maxLength: Int

    public init(model: BERTForMaskedLM, texts: [[Int32]], specials: BERTSpecialTokens, config: BERTPretrainingConfig, maxLength: Int? = nil) throws {
        let usable = texts.filter { !$0.isEmpty }
        guard usable.count >= config.batchSize else {
            throw AttendError("masked-LM pretraining needs at least \(config.batchSize) non-empty texts (one batch), got \(usable.count)")
        }
        self.model = model
        self.texts = usable
        self.specials = specials
        self.config = config
        self.maxLength = min(maxLength ?? model.bert.config.maxPositions, model.bert.config.maxPositions)
        optimizer = Adam.decayingMatrices(of: model, learningRate: config.learningRate, weightDecay: config.weightDecay)
        shardRows = 0..<config.batchSize
    }

    /// Called with the gradients before each optimizer step (see `Trainer.gradientHook`).
    public var gradientHook: (([(name: String, tensor: Tensor)]) throws -> Void)?
    /// Maps each step's loss before it is logged (see `Trainer.lossHook`).
    public var lossHook: ((Float) throws -> Float)?
    /// Masked tokens in this process's rows of the current step: its loss is their mean, so data-parallel
    /// averaging weighs each rank's gradient by this number to get the mean over the whole batch's masked tokens.
    public private(set) var maskedTokens = 0
    /// This process's rows of each batch (data-parallel training); the whole batch by default.
    public private(set) var shardRows: Range<Int>

    /// The masked batch of step `step` (seeded by the step, so a resumed run continues identically): every process
    /// draws and masks the whole batch, then keeps its rows.
    func batch(step: Int, salt: UInt64 = 0) -> MaskedLMBatch {
        var g = RandomGenerator(seed: config.seed &+ salt &+ UInt64(step) &* 1_000_003)
        let inputs = (0..<config.batchSize).map { _ in
            BERTInput(texts[Int(g.next() % UInt64(texts.count))], specials: specials, maxLength: maxLength)
        }
        return MaskedLMBatch(inputs, specials: specials, vocabularySize: model.bert.config.vocabSize, generator: &g, rows: shardRows)
    }

    /// Trains on rows `[index B / count, (index + 1) B / count)` of each batch of B: process `index` of `count` in
    /// data-parallel training. The batch size must divide evenly.
    public func setShard(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else { throw AttendError("shard \(index) of \(count) does not exist") }
        guard config.batchSize % count == 0 else {
            throw AttendError("--batch-size \(config.batchSize) must be a multiple of the number of processes (\(count))")
        }
        let share = config.batchSize / count
        shardRows = index * share..<(index + 1) * share
    }

    public func loss(_ b: MaskedLMBatch) -> Tensor {
        let logits = model.logits(b.batch.ids, segments: b.batch.segments, lengths: b.batch.lengths, positions: b.positions)
        return Loss.crossEntropy(logits: logits, targets: b.targets)
    }

    /// Trains until `config.steps`; `checkpoint` is called every `checkpointEvery` steps and at the end,
    /// `onLog` every `logEvery` steps with (step, mean loss since the last log).
    public func run(progress: Bool = true, logEvery: Int = 100, checkpointEvery: Int = 500, checkpoint: (BERTPretrainer) throws -> Void = { _ in },
                    onLog: (Int, Float) -> Void = { _, _ in }) throws {
        let schedule = WarmupCosineSchedule(peak: config.learningRate, minimum: config.learningRate / 10,
                                            warmupSteps: config.warmupSteps, totalSteps: config.steps)
        let trainer = Trainer(model: model, optimizer: optimizer,
                              config: TrainerConfig(steps: config.steps, gradientClip: config.gradientClip, evaluationInterval: logEvery,
                                                    checkpointInterval: checkpointEvery),
                              schedule: schedule.callAsFunction)
        trainer.gradientHook = gradientHook
        trainer.lossHook = lossHook
        let bar = progress ? ProgressBar(total: config.steps - optimizer.step, label: "bert mlm", unit: "step") : nil
        var lastLog = optimizer.step
        try trainer.run(progress: bar, rateUnit: "tok", loss: { step, _ in
            let b = batch(step: step)
            maskedTokens = b.targets.count
            return TrainingLoss(loss(b), items: b.batch.lengths.reduce(0, +))
        }, evaluate: { step in
            onLog(step, trainer.recentLoss(step - lastLog))
            lastLog = step
        }, checkpoint: { _ in try checkpoint(self) })
    }

    /// Masked-LM loss and top-1 accuracy of the masked tokens on `texts` (fixed masking by `seed`).
    public func evaluate(_ texts: [[Int32]], batchSize: Int = 64, seed: UInt64 = 99) -> (loss: Float, accuracy: Double) {
        model.eval()
        defer { model.train() }
        var g = RandomGenerator(seed: seed)
        var lossSum: Float = 0, correct = 0, count = 0
        withNoGrad {
            for start in stride(from: 0, to: texts.count, by: batchSize) {
                let inputs = texts[start..<min(texts.count, start + batchSize)].map { BERTInput($0, specials: specials, maxLength: maxLength) }
                let b = MaskedLMBatch(inputs, specials: specials, vocabularySize: model.bert.config.vocabSize, generator: &g)
                let logits = model.logits(b.batch.ids, segments: b.batch.segments, lengths: b.batch.lengths, positions: b.positions)
                lossSum += Loss.crossEntropy(logits: logits, targets: b.targets).item * Float(b.targets.count)
                correct += zip(logits.argmax(axis: -1).data, b.targets.data).filter { $0 == $1 }.count
                count += b.targets.count
            }
        }
        return (lossSum / Float(max(count, 1)), Double(correct) / Double(max(count, 1)))
    }
}

/// BERT with a classification head on the pooled [CLS] state. The same model serves single texts and
/// pairs; only the input layout differs.
///
/// ```swift
/// let classifier = BERTClassifier(bert: pretrained.bert, classCount: 2, generator: &g)
/// let logits = classifier.logits(ids, segments: segments, lengths: lengths)   // [B, 2]
/// ```
public final class BERTClassifier: Module {
    public let bert: BERTModel
    public let pooler: Linear
    public let dropout: Dropout
    public let classifier: Linear

    public init(bert: BERTModel, classCount: Int, dropout: Float = 0.1, generator: inout RandomGenerator) {
        self.bert = bert
        pooler = Linear(bert.config.hiddenSize, bert.config.hiddenSize, generator: &generator)
        self.dropout = Dropout(dropout, branchingFrom: generator)
        classifier = Linear(bert.config.hiddenSize, classCount, generator: &generator)
        super.init()
        withNoGrad {
            for l in [pooler, classifier] {
                l.weight.assign(Tensor.randn(l.weight.shape, std: 0.02, generator: &generator))
                l.bias!.assign(Tensor.zeros(l.bias!.shape))
            }
        }
    }

    /// Hugging Face BertForSequenceClassification names: BertForMaskedLM's encoder names, the pooler, the classifier.
    public static let huggingFaceNames: CheckpointNames = {
        var n = BERTModel.huggingFaceNames.nested(under: "bert.", as: "bert.")
        for p in ["weight", "bias"] { n.exact["pooler.\(p)"] = "bert.pooler.dense.\(p)" }
        return n
    }()

    public static func huggingFaceName(_ ours: String) -> String { huggingFaceNames(ours) }

    /// Loads tensors named as in a Hugging Face BertForSequenceClassification checkpoint.
    public func loadHuggingFace(_ tensors: [String: Tensor], source: String) throws {
        try load(try Self.huggingFaceNames.select(for: self, from: tensors, source: source), source: source)
    }

    /// Class logits [B, classes] for token ids and segment ids [B, T] with real lengths per row.
    public func logits(_ ids: IntTensor, segments: IntTensor, lengths: [Int]) -> Tensor {
        self(BERTBatch(ids: ids, segments: segments, lengths: lengths))
    }

    /// Class logits [B, classes].
    func callAsFunction(_ b: BERTBatch) -> Tensor {
        let cls = bert.classStates(b.ids, lengths: b.lengths, typeIds: b.segments)
        return classifier(dropout(pooler(cls).tanh()))
    }
}

/// Fine-tuning settings: epochs, batch, AdamW with linear warmup then linear decay, and the longest input.
///
/// ```swift
/// var config = BERTFineTuningConfig()
/// config.epochs = 3
/// config.maxLength = pretrained.bert.config.maxPositions   // the encoder has no positions past these
/// ```
public struct BERTFineTuningConfig: Codable, Equatable {
    public var epochs = 5
    public var batchSize = 32
    public var learningRate: Float = 3e-4
    public var warmupFraction: Float = 0.1
    public var weightDecay: Float = 0.01
    public var maxLength = 128
    public var seed: UInt64 = 1
    public init() {}
}

/// A labelled example: a text or a pair, already tokenized, and its class index.
public struct ClassificationExample {
    public var a: [Int32]
    public var b: [Int32]?
    public var label: Int
    public init(_ a: [Int32], _ b: [Int32]? = nil, label: Int) {
        self.a = a
        self.b = b
        self.label = label
    }
}

/// Fine-tunes a `BERTClassifier` on labelled texts or text pairs, and predicts and scores with it.
///
/// ```swift
/// let pair = ClassificationExample(tokenizer.encode(premise), tokenizer.encode(hypothesis), label: 0)
/// let accuracies = try BERTFineTuning.run(classifier, train: train, test: test, specials: specials, config: BERTFineTuningConfig())
/// let predicted = BERTFineTuning.predict(classifier, test, specials: specials, maxLength: 128)
/// ```
public enum BERTFineTuning {
    /// Fine-tunes every weight (encoder and head) with AdamW, linear warmup and linear decay, as BERT's
    /// recipe; returns test accuracy after each epoch.
    @discardableResult
    public static func run(_ model: BERTClassifier, train: [ClassificationExample], test: [ClassificationExample], specials: BERTSpecialTokens,
                           config: BERTFineTuningConfig, progress: Bool = true, share: DataParallelShare = .single,
                           onStep: @escaping (Float) -> Void = { _ in }, onEpoch: (Int, Float, Double) -> Void = { _, _, _ in }) throws -> [Double] {
        guard !train.isEmpty, !test.isEmpty else { throw AttendError("fine-tuning needs training and test examples (got \(train.count) and \(test.count))") }
        guard config.epochs >= 1, config.batchSize >= 1 else { throw AttendError("fine-tuning needs at least one epoch and a batch size of at least 1") }
        let optimizer = Adam.decayingMatrices(of: model, learningRate: config.learningRate, weightDecay: config.weightDecay)
        let stepsPerEpoch = (train.count + config.batchSize - 1) / config.batchSize
        let total = stepsPerEpoch * config.epochs
        let rate = WarmupLinearSchedule(peak: config.learningRate, warmupSteps: Int(Float(total) * config.warmupFraction), totalSteps: total)
        var g = RandomGenerator(seed: config.seed)
        var accuracies: [Double] = []
        let bar = progress ? ProgressBar(total: total, label: "fine-tune", unit: "step") : nil
        let trainer = Trainer(model: model, optimizer: optimizer,
                              config: TrainerConfig(steps: total, gradientClip: 1, evaluationInterval: stepsPerEpoch), schedule: rate.callAsFunction)
        var order = Array(train.indices)
        var lossSum: Float = 0
        // Data-parallel (as ClassifierTraining): every process shuffles alike and trains on its rows of each batch;
        // gradients and loss are averaged weighted by rows, since the last batch of an epoch may not split evenly.
        var localRows = 0, stepRows = 0
        if share.count > 1 { trainer.gradientHook = { try share.averageGradients($0, weight: Double(localRows)) } }
        trainer.lossHook = { loss in
            let mean = try share.averageLoss(loss, weight: Double(localRows))
            lossSum += mean * Float(stepRows)
            onStep(mean)
            return mean
        }
        try trainer.run(progress: bar, rateUnit: "ex", loss: { step, _ in
            let k = step % stepsPerEpoch
            if k == 0 {  // a new epoch: a new order
                for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
                lossSum = 0
            }
            let all = Array(order[(k * config.batchSize)..<min(order.count, (k + 1) * config.batchSize)])
            let mine = share.rows(of: all.count)
            (localRows, stepRows) = (mine.count, all.count)
            let rows = (mine.isEmpty ? [all[0]] : Array(all[mine])).map { train[$0] }
            let batch = BERTBatch(rows.map { BERTInput($0.a, $0.b, specials: specials, maxLength: config.maxLength) }, pad: specials.pad)
            let loss = Loss.crossEntropy(logits: model(batch), targets: IntTensor(rows.map { Int32($0.label) }, shape: [rows.count]))
            return TrainingLoss(loss, items: all.count)
        }, evaluate: { step in
            let accuracy = evaluate(model, test, specials: specials, maxLength: config.maxLength)
            accuracies.append(accuracy)
            onEpoch(step / stepsPerEpoch, lossSum / Float(train.count), accuracy)
        })
        return accuracies
    }

    /// Predicted class per example.
    public static func predict(_ model: BERTClassifier, _ examples: [ClassificationExample], specials: BERTSpecialTokens, maxLength: Int,
                               batchSize: Int = 64) -> [Int] {
        model.eval()
        defer { model.train() }
        var out: [Int] = []
        withNoGrad {
            for start in stride(from: 0, to: examples.count, by: batchSize) {
                let rows = examples[start..<min(examples.count, start + batchSize)]
                let batch = BERTBatch(rows.map { BERTInput($0.a, $0.b, specials: specials, maxLength: maxLength) }, pad: specials.pad)
                out += model(batch).argmax(axis: -1).data.map(Int.init)
            }
        }
        return out
    }

    public static func evaluate(_ model: BERTClassifier, _ examples: [ClassificationExample], specials: BERTSpecialTokens, maxLength: Int) -> Double {
        let predicted = predict(model, examples, specials: specials, maxLength: maxLength)
        return Double(zip(predicted, examples).filter { $0 == $1.label }.count) / Double(max(examples.count, 1))
    }
}
