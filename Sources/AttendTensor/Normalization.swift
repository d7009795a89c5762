// Layer normalization as one fused op: it runs nine times per GPT step, and the composition from mean,
// subtract, multiply and rsqrt costs ~30 kernel launches there with the backward pass. Tested against the
// composition (values and gradients) and by finite differences.

import Foundation

extension Tensor {
    /// (x - mean) / sqrt(var + eps) * weight + bias over the last dimension (population variance).
    public func layerNorm(weight: Tensor, bias: Tensor?, eps: Float) -> Tensor {
        let c = shape[rank - 1]
        precondition(weight.shape == [c] && (bias == nil || bias!.shape == [c]),
                     "layerNorm over width \(c): weight \(weight.shape), bias \(bias?.shape ?? [])")
        let x = contiguous(), w = weight.contiguous(), b = bias?.contiguous()
        let rows = count / c
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        var stats = [Float](repeating: 0, count: 2 * rows)  // mean, rstd per row
        let xp = x.pointer, wp = w.pointer, bp = b?.pointer, op = out.pointer
        stats.withUnsafeMutableBufferPointer { st in
            let sp = st.baseAddress!
            Parallel.forRanges(rows, costPerItem: 4 * c) { range in
                for r in range {
                    let row = xp + r * c, o = op + r * c
                    let mean = Reductions.rowSum(row, c) / Float(c)
                    var v: Float = 0
                    for i in 0..<c { let d = row[i] - mean; v += d * d }
                    let rstd = 1 / (v / Float(c) + eps).squareRoot()
                    sp[2 * r] = mean
                    sp[2 * r + 1] = rstd
                    if let bp {
                        for i in 0..<c { o[i] = (row[i] - mean) * rstd * wp[i] + bp[i] }
                    } else {
                        for i in 0..<c { o[i] = (row[i] - mean) * rstd * wp[i] }
                    }
                }
            }
        }
        return out.recording(.layerNorm(statistics: stats), inputs: bias.map { [self, weight, $0] } ?? [self, weight])
    }
}

extension Tensor {
    /// Root-mean-square normalization over the last dimension: x / sqrt(mean(x^2) + eps) * weight, one pass
    /// forward and one backward (as five composed ops it was eleven passes over the activations).
    public func rmsNorm(weight: Tensor, eps: Float) -> Tensor {
        let c = shape[rank - 1]
        precondition(weight.shape == [c], "rmsNorm over width \(c): weight \(weight.shape)")
        let x = contiguous(), w = weight.contiguous()
        let rows = count / c
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        var rstds = [Float](repeating: 0, count: rows)
        let xp = x.pointer, wp = w.pointer, op = out.pointer
        rstds.withUnsafeMutableBufferPointer { st in
            let sp = st.baseAddress!
            Parallel.forRanges(rows, costPerItem: 3 * c) { range in
                for r in range {
                    let row = xp + r * c, o = op + r * c
                    var squares: Float = 0
                    for i in 0..<c { squares += row[i] * row[i] }
                    let rstd = 1 / (squares / Float(c) + eps).squareRoot()
                    sp[r] = rstd
                    for i in 0..<c { o[i] = row[i] * rstd * wp[i] }
                }
            }
        }
        return out.recording(.rmsNorm(rstd: rstds), inputs: [self, weight])
    }
}

enum Normalization {
    /// Gradients of rmsNorm: with d = g w, dx = rstd d - x rstd^3 mean(d x); dw = sum_rows g x rstd.
    static func rmsNormBackward(_ g: Tensor, input: Tensor, weight: Tensor, rstd: [Float]) -> (Tensor, Tensor) {
        let c = input.shape[input.rank - 1], rows = input.count / c
        let x = input.contiguous(), gc = g.contiguous(), w = weight.contiguous()
        let dx = Tensor(contiguousStorage: TensorStorage(count: input.count, zeroed: false), shape: input.shape)
        let parts = Swift.min(Parallel.threads, Swift.max(1, rows * c / 32_768))
        let partial = Tensor(shape: [parts, c])  // per-thread dw
        let xp = x.pointer, gp = gc.pointer, wp = w.pointer, dxp = dx.pointer, pp = partial.pointer
        rstd.withUnsafeBufferPointer { st in
            Parallel.forChunks(parts) { part in
                let dw = pp + part * c
                for r in (rows * part / parts)..<(rows * (part + 1) / parts) {
                    let s = st[r]
                    let row = xp + r * c, gr = gp + r * c, dr = dxp + r * c
                    var dot: Float = 0
                    for i in 0..<c {
                        dot += gr[i] * wp[i] * row[i]
                        dw[i] += gr[i] * row[i] * s
                    }
                    let k = s * s * s * dot / Float(c)
                    for i in 0..<c { dr[i] = s * gr[i] * wp[i] - row[i] * k }
                }
            }
        }
        return (dx, partial.sum(axes: [0]).contiguous())
    }

    /// Gradients of layerNorm: dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = g w;
    /// dw = sum_rows g xhat; db = sum_rows g.
    static func layerNormBackward(_ g: Tensor, input: Tensor, weight: Tensor, statistics: [Float], hasBias: Bool)
        -> (Tensor, Tensor, Tensor?) {
        let c = input.shape[input.rank - 1], rows = input.count / c
        let x = input.contiguous(), gc = g.contiguous(), w = weight.contiguous()
        let dx = Tensor(shape: input.shape)
        let parts = Swift.min(Parallel.threads, Swift.max(1, rows * c / 32_768))
        let partial = Tensor(shape: [parts, 2, c])  // per-thread dw, db
        let xp = x.pointer, gp = gc.pointer, wp = w.pointer, dxp = dx.pointer, pp = partial.pointer
        statistics.withUnsafeBufferPointer { st in
            Parallel.forChunks(parts) { part in
                let dw = pp + part * 2 * c, db = dw + c
                for r in (rows * part / parts)..<(rows * (part + 1) / parts) {
                    let (mean, rstd) = (st[2 * r], st[2 * r + 1])
                    let row = xp + r * c, gr = gp + r * c, dr = dxp + r * c
                    var sumD: Float = 0, sumDX: Float = 0
                    for i in 0..<c {
                        let xhat = (row[i] - mean) * rstd
                        let d = gr[i] * wp[i]
                        sumD += d
                        sumDX += d * xhat
                        dw[i] += gr[i] * xhat
                        db[i] += gr[i]
                    }
                    let (mD, mDX) = (sumD / Float(c), sumDX / Float(c))
                    for i in 0..<c {
                        let xhat = (row[i] - mean) * rstd
                        dr[i] = rstd * (gr[i] * wp[i] - mD - xhat * mDX)
                    }
                }
            }
        }
        let sums = partial.sum(axes: [0])  // (2, C)
        return (dx, sums.slice(axis: 0, start: 0, length: 1).reshape([c]).contiguous(),
                hasBias ? sums.slice(axis: 0, start: 1, length: 1).reshape([c]).contiguous() : nil)
    }
}
