// Word lookup by bytes (no String per token in the hot loop): an open-addressing hash table over a byte
// arena, and the vocabulary built from a corpus with min-count and max-size, sorted by frequency.

import AttendTensor
import Foundation

/// A byte-string -> Int32 hash table with linear probing (FNV-1a hashes).
struct WordTable {
    private(set) var arena: [UInt8] = []
    private(set) var offsets: [Int] = [0]
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 1 << 16) {
        var c = 1
        while c < capacity * 2 { c <<= 1 }
        slots = [Int32](repeating: -1, count: c)
        mask = c - 1
    }

    var count: Int { offsets.count - 1 }

    @inline(__always) static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<n { h = (h ^ UInt64(p[i])) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h)
    }

    @inline(__always) func equal(_ id: Int, _ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let (s, e) = (offsets[id], offsets[id + 1])
        guard e - s == n else { return false }
        return arena.withUnsafeBufferPointer { memcmp($0.baseAddress! + s, p, n) == 0 }
    }

    /// The id of the word, or -1.
    @inline(__always) func find(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        var i = WordTable.hash(p, n) & mask
        while true {
            let id = slots[i]
            if id < 0 || equal(Int(id), p, n) { return id }
            i = (i + 1) & mask
        }
    }

    /// Inserts the word if absent; returns (id, inserted).
    mutating func insert(_ p: UnsafePointer<UInt8>, _ n: Int) -> (Int32, Bool) {
        if count * 2 >= slots.count { grow() }
        var i = WordTable.hash(p, n) & mask
        while true {
            let id = slots[i]
            if id < 0 { break }
            if equal(Int(id), p, n) { return (id, false) }
            i = (i + 1) & mask
        }
        let id = Int32(count)
        arena.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        offsets.append(arena.count)
        slots[i] = id
        return (id, true)
    }

    mutating func insert(_ word: String) -> (Int32, Bool) {
        var w = word
        return w.withUTF8 { insert($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
    }

    func find(_ word: String) -> Int32 {
        var w = word
        return w.withUTF8 { $0.count == 0 ? -1 : find($0.baseAddress!, $0.count) }
    }

    func word(_ id: Int) -> String {
        String(decoding: arena[offsets[id]..<offsets[id + 1]], as: UTF8.self)
    }

    private mutating func grow() {
        var bigger = WordTable(capacity: slots.count)
        bigger.arena = arena
        bigger.offsets = offsets
        for id in 0..<count {
            arena.withUnsafeBufferPointer { a in
                let p = a.baseAddress! + offsets[id]
                var i = WordTable.hash(p, offsets[id + 1] - offsets[id]) & bigger.mask
                while bigger.slots[i] >= 0 { i = (i + 1) & bigger.mask }
                bigger.slots[i] = Int32(id)
            }
        }
        self = bigger
    }
}

/// Words with their corpus counts, most frequent first; ids are positions.
public struct Vocabulary {
    public private(set) var words: [String] = []
    public private(set) var counts: [Int64] = []
    var table = WordTable()

    public init() {}

    /// A vocabulary from (word, count) pairs, kept in the given order.
    public init(words: [String], counts: [Int64]) throws {
        precondition(words.count == counts.count, "Vocabulary: \(words.count) words but \(counts.count) counts")
        for (w, c) in zip(words, counts) {
            guard table.insert(w).1 else { throw AttendError("vocabulary: word '\(w)' appears twice") }
            self.words.append(w)
            self.counts.append(c)
        }
    }

    public var count: Int { words.count }
    public var totalCount: Int64 { counts.reduce(0, +) }

    public func index(of word: String) -> Int? {
        let id = table.find(word)
        return id < 0 ? nil : Int(id)
    }

    @inline(__always) func index(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 { table.find(p, n) }

    /// Counts the whitespace-separated words of a corpus file and keeps those seen at least `minCount`
    /// times (at most `maxSize` of them, the most frequent). Throws for an empty or non-UTF-8 corpus,
    /// naming the line.
    public static func build(corpus: MappedFile, minCount: Int, maxSize: Int? = nil) throws -> Vocabulary {
        var raw = WordTable(capacity: 1 << 18)
        var rawCounts: [Int64] = []
        var line = 1
        var badLine: Int?
        let bytes = corpus.bytes
        forEachToken(bytes, 0..<corpus.count, { start, n in
            let (id, inserted) = raw.insert(bytes + start, n)
            if inserted {
                rawCounts.append(0)
                // Only a new word can bring new bytes, so only new words are checked for UTF-8.
                if badLine == nil && String(validatingUTF8CString: bytes + start, count: n) == nil { badLine = line }
            }
            rawCounts[Int(id)] += 1
        }, endOfLine: { line += 1 })
        if let badLine { throw AttendError("\(corpus.path):\(badLine): the corpus is not valid UTF-8") }
        guard raw.count > 0 else { throw AttendError("\(corpus.path): the corpus is empty (no words)") }
        var kept = (0..<raw.count).filter { rawCounts[$0] >= Int64(minCount) }
        // Most frequent first; ties keep first-seen order (as gensim does).
        kept.sort { rawCounts[$0] != rawCounts[$1] ? rawCounts[$0] > rawCounts[$1] : $0 < $1 }
        if let maxSize, kept.count > maxSize { kept = Array(kept.prefix(maxSize)) }
        guard !kept.isEmpty else {
            throw AttendError("\(corpus.path): no word occurs at least \(minCount) times (min-count); the corpus has \(raw.count) distinct words")
        }
        return try Vocabulary(words: kept.map { raw.word($0) }, counts: kept.map { rawCounts[$0] })
    }
}

extension String {
    /// The string when `n` bytes at `p` are valid UTF-8, else nil.
    init?(validatingUTF8CString p: UnsafePointer<UInt8>, count n: Int) {
        guard let s = String(validating: UnsafeBufferPointer(start: p, count: n), as: UTF8.self) else { return nil }
        self = s
    }
}

/// Walker's alias method: O(1) draws from a discrete distribution (word2vec negatives, node2vec steps).
public struct AliasTable {
    public let probability: [Float]
    public let alias: [Int32]

    public init(weights: [Double]) {
        let n = weights.count
        precondition(n > 0, "AliasTable needs at least one weight")
        let total = weights.reduce(0, +)
        var scaled = weights.map { $0 * Double(n) / total }
        var prob = [Float](repeating: 1, count: n)
        var alias = [Int32](repeating: 0, count: n)
        var small = [Int](), large = [Int]()
        for (i, s) in scaled.enumerated() { if s < 1 { small.append(i) } else { large.append(i) } }
        while let s = small.popLast(), let l = large.last {
            prob[s] = Float(scaled[s])
            alias[s] = Int32(l)
            scaled[l] -= 1 - scaled[s]
            if scaled[l] < 1 { large.removeLast(); small.append(l) }
        }
        for i in small + large { prob[i] = 1; alias[i] = Int32(i) }
        probability = prob
        self.alias = alias
    }

    /// A draw given two uniform numbers in [0, 1).
    @inline(__always) public func sample(_ u1: Float, _ u2: Float) -> Int {
        let i = Swift.min(Int(u1 * Float(probability.count)), probability.count - 1)
        return u2 < probability[i] ? i : Int(alias[i])
    }
}
