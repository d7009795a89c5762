// BERT's tokenizer (Devlin et al., 2019): a basic pre-tokenizer (clean control characters, split CJK
// ideographs and punctuation, optional lower-casing and accent stripping), then WordPiece: greedy
// longest-match-first sub-words, continuations prefixed with "##", unknown words as [UNK].
// Ids match Hugging Face's BertTokenizer (checked in AttendTokenizersTests).

import AttendTensor
import Foundation

/// BERT's WordPiece tokenizer; its ids match Hugging Face's BertTokenizer.
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer.load(directory: "all-MiniLM-L6-v2")
/// let pieces = tokenizer.tokenize("Tokenization is fun")   // continuations start with "##"
/// let ids = tokenizer.encode("Tokenization is fun", maxLength: 128)   // [CLS] ... [SEP]
/// ```
public struct WordPieceTokenizer {
    public let vocabulary: [String: Int32]
    public let tokens: [String]
    public var lowercase = true
    /// nil follows `lowercase`, as Hugging Face does.
    public var stripAccents: Bool?
    public var splitChineseCharacters = true
    public let unknownToken = "[UNK]", classToken = "[CLS]", separatorToken = "[SEP]", padToken = "[PAD]"
    public var maxCharactersPerWord = 100

    public init(vocabulary tokens: [String], lowercase: Bool = true, stripAccents: Bool? = nil) throws {
        var v: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where v[t] == nil { v[t] = Int32(i) }
        for special in ["[UNK]", "[CLS]", "[SEP]", "[PAD]"] where v[special] == nil {
            throw AttendError("WordPiece vocabulary lacks the special token \(special)")
        }
        self.vocabulary = v
        self.tokens = tokens
        self.lowercase = lowercase
        self.stripAccents = stripAccents
    }

    /// Loads `vocab.txt` (one token per line) and, when present beside it, `tokenizer_config.json`.
    public static func load(directory: String) throws -> WordPieceTokenizer {
        let dir = URL(fileURLWithPath: directory)
        let vocabPath = dir.appendingPathComponent("vocab.txt").path
        guard let text = try? String(contentsOfFile: vocabPath, encoding: .utf8) else {
            throw AttendError("\(vocabPath): no such file or not UTF-8 (a BERT tokenizer needs vocab.txt)")
        }
        // "\r\n" is one Character in Swift, so CRLF files are split on both line ends.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var tokenizer = try WordPieceTokenizer(vocabulary: lines)
        let configPath = dir.appendingPathComponent("tokenizer_config.json").path
        if let data = FileManager.default.contents(atPath: configPath) {
            guard let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw AttendError("\(configPath): does not parse as a JSON object")
            }
            tokenizer.lowercase = config["do_lower_case"] as? Bool ?? true
            tokenizer.stripAccents = config["strip_accents"] as? Bool
            tokenizer.splitChineseCharacters = config["tokenize_chinese_chars"] as? Bool ?? true
        }
        return tokenizer
    }

    public var padId: Int32 { vocabulary[padToken]! }

    /// The word pieces of `text` (no special tokens).
    public func tokenize(_ text: String) -> [String] {
        basicTokens(text).flatMap { wordPieces($0.text) }
    }

    /// [CLS] pieces [SEP], truncated to `maxLength` ids including the special tokens.
    public func encode(_ text: String, maxLength: Int = 512) -> [Int32] {
        encodeWithOffsets(text, maxLength: maxLength).map(\.id)
    }

    /// [CLS] pieces [SEP] with the span of `text` each piece comes from, in Unicode code points (Python's
    /// string indices, as Hugging Face tokenizers report offsets); the special tokens get (0, 0).
    public func encodeWithOffsets(_ text: String, maxLength: Int = 512) -> [(id: Int32, start: Int, end: Int)] {
        let unk = vocabulary[unknownToken]!
        var out: [(Int32, Int, Int)] = [(vocabulary[classToken]!, 0, 0)]
        let budget = max(0, maxLength - 2)
        words: for word in basicTokens(text) {
            var position = 0  // scalar index in the word
            let scalarCount = word.text.unicodeScalars.count
            for piece in wordPieces(word.text) {
                if out.count - 1 >= budget { break words }
                if piece == unknownToken {
                    out.append((unk, word.origins.first!, word.origins.last! + 1))
                    continue
                }
                let n = piece.unicodeScalars.count - (piece.hasPrefix("##") && position > 0 ? 2 : 0)
                let end = min(position + n, scalarCount)
                out.append((vocabulary[piece] ?? unk, word.origins[position], word.origins[end - 1] + 1))
                position = end
            }
        }
        out.append((vocabulary[separatorToken]!, 0, 0))
        return out
    }

    public func decode(_ ids: [Int32]) -> String {
        var out = ""
        for id in ids where id >= 0 && Int(id) < tokens.count {
            let t = tokens[Int(id)]
            if [classToken, separatorToken, padToken].contains(t) { continue }
            if t.hasPrefix("##") { out += t.dropFirst(2) } else { out += (out.isEmpty ? "" : " ") + t }
        }
        return out
    }

    // MARK: - Basic tokenizer

    /// Cleaned, lower-cased (per configuration), accent-stripped words and punctuation marks, each with the
    /// index in `text` of the code point every one of its code points came from.
    func basicTokens(_ text: String) -> [(text: String, origins: [Int])] {
        var result: [(String, [Int])] = []
        var current = String.UnicodeScalarView(), origins: [Int] = []
        func flush() {
            if !current.isEmpty { result.append((String(current), origins)) }
            current = .init()
            origins = []
        }
        let strip = stripAccents ?? lowercase
        for (i, s) in text.unicodeScalars.enumerated() {
            if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) { flush(); continue }
            if splitChineseCharacters && isCJK(s) {
                flush()
                result.append((String(s), [i]))
                continue
            }
            // Lower-case and strip accents one code point at a time, as Hugging Face's BertNormalizer does.
            var pieces = String(s)
            if lowercase { pieces = pieces.lowercased() }
            if strip { pieces = pieces.decomposedStringWithCanonicalMapping }
            for p in pieces.unicodeScalars {
                if strip && p.properties.generalCategory == .nonspacingMark { continue }
                // Every punctuation character becomes a token of its own.
                if isPunctuation(p) {
                    flush()
                    result.append((String(p), [i]))
                } else {
                    current.append(p)
                    origins.append(i)
                }
            }
        }
        flush()
        return result
    }

    func wordPieces(_ word: String) -> [String] {
        let scalars = Array(word.unicodeScalars)
        if scalars.count > maxCharactersPerWord { return [unknownToken] }
        var pieces: [String] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: String?
            while start < end {
                var piece = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { piece = "##" + piece }
                if vocabulary[piece] != nil { found = piece; break }
                end -= 1
            }
            guard let found else { return [unknownToken] }
            pieces.append(found)
            start = end
        }
        return pieces
    }

    func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    func isCJK(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
