// Tensor: a Float32 N-d array over reference-counted storage. Views (reshape, permute, slice, expand)
// share storage and differ only in shape, strides and offset; every op writes a new contiguous result.
// Tensors that require gradients remember the op that made them (see Autodiff.swift).

import CAttendKernels
import Foundation

/// Heap memory for tensor elements, 64-byte aligned so SIMD kernels can use aligned loads.
public final class TensorStorage {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        _ = TensorStorage.allocatorTuned
        guard let raw = attend_alloc(Swift.max(count, 1) * MemoryLayout<Float>.stride) else {
            fatalError("out of memory: a tensor of \(count) floats")
        }
        base = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
        self.count = count
        if zeroed { base.initialize(repeating: 0, count: Swift.max(count, 1)) }
    }

    deinit { attend_free(base, Swift.max(count, 1) * MemoryLayout<Float>.stride) }

    /// glibc serves large blocks with mmap and returns them on free, so every new activation tensor
    /// page-faults its memory in again (measured: 6% of a CNN epoch, 12% of a LoRA step). Raising the mmap and
    /// trim thresholds keeps freed blocks in the heap, and CAttendKernels/Allocator.c pools the larger ones.
    static let allocatorTuned: Bool = {
        attend_tune_allocator()
        return true
    }()
}

/// An N-dimensional Float32 tensor with reverse-mode automatic differentiation.
///
/// ```swift
/// let x = Tensor.randn([4, 3], seed: 0, requiresGrad: true)
/// let w = Tensor.ones([3, 2])
/// let loss = (x.matmul(w)).relu().sum()
/// loss.backward()
/// print(x.grad!.shape)  // [4, 3]
/// ```
public final class Tensor {
    public let shape: [Int]
    public let strides: [Int]
    public let offset: Int
    public let storage: TensorStorage
    /// Whether gradients flow into this tensor. Parameters set it; op results inherit it.
    public var requiresGrad: Bool
    /// The accumulated gradient after `backward()`; contiguous, same shape.
    public var grad: Tensor?
    /// The op that produced this tensor, kept only while gradients are recorded.
    var node: GradNode?

    init(storage: TensorStorage, shape: [Int], strides: [Int], offset: Int = 0, requiresGrad: Bool = false) {
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    /// A new contiguous tensor over fresh storage.
    convenience init(contiguousStorage storage: TensorStorage, shape: [Int]) {
        self.init(storage: storage, shape: shape, strides: Tensor.contiguousStrides(shape))
    }

    /// A tensor filled with `value`.
    public convenience init(shape: [Int], repeating value: Float = 0, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative dimension")
        let skip = Initialization.skipped
        let storage = TensorStorage(count: shape.reduce(1, *), zeroed: value == 0 && !skip)
        if value != 0 && !skip { storage.base.initialize(repeating: value, count: storage.count) }
        self.init(storage: storage, shape: shape, strides: Tensor.contiguousStrides(shape), requiresGrad: requiresGrad)
    }

    /// A tensor holding `values` in row-major order.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        let n = shape.reduce(1, *)
        precondition(values.count == n, "Tensor(_:shape:) got \(values.count) values for shape \(shape), which holds \(n)")
        let storage = TensorStorage(count: n, zeroed: false)
        values.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: n) }
        self.init(storage: storage, shape: shape, strides: Tensor.contiguousStrides(shape), requiresGrad: requiresGrad)
    }

    /// A rank-0 tensor.
    public convenience init(_ value: Float) {
        self.init([value], shape: [])
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, repeating: 0, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, repeating: 1, requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float) -> Tensor { Tensor(shape: shape, repeating: value) }

    /// 0, 1, ..., n-1 as floats.
    public static func arange(_ n: Int) -> Tensor { Tensor((0..<n).map(Float.init), shape: [n]) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    /// True when elements are laid out row-major with no gaps (size-1 dimensions may have any stride).
    public var isContiguous: Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// Pointer to the first element. Valid while `self` is alive.
    public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    /// Resolves a possibly negative axis and checks it.
    public func axis(_ a: Int) -> Int {
        let r = a < 0 ? a + rank : a
        precondition(r >= 0 && r < Swift.max(rank, 1), "axis \(a) is out of range for a tensor of shape \(shape)")
        return r
    }

    /// The elements in row-major order.
    public func toArray() -> [Float] {
        let c = contiguous()
        return Array(UnsafeBufferPointer(start: c.pointer, count: c.count))
    }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a one-element tensor, got shape \(shape)")
        return pointer.pointee
    }

    /// A contiguous tensor with the same values (self when already contiguous). Differentiable.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        Kernels.copy(from: self, into: out)
        return out.recording(.copy, inputs: [self])
    }

    /// The same data with no gradient history.
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape, strides: strides, offset: offset)
    }

    /// A deep copy with its own storage, no gradient history.
    public func copy() -> Tensor {
        let out = Tensor(contiguousStorage: TensorStorage(count: count, zeroed: false), shape: shape)
        Kernels.copy(from: self, into: out)
        return out
    }

    /// Copies `source` (broadcast to this shape) into this tensor's memory, bypassing autodiff.
    /// Used by optimizers and checkpoint loading, which change parameters in place.
    public func assign(_ source: Tensor) {
        let src = source.shape == shape ? source : source.expand(to: shape)
        Kernels.copy(from: src, into: self)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = toArray()
        let shown = values.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(values.count > 8 ? ", ..." : "")])"
    }
}

/// Integer tensor for token ids, class labels and indices.
public struct IntTensor: Equatable {
    public var shape: [Int]
    public var data: [Int32]

    public init(_ data: [Int32], shape: [Int]) {
        precondition(data.count == shape.reduce(1, *), "IntTensor got \(data.count) values for shape \(shape)")
        self.data = data
        self.shape = shape
    }

    public init(_ data: [Int], shape: [Int]) {
        self.init(data.map { Int32($0) }, shape: shape)
    }

    public var count: Int { data.count }
}

extension IntTensor {
    /// Rows of different lengths, padded on the right with `pad` to the longest (or to `width`): [rows, width].
    /// The one padder behind every batch of token ids (BERT inputs and segments, sentence embeddings, seq2seq).
    ///
    /// ```swift
    /// IntTensor.padded([[5, 6, 7], [8]], with: 0)   // shape [2, 3], data [5, 6, 7, 8, 0, 0]
    /// ```
    public static func padded(_ rows: [[Int32]], with pad: Int32, width: Int? = nil) -> IntTensor {
        let w = width ?? rows.map(\.count).max() ?? 0
        precondition(rows.allSatisfy { $0.count <= w }, "IntTensor.padded: a row is longer than the width \(w)")
        var data = [Int32](repeating: pad, count: rows.count * w)
        for (r, row) in rows.enumerated() { for (k, id) in row.enumerated() { data[r * w + k] = id } }
        return IntTensor(data, shape: [rows.count, w])
    }
}
