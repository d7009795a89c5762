// A read-only ZIP reader (PKWARE APPNOTE 6.3): the central directory, Zip64 sizes and offsets, stored and deflated
// entries. PyTorch's `torch.save` writes its checkpoints as ZIP archives (stored, 64-byte aligned), so reading them
// needs no more than this. Every size and offset is checked against the archive's own length before use.

internal import CZlib
import Foundation

/// The entries of a ZIP archive held in memory (or mapped), and their bytes on request.
///
/// ```swift
/// let zip = try ZipArchive(Data(contentsOf: url), source: "model.pt")
/// let pickle = try zip.read(zip.entries.first { $0.name.hasSuffix("/data.pkl") }!)
/// ```
public struct ZipArchive {
    public struct Entry {
        public let name: String
        /// 0 = stored, 8 = deflated.
        public let method: Int
        public let compressedSize: Int
        public let size: Int
        /// Where the entry's data starts in the archive (after its local header).
        public let dataOffset: Int
    }

    public let data: Data
    public let source: String
    public private(set) var entries: [Entry] = []

    /// Whether `data` begins like a ZIP archive (a local file header).
    public static func looksLikeZip(_ data: Data) -> Bool {
        data.count >= 4 && data.prefix(4).elementsEqual([0x50, 0x4B, 0x03, 0x04])
    }

    public init(_ data: Data, source: String) throws {
        self.data = data
        self.source = source
        let n = data.count
        func bad(_ what: String) -> AttendError { AttendError("\(source): not a valid ZIP archive (\(what))") }
        // The end-of-central-directory record: within the last 22 + 65,535 bytes (the comment's maximum).
        guard n >= 22 else { throw bad("\(n) bytes, shorter than an end record") }
        var eocd = -1
        var i = n - 22
        while i >= Swift.max(0, n - 22 - 65_535) {
            if u32(i) == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw bad("no end-of-central-directory record") }
        var count = Int(u16(eocd + 10))
        var directorySize = Int(u32(eocd + 12))
        var directoryOffset = Int(u32(eocd + 16))
        if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: a locator 20 bytes before the end record points at the Zip64 end record.
            guard eocd >= 20, u32(eocd - 20) == 0x0706_4B50 else { throw bad("Zip64 sizes without a Zip64 locator") }
            let record = try checkedInt(u64(eocd - 12), "Zip64 end record offset")
            guard record >= 0, record + 56 <= n, u32(record) == 0x0606_4B50 else { throw bad("the Zip64 end record lies outside the file") }
            count = try checkedInt(u64(record + 32), "entry count")
            directorySize = try checkedInt(u64(record + 40), "central directory size")
            directoryOffset = try checkedInt(u64(record + 48), "central directory offset")
        }
        guard directoryOffset >= 0, directorySize >= 0, directoryOffset <= n, directorySize <= n - directoryOffset else {
            throw bad("the central directory [\(directoryOffset), +\(directorySize)) lies outside the \(n)-byte file")
        }
        // Each directory record takes at least 46 bytes, so the count cannot claim more than the directory holds.
        guard count <= directorySize / 46 else { throw bad("\(count) entries cannot fit in a \(directorySize)-byte directory") }
        var p = directoryOffset
        entries.reserveCapacity(count)
        for _ in 0..<count {
            guard p + 46 <= directoryOffset + directorySize, u32(p) == 0x0201_4B50 else { throw bad("a central directory record is malformed") }
            let method = Int(u16(p + 10))
            var compressed = UInt64(u32(p + 20)), size = UInt64(u32(p + 24))
            let nameLength = Int(u16(p + 28)), extraLength = Int(u16(p + 30)), commentLength = Int(u16(p + 32))
            var localOffset = UInt64(u32(p + 42))
            let end = p + 46 + nameLength + extraLength + commentLength
            guard end <= directoryOffset + directorySize else { throw bad("a central directory record runs past the directory") }
            let name = String(decoding: data[(data.startIndex + p + 46)..<(data.startIndex + p + 46 + nameLength)], as: UTF8.self)
            // Zip64 extra field (id 1): the 8-byte values present are those whose 32-bit fields are all ones, in order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = u16(e), length = Int(u16(e + 2))
                guard e + 4 + length <= extraEnd else { throw bad("entry '\(name)' has a malformed extra field") }
                if id == 1 {
                    var q = e + 4
                    func next() throws -> UInt64 {
                        guard q + 8 <= e + 4 + length else { throw bad("entry '\(name)' has a short Zip64 field") }
                        defer { q += 8 }
                        return u64(q)
                    }
                    if size == 0xFFFF_FFFF { size = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next() }
                }
                e += 4 + length
            }
            let local = try checkedInt(localOffset, "local header offset of '\(name)'")
            guard local + 30 <= n, u32(local) == 0x0403_4B50 else { throw bad("entry '\(name)' has no local header at \(local)") }
            let dataOffset = local + 30 + Int(u16(local + 26)) + Int(u16(local + 28))
            let compressedSize = try checkedInt(compressed, "size of '\(name)'")
            guard dataOffset <= n, compressedSize <= n - dataOffset else {
                throw bad("entry '\(name)' claims \(compressedSize) bytes at \(dataOffset), past the end of the \(n)-byte file")
            }
            guard method == 0 || method == 8 else {
                throw AttendError("\(source): entry '\(name)' uses compression method \(method); Attend reads stored (0) and deflated (8) entries")
            }
            let uncompressed = try checkedInt(size, "uncompressed size of '\(name)'")
            if method == 0 && uncompressed != compressedSize { throw bad("stored entry '\(name)' has two different sizes") }
            // Deflate cannot expand data by more than about 1032:1, so a larger claim is a lie.
            if method == 8 && uncompressed / 1032 > compressedSize + 1 { throw bad("entry '\(name)' claims an impossible expansion") }
            entries.append(Entry(name: name, method: method, compressedSize: compressedSize, size: uncompressed, dataOffset: dataOffset))
            p = end
        }
    }

    /// The entry with this exact name.
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// The uncompressed bytes of an entry.
    public func read(_ entry: Entry) throws -> Data {
        let start = data.startIndex + entry.dataOffset
        let raw = data[start..<(start + entry.compressedSize)]
        if entry.method == 0 { return Data(raw) }
        var out = Data(count: entry.size)
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw AttendError("\(source): zlib could not start inflating '\(entry.name)'")
        }
        defer { inflateEnd(&stream) }
        let status: Int32 = raw.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> Int32 in
            out.withUnsafeMutableBytes { (output: UnsafeMutableRawBufferPointer) -> Int32 in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = output.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(output.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == entry.size else {
            throw AttendError("\(source): entry '\(entry.name)' does not inflate to its \(entry.size) bytes (corrupt or truncated)")
        }
        return out
    }

    private func checkedInt(_ v: UInt64, _ what: String) throws -> Int {
        guard v <= UInt64(Int.max / 2) else { throw AttendError("\(source): not a valid ZIP archive (\(what) \(v) is impossible)") }
        return Int(v)
    }

    private func u16(_ at: Int) -> UInt16 {
        data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt16.self) }.littleEndian
    }
    private func u32(_ at: Int) -> UInt32 {
        data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }.littleEndian
    }
    private func u64(_ at: Int) -> UInt64 {
        data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) }.littleEndian
    }
}
