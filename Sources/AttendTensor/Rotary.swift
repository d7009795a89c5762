// Rotary position embeddings (Su et al., 2021) as one differentiable op over adjacent pairs: the forward pass
// rotates each pair (2i, 2i+1) of a position by its angle, the backward pass rotates the gradient back (the
// same kernel with the sines negated). Composed from slices, products and a concat it was eight passes.

import CAttendKernels

extension Tensor {
    /// Rotates adjacent pairs of x [..., T, heads, d] with tables cos2 / sin2 [T, d] holding (cos, cos) and
    /// (-sin, +sin) per pair: y = x * cos2 + swap(x) * sin2. Differentiable in x.
    public func rotaryPairs(cos2: [Float], sin2: [Float]) -> Tensor {
        precondition(rank >= 3, "rotaryPairs: input must be [..., T, heads, d], got \(shape)")
        let (t, h, d) = (shape[rank - 3], shape[rank - 2], shape[rank - 1])
        precondition(d % 2 == 0 && cos2.count == t * d && sin2.count == t * d, "rotaryPairs: tables for [\(t), \(d)] expected")
        let out = Tensor.rotate(contiguous(), cos2: cos2, sin2: sin2, t: t, h: h, d: d)
        return out.recording(.rotaryPairs(cos2: cos2, sin2: sin2), inputs: [self])
    }

    /// The kernel over every leading index, threaded over rows.
    static func rotate(_ x: Tensor, cos2: [Float], sin2: [Float], t: Int, h: Int, d: Int) -> Tensor {
        let out = Tensor(contiguousStorage: TensorStorage(count: x.count, zeroed: false), shape: x.shape)
        let batches = x.count / Swift.max(t * h * d, 1)
        let (src, dst) = (x.pointer, out.pointer)
        cos2.withUnsafeBufferPointer { c in
            sin2.withUnsafeBufferPointer { s in
                let (cp, sp) = (c.baseAddress!, s.baseAddress!)
                Parallel.forRanges(batches * t, costPerItem: h * d) { r in
                    var row = r.lowerBound
                    while row < r.upperBound {
                        let (b, p) = (row / t, row % t)
                        let end = Swift.min(r.upperBound, (b + 1) * t)
                        let offset = b * t * h * d
                        attend_rope(src + offset, dst + offset, p, p + (end - row), h, d, cp, sp)
                        row = end
                    }
                }
            }
        }
        return out
    }

    /// The adjoint: rotation by the opposite angles.
    static func rotaryPairsBackward(_ g: Tensor, cos2: [Float], sin2: [Float]) -> Tensor {
        let r = g.rank
        return rotate(g.contiguous(), cos2: cos2, sin2: sin2.map { -$0 }, t: g.shape[r - 3], h: g.shape[r - 2], d: g.shape[r - 1])
    }
}
