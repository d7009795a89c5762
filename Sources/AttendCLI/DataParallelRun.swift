// What a training command does differently when started by mpirun (or with --distributed): every rank trains on its
// slice of each global batch, gradients are averaged by MPI all-reduce, rank 0 alone writes and prints. Without the
// MPI trait an attend is one process, and --distributed says so.

import ArgumentParser
import AttendNN
import AttendTensor
import Foundation
#if MPI
import AttendDistributed
#endif

struct DataParallelRun {
    let rank: Int
    let size: Int
    var isRoot: Bool { rank == 0 }
    #if MPI
    let parallel: DataParallel?
    #endif

    /// One process, or this process's place in the MPI job.
    static func start(distributed: Bool) throws -> DataParallelRun {
        #if MPI
        guard distributed || MPIWorld.launchedByMPI else { return DataParallelRun(rank: 0, size: 1, parallel: nil) }
        let world = try MPIWorld.start()
        return DataParallelRun(rank: world.rank, size: world.size, parallel: DataParallel(world: world))
        #else
        if distributed { throw ValidationError("--distributed: this attend was built without the MPI trait (swift build --disable-default-traits); build it with `swift build -c release`") }
        // Under mpirun such a build would run n separate trainings that all write the same files.
        let environment = ProcessInfo.processInfo.environment
        if ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].contains(where: { environment[$0] != nil }) {
            throw ValidationError("started by mpirun, but this attend was built without the MPI trait (swift build --disable-default-traits); build it with `swift build -c release`")
        }
        return DataParallelRun(rank: 0, size: 1)
        #endif
    }

    /// Rank 0's weights on every rank, every rank at the same step (a resumed run must read the same checkpoint), and
    /// each rank its own dropout masks.
    func synchronize(_ model: Module, step: Int) throws {
        #if MPI
        guard let parallel else { return }
        let (low, high) = try parallel.world.minMax(UInt64(step))
        guard low == high else {
            throw AttendError("the ranks resumed at different iterations (\(low) to \(high)): every rank must read the same checkpoint (a shared folder, or a copy on each machine)")
        }
        try parallel.broadcastParameters(of: model)
        // Every Dropout starts from the same seed: without this, each rank's share of a batch would get the same masks.
        for (index, (_, module)) in model.namedModules().enumerated() {
            (module as? Dropout)?.reseed(0xD20 &+ UInt64(rank) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
        }
        #endif
    }

    /// Refuses to train when the ranks were started with different settings or data: `settings` describes the model
    /// and training configuration, `dataBytes` is the size of what was read. Every rank gets the same error, naming
    /// the values it saw (the smallest and largest over the ranks), instead of training apart and failing later.
    func requireSameStart(settings: String, dataBytes: Int) throws {
        #if MPI
        guard let parallel else { return }
        let hash = Array(settings.utf8).withUnsafeBytes(DataParallelRun.fnv1a)
        let hashes = try parallel.world.minMax(hash), sizes = try parallel.world.minMax(UInt64(dataBytes))
        guard hashes.min == hashes.max, sizes.min == sizes.max else {
            throw AttendError("the \(size) ranks were started differently (settings hash \(String(hashes.min, radix: 16)) and \(String(hashes.max, radix: 16)); "
                              + "data \(sizes.min) and \(sizes.max) bytes): start every rank with the same options and the same files")
        }
        #endif
    }

    /// This process's share, for the trainers that take one (`DataParallelShare.single` for one process).
    var share: DataParallelShare {
        #if MPI
        if let parallel { return parallel.share }
        #endif
        return .single
    }

    /// Replaces `count` floats by their sum over the ranks.
    func sumInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        #if MPI
        guard let parallel else { return }
        var offset = 0
        while offset < count {  // MPI counts are 32-bit
            let piece = min(count - offset, 1 << 30)
            try parallel.world.allReduceSum(values + offset, count: piece)
            offset += piece
        }
        #endif
    }

    /// Elementwise sums over the ranks.
    func sum(_ values: [Double]) throws -> [Double] {
        var values = values
        #if MPI
        if let parallel { try parallel.world.allReduceSum(&values) }
        #endif
        return values
    }

    /// The largest value over the ranks.
    func maximum(_ value: Double) throws -> Double {
        var values = [value]
        #if MPI
        if let parallel { try parallel.world.allReduceMax(&values) }
        #endif
        return values[0]
    }

    /// Whether `count` floats at `values` are bit-identical on every rank (a 64-bit hash's minimum and maximum agree).
    func identical(_ values: UnsafePointer<Float>, count: Int) throws -> Bool {
        #if MPI
        if let parallel {
            let (low, high) = try parallel.world.minMax(DataParallelRun.fnv1a(UnsafeRawBufferPointer(start: values, count: count * 4)))
            return low == high
        }
        #endif
        return true
    }

    /// 64-bit FNV-1a of `bytes`: what the ranks compare instead of the bytes themselves.
    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        return hash
    }

    /// Ends MPI (for a command without a model to compare at the end).
    func finish() throws {
        #if MPI
        parallel?.world.finish()
        #endif
    }

    /// Runs `work` on rank 0 and then, once it is done, on the other ranks: for work that fills a cache on disk the
    /// others then read (computed once, not raced over).
    func rootFirst<T>(_ work: () throws -> T) throws -> T {
        #if MPI
        if let parallel {
            if isRoot {
                let result = try work()
                try parallel.world.barrier(watched: false)
                return result
            }
            try parallel.world.barrier(watched: false)
        }
        #endif
        return try work()
    }

    /// Averages gradients over the ranks (nil: one process).
    var gradientHook: (([(name: String, tensor: Tensor)]) throws -> Void)? {
        #if MPI
        if let parallel { return { try parallel.averageGradients($0) } }
        #endif
        return nil
    }

    /// Averages gradients over the ranks, each counting `weight()` (its loss's items, e.g. masked tokens).
    func gradientHook(weight: @escaping () -> Double) -> (([(name: String, tensor: Tensor)]) throws -> Void)? {
        #if MPI
        if let parallel { return { try parallel.averageGradients($0, weight: weight()) } }
        #endif
        return nil
    }

    /// The step's loss, averaged over the ranks with weights.
    func meanLoss(_ loss: Float, weight: Double) throws -> Float {
        #if MPI
        if let parallel { return try parallel.averageLoss(loss, weight: weight) }
        #endif
        return loss
    }

    /// The step's loss, averaged over the ranks.
    func meanLoss(_ loss: Float) throws -> Float {
        #if MPI
        if let parallel { return try parallel.averageLoss(loss) }
        #endif
        return loss
    }

    /// Checks that every rank ends with bit-identical parameters, prints it on rank 0 with the time spent in
    /// all-reduce, and ends MPI. A difference is an error on every rank.
    func finish(_ model: Module, trainingSeconds: Double) throws {
        #if MPI
        guard let parallel else { return }
        let identical = try parallel.parametersIdentical(model)
        if isRoot {
            print(String(format: "data-parallel over %d ranks: parameters bit-identical on every rank: %@ (checksum %016llx); all-reduce %.1f s of %.1f s (%.1f%%)",
                         size, identical ? "yes" : "NO", DataParallel.checksum(model), parallel.communicationSeconds, trainingSeconds,
                         100 * parallel.communicationSeconds / max(trainingSeconds, 1e-9)))
        }
        parallel.world.finish()
        guard identical else { throw AttendError("rank \(rank): the parameters differ between ranks after training") }
        #endif
    }
}
