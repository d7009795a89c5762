// Reverse-mode automatic differentiation. Each differentiable op records an `Op` and its inputs on the
// result; `backward()` walks the graph in reverse topological order. Every derivative rule lives in
// `GradNode.inputGradients` below, one case per op, each checked by a finite-difference test.

import Foundation

/// Whether ops record gradient history. Turn it off for inference with `withNoGrad`.
///
/// The switch is task-local (and thread-local outside tasks), not process-wide: two generations or
/// requests running at once in one process each see their own setting.
///
/// ```swift
/// let y = withNoGrad { model(x) }      // records nothing
/// GradMode.isEnabled                    // true again here
/// ```
public enum GradMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording gradient history (inference, optimizer updates).
@discardableResult
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.$isEnabled.withValue(false) { try body() }
}

/// Runs `body` with gradient recording on, inside code that turned it off.
@discardableResult
public func withGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.$isEnabled.withValue(true) { try body() }
}

/// The differentiable primitives. Composite ops (layer norm, cross-entropy, attention) are built from these.
enum Op {
    case copy
    case add, sub, mul, div
    case neg, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, relu6, gelu, geluTanh, silu, abs
    case pow(Float)
    case sum(keptShape: [Int])
    case max(axis: Int, argmax: [Int32])
    case reshape, permute([Int]), expand
    case slice(axis: Int, start: Int, step: Int)
    case concat(axis: Int)
    case matmul
    case softmax(axis: Int), logSoftmax(axis: Int)
    case indexSelect(IntTensor)
    case gather(axis: Int, IntTensor)
    case maskedFill(Tensor)
    case conv2d(Conv2dGeometry)
    case maxPool2d(argmax: [Int32])
    case avgPool2d(kernel: Int, stride: Int)
    case upsampleNearest2d(scale: Int)
    case layerNorm(statistics: [Float])
    case rmsNorm(rstd: [Float])
    case rotaryPairs(cos2: [Float], sin2: [Float])
    case swiglu
    case softmaxCrossEntropy(targets: [Int32], weights: [Float], logSumExp: [Float], smoothing: Float, scale: Float)
    case selfAttention(causal: Bool, keyLengths: [Int], logSumExp: [Float])
    case packedSelfAttention(heads: Int, causal: Bool, keyLengths: [Int], logSumExp: [Float])
}

final class GradNode {
    let op: Op
    let inputs: [Tensor]

    init(op: Op, inputs: [Tensor]) {
        self.op = op
        self.inputs = inputs
    }

    /// Gradients of the loss with respect to each input, given the output `y` and its gradient `g`.
    /// Runs with gradient recording off; a nil entry means that input needs none.
    func inputGradients(output y: Tensor, gradient g: Tensor) -> [Tensor?] {
        let x = inputs
        switch op {
        case .copy, .reshape:
            return [g.reshape(x[0].shape)]
        case .add:
            return [g.sum(toShape: x[0].shape), g.sum(toShape: x[1].shape)]
        case .sub:
            return [g.sum(toShape: x[0].shape), (-g).sum(toShape: x[1].shape)]
        case .mul:
            return [needs(0) ? (g * x[1]).sum(toShape: x[0].shape) : nil,
                    needs(1) ? (g * x[0]).sum(toShape: x[1].shape) : nil]
        case .div:
            return [needs(0) ? (g / x[1]).sum(toShape: x[0].shape) : nil,
                    needs(1) ? (-g * y / x[1]).sum(toShape: x[1].shape) : nil]
        case .neg: return [-g]
        case .exp: return [g * y]
        case .log: return [g / x[0]]
        case .sqrt: return [g * 0.5 / y]
        case .rsqrt: return [g * -0.5 * y * y * y]
        case .tanh: return [g * (1 - y * y)]
        case .sigmoid: return [g * y * (1 - y)]
        case .relu: return [Kernels.binary(g, x[0], ReLUGrad.self)]
        case .relu6: return [Kernels.binary(g, x[0], ReLU6Grad.self)]
        case .gelu: return [Tensor.geluBackward(g, x[0])]
        case .geluTanh: return [Tensor.geluTanhBackward(g, x[0])]
        case .silu: return [Kernels.binary(g, x[0], SiLUGrad.self)]
        case .abs: return [Kernels.binary(g, x[0], AbsGrad.self)]
        case .pow(let p): return [g * p * x[0].pow(p - 1)]
        case .sum(let keptShape):
            return [g.reshape(keptShape).expand(to: x[0].shape)]
        case .max(let axis, let argmax):
            return [Reductions.scatterMax(g, argmax: argmax, axis: axis, inputShape: x[0].shape)]
        case .permute(let order):
            var inverse = [Int](repeating: 0, count: order.count)
            for (i, o) in order.enumerated() { inverse[o] = i }
            return [g.permute(inverse)]
        case .expand:
            return [g.sum(toShape: x[0].shape)]
        case .slice(let axis, let start, let step):
            let full = Tensor.zeros(x[0].shape)
            full.slice(axis: axis, start: start, length: g.shape[axis], step: step).assign(g)
            return [full]
        case .concat(let axis):
            var start = 0
            return x.map { input in
                defer { start += input.shape[axis] }
                return g.slice(axis: axis, start: start, length: input.shape[axis])
            }
        case .matmul:
            let (a, b) = (x[0], x[1])
            if b.rank == 2 && a.rank >= 2 {
                // A batch folded into rows: one GEMM per gradient instead of a batched product plus a sum. When b is
                // a transposed view (x W^T, every Linear), its gradient is made as (g^T x)^T, so that what reaches W
                // through the transpose is contiguous in W's own layout and W keeps it without a transposing copy
                // (4% of a CLIP step at width 512).
                let k = a.shape[a.rank - 1], n = b.shape[1]
                let (a2, g2) = (a.reshape([-1, k]), g.reshape([-1, n]))
                return [needs(0) ? g.matmul(b.transposed(0, 1)) : nil,
                        needs(1) ? (b.isTransposedMatrix ? g2.transposed(0, 1).matmul(a2).transposed(0, 1)
                                                         : a2.transposed(0, 1).matmul(g2)) : nil]
            }
            return [needs(0) ? g.matmul(b.transposed(-1, -2)).sum(toShape: a.shape) : nil,
                    needs(1) ? a.transposed(-1, -2).matmul(g).sum(toShape: b.shape) : nil]
        case .softmax(let axis):
            return [y * (g - (g * y).sum(axes: [axis], keepDims: true))]
        case .logSoftmax(let axis):
            return [g - y.exp() * g.sum(axes: [axis], keepDims: true)]
        case .indexSelect(let ids):
            return [Indexing.indexAdd(rowsOf: x[0].shape, ids: ids, values: g)]
        case .gather(let axis, let indices):
            return [Indexing.scatterAdd(shape: x[0].shape, axis: axis, indices: indices, values: g)]
        case .maskedFill(let mask):
            return [g.maskedFill(mask, 0).sum(toShape: x[0].shape)]
        case .conv2d(let geometry):
            let (dx, dw, db) = Convolution.backward(g, input: x[0], weight: x[1], geometry: geometry,
                                                    needInput: needs(0), needWeight: needs(1))
            return x.count == 3 ? [dx, dw, needs(2) ? db : nil] : [dx, dw]
        case .maxPool2d(let argmax):
            return [Pooling.maxPoolBackward(g, argmax: argmax, inputShape: x[0].shape)]
        case .avgPool2d(let kernel, let stride):
            return [Pooling.avgPoolBackward(g, inputShape: x[0].shape, kernel: kernel, stride: stride)]
        case .upsampleNearest2d(let scale):
            return [Pooling.upsampleNearestBackward(g, scale: scale)]
        case .layerNorm(let statistics):
            let (dx, dw, db) = Normalization.layerNormBackward(g, input: x[0], weight: x[1], statistics: statistics, hasBias: x.count == 3)
            return x.count == 3 ? [dx, dw, db] : [dx, dw]
        case .rmsNorm(let rstd):
            let (dx, dw) = Normalization.rmsNormBackward(g, input: x[0], weight: x[1], rstd: rstd)
            return [dx, dw]
        case .rotaryPairs(let cos2, let sin2):
            return [Tensor.rotaryPairsBackward(g, cos2: cos2, sin2: sin2)]
        case .swiglu:
            let (da, db) = SwiGLU.backward(g, gate: x[0], up: x[1])
            return [da, db]
        case .softmaxCrossEntropy(let targets, let weights, let logSumExp, let smoothing, let scale):
            return [SoftmaxCrossEntropy.backward(g, logits: x[0], targets: targets, weights: weights, logSumExp: logSumExp,
                                                 smoothing: smoothing, scale: scale)]
        case .selfAttention(let causal, let keyLengths, let logSumExp):
            let (dq, dk, dv) = AttentionTraining.backward(g, query: x[0], key: x[1], value: x[2], output: y, causal: causal,
                                                          keyLengths: keyLengths, logSumExp: logSumExp)
            return [dq, dk, dv]
        case .packedSelfAttention(let heads, let causal, let keyLengths, let logSumExp):
            return [AttentionTraining.backward(g, packed: x[0], heads: heads, output: y, causal: causal, keyLengths: keyLengths,
                                               logSumExp: logSumExp)]
        }
    }

    private func needs(_ i: Int) -> Bool { inputs[i].requiresGrad }
}

extension Tensor {
    /// A matrix stored column by column (a transposed view of a row-major one), both dimensions above 1.
    var isTransposedMatrix: Bool { rank == 2 && shape[0] > 1 && shape[1] > 1 && strides[0] == 1 && strides[1] >= shape[0] }
}

extension Tensor {
    /// Attaches `op` as this result's history when recording is on and some input requires gradients.
    @inline(__always)
    func recording(_ op: @autoclosure () -> Op, inputs: [Tensor]) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            requiresGrad = true
            node = GradNode(op: op(), inputs: inputs)
        }
        return self
    }

    /// Back-propagates from this tensor. A non-scalar tensor needs the gradient of the loss with respect to it.
    /// Gradients accumulate into `grad` of every leaf that requires them.
    public func backward(_ gradient: Tensor? = nil) {
        precondition(requiresGrad, "backward() on a tensor that does not require gradients")
        precondition(gradient != nil || count == 1, "backward() without a gradient needs a scalar, got shape \(shape)")
        let seed = gradient ?? Tensor(shape: shape, repeating: 1)

        // Reverse topological order by an iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if visited.contains(ObjectIdentifier(t)) { continue }
            visited.insert(ObjectIdentifier(t))
            stack.append((t, true))
            for input in t.node?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }

        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        // Storages a leaf's gradient may not take over: the caller's seed, and each one already taken by a leaf.
        var shared: Set<ObjectIdentifier> = gradient.map { [ObjectIdentifier($0.storage)] } ?? []
        withNoGrad {
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                guard let node = t.node else {
                    t.accumulateGrad(g, shared: &shared)
                    continue
                }
                let inputGrads = node.inputGradients(output: t, gradient: g)
                for (input, ig) in zip(node.inputs, inputGrads) where input.requiresGrad {
                    guard let ig else { continue }
                    precondition(ig.shape == input.shape, "gradient shape \(ig.shape) != input shape \(input.shape) for \(node.op)")
                    let key = ObjectIdentifier(input)
                    grads[key] = grads[key].map { $0 + ig } ?? ig
                }
            }
        }
    }

    /// Adds `g` into `grad`. Gradients own their memory, since optimizers and clipping update them in place: a
    /// gradient that fills a storage no other leaf took and the caller did not pass is kept as it is; anything else
    /// (a view, a storage already taken, the seed) is copied. The gradients the backward pass computes are
    /// fresh tensors, read and never written by the ops before them, so the copy was only memory traffic. With a
    /// `Linear`'s weight gradient made in the weight's own layout (`.matmul` below), copying gradients no longer
    /// takes the 4% of a CLIP step at width 512 it took.
    func accumulateGrad(_ g: Tensor, shared: inout Set<ObjectIdentifier>) {
        if let existing = grad {
            grad = withNoGrad { existing + g }
        } else if g.isContiguous && g.offset == 0 && g.count == g.storage.count
                    && shared.insert(ObjectIdentifier(g.storage)).inserted {
            grad = g
        } else {
            grad = g.copy()
        }
    }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }
}
