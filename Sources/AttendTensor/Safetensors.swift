// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets}, then raw little-endian data. Reads F32, F16, BF16, F64 and
// integer dtypes (all converted to Float32); writes F32. Writes go to a temporary file renamed into place.

import Foundation

/// The safetensors format: every tensor of a file with its metadata strings, and atomic writes.
///
/// ```swift
/// let file = try Safetensors.read("model.safetensors")
/// let w = file.tensors["embeddings.word_embeddings.weight"]
/// try Safetensors.write([(name: "w", tensor: Tensor.randn([4, 4], seed: 0))], metadata: ["note": "test"], to: "w.safetensors")
/// ```
public enum Safetensors {
    /// The tensors of a file and its `__metadata__` strings.
    public struct File {
        public var tensors: [String: Tensor]
        /// Tensor names in file order (data offset order).
        public var names: [String]
        public var metadata: [String: String]
    }

    /// Reads every tensor of `path`. Throws an `AttendError` naming the file (and tensor) when it is
    /// missing, truncated, malformed, or holds a dtype Attend cannot read.
    public static func read(_ path: String) throws -> File {
        let data = try MappedFile.contents(of: path)
        return try parse(data, source: path)
    }

    public static func parse(_ data: Data, source: String) throws -> File {
        guard data.count >= 8 else { throw AttendError("\(source): not a safetensors file (\(data.count) bytes, need an 8-byte header length)") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw AttendError("\(source): header length \(headerLength) exceeds the file size \(data.count); the file is truncated or not safetensors")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw AttendError("\(source): the JSON header does not parse")
        }
        let dataStart = 8 + Int(headerLength)
        let body = data.count - dataStart
        var tensors: [String: Tensor] = [:]
        var order: [(Int, String)] = []
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw AttendError("\(source): tensor '\(name)' has a malformed header entry (need dtype, shape, data_offsets)")
            }
            let (start, end) = (offsets[0], offsets[1])
            guard start >= 0, end >= start, end <= body else {
                throw AttendError("\(source): tensor '\(name)' data [\(start), \(end)) lies outside the \(body) data bytes; the file is truncated or corrupt")
            }
            let sizes = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]
            guard let elementSize = sizes[dtype] else {
                throw AttendError("\(source): tensor '\(name)' has dtype \(dtype); Attend reads \(sizes.keys.sorted().joined(separator: ", "))")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw AttendError("\(source): tensor '\(name)' has a negative dimension in \(shape)") }
            guard let n = ShapeArithmetic.elementCount(shape), n <= Int.max / 8, n * elementSize == end - start else {
                let needed = ShapeArithmetic.elementCount(shape).flatMap { $0 <= Int.max / 8 ? "\($0 * elementSize)" : nil } ?? "more than 2^63"
                throw AttendError("\(source): tensor '\(name)' of shape \(shape) and dtype \(dtype) needs \(needed) bytes, the header gives \(end - start)")
            }
            let t = Tensor(shape: shape)
            let dst = t.pointer
            data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let src = raw.baseAddress! + dataStart + start
                // Everything becomes Float32 (integer tensors such as position ids are small and exact).
                switch dtype {
                case "F32":
                    UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
                case "F16":
                    for i in 0..<n { dst[i] = HalfFloat.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
                case "BF16":  // the top half of a Float32
                    for i in 0..<n {
                        dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                    }
                case "F64": for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
                case "I64": for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
                case "I32": for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
                case "I16": for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
                case "I8": for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
                default: for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }  // U8, BOOL
                }
            }
            tensors[name] = t
            order.append((start, name))
        }
        return File(tensors: tensors, names: order.sorted { $0.0 < $1.0 }.map(\.1), metadata: metadata)
    }

    /// Serializes tensors (as F32, in the given order) with optional metadata.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        var seen = Set<String>()
        for (name, t) in tensors {
            guard seen.insert(name).inserted else { throw AttendError("safetensors: tensor name '\(name)' appears twice") }
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data section starts 8-byte aligned, as the format recommends.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in tensors {
            let c = t.contiguous()
            out.append(UnsafeBufferPointer(start: c.pointer, count: c.count))
        }
        return out
    }

    /// Writes tensors to `path` atomically: a crash mid-write leaves any previous file intact.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }
}

/// Whole-file writes through a temporary file in the same directory and a rename.
///
/// ```swift
/// try AtomicFile.write(Data("hello\n".utf8), to: "out/greeting.txt")
/// try AtomicFile.write([(vectors, "model.vec"), (state, "model.safetensors")])   // renamed together, after both are written
/// ```
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write([(data, path)])
    }

    /// Several files that belong together: every temporary file is written and synced first, then all are renamed
    /// in one go, so a run killed while writing leaves the previous set whole (the renames take microseconds,
    /// the writes seconds).
    public static func write(_ files: [(data: Data, path: String)]) throws {
        var written: [(tmp: URL, path: String)] = []
        do {
            for (data, path) in files {
                let url = URL(fileURLWithPath: path)
                let dir = url.deletingLastPathComponent()
                if !FileManager.default.fileExists(atPath: dir.path) {
                    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                }
                removeStaleTemporaries(of: url)
                let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
                written.append((tmp, path))
                try data.write(to: tmp)
                let fd = open(tmp.path, O_RDONLY)
                if fd >= 0 { fsync(fd); close(fd) }
            }
            for (tmp, path) in written where rename(tmp.path, path) != 0 {
                throw AttendError("cannot rename \(tmp.path) to \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            for (tmp, _) in written { try? FileManager.default.removeItem(at: tmp) }
            if let e = error as? AttendError { throw e }
            throw AttendError("\(files.last?.path ?? ""): cannot write (\(error.localizedDescription))")
        }
    }

    /// Temporary files `.NAME.tmp-PID` that a killed run left beside `url`: removed when their process is gone.
    static func removeStaleTemporaries(of url: URL) {
        let dir = url.deletingLastPathComponent().path, prefix = ".\(url.lastPathComponent).tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0, pid != ProcessInfo.processInfo.processIdentifier else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: dir + "/" + name) }
        }
    }
}

/// IEEE half-precision conversion by bit manipulation (Swift's Float16 is missing on Intel Macs).
public enum HalfFloat {
    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24.
            let v = Float(mantissa) * (1.0 / 16_777_216.0)
            return sign != 0 ? -v : v
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
    }
}
