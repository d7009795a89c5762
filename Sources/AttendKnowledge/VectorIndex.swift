// Nearest-neighbour search over labelled vectors: exact (every row scored by the SIMD kernels, rows split over the
// cores) and approximate (an HNSW graph, VectorSearch.c). Both answer the same question, nearest first, so the
// exact index is the HNSW index's ground truth in tests and benchmarks.

import AttendTensor
import CAttendKernels
import Foundation

/// How vectors are compared. `.cosine` expects unit vectors (sentence embedders normalize) and ranks by
/// 1 - dot product; `.euclidean` ranks by squared distance.
public enum DistanceMetric: String, Codable, Sendable {
    case euclidean, cosine

    var code: Int32 { self == .euclidean ? ATTEND_METRIC_L2 : ATTEND_METRIC_INNER_PRODUCT }
}

/// A search result: the vector's label and its distance to the query (smaller is closer).
public struct Neighbor: Equatable, Sendable {
    public var label: Int64
    public var distance: Float
    public init(label: Int64, distance: Float) { self.label = label; self.distance = distance }
}

/// Exact search: every stored vector is scored.
///
/// ```swift
/// var index = ExactIndex(dimension: 3, metric: .euclidean)
/// index.add([1, 0, 0], label: 7)
/// index.search([0.9, 0, 0], k: 1)   // [Neighbor(label: 7, distance: 0.01)]
/// ```
/// - Complexity: O(n * dimension) per query.
public struct ExactIndex {
    public let dimension: Int
    public let metric: DistanceMetric
    public private(set) var vectors: [Float] = []
    public private(set) var labels: [Int64] = []

    public init(dimension: Int, metric: DistanceMetric) {
        precondition(dimension >= 1, "ExactIndex: dimension \(dimension) must be at least 1")
        self.dimension = dimension
        self.metric = metric
    }

    public var count: Int { labels.count }

    public mutating func add(_ vector: [Float], label: Int64) {
        precondition(vector.count == dimension, "ExactIndex.add: vector of \(vector.count) values, index dimension \(dimension)")
        vectors += vector
        labels.append(label)
    }

    public mutating func reserveCapacity(_ n: Int) {
        vectors.reserveCapacity(n * dimension)
        labels.reserveCapacity(n)
    }

    /// The k nearest vectors (only those `allowed` accepts, when given), nearest first.
    public func search(_ query: [Float], k: Int, allowed: ((Int64) -> Bool)? = nil) -> [Neighbor] {
        precondition(query.count == dimension, "ExactIndex.search: query of \(query.count) values, index dimension \(dimension)")
        let n = count
        guard n > 0, k > 0 else { return [] }
        let distances = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { distances.deallocate() }
        vectors.withUnsafeBufferPointer { rows in
            query.withUnsafeBufferPointer { q in
                let (rowsBase, qBase, d) = (rows.baseAddress!, q.baseAddress!, dimension)
                Parallel.forRanges(n, costPerItem: d) { range in
                    attend_vector_distances(metric.code, qBase, rowsBase + range.lowerBound * d, range.count, d, distances + range.lowerBound)
                }
            }
        }
        return ExactIndex.smallest(k, of: n, distances: distances) { i in allowed.map { $0(labels[i]) } ?? true }.map {
            Neighbor(label: labels[$0], distance: distances[$0])
        }
    }

    /// Indices of the k smallest distances among those `keep` accepts, smallest first (ties by index): a bounded
    /// max-heap, so k << n costs O(n log k).
    static func smallest(_ k: Int, of n: Int, distances: UnsafePointer<Float>, keep: (Int) -> Bool) -> [Int] {
        var heap: [Int] = []   // max-heap by (distance, index)
        heap.reserveCapacity(k + 1)
        func worse(_ a: Int, _ b: Int) -> Bool { distances[a] > distances[b] || (distances[a] == distances[b] && a > b) }
        func siftUp(_ i0: Int) {
            var i = i0
            while i > 0 { let p = (i - 1) / 2; if !worse(heap[i], heap[p]) { break }; heap.swapAt(i, p); i = p }
        }
        func siftDown() {
            var i = 0
            while true {
                var c = 2 * i + 1
                if c >= heap.count { break }
                if c + 1 < heap.count && worse(heap[c + 1], heap[c]) { c += 1 }
                if !worse(heap[c], heap[i]) { break }
                heap.swapAt(i, c); i = c
            }
        }
        for i in 0..<n where keep(i) {
            if heap.count < k { heap.append(i); siftUp(heap.count - 1) }
            else if worse(heap[0], i) { heap[0] = i; siftDown() }
        }
        return heap.sorted { worse($1, $0) }
    }
}

/// Approximate search on a hierarchical navigable small world graph (hnswlib's algorithm). `m` links per node
/// (2m on the bottom layer), `efConstruction` candidates while inserting, `ef` at query time (more is slower and
/// finds more of the true neighbours). Labels are unique: adding a label again replaces its vector.
///
/// ```swift
/// let index = try HNSWIndex(dimension: 384, metric: .cosine, m: 16, efConstruction: 200)
/// try index.add(vector, label: 42)
/// let hits = index.search(query, k: 10, ef: 64)
/// ```
public final class HNSWIndex {
    public let dimension: Int
    public let metric: DistanceMetric
    public let m: Int
    public let efConstruction: Int
    let graph: OpaquePointer
    private var nodes: [Int64: Int] = [:]   // live label -> node

    public init(dimension: Int, metric: DistanceMetric, m: Int = 16, efConstruction: Int = 200, seed: UInt64 = 100) throws {
        guard dimension >= 1, (2...512).contains(m), efConstruction >= 1 else {
            throw AttendError("HNSW: dimension \(dimension) must be at least 1, M \(m) in 2...512, ef_construction \(efConstruction) at least 1")
        }
        guard let g = attend_hnsw_create(dimension, metric.code, m, efConstruction, seed) else { throw AttendError("HNSW: out of memory") }
        (self.dimension, self.metric, self.m, self.efConstruction, graph) = (dimension, metric, m, efConstruction, g)
    }

    private init(graph: OpaquePointer, dimension: Int, metric: DistanceMetric, m: Int, efConstruction: Int) {
        (self.graph, self.dimension, self.metric, self.m, self.efConstruction) = (graph, dimension, metric, m, efConstruction)
        for node in 0..<attend_hnsw_count(graph) where attend_hnsw_is_deleted(graph, node) == 0 {
            nodes[attend_hnsw_label(graph, node)] = node
        }
    }

    deinit { attend_hnsw_free(graph) }

    /// Live (not deleted) vectors.
    public var count: Int { nodes.count }
    /// Nodes in the graph, deleted ones included (they still route searches until a rebuild).
    public var nodeCount: Int { attend_hnsw_count(graph) }
    public func contains(_ label: Int64) -> Bool { nodes[label] != nil }
    public var labels: Dictionary<Int64, Int>.Keys { nodes.keys }

    public func add(_ vector: [Float], label: Int64) throws {
        guard vector.count == dimension else { throw AttendError("HNSW: vector of \(vector.count) values, index dimension \(dimension)") }
        remove(label)
        let node = vector.withUnsafeBufferPointer { attend_hnsw_add(graph, $0.baseAddress!, label) }
        guard node >= 0 else { throw AttendError("HNSW: out of memory adding label \(label)") }
        nodes[label] = node
    }

    /// Marks the label's vector deleted; returns whether it was there.
    @discardableResult
    public func remove(_ label: Int64) -> Bool {
        guard let node = nodes.removeValue(forKey: label) else { return false }
        attend_hnsw_mark_deleted(graph, node)
        return true
    }

    /// The k nearest live vectors, nearest first. `allowed` (labels) restricts the results; the beam widens to
    /// keep k results when few are allowed.
    public func search(_ query: [Float], k: Int, ef: Int = 64, allowed: Set<Int64>? = nil) -> [Neighbor] {
        precondition(query.count == dimension, "HNSW.search: query of \(query.count) values, index dimension \(dimension)")
        guard k > 0, count > 0 else { return [] }
        let k = min(k, count), ef = min(ef, max(nodeCount, k))   // no buffer larger than the graph
        var mask: [UInt8]? = nil
        if let allowed {
            var m = [UInt8](repeating: 0, count: nodeCount)
            for label in allowed { if let node = nodes[label] { m[node] = 1 } }
            mask = m
        }
        var labels = [Int64](repeating: 0, count: k)
        var distances = [Float](repeating: 0, count: k)
        let found = query.withUnsafeBufferPointer { q in
            labels.withUnsafeMutableBufferPointer { l in
                distances.withUnsafeMutableBufferPointer { d in
                    if let mask {
                        return mask.withUnsafeBufferPointer { attend_hnsw_search(graph, q.baseAddress!, k, ef, $0.baseAddress!, l.baseAddress!, d.baseAddress!) }
                    }
                    return attend_hnsw_search(graph, q.baseAddress!, k, ef, nil, l.baseAddress!, d.baseAddress!)
                }
            }
        }
        return (0..<max(0, found)).map { Neighbor(label: labels[$0], distance: distances[$0]) }
    }

    /// Searches many queries at once (rows of `queries`, `count` x dimension), split over `threads` threads in
    /// contiguous parts: labels and distances [count * k], nearest first per query, with `-1` / infinity where a
    /// query found fewer than k. No allocation per query.
    public func search(batch queries: UnsafePointer<Float>, count: Int, k: Int, ef: Int, threads: Int = Parallel.threads) -> (labels: [Int64], distances: [Float]) {
        var labels = [Int64](repeating: -1, count: count * k)
        var distances = [Float](repeating: .infinity, count: count * k)
        guard count > 0, k > 0, self.count > 0 else { return (labels, distances) }
        let (g, d) = (graph, dimension)
        labels.withUnsafeMutableBufferPointer { l in
            distances.withUnsafeMutableBufferPointer { dist in
                let (lp, dp) = (l.baseAddress!, dist.baseAddress!)
                let parts = max(1, min(threads, count))
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    for i in (count * part / parts)..<(count * (part + 1) / parts) {
                        _ = attend_hnsw_search(g, queries + i * d, k, ef, nil, lp + i * k, dp + i * k)
                    }
                }
            }
        }
        return (labels, distances)
    }

    /// The graph's links (without the vectors, which their owner stores) for `load(links:vector:)`.
    public func serializedLinks() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: attend_hnsw_links_size(graph))
        bytes.withUnsafeMutableBufferPointer { attend_hnsw_write_links(graph, $0.baseAddress!) }
        return bytes
    }

    /// Rebuilds an index from `serializedLinks()`; `vector(label)` returns each node's vector (nil: unknown label,
    /// which is an error). Every count and link is checked before use.
    public static func load(links: UnsafeRawBufferPointer, vector: (Int64) -> [Float]?) throws -> HNSWIndex {
        final class Box { let lookup: (Int64) -> [Float]?; var dimension = 0; init(_ f: @escaping (Int64) -> [Float]?) { lookup = f } }
        return try withoutActuallyEscaping(vector) { lookup in
            let box = Box(lookup)
            if links.count >= 16 { box.dimension = Int(links.loadUnaligned(fromByteOffset: 8, as: Int64.self)) }
            var error: UnsafePointer<CChar>? = nil
            let g = attend_hnsw_read_links(links.baseAddress, links.count, { ctx, label, out in
                let box = Unmanaged<Box>.fromOpaque(ctx!).takeUnretainedValue()
                guard let v = box.lookup(label), v.count == box.dimension else { return 0 }
                v.withUnsafeBufferPointer { out!.update(from: $0.baseAddress!, count: v.count) }
                return 1
            }, Unmanaged.passUnretained(box).toOpaque(), 100, &error)
            guard let g else { throw AttendError("HNSW graph: \(error.map { String(cString: $0) } ?? "unreadable")") }
            let dimension = Int(links.loadUnaligned(fromByteOffset: 8, as: Int64.self))
            let metric: DistanceMetric = links.loadUnaligned(fromByteOffset: 16, as: Int64.self) == Int64(ATTEND_METRIC_L2) ? .euclidean : .cosine
            let m = Int(links.loadUnaligned(fromByteOffset: 24, as: Int64.self)), efc = Int(links.loadUnaligned(fromByteOffset: 32, as: Int64.self))
            return HNSWIndex(graph: g, dimension: dimension, metric: metric, m: m, efConstruction: efc)
        }
    }
}
