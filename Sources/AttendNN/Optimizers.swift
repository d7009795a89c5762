// Optimizers update parameters in place from their accumulated gradients. State tensors are exposed by
// name so a training checkpoint can hold them and training resumes exactly.

import AttendTensor
import CAttendKernels
import Foundation

/// An optimizer as the training loop drives it: a learning rate to schedule, the step count, one update from
/// the gradients, and state tensors a checkpoint holds so training resumes exactly.
///
/// ```swift
/// let optimizer: Optimizer = AdamW(parameters: model.namedParameters(), learningRate: 3e-4, weightDecay: 0.01)
/// Loss.crossEntropy(logits: model(x), targets: y).backward()
/// optimizer.learningRate = schedule(optimizer.step)
/// optimizer.update()
/// model.zeroGrad()
/// ```
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// Updates taken so far.
    var step: Int { get set }
    /// Applies one update using each parameter's `grad` (parameters without a gradient are skipped).
    func update()
    /// Per-parameter state as "parameterName.slot" -> tensor.
    func stateTensors() -> [(name: String, tensor: Tensor)]
    /// Restores state saved by `stateTensors()`; throws naming a missing or mis-shaped slot.
    func loadState(_ tensors: [String: Tensor]) throws
}

extension Optimizer {
    public func loadState(from tensors: [String: Tensor], source: String) throws {
        do { try loadState(tensors) } catch let e as AttendError { throw AttendError("\(source): \(e.message)") }
    }
}

/// Stochastic gradient descent with optional momentum and (coupled) weight decay.
public final class SGD: Optimizer {
    public let parameters: [(name: String, tensor: Tensor)]
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    public var step = 0
    private var velocity: [Tensor]

    public init(parameters: [(name: String, tensor: Tensor)], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        velocity = parameters.map { Tensor.zeros($0.tensor.shape) }
    }

    public func update() {
        step += 1
        for (i, (_, p)) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let pp = p.pointer, gp = g.pointer, vp = velocity[i].pointer
            let (lr, mu, wd) = (learningRate, momentum, weightDecay)
            for j in 0..<p.count {
                let d = gp[j] + wd * pp[j]
                let v = mu * vp[j] + d
                vp[j] = v
                pp[j] -= lr * (mu == 0 ? d : v)
            }
        }
    }

    public func stateTensors() -> [(name: String, tensor: Tensor)] {
        zip(parameters, velocity).map { ("\($0.0.name).momentum", $0.1) }
    }

    public func loadState(_ tensors: [String: Tensor]) throws {
        for (i, (name, p)) in parameters.enumerated() {
            velocity[i] = try OptimizerState.slot(tensors, "\(name).momentum", shape: p.shape)
        }
    }
}

/// Adam (Kingma & Ba) or, with `decoupledWeightDecay`, AdamW (Loshchilov & Hutter).
public final class Adam: Optimizer {
    public let parameters: [(name: String, tensor: Tensor)]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    /// Parameters that get no weight decay (GPT training exempts biases and norms).
    public var decayExempt: Set<String> = []
    public var step = 0
    private var firstMoment: [Tensor]
    private var secondMoment: [Tensor]

    public init(parameters: [(name: String, tensor: Tensor)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        firstMoment = parameters.map { Tensor.zeros($0.tensor.shape) }
        secondMoment = parameters.map { Tensor.zeros($0.tensor.shape) }
    }

    public func update() {
        step += 1
        let (b1, b2, eps, lr) = (beta1, beta2, self.eps, learningRate)
        let correction1 = 1 - Foundation.pow(b1, Float(step)), correction2 = 1 - Foundation.pow(b2, Float(step))
        let stepSize = lr / correction1
        let decoupled = decoupledWeightDecay
        for (i, (name, p)) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let wd = decayExempt.contains(name) ? 0 : weightDecay
            let pp = p.pointer, gp = g.pointer, mp = firstMoment[i].pointer, vp = secondMoment[i].pointer
            Parallel.forRanges(p.count, costPerItem: 8) { r in
                let o = r.lowerBound
                attend_adam_step(pp + o, gp + o, mp + o, vp + o, r.count, lr, b1, b2, eps, wd, decoupled ? 1 : 0, stepSize, 1 / correction2)
            }
        }
    }

    public func stateTensors() -> [(name: String, tensor: Tensor)] {
        parameters.indices.flatMap { i in
            [("\(parameters[i].name).exp_avg", firstMoment[i]), ("\(parameters[i].name).exp_avg_sq", secondMoment[i])]
        }
    }

    public func loadState(_ tensors: [String: Tensor]) throws {
        for (i, (name, p)) in parameters.enumerated() {
            firstMoment[i] = try OptimizerState.slot(tensors, "\(name).exp_avg", shape: p.shape)
            secondMoment[i] = try OptimizerState.slot(tensors, "\(name).exp_avg_sq", shape: p.shape)
        }
    }
}

extension Adam {
    /// AdamW over `module`'s parameters with weight decay on matrices only (embeddings included): biases and
    /// norm gains (rank < 2) are exempt, as in GPT-2, BERT and nanoGPT. Decayed parameters come first.
    ///
    /// ```swift
    /// let optimizer = Adam.decayingMatrices(of: model, learningRate: 1e-3, beta2: 0.99, weightDecay: 0.1)
    /// ```
    public static func decayingMatrices(of module: Module, learningRate: Float, beta2: Float = 0.999, weightDecay: Float) -> Adam {
        let decayed = module.namedParameters().filter { $0.tensor.rank >= 2 }
        let plain = module.namedParameters().filter { $0.tensor.rank < 2 }
        let optimizer = Adam(parameters: decayed + plain, learningRate: learningRate, beta2: beta2, weightDecay: weightDecay,
                             decoupledWeightDecay: true)
        optimizer.decayExempt = Set(plain.map(\.name))
        return optimizer
    }
}

/// AdamW: Adam with decoupled weight decay.
public func AdamW(parameters: [(name: String, tensor: Tensor)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                  beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) -> Adam {
    Adam(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps,
         weightDecay: weightDecay, decoupledWeightDecay: true)
}

enum OptimizerState {
    static func slot(_ tensors: [String: Tensor], _ name: String, shape: [Int]) throws -> Tensor {
        guard let t = tensors[name] else { throw AttendError("optimizer state '\(name)' is missing") }
        guard t.shape == shape else { throw AttendError("optimizer state '\(name)' has shape \(t.shape), expected \(shape)") }
        return t.copy()
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`. Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters {
        guard let g = p.grad else { continue }
        let gp = g.pointer
        for j in 0..<g.count { total += Double(gp[j]) * Double(gp[j]) }
    }
    let norm = Float(total.squareRoot())
    if norm > maxNorm {
        let scale = maxNorm / (norm + 1e-6)
        for p in parameters {
            guard let g = p.grad else { continue }
            let gp = g.pointer
            for j in 0..<g.count { gp[j] *= scale }
        }
    }
    return norm
}

/// Learning rate with linear warmup then cosine decay to `minimum` (nanoGPT's schedule).
public struct WarmupCosineSchedule: Codable, Equatable {
    public var peak: Float
    public var minimum: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, minimum: Float = 0, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.minimum = minimum
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The rate for 0-based `step`.
    public func callAsFunction(_ step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        if step >= totalSteps { return minimum }
        let progress = Float(step - warmupSteps) / Float(Swift.max(1, totalSteps - warmupSteps))
        return minimum + 0.5 * (1 + Foundation.cos(.pi * progress)) * (peak - minimum)
    }
}

/// BERT's and GPT-1's fine-tuning schedule: linear warmup over the first `warmupSteps`, then linear decay to zero
/// at `totalSteps`.
///
/// ```swift
/// let schedule = WarmupLinearSchedule(peak: 3e-4, warmupSteps: 100, totalSteps: 1000)
/// schedule(0)      // 3e-6
/// schedule(550)    // 1.5e-4
/// ```
public struct WarmupLinearSchedule: Codable, Equatable {
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The rate for 0-based `step`.
    public func callAsFunction(_ step: Int) -> Float {
        step < warmupSteps ? peak * Float(step + 1) / Float(Swift.max(warmupSteps, 1))
            : peak * Swift.max(0, Float(totalSteps - step) / Float(Swift.max(totalSteps - warmupSteps, 1)))
    }
}

