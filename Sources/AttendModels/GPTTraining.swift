// Training a GPT from scratch by next-token prediction (nanoGPT's loop): random windows of the token
// stream, AdamW with linear warmup and cosine decay, gradient clipping and accumulation, periodic
// train/validation estimates, and checkpoints that resume exactly.

import AttendLM
import AttendNN
import AttendTensor
import AttendTokenizers
import Foundation

/// How a GPT is trained from scratch: batch, iterations, AdamW with warmup and cosine decay, clipping and the
/// evaluation cadence. It is saved in the checkpoint beside the model config.
///
/// ```swift
/// var config = GPTTrainingConfig()
/// config.iterations = 5000
/// config.batchSize = 32
/// config.gradientAccumulation = 4   // 128 windows per step without the memory of a 128-window batch
/// ```
public struct GPTTrainingConfig: Codable, Equatable {
    public var batchSize = 12
    public var iterations = 2000
    public var learningRate: Float = 1e-3
    public var minLearningRate: Float = 1e-4
    public var warmupIterations = 100
    public var weightDecay: Float = 0.1
    public var beta2: Float = 0.99
    public var gradientClip: Float = 1
    public var gradientAccumulation = 1
    public var evalInterval = 250
    public var evalIterations = 20
    public var validationFraction = 0.1
    public var seed: UInt64 = 1337
    public init() {}
}

public struct GPTEvaluation: Codable {
    public var iteration: Int
    public var trainLoss: Float
    public var validationLoss: Float
}

/// Trains a `GPTModel` by next-token prediction on one token stream, holding out its tail for validation.
///
/// ```swift
/// let tokenizer = CharacterTokenizer(text: text)
/// var g = RandomGenerator(seed: 1337)
/// let model = GPTModel(GPTConfig(vocabSize: tokenizer.count, contextLength: 64, width: 128, layerCount: 4, headCount: 4), generator: &g)
/// let trainer = try GPTTrainer(model: model, tokens: try tokenizer.encode(text), config: GPTTrainingConfig())
/// try trainer.run(progress: true)
/// print(tokenizer.decode(GPTTrainer.sample(model: model, context: try tokenizer.encode("ROMEO:"), count: 200)))
/// ```
public final class GPTTrainer {
    public let model: GPTModel
    public let config: GPTTrainingConfig
    public let optimizer: Adam
    let train: [Int32]
    let validation: [Int32]
    public private(set) var history: [GPTEvaluation] = []
    /// Wall time spent in `evaluate()` during `run` (so training time can be reported alone).
    public private(set) var evaluationSeconds: Double = 0

    /// `tokens` is the whole corpus; the last `validationFraction` of it is held out.
    public init(model: GPTModel, tokens: [Int32], config: GPTTrainingConfig) throws {
        let cut = Int(Double(tokens.count) * (1 - config.validationFraction))
        let context = model.config.contextLength
        guard cut > context + 1, tokens.count - cut > context + 1 else {
            throw AttendError("the corpus has \(tokens.count) tokens; training and validation parts each need more than the context (\(context)) + 1")
        }
        self.model = model
        self.config = config
        train = Array(tokens[..<cut])
        validation = Array(tokens[cut...])
        // Weight decay on matrices (embeddings included) only, as nanoGPT: biases and norm gains are exempt.
        optimizer = Adam.decayingMatrices(of: model, learningRate: config.learningRate, beta2: config.beta2, weightDecay: config.weightDecay)
    }

    /// Called with the gradients before each optimizer step (see `Trainer.gradientHook`).
    public var gradientHook: (([(name: String, tensor: Tensor)]) throws -> Void)?
    /// Maps each step's loss before it is recorded (see `Trainer.lossHook`).
    public var lossHook: ((Float) throws -> Float)?

    /// Which slice of each training batch this process trains on: data-parallel processes draw the same global
    /// batch and each keeps rows [index * B / count, (index + 1) * B / count). (0, 1) is the whole batch.
    public private(set) var shard: (index: Int, count: Int) = (0, 1)

    /// Trains on slice `index` of `count` of every batch (the batch size must divide evenly).
    public func setShard(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else { throw AttendError("shard \(index) of \(count) does not exist") }
        guard config.batchSize % count == 0 else {
            throw AttendError("the batch of \(config.batchSize) windows does not split evenly over \(count) processes; give a batch size that \(count) divides")
        }
        shard = (index, count)
    }

    /// A batch of windows for iteration `step` (seeded by step, so a resumed run draws the same batches), or this
    /// shard's rows of it.
    func batch(_ data: [Int32], step: Int, micro: Int, salt: UInt64 = 0, sharded: Bool = false) -> (IntTensor, IntTensor) {
        let (b, t) = (config.batchSize, model.config.contextLength)
        var g = RandomGenerator(seed: config.seed &+ salt &+ UInt64(step) &* 1_000_003 &+ UInt64(micro) &* 7919)
        let rows = sharded ? (b * shard.index / shard.count)..<(b * (shard.index + 1) / shard.count) : 0..<b
        var x = [Int32](), y = [Int32]()
        x.reserveCapacity(rows.count * t)
        y.reserveCapacity(rows.count * t)
        for row in 0..<b {
            let start = Int(g.next() % UInt64(data.count - t - 1))   // every row is drawn, so the generator stays in step
            guard rows.contains(row) else { continue }
            x += data[start..<(start + t)]
            y += data[(start + 1)..<(start + t + 1)]
        }
        return (IntTensor(x, shape: [rows.count, t]), IntTensor(y, shape: [rows.count, t]))
    }

    public var schedule: WarmupCosineSchedule {
        WarmupCosineSchedule(peak: config.learningRate, minimum: config.minLearningRate, warmupSteps: config.warmupIterations,
                             totalSteps: config.iterations)
    }

    /// Mean loss over `evalIterations` batches of each split, in evaluation mode.
    public func evaluate() -> GPTEvaluation {
        model.eval()
        defer { model.train() }
        func mean(_ data: [Int32], salt: UInt64) -> Float {
            withNoGrad {
                (0..<config.evalIterations).map { i -> Float in
                    let (x, y) = batch(data, step: i, micro: 0, salt: salt)
                    return Loss.crossEntropy(logits: model(x), targets: y).item
                }.reduce(0, +) / Float(config.evalIterations)
            }
        }
        return GPTEvaluation(iteration: optimizer.step, trainLoss: mean(train, salt: 0xE1), validationLoss: mean(validation, salt: 0xE2))
    }

    /// Trains until `config.iterations` (continuing from `optimizer.step` after a resume). `checkpoint` is
    /// called after each evaluation; `onLog` with each evaluation.
    public func run(progress: Bool = true, checkpoint: (GPTTrainer) throws -> Void = { _ in },
                    onLog: (GPTEvaluation) -> Void = { _ in }) throws {
        let trainer = Trainer(model: model, optimizer: optimizer,
                              config: TrainerConfig(steps: config.iterations, gradientAccumulation: config.gradientAccumulation,
                                                    gradientClip: config.gradientClip, evaluationInterval: config.evalInterval),
                              schedule: schedule.callAsFunction)
        trainer.gradientHook = gradientHook
        trainer.lossHook = lossHook
        let bar = progress ? ProgressBar(total: config.iterations - optimizer.step, label: "gpt", unit: "it") : nil
        try trainer.run(progress: bar, rateUnit: "tok", loss: { step, micro in
            let (x, y) = batch(train, step: step, micro: micro, sharded: true)
            return TrainingLoss(Loss.crossEntropy(logits: model(x), targets: y), items: x.count)
        }, evaluate: { _ in
            let e = evaluate()
            history.append(e)
            onLog(e)
        }, checkpoint: { _ in try checkpoint(self) })
        evaluationSeconds += trainer.evaluationSeconds
    }

    /// Saves model, optimizer state, step, model config and `extra` metadata (e.g. the tokenizer).
    public func save(to path: String, extra: [String: String] = [:]) throws {
        var meta = extra
        meta["gpt_config"] = String(decoding: try JSONEncoder().encode(model.config), as: UTF8.self)
        meta["training_config"] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        meta["history"] = String(decoding: try JSONEncoder().encode(history), as: UTF8.self)
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, to: path, metadata: meta)
    }

    /// Restores a checkpoint written by `save`; fails clearly when it was made for another model shape.
    public func resume(from path: String) throws {
        let meta = try Safetensors.read(path).metadata
        if let text = meta["gpt_config"], let saved = try? JSONDecoder().decode(GPTConfig.self, from: Data(text.utf8)), saved != model.config {
            throw AttendError("\(path): the checkpoint is for a different model (\(saved)), not \(model.config)")
        }
        try TrainingCheckpoint.load(model: model, optimizer: optimizer, from: path)
        if let h = meta["history"], let saved = try? JSONDecoder().decode([GPTEvaluation].self, from: Data(h.utf8)) { history = saved }
    }

    /// Samples `count` tokens after `context` (temperature and top-k, as nanoGPT's sample.py), through the
    /// generation engine with a KV cache. Past the context, the model re-reads the last half of the text and goes
    /// on (nanoGPT re-reads the whole window for every token).
    public static func sample(model: GPTModel, context: [Int32], count: Int, temperature: Float = 0.8, topK: Int? = 200,
                              seed: UInt64 = 1) -> [Int32] {
        guard count > 0 else { return [] }
        model.eval()
        var options = SamplingOptions()
        options.temperature = temperature
        options.topK = topK
        options.seed = seed
        options.maxTokens = count
        options.contextShift = true
        let prompt = Array((context.isEmpty ? [0] : context).suffix(model.config.contextLength - 1))
        var out: [Int32] = []
        do {
            _ = try Generation.decode(model: model, input: LMInput(prompt), options: options, eosId: nil) { out.append($0); return true }
        } catch {
            preconditionFailure("GPT sampling: \(error)")  // the prompt was cut to the context and its ids come from the model's tokenizer
        }
        return out
    }
}

/// The tokenizer of a model trained here (GPT, BERT): characters (nanoGPT's shakespeare_char) or a byte-level BPE trained
/// on the corpus. It travels in the checkpoint's metadata.
///
/// ```swift
/// let tokenizer = TrainedTokenizer.characters(CharacterTokenizer(text: text))
/// try trainer.save(to: "gpt.safetensors", extra: tokenizer.metadata)
/// let restored = try TrainedTokenizer(metadata: try Safetensors.read("gpt.safetensors").metadata, source: "gpt.safetensors")
/// ```
public enum TrainedTokenizer: TextTokenizer {
    case characters(CharacterTokenizer)
    case bpe(ByteLevelBPETokenizer)

    public var count: Int {
        switch self {
        case .characters(let t): return t.count
        case .bpe(let t): return t.tokens.count
        }
    }

    public func encode(_ text: String) throws -> [Int32] {
        switch self {
        case .characters(let t): return try t.encode(text)
        case .bpe(let t): return t.encode(text)
        }
    }

    public func decode(_ ids: [Int32]) -> String {
        switch self {
        case .characters(let t): return t.decode(ids)
        case .bpe(let t): return t.decode(ids)
        }
    }

    public func encode(_ text: String, allowSpecial: Bool) throws -> [Int32] { try encode(text) }
    public func bytes(_ ids: [Int32]) -> [UInt8] { Array(decode(ids).utf8) }
    public var bosId: Int32? { nil }
    public var eosId: Int32? { nil }
    public var vocabularyCount: Int { count }

    public var metadata: [String: String] {
        switch self {
        case .characters(let t): return ["tokenizer": "characters", "characters": String(t.characters)]
        case .bpe(let t):
            let tokens = String(decoding: (try? JSONSerialization.data(withJSONObject: t.tokens)) ?? Data("[]".utf8), as: UTF8.self)
            return ["tokenizer": "bpe", "bpe_tokens": tokens, "bpe_merges": t.merges.joined(separator: "\n"),
                    "bpe_special_ids": t.specialTokenIds.map(String.init).joined(separator: ",")]
        }
    }

    public init(metadata m: [String: String], source: String) throws {
        switch m["tokenizer"] ?? "characters" {
        case "characters":
            guard let chars = m["characters"] else { throw AttendError("\(source): metadata 'characters' is missing") }
            self = .characters(CharacterTokenizer(characters: Array(chars)))
        case "bpe":
            guard let tokensText = m["bpe_tokens"], let tokens = (try? JSONSerialization.jsonObject(with: Data(tokensText.utf8))) as? [String],
                  let merges = m["bpe_merges"] else {
                throw AttendError("\(source): metadata 'bpe_tokens' or 'bpe_merges' is missing or does not parse")
            }
            let specials = (m["bpe_special_ids"] ?? "").split(separator: ",").compactMap { Int32($0) }.filter { Int($0) < tokens.count }
            self = .bpe(try ByteLevelBPETokenizer(tokens: tokens, merges: merges.isEmpty ? [] : merges.components(separatedBy: "\n"),
                                                  specialTokenIds: specials, eosId: specials.first))
        case let other:
            throw AttendError("\(source): tokenizer '\(other)' is not one Attend writes (characters, bpe)")
        }
    }
}
