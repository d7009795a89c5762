// Reading a memory-mapped corpus (MappedFile, in AttendTensor): line-aligned ranges for threads, and tokens.

import AttendTensor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MappedFile {
    /// Splits [0, count) into `parts` ranges that start at line beginnings.
    public func lineAlignedRanges(_ parts: Int) -> [Range<Int>] {
        var starts = [0]
        for p in 1..<max(parts, 1) {
            var i = count * p / parts
            while i < count && bytes[i - 1] != UInt8(ascii: "\n") { i += 1 }
            starts.append(max(i, starts.last!))
        }
        starts.append(count)
        return (0..<max(parts, 1)).map { starts[$0]..<starts[$0 + 1] }
    }
}

@inline(__always) func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C }

/// Calls `body(wordStart, wordLength)` for each whitespace-separated token in `range`, and
/// `endOfLine()` after each newline.
@inline(__always)
func forEachToken(_ bytes: UnsafePointer<UInt8>, _ range: Range<Int>, _ body: (Int, Int) -> Void, endOfLine: () -> Void) {
    var i = range.lowerBound
    let end = range.upperBound
    while i < end {
        while i < end && isSpace(bytes[i]) {
            if bytes[i] == 0x0A { endOfLine() }
            i += 1
        }
        let start = i
        while i < end && !isSpace(bytes[i]) { i += 1 }
        if i > start { body(start, i - start) }
    }
}
