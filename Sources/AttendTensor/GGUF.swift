// GGUF v3 (llama.cpp's model format): a header, typed metadata key-values, tensor descriptors (name,
// dimensions with the innermost first, type, offset), then aligned tensor data. Tensors are dequantized
// to Float32 on load: F32, F16, Q4_0, Q4_1 and Q8_0 (blocks of 32 elements, one or two f16 scales).

import CAttendKernels
import Foundation

public enum GGUFValue: Equatable {
    case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String), array([GGUFValue])

    public var int: Int? {
        switch self {
        case .uint(let v): return Int(exactly: v)
        case .int(let v): return Int(exactly: v)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .float(let v): return v
        case .uint(let v): return Double(v)
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var array: [GGUFValue]? { if case .array(let a) = self { return a } else { return nil } }
}

/// A GGUF file (llama.cpp's model format), mapped: metadata, tensor descriptors, and tensors read on request.
///
/// ```swift
/// let file = try GGUFFile("SmolLM2-135M-Instruct.Q4_1.gguf")
/// let layers = try file.requireInt("llama.block_count")
/// let embedding = try file.tensor("token_embd.weight")   // dequantized to Float32
/// let down = try file.quantizedMatrix("blk.0.ffn_down.weight")   // stays in its blocks; nil for F32 and F16
/// ```
public final class GGUFFile {
    public struct TensorInfo {
        public let name: String
        /// PyTorch order (outermost first): the reverse of GGUF's dimension list.
        public let shape: [Int]
        public let type: UInt32
        let offset: Int
    }

    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [String: TensorInfo]
    /// Tensor names in file order.
    public let tensorNames: [String]
    /// The file, mapped: quantized matrices point into it instead of copying their blocks.
    private let file: MappedFile
    private let data: Data
    private let dataStart: Int
    /// The key-value section as it lies in the file (for writing a modified copy) and its entry count.
    private let metadataBytes: Range<Int>
    private let metadataCount: UInt64

    public init(_ path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw AttendError("\(path): no such file") }
        file = try MappedFile(path, sequential: false)
        data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: file.bytes), count: file.count, deallocator: .none)
        var r = Reader(data: data, path: path)
        guard try r.bytes(4) == Array("GGUF".utf8) else { throw AttendError("\(path): not a GGUF file (bad magic)") }
        version = try r.u32()
        guard version == 2 || version == 3 else { throw AttendError("\(path): GGUF version \(version); Attend reads versions 2 and 3") }
        let tensorCount = try r.u64(), kvCount = try r.u64()
        guard tensorCount < 1 << 20, kvCount < 1 << 20 else { throw AttendError("\(path): implausible header counts; the file is corrupt") }
        var meta: [String: GGUFValue] = [:]
        let metadataStart = r.position
        for _ in 0..<kvCount {
            let key = try r.string()
            meta[key] = try r.value(type: try r.u32(), key: key)
        }
        metadata = meta
        metadataBytes = metadataStart..<r.position
        metadataCount = kvCount
        var infos: [String: TensorInfo] = [:], names: [String] = []
        for _ in 0..<tensorCount {
            let name = try r.string()
            let rank = Int(try r.u32())
            guard rank <= 4 else { throw AttendError("\(path): tensor '\(name)' has \(rank) dimensions") }
            var dims: [Int] = []
            for _ in 0..<rank {
                let d = try r.u64()
                // A dimension is a count of elements in a file of data.count bytes; the element count is checked below.
                guard let size = Int(exactly: d), size <= data.count * 8 else {
                    throw AttendError("\(path): tensor '\(name)' has dimension \(d), more elements than a \(data.count)-byte file holds")
                }
                dims.append(size)
            }
            let type = try r.u32()
            let rawOffset = try r.u64()
            guard let offset = Int(exactly: rawOffset), offset <= data.count else {
                throw AttendError("\(path): tensor '\(name)' has data offset \(rawOffset), past the end of the \(data.count)-byte file")
            }
            infos[name] = TensorInfo(name: name, shape: dims.reversed(), type: type, offset: offset)
            names.append(name)
        }
        let alignment = try GGUFFile.alignment(meta, path: path)
        dataStart = (r.position + alignment - 1) / alignment * alignment
        tensors = infos
        tensorNames = names
        for info in infos.values {
            let bytes = try GGUFFile.byteCount(info, path: path)
            guard dataStart <= data.count, info.offset <= data.count - dataStart, bytes <= data.count - dataStart - info.offset else {
                throw AttendError("\(path): tensor '\(info.name)' ends past the end of the file; the file is truncated")
            }
        }
    }

    /// `general.alignment` (default 32): a power of two up to 2^16, as llama.cpp requires.
    static func alignment(_ meta: [String: GGUFValue], path: String) throws -> Int {
        guard let value = meta["general.alignment"] else { return 32 }
        guard let a = value.int, a > 0, a <= 1 << 16, a & (a - 1) == 0 else {
            throw AttendError("\(path): metadata 'general.alignment' is \(value); it must be a power of two up to 65536")
        }
        return a
    }

    /// Writes a copy of this file to `path` (a temporary file renamed into place) with the tensors in
    /// `replacing` (GGUF names) stored as float32 instead; the metadata and every other tensor are copied
    /// byte for byte.
    public func write(replacing: [String: Tensor], to path: String) throws {
        for (name, t) in replacing {
            guard let info = tensors[name] else { throw AttendError("\(self.path): no tensor '\(name)' to replace") }
            guard info.shape == t.shape else { throw AttendError("\(self.path): tensor '\(name)' has shape \(info.shape), the replacement \(t.shape)") }
        }
        guard URL(fileURLWithPath: path).standardizedFileURL.path != URL(fileURLWithPath: self.path).standardizedFileURL.path else {
            throw AttendError("\(path): the output would overwrite the model it is made from")
        }
        let alignment = try GGUFFile.alignment(metadata, path: self.path)
        func pad(_ out: inout Data) { while out.count % alignment != 0 { out.append(0) } }
        func append<T: FixedWidthInteger>(_ v: T, to out: inout Data) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        var layout: [(name: String, type: UInt32, offset: Int, bytes: Int)] = []
        var offset = 0
        for name in tensorNames {
            let info = tensors[name]!
            let replaced = replacing[name] != nil
            let bytes = replaced ? 4 * info.shape.reduce(1, *) : try GGUFFile.byteCount(info, path: self.path)
            offset = (offset + alignment - 1) / alignment * alignment
            layout.append((name, replaced ? 0 : info.type, offset, bytes))
            offset += bytes
        }
        var out = Data()
        out.reserveCapacity(metadataBytes.upperBound + tensorNames.count * 96 + offset + alignment)
        out.append(contentsOf: Array("GGUF".utf8))
        append(version, to: &out)
        append(UInt64(tensorNames.count), to: &out)
        append(metadataCount, to: &out)
        out.append(data[(data.startIndex + metadataBytes.lowerBound)..<(data.startIndex + metadataBytes.upperBound)])
        for entry in layout {
            let utf8 = Array(entry.name.utf8)
            append(UInt64(utf8.count), to: &out)
            out.append(contentsOf: utf8)
            let dims = tensors[entry.name]!.shape.reversed()
            append(UInt32(dims.count), to: &out)
            for d in dims { append(UInt64(d), to: &out) }
            append(entry.type, to: &out)
            append(UInt64(entry.offset), to: &out)
        }
        pad(&out)
        let start = out.count
        for entry in layout {
            while out.count - start < entry.offset { out.append(0) }
            if let t = replacing[entry.name] {
                let c = t.contiguous()
                out.append(UnsafeBufferPointer(start: c.pointer, count: c.count))
            } else {
                let from = data.startIndex + dataStart + tensors[entry.name]!.offset
                out.append(data[from..<(from + entry.bytes)])
            }
        }
        try AtomicFile.write(out, to: path)
    }

    /// Bytes per block of 32 weights: Q4_0 (2) f16 scale + 16 bytes of nibbles, Q4_1 (3) also an f16 minimum,
    /// Q8_0 (8) f16 scale + 32 bytes.
    static func blockBytes(_ type: UInt32) -> Int { type == 2 ? 18 : type == 3 ? 20 : 34 }

    static func byteCount(_ info: TensorInfo, path: String) throws -> Int {
        // The element count with overflow checks (each dimension is at most 8 x the file's size, the product need not be).
        var n = info.shape.contains(0) ? 0 : 1
        for d in info.shape where n > 0 {
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int.max / 8 else { throw AttendError("\(path): tensor '\(info.name)' has an impossible shape \(info.shape)") }
            n = product
        }
        switch info.type {
        case 0: return 4 * n
        case 1: return 2 * n
        case 2, 3, 8:
            guard n % 32 == 0 else { throw AttendError("\(path): tensor '\(info.name)' has \(n) elements, not a multiple of the 32-element block") }
            return n / 32 * blockBytes(info.type)
        default:
            throw AttendError("\(path): tensor '\(info.name)' has GGML type \(info.type); Attend reads F32 (0), F16 (1), Q4_0 (2), Q4_1 (3) and Q8_0 (8)")
        }
    }

    /// The named tensor, dequantized to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else { throw AttendError("\(path): tensor '\(name)' is missing") }
        let t = Tensor(shape: info.shape)
        try read(name, into: t)
        return t
    }

    /// Dequantizes the named tensor straight into `t` (contiguous, of the same shape): no temporary copy.
    public func read(_ name: String, into t: Tensor) throws {
        guard let info = tensors[name] else { throw AttendError("\(path): tensor '\(name)' is missing") }
        guard t.shape == info.shape else { throw AttendError("\(path): tensor '\(name)' has shape \(info.shape), expected \(t.shape)") }
        precondition(t.isContiguous, "GGUFFile.read(_:into:) needs a contiguous tensor")
        let n = t.count, dst = t.pointer
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let src = raw.baseAddress! + dataStart + info.offset
            func half(_ at: Int) -> Float { HalfFloat.toFloat(src.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
            switch info.type {
            case 0: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * n)
            case 1: for i in 0..<n { dst[i] = half(2 * i) }
            default:  // Q4_0, Q4_1, Q8_0: the same kernel as the products' tiles, so both give the same floats
                let w = src.assumingMemoryBound(to: UInt8.self), bytes = GGUFFile.blockBytes(info.type)
                Parallel.forRanges(n / 32, costPerItem: 32) { blocks in
                    attend_dequantize_rows(Int32(info.type), w + blocks.lowerBound * bytes, blocks.count, 32, dst + 32 * blocks.lowerBound)
                }
            }
        }
    }

    public func requireInt(_ key: String) throws -> Int {
        guard let v = metadata[key]?.int else { throw AttendError("\(path): metadata '\(key)' is missing or not an integer") }
        return v
    }

    struct Reader {
        let data: Data
        let path: String
        var position = 0

        mutating func bytes(_ n: Int) throws -> [UInt8] {
            guard n >= 0, position + n <= data.count else { throw AttendError("\(path): truncated header at byte \(position)") }
            defer { position += n }
            return Array(data[(data.startIndex + position)..<(data.startIndex + position + n)])
        }
        mutating func scalar<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let size = MemoryLayout<T>.size
            guard position + size <= data.count else { throw AttendError("\(path): truncated header at byte \(position)") }
            defer { position += size }
            return data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: T.self)) }
        }
        mutating func u32() throws -> UInt32 { try scalar(UInt32.self) }
        mutating func u64() throws -> UInt64 { try scalar(UInt64.self) }
        mutating func string() throws -> String {
            let n = try u64()
            guard n < 1 << 30 else { throw AttendError("\(path): implausible string length \(n) at byte \(position)") }
            return String(decoding: try bytes(Int(n)), as: UTF8.self)
        }
        /// Arrays nest at most this deep (llama.cpp's files use none); deeper is refused before the stack runs out.
        static let maxArrayDepth = 16

        /// The fewest bytes one value of `type` takes in the file.
        static func minimumBytes(_ type: UInt32) -> Int {
            switch type {
            case 0, 1, 7: return 1
            case 2, 3: return 2
            case 4, 5, 6: return 4
            case 9: return 12
            default: return 8
            }
        }

        mutating func value(type: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
            switch type {
            case 0: return .uint(UInt64(try scalar(UInt8.self)))
            case 1: return .int(Int64(try scalar(Int8.self)))
            case 2: return .uint(UInt64(try scalar(UInt16.self)))
            case 3: return .int(Int64(try scalar(Int16.self)))
            case 4: return .uint(UInt64(try u32()))
            case 5: return .int(Int64(try scalar(Int32.self)))
            case 6: return .float(Double(Float(bitPattern: try u32())))
            case 7: return .bool(try scalar(UInt8.self) != 0)
            case 8: return .string(try string())
            case 9:
                let elementType = try u32()
                let n = try u64()
                // Each element takes bytes of the file, so the length cannot exceed what is left of it.
                let left = UInt64(data.count - position) / UInt64(Reader.minimumBytes(elementType))
                guard n < 1 << 26, n <= left else {
                    throw AttendError("\(path): metadata '\(key)' has an implausible array length \(n) (\(data.count - position) bytes are left)")
                }
                guard elementType != 9 || depth < Reader.maxArrayDepth else {
                    throw AttendError("\(path): metadata '\(key)' nests arrays deeper than \(Reader.maxArrayDepth)")
                }
                var items: [GGUFValue] = []
                items.reserveCapacity(Int(n))
                for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
                return .array(items)
            case 10: return .uint(try u64())
            case 11: return .int(Int64(bitPattern: try u64()))
            case 12: return .float(Double(bitPattern: try u64()))
            default: throw AttendError("\(path): metadata '\(key)' has unknown value type \(type)")
            }
        }
    }
}

/// A weight matrix kept in its GGML quantized blocks (Q4_0, Q4_1 or Q8_0), multiplied by vectors directly:
/// decoding one token reads every weight once, so fewer bytes per weight means more tokens per second.
public final class QuantizedMatrix {
    public let type: UInt32
    public let rows: Int
    public let columns: Int
    let bytes: UnsafeRawPointer
    /// Keeps the mapped file (which `bytes` points into) alive.
    let owner: AnyObject

    /// Q4_0 and Q4_1 weights repacked in groups of 8 rows for `matmul(_: QuantizedActivations)`, made on first use.
    private var repacked: UnsafeMutableRawPointer?
    private let repacking = NSLock()

    init(type: UInt32, rows: Int, columns: Int, bytes: UnsafeRawPointer, owner: AnyObject) {
        self.type = type
        self.rows = rows
        self.columns = columns
        self.bytes = bytes
        self.owner = owner
    }

    deinit { repacked?.deallocate() }

    /// Whether many tokens multiply fastest with 8-bit activations (`matmul(_: QuantizedActivations)`) rather than
    /// with float tiles (`matmul(_: Tensor)`): Q4_0, whose repacked kernel multiplies 8 rows by 4 tokens per pass.
    public var prefersInt8Activations: Bool { type == 2 && rows % 8 == 0 }

    /// Whether 8-bit activations multiply this matrix in groups of 8 rows (`attend_gemm_q4x8_q8`): Q4_0 and Q4_1 with
    /// a multiple of 8 rows. For one token (a decoding step) that kernel takes about a third of the instructions per
    /// weight of the one-row kernel, which keeps a row's 32-weight block and its scale to itself.
    var multipliesInRowGroups: Bool { (type == 2 || type == 3) && rows % 8 == 0 }

    /// The weights in groups of 8 rows (`attend_repack_q4x8`), repacked once, by whichever caller comes first.
    func repackedRows() -> UnsafeRawPointer {
        repacking.lock()
        defer { repacking.unlock() }
        if let repacked { return UnsafeRawPointer(repacked) }
        let out = UnsafeMutableRawPointer.allocate(byteCount: attend_q4x8_bytes(Int32(type), rows, columns), alignment: 64)
        attend_repack_q4x8(Int32(type), bytes.assumingMemoryBound(to: UInt8.self), rows, columns, out.assumingMemoryBound(to: UInt8.self))
        repacked = out
        // The file's pages of this matrix are read again only by embedding lookups (`rows(_:)`) and float vectors
        // (`matvec`): hand them back, so the weights are not resident twice (float tiles expand from the repacked
        // copy, `matmul(_: Tensor)`). Only for a read-only file mapping, whose pages the kernel refills from the
        // file on the next read (on anonymous memory MADV_DONTNEED would zero them).
        if owner is MappedFile {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let start = (Int(bitPattern: bytes) + page - 1) / page * page, end = (Int(bitPattern: bytes) + rows * rowBytes) / page * page
            if end > start { madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED) }
        }
        return UnsafeRawPointer(out)
    }

    /// The repacked weights if some caller made them, else nil.
    var repackedIfMade: UnsafeRawPointer? {
        repacking.lock()
        defer { repacking.unlock() }
        return repacked.map { UnsafeRawPointer($0) }
    }

    /// W x for x of shape [columns] or [1, columns]; returns [1, rows].
    public func matvec(_ x: Tensor) -> Tensor {
        precondition(x.count == columns, "QuantizedMatrix [\(rows), \(columns)] times a vector of shape \(x.shape)")
        let xc = x.contiguous()
        let out = Tensor(shape: [1, rows])
        let src = xc.pointer, dst = out.pointer, rowBytes = self.rowBytes
        let w = bytes.assumingMemoryBound(to: UInt8.self)
        Parallel.forRanges(rows, costPerItem: columns / 4) { r in
            attend_gemv_quantized(Int32(type), w + r.lowerBound * rowBytes, r.count, columns, src, dst + r.lowerBound)
        }
        return out
    }
}

extension QuantizedMatrix {
    var rowBytes: Int { columns / 32 * GGUFFile.blockBytes(type) }

    /// The rows `ids` as float32, [ids.count, columns]: an embedding lookup that leaves the table quantized.
    public func rows(_ ids: [Int32]) -> Tensor {
        let out = Tensor(shape: [ids.count, columns])
        let w = bytes.assumingMemoryBound(to: UInt8.self)
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < rows, "QuantizedMatrix: row \(id) is outside [0, \(rows))")
            attend_dequantize_rows(Int32(type), w + Int(id) * rowBytes, 1, columns, out.pointer + i * columns)
        }
        return out
    }

    /// x W^T, [T, rows], for float activations x [T, columns]: exact float32 arithmetic without a float copy
    /// of W. Each thread expands a tile of rows (small enough to stay in its core's cache) and multiplies it
    /// with one SGEMM; the expansion costs about a tenth of the product for a 64-token prompt.
    public func matmul(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == columns, "QuantizedMatrix [\(rows), \(columns)] times activations of shape \(x.shape)")
        let xc = x.contiguous()
        let t = xc.count / columns
        let out = Tensor(shape: [t, rows])
        let tile = QuantizedMatrix.tileRows, tiles = (rows + tile - 1) / tile
        let (w, a, y, rowBytes, cols, rows, type) = (bytes.assumingMemoryBound(to: UInt8.self), xc.pointer, out.pointer, self.rowBytes, columns, self.rows, type)
        // Once repacked, the tiles come from the repacked copy, put back in GGUF's layout first (the file's pages
        // were handed back): the same bytes, so the same floats.
        let packed = repackedIfMade?.assumingMemoryBound(to: UInt8.self)
        Parallel.forRanges(tiles, costPerItem: tile * cols * t) { r in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * cols)
            let blocks = packed == nil ? nil : UnsafeMutablePointer<UInt8>.allocate(capacity: tile * rowBytes)
            defer { scratch.deallocate(); blocks?.deallocate() }
            for i in r {
                let lo = i * tile, n = Swift.min(tile, rows - lo)
                if let packed, let blocks {
                    attend_unpack_q4x8(Int32(type), packed, lo / 8, n / 8, cols, blocks)
                    attend_dequantize_rows(Int32(type), blocks, n, cols, scratch)
                } else {
                    attend_dequantize_rows(Int32(type), w + lo * rowBytes, n, cols, scratch)
                }
                Gemm.sgemm(transA: false, transB: true, m: t, n: n, k: cols, a: a, lda: cols, b: scratch, ldb: cols,
                           c: y + lo, ldc: rows, threads: 1)
            }
        }
        return out
    }

    /// Rows expanded per SGEMM call in `matmul(_:)` (a multiple of 8: a tile is whole groups of the repacked rows).
    static let tileRows = 128
}

/// Activations [T, columns] quantized to int8 blocks of 32 (GGML's Q8_1 layout, scales rounded to f16),
/// to be multiplied by quantized weights as llama.cpp does. Quantize once, multiply by several matrices.
public final class QuantizedActivations {
    public let tokens: Int
    public let columns: Int
    let blocks: UnsafeMutablePointer<attend_q8_block>

    public init(_ x: Tensor) {
        precondition(x.shape.last.map { $0 % 32 == 0 } == true, "QuantizedActivations: the last dimension of \(x.shape) is not a multiple of 32")
        columns = x.shape.last!
        tokens = x.count / columns
        blocks = .allocate(capacity: x.count / 32)
        attend_quantize_q8(x.contiguous().pointer, x.count, blocks)
    }

    deinit { blocks.deallocate() }
}

extension QuantizedMatrix {
    /// x W^T [T, rows] with 8-bit activations: integer block dot products, llama.cpp's arithmetic.
    public func matmul(_ x: QuantizedActivations) -> Tensor {
        precondition(x.columns == columns, "QuantizedMatrix [\(rows), \(columns)] times activations with \(x.columns) columns")
        let out = Tensor(shape: [x.tokens, rows])
        let dst = out.pointer, rowBytes = self.rowBytes
        let (t, n, a) = (x.tokens, columns, x.blocks)
        if multipliesInRowGroups {
            let packed = repackedRows().assumingMemoryBound(to: UInt8.self), type = Int32(type)
            Parallel.forRanges(rows / 8, costPerItem: 8 * columns * t) { groups in
                attend_gemm_q4x8_q8(type, packed, groups.lowerBound, groups.count, n, a, t, dst, rows)
            }
            return out
        }
        let w = bytes.assumingMemoryBound(to: UInt8.self)
        Parallel.forRanges(rows, costPerItem: columns * t) { r in
            attend_gemm_quantized_q8(Int32(type), w + r.lowerBound * rowBytes, r.count, n, a, t, dst + r.lowerBound, rows)
        }
        return out
    }

    /// x W_i^T for several matrices that read the same activations (a layer's query, key and value; its gate and
    /// up), each [x.tokens, rows_i], in one parallel pass over all their rows. A decoding step of SmolLM2 makes seven
    /// products per layer, the key's and value's only 192 rows; the threads meeting once per group instead of once
    /// per matrix is what this saves. Equal to `matrices.map { $0.matmul(x) }`, element for element.
    ///
    /// ```swift
    /// let a = QuantizedActivations(x)
    /// let qkv = QuantizedMatrix.matmul([query, key, value], a)   // three tensors, one pass
    /// ```
    public static func matmul(_ matrices: [QuantizedMatrix], _ x: QuantizedActivations) -> [Tensor] {
        for m in matrices {
            precondition(m.columns == x.columns, "QuantizedMatrix [\(m.rows), \(m.columns)] times activations with \(x.columns) columns")
        }
        let outputs = matrices.map { Tensor(shape: [x.tokens, $0.rows]) }
        // Units of 8 rows (the repacked kernel's group; any matrix's last unit may be shorter), numbered across
        // the matrices in order; each thread takes a contiguous run of units and multiplies each matrix's part of it
        // with one kernel call.
        let unitRows = 8
        var firstUnit = [0]
        for m in matrices { firstUnit.append(firstUnit.last! + (m.rows + unitRows - 1) / unitRows) }
        let (t, n, a) = (x.tokens, x.columns, x.blocks)
        let pointers = outputs.map { $0.pointer }
        let packed = matrices.map { $0.multipliesInRowGroups ? $0.repackedRows().assumingMemoryBound(to: UInt8.self) : nil }
        Parallel.forRanges(firstUnit.last!, costPerItem: unitRows * n * t) { units in
            for (i, m) in matrices.enumerated() {
                let lo = Swift.max(units.lowerBound, firstUnit[i]), hi = Swift.min(units.upperBound, firstUnit[i + 1])
                guard lo < hi else { continue }
                let row0 = (lo - firstUnit[i]) * unitRows, row1 = Swift.min(m.rows, (hi - firstUnit[i]) * unitRows)
                if let packed = packed[i] {
                    attend_gemm_q4x8_q8(Int32(m.type), packed, row0 / unitRows, (row1 - row0) / unitRows, n, a, t, pointers[i], m.rows)
                } else {
                    attend_gemm_quantized_q8(Int32(m.type), m.bytes.assumingMemoryBound(to: UInt8.self) + row0 * m.rowBytes,
                                             row1 - row0, n, a, t, pointers[i] + row0, m.rows)
                }
            }
        }
        return outputs
    }
}

extension GGUFFile {
    /// The named 2-D tensor as a QuantizedMatrix, or nil when it is not Q4_0, Q4_1 or Q8_0.
    public func quantizedMatrix(_ name: String) throws -> QuantizedMatrix? {
        guard let info = tensors[name] else { throw AttendError("\(path): tensor '\(name)' is missing") }
        guard info.shape.count == 2, [2, 3, 8].contains(info.type) else { return nil }
        _ = try GGUFFile.byteCount(info, path: path)  // a supported type; the init checked the blocks lie inside the file
        return QuantizedMatrix(type: info.type, rows: info.shape[0], columns: info.shape[1],
                               bytes: UnsafeRawPointer(file.bytes) + dataStart + info.offset, owner: file)
    }
}
