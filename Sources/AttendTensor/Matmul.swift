// Matrix multiplication: dispatch to BLAS or Attend's own packed SIMD kernel (CAttendKernels/Gemm.c),
// split across cores; batched matmul with broadcast batch dimensions.

import CAttendKernels
import Foundation

public enum Gemm {
    /// The own kernel's micro-kernel at the SIMD level in force ("avx512f", "avx2-fma" or "generic").
    public static var ownKernelName: String { String(cString: attend_sgemm_kernel_name()) }

    /// Row-major C = alpha * op(A) op(B) + beta * C with Attend's own kernel on `threads` cores.
    public static func ownSgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = Parallel.threads) {
        split(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
              beta: beta, c: c, ldc: ldc, threads: threads) {
            attend_sgemm($0 ? 1 : 0, $1 ? 1 : 0, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        }
    }

    /// Row-major SGEMM on the current backend (`Backend.current`), on `threads` cores.
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = Parallel.threads) {
        Backend.current.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                              beta: beta, c: c, ldc: ldc, threads: threads)
    }

    typealias BlockKernel = (Bool, Bool, Int, Int, Int, Float, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int,
                             Float, UnsafeMutablePointer<Float>, Int) -> Void

    /// Splits the larger of M and N into one block per thread (aligned to micro-tiles) and runs `kernel` on each.
    static func split(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int, _ kernel: BlockKernel) {
        let parts = Swift.min(threads, Swift.max(1, m * n * k / (64 * 64 * 64)))
        if parts <= 1 {
            kernel(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let splitRows = m >= n
        let total = splitRows ? m : n
        let unit = splitRows ? 6 : 16
        let blocks = (total + unit - 1) / unit
        Parallel.forChunks(parts) { p in
            let lo = blocks * p / parts * unit, hi = Swift.min(total, blocks * (p + 1) / parts * unit)
            guard lo < hi else { return }
            if splitRows {
                kernel(transA, transB, hi - lo, n, k, alpha, a + (transA ? lo : lo * lda), lda, b, ldb, beta, c + lo * ldc, ldc)
            } else {
                kernel(transA, transB, m, hi - lo, k, alpha, a, lda, b + (transB ? lo * ldb : lo), ldb, beta, c + lo, ldc)
            }
        }
    }
}

extension Tensor {
    /// How a GEMM reads the last two dimensions: transposed or not, and the leading dimension.
    /// Nil when neither dimension has unit stride (the caller copies first).
    fileprivate var gemmLayout: (trans: Bool, ld: Int)? {
        let r = rank, rows = shape[r - 2], cols = shape[r - 1]
        // A leading dimension must step past a whole row; broadcast (stride-0) rows do not qualify.
        if (strides[r - 1] == 1 || cols == 1) && (rows == 1 || strides[r - 2] >= cols) {
            return (false, rows == 1 ? Swift.max(cols, 1) : strides[r - 2])
        }
        if (strides[r - 2] == 1 || rows == 1) && (cols == 1 || strides[r - 1] >= rows) {
            return (true, cols == 1 ? Swift.max(rows, 1) : strides[r - 1])
        }
        return nil
    }

    /// Matrix product over the last two dimensions, broadcasting the leading (batch) dimensions.
    /// `[..., M, K] x [..., K, N] -> [..., M, N]`.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(rank >= 2 && other.rank >= 2, "matmul needs tensors of rank >= 2, got \(shape) and \(other.shape)")
        let (m, k) = (shape[rank - 2], shape[rank - 1])
        let (k2, n) = (other.shape[other.rank - 2], other.shape[other.rank - 1])
        precondition(k == k2, "matmul: inner dimensions differ: \(shape) x \(other.shape)")

        // [..., M, K] x [K, N] with a row-major left side: one GEMM with the batch folded into M.
        if other.rank == 2 && rank > 2 && isContiguous {
            let folded = withNoGrad { self.reshape([count / k, k]).matmul(other) }
            let out = Tensor(storage: folded.storage, shape: Array(shape.dropLast()) + [n], strides: Tensor.contiguousStrides(Array(shape.dropLast()) + [n]))
            return out.recording(.matmul, inputs: [self, other])
        }

        let a = gemmLayout == nil ? withNoGrad { contiguous() } : self
        let b = other.gemmLayout == nil ? withNoGrad { other.contiguous() } : other
        let (la, lb) = (a.gemmLayout!, b.gemmLayout!)
        let batchShape = Shape.broadcast(Array(shape.dropLast(2)), Array(other.shape.dropLast(2)))
        let outShape = batchShape + [m, n]
        let out = Tensor(contiguousStorage: TensorStorage(count: outShape.reduce(1, *), zeroed: k == 0), shape: outShape)
        let batches = batchShape.reduce(1, *)
        let aBatchStrides = Kernels.broadcastStrides(Tensor(storage: a.storage, shape: Array(a.shape.dropLast(2)), strides: Array(a.strides.dropLast(2))), to: batchShape)
        let bBatchStrides = Kernels.broadcastStrides(Tensor(storage: b.storage, shape: Array(b.shape.dropLast(2)), strides: Array(b.strides.dropLast(2))), to: batchShape)
        let ap = a.pointer, bp = b.pointer, cp = out.pointer
        func offsets(_ index: Int) -> (Int, Int) {
            var rem = index, oa = 0, ob = 0
            for d in stride(from: batchShape.count - 1, through: 0, by: -1) {
                let i = rem % batchShape[d]
                rem /= batchShape[d]
                oa += i * aBatchStrides[d]
                ob += i * bBatchStrides[d]
            }
            return (oa, ob)
        }
        if k > 0 {
            // Many small or medium products (attention heads: 36 of 256 x 256 x 64 in a LoRA step) go one per core,
            // with no split inside each; large ones use all cores each.
            let smallEach = m * n * k < 128 * 128 * 128 || (batches >= 2 * Parallel.threads && m * n * k < 512 * 512 * 512)
            if batches > 1 && smallEach {
                Parallel.forRanges(batches, costPerItem: m * n * k, minimumWork: 1 << 18) { range in
                    for bi in range {
                        let (oa, ob) = offsets(bi)
                        Gemm.sgemm(transA: la.trans, transB: lb.trans, m: m, n: n, k: k,
                                   a: ap + oa, lda: la.ld, b: bp + ob, ldb: lb.ld,
                                   c: cp + bi * m * n, ldc: n, threads: 1)
                    }
                }
            } else {
                for bi in 0..<batches {
                    let (oa, ob) = offsets(bi)
                    Gemm.sgemm(transA: la.trans, transB: lb.trans, m: m, n: n, k: k, a: ap + oa, lda: la.ld,
                               b: bp + ob, ldb: lb.ld, c: cp + bi * m * n, ldc: n)
                }
            }
        }
        return out.recording(.matmul, inputs: [self, other])
    }
}
