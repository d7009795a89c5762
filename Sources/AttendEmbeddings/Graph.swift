// Graphs for DeepWalk (Perozzi et al., 2014) and node2vec (Grover & Leskovec, 2016): an adjacency list in
// compressed sparse rows, loaded from an edge list ("u v [weight]" per line, '#' comments).

import AttendTensor
import Foundation

/// A graph in compressed sparse rows, with node names: the input of DeepWalk and node2vec.
///
/// ```swift
/// let graph = try Graph.load(edgeList: "karate.edges")
/// print(graph.nodeCount, graph.edgeCount, graph.degree(0))
/// let (vectors, _) = GraphEmbedding.train(graph: graph, walks: WalkConfig(), word2vec: Word2VecConfig())
/// ```
public struct Graph {
    /// Node names in first-seen order; node i is `names[i]`.
    public let names: [String]
    /// Neighbours of node i are `neighbors[offsets[i]..<offsets[i+1]]`, sorted ascending.
    public let offsets: [Int]
    public let neighbors: [Int32]
    public let weights: [Float]
    public let directed: Bool

    public var nodeCount: Int { names.count }
    public var edgeCount: Int { directed ? neighbors.count : neighbors.count / 2 }
    public func degree(_ i: Int) -> Int { offsets[i + 1] - offsets[i] }
    public var isWeighted: Bool { weights.contains { $0 != 1 } }

    /// Builds a graph from (source, target, weight) triples over node names.
    public init(edges: [(String, String, Float)], directed: Bool = false) {
        var index: [String: Int32] = [:]
        var names: [String] = []
        func id(_ s: String) -> Int32 {
            if let i = index[s] { return i }
            let i = Int32(names.count)
            index[s] = i
            names.append(s)
            return i
        }
        var pairs: [(Int32, Int32, Float)] = []
        for (a, b, w) in edges {
            let (i, j) = (id(a), id(b))
            pairs.append((i, j, w))
            if !directed && i != j { pairs.append((j, i, w)) }
        }
        pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        // Merge duplicate edges by adding their weights.
        var merged: [(Int32, Int32, Float)] = []
        for p in pairs {
            if let last = merged.last, last.0 == p.0, last.1 == p.1 { merged[merged.count - 1].2 += p.2 } else { merged.append(p) }
        }
        var offsets = [Int](repeating: 0, count: names.count + 1)
        for p in merged { offsets[Int(p.0) + 1] += 1 }
        for i in 0..<names.count { offsets[i + 1] += offsets[i] }
        self.names = names
        self.offsets = offsets
        neighbors = merged.map(\.1)
        weights = merged.map(\.2)
        self.directed = directed
    }

    /// Reads an edge list: "source target" or "source target weight" per line; blank lines and '#' comments skipped.
    public static func load(edgeList path: String, directed: Bool = false) throws -> Graph {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw AttendError(FileManager.default.fileExists(atPath: path) ? "\(path): not UTF-8 text" : "\(path): no such file")
        }
        var edges: [(String, String, Float)] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == "\r" })
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            guard fields.count == 2 || fields.count == 3 else {
                throw AttendError("\(path):\(n + 1): expected 'source target [weight]', got \(fields.count) fields")
            }
            var w: Float = 1
            if fields.count == 3 {
                guard let x = Float(fields[2]), x > 0, x.isFinite else {
                    throw AttendError("\(path):\(n + 1): weight '\(fields[2])' is not a positive number")
                }
                w = x
            }
            edges.append((String(fields[0]), String(fields[1]), w))
        }
        guard !edges.isEmpty else { throw AttendError("\(path): no edges") }
        return Graph(edges: edges, directed: directed)
    }

    func isNeighbor(_ a: Int, _ b: Int32) -> Bool {
        var (lo, hi) = (offsets[a], offsets[a + 1])
        while lo < hi {
            let mid = (lo + hi) / 2
            if neighbors[mid] == b { return true }
            if neighbors[mid] < b { lo = mid + 1 } else { hi = mid }
        }
        return false
    }
}

/// Walk settings. p = q = 1 gives DeepWalk's uniform walks.
public struct WalkConfig: Codable, Equatable {
    public var walksPerNode = 10
    public var walkLength = 40
    /// node2vec return parameter: a low p keeps walks near where they came from.
    public var p: Double = 1
    /// node2vec in-out parameter: a low q explores outward (DFS-like), a high q stays local (BFS-like).
    public var q: Double = 1
    public var seed: UInt64 = 1
    public init() {}
}

/// Random walks generated on the fly, one round of `walksPerNode` walks from every node per epoch.
/// First-order steps draw from per-node alias tables over edge weights; node2vec's second-order bias is
/// applied by rejection sampling (accept with alpha / max alpha), which needs no per-edge tables.
public final class RandomWalks: SentenceSource {
    public let graph: Graph
    public let config: WalkConfig
    /// Vocabulary id of each node (the vocabulary is sorted by expected visit count).
    let nodeToWord: [Int32]
    let aliasProbability: [Float]
    let alias: [Int32]

    public init(graph: Graph, config: WalkConfig, nodeToWord: [Int32]) {
        self.graph = graph
        self.config = config
        self.nodeToWord = nodeToWord
        var prob = [Float](repeating: 1, count: graph.neighbors.count), al = [Int32](repeating: 0, count: graph.neighbors.count)
        if graph.isWeighted {
            for i in 0..<graph.nodeCount where graph.degree(i) > 0 {
                let r = graph.offsets[i]..<graph.offsets[i + 1]
                let t = AliasTable(weights: graph.weights[r].map(Double.init))
                for (k, e) in r.enumerated() { prob[e] = t.probability[k]; al[e] = t.alias[k] }
            }
        }
        aliasProbability = prob
        alias = al
    }

    public var wordsPerEpoch: Int64 { Int64(graph.nodeCount) * Int64(config.walksPerNode) * Int64(config.walkLength) }

    @inline(__always) func firstOrderStep(_ v: Int, _ g: inout RandomGenerator) -> Int32 {
        let (start, deg) = (graph.offsets[v], graph.degree(v))
        let k = min(Int(g.nextUniform() * Float(deg)), deg - 1)
        return g.nextUniform() < aliasProbability[start + k] ? graph.neighbors[start + k] : graph.neighbors[start + Int(alias[start + k])]
    }

    /// One walk from `start` into `out` (node indices); returns its length (shorter at dead ends).
    public func walk(from start: Int, into out: UnsafeMutablePointer<Int32>, generator g: inout RandomGenerator) -> Int {
        out[0] = Int32(start)
        var n = 1
        let biased = config.p != 1 || config.q != 1
        let (invP, invQ) = (1 / config.p, 1 / config.q)
        let maxAlpha = max(invP, 1, invQ)
        while n < config.walkLength {
            let v = Int(out[n - 1])
            guard graph.degree(v) > 0 else { break }
            var next = firstOrderStep(v, &g)
            if biased && n >= 2 {
                let t = out[n - 2]
                while true {
                    let alpha = next == t ? invP : (graph.isNeighbor(Int(t), next) ? 1 : invQ)
                    if Double(g.nextUniform()) * maxAlpha < alpha { break }
                    next = firstOrderStep(v, &g)
                }
            }
            out[n] = next
            n += 1
        }
        return n
    }

    public func forEachSentence(part: Int, of parts: Int, epoch: Int, _ body: (UnsafeBufferPointer<Int32>) -> Void) {
        let (lo, hi) = (graph.nodeCount * part / parts, graph.nodeCount * (part + 1) / parts)
        var g = RandomGenerator(seed: config.seed &+ UInt64(epoch) &* 1_000_003 &+ UInt64(part) &* 7919)
        let buffer = UnsafeMutablePointer<Int32>.allocate(capacity: config.walkLength)
        defer { buffer.deallocate() }
        var order = Array(lo..<hi)
        for _ in 0..<config.walksPerNode {
            order.shuffle(using: &g)
            for start in order {
                let n = walk(from: start, into: buffer, generator: &g)
                for i in 0..<n { buffer[i] = nodeToWord[Int(buffer[i])] }
                body(UnsafeBufferPointer(start: buffer, count: n))
            }
        }
    }
}

/// DeepWalk / node2vec: random walks fed straight to the skip-gram trainer (nothing written to disk).
public enum GraphEmbedding {
    /// Trains node vectors; the returned vectors are keyed by node name.
    public static func train(graph: Graph, walks: WalkConfig, word2vec: Word2VecConfig, progress: Bool = true)
        -> (vectors: WordVectors, summary: Word2VecTrainingSummary) {
        // Expected visits are proportional to degree for uniform walks on undirected graphs; the counts only
        // shape the negative-sampling distribution and the Huffman tree.
        let total = Double(walks.walksPerNode * walks.walkLength * graph.nodeCount)
        let degreeSum = Double(max(graph.neighbors.count, 1))
        let expected = (0..<graph.nodeCount).map { max(1, Int64((total * Double(graph.degree($0) + 1) / (degreeSum + Double(graph.nodeCount))).rounded())) }
        let order = (0..<graph.nodeCount).sorted { expected[$0] != expected[$1] ? expected[$0] > expected[$1] : $0 < $1 }
        var nodeToWord = [Int32](repeating: 0, count: graph.nodeCount)
        for (w, node) in order.enumerated() { nodeToWord[node] = Int32(w) }
        // Graph node names are unique by construction, so this vocabulary cannot hold a duplicate.
        let vocabulary = try! Vocabulary(words: order.map { graph.names[$0] }, counts: order.map { expected[$0] })
        var config = word2vec
        config.minCount = 1
        config.maxSentenceLength = max(config.maxSentenceLength, walks.walkLength)
        let model = Word2Vec(config: config, vocabulary: vocabulary)
        let summary = model.train(RandomWalks(graph: graph, config: walks, nodeToWord: nodeToWord), progress: progress)
        return (model.vectors, summary)
    }
}
