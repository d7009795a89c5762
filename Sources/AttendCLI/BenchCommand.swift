import ArgumentParser
import AttendTensor
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print Attend's figure beside a peer's.",
        subcommands: [GemmBench.self])
}

/// Median wall time of `body` over `repeats` runs after one warm-up, each run lasting at least ~30 ms.
func medianSeconds(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var inner = 1
    var t0 = Date()
    body()
    let once = Date().timeIntervalSince(t0)
    if once < 0.03 { inner = Int(0.03 / max(once, 1e-6)) + 1 }
    var samples: [Double] = []
    for _ in 0..<repeats {
        t0 = Date()
        for _ in 0..<inner { body() }
        samples.append(Date().timeIntervalSince(t0) / Double(inner))
    }
    samples.sort()
    return samples[samples.count / 2]
}

struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "SGEMM GFLOP/s: Attend's own kernel, OpenBLAS called directly, and Attend's matmul, side by side.")

    @Option(parsing: .upToNextOption, help: "Square sizes n (C = A B with n x n matrices).") var sizes: [Int] = [256, 512, 1024, 2048]
    @Option(parsing: .upToNextOption, help: "Thread counts.") var threads: [Int] = [1, 2]
    @Option(help: "Timed runs per cell (the median is reported).") var repeats = 5

    func run() {
        print("own micro-kernel: \(Gemm.ownKernelName); BLAS: \(BLAS.loadedPath ?? "none")")
        print("   n  thr |   own GF/s  BLAS GF/s  own/BLAS | matmul GF/s  matmul/BLAS")
        for n in sizes {
            let a = Tensor.uniform([n, n], low: -1, high: 1, seed: 1), b = Tensor.uniform([n, n], low: -1, high: 1, seed: 2)
            let c = Tensor.zeros([n, n])
            let flops = 2 * Double(n) * Double(n) * Double(n)
            for t in threads {
                Parallel.threads = t
                let own = medianSeconds(repeats: repeats) {
                    Gemm.ownSgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a.pointer, lda: n,
                                  b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n, threads: t)
                }
                var line = String(format: "%5d %3d | %10.1f", n, t, flops / own / 1e9)
                if BLAS.loadedPath != nil {
                    // OpenBLAS threads itself when called directly; Attend's matmul keeps it single-threaded per block.
                    BLAS.setThreads(t)
                    defer { BLAS.setThreads(1) }
                    let blas = medianSeconds(repeats: repeats) {
                        BLAS.sgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a.pointer, lda: n,
                                   b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
                    }
                    BLAS.setThreads(1)
                    let viaTensor = medianSeconds(repeats: repeats) { _ = withNoGrad { a.matmul(b) } }
                    line += String(format: " %10.1f %9.2fx | %11.1f %11.2fx", flops / blas / 1e9, blas / own,
                                   flops / viaTensor / 1e9, blas / viaTensor)
                } else {
                    line += "        n/a        n/a |         n/a          n/a"
                }
                print(line)
            }
        }
    }
}
