// Range checks for option values. Every command calls them from `validate()`, which the argument parser runs before
// `run()`, so a bad value is refused by the option's name before any file is read or any memory is sized from it.
// `scripts/test-cli-options.py` tries every option of every command with 0, -1, nan, inf, 1e40 and Int64.max.

import ArgumentParser
import AttendTensor
import Foundation

enum Require {
    /// Widths, batch sizes, counts of layers, heads and positions: large enough for any model this machine can hold,
    /// small enough that no product of two of them overflows.
    static let sizeLimit = 1 << 24
    /// Steps, iterations, epochs and repeats: no loop counter or schedule built from them can overflow.
    static let stepLimit = 1 << 40

    /// An integer option within `range`.
    ///
    /// ```swift
    /// try Require.count(batchSize, "--batch-size", 1...Require.sizeLimit)
    /// ```
    static func count(_ value: Int, _ option: String, _ range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    /// The same for an option that may be absent.
    static func count(_ value: Int?, _ option: String, _ range: ClosedRange<Int>) throws {
        if let value { try count(value, option, range) }
    }

    /// A finite number within `range`; with `aboveLower`, the lower bound itself is refused too (a learning rate of 0).
    static func number<F: BinaryFloatingPoint>(_ value: F, _ option: String, _ range: ClosedRange<Double>, aboveLower: Bool = false) throws {
        let v = Double(value)
        guard v.isFinite, range.contains(v), !(aboveLower && v == range.lowerBound) else {
            let low = aboveLower ? "(\(range.lowerBound)" : "[\(range.lowerBound)"
            throw ValidationError("\(option) must be a finite number in \(low), \(range.upperBound)], got \(value)")
        }
    }

    /// The same for an option that may be absent.
    static func number<F: BinaryFloatingPoint>(_ value: F?, _ option: String, _ range: ClosedRange<Double>, aboveLower: Bool = false) throws {
        if let value { try number(value, option, range, aboveLower: aboveLower) }
    }

    /// A learning rate: finite, above 0, at most 10.
    static func learningRate<F: BinaryFloatingPoint>(_ value: F?, _ option: String) throws {
        try number(value, option, 0...10, aboveLower: true)
    }

    /// The options word2vec and DeepWalk/node2vec share.
    static func skipGram(dimension: Int, window: Int, negative: Int, hierarchicalSoftmax: Bool, epochs: Int, threads: Int) throws {
        try count(dimension, "--dimension", 1...100_000)
        try count(window, "--window", 1...1_000)
        try count(negative, "--negative", 0...1_000)
        guard negative > 0 || hierarchicalSoftmax else { throw ValidationError("--negative: use --negative N > 0 or --hs") }
        try count(epochs, "--epochs", 1...100_000)
        try count(threads, "--threads", 1...1_024)
    }

    /// A probability such as dropout: [0, 1).
    static func dropout<F: BinaryFloatingPoint>(_ value: F, _ option: String) throws {
        guard Double(value).isFinite, value >= 0, value < 1 else { throw ValidationError("\(option) must be in [0, 1), got \(value)") }
    }
}

/// Outputs never overwrite inputs.
enum OutputPath {
    /// Throws when `output` names one of `inputs`: the same path after resolving symbolic links, or (both existing)
    /// the same file under another name (a hard link).
    static func check(_ output: String, isNotInput inputs: [String]) throws {
        let out = URL(fileURLWithPath: output).resolvingSymlinksInPath().standardizedFileURL.path
        let outFile = identity(output)
        for input in inputs {
            let same = URL(fileURLWithPath: input).resolvingSymlinksInPath().standardizedFileURL.path == out
                || (outFile != nil && identity(input).map { $0 == outFile! } == true)
            if same { throw AttendError("\(output): the output would overwrite an input (\(input))") }
        }
    }

    /// (device, inode) of an existing file.
    private static func identity(_ path: String) -> [UInt64]? {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        return [UInt64(s.st_dev), UInt64(s.st_ino)]
    }
}
