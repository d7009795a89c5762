// Which instruction set the C kernels use (CAttendKernels/Dispatch.c holds the switch). Every kernel with a vector
// path asks this one switch, so that a test, a benchmark or a user can run the portable code an Apple or pre-AVX2
// machine runs on any machine.

import CAttendKernels

/// The instruction sets Attend's kernels choose from, lowest first.
///
/// ```swift
/// // Run a check on every path this machine has:
/// for level in SIMDLevel.available {
///     SIMDLevel.withLimit(level) { XCTAssertEqual(x.gelu().toArray(), expected) }
/// }
/// ```
/// `ATTEND_SIMD=portable` (or `avx2`, `avx512`) in the environment caps the level for a whole run.
public enum SIMDLevel: Int, CaseIterable, Comparable, Sendable {
    /// Plain C, what arm64 and CPUs without AVX2 run.
    case portable = 0
    /// AVX2 with FMA and F16C.
    case avx2 = 1
    /// AVX-512F as well.
    case avx512 = 2

    public static func < (a: SIMDLevel, b: SIMDLevel) -> Bool { a.rawValue < b.rawValue }

    /// The best level this CPU runs.
    public static var cpu: SIMDLevel { SIMDLevel(rawValue: Int(attend_simd_cpu_level())) ?? .portable }

    /// The level the kernels use now: the CPU's, lowered by `ATTEND_SIMD` or `withLimit`.
    public static var current: SIMDLevel { SIMDLevel(rawValue: Int(attend_simd_level())) ?? .portable }

    /// Every level up to the current one (the portable path always), for tests that run each path.
    public static var available: [SIMDLevel] { allCases.filter { $0 <= current } }

    /// Runs `body` with every kernel capped at `level`, then goes back to `ATTEND_SIMD` or the CPU's level.
    /// Not for use while other threads run kernels: the switch is process-wide.
    public static func withLimit<T>(_ level: SIMDLevel, _ body: () throws -> T) rethrows -> T {
        attend_set_simd_limit(Int32(level.rawValue))
        defer { attend_set_simd_limit(-1) }
        return try body()
    }

    /// The name `ATTEND_SIMD` takes for this level.
    public var name: String { ["portable", "avx2", "avx512"][rawValue] }
}
