// One process's part in data-parallel training, as the trainers of AttendModels see it: which rows of each global
// batch it trains on, and how its gradients, loss and features are combined with the other processes'. The MPI
// implementation lives in AttendDistributed (built only with the MPI trait); here it is a set of closures, so a model
// family's training code is the same with one process or many.

import AttendTensor

/// One process's share of data-parallel training.
///
/// ```swift
/// let share = DataParallelShare.single                       // one process: every row, nothing to combine
/// let rows = share.rows(of: 256)                             // 0..<256
/// try share.averageGradients(parameters, weight: Double(rows.count))
/// ```
public struct DataParallelShare {
    /// This process (0-based) and how many take part.
    public let index: Int
    public let count: Int
    let averageWeighted: (([(name: String, tensor: Tensor)], Double) throws -> Void)?
    let summed: (([(name: String, tensor: Tensor)]) throws -> Void)?
    let averageLossWeighted: ((Float, Double) throws -> Float)?
    let gatherRows: ((Tensor, [Int]) throws -> Tensor)?

    /// One process.
    public static let single = DataParallelShare(index: 0, count: 1, averageGradients: nil, sumGradients: nil, averageLoss: nil, allGather: nil)

    /// `averageGradients(parameters, weight)` replaces each gradient by the weighted mean over the processes;
    /// `sumGradients` by the sum; `averageLoss(loss, weight)` returns the weighted mean; `allGather(local, rowsPerProcess)`
    /// returns every process's rows [sum of rowsPerProcess, D] in process order (no gradient).
    public init(index: Int, count: Int, averageGradients: (([(name: String, tensor: Tensor)], Double) throws -> Void)?,
                sumGradients: (([(name: String, tensor: Tensor)]) throws -> Void)?, averageLoss: ((Float, Double) throws -> Float)?,
                allGather: ((Tensor, [Int]) throws -> Tensor)?) {
        precondition(count >= 1 && (0..<count).contains(index), "DataParallelShare: process \(index) of \(count)")
        self.index = index
        self.count = count
        averageWeighted = averageGradients
        summed = sumGradients
        averageLossWeighted = averageLoss
        gatherRows = allGather
    }

    public var isRoot: Bool { index == 0 }

    /// This process's rows of a batch of `n`: `[index n / count, (index + 1) n / count)`, so the shares differ by at
    /// most one row and cover the batch in order.
    public func rows(of n: Int) -> Range<Int> { (index * n / count)..<((index + 1) * n / count) }

    /// Each gradient becomes the mean over the processes, each counting `weight` (the items its loss averaged over).
    public func averageGradients(_ parameters: [(name: String, tensor: Tensor)], weight: Double) throws {
        try averageWeighted?(parameters, weight)
    }

    /// Each gradient becomes the sum over the processes (for a loss each computes over the whole gathered batch).
    public func sumGradients(_ parameters: [(name: String, tensor: Tensor)]) throws { try summed?(parameters) }

    /// The loss's mean over the processes, each counting `weight`.
    public func averageLoss(_ loss: Float, weight: Double) throws -> Float { try averageLossWeighted?(loss, weight) ?? loss }

    /// The whole batch's rows [n, D] from this process's rows `local` [rows(of: n).count, D]: the other processes' rows
    /// are constants, this process's keep their gradient, so a loss over the whole batch sends each process the
    /// gradient of its own rows (open_clip's all-gather for the contrastive loss).
    public func gather(_ local: Tensor, batch n: Int) throws -> Tensor {
        guard count > 1, let gatherRows else { return local }
        let mine = rows(of: n)
        precondition(local.rank == 2 && local.shape[0] == mine.count, "DataParallelShare.gather: \(local.shape) for rows \(mine)")
        let counts = (0..<count).map { p in ((p + 1) * n / count) - (p * n / count) }
        let all = try withNoGrad { try gatherRows(local.contiguous(), counts) }
        var parts: [Tensor] = []
        if mine.lowerBound > 0 { parts.append(all.slice(axis: 0, start: 0, length: mine.lowerBound)) }
        parts.append(local)
        if mine.upperBound < n { parts.append(all.slice(axis: 0, start: mine.upperBound, length: n - mine.upperBound)) }
        return Tensor.concat(parts, axis: 0)
    }
}
