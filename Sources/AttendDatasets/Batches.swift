// Mini-batch index streams: a seeded shuffle per epoch, so a run is reproducible and resumable.

import AttendTensor

/// The batches of one epoch over `count` examples: shuffled with a generator seeded by (seed, epoch).
public struct ShuffledBatches: Sequence {
    public let count: Int
    public let batchSize: Int
    public let seed: UInt64
    public let epoch: Int
    public let dropLast: Bool

    public init(count: Int, batchSize: Int, seed: UInt64, epoch: Int, dropLast: Bool = false) {
        precondition(batchSize > 0, "batch size must be positive, got \(batchSize)")
        self.count = count
        self.batchSize = batchSize
        self.seed = seed
        self.epoch = epoch
        self.dropLast = dropLast
    }

    public var batchCount: Int { dropLast ? count / batchSize : (count + batchSize - 1) / batchSize }

    public func makeIterator() -> IndexingIterator<[[Int]]> {
        var order = Array(0..<count)
        var generator = RandomGenerator(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
        order.shuffle(using: &generator)
        let batches = (0..<batchCount).map { b in Array(order[(b * batchSize)..<Swift.min(count, (b + 1) * batchSize)]) }
        return batches.makeIterator()
    }
}

/// Batches in order, for evaluation.
public func sequentialBatches(count: Int, batchSize: Int) -> [[Int]] {
    stride(from: 0, to: count, by: batchSize).map { Array($0..<Swift.min(count, $0 + batchSize)) }
}
