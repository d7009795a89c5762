// Views and layout changes: reshape, permute, expand, slice share storage; concat copies.

extension Tensor {
    /// The same elements in a new shape (one dimension may be -1). A view when the layout allows it.
    public func reshape(_ newShape: [Int]) -> Tensor {
        var newShape = newShape
        if let i = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            newShape[i] = count / known
        }
        precondition(newShape.reduce(1, *) == count, "cannot reshape tensor of shape \(shape) (\(count) elements) to \(newShape)")
        if newShape == shape { return self }
        let source = contiguous()
        let view = Tensor(storage: source.storage, shape: newShape, strides: Tensor.contiguousStrides(newShape), offset: source.offset)
        return view.recording(.reshape, inputs: [source])
    }

    /// Flattens dimensions `from...` into one.
    public func flatten(from start: Int = 1) -> Tensor {
        let s = axis(start)
        return reshape(Array(shape[..<s]) + [shape[s...].reduce(1, *)])
    }

    public func unsqueeze(_ dim: Int) -> Tensor {
        let d = dim < 0 ? dim + rank + 1 : dim
        precondition(d >= 0 && d <= rank, "unsqueeze(\(dim)) is out of range for shape \(shape)")
        var s = shape
        s.insert(1, at: d)
        return reshape(s)
    }

    public func squeeze(_ dim: Int) -> Tensor {
        let d = axis(dim)
        precondition(shape[d] == 1, "squeeze(\(dim)) needs size 1 there, shape is \(shape)")
        var s = shape
        s.remove(at: d)
        return reshape(s)
    }

    /// Reorders dimensions: result dimension i is input dimension `order[i]`. A view.
    public func permute(_ order: [Int]) -> Tensor {
        let order = order.map { axis($0) }
        precondition(order.sorted() == Array(0..<rank), "permute order \(order) is not a permutation of 0..<\(rank)")
        let view = Tensor(storage: storage, shape: order.map { shape[$0] }, strides: order.map { strides[$0] }, offset: offset)
        return view.recording(.permute(order), inputs: [self])
    }

    /// Swaps two dimensions. A view.
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(axis(a), axis(b))
        return permute(order)
    }

    /// Broadcasts to `newShape` without copying (stride 0 along repeated dimensions).
    public func expand(to newShape: [Int]) -> Tensor {
        if newShape == shape { return self }
        let view = Tensor(storage: storage, shape: newShape, strides: Kernels.broadcastStrides(self, to: newShape), offset: offset)
        return view.recording(.expand, inputs: [self])
    }

    /// Elements `start, start+step, ...` (`length` of them) along `axis`. A view.
    public func slice(axis a: Int, start: Int, length: Int, step: Int = 1) -> Tensor {
        let d = axis(a)
        precondition(start >= 0 && length >= 0 && step >= 1 && (length == 0 || start + (length - 1) * step < shape[d]),
                     "slice(axis: \(a), start: \(start), length: \(length), step: \(step)) is out of range for shape \(shape)")
        var s = shape, st = strides
        s[d] = length
        st[d] *= step
        let view = Tensor(storage: storage, shape: s, strides: st, offset: offset + start * strides[d])
        return view.recording(.slice(axis: d, start: start, step: step), inputs: [self])
    }

    /// `range` along `axis`, e.g. `x.slice(axis: 1, 2..<5)`.
    public func slice(axis a: Int, _ range: Range<Int>) -> Tensor {
        slice(axis: a, start: range.lowerBound, length: range.count)
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ tensors: [Tensor], axis a: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat needs at least one tensor")
        let first = tensors[0]
        let d = first.axis(a)
        for t in tensors {
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == d || t.shape[$0] == first.shape[$0] },
                         "concat along axis \(a): shape \(t.shape) does not match \(first.shape)")
        }
        var outShape = first.shape
        outShape[d] = tensors.map { $0.shape[d] }.reduce(0, +)
        let out = Tensor(shape: outShape)
        var start = 0
        for t in tensors {
            let view = Tensor(storage: out.storage, shape: t.shape, strides: out.strides, offset: start * out.strides[d])
            Kernels.copy(from: t, into: view)
            start += t.shape[d]
        }
        return out.recording(.concat(axis: d), inputs: tensors)
    }

    /// Stacks equal-shaped tensors along a new dimension.
    public static func stack(_ tensors: [Tensor], axis a: Int = 0) -> Tensor {
        concat(tensors.map { $0.unsqueeze(a) }, axis: a)
    }

    /// Splits into `parts` equal pieces along `axis` (views).
    public func chunk(_ parts: Int, axis a: Int) -> [Tensor] {
        let d = axis(a)
        precondition(shape[d] % parts == 0, "chunk(\(parts), axis: \(a)): size \(shape[d]) is not divisible")
        let n = shape[d] / parts
        return (0..<parts).map { slice(axis: d, start: $0 * n, length: n) }
    }

    /// Sums over broadcast dimensions so the result has `target` shape (the adjoint of broadcasting).
    public func sum(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let pad = rank - target.count
        precondition(pad >= 0, "sum(toShape:): \(target) has more dimensions than \(shape)")
        var axes = Array(0..<pad)
        for (i, size) in target.enumerated() where size == 1 && shape[i + pad] != 1 { axes.append(i + pad) }
        let reduced = axes.isEmpty ? self : sum(axes: axes, keepDims: true)
        return reduced.reshape(target)
    }
}
