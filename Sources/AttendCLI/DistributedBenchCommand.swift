// `attend bench allreduce`: what averaging gradients costs per message size under mpirun, beside the bare
// MPI_Allreduce of the same bytes (Benchmarks/allreduce.sh prints Open MPI's own figure from a C program too).
#if MPI
import ArgumentParser
import AttendDistributed
import AttendNN
import AttendTensor
import Foundation

struct AllReduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce", abstract: "Under mpirun: gradient averaging (DataParallel) per message size against the bare MPI_Allreduce, GB/s.")
    @Option(parsing: .upToNextOption, help: "Message sizes in bytes.") var sizes: [Int] = (0...9).map { 1024 << (2 * $0) }
    @Option(help: "Timed repetitions per size (the median is printed).") var repeats = 20

    func validate() throws {
        guard !sizes.isEmpty, sizes.allSatisfy({ (4...(1 << 30)).contains($0) && $0 % 4 == 0 }) else {
            throw ValidationError("--sizes must be multiples of 4 bytes in 4...\(1 << 30)")
        }
        try Require.count(repeats, "--repeats", 1...100_000)
    }

    func run() throws {
        let world = try MPIWorld.start()
        defer { world.finish() }
        let parallel = DataParallel(world: world)
        if world.isRoot { print("ranks \(world.size); bytes, bare MPI_Allreduce us, DataParallel.averageGradients us, ratio, algorithm GB/s (bare)") }
        for bytes in sizes {
            let floats = bytes / 4
            var buffer = [Float](repeating: 1, count: floats)
            // The gradient of one parameter of `floats` values, as a trainer hands it over.
            let parameter = Tensor(shape: [floats], requiresGrad: true)
            parameter.grad = Tensor(shape: [floats], repeating: 1)
            let named = [(name: "w", tensor: parameter)]
            func median(_ body: () throws -> Void) throws -> Double {
                try body()
                var times: [Double] = []
                for _ in 0..<repeats {
                    try world.barrier()
                    let t = Date()
                    try body()
                    times.append(Date().timeIntervalSince(t))
                }
                // The slowest rank decides: take each repetition's maximum over the ranks.
                try world.allReduceMax(&times)
                return times.sorted()[times.count / 2]
            }
            let bare = try median { try world.allReduceSum(&buffer) }
            let averaged = try median { try parallel.averageGradients(named) }
            // An all-reduce moves 2 (n - 1) / n of the data per rank (ring algorithm's bus bandwidth, as nccl-tests prints).
            let busBytes = Double(bytes) * 2 * Double(world.size - 1) / Double(world.size)
            if world.isRoot {
                print(String(format: "%11d %12.1f %12.1f %8.2fx %8.2f", bytes, bare * 1e6, averaged * 1e6, bare / averaged, busBytes / bare / 1e9))
            }
        }
    }
}
#endif
