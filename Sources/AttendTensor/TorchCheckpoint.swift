// PyTorch checkpoints (`torch.save`) without Python: the ZIP format PyTorch writes since 1.6 (`archive/data.pkl` plus
// one entry per storage) and the legacy format before it (five pickles back to back, then the raw storages). Both
// hold a pickle whose tensors point at storages through persistent ids. The unpickler here is safe: it implements
// the opcodes a state dict uses, builds only plain values, and accepts a fixed set of globals (OrderedDict, the
// tensor rebuilders, storage types); any other global, opcode or persistent id is refused with an error that names
// it. Nothing in the file is executed.

import Foundation

/// The tensors of a `torch.save` file, converted to Float32.
///
/// ```swift
/// let checkpoint = try TorchCheckpoint.read("efficientnet-lite0.pth")
/// let stem = checkpoint.tensors["_conv_stem.weight"]!   // [32, 3, 3, 3]
/// print(checkpoint.names.prefix(3))                      // state-dict order
/// ```
public enum TorchCheckpoint {
    public struct File {
        public var tensors: [String: Tensor]
        /// Names in the state dict's order.
        public var names: [String]
        /// "zip" or "legacy".
        public var format: String
    }

    /// Reads a state dict (a dict of tensors, possibly nested under "state_dict" or "model"). Throws an
    /// `AttendError` naming the file for anything it cannot read safely.
    public static func read(_ path: String) throws -> File {
        let data = try MappedFile.contents(of: path)
        return try parse(data, source: path)
    }

    public static func parse(_ data: Data, source: String) throws -> File {
        if ZipArchive.looksLikeZip(data) { return try parseZip(data, source: source) }
        guard data.first == 0x80 else {
            throw AttendError("\(source): not a PyTorch checkpoint (neither a ZIP archive nor a pickle)")
        }
        return try parseLegacy(data, source: source)
    }

    // MARK: The two containers

    static func parseZip(_ data: Data, source: String) throws -> File {
        let zip = try ZipArchive(data, source: source)
        guard let pickleEntry = zip.entries.first(where: { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }) else {
            throw AttendError("\(source): a ZIP archive without data.pkl is not a PyTorch checkpoint")
        }
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))
        if let order = zip.entry(named: prefix + "byteorder") {
            let text = String(decoding: try zip.read(order), as: UTF8.self)
            guard text == "little" else { throw AttendError("\(source): storages are \(text)-endian; Attend reads little-endian") }
        }
        var storages: [String: StorageBytes] = [:]
        let root = try Unpickler(try zip.read(pickleEntry), source: source) { pid in
            let (type, key, count) = try storageReference(pid, source: source)
            if let s = storages[key] { return .storage(s) }
            guard let entry = zip.entry(named: prefix + "data/" + key) else {
                throw AttendError("\(source): storage '\(key)' is missing from the archive")
            }
            guard entry.size / type.size >= count else {
                throw AttendError("\(source): storage '\(key)' holds \(entry.size) bytes, fewer than \(count) \(type.name) elements")
            }
            let s = StorageBytes(type: type, bytes: try zip.read(entry), count: count)
            storages[key] = s
            return .storage(s)
        }.load()
        return try stateDict(root, source: source, format: "zip")
    }

    static func parseLegacy(_ data: Data, source: String) throws -> File {
        var offset = 0
        func nextPickle(_ persistent: ((PickleValue) throws -> PickleValue)? = nil) throws -> PickleValue {
            let u = try Unpickler(data, from: offset, source: source, persistent: persistent)
            let v = try u.load()
            offset = u.position
            return v
        }
        // 0x1950a86a20f9469cfc6c, an 80-bit integer, in the pickle's little-endian bytes.
        let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
        guard case .bigInt(let value) = try nextPickle(), value.elementsEqual(magic) else {
            throw AttendError("\(source): not a PyTorch checkpoint (the legacy magic number is missing)")
        }
        guard case .int(let version) = try nextPickle(), version == 1001 else {
            throw AttendError("\(source): legacy checkpoint protocol version is not 1001")
        }
        _ = try nextPickle()  // system info: endianness and type sizes
        var storages: [String: StorageBytes] = [:]
        var declared: [String: (StorageType, Int)] = [:]
        let root = try nextPickle { pid in
            let (type, key, count) = try storageReference(pid, source: source)
            if let known = declared[key], known.1 != count || known.0.name != type.name {
                throw AttendError("\(source): storage '\(key)' is declared twice with different sizes")
            }
            declared[key] = (type, count)
            return .storageKey(key)
        }
        guard case .list(let keyValues) = try nextPickle() else {
            throw AttendError("\(source): legacy checkpoint lacks its list of storage keys")
        }
        // Each storage follows as an 8-byte element count and the raw elements, in the key list's order.
        for value in keyValues {
            guard case .string(let key) = value, let (type, _) = declared[key] else {
                throw AttendError("\(source): the storage key list names a storage the pickle never used")
            }
            guard offset + 8 <= data.count else { throw AttendError("\(source): truncated before storage '\(key)'") }
            let count = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int64.self) }.littleEndian
            offset += 8
            guard count >= 0, count <= Int64((data.count - offset) / type.size) else {
                throw AttendError("\(source): storage '\(key)' claims \(count) elements; only \(data.count - offset) bytes remain (truncated or corrupt)")
            }
            let byteCount = Int(count) * type.size
            storages[key] = StorageBytes(type: type, bytes: data.subdata(in: (data.startIndex + offset)..<(data.startIndex + offset + byteCount)),
                                         count: Int(count))
            offset += byteCount
        }
        let resolved = try resolveStorageKeys(root, storages, source: source)
        return try stateDict(resolved, source: source, format: "legacy")
    }

    // MARK: Storages and tensors

    struct StorageType {
        let name: String
        let size: Int
        static let all: [String: StorageType] = Dictionary(uniqueKeysWithValues: [
            ("FloatStorage", 4), ("DoubleStorage", 8), ("HalfStorage", 2), ("BFloat16Storage", 2), ("LongStorage", 8),
            ("IntStorage", 4), ("ShortStorage", 2), ("CharStorage", 1), ("ByteStorage", 1), ("BoolStorage", 1),
        ].map { ($0.0, StorageType(name: $0.0, size: $0.1)) })
    }

    final class StorageBytes {
        let type: StorageType
        let bytes: Data
        let count: Int
        init(type: StorageType, bytes: Data, count: Int) { (self.type, self.bytes, self.count) = (type, bytes, count) }

        /// Element i as a Float.
        func value(_ i: Int, _ raw: UnsafeRawBufferPointer) -> Float {
            switch type.name {
            case "FloatStorage": return raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            case "DoubleStorage": return Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
            case "HalfStorage": return HalfFloat.toFloat(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            case "BFloat16Storage": return Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            case "LongStorage": return Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
            case "IntStorage": return Float(raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            case "ShortStorage": return Float(raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
            case "CharStorage": return Float(raw.load(fromByteOffset: i, as: Int8.self))
            default: return Float(raw.load(fromByteOffset: i, as: UInt8.self))
            }
        }
    }

    /// ('storage', <storage type>, key, location, element count[, view metadata]) -> (type, key, count).
    static func storageReference(_ pid: PickleValue, source: String) throws -> (StorageType, String, Int) {
        guard case .tuple(let items) = pid, items.count >= 5, case .string("storage") = items[0],
              case .global(let module, let name) = items[1], module == "torch", let type = StorageType.all[name],
              case .string(let key) = items[2], case .int(let count) = items[4], count >= 0, count <= Int.max / 8 else {
            throw AttendError("\(source): unsupported persistent id \(pid.summary) (expected a torch storage reference)")
        }
        return (type, key, count)
    }

    static func resolveStorageKeys(_ v: PickleValue, _ storages: [String: StorageBytes], source: String) throws -> PickleValue {
        switch v {
        case .storageKey(let key):
            guard let s = storages[key] else { throw AttendError("\(source): storage '\(key)' has no data in the file") }
            return .storage(s)
        case .tuple(let items): return .tuple(try items.map { try resolveStorageKeys($0, storages, source: source) })
        case .list(let items): return .list(try items.map { try resolveStorageKeys($0, storages, source: source) })
        case .dict(let pairs): return .dict(try pairs.map { ($0.0, try resolveStorageKeys($0.1, storages, source: source)) })
        case .tensorArguments(let items): return .tensorArguments(try items.map { try resolveStorageKeys($0, storages, source: source) })
        default: return v
        }
    }

    /// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
    static func rebuildTensor(_ args: [PickleValue], name: String, source: String) throws -> Tensor {
        func ints(_ v: PickleValue) -> [Int]? {
            guard case .tuple(let items) = v else { return nil }
            var out: [Int] = []
            for item in items { guard case .int(let i) = item else { return nil }; out.append(i) }
            return out
        }
        guard args.count >= 4, case .storage(let storage) = args[0], case .int(let offset) = args[1],
              let shape = ints(args[2]), let strides = ints(args[3]), shape.count == strides.count else {
            throw AttendError("\(source): tensor '\(name)' has malformed rebuild arguments")
        }
        guard shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), offset >= 0 else {
            throw AttendError("\(source): tensor '\(name)' has shape \(shape), strides \(strides) and offset \(offset) outside its storage")
        }
        // The last element a view reaches must lie inside the storage; computed with overflow checks.
        var last = offset, count = 1
        for (n, s) in zip(shape, strides) {
            let (span, o1) = (n == 0 ? 0 : n - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = last.addingReportingOverflow(span)
            let (c, o3) = count.multipliedReportingOverflow(by: n)
            guard !o1, !o2, !o3 else { throw AttendError("\(source): tensor '\(name)' has an impossible shape \(shape)") }
            (last, count) = (sum, c)
        }
        // Zero strides (an expanded view) let a shape exceed its storage; such views stay small in state dicts, so a
        // claim past 2^24 elements beyond the storage is refused before allocating.
        guard count <= Swift.max(storage.count, 1 << 24) else {
            throw AttendError("\(source): tensor '\(name)' claims \(count) elements from a \(storage.count)-element storage")
        }
        guard count == 0 || last < storage.count else {
            throw AttendError("\(source): tensor '\(name)' of shape \(shape) reaches element \(last) of a \(storage.count)-element storage")
        }
        let t = Tensor(shape: shape)
        let dst = t.pointer
        storage.bytes.withUnsafeBytes { raw in
            if storage.type.name == "FloatStorage" && t.isContiguousLayout(strides) {
                UnsafeMutableRawPointer(dst).copyMemory(from: raw.baseAddress! + 4 * offset, byteCount: 4 * count)
                return
            }
            var index = [Int](repeating: 0, count: shape.count)
            for i in 0..<count {
                var at = offset
                for d in 0..<shape.count { at += index[d] * strides[d] }
                dst[i] = storage.value(at, raw)
                var d = shape.count - 1
                while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
            }
        }
        return t
    }

    /// The dict of tensors: the root itself, or one nested under a common key.
    static func stateDict(_ root: PickleValue, source: String, format: String) throws -> File {
        guard case .dict(var pairs) = root else { throw AttendError("\(source): the checkpoint holds \(root.summary), not a dict of tensors") }
        for wrapper in ["state_dict", "model", "model_state_dict"] {
            if let inner = pairs.first(where: { if case .string(wrapper) = $0.0 { return true }; return false }),
               case .dict(let nested) = inner.1 {
                pairs = nested
                break
            }
        }
        var tensors: [String: Tensor] = [:], names: [String] = []
        for (key, value) in pairs {
            guard case .string(let name) = key else { continue }
            guard case .tensorArguments(let args) = value else { continue }  // other entries (epochs, configs) are skipped
            guard tensors[name] == nil else { throw AttendError("\(source): tensor '\(name)' appears twice") }
            tensors[name] = try rebuildTensor(args, name: name, source: source)
            names.append(name)
        }
        guard !names.isEmpty else { throw AttendError("\(source): the checkpoint holds no tensors") }
        return File(tensors: tensors, names: names, format: format)
    }
}

extension Tensor {
    /// Whether `strides` are the row-major strides of this tensor's shape.
    func isContiguousLayout(_ strides: [Int]) -> Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }
}

// MARK: The safe unpickler

/// The values a state-dict pickle can build. Anything else is refused.
indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes(Data)
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes.
    case bigInt(Data)
    case tuple([PickleValue]), list([PickleValue]), dict([(PickleValue, PickleValue)])
    case global(String, String)
    /// A storage reference not yet resolved (legacy files read the storages after the pickle).
    case storageKey(String)
    case storage(TorchCheckpoint.StorageBytes)
    /// The arguments of torch._utils._rebuild_tensor_v2 (or _rebuild_parameter's tensor).
    case tensorArguments([PickleValue])
    case mark

    var summary: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return "\(b)"
        case .int(let i): return "\(i)"
        case .bigInt(let d): return "a \(d.count)-byte integer"
        case .float(let f): return "\(f)"
        case .string(let s): return "'\(s.prefix(40))'"
        case .bytes(let d): return "\(d.count) bytes"
        case .tuple(let t): return "a tuple of \(t.count)"
        case .list(let l): return "a list of \(l.count)"
        case .dict(let d): return "a dict of \(d.count)"
        case .global(let m, let n): return "\(m).\(n)"
        case .storageKey(let k): return "storage \(k)"
        case .storage: return "a storage"
        case .tensorArguments: return "a tensor"
        case .mark: return "a mark"
        }
    }
}

/// A pickle reader for protocols 2-5 limited to what `torch.save` writes for state dicts.
/// Values are Swift values, not shared objects: a container memoized before it is filled (EMPTY_DICT, BINPUT, then
/// SETITEMS) and fetched again later is fetched as it was when memoized. State dicts fetch only strings, tuples and
/// storage references again, which are complete when memoized; a pickle that relies on sharing a filled container
/// reads wrong here, not unsafely.
final class Unpickler {
    /// The globals a state dict may name; every other one is refused before anything is built.
    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.LongStorage",
        "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage", "torch.BoolStorage",
    ]
    /// Bounds that keep a hostile pickle from exhausting memory: the stack, the memo, and container sizes.
    static let maxStack = 1 << 20, maxMemo = 1 << 22

    let bytes: Data
    let source: String
    let persistent: ((PickleValue) throws -> PickleValue)?
    private(set) var position: Int

    init(_ bytes: Data, from start: Int = 0, source: String, persistent: ((PickleValue) throws -> PickleValue)?) throws {
        self.bytes = bytes
        self.source = source
        self.persistent = persistent
        position = start
    }

    private func fail(_ message: String) -> AttendError { AttendError("\(source): pickle at byte \(position): \(message)") }

    private func byte() throws -> UInt8 {
        guard position < bytes.count else { throw fail("truncated") }
        defer { position += 1 }
        return bytes[bytes.startIndex + position]
    }

    private func take(_ n: Int) throws -> Data {
        guard n >= 0, n <= bytes.count - position else { throw fail("truncated (needs \(n) more bytes)") }
        defer { position += n }
        return bytes.subdata(in: (bytes.startIndex + position)..<(bytes.startIndex + position + n))
    }

    private func uint(_ n: Int) throws -> UInt64 {
        let d = try take(n)
        return d.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    private func line() throws -> String {
        var out: [UInt8] = []
        while true {
            let b = try byte()
            if b == 0x0A { break }
            out.append(b)
            guard out.count <= 256 else { throw fail("a text line longer than 256 bytes") }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func text(_ n: UInt64) throws -> String {
        guard n <= UInt64(bytes.count - position) else { throw fail("a string of \(n) bytes runs past the end") }
        return String(decoding: try take(Int(n)), as: UTF8.self)
    }

    /// How deep a value nests and how many values it holds, counting every copy: a pickle can nest a container in
    /// itself one byte at a time (TUPLE1 ...) or share one by DUP, memo or APPEND until its unshared size is
    /// exponential; both are refused before anything walks, copies or frees such a value recursively.
    struct Shape {
        var depth: Int, size: Int
        static let leaf = Shape(depth: 1, size: 1)
        /// The shape of a container holding values of these shapes.
        static func container<S: Sequence>(_ children: S) -> Shape where S.Element == Shape {
            children.reduce(Shape.leaf) { Shape(depth: Swift.max($0.depth, $1.depth + 1), size: $0.size + $1.size) }
        }
        /// This container with more values of `children`'s shape (as a container of them) added.
        func adding(_ children: Shape) -> Shape { Shape(depth: Swift.max(depth, children.depth), size: size + children.size - 1) }
    }
    static let maxDepth = 100, maxValues = 1 << 22

    func load() throws -> PickleValue {
        var stack: [PickleValue] = []
        var shapes: [Shape] = []  // the shape of each stack entry
        var marks: [Int] = []
        var memo: [Int: (PickleValue, Shape)] = [:]
        func popShaped() throws -> (PickleValue, Shape) {
            guard let v = stack.popLast(), let s = shapes.popLast() else { throw fail("stack underflow") }
            return (v, s)
        }
        func pop() throws -> PickleValue { try popShaped().0 }
        /// The values above the last mark, and their shape as the items of one container.
        func popMark() throws -> ([PickleValue], Shape) {
            guard let m = marks.popLast(), m <= stack.count else { throw fail("no mark to pop") }
            defer { stack.removeSubrange(m...); shapes.removeSubrange(m...) }
            return (Array(stack[m...]), Shape.container(shapes[m...]))
        }
        func push(_ v: PickleValue, _ shape: Shape = .leaf) throws {
            guard stack.count < Unpickler.maxStack else { throw fail("stack deeper than \(Unpickler.maxStack)") }
            guard shape.depth <= Unpickler.maxDepth else { throw fail("containers nested deeper than \(Unpickler.maxDepth)") }
            guard shape.size <= Unpickler.maxValues else { throw fail("a value holding more than \(Unpickler.maxValues) values (counting repeats)") }
            stack.append(v)
            shapes.append(shape)
        }
        func memoize(_ key: Int) throws {
            guard let top = stack.last, let shape = shapes.last else { throw fail("memo of an empty stack") }
            guard memo.count < Unpickler.maxMemo else { throw fail("memo larger than \(Unpickler.maxMemo)") }
            memo[key] = (top, shape)
        }
        func fetch(_ key: Int) throws {
            guard let (v, shape) = memo[key] else { throw fail("memo key \(key) was never stored") }
            try push(v, shape)
        }
        func setItems(_ items: [PickleValue], _ itemShape: Shape) throws {
            let (target, shape) = try popShaped()
            guard items.count % 2 == 0, case .dict(var pairs) = target else { throw fail("SETITEMS on something other than a dict") }
            for i in stride(from: 0, to: items.count, by: 2) { pairs.append((items[i], items[i + 1])) }
            try push(.dict(pairs), shape.adding(itemShape))
        }
        func global(_ module: String, _ name: String) throws -> PickleValue {
            guard Unpickler.allowedGlobals.contains("\(module).\(name)") else {
                throw fail("global '\(module).\(name)' is not allowed (a state dict needs only OrderedDict, tensor rebuilders and storage types)")
            }
            return .global(module, name)
        }
        func call(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
            guard case .global(let module, let name) = callable, case .tuple(let a) = args else {
                throw fail("REDUCE of \(callable.summary) with \(args.summary)")
            }
            switch "\(module).\(name)" {
            case "collections.OrderedDict": return .dict([])
            case "torch._utils._rebuild_tensor_v2": return .tensorArguments(a)
            case "torch._utils._rebuild_parameter":
                guard let first = a.first, case .tensorArguments = first else { throw fail("_rebuild_parameter without a tensor") }
                return first
            default: throw fail("'\(module).\(name)' cannot be called")
            }
        }

        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                          // PROTO
            case 0x95: _ = try uint(8)                                         // FRAME
            case 0x2E: return try pop()                                        // STOP
            case 0x28: marks.append(stack.count)                               // MARK
            case 0x4E: try push(.none)                                         // NONE
            case 0x88: try push(.bool(true))                                   // NEWTRUE
            case 0x89: try push(.bool(false))                                  // NEWFALSE
            case 0x4A: try push(.int(Int(Int32(bitPattern: UInt32(try uint(4))))))  // BININT
            case 0x4B: try push(.int(Int(try uint(1))))                        // BININT1
            case 0x4D: try push(.int(Int(try uint(2))))                        // BININT2
            case 0x8A:                                                          // LONG1
                let n = Int(try byte())
                let d = try take(n)
                guard n <= 16 else { throw fail("an integer of \(n) bytes") }
                if n > 8 {
                    try push(.bigInt(d))  // only the legacy magic number is this wide
                } else {
                    // Two's complement, little-endian.
                    var v: UInt64 = 0
                    for (i, b) in d.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                    if n < 8, n > 0, d.last! & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(n)) }
                    try push(.int(Int(bitPattern: UInt(v))))
                }
            case 0x47: try push(.float(Double(bitPattern: UInt64(bigEndian: try take(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))))  // BINFLOAT
            case 0x58: try push(.string(try text(try uint(4))))                // BINUNICODE
            case 0x8C: try push(.string(try text(try uint(1))))                // SHORT_BINUNICODE
            case 0x8D: try push(.string(try text(try uint(8))))                // BINUNICODE8
            case 0x54: try push(.string(try text(try uint(4))))                // BINSTRING
            case 0x55: try push(.string(try text(try uint(1))))                // SHORT_BINSTRING
            case 0x42:                                                          // BINBYTES
                let n = try uint(4)
                guard n <= UInt64(bytes.count - position) else { throw fail("bytes run past the end") }
                try push(.bytes(try take(Int(n))))
            case 0x43: try push(.bytes(try take(Int(try uint(1)))))           // SHORT_BINBYTES
            case 0x29: try push(.tuple([]))                                    // EMPTY_TUPLE
            case 0x74: let (items, shape) = try popMark(); try push(.tuple(items), shape)  // TUPLE
            case 0x85:                                                          // TUPLE1
                let a = try popShaped()
                try push(.tuple([a.0]), .container([a.1]))
            case 0x86:                                                          // TUPLE2
                let b = try popShaped(), a = try popShaped()
                try push(.tuple([a.0, b.0]), .container([a.1, b.1]))
            case 0x87:                                                          // TUPLE3
                let c = try popShaped(), b = try popShaped(), a = try popShaped()
                try push(.tuple([a.0, b.0, c.0]), .container([a.1, b.1, c.1]))
            case 0x5D: try push(.list([]))                                     // EMPTY_LIST
            case 0x6C: let (items, shape) = try popMark(); try push(.list(items), shape)  // LIST
            case 0x61:                                                          // APPEND
                let (v, vShape) = try popShaped()
                let (target, shape) = try popShaped()
                guard case .list(var l) = target else { throw fail("APPEND to something other than a list") }
                l.append(v)
                try push(.list(l), shape.adding(.container([vShape])))
            case 0x65:                                                          // APPENDS
                let (items, itemShape) = try popMark()
                let (target, shape) = try popShaped()
                guard case .list(var l) = target else { throw fail("APPENDS to something other than a list") }
                l.append(contentsOf: items)
                try push(.list(l), shape.adding(itemShape))
            case 0x7D: try push(.dict([]))                                     // EMPTY_DICT
            case 0x64:                                                          // DICT
                let (items, shape) = try popMark()
                try push(.dict([]))
                try setItems(items, shape)
            case 0x73:                                                          // SETITEM
                let v = try popShaped(), k = try popShaped()
                try setItems([k.0, v.0], .container([k.1, v.1]))
            case 0x75: let (items, shape) = try popMark(); try setItems(items, shape)  // SETITEMS
            case 0x63:                                                          // GLOBAL
                let module = try line(), name = try line()
                try push(try global(module, name))
            case 0x93:                                                          // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL without two strings") }
                try push(try global(module, name))
            case 0x52, 0x81:                                                    // REDUCE, NEWOBJ: the result holds at most the arguments
                let (args, shape) = try popShaped()
                let f = try pop()
                try push(try call(f, args), shape)
            case 0x62:                                                          // BUILD: state on an OrderedDict or tensor is dropped
                _ = try pop()
                guard stack.last != nil else { throw fail("BUILD on an empty stack") }
            case 0x51:                                                          // BINPERSID
                let pid = try pop()
                guard let persistent else { throw fail("a persistent id where none is expected") }
                try push(try persistent(pid))
            case 0x71: try memoize(Int(try byte()))                            // BINPUT
            case 0x72: try memoize(Int(try uint(4)))                           // LONG_BINPUT
            case 0x94: try memoize(memo.count)                                 // MEMOIZE
            case 0x68: try fetch(Int(try byte()))                              // BINGET
            case 0x6A: try fetch(Int(try uint(4)))                             // LONG_BINGET
            case 0x30: _ = try pop()                                           // POP
            case 0x31: _ = try popMark()                                       // POP_MARK
            case 0x32:                                                          // DUP
                guard let top = stack.last, let shape = shapes.last else { throw fail("DUP of an empty stack") }
                try push(top, shape)
            default:
                throw fail(String(format: "opcode 0x%02X is not supported (a state dict does not use it)", op))
            }
        }
    }
}
