// An encoder-decoder Transformer (Vaswani et al., 2017) for character sequences: the encoder reads the
// source, the decoder predicts the target one character at a time with causal self-attention and
// cross-attention to the encoder output. Trained with teacher forcing; decoded greedily or by beam search.

import AttendDatasets
import AttendNN
import AttendTensor
import Foundation

/// Characters <-> ids with PAD = 0, BOS = 1, EOS = 2.
public struct Seq2SeqVocabulary {
    public let characters: [Character]
    public static let pad: Int32 = 0, bos: Int32 = 1, eos: Int32 = 2

    public init(texts: [String]) { characters = Array(Set(texts.joined())).sorted() }

    public var count: Int { characters.count + 3 }

    public func encode(_ s: String) throws -> [Int32] {
        try s.map { ch in
            guard let i = characters.firstIndex(of: ch) else { throw AttendError("character '\(ch)' is not in the vocabulary") }
            return Int32(i + 3)
        }
    }

    public func decode(_ ids: [Int32]) -> String { String(ids.filter { $0 >= 3 }.map { characters[Int($0) - 3] }) }

}

/// The encoder-decoder Transformer's sizes; `maxLength` bounds source and target lengths (positions are learned).
///
/// ```swift
/// var config = Seq2SeqConfig()
/// config.encoderLayers = 3
/// let model = Seq2SeqTransformer(sourceVocabulary: v.count, targetVocabulary: v.count, config: config, generator: &g)
/// ```
public struct Seq2SeqConfig: Codable {
    public var width = 64
    public var headCount = 4
    public var encoderLayers = 2
    public var decoderLayers = 2
    public var maxLength = 40
    public init() {}
}

/// An encoder-decoder Transformer over character ids: pre-norm blocks, one learned position table for both sides.
///
/// ```swift
/// let v = Seq2SeqVocabulary(texts: pairs.flatMap { [$0.source, $0.target] })
/// var g = RandomGenerator(seed: 1)
/// let model = Seq2SeqTransformer(sourceVocabulary: v.count, targetVocabulary: v.count, config: Seq2SeqConfig(), generator: &g)
/// let ids = try v.encode("5 Mar 98")
/// v.decode(model.greedy(IntTensor(ids, shape: [1, ids.count]), lengths: [ids.count], maxLength: 12)[0])   // "1998-03-05" once trained
/// ```
public final class Seq2SeqTransformer: Module {
    public let config: Seq2SeqConfig
    public let sourceEmbedding: Embedding
    public let targetEmbedding: Embedding
    public let positions: Embedding
    public let encoder: [TransformerEncoderBlock]
    public let decoder: [TransformerDecoderBlock]
    public let encoderNorm: LayerNorm
    public let decoderNorm: LayerNorm
    public let output: Linear

    public init(sourceVocabulary: Int, targetVocabulary: Int, config: Seq2SeqConfig, generator: inout RandomGenerator) {
        self.config = config
        let c = config.width
        sourceEmbedding = Embedding(sourceVocabulary, c, generator: &generator)
        targetEmbedding = Embedding(targetVocabulary, c, generator: &generator)
        positions = Embedding(config.maxLength, c, generator: &generator)
        let block = TransformerBlockConfig(dimension: c, headCount: config.headCount, activation: .gelu, preNorm: true)
        encoder = (0..<config.encoderLayers).map { _ in TransformerEncoderBlock(block, generator: &generator) }
        decoder = (0..<config.decoderLayers).map { _ in TransformerDecoderBlock(block, generator: &generator) }
        encoderNorm = LayerNorm(c)
        decoderNorm = LayerNorm(c)
        output = Linear(c, targetVocabulary, generator: &generator)
        super.init()
        withNoGrad {
            for e in [sourceEmbedding, targetEmbedding, positions] { e.weight.assign(e.weight * 0.1) }
        }
    }

    func embed(_ table: Embedding, _ ids: IntTensor) -> Tensor {
        let t = ids.shape[1]
        return table(ids) + positions(IntTensor((0..<t).map { Int32($0) }, shape: [t]))
    }

    /// Encoder output [B, S, C] and its key padding mask [B, 1, 1, S].
    public func encode(_ source: IntTensor, lengths: [Int]) -> (Tensor, Tensor) {
        let mask = Attention.paddingMask(lengths: lengths, maxLength: source.shape[1])
        var h = embed(sourceEmbedding, source)
        for block in encoder { h = block(h, mask: mask, keyLengths: lengths) }
        return (encoderNorm(h), mask)
    }

    /// Logits [B, T, V] for decoder inputs `target` (BOS-prefixed) given the encoded source.
    public func decode(_ target: IntTensor, memory: Tensor, memoryMask: Tensor) -> Tensor {
        var h = embed(targetEmbedding, target)
        for block in decoder { h = block(h, memory: memory, memoryMask: memoryMask) }
        return output(decoderNorm(h))
    }

    /// Greedy decoding of a batch; returns target ids (without BOS/EOS) per row.
    public func greedy(_ source: IntTensor, lengths: [Int], maxLength: Int) -> [[Int32]] {
        eval()
        defer { train() }
        return Seq2SeqDecoding.greedy(self, source: source, lengths: lengths, maxLength: maxLength)
    }
}

extension Seq2SeqTransformer: Seq2SeqModel {
    // The decoder re-runs over the whole prefix each step: targets here are about ten characters long.
    public func nextTokenLogits(_ source: IntTensor, lengths: [Int], prefixes: IntTensor) -> Tensor {
        let (memory, mask) = encode(source, lengths: lengths)
        let t = prefixes.shape[1]
        return decode(prefixes, memory: memory, memoryMask: mask).slice(axis: 1, start: t - 1, length: 1).reshape([prefixes.shape[0], -1])
    }
}

/// Padded batches for the date task.
public struct Seq2SeqBatch {
    public let source: IntTensor
    public let sourceLengths: [Int]
    public let decoderInput: IntTensor
    public let decoderTarget: IntTensor

    public init(pairs: [([Int32], [Int32])]) {
        let pad = Seq2SeqVocabulary.pad
        source = IntTensor.padded(pairs.map(\.0), with: pad)
        sourceLengths = pairs.map(\.0.count)
        decoderInput = IntTensor.padded(pairs.map { [Seq2SeqVocabulary.bos] + $0.1 }, with: pad)
        decoderTarget = IntTensor.padded(pairs.map { $0.1 + [Seq2SeqVocabulary.eos] }, with: pad)
    }
}

public struct Seq2SeqReport {
    public var exactMatch: Double
    public var examples: [(source: String, predicted: String, target: String)]
    public var seconds: Double
}

/// Training the date models with teacher forcing, then exact match on held-out pairs; and attention maps.
///
/// ```swift
/// let train = HumanDates.pairs(count: 20_000, seed: 1).map { ($0.source, $0.target) }
/// let test = HumanDates.pairs(count: 2000, seed: 2).map { ($0.source, $0.target) }
/// let report = try Seq2SeqTraining.run(model: model, vocabulary: v, train: train, test: test, steps: 3000)
/// print(report.exactMatch, report.examples)
/// let (weights, predicted) = try Seq2SeqTraining.crossAttention(model: model, vocabulary: v, source: test[0].0)
/// ```
public enum Seq2SeqTraining {
    /// Trains on `train` pairs with AdamW (warmup + cosine) and teacher forcing, then measures exact-match
    /// accuracy on `test` of greedy decoding (or beam search with `beams` > 1).
    public static func run(model: Seq2SeqTransformer, vocabulary v: Seq2SeqVocabulary, train: [(String, String)], test: [(String, String)],
                           steps: Int, batchSize: Int = 64, learningRate: Float = 2e-3, seed: UInt64 = 1, beams: Int = 1,
                           maxTargetLength: Int = 12, onLog: (Int, Float) -> Void = { _, _ in }) throws -> Seq2SeqReport {
        let longest = (train + test).map { max($0.0.count, $0.1.count + 1) }.max() ?? 0
        guard longest <= model.config.maxLength else {
            throw AttendError("a pair of \(longest) characters (with EOS) is longer than the model's \(model.config.maxLength) positions; raise maxLength")
        }
        let optimizer = AdamW(parameters: model.namedParameters(), learningRate: learningRate, weightDecay: 0.01)
        let schedule = WarmupCosineSchedule(peak: learningRate, minimum: learningRate / 20, warmupSteps: min(200, steps / 10), totalSteps: steps)
        model.train()
        let seconds = try teacherForced(model, optimizer: optimizer, schedule: schedule, vocabulary: v, train: train, steps: steps,
                                        batchSize: batchSize, seed: seed, label: "seq2seq", onLog: onLog) { batch in
            let (memory, mask) = model.encode(batch.source, lengths: batch.sourceLengths)
            return model.decode(batch.decoderInput, memory: memory, memoryMask: mask)
        }
        let (accuracy, examples) = try Seq2SeqDecoding.exactMatch(model, vocabulary: v, test: test, beams: beams, maxLength: maxTargetLength)
        return Seq2SeqReport(exactMatch: accuracy, examples: examples, seconds: seconds)
    }

    /// T5's text-to-text multitask training (Raffel et al., 2020): every task's source is announced by its prefix
    /// ("number to words: 4821"), all tasks are mixed in one training set, one model, one loss. Returns exact
    /// match per task on `testPerTask` held-out pairs of each, greedy.
    ///
    /// ```swift
    /// let r = try Seq2SeqTraining.multitask(tasks: TextTask.allCases, config: config, steps: 6000, trainPerTask: 20_000, testPerTask: 500)
    /// r.exactMatch[.numberToWords]
    /// ```
    public static func multitask(tasks: [TextTask], config: Seq2SeqConfig, steps: Int, trainPerTask: Int, testPerTask: Int, batchSize: Int = 64,
                                 learningRate: Float = 2e-3, seed: UInt64 = 1, prefixed: Bool = true,
                                 onLog: (Int, Float) -> Void = { _, _ in }) throws -> (exactMatch: [TextTask: Double], seconds: Double, parameters: Int) {
        guard !tasks.isEmpty, steps >= 1, trainPerTask >= 1, testPerTask >= 1 else { throw AttendError("multitask training needs tasks, steps and pairs") }
        func pairs(_ task: TextTask, _ n: Int, _ s: UInt64) -> [(String, String)] {
            task.pairs(count: n, seed: s).map { (prefixed ? task.prefixed($0.source) : $0.source, $0.target) }
        }
        var train: [(String, String)] = []
        for (k, task) in tasks.enumerated() { train += pairs(task, trainPerTask, seed &+ UInt64(k)) }
        let tests = Dictionary(uniqueKeysWithValues: tasks.map { ($0, pairs($0, testPerTask, seed &+ 1_000_003)) })
        let v = Seq2SeqVocabulary(texts: (train + tests.values.flatMap { $0 }).flatMap { [$0.0, $0.1] })
        var g = RandomGenerator(seed: seed)
        let model = Seq2SeqTransformer(sourceVocabulary: v.count, targetVocabulary: v.count, config: config, generator: &g)
        let longestTarget = (train + tests.values.flatMap { $0 }).map(\.1.count).max() ?? 1
        let report = try run(model: model, vocabulary: v, train: train, test: [], steps: steps, batchSize: batchSize,
                             learningRate: learningRate, seed: seed, maxTargetLength: longestTarget + 1, onLog: onLog)
        var exact: [TextTask: Double] = [:]
        for task in tasks {
            exact[task] = try Seq2SeqDecoding.exactMatch(model, vocabulary: v, test: tests[task]!, beams: 1, maxLength: longestTarget + 1).accuracy
        }
        return (exact, report.seconds, model.parameterCount)
    }

    /// The teacher-forced training loop both model families share: random batches of `train`, cross-entropy
    /// on the shifted targets (padding ignored), clipping at 1, `schedule`. Returns the training seconds.
    static func teacherForced(_ model: Module, optimizer: Optimizer, schedule: WarmupCosineSchedule, vocabulary v: Seq2SeqVocabulary,
                              train: [(String, String)], steps: Int, batchSize: Int, seed: UInt64, label: String,
                              onLog: (Int, Float) -> Void, logits: (Seq2SeqBatch) -> Tensor) throws -> Double {
        let encodedTrain = try train.map { (try v.encode($0.0), try v.encode($0.1)) }
        var g = RandomGenerator(seed: seed)
        let started = Date()
        let trainer = Trainer(model: model, optimizer: optimizer, config: TrainerConfig(steps: steps, gradientClip: 1, evaluationInterval: 250),
                              schedule: schedule.callAsFunction)
        try trainer.run(progress: ProgressBar(total: steps, label: label, unit: "step"), rateUnit: "pairs", loss: { _, _ in
            let batch = Seq2SeqBatch(pairs: (0..<batchSize).map { _ in encodedTrain[Int(g.next() % UInt64(encodedTrain.count))] })
            let loss = Loss.crossEntropy(logits: logits(batch), targets: batch.decoderTarget, ignoreIndex: Int(Seq2SeqVocabulary.pad))
            return TrainingLoss(loss, items: batchSize)
        }, evaluate: { step in onLog(step, trainer.recentLoss(1)) })
        return Date().timeIntervalSince(started) - trainer.evaluationSeconds
    }

    /// Cross-attention weights of the last decoder layer (mean over heads) while greedily decoding `source`:
    /// [output characters, source characters].
    public static func crossAttention(model: Seq2SeqTransformer, vocabulary v: Seq2SeqVocabulary, source: String) throws -> (Tensor, String) {
        let ids = try v.encode(source)
        let attention = model.decoder.last!.crossAttention
        let predicted = model.greedy(IntTensor(ids, shape: [1, ids.count]), lengths: [ids.count], maxLength: 12)[0]
        attention.keepWeights = true
        defer { attention.keepWeights = false }
        let input = IntTensor([Seq2SeqVocabulary.bos] + predicted, shape: [1, predicted.count + 1])
        withNoGrad {
            model.eval()
            let (memory, mask) = model.encode(IntTensor(ids, shape: [1, ids.count]), lengths: [ids.count])
            _ = model.decode(input, memory: memory, memoryMask: mask)
            model.train()
        }
        let w = attention.lastWeights!  // (1, H, T, S)
        let mean = withNoGrad { w.mean(axes: [1]).reshape([predicted.count + 1, ids.count]).slice(axis: 0, start: 0, length: predicted.count) }
        return (mean.contiguous(), v.decode(predicted))
    }
}
