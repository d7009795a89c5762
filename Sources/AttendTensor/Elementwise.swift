// Elementwise arithmetic and activations with NumPy broadcasting.

import CAttendKernels
import Foundation

enum AddF: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum SubF: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum MulF: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum DivF: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
enum MaskFillZero: BinaryFunction {
    @inline(__always) static func apply(_ a: Float, _ mask: Float) -> Float { mask != 0 ? 0 : a }
}

enum NegF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { -x } }
enum LogF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { Foundation.log(x) } }
enum ExpF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { Foundation.exp(x) } }
enum SqrtF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { x.squareRoot() } }
enum RsqrtF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { 1 / x.squareRoot() } }
enum TanhF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { Foundation.tanh(x) } }
enum AbsF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { Swift.abs(x) } }
enum SigmoidF: UnaryFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
}
enum ReLUF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { x > 0 ? x : 0 } }
enum ReLU6F: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { Swift.min(Swift.max(x, 0), 6) } }
enum SiLUF: UnaryFunction { @inline(__always) static func apply(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) } }
/// GELU with the exact Gaussian CDF (BERT, PyTorch's default).
enum GELUF: UnaryFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { 0.5 * x * (1 + erf(x * 0.70710678118654752)) }
}
/// GELU with the tanh approximation (GPT-2's "gelu_new").
enum GELUTanhF: UnaryFunction {
    @inline(__always) static func apply(_ x: Float) -> Float {
        0.5 * x * (1 + Foundation.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    }
}

// Derivatives that need the input, as (upstream gradient, input) -> input gradient.
enum ReLUGrad: BinaryFunction { @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float { x > 0 ? g : 0 } }
enum ReLU6Grad: BinaryFunction { @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float { x > 0 && x < 6 ? g : 0 } }
enum AbsGrad: BinaryFunction {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float { x > 0 ? g : (x < 0 ? -g : 0) }
}
enum SiLUGrad: BinaryFunction {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float {
        let s = 1 / (1 + Foundation.exp(-x))
        return g * s * (1 + x * (1 - s))
    }
}
enum GELUGrad: BinaryFunction {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float {
        let cdf = 0.5 * (1 + erf(x * 0.70710678118654752))
        let pdf = Foundation.exp(-0.5 * x * x) * 0.3989422804014327
        return g * (cdf + x * pdf)
    }
}
enum GELUTanhGrad: BinaryFunction {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float {
        let k: Float = 0.7978845608028654
        let u = k * (x + 0.044715 * x * x * x)
        let t = Foundation.tanh(u)
        let du = k * (1 + 3 * 0.044715 * x * x)
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
    }
}

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor { Kernels.binary(a, b, AddF.self).recording(.add, inputs: [a, b]) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { Kernels.binary(a, b, SubF.self).recording(.sub, inputs: [a, b]) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { Kernels.binary(a, b, MulF.self).recording(.mul, inputs: [a, b]) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { Kernels.binary(a, b, DivF.self).recording(.div, inputs: [a, b]) }
    public static prefix func - (a: Tensor) -> Tensor { Kernels.unary(a, NegF.self).recording(.neg, inputs: [a]) }

    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(b) }
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(a) + b }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(b) }
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(a) - b }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(b) }
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(a) * b }
    public static func / (a: Tensor, b: Float) -> Tensor { a * Tensor(1 / b) }
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(a) / b }

    public func exp() -> Tensor {
        let out: Tensor
        if isContiguous {
            out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
            Backend.current.exp(pointer, out.pointer, count: count)
        } else {
            out = Kernels.unary(self, ExpF.self)
        }
        return out.recording(.exp, inputs: [self])
    }

    public func log() -> Tensor { Kernels.unary(self, LogF.self).recording(.log, inputs: [self]) }
    public func sqrt() -> Tensor { Kernels.unary(self, SqrtF.self).recording(.sqrt, inputs: [self]) }
    public func rsqrt() -> Tensor { Kernels.unary(self, RsqrtF.self).recording(.rsqrt, inputs: [self]) }
    public func tanh() -> Tensor { Kernels.unary(self, TanhF.self).recording(.tanh, inputs: [self]) }
    public func sigmoid() -> Tensor { Kernels.unary(self, SigmoidF.self).recording(.sigmoid, inputs: [self]) }
    public func relu() -> Tensor { Kernels.unary(self, ReLUF.self).recording(.relu, inputs: [self]) }
    /// min(max(x, 0), 6): MobileNet's and EfficientNet-Lite's activation (its gradient is 0 at and past both kinks).
    public func relu6() -> Tensor { Kernels.unary(self, ReLU6F.self).recording(.relu6, inputs: [self]) }
    public func silu() -> Tensor { Kernels.unary(self, SiLUF.self).recording(.silu, inputs: [self]) }
    public func abs() -> Tensor { Kernels.unary(self, AbsF.self).recording(.abs, inputs: [self]) }
    /// GELU; `approximate: true` uses the tanh form (GPT-2), false the exact erf form (BERT).
    public func gelu(approximate: Bool = false) -> Tensor {
        if approximate {
            guard isContiguous else { return Kernels.unary(self, GELUTanhF.self).recording(.geluTanh, inputs: [self]) }
            let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
            let src = pointer, dst = out.pointer
            Parallel.forRanges(count, costPerItem: 8) { r in attend_vgelu_tanh(src + r.lowerBound, dst + r.lowerBound, nil, nil, r.count) }
            return out.recording(.geluTanh, inputs: [self])
        }
        guard isContiguous else { return Kernels.unary(self, GELUF.self).recording(.gelu, inputs: [self]) }
        // The vectorized kernel, tested against GELUF (the libm composition).
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        let src = pointer, dst = out.pointer
        Parallel.forRanges(count, costPerItem: 8) { r in attend_vgelu(src + r.lowerBound, dst + r.lowerBound, r.count) }
        return out.recording(.gelu, inputs: [self])
    }
    public func square() -> Tensor { self * self }

    public func pow(_ p: Float) -> Tensor {
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        let source = contiguous()
        let src = source.pointer, dst = out.pointer
        withExtendedLifetime(source) {
            if p == 2 {
                for i in 0..<count { dst[i] = src[i] * src[i] }
            } else {
                for i in 0..<count { dst[i] = Foundation.pow(src[i], p) }
            }
        }
        return out.recording(.pow(p), inputs: [self])
    }

    /// Replaces elements where `mask` (broadcast to this shape) is non-zero by `value`.
    public func maskedFill(_ mask: Tensor, _ value: Float) -> Tensor {
        let shape = Shape.broadcast(self.shape, mask.shape)
        precondition(shape == self.shape, "maskedFill: mask shape \(mask.shape) does not broadcast to \(self.shape)")
        let filled = Kernels.binary(self, mask, MaskFillZero.self)
        if value != 0 {
            let m = mask.expand(to: shape).contiguous()
            let p = filled.pointer, mp = m.pointer
            for i in 0..<filled.count where mp[i] != 0 { p[i] = value }
        }
        return filled.recording(.maskedFill(mask.detached()), inputs: [self])
    }

    /// Elementwise choice: `a` where `condition` is non-zero, else `b`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let notCondition = withNoGrad { 1 - condition.ne(0) }
        return a.maskedFill(notCondition, 0) + b.maskedFill(condition.ne(0), 0)
    }

    // Comparisons give 0/1 tensors and carry no gradient.
    public func gt(_ v: Float) -> Tensor { compare { $0 > v } }
    public func ne(_ v: Float) -> Tensor { compare { $0 != v } }
    public func eq(_ v: Float) -> Tensor { compare { $0 == v } }
    public func lt(_ v: Float) -> Tensor { compare { $0 < v } }

    func compare(_ predicate: (Float) -> Bool) -> Tensor {
        let c = contiguous()
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        let src = c.pointer, dst = out.pointer
        for i in 0..<count { dst[i] = predicate(src[i]) ? 1 : 0 }
        return out
    }
}

extension Tensor {
    /// g * gelu'(x), vectorized when both are contiguous with the same shape (tested against GELUGrad).
    static func geluBackward(_ g: Tensor, _ x: Tensor) -> Tensor {
        guard g.shape == x.shape, g.isContiguous, x.isContiguous else { return Kernels.binary(g, x, GELUGrad.self) }
        let out = Tensor(contiguousStorage: TensorStorage(count: x.count, zeroed: false), shape: x.shape)
        let (gp, xp, dst) = (g.pointer, x.pointer, out.pointer)
        Parallel.forRanges(x.count, costPerItem: 8) { r in attend_vgelu_grad(xp + r.lowerBound, gp + r.lowerBound, dst + r.lowerBound, r.count) }
        return out
    }

    /// g * gelu_tanh'(x), vectorized when both are contiguous with the same shape (tested against GELUTanhGrad).
    static func geluTanhBackward(_ g: Tensor, _ x: Tensor) -> Tensor {
        guard g.shape == x.shape, g.isContiguous, x.isContiguous else { return Kernels.binary(g, x, GELUTanhGrad.self) }
        let out = Tensor(contiguousStorage: TensorStorage(count: x.count, zeroed: false), shape: x.shape)
        let (gp, xp, dst) = (g.pointer, x.pointer, out.pointer)
        Parallel.forRanges(x.count, costPerItem: 8) { r in
            attend_vgelu_tanh(xp + r.lowerBound, nil, gp + r.lowerBound, dst + r.lowerBound, r.count)
        }
        return out
    }
}

extension Tensor {
    /// SwiGLU's gate: silu(gate) * up, one pass forward and one backward (composed, silu, the product and their
    /// gradients were five passes over [tokens, intermediate]). Differentiable in both.
    public static func swiglu(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) differ")
        let (a, b) = (gate.contiguous(), up.contiguous())
        let out = Tensor(contiguousStorage: TensorStorage(count: a.count, zeroed: false), shape: a.shape)
        let (ap, bp, op) = (a.pointer, b.pointer, out.pointer)
        Parallel.forRanges(a.count, costPerItem: 16) { r in
            SwiGLU.sigmoids(ap + r.lowerBound, r.count) { i, s in op[r.lowerBound + i] = ap[r.lowerBound + i] * s * bp[r.lowerBound + i] }
        }
        return out.recording(.swiglu, inputs: [gate, up])
    }
}

enum SwiGLU {
    /// Calls body(i, sigmoid(x[i])) for i < n, the exponentials vectorized a block at a time.
    @inline(__always) static func sigmoids(_ x: UnsafePointer<Float>, _ n: Int, _ body: (Int, Float) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 512) { tmp in
            let t = tmp.baseAddress!
            var start = 0
            while start < n {
                let m = Swift.min(512, n - start)
                for i in 0..<m { t[i] = -x[start + i] }
                attend_vexp(t, t, m)
                for i in 0..<m { body(start + i, 1 / (1 + t[i])) }
                start += m
            }
        }
    }

    /// d gate = g up silu'(gate), d up = g silu(gate), with silu'(x) = s (1 + x (1 - s)).
    static func backward(_ g: Tensor, gate: Tensor, up: Tensor) -> (Tensor, Tensor) {
        let (gc, a, b) = (g.contiguous(), gate.contiguous(), up.contiguous())
        let da = Tensor(contiguousStorage: TensorStorage(count: a.count, zeroed: false), shape: a.shape)
        let db = Tensor(contiguousStorage: TensorStorage(count: a.count, zeroed: false), shape: a.shape)
        let (gp, ap, bp, dap, dbp) = (gc.pointer, a.pointer, b.pointer, da.pointer, db.pointer)
        Parallel.forRanges(a.count, costPerItem: 20) { r in
            let o = r.lowerBound
            sigmoids(ap + o, r.count) { i, s in
                let (x, gi) = (ap[o + i], gp[o + i])
                dap[o + i] = gi * bp[o + i] * s * (1 + x * (1 - s))
                dbp[o + i] = gi * x * s
            }
        }
        return (da, db)
    }
}
