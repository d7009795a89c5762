// Byte-level BPE (GPT-2, Radford et al., 2019; also Llama-3, SmolLM, OPT): text is split by a
// pre-tokenizer pattern, each piece's UTF-8 bytes are mapped to printable characters, and the ranked merges
// are applied lowest rank first. Special tokens (chat markers) are matched before everything else.

import AttendTensor
import Foundation

/// GPT-2's byte-level BPE tokenizer (also Llama 3, SmolLM, OPT): every byte has a symbol, so no text is unknown.
///
/// ```swift
/// let tokenizer = try ByteLevelBPETokenizer.load(tokenizerJSON: "tokenizer.json")
/// let ids = tokenizer.encode("Hello world")
/// tokenizer.decode(ids)   // "Hello world"
/// let spans = tokenizer.encodeWithOffsets("Hello world")   // code-point offsets, as Hugging Face reports them
/// ```
public struct ByteLevelBPETokenizer {
    public enum PreTokenizer: String, Codable {
        /// GPT-2's pattern.
        case gpt2
        /// Every digit alone, then GPT-2's pattern (llama.cpp's "smollm", StarCoder, Refact).
        case digitsThenGPT2
    }

    public let tokens: [String]
    let vocabulary: [String: Int32]
    /// "a b" -> merge priority. Empty for rank files (tiktoken), where a pair's priority is the rank of the
    /// token it forms, so no merge list is needed.
    let mergeRanks: [String: Int]
    /// The merges in rank order ("a b"), as merges.txt lists them.
    public let merges: [String]
    /// Special tokens matched verbatim in the input, longest first.
    let specials: [(text: String, id: Int32)]
    public let preTokenizer: PreTokenizer
    public let bosId: Int32?
    public let eosId: Int32?
    private let pattern: NSRegularExpression
    private let digit = try! NSRegularExpression(pattern: "\\p{N}")

    /// GPT-2's byte-to-character table: printable bytes stand for themselves, the rest move to U+0100 and up.
    static let byteToCharacter: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable.map { Character(Unicode.Scalar(UInt8($0))) }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, chars) { table[b] = c }
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            table[b] = Character(Unicode.Scalar(UInt32(256 + n))!)
            printable.append(b)
            chars.append(table[b])
            n += 1
        }
        return table
    }()
    static let characterToByte: [Character: UInt8] = {
        var m: [Character: UInt8] = [:]
        for (b, c) in byteToCharacter.enumerated() { m[c] = UInt8(b) }
        return m
    }()

    public init(tokens: [String], merges: [String], specialTokenIds: [Int32], preTokenizer: PreTokenizer = .gpt2,
                bosId: Int32? = nil, eosId: Int32? = nil) throws {
        self.tokens = tokens
        var v: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where v[t] == nil { v[t] = Int32(i) }
        vocabulary = v
        var ranks: [String: Int] = [:]
        for (i, m) in merges.enumerated() {
            guard m.split(separator: " ").count == 2 else { throw AttendError("BPE merge \(i) '\(m)' is not two symbols separated by a space") }
            if ranks[m] == nil { ranks[m] = i }
        }
        mergeRanks = ranks
        self.merges = merges
        if let bad = specialTokenIds.first(where: { $0 < 0 || Int($0) >= tokens.count }) {
            throw AttendError("special token id \(bad) is outside the vocabulary of \(tokens.count) tokens")
        }
        specials = specialTokenIds.map { (tokens[Int($0)], $0) }.sorted { $0.0.count > $1.0.count }
        self.preTokenizer = preTokenizer
        self.bosId = bosId
        self.eosId = eosId
        pattern = try NSRegularExpression(pattern: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+")
    }

    /// From GGUF metadata: tokenizer.ggml.{model, pre, tokens, merges, token_type, bos/eos_token_id}.
    public static func fromGGUF(_ f: GGUFFile) throws -> ByteLevelBPETokenizer {
        guard f.metadata["tokenizer.ggml.model"]?.string == "gpt2" else {
            throw AttendError("\(f.path): tokenizer model '\(f.metadata["tokenizer.ggml.model"]?.string ?? "none")' is not byte-level BPE ('gpt2')")
        }
        guard let tokenValues = f.metadata["tokenizer.ggml.tokens"]?.array,
              let merges = f.metadata["tokenizer.ggml.merges"]?.array?.compactMap(\.string) else {
            throw AttendError("\(f.path): metadata 'tokenizer.ggml.tokens' or 'tokenizer.ggml.merges' is missing")
        }
        // A token's id is its index, so a non-string entry cannot be skipped.
        let tokens = tokenValues.compactMap(\.string)
        guard tokens.count == tokenValues.count else { throw AttendError("\(f.path): metadata 'tokenizer.ggml.tokens' holds values that are not strings") }
        let types = f.metadata["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        guard types.count <= tokens.count else {
            throw AttendError("\(f.path): metadata 'tokenizer.ggml.token_type' has \(types.count) entries for \(tokens.count) tokens")
        }
        func tokenId(_ key: String) throws -> Int32? {
            guard let value = f.metadata[key] else { return nil }
            guard let id = value.int, id >= 0, id < tokens.count else {
                throw AttendError("\(f.path): metadata '\(key)' is \(value); expected a token id below \(tokens.count)")
            }
            return Int32(id)
        }
        // Types 3 (control) and 4 (user-defined) are matched verbatim.
        let specials = types.enumerated().filter { $0.element == 3 || $0.element == 4 }.map { Int32($0.offset) }
        let pre: PreTokenizer
        switch f.metadata["tokenizer.ggml.pre"]?.string ?? "gpt2" {
        case "gpt2", "default": pre = .gpt2
        case "smollm", "starcoder", "refact": pre = .digitsThenGPT2
        case let other: throw AttendError("\(f.path): pre-tokenizer '\(other)' is not supported (gpt2, smollm, starcoder, refact)")
        }
        return try ByteLevelBPETokenizer(tokens: tokens, merges: merges, specialTokenIds: specials, preTokenizer: pre,
                                         bosId: try tokenId("tokenizer.ggml.bos_token_id"), eosId: try tokenId("tokenizer.ggml.eos_token_id"))
    }

    /// From a tiktoken rank file ("base64(token bytes) rank" per line, e.g. gpt2.tiktoken): ids are ranks.
    /// `specialTokens` adds tokens after the ranks, e.g. ["<|endoftext|>": 50256] for GPT-2.
    public static func fromTiktoken(path: String, specialTokens: [String: Int32] = [:]) throws -> ByteLevelBPETokenizer {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AttendError("\(path): no such file or not UTF-8") }
        var byRank: [Int: String] = [:]
        for (n, line) in text.split(separator: "\n").enumerated() {
            let f = line.split(separator: " ")
            guard f.count == 2, let bytes = Data(base64Encoded: String(f[0])), let rank = Int(f[1]), rank >= 0 else {
                throw AttendError("\(path):\(n + 1): expected 'base64-token rank'")
            }
            byRank[rank] = String(bytes.map { byteToCharacter[Int($0)] })
        }
        let count = max(byRank.keys.max() ?? -1, specialTokens.values.map(Int.init).max() ?? -1) + 1
        // Ranks are ids: a rank far past the file's line count would size the vocabulary from one number.
        guard count <= 10_000_000 else { throw AttendError("\(path): rank \(count - 1) is out of range (at most 9,999,999)") }
        if let bad = specialTokens.first(where: { $0.value < 0 }) { throw AttendError("special token '\(bad.key)' has a negative id \(bad.value)") }
        var tokens = [String](repeating: "", count: count)
        for (r, t) in byRank { tokens[r] = t }
        for (t, id) in specialTokens { tokens[Int(id)] = t }
        return try ByteLevelBPETokenizer(tokens: tokens, merges: [], specialTokenIds: Array(specialTokens.values), preTokenizer: .gpt2,
                                         eosId: specialTokens["<|endoftext|>"])
    }

    public func id(of token: String) -> Int32? { vocabulary[token] }

    /// Ids of the special tokens (matched verbatim in the input).
    public var specialTokenIds: [Int32] { specials.map(\.id).sorted() }

    /// Token ids of `text`; special-token strings become their ids when `allowSpecial`.
    public func encode(_ text: String, allowSpecial: Bool = true) -> [Int32] {
        encodeWithByteSpans(text, allowSpecial: allowSpecial).map(\.id)
    }

    /// Token ids with the span of `text` each one covers, in Unicode code points (Python's string indices,
    /// as Hugging Face tokenizers report offsets). A token holding part of a multi-byte character spans that
    /// whole character.
    public func encodeWithOffsets(_ text: String, allowSpecial: Bool = true) -> [(id: Int32, start: Int, end: Int)] {
        // Code point index of every UTF-8 byte.
        var scalarOfByte: [Int] = []
        scalarOfByte.reserveCapacity(text.utf8.count)
        for (i, s) in text.unicodeScalars.enumerated() { scalarOfByte += [Int](repeating: i, count: String(s).utf8.count) }
        return encodeWithByteSpans(text, allowSpecial: allowSpecial).map { t in
            t.end > t.start ? (t.id, scalarOfByte[t.start], scalarOfByte[t.end - 1] + 1) : (t.id, 0, 0)
        }
    }

    /// Token ids with their UTF-8 byte spans in `text`.
    func encodeWithByteSpans(_ text: String, allowSpecial: Bool) -> [(id: Int32, start: Int, end: Int)] {
        var out: [(Int32, Int, Int)] = []
        var rest = Substring(text)
        var position = 0  // byte offset of `rest`
        while !rest.isEmpty {
            // The earliest special token in the rest (longest at a tie).
            var hit: (range: Range<Substring.Index>, id: Int32)?
            if allowSpecial {
                for s in specials {
                    if let r = rest.range(of: s.text), hit == nil || r.lowerBound < hit!.range.lowerBound { hit = (r, s.id) }
                }
            }
            let plain = hit.map { rest[..<$0.range.lowerBound] } ?? rest
            for piece in preTokenize(String(plain)) {
                for (id, n) in bpeWithLengths(piece) {
                    out.append((id, position, position + n))
                    position += n
                }
            }
            guard let hit else { break }
            let n = rest[hit.range].utf8.count
            out.append((hit.id, position, position + n))
            position += n
            rest = rest[hit.range.upperBound...]
        }
        return out
    }

    func split(_ text: String, _ regex: NSRegularExpression) -> [String] {
        let ns = text as NSString
        var pieces: [String] = []
        var last = 0
        for m in regex.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            if m.range.location > last { pieces.append(ns.substring(with: NSRange(location: last, length: m.range.location - last))) }
            pieces.append(ns.substring(with: m.range))
            last = m.range.location + m.range.length
        }
        if last < ns.length { pieces.append(ns.substring(from: last)) }
        return pieces
    }

    func preTokenize(_ text: String) -> [String] {
        switch preTokenizer {
        case .gpt2: return ByteLevelBPETokenizer.gpt2Split(text)
        case .digitsThenGPT2: return split(text, digit).flatMap { ByteLevelBPETokenizer.gpt2Split($0) }
        }
    }

    /// The regex version of `gpt2Split`, kept to check it against.
    func gpt2SplitByRegex(_ text: String) -> [String] { split(text, pattern) }

    /// GPT-2's pre-tokenizer pattern, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+,
    /// matched by hand over Unicode scalars: the same pieces as the regex, several times faster.
    static func gpt2Split(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return gpt2Ranges(scalars).map { String(String.UnicodeScalarView(scalars[$0])) }
    }

    enum ScalarKind: UInt8 { case letter, number, space, other }

    static let asciiKinds: [ScalarKind] = (0..<128).map { kind(Unicode.Scalar(UInt8($0))) }

    static func kind(_ c: Unicode.Scalar) -> ScalarKind {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return c.properties.isWhitespace ? .space : .other
        }
    }

    /// The pieces of `scalars` as index ranges (see `gpt2Split`).
    static func gpt2Ranges(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let kinds: [ScalarKind] = scalars.map { $0.value < 128 ? asciiKinds[Int($0.value)] : kind($0) }
        let n = scalars.count
        var pieces: [Range<Int>] = []
        var i = 0
        func run(from j: Int, _ k: ScalarKind) -> Int {
            var e = j
            while e < n && kinds[e] == k { e += 1 }
            return e
        }
        while i < n {
            // Contractions.
            if scalars[i] == "'" && i + 1 < n {
                let next = scalars[i + 1]
                if next == "s" || next == "t" || next == "m" || next == "d" { pieces.append(i..<(i + 2)); i += 2; continue }
                if i + 2 < n {
                    let third = scalars[i + 2]
                    if (next == "r" && third == "e") || (next == "v" && third == "e") || (next == "l" && third == "l") {
                        pieces.append(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            // An optional single space, then letters, numbers or other symbols.
            let j = scalars[i] == " " && i + 1 < n && kinds[i + 1] != .space ? i + 1 : i
            if kinds[j] != .space {
                let end = run(from: j, kinds[j])
                pieces.append(i..<end)
                i = end
                continue
            }
            // Whitespace: all of it at the end of the text, else all but the last (which then prefixes the next
            // piece), or the one character alone.
            let end = run(from: i, .space)
            let stop = end == n || end - i == 1 ? end : end - 1
            pieces.append(i..<stop)
            i = stop
        }
        return pieces
    }

    /// Merges the byte characters of one pre-token and looks the parts up.
    func bpe(_ piece: String) -> [Int32] { bpeWithLengths(piece).map(\.id) }

    /// `bpe` with the number of the piece's bytes each id stands for: a part's byte symbols, one byte each (not the
    /// length of the id's token, which differs when a part falls back to id 0 in a vocabulary lacking a byte symbol).
    func bpeWithLengths(_ piece: String) -> [(id: Int32, bytes: Int)] {
        var parts = piece.utf8.map { String(ByteLevelBPETokenizer.byteToCharacter[Int($0)]) }
        parts = ByteLevelBPETokenizer.merge(parts) { a, b in
            mergeRanks.isEmpty ? vocabulary[a + b].map(Int.init) : mergeRanks[a + " " + b]
        }
        // Every single byte is in a byte-level vocabulary; a part that is not falls back to its bytes.
        return parts.flatMap { p -> [(id: Int32, bytes: Int)] in
            if let id = vocabulary[p] { return [(id, p.unicodeScalars.count)] }
            return p.unicodeScalars.map { (vocabulary[String($0)] ?? 0, 1) }
        }
    }

    /// BPE on one word's symbols: repeatedly joins every occurrence (left to right) of the adjacent pair
    /// with the lowest rank, until no pair has one.
    static func merge(_ symbols: [String], rank: (String, String) -> Int?) -> [String] {
        var parts = symbols
        while parts.count > 1 {
            var best: (rank: Int, index: Int)?
            for i in 0..<(parts.count - 1) {
                if let r = rank(parts[i], parts[i + 1]), best == nil || r < best!.rank { best = (r, i) }
            }
            guard let best else { break }
            let (a, b) = (parts[best.index], parts[best.index + 1])
            var merged: [String] = []
            var i = 0
            while i < parts.count {
                if i + 1 < parts.count && parts[i] == a && parts[i + 1] == b {
                    merged.append(a + b)
                    i += 2
                } else {
                    merged.append(parts[i])
                    i += 1
                }
            }
            parts = merged
        }
        return parts
    }

    /// The UTF-8 bytes that `ids` stand for (special tokens as their text).
    public func bytes(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokens.count {
            let t = tokens[Int(id)]
            if specials.contains(where: { $0.id == id }) { out += Array(t.utf8); continue }
            for c in t { if let b = ByteLevelBPETokenizer.characterToByte[c] { out.append(b) } else { out += Array(String(c).utf8) } }
        }
        return out
    }

    public func decode(_ ids: [Int32]) -> String { String(decoding: bytes(ids), as: UTF8.self) }
}
