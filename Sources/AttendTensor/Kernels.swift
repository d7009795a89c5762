// Strided loops shared by every elementwise op. Operands are described by (shape, strides, offset);
// adjacent dimensions that are contiguous in every operand are merged so most loops run as one flat row.

import Foundation

public protocol UnaryFunction { static func apply(_ x: Float) -> Float }
public protocol BinaryFunction { static func apply(_ a: Float, _ b: Float) -> Float }

enum Kernels {
    /// Merges dimensions that are contiguous in every stride list and drops size-1 dimensions.
    static func collapse(_ shape: [Int], _ strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides = [[Int]](repeating: [], count: strides.count)
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = outShape.last,
               strides.indices.allSatisfy({ outStrides[$0].last! == strides[$0][d] * shape[d] }) {
                outShape[outShape.count - 1] = last * shape[d]
                for k in strides.indices { outStrides[k][outStrides[k].count - 1] = strides[k][d] }
            } else {
                outShape.append(shape[d])
                for k in strides.indices { outStrides[k].append(strides[k][d]) }
            }
        }
        if outShape.isEmpty {
            outShape = [1]
            for k in strides.indices { outStrides[k] = [1] }
        }
        return (outShape, outStrides)
    }

    /// Calls `row(offsets, n, innerStrides)` for every innermost row of `shape`, in parallel when large.
    /// Up to three operands; `offsets` and `innerStrides` hold one entry per operand.
    static func forEachRow(shape: [Int], strides: [[Int]], offsets: [Int],
                           _ row: (_ o0: Int, _ o1: Int, _ o2: Int, _ n: Int, _ s0: Int, _ s1: Int, _ s2: Int) -> Void) {
        let (shape, strides) = collapse(shape, strides)
        let k = strides.count
        let s = strides + [[Int]](repeating: [Int](repeating: 0, count: shape.count), count: 3 - k)
        let base = offsets + [Int](repeating: 0, count: 3 - k)
        let r = shape.count
        let n = shape[r - 1]
        let rows = shape.dropLast().reduce(1, *)
        let (i0, i1, i2) = (s[0][r - 1], s[1][r - 1], s[2][r - 1])
        if rows == 1 {
            // One long row (a contiguous tensor): split it into pieces across cores.
            Parallel.forRanges(n) { r in
                row(base[0] + r.lowerBound * i0, base[1] + r.lowerBound * i1, base[2] + r.lowerBound * i2, r.count, i0, i1, i2)
            }
            return
        }
        Parallel.forRanges(rows, costPerItem: n) { range in
            // Decompose the first row index into per-dimension counters, then step through rows.
            var counter = [Int](repeating: 0, count: max(r - 1, 0))
            var rem = range.lowerBound
            var o = base
            for d in stride(from: r - 2, through: 0, by: -1) {
                counter[d] = rem % shape[d]
                rem /= shape[d]
                o[0] += counter[d] * s[0][d]; o[1] += counter[d] * s[1][d]; o[2] += counter[d] * s[2][d]
            }
            for _ in range {
                row(o[0], o[1], o[2], n, i0, i1, i2)
                var d = r - 2
                while d >= 0 {
                    counter[d] += 1
                    o[0] += s[0][d]; o[1] += s[1][d]; o[2] += s[2][d]
                    if counter[d] < shape[d] { break }
                    o[0] -= s[0][d] * shape[d]; o[1] -= s[1][d] * shape[d]; o[2] -= s[2][d] * shape[d]
                    counter[d] = 0
                    d -= 1
                }
            }
        }
    }

    /// dst[...] = src[...] for equal shapes, any strides.
    static func copy(from src: Tensor, into dst: Tensor) {
        precondition(src.shape == dst.shape, "copy: shapes \(src.shape) and \(dst.shape) differ")
        if src.isContiguous && dst.isContiguous {
            dst.pointer.update(from: src.pointer, count: src.count)
            return
        }
        let sp = src.storage.base, dp = dst.storage.base
        forEachRow(shape: src.shape, strides: [dst.strides, src.strides], offsets: [dst.offset, src.offset]) {
            o0, o1, _, n, s0, s1, _ in
            if s0 == 1 && s1 == 1 {
                (dp + o0).update(from: sp + o1, count: n)
            } else {
                for i in 0..<n { dp[o0 + i * s0] = sp[o1 + i * s1] }
            }
        }
    }

    /// Strides that read `t` as if broadcast to `shape` (0 along broadcast dimensions).
    static func broadcastStrides(_ t: Tensor, to shape: [Int]) -> [Int] {
        let pad = shape.count - t.rank
        precondition(pad >= 0, "cannot broadcast shape \(t.shape) to \(shape)")
        var result = [Int](repeating: 0, count: shape.count)
        for d in 0..<t.rank {
            let size = t.shape[d]
            precondition(size == shape[d + pad] || size == 1, "cannot broadcast shape \(t.shape) to \(shape)")
            result[d + pad] = size == 1 ? 0 : t.strides[d]
        }
        return result
    }

    static func unary<F: UnaryFunction>(_ x: Tensor, _: F.Type) -> Tensor {
        let out = Tensor(contiguousStorage: TensorStorage(count: x.count, zeroed: false), shape: x.shape)
        let xp = x.storage.base, op = out.storage.base
        forEachRow(shape: x.shape, strides: [out.strides, x.strides], offsets: [0, x.offset]) {
            o0, o1, _, n, s0, s1, _ in
            if s0 == 1 && s1 == 1 {
                let src = xp + o1, dst = op + o0
                for i in 0..<n { dst[i] = F.apply(src[i]) }
            } else {
                for i in 0..<n { op[o0 + i * s0] = F.apply(xp[o1 + i * s1]) }
            }
        }
        return out
    }

    static func binary<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, _: F.Type) -> Tensor {
        let shape = a.shape == b.shape ? a.shape : Shape.broadcast(a.shape, b.shape)
        let out = Tensor(contiguousStorage: TensorStorage(count: shape.reduce(1, *), zeroed: false), shape: shape)
        let sa = a.shape == shape ? a.strides : broadcastStrides(a, to: shape)
        let sb = b.shape == shape ? b.strides : broadcastStrides(b, to: shape)
        let ap = a.storage.base, bp = b.storage.base, op = out.storage.base
        forEachRow(shape: shape, strides: [out.strides, sa, sb], offsets: [0, a.offset, b.offset]) {
            o0, o1, o2, n, s0, s1, s2 in
            let dst = op + o0, x = ap + o1, y = bp + o2
            if s0 == 1 && s1 == 1 && s2 == 1 {
                for i in 0..<n { dst[i] = F.apply(x[i], y[i]) }
            } else if s0 == 1 && s1 == 1 && s2 == 0 {
                let c = y[0]
                for i in 0..<n { dst[i] = F.apply(x[i], c) }
            } else if s0 == 1 && s1 == 0 && s2 == 1 {
                let c = x[0]
                for i in 0..<n { dst[i] = F.apply(c, y[i]) }
            } else {
                for i in 0..<n { dst[i * s0] = F.apply(x[i * s1], y[i * s2]) }
            }
        }
        return out
    }
}

/// Shape arithmetic.
public enum Shape {
    /// NumPy broadcasting of two shapes; traps with both shapes named when they are incompatible.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let x = i < r - a.count ? 1 : a[i - (r - a.count)]
            let y = i < r - b.count ? 1 : b[i - (r - b.count)]
            precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) cannot be broadcast together")
            out[i] = x == 1 ? y : x
        }
        return out
    }
}
