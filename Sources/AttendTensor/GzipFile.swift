// Reading files that may be gzip-compressed (MNIST's .gz arrays, CLIP's merges): zlib reads plain files
// unchanged, so callers need not know which they have.

internal import CZlib
import Foundation

public enum GzipFile {
    /// The whole file, decompressed when it is gzip.
    public static func read(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw AttendError("\(path): no such file") }
        guard let file = gzopen(path, "rb") else { throw AttendError("\(path): cannot open") }
        defer { gzclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw AttendError("\(path): corrupt gzip data after \(bytes.count) bytes") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<Int(n)])
        }
        return bytes
    }
}
