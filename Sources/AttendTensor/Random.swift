// Seeded random numbers: xoshiro256** seeded through SplitMix64, so a seed gives the same tensors on
// every platform (Swift's SystemRandomNumberGenerator cannot be seeded).

import Foundation

/// A seeded random generator (xoshiro256**): one seed gives the same numbers, so the same weights, on every platform.
///
/// ```swift
/// var g = RandomGenerator(seed: 42)
/// let layer = Linear(16, 4, generator: &g)
/// let noise = Tensor.randn([2, 3], generator: &g)
/// let u = g.nextUniform()   // [0, 1)
/// ```
public struct RandomGenerator: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitMix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box-Muller).
    public mutating func nextNormal() -> Float {
        let u1 = Swift.max(nextUniform(), 1e-12), u2 = nextUniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2)
    }

    /// The generator layers use when none is passed; reseed it with `RandomGenerator.global = .init(seed:)`.
    public static var global = RandomGenerator(seed: 0x5EED)
}

/// Skipping initialization while building a model that a checkpoint fills right after: its tensors are
/// allocated but not written, so no time goes into random numbers and untouched memory is never paged in
/// (building SmolLM2 at random and then overwriting it cost 540 MB of peak memory).
public enum Initialization {
    @TaskLocal static var skipped = false

    /// Runs `body` with random and zero-filled tensors left unwritten. Everything made inside must be
    /// overwritten before it is read.
    public static func skipping<T>(_ body: () throws -> T) rethrows -> T {
        try $skipped.withValue(true) { try body() }
    }
}

extension Tensor {
    /// Normal samples with the given mean and standard deviation.
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout RandomGenerator,
                             requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(shape: shape, requiresGrad: requiresGrad)
        if Initialization.skipped { return t }
        let p = t.pointer
        for i in 0..<t.count { p[i] = mean + std * generator.nextNormal() }
        return t
    }

    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return randn(shape, mean: mean, std: std, generator: &g, requiresGrad: requiresGrad)
    }

    /// Uniform samples in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: inout RandomGenerator,
                               requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(shape: shape, requiresGrad: requiresGrad)
        if Initialization.skipped { return t }
        let p = t.pointer
        for i in 0..<t.count { p[i] = low + (high - low) * generator.nextUniform() }
        return t
    }

    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return uniform(shape, low: low, high: high, generator: &g, requiresGrad: requiresGrad)
    }
}
