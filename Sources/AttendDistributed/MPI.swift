// Data-parallel training on MPI (Open MPI, MPICH: whatever `mpirun` or Slurm's `srun` started the processes with).
// Every rank holds the whole model, reads its own slice of each global batch, and the gradients are averaged by
// all-reduce before each optimizer step, so every rank applies the same update and the parameters stay identical.
// Nothing here is a transport of Attend's own: MPI moves the bytes (shared memory between processes on one machine,
// TCP or InfiniBand between machines).

import AttendNN
import AttendTensor
import CMPI
import Foundation

/// The processes of one MPI job (MPI_COMM_WORLD).
///
/// ```swift
/// // mpirun -np 2 .build/release/attend gpt train ...   (each process runs this)
/// let world = try MPIWorld.start()
/// var x: [Float] = [Float(world.rank)]
/// try world.allReduceSum(&x)          // x == [1] on both ranks (0 + 1)
/// world.finish()
/// ```
public final class MPIWorld {
    public let rank: Int
    public let size: Int
    public var isRoot: Bool { rank == 0 }

    /// Whether a launcher started this process as part of an MPI job: Open MPI's mpirun, MPICH's or Intel's
    /// (PMI), or PMIx (Slurm's srun with --mpi=pmix).
    public static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].contains { environment[$0] != nil }
    }

    /// Seconds one collective call may wait for the other ranks before this process gives up (ATTEND_MPI_TIMEOUT,
    /// default 300). mpirun ends the job when a rank exits with an error, but a rank killed under a launcher that
    /// does not (Open MPI with `--mca orte_abort_on_non_zero_status 0`, some batch systems) would leave the others
    /// blocked in MPI_Allreduce forever: a watchdog thread ends this process with a message instead.
    public let stallTimeout: Double

    nonisolated(unsafe) private static var shared: MPIWorld?
    private var finished = false
    private let watch = NSLock()
    private var waitingSince: Date?
    private var waitingFor = ""

    private init(rank: Int, size: Int, stallTimeout: Double) { (self.rank, self.size, self.stallTimeout) = (rank, size, stallTimeout) }

    /// ATTEND_MPI_TIMEOUT: seconds, a positive number.
    static func stallTimeoutSetting() throws -> Double {
        guard let text = ProcessInfo.processInfo.environment["ATTEND_MPI_TIMEOUT"] else { return 300 }
        guard let seconds = Double(text), seconds.isFinite, seconds > 0 else {
            throw AttendError("ATTEND_MPI_TIMEOUT: expected a number of seconds above 0, got '\(text)'")
        }
        return seconds
    }

    /// Runs one collective call with the watchdog armed.
    private func collective<T>(_ what: String, _ body: () throws -> T) rethrows -> T {
        watch.lock(); waitingSince = Date(); waitingFor = what; watch.unlock()
        defer { watch.lock(); waitingSince = nil; watch.unlock() }
        return try body()
    }

    private func startWatchdog() {
        Thread.detachNewThread { [self] in
            while true {
                Thread.sleep(forTimeInterval: min(1, stallTimeout / 4))
                watch.lock()
                let waited = waitingSince.map { Date().timeIntervalSince($0) } ?? 0, what = waitingFor
                watch.unlock()
                guard waited > stallTimeout else { continue }
                FileHandle.standardError.write(Data(String(format: "attend (rank %d of %d): %@ waited %.0f s for the other ranks (ATTEND_MPI_TIMEOUT=%g): one of them died or hangs; exiting\n",
                                                           rank, size, what, waited, stallTimeout).utf8))
                // Not MPI_Abort: only the main thread may call MPI (MPI_THREAD_FUNNELED), and it is blocked.
                _exit(75)
            }
        }
    }

    /// Initializes MPI (once per process, as MPI allows) and returns the world. Only the thread that called this
    /// talks to MPI afterwards (MPI_THREAD_FUNNELED): Attend's kernels use their own threads for arithmetic only.
    public static func start() throws -> MPIWorld {
        if let shared { return shared }
        let stallTimeout = try stallTimeoutSetting()
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, attend_mpi_thread_funneled(), &provided), "MPI_Init_thread")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(attend_mpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(attend_mpi_comm_world(), &size), "MPI_Comm_size")
        let world = MPIWorld(rank: Int(rank), size: Int(size), stallTimeout: stallTimeout)
        if size > 1 { world.startWatchdog() }
        shared = world
        return world
    }

    /// MPI_Finalize: call once, at the end, on every rank.
    public func finish() {
        guard !finished else { return }
        finished = true
        MPI_Finalize()
    }

    static func check(_ code: Int32, _ what: String) throws {
        guard code != attend_mpi_success() else { return }
        var text = [CChar](repeating: 0, count: Int(attend_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        throw AttendError("\(what) failed: \(String(cString: text)) (MPI error \(code))")
    }

    /// Sums `count` floats at `values` over every rank, in place; every rank gets the same sums.
    public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        try collective("MPI_Allreduce") {
            try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), values, Int32(count), attend_mpi_float(), attend_mpi_sum(), attend_mpi_comm_world()), "MPI_Allreduce")
        }
    }

    public func allReduceSum(_ values: inout [Float]) throws {
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0.baseAddress!, count: $0.count) }
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        let count = Int32(values.count)
        try collective("MPI_Allreduce") {
            try values.withUnsafeMutableBufferPointer {
                try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), $0.baseAddress, count, attend_mpi_double(), attend_mpi_sum(), attend_mpi_comm_world()), "MPI_Allreduce")
            }
        }
    }

    /// The elementwise maximum over the ranks, in place.
    public func allReduceMax(_ values: inout [Double]) throws {
        let count = Int32(values.count)
        try collective("MPI_Allreduce") {
            try values.withUnsafeMutableBufferPointer {
                try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), $0.baseAddress, count, attend_mpi_double(), attend_mpi_max(), attend_mpi_comm_world()), "MPI_Allreduce")
            }
        }
    }

    /// Every rank's floats in rank order: rank r sends `counts[r]` floats from `local`, every rank receives all of
    /// them into `all` (`counts.reduce(0, +)` floats).
    public func allGather(_ local: UnsafePointer<Float>, counts: [Int], into all: UnsafeMutablePointer<Float>) throws {
        precondition(counts.count == size, "allGather: \(counts.count) counts for \(size) ranks")
        let counts32 = counts.map { Int32($0) }
        var displacements: [Int32] = [], offset: Int32 = 0
        for c in counts32 { displacements.append(offset); offset += c }
        try collective("MPI_Allgatherv") {
            try MPIWorld.check(MPI_Allgatherv(local, counts32[rank], attend_mpi_float(), all, counts32, displacements, attend_mpi_float(),
                                              attend_mpi_comm_world()), "MPI_Allgatherv")
        }
    }

    /// The smallest and largest of `value` over the ranks.
    public func minMax(_ value: UInt64) throws -> (min: UInt64, max: UInt64) {
        var low = value, high = value
        try collective("MPI_Allreduce") {
            try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), &low, 1, attend_mpi_uint64(), attend_mpi_min(), attend_mpi_comm_world()), "MPI_Allreduce")
            try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), &high, 1, attend_mpi_uint64(), attend_mpi_max(), attend_mpi_comm_world()), "MPI_Allreduce")
        }
        return (low, high)
    }

    /// Copies `bytes` bytes at `buffer` from rank `root` to every rank.
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int = 0) throws {
        var offset = 0
        // MPI counts are 32-bit: large buffers go in pieces.
        while offset < bytes {
            let piece = min(bytes - offset, 1 << 30)
            try collective("MPI_Bcast") {
                try MPIWorld.check(MPI_Bcast(buffer + offset, Int32(piece), attend_mpi_byte(), Int32(root), attend_mpi_comm_world()), "MPI_Bcast")
            }
            offset += piece
        }
    }

    /// Waits for every rank. `watched: false` leaves the watchdog out, for a wait known to be long (the other ranks
    /// filling a cache).
    public func barrier(watched: Bool = true) throws {
        if watched {
            try collective("MPI_Barrier") { try MPIWorld.check(MPI_Barrier(attend_mpi_comm_world()), "MPI_Barrier") }
        } else {
            try MPIWorld.check(MPI_Barrier(attend_mpi_comm_world()), "MPI_Barrier")
        }
    }
}

/// Data parallelism over an MPI world: the same start on every rank, and gradients averaged in buckets.
///
/// ```swift
/// let parallel = DataParallel(world: try MPIWorld.start())
/// try parallel.broadcastParameters(of: model)            // rank 0's initial weights everywhere
/// trainer.gradientHook = { try parallel.averageGradients($0) }
/// trainer.lossHook = { try parallel.averageLoss($0) }
/// ```
public final class DataParallel {
    public let world: MPIWorld
    /// Floats per all-reduce: gradients are packed into buckets of this size (PyTorch DDP's default is 25 MB), so a
    /// model of many small tensors costs a few messages, not one per tensor.
    public var bucketFloats: Int
    /// Seconds spent in all-reduce so far (to print the communication share).
    public private(set) var communicationSeconds = 0.0
    private var bucket: [Float] = []

    public init(world: MPIWorld, bucketBytes: Int = 25 << 20) {
        self.world = world
        bucketFloats = max(1, bucketBytes / 4)
    }

    /// Copies rank 0's tensors (parameters and buffers, `Module.namedTensors`) to every rank.
    public func broadcastParameters(of module: Module) throws {
        for (_, t) in module.namedTensors() {
            precondition(t.isContiguous, "DataParallel.broadcastParameters: a parameter is not contiguous")
            try world.broadcast(UnsafeMutableRawPointer(t.pointer), bytes: t.count * 4)
        }
    }

    /// Replaces every gradient by its mean over the ranks. A parameter without a gradient on this rank counts as
    /// zeros (another rank may have one), so every rank sends the same layout.
    public func averageGradients(_ parameters: [(name: String, tensor: Tensor)]) throws {
        try reduceGradients(parameters, before: 1, after: 1 / Float(world.size))
    }

    /// Replaces every gradient by the weighted mean over the ranks, each rank's gradient counting `weight` (for a
    /// loss that is a mean over a number of items that differs between ranks, such as masked tokens: the weight is
    /// that number, and the result is the gradient of the mean over every rank's items, as one process computes it).
    public func averageGradients(_ parameters: [(name: String, tensor: Tensor)], weight: Double) throws {
        var total = [weight]
        try world.allReduceSum(&total)
        guard total[0] > 0 else { throw AttendError("data-parallel averaging: the ranks' weights sum to \(total[0])") }
        try reduceGradients(parameters, before: Float(weight / total[0]), after: 1)
    }

    /// Replaces every gradient by its sum over the ranks (a loss every rank computes over the whole global batch,
    /// as contrastive training does with gathered features, and whose gradients reach each rank's own share).
    public func sumGradients(_ parameters: [(name: String, tensor: Tensor)]) throws {
        try reduceGradients(parameters, before: 1, after: 1)
    }

    /// All-reduces the gradients in buckets: each multiplied by `before` on the way in and by `after` on the way out.
    private func reduceGradients(_ parameters: [(name: String, tensor: Tensor)], before: Float, after: Float) throws {
        guard world.size > 1 else { return }
        let started = Date()
        let grads = parameters.map { p -> Tensor in
            let g = p.tensor.grad.map { $0.isContiguous ? $0 : $0.contiguous() } ?? Tensor.zeros(p.tensor.shape)
            p.tensor.grad = g
            return g
        }
        func scale(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ factor: Float) {
            guard factor != 1 else { return }
            for i in 0..<count { p[i] *= factor }
        }
        var start = 0
        while start < grads.count {
            // One bucket: whole tensors up to bucketFloats (a larger tensor goes alone).
            var end = start, floats = 0
            while end < grads.count && (end == start || floats + grads[end].count <= bucketFloats) { floats += grads[end].count; end += 1 }
            if end == start + 1 {
                // A bucket of one tensor is reduced where it lies: no copies in and out.
                let g = grads[start]
                scale(g.pointer, g.count, before)
                try world.allReduceSum(g.pointer, count: g.count)
                scale(g.pointer, g.count, after)
                start = end
                continue
            }
            if bucket.count < floats { bucket = [Float](repeating: 0, count: floats) }
            try bucket.withUnsafeMutableBufferPointer { b in
                var offset = 0
                for g in grads[start..<end] {
                    let (src, dst) = (g.pointer, b.baseAddress! + offset)
                    if before == 1 { dst.update(from: src, count: g.count) } else { for i in 0..<g.count { dst[i] = src[i] * before } }
                    offset += g.count
                }
                try world.allReduceSum(b.baseAddress!, count: floats)
                offset = 0
                for g in grads[start..<end] {
                    let (src, dst) = (b.baseAddress! + offset, g.pointer)
                    if after == 1 { dst.update(from: src, count: g.count) } else { for i in 0..<g.count { dst[i] = src[i] * after } }
                    offset += g.count
                }
            }
            start = end
        }
        communicationSeconds += Date().timeIntervalSince(started)
    }

    /// The mean of `loss` over the ranks (each rank's loss is the mean over its slice of the global batch).
    public func averageLoss(_ loss: Float) throws -> Float {
        var value = [Double(loss)]
        try world.allReduceSum(&value)
        return Float(value[0] / Double(world.size))
    }

    /// The mean of `loss` over the ranks, each counting `weight` (see `averageGradients(_:weight:)`).
    public func averageLoss(_ loss: Float, weight: Double) throws -> Float {
        var value = [Double(loss) * weight, weight]
        try world.allReduceSum(&value)
        return Float(value[0] / value[1])
    }

    /// Every rank's rows [sum of rowsPerRank, D] from this rank's `local` [rowsPerRank[rank], D], in rank order.
    public func gatherRows(_ local: Tensor, rowsPerRank: [Int]) throws -> Tensor {
        let d = local.shape[1]
        let c = local.contiguous()
        let out = Tensor(shape: [rowsPerRank.reduce(0, +), d])
        let started = Date()
        try world.allGather(c.pointer, counts: rowsPerRank.map { $0 * d }, into: out.pointer)
        communicationSeconds += Date().timeIntervalSince(started)
        return out
    }

    /// This rank's share for the trainers of AttendModels.
    public var share: DataParallelShare {
        DataParallelShare(index: world.rank, count: world.size,
                          averageGradients: { try self.averageGradients($0, weight: $1) },
                          sumGradients: { try self.sumGradients($0) },
                          averageLoss: { try self.averageLoss($0, weight: $1) },
                          allGather: { try self.gatherRows($0, rowsPerRank: $1) })
    }

    /// A 64-bit FNV-1a hash of every tensor's bytes in `module` (names and values).
    public static func checksum(_ module: Module) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: UnsafeRawBufferPointer) { for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 } }
        for (name, t) in module.namedTensors() {
            name.utf8CString.withUnsafeBytes(mix)
            let c = t.contiguous()
            mix(UnsafeRawBufferPointer(start: c.pointer, count: c.count * 4))
        }
        return hash
    }

    /// Whether every rank holds bit-identical tensors: the checksums' minimum and maximum over the ranks agree.
    public func parametersIdentical(_ module: Module) throws -> Bool {
        let (low, high) = try world.minMax(DataParallel.checksum(module))
        return low == high
    }
}
