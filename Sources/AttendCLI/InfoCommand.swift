import ArgumentParser
import AttendTensor

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show the compute setup: threads, BLAS, GEMM kernel.")

    func run() {
        print("threads: \(Parallel.threads)")
        print("BLAS: \(BLAS.loadedPath.map { $0 + (BLAS.beatsOwnKernel ? " (used: faster than the own kernel here)" : " (not used: slower than the own kernel here)") } ?? "none (own kernel)")")
        print("own GEMM micro-kernel: \(Gemm.ownKernelName)")
        print("backend: \(Backend.current.name)")
    }
}
