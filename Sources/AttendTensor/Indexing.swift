// Row lookup (embeddings), gather along an axis (picking class scores), and their scatter-add adjoints.

extension Tensor {
    /// Rows of this tensor picked by `ids` along dimension 0: shape `ids.shape + shape[1...]`.
    /// This is an embedding lookup.
    public func indexSelect(_ ids: IntTensor) -> Tensor {
        precondition(rank >= 1, "indexSelect needs rank >= 1")
        let rows = shape[0]
        let rowSize = count / Swift.max(rows, 1)
        let src = contiguous()
        let out = Tensor(contiguousStorage: TensorStorage(count: ids.count * rowSize, zeroed: false),
                         shape: ids.shape + Array(shape.dropFirst()))
        let sp = src.pointer, op = out.pointer
        ids.data.withUnsafeBufferPointer { idp in
            for (i, id) in idp.enumerated() {
                precondition(id >= 0 && Int(id) < rows, "index \(id) is out of range for \(rows) rows")
                (op + i * rowSize).update(from: sp + Int(id) * rowSize, count: rowSize)
            }
        }
        return out.recording(.indexSelect(ids), inputs: [self])
    }

    /// Picks elements along `axis`: out[..., j, ...] = self[..., indices[..., j, ...], ...].
    /// `indices` has this tensor's shape except along `axis`.
    public func gather(axis a: Int, indices: IntTensor) -> Tensor {
        let d = axis(a)
        precondition(indices.shape.count == rank && (0..<rank).allSatisfy { $0 == d || indices.shape[$0] == shape[$0] },
                     "gather: indices shape \(indices.shape) does not match \(shape) outside axis \(d)")
        let (moved, rows, n) = Reductions.lastAxisRows(self, axis: d)
        let (movedIdx, m) = Indexing.moveAxisLast(indices, axis: d)
        let out = Tensor(shape: Array(moved.shape.dropLast()) + [m])
        let sp = moved.pointer, op = out.pointer
        for r in 0..<rows {
            for j in 0..<m {
                let idx = Int(movedIdx[r * m + j])
                precondition(idx >= 0 && idx < n, "gather: index \(idx) is out of range for size \(n) along axis \(d)")
                op[r * m + j] = sp[r * n + idx]
            }
        }
        let result = withNoGrad { Indexing.moveLastAxisBack(out, to: d) }
        return result.recording(.gather(axis: d, indices), inputs: [self])
    }
}

enum Indexing {
    /// Indices with `axis` moved last, flattened, plus the size along it.
    static func moveAxisLast(_ t: IntTensor, axis: Int) -> ([Int32], Int) {
        let m = t.shape[axis]
        if axis == t.shape.count - 1 { return (t.data, m) }
        var order = Array(0..<t.shape.count)
        order.remove(at: axis)
        order.append(axis)
        let asFloat = Tensor(t.data.map(Float.init), shape: t.shape)
        return (withNoGrad { asFloat.permute(order).toArray() }.map { Int32($0) }, m)
    }

    static func moveLastAxisBack(_ t: Tensor, to axis: Int) -> Tensor {
        if axis == t.rank - 1 { return t }
        var order = Array(0..<(t.rank - 1))
        order.insert(t.rank - 1, at: axis)
        return t.permute(order).contiguous()
    }

    /// Adjoint of indexSelect: zeros of `shape` with `values` rows added at `ids`.
    static func indexAdd(rowsOf shape: [Int], ids: IntTensor, values: Tensor) -> Tensor {
        let out = Tensor.zeros(shape)
        let rowSize = out.count / Swift.max(shape[0], 1)
        let v = values.contiguous()
        let op = out.pointer, vp = v.pointer
        for (i, id) in ids.data.enumerated() {
            let dst = op + Int(id) * rowSize, src = vp + i * rowSize
            for j in 0..<rowSize { dst[j] += src[j] }
        }
        return out
    }

    /// Adjoint of gather.
    static func scatterAdd(shape: [Int], axis: Int, indices: IntTensor, values: Tensor) -> Tensor {
        var movedShape = shape
        let n = movedShape.remove(at: axis)
        movedShape.append(n)
        let moved = Tensor.zeros(movedShape)
        let (idx, m) = moveAxisLast(indices, axis: axis)
        let v = withNoGrad { values.rank - 1 == axis ? values.contiguous() : Reductions.lastAxisRows(values, axis: axis).0 }
        let mp = moved.pointer, vp = v.pointer
        let rows = moved.count / Swift.max(n, 1)
        for r in 0..<rows {
            for j in 0..<m { mp[r * n + Int(idx[r * m + j])] += vp[r * m + j] }
        }
        return moveLastAxisBack(moved, to: axis)
    }
}
