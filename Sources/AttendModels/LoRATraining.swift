// Fine-tuning a pretrained Llama with LoRA on chat data: the base frozen, adapters on chosen projections,
// the loss on the assistant's tokens only, the shared Trainer, and the held-out loss before and after.

import AttendLM
import AttendNN
import AttendTensor
import Foundation

/// How to train LoRA adapters.
public struct LoRATrainingConfig: Codable, Equatable {
    public var rank = 8
    public var alpha: Float = 16
    public var targetModules = ["q_proj", "v_proj"]
    public var dropout: Float = 0
    public var steps = 100
    public var batchSize = 4
    /// Conversations longer than this many tokens are cut.
    public var maxLength = 256
    public var learningRate: Float = 2e-4
    public var warmupSteps = 10
    public var weightDecay: Float = 0
    public var gradientClip: Float = 1
    public var evaluationInterval: Int?
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        guard rank >= 1 else { throw AttendError("--rank must be at least 1, got \(rank)") }
        guard steps >= 0, batchSize >= 1, maxLength >= 2 else { throw AttendError("--steps must be >= 0, --batch-size >= 1 and --max-length >= 2") }
        guard learningRate.isFinite, learningRate > 0 else { throw AttendError("--learning-rate must be positive, got \(learningRate)") }
        guard warmupSteps >= 0, weightDecay >= 0, gradientClip >= 0 else { throw AttendError("--warmup, --weight-decay and --clip must be >= 0") }
        if let e = evaluationInterval, e < 1 { throw AttendError("--eval-interval must be at least 1, got \(e)") }
    }

    public var lora: LoRAConfig { LoRAConfig(rank: rank, alpha: alpha, targetModules: targetModules, dropout: dropout) }
}

/// A batch of conversations: ids [B, T] right-padded, targets [B, T] (the next token where it is trained, -1
/// elsewhere: prompts, padding, the last position).
public struct ChatBatch {
    public var ids: IntTensor
    public var targets: IntTensor
    public var trainedTokens: Int
    /// Row-major positions (b * T + t) whose next token is trained, and those tokens.
    public var trainedPositions: IntTensor
    public var trainedTargets: IntTensor

    public static let ignored: Int32 = -1

    /// `width` fixes T (for benchmarks); by default the longest conversation.
    public init(_ chats: [TokenizedChat], padId: Int32, width: Int? = nil) {
        let w = width ?? chats.map(\.ids.count).max() ?? 1
        ids = IntTensor.padded(chats.map { Array($0.ids.prefix(w)) }, with: padId, width: w)
        var t = [Int32](repeating: ChatBatch.ignored, count: chats.count * w)
        var positions: [Int32] = [], next: [Int32] = []
        for (r, chat) in chats.enumerated() {
            for i in 0..<max(min(chat.ids.count, w) - 1, 0) where chat.trained[i + 1] {
                t[r * w + i] = chat.ids[i + 1]
                positions.append(Int32(r * w + i))
                next.append(chat.ids[i + 1])
            }
        }
        targets = IntTensor(t, shape: [chats.count, w])
        trainedTokens = positions.count
        trainedPositions = IntTensor(positions, shape: [positions.count])
        trainedTargets = IntTensor(next, shape: [next.count])
    }
}

/// Trains LoRA adapters on a Llama model (float weights) from tokenized conversations.
///
/// ```swift
/// let loaded = try ModelLocator.languageModel("SmolLM2-135M-Instruct")
/// let template = ChatTemplate(ggufTemplate: loaded.chatTemplate)
/// let chats = try examples.map { try template.tokenize($0, tokenizer: loaded.tokenizer, maxLength: 256) }
/// let trainer = try LoRATrainer(model: loaded.model as! LlamaModel, train: chats, heldOut: heldOut, config: LoRATrainingConfig())
/// print(trainer.heldOutLoss())
/// try trainer.run(progress: ProgressBar(total: 100, label: "lora"))
/// try trainer.model.saveAdapter(directory: "adapter")
/// ```
public final class LoRATrainer {
    public let model: LlamaModel
    public let config: LoRATrainingConfig
    public let optimizer: Adam
    let train: [TokenizedChat]
    let heldOut: [TokenizedChat]
    let padId: Int32
    /// (step, held-out loss) at each evaluation.
    public private(set) var evaluations: [(step: Int, loss: Float)] = []
    public private(set) var lossHistory: [(step: Int, loss: Float)] = []
    public private(set) var trainingSeconds: Double = 0
    /// Wall time of each step (from one step's start to the next's), for the benchmark's median.
    public private(set) var stepSeconds: [Double] = []

    public init(model: LlamaModel, train: [TokenizedChat], heldOut: [TokenizedChat], config: LoRATrainingConfig, padId: Int32 = 0) throws {
        try config.validate()
        guard config.maxLength <= model.contextLength else {
            throw AttendError("--max-length \(config.maxLength) is longer than the model's context of \(model.contextLength) positions")
        }
        guard (train + heldOut).allSatisfy({ $0.ids.count <= model.contextLength && $0.ids.allSatisfy { $0 >= 0 && Int($0) < model.vocabularySize } }) else {
            throw AttendError("a conversation is longer than the context (\(model.contextLength)) or holds a token id outside the vocabulary (\(model.vocabularySize))")
        }
        let usable = train.filter { $0.trainedCount > 0 }
        guard !usable.isEmpty else { throw AttendError("no training conversation has an assistant token within --max-length \(config.maxLength)") }
        if model.isQuantized { try model.loadFloatWeights() }
        if model.adapters().isEmpty {
            var lora = config.lora
            lora.baseModel = model.name
            try model.addAdapters(lora, seed: config.seed)
        }
        self.model = model
        self.config = config
        self.train = usable
        self.heldOut = heldOut.filter { $0.trainedCount > 0 }
        self.padId = padId
        optimizer = Adam(parameters: model.namedParameters(), learningRate: config.learningRate, weightDecay: config.weightDecay, decoupledWeightDecay: true)
    }

    /// The conversations of step `step`: a fresh shuffle of the training set each epoch, drawn with the seed.
    func batch(step: Int) -> ChatBatch {
        let perEpoch = max(train.count / config.batchSize, 1)
        let epoch = step / perEpoch
        var g = RandomGenerator(seed: config.seed &+ UInt64(epoch) &* 0x9E37_79B9)
        var order = Array(train.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        let start = (step % perEpoch) * config.batchSize
        let picked = (0..<config.batchSize).map { train[order[(start + $0) % order.count]] }
        return ChatBatch(picked, padId: padId)
    }

    /// The mean loss per trained token of `chats` (held-out by default), without gradients.
    public func heldOutLoss(_ chats: [TokenizedChat]? = nil) -> Float {
        LoRATrainer.meanLoss(model: model, chats: chats ?? heldOut, batchSize: config.batchSize, padId: padId)
    }

    /// The mean loss per trained token of `chats` under `model` (evaluation mode, no gradients), in batches.
    public static func meanLoss(model: LlamaModel, chats: [TokenizedChat], batchSize: Int, padId: Int32) -> Float {
        let set = chats.filter { $0.trainedCount > 0 }
        guard !set.isEmpty else { return .nan }
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        return withNoGrad {
            var total: Double = 0, count = 0
            for start in stride(from: 0, to: set.count, by: max(batchSize, 1)) {
                let b = ChatBatch(Array(set[start..<min(start + batchSize, set.count)]), padId: padId)
                let loss = LoRATrainer.loss(model: model, batch: b)
                total += Double(loss.item) * Double(b.trainedTokens)
                count += b.trainedTokens
            }
            return Float(total / Double(max(count, 1)))
        }
    }

    /// One step's loss for `batch`, differentiable in the adapters.
    public func loss(_ batch: ChatBatch) -> Tensor { LoRATrainer.loss(model: model, batch: batch) }

    /// The mean cross-entropy of the trained tokens. Only their positions go through the output projection
    /// (49,152 columns for SmolLM2): prompts and padding never make logits.
    public static func loss(model: LlamaModel, batch: ChatBatch) -> Tensor {
        let hidden = model.finalHiddenStates(inputEmbeddings: model.embed(batch.ids)).reshape([-1, model.config.hiddenSize])
        let logits = model.vocabularyLogits(hidden.indexSelect(batch.trainedPositions))
        return Loss.crossEntropy(logits: logits, targets: batch.trainedTargets)
    }

    /// Trains to `config.steps`; evaluates the held-out loss every `evaluationInterval` steps and at the end.
    public func run(progress: ProgressBar? = nil, onEvaluation: (Int, Float) -> Void = { _, _ in }) throws {
        let schedule = WarmupCosineSchedule(peak: config.learningRate, minimum: config.learningRate / 10,
                                            warmupSteps: min(config.warmupSteps, config.steps), totalSteps: max(config.steps, 1))
        let trainer = Trainer(model: model, optimizer: optimizer,
                              config: TrainerConfig(steps: config.steps, gradientClip: config.gradientClip, evaluationInterval: config.evaluationInterval),
                              schedule: schedule.callAsFunction)
        let started = Date()
        var previous: Date?
        try trainer.run(progress: progress, rateUnit: "tok", loss: { step, _ in
            let now = Date()
            if let previous { stepSeconds.append(now.timeIntervalSince(previous)) }
            previous = now
            let b = batch(step: step)
            return TrainingLoss(loss(b), items: b.ids.count)
        }, evaluate: { step in
            guard !heldOut.isEmpty else { return }
            let l = heldOutLoss()
            evaluations.append((step, l))
            onEvaluation(step, l)
        })
        trainingSeconds += Date().timeIntervalSince(started) - trainer.evaluationSeconds
        lossHistory += trainer.lossHistory
        model.eval()
    }
}
