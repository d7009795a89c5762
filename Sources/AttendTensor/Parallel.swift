// Multi-core helpers. Work is split into at most `Parallel.threads` contiguous chunks, and only when there
// is enough of it to pay for waking other cores.

import Dispatch
import Foundation

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
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }
}
