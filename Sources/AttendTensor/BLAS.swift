// BLAS found at run time: OpenBLAS (or any CBLAS named by ATTEND_BLAS) through dlopen on Linux, Accelerate
// on macOS. Loading at run time keeps BLAS optional: without it Attend uses its own GEMM kernel.

import CAttendKernels
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The BLAS library matmul uses, found at run time (OpenBLAS, a CBLAS that ATTEND_BLAS names, Accelerate on
/// macOS); without one, Attend's own GEMM kernel runs.
///
/// ```swift
/// print(BLAS.loadedPath ?? "no BLAS: Attend's own GEMM")
/// BLAS.isEnabled = false   // to time Attend's own kernel against it
/// ```
public enum BLAS {
    typealias SgemmFn = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float,
                                        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
                                        Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SetThreadsFn = @convention(c) (Int32) -> Void

    struct Library {
        let path: String
        let sgemm: SgemmFn
        let setThreads: SetThreadsFn?

        /// One row-major block product through the library, as `Gemm.split` calls a kernel.
        var block: Gemm.BlockKernel {
            let sgemm = self.sgemm
            return { sgemm(101, $0 ? 112 : 111, $1 ? 112 : 111, Int32($2), Int32($3), Int32($4), $5, $6, Int32($7), $8, Int32($9),
                           $10, $11, Int32($12)) }
        }
    }

    /// Candidate libraries, best first. `ATTEND_BLAS=none` disables BLAS; `ATTEND_BLAS=/path/lib.so` picks one.
    static var candidates: [String] {
        if let choice = ProcessInfo.processInfo.environment["ATTEND_BLAS"], !choice.isEmpty {
            return ["none", "off", "0"].contains(choice.lowercased()) ? [] : [choice]
        }
        #if os(macOS)
        return ["/System/Library/Frameworks/Accelerate.framework/Accelerate"]
        #else
        return ["libopenblas.so.0", "libopenblas.so", "libopenblasp-r0.3.so", "libmkl_rt.so"]
        #endif
    }

    static let library: Library? = {
        for path in candidates {
            guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let sym = dlsym(handle, "cblas_sgemm") else { continue }
            let setThreads = dlsym(handle, "openblas_set_num_threads").map { unsafeBitCast($0, to: SetThreadsFn.self) }
            // Attend splits work across its own threads and calls BLAS single-threaded in each (see Gemm.sgemm).
            setThreads?(1)
            return Library(path: path, sgemm: unsafeBitCast(sym, to: SgemmFn.self), setThreads: setThreads)
        }
        return nil
    }()

    /// The loaded BLAS library's path, or nil when Attend uses its own kernel.
    public static var loadedPath: String? { library?.path }

    /// Whether matmul may use BLAS (true when a library loaded). Benchmarks switch it off to time the own kernel.
    public static var isEnabled = true

    /// Whether the loaded library beats Attend's own kernel on this CPU, measured once (a few milliseconds) the way
    /// matmul calls it: products of 256 and 512 split over `Parallel.threads` threads, single-threaded BLAS in each
    /// part, the best of 5 runs each (smaller products time the thread pool's wake-up more than the kernels).
    /// A BLAS build that does not know the processor can run at a third of the own kernel's speed (Debian's OpenBLAS
    /// 0.3.21 on an AVX-512 Xeon here: 25 against 75 GFLOP/s); on a Zen 4 EPYC it ties on one thread and falls behind
    /// on two at small sizes (171 against 196 GFLOP/s at 256, medians of 4 runs). So the library is used only where
    /// it is at least 5% faster: being present is no reason to use it. A library named by ATTEND_BLAS is used as
    /// asked. (First reached from inside a pool loop, the products run on one thread, as nested loops do; the two
    /// are compared alike either way.)
    public static let beatsOwnKernel: Bool = {
        guard let lib = library else { return false }
        if let choice = ProcessInfo.processInfo.environment["ATTEND_BLAS"], !choice.isEmpty { return true }
        let threads = Parallel.threads
        func best(_ body: () -> Void) -> Double {
            body()  // warm-up: first-touch pages, library set-up
            var fastest = Double.infinity
            for _ in 0..<5 {
                let t = DispatchTime.now().uptimeNanoseconds
                body()
                fastest = Swift.min(fastest, Double(DispatchTime.now().uptimeNanoseconds - t))
            }
            return fastest
        }
        var blas = 0.0, own = 0.0
        for n in [256, 512] {
            let a = [Float](repeating: 0.5, count: n * n), b = a
            var c = [Float](repeating: 0, count: n * n)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        let (a, b, c) = (ap.baseAddress!, bp.baseAddress!, cp.baseAddress!)
                        blas += best {
                            Gemm.split(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a, lda: n, b: b, ldb: n,
                                       beta: 0, c: c, ldc: n, threads: threads, lib.block)
                        }
                        own += best {
                            Gemm.ownSgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a, lda: n, b: b, ldb: n,
                                          beta: 0, c: c, ldc: n, threads: threads)
                        }
                    }
                }
            }
        }
        return blas * 1.05 <= own
    }()

    /// Use the loaded library even where the own kernel is faster (tests that compare the two paths).
    public static var usedEvenIfSlower = false

    /// The library matmul calls: the loaded one when enabled and faster than the own kernel here.
    static var active: Library? { isEnabled && (usedEvenIfSlower || beatsOwnKernel) ? library : nil }

    /// Sets OpenBLAS's own thread count (no effect for other libraries). Attend keeps it at 1; benchmarks
    /// raise it to time OpenBLAS's threading directly.
    public static func setThreads(_ n: Int) { library?.setThreads?(Int32(n)) }

    /// Calls cblas_sgemm directly, row-major. For benchmarks that compare Attend's matmul with raw BLAS.
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard let lib = library else { preconditionFailure("BLAS.sgemm called but no BLAS library is loaded") }
        lib.sgemm(101, transA ? 112 : 111, transB ? 112 : 111, Int32(m), Int32(n), Int32(k), alpha,
                  a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
