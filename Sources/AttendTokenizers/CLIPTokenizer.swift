// CLIP's tokenizer (Radford et al., 2021; OpenAI's and open_clip's SimpleTokenizer): text is cleaned and
// lower-cased, split into words, single digits and punctuation runs, mapped to GPT-2's byte characters,
// and merged by BPE with an end-of-word marker "</w>" on each word's last symbol. Inputs are
// <start_of_text> ids <end_of_text>, cut and zero-padded to 77 tokens.

import AttendTensor
import Foundation

/// CLIP's tokenizer (open_clip's SimpleTokenizer): cleaned, lower-cased text, BPE with end-of-word markers,
/// 77-token model inputs.
///
/// ```swift
/// let tokenizer = try CLIPTokenizer(mergesFile: "bpe_simple_vocab_16e6.txt.gz")
/// let input = tokenizer.modelInput("a photo of a cat.")   // 77 ids: start, text, end, zeros
/// tokenizer.decode(tokenizer.encode("a photo of a cat."))   // "a photo of a cat . "
/// ```
public struct CLIPTokenizer {
    public let tokens: [String]
    let vocabulary: [String: Int32]
    let mergeRanks: [String: Int]
    public let startId: Int32
    public let endId: Int32
    public var contextLength = 77
    private let pattern: NSRegularExpression

    /// From the merges file (`bpe_simple_vocab_16e6.txt(.gz)`): a header line, then "a b" merges, of which
    /// CLIP uses the first 48,894 (49,152 tokens = 512 byte symbols + merges + 2 special tokens).
    public init(mergesFile path: String) throws {
        let bytes = try GzipFile.read(path)
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let count = 49152 - 256 - 2
        guard lines.count > count else { throw AttendError("\(path): \(lines.count) lines; a CLIP merges file has more than \(count)") }
        var merges: [String] = []
        for (n, line) in lines[1...count].enumerated() {
            guard line.split(separator: " ").count == 2 else { throw AttendError("\(path):\(n + 2): expected two symbols separated by a space") }
            merges.append(String(line))
        }
        try self.init(merges: merges)
    }

    public init(merges: [String]) throws {
        // The byte symbols in GPT-2's table order (printable bytes first), then each with "</w>".
        let printable = Array(33...126) + Array(161...172) + Array(174...255)
        let order = printable + (0..<256).filter { !printable.contains($0) }
        let bytes = order.map { String(ByteLevelBPETokenizer.byteToCharacter[$0]) }
        var tokens = bytes + bytes.map { $0 + "</w>" }
        var ranks: [String: Int] = [:]
        for (i, m) in merges.enumerated() {
            tokens.append(m.replacingOccurrences(of: " ", with: ""))
            if ranks[m] == nil { ranks[m] = i }
        }
        tokens += ["<start_of_text>", "<end_of_text>"]
        self.tokens = tokens
        var v: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() { v[t] = Int32(i) }
        vocabulary = v
        mergeRanks = ranks
        startId = Int32(tokens.count - 2)
        endId = Int32(tokens.count - 1)
        pattern = try NSRegularExpression(pattern: "<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
                                          options: [.caseInsensitive])
    }

    /// open_clip's "lower" cleaning: HTML entities unescaped (twice), whitespace runs collapsed, trimmed,
    /// lower-cased. Of ftfy's fixes, the ones that change ordinary text are applied: NFC, straight quotes,
    /// Latin ligatures split, full-width ASCII made narrow. ftfy's repair of mis-decoded text (mojibake) is not.
    public func clean(_ text: String) -> String {
        var s = String(String.UnicodeScalarView(text.precomposedStringWithCanonicalMapping.unicodeScalars.flatMap { c -> [Unicode.Scalar] in
            switch c.value {
            case 0x2018, 0x2019, 0x201A, 0x201B, 0x2032: return ["'"]
            case 0x201C, 0x201D, 0x201E, 0x201F, 0x2033: return ["\""]
            case 0xFB00: return ["f", "f"]
            case 0xFB01: return ["f", "i"]
            case 0xFB02: return ["f", "l"]
            case 0xFB03: return ["f", "f", "i"]
            case 0xFB04: return ["f", "f", "l"]
            case 0xFF01...0xFF5E: return [Unicode.Scalar(c.value - 0xFEE0)!]
            case 0x3000: return [" "]
            default: return [c]
            }
        }))
        s = CLIPTokenizer.unescapeHTML(CLIPTokenizer.unescapeHTML(s))
        return s.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ").lowercased()
    }

    /// The common HTML character references: named ones for markup characters, and numeric ones.
    static func unescapeHTML(_ s: String) -> String {
        guard s.contains("&") else { return s }
        let named = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}"]
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semi = after.prefix(12).firstIndex(of: ";") {
                let name = String(after[..<semi])
                var replacement: String?
                if let r = named[name] { replacement = r } else if name.hasPrefix("#x") || name.hasPrefix("#X"), let v = UInt32(name.dropFirst(2), radix: 16),
                    let u = Unicode.Scalar(v) { replacement = String(u) } else if name.hasPrefix("#"), let v = UInt32(name.dropFirst()), let u = Unicode.Scalar(v) {
                    replacement = String(u)
                }
                if let replacement {
                    out += replacement
                    rest = after[after.index(after: semi)...]
                    continue
                }
            }
            out += "&"
            rest = after
        }
        return out + rest
    }

    /// Token ids of `text` (no start / end tokens).
    public func encode(_ text: String) -> [Int32] {
        let cleaned = clean(text)
        let ns = cleaned as NSString
        var ids: [Int32] = []
        for m in pattern.matches(in: cleaned, range: NSRange(location: 0, length: ns.length)) {
            let word = ns.substring(with: m.range)
            if let special = vocabulary[word], word.hasPrefix("<"), word.hasSuffix("_text>") { ids.append(special); continue }
            let symbols = word.utf8.map { String(ByteLevelBPETokenizer.byteToCharacter[Int($0)]) }
            for piece in bpe(symbols) { ids.append(vocabulary[piece] ?? 0) }
        }
        return ids
    }

    /// Merges the byte symbols of one word, lowest rank first; the last symbol carries "</w>".
    func bpe(_ symbols: [String]) -> [String] {
        var parts = symbols
        parts[parts.count - 1] += "</w>"
        return ByteLevelBPETokenizer.merge(parts) { mergeRanks[$0 + " " + $1] }
    }

    /// The model input: <start_of_text> ids <end_of_text>, cut to `contextLength` (keeping the end token)
    /// and padded with zeros, as open_clip's tokenizer returns it.
    public func modelInput(_ text: String) -> [Int32] {
        var ids = [startId] + encode(text) + [endId]
        if ids.count > contextLength {
            ids = Array(ids.prefix(contextLength))
            ids[contextLength - 1] = endId
        }
        return ids + [Int32](repeating: 0, count: contextLength - ids.count)
    }

    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokens.count && id != startId && id != endId {
            for c in tokens[Int(id)].replacingOccurrences(of: "</w>", with: " ") {
                if let b = ByteLevelBPETokenizer.characterToByte[c] { bytes.append(b) } else { bytes += Array(String(c).utf8) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
