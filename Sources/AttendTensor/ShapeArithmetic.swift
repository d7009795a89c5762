// Sizes that come from files and configs, multiplied without trapping. A header or config.json can claim any
// numbers; Swift's `*` traps on overflow and an allocation of more than the machine holds ends the process, so
// every size read from outside goes through these before anything is allocated from it.
import Foundation

public enum ShapeArithmetic {
    /// The number of elements of `shape`, or nil when a dimension is negative or the product does not fit an Int.
    ///
    /// ```swift
    /// ShapeArithmetic.elementCount([3, 4])           // 12
    /// ShapeArithmetic.elementCount([1 << 32, 1 << 32]) // nil
    /// ```
    public static func elementCount(_ shape: [Int]) -> Int? {
        guard shape.allSatisfy({ $0 >= 0 }) else { return nil }
        if shape.contains(0) { return 0 }
        var n = 1
        for d in shape {
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = product
        }
        return n
    }

    /// The sum of the element counts of `shapes`, or nil on a negative dimension or an overflow anywhere.
    public static func totalElements(_ shapes: [[Int]]) -> Int? {
        var total = 0
        for shape in shapes {
            guard let n = elementCount(shape) else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(n)
            if overflow { return nil }
            total = sum
        }
        return total
    }

    /// Throws, naming `source`, when tensors of `shapes` (a model's weights, as its config describes them) would need
    /// more bytes than this machine's memory: such a config is wrong, and allocating from it would end the process
    /// instead of reporting the error. `bytesPerValue` is what one value takes at the least (4 for float32 weights,
    /// 0.5 for a 4-bit GGUF file's).
    public static func requireFitsInMemory(_ shapes: [[Int]], source: String, bytesPerValue: Double = 4) throws {
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard let n = totalElements(shapes), Double(n) * bytesPerValue <= memory else {
            let count = totalElements(shapes).map { "\($0) values" } ?? "more than 2^63 values"
            throw AttendError("\(source): these sizes make a model of \(count) (at \(bytesPerValue) bytes each), more than this machine's \(Int(memory) >> 20) MiB of memory; check the sizes")
        }
    }
}
