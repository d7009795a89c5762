// Read-only memory-mapped files: the corpus is streamed from the page cache, so it need not fit in memory.

import AttendTensor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class MappedFile {
    public let path: String
    public let bytes: UnsafePointer<UInt8>
    public let count: Int
    private let mapping: UnsafeMutableRawPointer?

    public init(_ path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw AttendError("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw AttendError("\(path): cannot stat") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw AttendError("\(path): not a regular file") }
        count = Int(info.st_size)
        if count == 0 {
            mapping = nil
            bytes = UnsafePointer(UnsafeMutablePointer<UInt8>.allocate(capacity: 1))
            return
        }
        guard let m = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw AttendError("\(path): cannot map (\(String(cString: strerror(errno))))")
        }
        madvise(m, count, MADV_SEQUENTIAL)
        mapping = m
        bytes = UnsafePointer(m.assumingMemoryBound(to: UInt8.self))
    }

    deinit {
        if let mapping { munmap(mapping, count) } else { UnsafeMutablePointer(mutating: bytes).deallocate() }
    }

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
