// Where the heavy kernels run. Ops call `Backend.current`; the CPU backend is the readable reference and
// the only one today. A faster path (another device, another library) implements the same protocol and
// must pass the same tests (TensorOpsTests checks the current backend against naive loops, with and without BLAS).

import CAttendKernels
import Dispatch

public protocol ComputeBackend {
    var name: String { get }
    /// Row-major C = alpha * op(A) op(B) + beta * C.
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int)
    /// y = exp(x) over n contiguous floats.
    func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int)
}

/// The CPU: BLAS (OpenBLAS / Accelerate) for GEMM when one is loaded, else Attend's own packed kernel;
/// work is split across `Parallel.threads` cores by Attend itself.
public struct CPUBackend: ComputeBackend {
    public init() {}

    public var name: String { "cpu (\(BLAS.active.map { "BLAS \($0.path)" } ?? "own \(Gemm.ownKernelName) kernel"))" }

    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int) {
        guard let lib = BLAS.active else {
            Gemm.ownSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                          beta: beta, c: c, ldc: ldc, threads: threads)
            return
        }
        // BLAS runs single-threaded inside each block: Attend owns the threads, so OpenBLAS's pool never
        // spins against Attend's other parallel work.
        Gemm.split(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc, threads: threads, lib.block)
    }

    public func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int) {
        Parallel.forRanges(n, costPerItem: 4) { r in attend_vexp(x + r.lowerBound, y + r.lowerBound, r.count) }
    }
}

public enum Backend {
    /// The backend ops run on.
    public static var current: ComputeBackend = CPUBackend()
}
