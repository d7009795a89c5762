// Chunking: sections cut into passages of at most `maxTokens` tokens (counted by the embedder's own tokenizer, so a
// chunk is never truncated when it is embedded), on sentence boundaries, never across sections, each passage
// starting with the last sentences of the one before (about `overlapTokens`), so a fact split by a boundary is
// whole in one of them.

import Foundation

/// A passage of a document, before embedding.
public struct DocumentChunk: Equatable, Sendable {
    /// Index of the chunk in its document.
    public var position: Int
    public var heading: String
    public var anchor: String?
    public var text: String
    public var tokenCount: Int

    public init(position: Int, heading: String, anchor: String?, text: String, tokenCount: Int) {
        (self.position, self.heading, self.anchor, self.text, self.tokenCount) = (position, heading, anchor, text, tokenCount)
    }
}

/// Cuts documents into chunks.
///
/// ```swift
/// let chunker = TextChunker(maxTokens: 200, overlapTokens: 40) { embedder.tokenizer.encode($0).count }
/// let chunks = chunker.chunks(of: try SourceDocument.read(path: "guide.md"))
/// ```
public struct TextChunker {
    public var maxTokens: Int
    public var overlapTokens: Int
    public let countTokens: (String) -> Int

    public init(maxTokens: Int, overlapTokens: Int, countTokens: @escaping (String) -> Int) {
        precondition(maxTokens >= 8 && overlapTokens >= 0 && overlapTokens < maxTokens,
                     "TextChunker: max tokens \(maxTokens) must be at least 8 and overlap \(overlapTokens) in 0..<max")
        (self.maxTokens, self.overlapTokens, self.countTokens) = (maxTokens, overlapTokens, countTokens)
    }

    public func chunks(of document: SourceDocument) -> [DocumentChunk] {
        var out: [DocumentChunk] = []
        for section in document.sections {
            for text in pack(pieces(section.text)) {
                out.append(DocumentChunk(position: out.count, heading: section.heading, anchor: section.anchor, text: text.text, tokenCount: text.tokens))
            }
            // A heading with no body is still findable by its words.
            if section.text.isEmpty && !section.heading.isEmpty {
                out.append(DocumentChunk(position: out.count, heading: section.heading, anchor: section.anchor, text: section.heading,
                                         tokenCount: countTokens(section.heading)))
            }
        }
        return out
    }

    /// Sentences (and lines, which in manuals are often list items or code), each with its token count; a piece
    /// longer than a chunk is cut at word boundaries.
    func pieces(_ text: String) -> [(text: String, tokens: Int)] {
        var out: [(String, Int)] = []
        for line in text.split(separator: "\n") {
            for sentence in TextChunker.sentences(line) {
                let n = countTokens(sentence)
                if n <= maxTokens { out.append((sentence, n)); continue }
                var words: [Substring] = []
                for word in sentence.split(separator: " ") {
                    words.append(word)
                    if words.count % 8 == 0, countTokens(words.joined(separator: " ")) > maxTokens - 16 {
                        let piece = words.joined(separator: " ")
                        out.append((piece, countTokens(piece)))
                        words = []
                    }
                }
                if !words.isEmpty { let piece = words.joined(separator: " "); out.append((piece, countTokens(piece))) }
            }
        }
        return out
    }

    /// Splits after ., ! or ? followed by a space and an upper-case letter, digit or opening quote (so "e.g. this"
    /// and "3.14" stay whole).
    static func sentences(_ line: Substring) -> [String] {
        var out: [String] = []
        let chars = Array(line)
        var start = 0
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if (c == "." || c == "!" || c == "?"), i + 2 < chars.count, chars[i + 1] == " ",
               chars[i + 2].isUppercase || chars[i + 2].isNumber || chars[i + 2] == "\"" || chars[i + 2] == "(" {
                out.append(String(chars[start...i]))
                start = i + 2
                i += 2
                continue
            }
            i += 1
        }
        if start < chars.count { out.append(String(chars[start...])) }
        return out.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Greedy packing with overlap: a chunk closes when the next piece would not fit; the next one starts with the
    /// trailing pieces of the last that add up to at most `overlapTokens`.
    func pack(_ pieces: [(text: String, tokens: Int)]) -> [(text: String, tokens: Int)] {
        var out: [(String, Int)] = []
        var current: [(text: String, tokens: Int)] = []
        var total = 0
        var fresh = 0   // pieces in `current` that are not overlap
        func close() {
            guard fresh > 0 else { return }
            // Joining adds about one token per boundary at most; the count is of the pieces, recounted once here.
            let text = current.map(\.text).joined(separator: " ")
            out.append((text, countTokens(text)))
        }
        for piece in pieces {
            if total + piece.tokens > maxTokens && !current.isEmpty {
                close()
                var kept: [(text: String, tokens: Int)] = []
                var keptTokens = 0
                for p in current.reversed() {
                    if keptTokens + p.tokens > overlapTokens || keptTokens + p.tokens + piece.tokens > maxTokens { break }
                    kept.insert(p, at: 0)
                    keptTokens += p.tokens
                }
                current = kept
                total = keptTokens
                fresh = 0
            }
            current.append(piece)
            total += piece.tokens
            fresh += 1
        }
        close()
        return out
    }
}
