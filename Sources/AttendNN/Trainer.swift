// The training loop every model here shares: micro-batches with gradient accumulation, clipping, a
// learning-rate schedule, a hook that sees the gradients before each optimizer step (data-parallel training
// averages them there), periodic evaluation and checkpoints, a progress bar with a rate, the loss curve, and
// checkpoints that resume exactly (the optimizer's step picks the batch, so a resumed run draws the same ones).

import AttendTensor
import Foundation

/// How long to train and how: steps, accumulation, clipping and the cadence of evaluation.
public struct TrainerConfig: Codable, Equatable {
    /// Optimizer steps in all (a resumed run continues to this number).
    public var steps: Int
    /// Micro-batches whose gradients add up to one step (each loss is scaled by 1/n).
    public var gradientAccumulation = 1
    /// Clip the global gradient norm to this; 0 turns clipping off.
    public var gradientClip: Float = 0
    /// Call `evaluate` every this many steps and after the last (nil: only after the last).
    public var evaluationInterval: Int?
    /// Call `checkpoint` every this many steps and after the last (nil: right after each evaluation).
    public var checkpointInterval: Int?

    public init(steps: Int, gradientAccumulation: Int = 1, gradientClip: Float = 0, evaluationInterval: Int? = nil,
                checkpointInterval: Int? = nil) {
        self.steps = steps
        self.gradientAccumulation = gradientAccumulation
        self.gradientClip = gradientClip
        self.evaluationInterval = evaluationInterval
        self.checkpointInterval = checkpointInterval
    }

    /// A clear error for values the loop cannot run with.
    public func validate() throws {
        guard steps >= 0 else { throw AttendError("training steps must be at least 0, got \(steps)") }
        guard gradientAccumulation >= 1 else { throw AttendError("gradient accumulation must be at least 1, got \(gradientAccumulation)") }
        guard gradientClip.isFinite, gradientClip >= 0 else { throw AttendError("gradient clip must be finite and >= 0, got \(gradientClip)") }
        if let e = evaluationInterval, e < 1 { throw AttendError("the evaluation interval must be at least 1, got \(e)") }
        if let c = checkpointInterval, c < 1 { throw AttendError("the checkpoint interval must be at least 1, got \(c)") }
    }
}

/// One micro-batch's loss and how many items (tokens, images, examples) it covered, for the rate shown.
public struct TrainingLoss {
    public var loss: Tensor
    public var items: Int
    public init(_ loss: Tensor, items: Int) {
        self.loss = loss
        self.items = items
    }
}

/// The shared training loop.
///
/// ```swift
/// let optimizer = Adam.decayingMatrices(of: model, learningRate: 1e-3, weightDecay: 0.1)
/// let trainer = Trainer(model: model, optimizer: optimizer, config: TrainerConfig(steps: 1000, gradientClip: 1),
///                       schedule: { WarmupCosineSchedule(peak: 1e-3, warmupSteps: 100, totalSteps: 1000)($0) })
/// trainer.gradientHook = { parameters in /* all-reduce the gradients here */ }
/// try trainer.run(progress: ProgressBar(total: 1000, label: "train")) { step, micro in
///     let (x, y) = batch(step, micro)
///     return TrainingLoss(Loss.crossEntropy(logits: model(x), targets: y), items: x.count)
/// }
/// ```
public final class Trainer {
    public let model: Module
    public let optimizer: Optimizer
    public let config: TrainerConfig
    /// The learning rate for a 0-based step.
    public var schedule: (Int) -> Float
    /// Called with the trained parameters once their gradients are complete, before clipping and the optimizer
    /// step; whatever it leaves in `grad` is what is clipped and applied. Data-parallel training averages the
    /// gradients over processes here, so the clip sees the global batch's gradient, as a single process would.
    public var gradientHook: (([(name: String, tensor: Tensor)]) throws -> Void)?
    /// Maps each step's loss before it is recorded and shown (data-parallel training: the mean over processes).
    public var lossHook: ((Float) throws -> Float)?
    /// (step, mean loss of that step), one entry per step: the loss curve.
    public private(set) var lossHistory: [(step: Int, loss: Float)] = []
    /// Seconds spent in `evaluate` callbacks (so training time can be reported alone).
    public private(set) var evaluationSeconds: Double = 0
    private let parameters: [(name: String, tensor: Tensor)]

    public init(model: Module, optimizer: Optimizer, config: TrainerConfig, schedule: @escaping (Int) -> Float) {
        self.model = model
        self.optimizer = optimizer
        self.config = config
        self.schedule = schedule
        parameters = model.namedParameters()
    }

    public var step: Int { optimizer.step }

    /// Trains from `optimizer.step` to `config.steps`. `loss(step, micro)` builds one micro-batch's loss;
    /// `evaluate(step)` runs at each evaluation point (the model in evaluation mode, no gradients), then
    /// `checkpoint(step)`. The progress bar shows the step's loss and the rate in `rateUnit` per second.
    public func run(progress: ProgressBar? = nil, rateUnit: String = "items", loss: (_ step: Int, _ micro: Int) throws -> TrainingLoss,
                    evaluate: (_ step: Int) throws -> Void = { _ in }, checkpoint: (_ step: Int) throws -> Void = { _ in }) throws {
        try config.validate()
        model.train()
        let started = Date()
        var items = 0
        let scale = 1 / Float(config.gradientAccumulation)
        while optimizer.step < config.steps {
            let step = optimizer.step
            model.zeroGrad()
            var stepLoss: Float = 0
            for micro in 0..<config.gradientAccumulation {
                let l = try loss(step, micro)
                let scaled = config.gradientAccumulation == 1 ? l.loss : l.loss * scale
                scaled.backward()
                stepLoss += scaled.item
                items += l.items
            }
            try gradientHook?(parameters)
            if config.gradientClip > 0 { clipGradientNorm(parameters.map(\.tensor), maxNorm: config.gradientClip) }
            if let lossHook { stepLoss = try lossHook(stepLoss) }
            optimizer.learningRate = schedule(step)
            optimizer.update()
            lossHistory.append((optimizer.step, stepLoss))
            let rate = Double(items) / max(Date().timeIntervalSince(started), 1e-9)
            progress?.advance(1, status: String(format: "loss %.4f, %.0f \(rateUnit)/s", stepLoss, rate))
            let last = optimizer.step == config.steps
            let evaluating = last || config.evaluationInterval.map { optimizer.step % $0 == 0 } == true
            if evaluating {
                let t = Date()
                model.eval()
                try withNoGrad { try evaluate(optimizer.step) }
                model.train()
                evaluationSeconds += Date().timeIntervalSince(t)
            }
            if last || (config.checkpointInterval.map { optimizer.step % $0 == 0 } ?? evaluating) { try checkpoint(optimizer.step) }
        }
    }

    /// The mean loss of the last `n` steps.
    public func recentLoss(_ n: Int) -> Float {
        let tail = lossHistory.suffix(max(n, 1))
        return tail.isEmpty ? .nan : tail.map(\.loss).reduce(0, +) / Float(tail.count)
    }

    /// Saves the model, the optimizer state and its step, with `metadata`, to resume exactly.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, to: path, metadata: metadata)
    }

    /// Restores a checkpoint written by `save`; returns its metadata.
    @discardableResult
    public func resume(from path: String) throws -> [String: String] {
        try TrainingCheckpoint.load(model: model, optimizer: optimizer, from: path)
    }
}
