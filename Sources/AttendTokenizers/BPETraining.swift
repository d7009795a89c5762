// Training a byte-level BPE tokenizer (Sennrich et al., 2016; GPT-2's byte-level variant) on a corpus:
// start from the 256 byte symbols and repeatedly merge the most frequent adjacent pair. The choice of
// merge follows Hugging Face tokenizers' BpeTrainer exactly (highest count, ties to the smallest pair of
// ids, ids numbered special tokens first, then the byte alphabet by code point, then merges in order), so
// the same corpus gives the same vocabulary and merges.

import AttendTensor
import Foundation

public struct BPETrainingOptions {
    /// Final vocabulary size: special tokens + 256 byte symbols + merges.
    public var vocabularySize = 8000
    /// Pairs seen fewer times than this are not merged.
    public var minFrequency = 2
    public var specialTokens = ["<|endoftext|>"]
    public var preTokenizer = ByteLevelBPETokenizer.PreTokenizer.gpt2
    public init() {}
}

/// Trains a byte-level BPE on a corpus, choosing the merges Hugging Face's BpeTrainer would.
///
/// ```swift
/// var options = BPETrainingOptions()
/// options.vocabularySize = 2000
/// let tokenizer = try BPETrainer.train(text.components(separatedBy: "\n"), options: options)
/// try tokenizer.save(directory: "tokenizer")   // vocab.json, merges.txt, tokenizer.json
/// ```
public enum BPETrainer {
    /// Trains on `texts` (each pre-tokenized on its own, so a pair never spans two texts).
    public static func train(_ texts: [String], options: BPETrainingOptions = BPETrainingOptions(),
                             progress: ((Int, Int) -> Void)? = nil) throws -> ByteLevelBPETokenizer {
        let alphabet = ByteLevelBPETokenizer.byteToCharacter.sorted { $0.unicodeScalars.first!.value < $1.unicodeScalars.first!.value }
        guard options.vocabularySize >= options.specialTokens.count + alphabet.count else {
            throw AttendError("BPE: a vocabulary of \(options.vocabularySize) cannot hold \(options.specialTokens.count) special tokens and the 256 byte symbols")
        }
        // Word (its UTF-8 bytes) -> count. Only the GPT-2 pattern is split here without building strings.
        var wordCounts: [[UInt8]: Int] = [:]
        let splitter = try ByteLevelBPETokenizer(tokens: [], merges: [], specialTokenIds: [], preTokenizer: options.preTokenizer)
        for text in texts {
            if options.preTokenizer == .gpt2 {
                let scalars = Array(text.unicodeScalars)
                var offsets = [Int](repeating: 0, count: scalars.count + 1)  // UTF-8 offset of each scalar
                for (i, c) in scalars.enumerated() { offsets[i + 1] = offsets[i] + (c.value < 0x80 ? 1 : c.value < 0x800 ? 2 : c.value < 0x10000 ? 3 : 4) }
                let bytes = Array(text.utf8)
                for r in ByteLevelBPETokenizer.gpt2Ranges(scalars) { wordCounts[Array(bytes[offsets[r.lowerBound]..<offsets[r.upperBound]]), default: 0] += 1 }
            } else {
                for piece in splitter.preTokenize(text) { wordCounts[Array(piece.utf8), default: 0] += 1 }
            }
        }
        var tokens = options.specialTokens + alphabet.map { String($0) }
        var ids: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        let byteIds = (0..<256).map { ids[String(ByteLevelBPETokenizer.byteToCharacter[$0])]! }
        // Words in byte order so that the run does not depend on dictionary order.
        let entries = wordCounts.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var words = entries.map { e in e.key.map { byteIds[Int($0)] } }
        let counts = entries.map(\.value)

        var pairCounts: [Pair: Int] = [:]
        var wherePair: [Pair: Set<Int>] = [:]
        for (w, symbols) in words.enumerated() where symbols.count > 1 {
            for i in 0..<(symbols.count - 1) {
                let p = Pair(symbols[i], symbols[i + 1])
                pairCounts[p, default: 0] += counts[w]
                wherePair[p, default: []].insert(w)
            }
        }
        var queue = MergeQueue()
        for (p, c) in pairCounts where c > 0 { queue.push(Candidate(pair: p, count: c)) }

        var merges: [String] = []
        let target = options.vocabularySize
        while tokens.count < target, var top = queue.pop() {
            let actual = pairCounts[top.pair] ?? 0
            if top.count != actual {
                top.count = actual
                if actual > 0 { queue.push(top) }
                continue
            }
            if top.count < 1 || top.count < options.minFrequency { break }
            let (a, b) = (tokens[Int(top.pair.first)], tokens[Int(top.pair.second)])
            let merged = a + b
            let newId: Int32
            if let existing = ids[merged] { newId = existing } else {
                newId = Int32(tokens.count)
                tokens.append(merged)
                ids[merged] = newId
            }
            merges.append(a + " " + b)
            // Apply the merge left to right in every word that has the pair, and adjust the neighbours' counts.
            var grown: [Pair: Set<Int>] = [:]
            for w in (wherePair[top.pair] ?? []).sorted() {
                var s = words[w]
                let n = counts[w]
                var i = 0
                while i < s.count - 1 {
                    if s[i] == top.pair.first && s[i + 1] == top.pair.second {
                        if i > 0 {
                            pairCounts[Pair(s[i - 1], s[i]), default: 0] -= n
                            let p = Pair(s[i - 1], newId)
                            pairCounts[p, default: 0] += n
                            grown[p, default: []].insert(w)
                        }
                        if i + 2 < s.count {
                            pairCounts[Pair(s[i + 1], s[i + 2]), default: 0] -= n
                            let p = Pair(newId, s[i + 2])
                            pairCounts[p, default: 0] += n
                            grown[p, default: []].insert(w)
                        }
                        s.replaceSubrange(i...(i + 1), with: [newId])
                    }
                    i += 1
                }
                words[w] = s
            }
            for (p, where_) in grown {
                wherePair[p, default: []].formUnion(where_)
                if let c = pairCounts[p], c > 0 { queue.push(Candidate(pair: p, count: c)) }
            }
            progress?(tokens.count, target)
        }
        let specialIds = options.specialTokens.map { ids[$0]! }
        return try ByteLevelBPETokenizer(tokens: tokens, merges: merges, specialTokenIds: specialIds, preTokenizer: options.preTokenizer,
                                         eosId: options.specialTokens.first.flatMap { ids[$0] })
    }

    struct Pair: Hashable, Comparable {
        var first: Int32, second: Int32
        init(_ a: Int32, _ b: Int32) { first = a; second = b }
        static func < (l: Pair, r: Pair) -> Bool { l.first != r.first ? l.first < r.first : l.second < r.second }
    }

    struct Candidate {
        var pair: Pair
        var count: Int
        /// Pops first: the higher count, then the smaller pair.
        func before(_ o: Candidate) -> Bool { count != o.count ? count > o.count : pair < o.pair }
    }

    /// A binary heap of merge candidates; stale counts are fixed when popped (counts only fall).
    struct MergeQueue {
        var items: [Candidate] = []

        mutating func push(_ c: Candidate) {
            items.append(c)
            var i = items.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard items[i].before(items[parent]) else { break }
                items.swapAt(i, parent)
                i = parent
            }
        }

        mutating func pop() -> Candidate? {
            guard !items.isEmpty else { return nil }
            items.swapAt(0, items.count - 1)
            let top = items.removeLast()
            var i = 0
            while true {
                let (l, r) = (2 * i + 1, 2 * i + 2)
                var best = i
                if l < items.count && items[l].before(items[best]) { best = l }
                if r < items.count && items[r].before(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
            return top
        }
    }
}
