// Trained vectors with their words: the original word2vec text and binary formats (which gensim and the
// C tool read and write), cosine nearest neighbours, analogies (3CosAdd and 3CosMul), and the standard
// evaluations: questions-words.txt analogies and word-similarity sets scored by Spearman correlation.

import AttendTensor
import Foundation

/// Words with their vectors: nearest neighbours, analogies and the standard evaluations, read from and
/// written to word2vec's text and binary files.
///
/// ```swift
/// let wv = try WordVectors.load(from: "text8.bin")
/// let neighbours = try wv.nearest(to: "france", k: 5)
/// let answer = try wv.analogy("man", "king", "woman", k: 1)   // man is to king as woman is to ?
/// let r = try wv.evaluateAnalogies(path: "questions-words.txt")
/// ```
public struct WordVectors {
    public let words: [String]
    /// [V, D] raw vectors.
    public let vectors: Tensor
    /// [V, D] rows scaled to unit length (for cosine similarity).
    public let unitVectors: Tensor
    let table: WordTable

    public init(words: [String], vectors: Tensor) {
        precondition(vectors.rank == 2 && vectors.shape[0] == words.count, "WordVectors: \(words.count) words for vectors \(vectors.shape)")
        self.words = words
        self.vectors = vectors
        var t = WordTable(capacity: words.count)
        for w in words { _ = t.insert(w) }
        table = t
        let v = vectors.contiguous()
        let unit = Tensor(shape: v.shape)
        let d = v.shape[1], src = v.pointer, dst = unit.pointer
        for r in 0..<words.count {
            var s: Float = 0
            for i in 0..<d { s += src[r * d + i] * src[r * d + i] }
            let inv = s > 0 ? 1 / s.squareRoot() : 0
            for i in 0..<d { dst[r * d + i] = src[r * d + i] * inv }
        }
        unitVectors = unit
    }

    public var count: Int { words.count }
    public var dimension: Int { vectors.shape[1] }

    public func index(of word: String) -> Int? {
        let i = table.find(word)
        return i < 0 ? nil : Int(i)
    }

    /// The index of `word`, or an error that says it is not in the vocabulary.
    public func require(_ word: String) throws -> Int {
        guard let i = index(of: word) else { throw AttendError("'\(word)' is not in the vocabulary (\(count) words)") }
        return i
    }

    public func vector(_ word: String) throws -> [Float] {
        let i = try require(word)
        return Array(UnsafeBufferPointer(start: vectors.pointer + i * dimension, count: dimension))
    }

    public func similarity(_ a: String, _ b: String) throws -> Float {
        let (i, j) = (try require(a), try require(b))
        let d = dimension, u = unitVectors.pointer
        return (0..<d).reduce(0) { $0 + u[i * d + $1] * u[j * d + $1] }
    }

    /// Cosine similarities of the query rows [Q, D] (unit length) to the first `limit` words: [Q, limit].
    func cosines(_ queries: Tensor, limit: Int) -> Tensor {
        withNoGrad { queries.matmul(unitVectors.slice(axis: 0, start: 0, length: limit).transposed(0, 1)) }
    }

    /// The `k` words most similar to `word` (cosine), excluding itself.
    public func nearest(to word: String, k: Int = 10) throws -> [(word: String, similarity: Float)] {
        let i = try require(word)
        return nearest(toVector: Array(UnsafeBufferPointer(start: unitVectors.pointer + i * dimension, count: dimension)),
                       k: k, excluding: [i])
    }

    public func nearest(toVector v: [Float], k: Int = 10, excluding: Set<Int> = [], restrictTo limit: Int? = nil) -> [(word: String, similarity: Float)] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let q = Tensor(v.map { norm > 0 ? $0 / norm : 0 }, shape: [1, dimension])
        let scores = cosines(q, limit: min(limit ?? count, count)).toArray()
        return topK(scores, k: k, excluding: excluding).map { (words[$0], scores[$0]) }
    }

    /// "a is to b as c is to ?": 3CosAdd ranks by cos(x, b) - cos(x, a) + cos(x, c); 3CosMul (Levy &
    /// Goldberg, 2014) by cos'(x, b) cos'(x, c) / (cos'(x, a) + 0.001) with cos' = (1 + cos) / 2.
    public enum AnalogyMethod: String, Codable { case add = "3cosadd", mul = "3cosmul" }

    public func analogy(_ a: String, _ b: String, _ c: String, k: Int = 5, method: AnalogyMethod = .add,
                        restrictTo limit: Int? = nil) throws -> [(word: String, score: Float)] {
        let ids = [try require(a), try require(b), try require(c)]
        let scores = analogyScores([ids], method: method, limit: min(limit ?? count, count))
        return topK(scores[0], k: k, excluding: Set(ids)).map { (words[$0], scores[0][$0]) }
    }

    /// Scores of every word (among the first `limit`) for each question (a, b, c), batched through GEMM.
    func analogyScores(_ questions: [[Int]], method: AnalogyMethod, limit: Int) -> [[Float]] {
        let d = dimension, u = unitVectors.pointer
        let q = questions.count
        let rows = Tensor(shape: [3 * q, d])
        for (n, ids) in questions.enumerated() {
            for (k, id) in ids.enumerated() { (rows.pointer + (3 * n + k) * d).update(from: u + id * d, count: d) }
        }
        let cos = cosines(rows, limit: limit).toArray()  // [3Q, limit]
        return (0..<q).map { n in
            let (ca, cb, cc) = (3 * n * limit, (3 * n + 1) * limit, (3 * n + 2) * limit)
            return (0..<limit).map { x in
                switch method {
                case .add: return cos[cb + x] - cos[ca + x] + cos[cc + x]
                case .mul: return ((1 + cos[cb + x]) / 2) * ((1 + cos[cc + x]) / 2) / ((1 + cos[ca + x]) / 2 + 0.001)
                }
            }
        }
    }

    func topK(_ scores: [Float], k: Int, excluding: Set<Int>) -> [Int] {
        var best: [(Float, Int)] = []
        for (i, s) in scores.enumerated() where !excluding.contains(i) {
            if best.count < k { best.append((s, i)); best.sort { $0.0 > $1.0 }; continue }
            if s > best[k - 1].0 {
                best[k - 1] = (s, i)
                best.sort { $0.0 > $1.0 }
            }
        }
        return best.map(\.1)
    }
}

// MARK: - Evaluation

public struct AnalogyEvaluation: Codable {
    public struct Section: Codable {
        public var name: String
        public var correct: Int
        public var total: Int
        public var accuracy: Double { total > 0 ? Double(correct) / Double(total) : 0 }
    }
    public var sections: [Section]
    /// Questions skipped because a word is outside the (restricted) vocabulary.
    public var skipped: Int
    public var correct: Int { sections.reduce(0) { $0 + $1.correct } }
    public var total: Int { sections.reduce(0) { $0 + $1.total } }
    public var accuracy: Double { total > 0 ? Double(correct) / Double(total) : 0 }
}

public struct SimilarityEvaluation: Codable {
    public var spearman: Double
    public var pairs: Int
    public var skipped: Int
}

extension WordVectors {
    /// Upper-cased word -> its most frequent spelling's index among the first `limit` words (evaluation matches
    /// words case-insensitively as gensim does, by upper case: "ß" and "SS" are one word).
    func caseInsensitiveIndex(limit: Int) -> [String: Int] {
        var map: [String: Int] = [:]
        for i in stride(from: min(limit, count) - 1, through: 0, by: -1) { map[words[i].uppercased()] = i }
        return map
    }

    /// Accuracy on an analogy file in the questions-words.txt format (": section" lines, then "a b c d").
    /// Words are compared in upper case; questions with a word outside the first `restrictTo` words are skipped,
    /// and the answer is searched among those words. As gensim's evaluate_word_analogies: the answer is the best
    /// word that is not a spelling of a question word ("The" when "the" is asked), and any spelling of the
    /// expected word counts as right.
    public func evaluateAnalogies(path: String, method: AnalogyMethod = .add, restrictTo limit: Int = 30_000) throws -> AnalogyEvaluation {
        let limit = min(limit, count)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AttendError("\(path): cannot read as UTF-8 text") }
        let lookup = caseInsensitiveIndex(limit: limit)
        var sections: [AnalogyEvaluation.Section] = []
        var pending: [[Int]] = []
        var skipped = 0
        func flush() {
            guard !sections.isEmpty else { return }
            for start in stride(from: 0, to: pending.count, by: 256) {
                let batch = Array(pending[start..<min(pending.count, start + 256)])
                let scores = analogyScores(batch.map { Array($0.prefix(3)) }, method: method, limit: limit)
                for (q, s) in zip(batch, scores) {
                    let asked = Set(q.prefix(3).map { words[$0].uppercased() })
                    // gensim looks at its 5 best answers past the question's own rows and takes the first that is
                    // not another spelling of a question word.
                    let answer = topK(s, k: 5, excluding: Set(q.prefix(3))).first { !asked.contains(words[$0].uppercased()) }
                    if let answer, words[answer].uppercased() == words[q[3]].uppercased() { sections[sections.count - 1].correct += 1 }
                }
            }
            sections[sections.count - 1].total += pending.count
            pending = []
        }
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if trimmed.hasPrefix(":") {
                flush()
                sections.append(.init(name: trimmed.dropFirst().trimmingCharacters(in: .whitespaces), correct: 0, total: 0))
                continue
            }
            let parts = trimmed.split(separator: " ").map { $0.uppercased() }
            guard parts.count == 4 else { throw AttendError("\(path):\(n + 1): expected 4 words, got \(parts.count)") }
            if sections.isEmpty { sections.append(.init(name: "default", correct: 0, total: 0)) }
            let ids = parts.compactMap { lookup[$0] }
            if ids.count == 4 { pending.append(ids) } else { skipped += 1 }
        }
        flush()
        return AnalogyEvaluation(sections: sections, skipped: skipped)
    }

    /// Spearman correlation between human scores and cosine similarities on a word-pair file
    /// (tab-separated "word1 word2 score ...", '#' comments; a non-numeric third column is a header).
    public func evaluateSimilarity(path: String) throws -> SimilarityEvaluation {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AttendError("\(path): cannot read as UTF-8 text") }
        let lookup = caseInsensitiveIndex(limit: count)
        let d = dimension, u = unitVectors.pointer
        var human: [Double] = [], model: [Double] = []
        var skipped = 0
        for (n, line) in text.split(separator: "\n").enumerated() where !line.hasPrefix("#") {
            let cols = line.split(whereSeparator: { $0 == "\t" || $0 == "," }).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cols.count >= 3 else { throw AttendError("\(path):\(n + 1): expected word1, word2, score") }
            guard let score = Double(cols[2]) else {
                if n == 0 { continue }
                throw AttendError("\(path):\(n + 1): score '\(cols[2])' is not a number")
            }
            guard let i = lookup[cols[0].uppercased()], let j = lookup[cols[1].uppercased()] else { skipped += 1; continue }
            human.append(score)
            model.append(Double((0..<d).reduce(Float(0)) { $0 + u[i * d + $1] * u[j * d + $1] }))
        }
        return SimilarityEvaluation(spearman: spearman(human, model), pairs: human.count, skipped: skipped)
    }
}

/// Spearman rank correlation with average ranks for ties.
public func spearman(_ x: [Double], _ y: [Double]) -> Double {
    func ranks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var r = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            for k in i...j { r[order[k]] = Double(i + j) / 2 + 1 }
            i = j + 1
        }
        return r
    }
    let (rx, ry) = (ranks(x), ranks(y))
    let n = Double(x.count)
    guard n > 1 else { return 0 }
    let (mx, my) = (rx.reduce(0, +) / n, ry.reduce(0, +) / n)
    var (sxy, sxx, syy) = (0.0, 0.0, 0.0)
    for i in 0..<x.count {
        sxy += (rx[i] - mx) * (ry[i] - my)
        sxx += (rx[i] - mx) * (rx[i] - mx)
        syy += (ry[i] - my) * (ry[i] - my)
    }
    return sxy / (sxx * syy).squareRoot()
}
