// Multi-core helpers. Work is split into at most `Parallel.threads` contiguous chunks, and only when there
// is enough of it to pay for waking other cores.

import CAttendKernels
import Dispatch
import Foundation

/// Attend's multi-core loops: ranges or chunks on its thread pool, serial when the work is too small to share.
///
/// ```swift
/// let x = Tensor.randn([1 << 20], seed: 0), y = Tensor(shape: [1 << 20])
/// let (src, dst) = (x.pointer, y.pointer)
/// Parallel.forRanges(x.count) { range in
///     for i in range { dst[i] = max(src[i], 0) }
/// }
/// ```
public enum Parallel {
    /// Threads used by Attend's kernels: `ATTEND_NUM_THREADS` if set, else the active core count.
    public static var threads: Int = {
        if let s = ProcessInfo.processInfo.environment["ATTEND_NUM_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body` over `0..<count` split into ranges; serially when `count * costPerItem` is below
    /// `minimumWork` (elements of work worth one thread).
    @inline(__always)
    public static func forRanges(_ count: Int, costPerItem: Int = 1, minimumWork: Int = 32_768,
                                 _ body: (Range<Int>) -> Void) {
        let chunks = min(threads, max(1, count * costPerItem / minimumWork), count)
        if chunks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        forChunks(chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body(0..<chunks)` in parallel on Attend's thread pool: serially when called from inside a pool
    /// loop, on GCD threads when another thread's loop holds the pool. For short loops; long-running workers
    /// belong on their own threads.
    public static func forChunks(_ chunks: Int, _ body: (Int) -> Void) {
        if chunks <= 1 {
            if chunks == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = Job(body: body)
            switch withUnsafeMutablePointer(to: &job, { attend_parallel_for(Int32(threads), chunks, Parallel.runChunk, $0) }) {
            case 1: break
            case 0: for c in 0..<chunks { body(c) }  // nested in a pool loop: the cores are taken
            default: DispatchQueue.concurrentPerform(iterations: chunks, execute: body)
            }
        }
    }

    struct Job {
        let body: (Int) -> Void
    }

    /// The C pool's entry point: chunk `c` of the job `ctx` points to.
    static let runChunk: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { ctx, c in
        ctx!.assumingMemoryBound(to: Job.self).pointee.body(c)
    }
}
