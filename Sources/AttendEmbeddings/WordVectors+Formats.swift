// The original word2vec formats. Text: a "count dimension" header line, then "word v1 ... vD" per line.
// Binary: the same header, then per word the word, a space, D little-endian float32 and a newline.

import AttendTensor
import Foundation

extension WordVectors {
    public enum Format: String, Codable { case text, binary }

    /// Writes the vectors atomically (temporary file + rename).
    public func save(to path: String, format: Format) throws {
        try AtomicFile.write(encoded(format: format), to: path)
    }

    /// The file's bytes in word2vec's text or binary format.
    public func encoded(format: Format) -> Data {
        var out = Data()
        out.append("\(count) \(dimension)\n".data(using: .utf8)!)
        let d = dimension, p = vectors.contiguous().pointer
        for (i, w) in words.enumerated() {
            out.append(w.data(using: .utf8)!)
            switch format {
            case .binary:
                out.append(UInt8(ascii: " "))
                out.append(UnsafeBufferPointer(start: p + i * d, count: d))
                out.append(UInt8(ascii: "\n"))
            case .text:
                var line = ""
                for k in 0..<d { line += " " + String(p[i * d + k]) }
                out.append((line + "\n").data(using: .utf8)!)
            }
        }
        return out
    }

    /// Reads a text or binary vector file; the format is detected from the bytes after the header.
    public static func load(from path: String, format: Format? = nil) throws -> WordVectors {
        guard let data = FileManager.default.contents(atPath: path) else { throw AttendError("\(path): no such file or not readable") }
        return try data.withUnsafeBytes { raw -> WordVectors in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard let headerEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
                throw AttendError("\(path):1: expected a header line 'count dimension'")
            }
            let header = String(decoding: bytes[0..<headerEnd], as: UTF8.self).split(separator: " ")
            guard header.count == 2, let v = Int(header[0]), let d = Int(header[1]), v >= 0, d > 0 else {
                throw AttendError("\(path):1: expected a header 'count dimension', got '\(String(decoding: bytes[0..<min(headerEnd, 60)], as: UTF8.self))'")
            }
            let isBinary = format.map { $0 == .binary } ?? looksBinary(bytes, from: headerEnd + 1)
            // The header's sizes must fit the bytes after it (a vector takes at least 4d + 1 bytes in binary, "w" and
            // d times " x" in text) before anything is allocated from them.
            let remaining = bytes.count - headerEnd - 1
            let (needed, overflow) = v.multipliedReportingOverflow(by: isBinary ? 4 * min(d, remaining) + 1 : 2 * min(d, remaining) + 1)
            guard d <= remaining, !overflow, needed <= remaining + 1 else {
                throw AttendError("\(path):1: the header claims \(v) vectors of dimension \(d); the \(remaining) bytes after it cannot hold them (\(isBinary ? "binary" : "text") format)")
            }
            var words: [String] = []
            words.reserveCapacity(v)
            let m = Tensor(shape: [v, d])
            let mp = m.pointer
            var i = headerEnd + 1
            for row in 0..<v {
                if isBinary {
                    while i < bytes.count && (bytes[i] == 0x0A || bytes[i] == 0x0D) { i += 1 }
                    let start = i
                    while i < bytes.count && bytes[i] != 0x20 { i += 1 }
                    guard i + 1 + 4 * d <= bytes.count else {
                        throw AttendError("\(path): truncated at vector \(row + 1) of \(v) (binary format, dimension \(d))")
                    }
                    words.append(String(decoding: bytes[start..<i], as: UTF8.self))
                    i += 1
                    UnsafeMutableRawPointer(mp + row * d).copyMemory(from: raw.baseAddress! + i, byteCount: 4 * d)
                    i += 4 * d
                } else {
                    guard i < bytes.count else { throw AttendError("\(path):\(row + 2): file ends after \(row) of \(v) vectors") }
                    let end = bytes[i...].firstIndex(of: 0x0A) ?? bytes.count
                    let fields = String(decoding: bytes[i..<end], as: UTF8.self).split(separator: " ", omittingEmptySubsequences: true)
                    guard fields.count == d + 1 else {
                        throw AttendError("\(path):\(row + 2): expected a word and \(d) numbers, got \(fields.count) fields")
                    }
                    words.append(String(fields[0]))
                    for k in 0..<d {
                        guard let x = Float(fields[k + 1]) else {
                            throw AttendError("\(path):\(row + 2): '\(fields[k + 1])' is not a number")
                        }
                        mp[row * d + k] = x
                    }
                    i = end + 1
                }
            }
            return WordVectors(words: words, vectors: m)
        }
    }

    /// Text vector files are printable after the header; binary ones hold raw float bytes.
    private static func looksBinary(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Bool {
        let end = min(bytes.count, start + 4096)
        guard start < end else { return false }
        return bytes[start..<end].contains { $0 < 0x09 || ($0 > 0x0D && $0 < 0x20) }
    }
}

extension Word2Vec {
    /// Saves everything needed to continue training (weights, vocabulary with counts, configuration).
    public func saveState(to path: String) throws {
        try AtomicFile.write(try stateData(), to: path)
    }

    /// The bytes `saveState(to:)` writes (a safetensors file).
    public func stateData() throws -> Data {
        let config = String(decoding: try JSONEncoder().encode(self.config), as: UTF8.self)
        let vocab = String(decoding: try JSONSerialization.data(withJSONObject: vocabulary.words), as: UTF8.self)
        let counts = String(decoding: try JSONSerialization.data(withJSONObject: vocabulary.counts.map { Int($0) }), as: UTF8.self)
        var tensors: [(name: String, tensor: Tensor)] = [("input", input)]
        if let outputNegative { tensors.append(("output_negative", outputNegative)) }
        if let outputHierarchical { tensors.append(("output_hierarchical", outputHierarchical)) }
        return try Safetensors.encode(tensors, metadata: ["format": "attend-word2vec", "config": config, "words": vocab, "counts": counts])
    }

    /// Loads a model saved by `saveState(to:)`.
    public static func loadState(from path: String) throws -> Word2Vec {
        let file = try Safetensors.read(path)
        guard file.metadata["format"] == "attend-word2vec",
              let configText = file.metadata["config"], let wordsText = file.metadata["words"], let countsText = file.metadata["counts"],
              let config = try? JSONDecoder().decode(Word2VecConfig.self, from: Data(configText.utf8)),
              let words = try? JSONSerialization.jsonObject(with: Data(wordsText.utf8)) as? [String],
              let counts = try? JSONSerialization.jsonObject(with: Data(countsText.utf8)) as? [Int] else {
            throw AttendError("\(path): not an Attend word2vec model (metadata 'format', 'config', 'words' or 'counts' is missing or malformed)")
        }
        let model = Word2Vec(config: config, vocabulary: try Vocabulary(words: words, counts: counts.map(Int64.init)))
        for (name, t) in [("input", model.input), ("output_negative", model.outputNegative), ("output_hierarchical", model.outputHierarchical)] {
            guard let t else { continue }
            guard let saved = file.tensors[name] else { throw AttendError("\(path): tensor '\(name)' is missing") }
            guard saved.shape == t.shape else { throw AttendError("\(path): tensor '\(name)' has shape \(saved.shape), expected \(t.shape)") }
            t.assign(saved)
        }
        return model
    }
}
