// Reductions: sum, mean, max/argmax, and the fused softmax / log-softmax (checked against their
// composition from exp, max and sum in the tests).

import CAttendKernels
import Foundation

enum Reductions {
    /// Sum of n contiguous floats with 8 independent accumulators (faster and more accurate than one).
    @inline(__always)
    static func rowSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
        var i = 0
        while i + 8 <= n {
            acc.0 += p[i]; acc.1 += p[i + 1]; acc.2 += p[i + 2]; acc.3 += p[i + 3]
            acc.4 += p[i + 4]; acc.5 += p[i + 5]; acc.6 += p[i + 6]; acc.7 += p[i + 7]
            i += 8
        }
        var s = ((acc.0 + acc.1) + (acc.2 + acc.3)) + ((acc.4 + acc.5) + (acc.6 + acc.7))
        while i < n { s += p[i]; i += 1 }
        return s
    }

    /// Moves `axis` to the end and returns a contiguous tensor plus (rows, n).
    static func lastAxisRows(_ x: Tensor, axis: Int) -> (Tensor, rows: Int, n: Int) {
        var order = Array(0..<x.rank)
        order.remove(at: axis)
        order.append(axis)
        let moved = withNoGrad { (axis == x.rank - 1 ? x : x.permute(order)).contiguous() }
        let n = x.shape[axis]
        return (moved, moved.count / Swift.max(n, 1), n)
    }

    static func scatterMax(_ g: Tensor, argmax: [Int32], axis: Int, inputShape: [Int]) -> Tensor {
        var movedShape = inputShape
        let n = movedShape.remove(at: axis)
        movedShape.append(n)
        let moved = Tensor.zeros(movedShape)
        let gc = g.contiguous()
        let gp = gc.pointer, mp = moved.pointer
        for r in 0..<argmax.count { mp[r * n + Int(argmax[r])] = gp[r] }
        if axis == inputShape.count - 1 { return moved }
        var order = Array(0..<(inputShape.count - 1))
        order.insert(inputShape.count - 1, at: axis)
        return moved.permute(order).contiguous()
    }
}

extension Tensor {
    /// Sum over `axes` (all axes when empty).
    public func sum(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let axes = axes.isEmpty ? Array(0..<rank) : Array(Set(axes.map { axis($0) })).sorted()
        var keptShape = shape
        for a in axes { keptShape[a] = 1 }
        let outShape = keepDims ? keptShape : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        let n = axes.map { shape[$0] }.reduce(1, *)
        let rows = count / Swift.max(n, 1)
        let out = Tensor(shape: outShape)
        let op = out.pointer
        let isSuffix = axes == Array((rank - axes.count)..<rank)
        let isPrefix = axes == Array(0..<axes.count)
        if isContiguous && isPrefix && !isSuffix {
            // Column sums (e.g. a bias gradient over the batch): accumulate whole rows, split over columns.
            let src = pointer
            Parallel.forRanges(rows, costPerItem: n) { cols in
                for i in 0..<n {
                    let row = src + i * rows
                    for j in cols { op[j] += row[j] }
                }
            }
        } else {
            let source: Tensor
            if isContiguous && isSuffix {
                source = self
            } else {
                let kept = (0..<rank).filter { !axes.contains($0) }
                source = withNoGrad { permute(kept + axes).contiguous() }
            }
            let src = source.pointer
            Parallel.forRanges(rows, costPerItem: n) { r in
                for i in r { op[i] = Reductions.rowSum(src + i * n, n) }
            }
        }
        return out.recording(.sum(keptShape: keptShape), inputs: [self])
    }

    public func mean(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let n = axes.isEmpty ? count : Set(axes.map { axis($0) }).map { shape[$0] }.reduce(1, *)
        return sum(axes: axes, keepDims: keepDims) * (1 / Float(n))
    }

    /// Population variance over `axes`.
    public func variance(axes: [Int], keepDims: Bool = false) -> Tensor {
        let centered = self - mean(axes: axes, keepDims: true)
        return (centered * centered).mean(axes: axes, keepDims: keepDims)
    }

    /// Maximum along one axis; the gradient flows to the first maximal element.
    public func max(axis a: Int, keepDims: Bool = false) -> Tensor {
        let d = axis(a)
        let (moved, rows, n) = Reductions.lastAxisRows(self, axis: d)
        var outShape = shape
        if keepDims { outShape[d] = 1 } else { outShape.remove(at: d) }
        let out = Tensor(shape: outShape)
        var argmax = [Int32](repeating: 0, count: rows)
        let src = moved.pointer, op = out.pointer
        argmax.withUnsafeMutableBufferPointer { am in
            for r in 0..<rows {
                let row = src + r * n
                var best = row[0], bi = 0
                for i in 1..<Swift.max(n, 1) where row[i] > best { best = row[i]; bi = i }
                op[r] = best
                am[r] = Int32(bi)
            }
        }
        return out.recording(.max(axis: d, argmax: argmax), inputs: [self])
    }

    /// Index of the maximum along `axis` (not differentiable).
    public func argmax(axis a: Int = -1) -> IntTensor {
        let d = axis(a)
        let (moved, rows, n) = Reductions.lastAxisRows(self, axis: d)
        var outShape = shape
        outShape.remove(at: d)
        let src = moved.pointer
        let result = (0..<rows).map { r -> Int32 in
            let row = src + r * n
            var best = row[0], bi = 0
            for i in 1..<n where row[i] > best { best = row[i]; bi = i }
            return Int32(bi)
        }
        return IntTensor(result, shape: outShape)
    }

    /// Softmax along `axis`, computed stably (the row maximum is subtracted first).
    public func softmax(axis a: Int = -1) -> Tensor {
        softmaxKernel(axis: axis(a), log: false)
    }

    /// log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max))).
    public func logSoftmax(axis a: Int = -1) -> Tensor {
        softmaxKernel(axis: axis(a), log: true)
    }

    /// Softmax over the last axis where row i of the last two dimensions [Tq, Tk] sees keys 0 ... i + Tk - Tq
    /// only (causal attention): the same as masking the rest with -infinity, without the mask's passes, and
    /// without exponentials for the masked half. Differentiable (softmax's gradient: masked weights are zero).
    public func causalSoftmax() -> Tensor {
        precondition(rank >= 2, "causalSoftmax needs [..., Tq, Tk], got \(shape)")
        let (tq, n) = (shape[rank - 2], shape[rank - 1])
        let x = contiguous()
        let rows = count / Swift.max(n, 1)
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        let src = x.pointer, dst = out.pointer
        Parallel.forRanges(rows, costPerItem: n * 4) { range in
            var scratch = [Float](repeating: 0, count: n)
            scratch.withUnsafeMutableBufferPointer { buf in
                let tmp = buf.baseAddress!
                for r in range {
                    let (xr, y) = (src + r * n, dst + r * n)
                    let visible = Swift.max(0, Swift.min(n, r % tq + n - tq + 1))
                    var m = -Float.infinity
                    for i in 0..<visible where xr[i] > m { m = xr[i] }
                    if m == -.infinity { m = 0 }
                    for i in 0..<visible { tmp[i] = xr[i] - m }
                    attend_vexp(tmp, y, visible)
                    let s = Reductions.rowSum(y, visible)
                    let inv = s > 0 ? 1 / s : 0
                    for i in 0..<visible { y[i] *= inv }
                    for i in visible..<n { y[i] = 0 }
                }
            }
        }
        return out.recording(.softmax(axis: rank - 1), inputs: [self])
    }

    private func softmaxKernel(axis d: Int, log: Bool) -> Tensor {
        let (moved, rows, n) = Reductions.lastAxisRows(self, axis: d)
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: moved.shape)
        let src = moved.pointer, dst = out.pointer
        Parallel.forRanges(rows, costPerItem: n * 8) { range in
            var scratch = [Float](repeating: 0, count: n)
            scratch.withUnsafeMutableBufferPointer { buf in
                let tmp = buf.baseAddress!
                for r in range {
                    let x = src + r * n, y = dst + r * n
                    var m = -Float.infinity
                    for i in 0..<n where x[i] > m { m = x[i] }
                    if m == -.infinity { m = 0 }  // a row masked everywhere gives zeros, not NaN
                    for i in 0..<n { tmp[i] = x[i] - m }
                    attend_vexp(tmp, y, n)
                    let s = Reductions.rowSum(y, n)
                    if log {
                        let ls = Foundation.log(s)
                        for i in 0..<n { y[i] = tmp[i] - ls }
                    } else {
                        let inv = s > 0 ? 1 / s : 0
                        for i in 0..<n { y[i] *= inv }
                    }
                }
            }
        }
        var result = out
        if d != rank - 1 {
            var order = Array(0..<(rank - 1))
            order.insert(rank - 1, at: d)
            result = withNoGrad { out.permute(order).contiguous() }
        }
        return result.recording(log ? .logSoftmax(axis: d) : .softmax(axis: d), inputs: [self])
    }
}
