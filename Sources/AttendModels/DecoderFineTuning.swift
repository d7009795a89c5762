// GPT-1's fine-tuning (Radford et al., 2018): one pretrained decoder, almost unchanged, adapted to each task by
// how its input is laid out, a linear head on the state of the last ("extract") token, and the task loss
// plus a weighted language-model loss on the same inputs. Three tokens are added to the vocabulary (start,
// delimiter, extract); their vectors are trained with the rest.
//
//   classification   [start] text [extract]
//   entailment       [start] premise [delim] hypothesis [extract]
//   similarity       [start] a [delim] b [extract] and [start] b [delim] a [extract], the two states added
//   multiple choice  [start] context [delim] option_i [extract] for each option, one score each, softmax over options

import AttendLM
import AttendNN
import AttendTensor
import Foundation

/// How a task's texts become decoder inputs.
public enum GPTTaskLayout: String, CaseIterable, Codable {
    case classification, entailment, similarity
    case multipleChoice = "multiple-choice"

    /// How many texts an example of this layout has (multiple choice: a context and at least two options).
    public func check(textCount n: Int, source: String) throws {
        switch self {
        case .classification where n != 1, .entailment where n != 2, .similarity where n != 2:
            throw AttendError("\(source): the \(rawValue) layout takes \(self == .classification ? "one text" : "two texts") per example, got \(n)")
        case .multipleChoice where n < 3:
            throw AttendError("\(source): the multiple-choice layout takes a context and at least two options, got \(n) texts")
        default: return
        }
    }
}

/// One labelled example: its texts as token ids (see `GPTTaskLayout`) and the class, or for multiple choice
/// the index of the right option.
public struct TaskExample: Equatable {
    public var texts: [[Int32]]
    public var label: Int
    public init(texts: [[Int32]], label: Int) {
        self.texts = texts
        self.label = label
    }
}

/// A pretrained decoder with GPT-1's three added tokens and a task head.
///
/// ```swift
/// let task = GPTTaskModel(decoder: gpt, layout: .entailment, classCount: 2, generator: &g)
/// let (taskLoss, lmLoss) = task.losses(examples)
/// (taskLoss + lmLoss * 0.5).backward()
/// task.predict(examples)   // [class or option index]
/// ```
public final class GPTTaskModel: Module {
    public let decoder: Module & LanguageModel
    /// The added vocabulary rows: start, delimiter, extract.
    public let addedTokens: Tensor
    public let head: Linear
    public let layout: GPTTaskLayout
    public let classCount: Int

    public init(decoder: Module & LanguageModel, layout: GPTTaskLayout, classCount: Int, generator: inout RandomGenerator) {
        self.decoder = decoder
        self.layout = layout
        self.classCount = classCount
        let width = decoder.embeddingWidth
        // The new rows start at the scale of the existing embeddings (GPT-2 and Llama use std 0.02).
        addedTokens = Tensor.randn([3, width], std: 0.02, generator: &generator, requiresGrad: true)
        head = Linear(width, layout == .multipleChoice ? 1 : classCount, generator: &generator)
    }

    /// The token sequences of one example (one per option for multiple choice, two orders for similarity),
    /// as (ids, which added token or nil per position). Texts are cut to fit the decoder's context: the
    /// context of a multiple-choice example loses its start, other texts their ends.
    func sequences(_ e: TaskExample, maxLength: Int) -> [[(id: Int32, added: Int?)]] {
        func join(_ parts: [[Int32]]) -> [(id: Int32, added: Int?)] {
            let budget = max(maxLength - parts.count - 1, parts.count)
            var lengths = parts.map(\.count)
            while lengths.reduce(0, +) > budget, let i = lengths.indices.max(by: { lengths[$0] < lengths[$1] }) { lengths[i] -= 1 }
            var out: [(Int32, Int?)] = [(0, 0)]
            for (k, part) in parts.enumerated() {
                let kept = layout == .multipleChoice && k == 0 ? Array(part.suffix(lengths[k])) : Array(part.prefix(lengths[k]))
                out += kept.map { ($0, nil) }
                out.append((0, k == parts.count - 1 ? 2 : 1))
            }
            return out
        }
        switch layout {
        case .classification: return [join([e.texts[0]])]
        case .entailment: return [join([e.texts[0], e.texts[1]])]
        case .similarity: return [join([e.texts[0], e.texts[1]]), join([e.texts[1], e.texts[0]])]
        case .multipleChoice: return e.texts.dropFirst().map { join([e.texts[0], $0]) }
        }
    }

    /// One forward pass over `examples`: task logits [B, classes or options] and the mean LM loss over every text
    /// token that follows a text token.
    public func forward(_ examples: [TaskExample]) -> (taskLogits: Tensor, lmLoss: Tensor) {
        let seqs = examples.flatMap { sequences($0, maxLength: decoder.contextLength) }
        let width = seqs.map(\.count).max() ?? 1
        let c = decoder.embeddingWidth
        var ids = [Int32](repeating: 0, count: seqs.count * width)
        var addedOneHot = [Float](repeating: 0, count: seqs.count * width * 3)
        var isText = [Float](repeating: 0, count: seqs.count * width)
        var extract: [Int32] = [], lmPositions: [Int32] = [], lmTargets: [Int32] = []
        for (s, seq) in seqs.enumerated() {
            for (t, token) in seq.enumerated() {
                let at = s * width + t
                if let k = token.added {
                    addedOneHot[at * 3 + k] = 1
                    if k == 2 { extract.append(Int32(at)) }
                } else {
                    ids[at] = token.id
                    isText[at] = 1
                    if t > 0, seq[t - 1].added == nil || seq[t - 1].added == 0 {
                        lmPositions.append(Int32(at - 1))
                        lmTargets.append(token.id)
                    }
                }
            }
        }
        let tokens = decoder.embed(IntTensor(ids, shape: [seqs.count, width])) * Tensor(isText, shape: [seqs.count, width, 1])
        let added = Tensor(addedOneHot, shape: [seqs.count * width, 3]).matmul(addedTokens).reshape([seqs.count, width, c])
        let hidden = decoder.finalHiddenStates(inputEmbeddings: tokens + added).reshape([seqs.count * width, c])
        let states = hidden.indexSelect(IntTensor(extract, shape: [extract.count]))  // [sequences, C]
        let logits: Tensor
        switch layout {
        case .classification, .entailment: logits = head(states)
        case .similarity: logits = head(states.reshape([examples.count, 2, c]).sum(axes: [1]))
        case .multipleChoice: logits = head(states).reshape([examples.count, -1])
        }
        let lm = lmPositions.isEmpty ? Tensor([0], shape: [])
            : Loss.crossEntropy(logits: decoder.vocabularyLogits(hidden.indexSelect(IntTensor(lmPositions, shape: [lmPositions.count]))),
                                targets: IntTensor(lmTargets, shape: [lmTargets.count]))
        return (logits, lm)
    }

    /// Predicted class (or option) per example, in evaluation mode.
    public func predict(_ examples: [TaskExample], batchSize: Int = 32) -> [Int] {
        let was = isTraining
        eval()
        defer { train(was) }
        return withNoGrad {
            stride(from: 0, to: examples.count, by: batchSize).flatMap { start in
                forward(Array(examples[start..<min(start + batchSize, examples.count)])).taskLogits.argmax(axis: -1).data.map(Int.init)
            }
        }
    }

    public func accuracy(_ examples: [TaskExample]) -> Double {
        Double(zip(predict(examples), examples).filter { $0 == $1.label }.count) / Double(max(examples.count, 1))
    }
}

/// How GPT-1 fine-tuning runs: GPT-1's recipe scaled down (AdamW, linear warmup then linear decay, the LM loss
/// at weight 0.5).
public struct GPTFineTuningConfig: Codable, Equatable {
    public var epochs = 3
    public var batchSize = 16
    public var learningRate: Float = 1e-4
    public var warmupFraction: Float = 0.02
    public var weightDecay: Float = 0.01
    /// GPT-1's lambda: the weight of the auxiliary language-model loss (0 turns it off).
    public var lmLossWeight: Float = 0.5
    public var seed: UInt64 = 1
    public init() {}

    public func validate() throws {
        guard epochs >= 1, batchSize >= 1 else { throw AttendError("--epochs and --batch-size must be at least 1") }
        guard learningRate.isFinite, learningRate > 0 else { throw AttendError("--lr must be positive, got \(learningRate)") }
        guard lmLossWeight.isFinite, lmLossWeight >= 0 else { throw AttendError("--lm-weight must be >= 0, got \(lmLossWeight)") }
        guard warmupFraction >= 0, warmupFraction < 1, weightDecay >= 0 else { throw AttendError("--warmup must be in [0, 1) and --weight-decay >= 0") }
    }
}

public enum GPTFineTuning {
    /// Fine-tunes every weight of `model` (decoder, added tokens, head) on `train`; returns test accuracy after
    /// each epoch (also passed to `onEpoch` with the mean task loss).
    @discardableResult
    public static func run(_ model: GPTTaskModel, train: [TaskExample], test: [TaskExample], config: GPTFineTuningConfig,
                           progress: Bool = true, onEpoch: (Int, Float, Double) -> Void = { _, _, _ in }) throws -> [Double] {
        try config.validate()
        guard !train.isEmpty, !test.isEmpty else { throw AttendError("fine-tuning needs training and test examples (got \(train.count) and \(test.count))") }
        if let llama = model.decoder as? LlamaModel, llama.isQuantized {
            throw AttendError("fine-tuning '\(llama.name)' needs its float weights, and its matrices are still in GGUF blocks; call loadFloatWeights() first")
        }
        for e in train + test where model.layout != .multipleChoice && !(0..<model.classCount).contains(e.label) {
            throw AttendError("label \(e.label) is outside the head's \(model.classCount) classes")
        }
        let optimizer = Adam.decayingMatrices(of: model, learningRate: config.learningRate, weightDecay: config.weightDecay)
        let stepsPerEpoch = (train.count + config.batchSize - 1) / config.batchSize
        let total = stepsPerEpoch * config.epochs
        let rate = WarmupLinearSchedule(peak: config.learningRate, warmupSteps: Int(Float(total) * config.warmupFraction), totalSteps: total)
        var g = RandomGenerator(seed: config.seed)
        var order = Array(train.indices)
        var accuracies: [Double] = []
        var lossSum: Float = 0
        let bar = progress ? ProgressBar(total: total, label: "fine-tune \(model.layout.rawValue)", unit: "step") : nil
        let trainer = Trainer(model: model, optimizer: optimizer,
                              config: TrainerConfig(steps: total, gradientClip: 1, evaluationInterval: stepsPerEpoch), schedule: rate.callAsFunction)
        try trainer.run(progress: bar, rateUnit: "ex", loss: { step, _ in
            let k = step % stepsPerEpoch
            if k == 0 {
                for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
                lossSum = 0
            }
            let rows = order[(k * config.batchSize)..<min(order.count, (k + 1) * config.batchSize)].map { train[$0] }
            let (logits, lm) = model.forward(rows)
            let task = Loss.crossEntropy(logits: logits, targets: IntTensor(rows.map { Int32($0.label) }, shape: [rows.count]))
            lossSum += task.item * Float(rows.count)
            return TrainingLoss(config.lmLossWeight > 0 ? task + lm * config.lmLossWeight : task, items: rows.count)
        }, evaluate: { step in
            let accuracy = model.accuracy(test)
            accuracies.append(accuracy)
            onEpoch(step / stepsPerEpoch, lossSum / Float(train.count), accuracy)
        })
        return accuracies
    }

    /// Zero-shot multiple choice: the option whose tokens the decoder finds most likely after the context (mean
    /// log-probability per option token), no training.
    public static func zeroShotChoice(_ decoder: LanguageModel, _ examples: [TaskExample], separator: [Int32] = []) -> Double {
        var correct = 0
        withNoGrad {
            for e in examples {
                let context = Array(e.texts[0].suffix(max(decoder.contextLength - 64, 8))) + separator
                var scores: [Float] = []
                for option in e.texts.dropFirst() {
                    let opt = Array(option.prefix(decoder.contextLength - context.count))
                    let ids = context + opt
                    let logp = decoder.logits(IntTensor(ids, shape: [1, ids.count])).reshape([ids.count, -1]).logSoftmax(axis: -1)
                    let picked = logp.gather(axis: 1, indices: IntTensor(ids.map { $0 }, shape: [ids.count, 1]).shifted())
                    let rows = picked.toArray()
                    let tail = rows[(context.count - 1)..<(ids.count - 1)]
                    scores.append(tail.reduce(0, +) / Float(max(tail.count, 1)))
                }
                if scores.indices.max(by: { scores[$0] < scores[$1] }) == e.label { correct += 1 }
            }
        }
        return Double(correct) / Double(max(examples.count, 1))
    }
}

extension IntTensor {
    /// [T, 1] ids -> [T, 1] ids of the next position (the last repeats): the targets row t predicts.
    fileprivate func shifted() -> IntTensor {
        var d = data
        for i in 0..<(d.count - 1) { d[i] = d[i + 1] }
        return IntTensor(d, shape: shape)
    }
}
