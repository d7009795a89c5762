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

    nonisolated(unsafe) private static var shared: MPIWorld?
    private var finished = false

    private init(rank: Int, size: Int) { (self.rank, self.size) = (rank, size) }

    /// Initializes MPI (once per process, as MPI allows) and returns the world. Only the thread that called this
    /// talks to MPI afterwards (MPI_THREAD_FUNNELED): Attend's kernels use their own threads for arithmetic only.
    public static func start() throws -> MPIWorld {
        if let shared { return shared }
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, attend_mpi_thread_funneled(), &provided), "MPI_Init_thread")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(attend_mpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(attend_mpi_comm_world(), &size), "MPI_Comm_size")
        let world = MPIWorld(rank: Int(rank), size: Int(size))
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
        try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), values, Int32(count), attend_mpi_float(), attend_mpi_sum(), attend_mpi_comm_world()), "MPI_Allreduce")
    }

    public func allReduceSum(_ values: inout [Float]) throws {
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0.baseAddress!, count: $0.count) }
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        let count = Int32(values.count)
        try values.withUnsafeMutableBufferPointer {
            try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), $0.baseAddress, count, attend_mpi_double(), attend_mpi_sum(), attend_mpi_comm_world()), "MPI_Allreduce")
        }
    }

    /// The elementwise maximum over the ranks, in place.
    public func allReduceMax(_ values: inout [Double]) throws {
        let count = Int32(values.count)
        try values.withUnsafeMutableBufferPointer {
            try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), $0.baseAddress, count, attend_mpi_double(), attend_mpi_max(), attend_mpi_comm_world()), "MPI_Allreduce")
        }
    }

    /// The smallest and largest of `value` over the ranks.
    public func minMax(_ value: UInt64) throws -> (min: UInt64, max: UInt64) {
        var low = value, high = value
        try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), &low, 1, attend_mpi_uint64(), attend_mpi_min(), attend_mpi_comm_world()), "MPI_Allreduce")
        try MPIWorld.check(MPI_Allreduce(attend_mpi_in_place(), &high, 1, attend_mpi_uint64(), attend_mpi_max(), attend_mpi_comm_world()), "MPI_Allreduce")
        return (low, high)
    }

    /// Copies `bytes` bytes at `buffer` from rank `root` to every rank.
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int = 0) throws {
        var offset = 0
        // MPI counts are 32-bit: large buffers go in pieces.
        while offset < bytes {
            let piece = min(bytes - offset, 1 << 30)
            try MPIWorld.check(MPI_Bcast(buffer + offset, Int32(piece), attend_mpi_byte(), Int32(root), attend_mpi_comm_world()), "MPI_Bcast")
            offset += piece
        }
    }

    public func barrier() throws { try MPIWorld.check(MPI_Barrier(attend_mpi_comm_world()), "MPI_Barrier") }
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
        guard world.size > 1 else { return }
        let started = Date()
        let grads = parameters.map { p -> Tensor in
            let g = p.tensor.grad.map { $0.isContiguous ? $0 : $0.contiguous() } ?? Tensor.zeros(p.tensor.shape)
            p.tensor.grad = g
            return g
        }
        let scale = 1 / Float(world.size)
        var start = 0
        while start < grads.count {
            // One bucket: whole tensors up to bucketFloats (a larger tensor goes alone).
            var end = start, floats = 0
            while end < grads.count && (end == start || floats + grads[end].count <= bucketFloats) { floats += grads[end].count; end += 1 }
            if end == start + 1 {
                // A bucket of one tensor is reduced where it lies: no copies in and out.
                let g = grads[start]
                try world.allReduceSum(g.pointer, count: g.count)
                let p = g.pointer
                for i in 0..<g.count { p[i] *= scale }
                start = end
                continue
            }
            if bucket.count < floats { bucket = [Float](repeating: 0, count: floats) }
            try bucket.withUnsafeMutableBufferPointer { b in
                var offset = 0
                for g in grads[start..<end] { (b.baseAddress! + offset).update(from: g.pointer, count: g.count); offset += g.count }
                try world.allReduceSum(b.baseAddress!, count: floats)
                offset = 0
                for g in grads[start..<end] {
                    let (src, dst) = (b.baseAddress! + offset, g.pointer)
                    for i in 0..<g.count { dst[i] = src[i] * scale }
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
