// Read-only memory-mapped files: a corpus is streamed from the page cache, and a model's quantized weights
// are used where they lie, so neither needs a copy in memory.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory-mapped file: its bytes without a copy in memory.
///
/// ```swift
/// let file = try MappedFile("text8")
/// let bytes = UnsafeBufferPointer(start: file.bytes, count: file.count)
/// let lines = bytes.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
/// ```
public final class MappedFile {
    public let path: String
    public let bytes: UnsafePointer<UInt8>
    public let count: Int
    private let mapping: UnsafeMutableRawPointer?

    /// `sequential`: tell the kernel the file is read front to back (read-ahead), as a corpus is.
    public init(_ path: String, sequential: Bool = true) throws {
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
        if sequential { madvise(m, count, MADV_SEQUENTIAL) }
        mapping = m
        bytes = UnsafePointer(m.assumingMemoryBound(to: UInt8.self))
    }

    deinit {
        if let mapping { munmap(mapping, count) } else { UnsafeMutablePointer(mutating: bytes).deallocate() }
    }
}

extension MappedFile {
    /// A file's bytes, mapped rather than copied, for the format readers; errors name the file.
    public static func contents(of path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw AttendError("\(path): no such file") }
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw AttendError("\(path): cannot read (\(error.localizedDescription))")
        }
    }
}
