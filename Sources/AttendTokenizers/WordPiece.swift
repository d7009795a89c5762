// BERT's tokenizer (Devlin et al., 2019): a basic pre-tokenizer (clean control characters, split CJK
// ideographs and punctuation, optional lower-casing and accent stripping), then WordPiece: greedy
// longest-match-first sub-words, continuations prefixed with "##", unknown words as [UNK].
// Ids match Hugging Face's BertTokenizer (checked in AttendTokenizersTests).

import AttendTensor
import Foundation

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
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var tokenizer = try WordPieceTokenizer(vocabulary: lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 })
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
        basicTokens(text).flatMap(wordPieces)
    }

    /// [CLS] pieces [SEP], truncated to `maxLength` ids including the special tokens.
    public func encode(_ text: String, maxLength: Int = 512) -> [Int32] {
        let pieces = tokenize(text).prefix(max(0, maxLength - 2))
        let unk = vocabulary[unknownToken]!
        return [vocabulary[classToken]!] + pieces.map { vocabulary[$0] ?? unk } + [vocabulary[separatorToken]!]
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

    func basicTokens(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) { cleaned.append(" "); continue }
            if splitChineseCharacters && isCJK(s) {
                cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        var result: [String] = []
        for word in String(cleaned).split(separator: " ") {
            var w = String(word)
            if lowercase { w = w.lowercased() }
            if stripAccents ?? lowercase {
                w = String(String.UnicodeScalarView(w.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                    $0.properties.generalCategory != .nonspacingMark
                }))
            }
            // Every punctuation character becomes a token of its own.
            var current = String.UnicodeScalarView()
            for s in w.unicodeScalars {
                if isPunctuation(s) {
                    if !current.isEmpty { result.append(String(current)); current = .init() }
                    result.append(String(s))
                } else {
                    current.append(s)
                }
            }
            if !current.isEmpty { result.append(String(current)) }
        }
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
