// A weight matrix quantized to int8 for inference (CAttendKernels/Int8Gemm.c): one scale per output row, and the
// activations quantized per row at each call. On AVX-512 VNNI the products run at four times the multiply-adds of
// float32; elsewhere the portable path gives the same numbers, slower.

import CAttendKernels

/// The weights of a linear layer `y = x W^T + b` in int8, packed once.
///
/// ```swift
/// let w = Tensor.randn([384, 1536], seed: 1), x = Tensor.randn([8, 1536], seed: 2)
/// let q = Int8Matrix(w)
/// let y = q.apply(x)                        // [8, 384], within about 1% of x.matmul(w.transposed(0, 1))
/// ```
public final class Int8Matrix {
    /// Outputs (rows of W) and inputs (columns).
    public let outputs: Int
    public let inputs: Int
    let paddedInputs: Int
    let packed: UnsafeMutableRawPointer
    let packedBytes: Int
    let scales: [Float]
    let corrections: [Int32]

    /// Packs `weight` [outputs, inputs] (any strides).
    public init(_ weight: Tensor) {
        precondition(weight.rank == 2, "Int8Matrix: weights must be [outputs, inputs], got \(weight.shape)")
        let w = weight.contiguous()
        outputs = w.shape[0]
        inputs = w.shape[1]
        paddedInputs = attend_int8_padded_inputs(inputs)
        let paddedOutputs = attend_int8_padded_outputs(outputs)
        packedBytes = max(64, paddedOutputs * paddedInputs)
        packed = UnsafeMutableRawPointer.allocate(byteCount: packedBytes, alignment: 64)
        var scales = [Float](repeating: 0, count: paddedOutputs), corrections = [Int32](repeating: 0, count: paddedOutputs)
        attend_int8_pack_weights(w.pointer, outputs, inputs, packed.assumingMemoryBound(to: Int8.self), &scales, &corrections)
        self.scales = scales
        self.corrections = corrections
    }

    deinit { packed.deallocate() }

    /// Whether the layers run on AVX-512 VNNI now (else on the portable path, with the same results).
    public static var usesVNNI: Bool { attend_int8_kernel_is_vnni() != 0 }

    /// x [..., inputs] -> [..., outputs]: x W^T + bias, without gradients.
    public func apply(_ x: Tensor, bias: Tensor? = nil) -> Tensor {
        precondition(x.shape.last == inputs, "Int8Matrix(\(inputs) -> \(outputs)) got input of shape \(x.shape)")
        precondition(bias.map { $0.count == outputs } ?? true, "Int8Matrix: bias of \(bias?.count ?? 0) values for \(outputs) outputs")
        let input = x.contiguous(), rows = input.count / max(inputs, 1)
        let y = Tensor(contiguousStorage: TensorStorage(count: rows * outputs, zeroed: false), shape: Array(x.shape.dropLast()) + [outputs])
        guard rows > 0 else { return y }
        let b = bias?.contiguous()
        var rowScales = [Float](repeating: 0, count: rows)
        let quantized = UnsafeMutablePointer<UInt8>.allocate(capacity: rows * paddedInputs)
        defer { quantized.deallocate() }
        let (xp, yp, wp, k, n) = (input.pointer, y.pointer, packed.assumingMemoryBound(to: Int8.self), inputs, outputs)
        scales.withUnsafeBufferPointer { sw in
            corrections.withUnsafeBufferPointer { corr in
                rowScales.withUnsafeMutableBufferPointer { xs in
                    let (sw, corr, xs, bp) = (sw.baseAddress!, corr.baseAddress!, xs.baseAddress!, b?.pointer)
                    // Rows in multiples of the micro-tile's 6, one range per thread when there is enough work.
                    let blocks = (rows + 5) / 6
                    let parts = Swift.min(Parallel.threads, Swift.max(1, rows * k * n / (1 << 18)), blocks)
                    Parallel.forChunks(parts) { p in
                        let lo = Swift.min(rows, blocks * p / parts * 6), hi = Swift.min(rows, blocks * (p + 1) / parts * 6)
                        attend_int8_linear_rows(xp, k, lo, hi, k, quantized, xs, wp, sw, corr, bp, n, yp, n)
                    }
                }
            }
        }
        return y
    }
}
