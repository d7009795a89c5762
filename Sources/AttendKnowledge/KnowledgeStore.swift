// The knowledge store's interface: documents cut into chunks, each chunk a key (its embedding, and its words for
// BM25) and a value (its text, or a structured value prepared for the task). One protocol, two backends (SQLite in
// one file; PostgreSQL + pgvector at scale), and one retriever over either: vector ranks, BM25 ranks, or both fused
// by reciprocal rank fusion.

import AttendTensor
import Foundation

/// What an index was built with. An index refuses an embedder of another name or dimension.
public struct IndexSettings: Codable, Equatable, Sendable {
    public var embeddingModel: String
    public var dimension: Int
    public var metric: DistanceMetric
    public var chunkTokens: Int
    public var overlapTokens: Int
    /// HNSW links per node and insertion beam.
    public var m: Int
    public var efConstruction: Int

    public init(embeddingModel: String, dimension: Int, metric: DistanceMetric = .cosine, chunkTokens: Int = 200, overlapTokens: Int = 32,
                m: Int = 16, efConstruction: Int = 200) {
        (self.embeddingModel, self.dimension, self.metric, self.chunkTokens, self.overlapTokens, self.m, self.efConstruction) =
            (embeddingModel, dimension, metric, chunkTokens, overlapTokens, m, efConstruction)
    }

    /// The settings an index stored (its `format` and `settings` keys), checked: the format must be `formatVersion`,
    /// the settings readable and valid, and a `requested` embedder must name the same model and dimension.
    public static func stored(_ meta: [(String, String)], formatVersion: String, location: String, requested: IndexSettings?) throws -> IndexSettings {
        let meta = Dictionary(meta, uniquingKeysWith: { a, _ in a })
        guard meta["format"] == formatVersion else { throw AttendError("\(location): index format \(meta["format"] ?? "none"), this Attend reads \(formatVersion)") }
        guard let json = meta["settings"], let s = try? JSONDecoder().decode(IndexSettings.self, from: Data(json.utf8)) else {
            throw AttendError("\(location): index settings are missing or unreadable")
        }
        try s.validate()
        if let requested, requested.embeddingModel != s.embeddingModel || requested.dimension != s.dimension {
            throw AttendError("\(location): the index was built with \(s.embeddingModel) (\(s.dimension) dimensions); this run embeds with \(requested.embeddingModel) (\(requested.dimension) dimensions). Use the same model or a new index.")
        }
        return s
    }

    public func validate() throws {
        guard !embeddingModel.isEmpty, (1...65_536).contains(dimension) else {
            throw AttendError("index settings: embedding model name must be given and dimension in 1...65536, got '\(embeddingModel)' / \(dimension)")
        }
        guard chunkTokens >= 8, overlapTokens >= 0, overlapTokens < chunkTokens else {
            throw AttendError("index settings: chunk tokens \(chunkTokens) must be at least 8, overlap \(overlapTokens) in 0..<\(chunkTokens)")
        }
        guard (2...512).contains(m), efConstruction >= 1 else { throw AttendError("index settings: M \(m) must be in 2...512, ef_construction \(efConstruction) at least 1") }
    }
}

/// A document as stored: where it came from, what its bytes hashed to, its title and metadata (a JSON object),
/// and optionally a structured value (a JSON document prepared for the task).
public struct DocumentRecord: Equatable, Sendable {
    public var source: String
    public var contentHash: String
    public var byteCount: Int
    public var title: String
    public var format: String
    public var metadata: [String: String]
    public var value: String?

    public init(source: String, contentHash: String, byteCount: Int, title: String, format: String, metadata: [String: String] = [:], value: String? = nil) {
        (self.source, self.contentHash, self.byteCount, self.title, self.format, self.metadata, self.value) =
            (source, contentHash, byteCount, title, format, metadata, value)
    }
}

/// A chunk as stored, with what a citation needs.
public struct StoredChunk: Equatable, Sendable {
    public var id: Int64
    public var source: String
    public var title: String
    public var heading: String
    public var anchor: String?
    public var position: Int
    public var text: String
    /// The document's structured value, when it has one.
    public var value: String?

    public init(id: Int64, source: String, title: String, heading: String, anchor: String?, position: Int, text: String, value: String?) {
        (self.id, self.source, self.title, self.heading, self.anchor, self.position, self.text, self.value) = (id, source, title, heading, anchor, position, text, value)
    }

    /// `source#anchor` when the section has an anchor.
    public var citation: String { anchor.map { "\(source)#\($0)" } ?? source }
}

/// A document with everything the store keeps of it, as `export` returns it and `replace` takes it: what copying
/// an index from one store to another moves, with no re-embedding.
public struct StoredDocument: Sendable {
    public var record: DocumentRecord
    public var chunks: [DocumentChunk]
    public var embeddings: [[Float]]
    public init(record: DocumentRecord, chunks: [DocumentChunk], embeddings: [[Float]]) { (self.record, self.chunks, self.embeddings) = (record, chunks, embeddings) }
}

/// Which chunks a search may return: a glob over the source path, and metadata keys that must equal values.
/// Both reach SQL only as bound parameters.
public struct SearchFilter: Equatable, Sendable {
    public var sourcePattern: String?
    public var metadata: [String: String]

    public init(sourcePattern: String? = nil, metadata: [String: String] = [:]) { (self.sourcePattern, self.metadata) = (sourcePattern, metadata) }
    public var isEmpty: Bool { sourcePattern == nil && metadata.isEmpty }

    /// Parses `key=value` (a metadata filter); keys are letters, digits, `_` and `-`.
    public static func metadataPair(_ text: String) throws -> (String, String) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { throw AttendError("filter '\(text)': expected key=value") }
        let key = String(text[..<eq]), value = String(text[text.index(after: eq)...])
        guard key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw AttendError("filter '\(text)': the key may hold only letters, digits, '_' and '-'")
        }
        return (key, value)
    }
}

/// One result of a search: the chunk and its score (higher is better; what it means depends on the mode).
public struct SearchHit: Sendable {
    public var chunk: StoredChunk
    public var score: Double
    /// 1-based ranks in the vector and the BM25 lists (nil when the chunk was not in that list).
    public var vectorRank: Int?
    public var textRank: Int?
}

public enum RetrievalMode: String, CaseIterable, Sendable {
    case vector, text, hybrid
}

/// A document store with a vector index and a full-text index. Implementations: `SQLiteKnowledgeStore` (one file)
/// and, for a `postgres://` URL, a PostgreSQL + pgvector store.
public protocol KnowledgeStore: AnyObject {
    var settings: IndexSettings { get }
    /// Where the index lives (a path or a URL), for messages.
    var location: String { get }
    /// The stored content hash of `source`, or nil when it is not in the index.
    func contentHash(of source: String) throws -> String?
    /// Replaces the document's chunks (or adds it), in one transaction.
    func replace(_ document: DocumentRecord, chunks: [DocumentChunk], embeddings: [[Float]]) throws
    /// Removes a document and its chunks; returns whether it was there.
    func remove(source: String) throws -> Bool
    func sources() throws -> [String]
    func counts() throws -> (documents: Int, chunks: Int)
    /// Nearest chunks by embedding: (chunk id, distance), nearest first. `exact` scores every chunk.
    func vectorSearch(_ query: [Float], top: Int, filter: SearchFilter, exact: Bool, ef: Int) throws -> [(id: Int64, distance: Float)]
    /// Best chunks by BM25 over their words: (chunk id, score), best first.
    func textSearch(_ query: String, top: Int, filter: SearchFilter) throws -> [(id: Int64, score: Double)]
    func chunks(_ ids: [Int64]) throws -> [Int64: StoredChunk]
    /// The document as stored (record, chunks in order, embeddings), or nil when it is not in the index.
    func export(source: String) throws -> StoredDocument?
    /// Makes the vector index durable (called after a batch of changes).
    func flush() throws
}

/// Opens the store `location` names: a `postgres://` URL, or else a path to an SQLite file.
public enum KnowledgeStores {
    public static func isPostgres(_ location: String) -> Bool { location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") }
}

/// Search over a store: vector, BM25 or hybrid.
///
/// ```swift
/// let store = try SQLiteKnowledgeStore(path: "manual.sqlite", settings: nil)
/// let retriever = Retriever(store: store) { try embedder.encode([$0]).toArray() }
/// for hit in try retriever.search("how do I create an index concurrently", top: 5) { print(hit.chunk.citation) }
/// ```
public struct Retriever {
    public let store: any KnowledgeStore
    public let embed: (String) throws -> [Float]
    /// Reciprocal rank fusion's constant (Cormack et al. 2009 use 60).
    public var fusionConstant = 60.0
    public var ef = 64
    /// The most results one search returns (the lists read for fusion are 4x deeper).
    public static let maxResults = 10_000

    public init(store: any KnowledgeStore, embed: @escaping (String) throws -> [Float]) { (self.store, self.embed) = (store, embed) }

    public func search(_ query: String, top: Int, mode: RetrievalMode = .hybrid, filter: SearchFilter = SearchFilter(), exact: Bool = false) throws -> [SearchHit] {
        guard (1...Retriever.maxResults).contains(top) else { throw AttendError("search: the number of results must be in 1...\(Retriever.maxResults), got \(top)") }
        let depth = max(top * 4, 40)   // each list is read deeper than the answer, so fusion has something to fuse
        var vectorRanks: [Int64: Int] = [:], textRanks: [Int64: Int] = [:]
        var scores: [Int64: Double] = [:]
        if mode != .text {
            let hits = try store.vectorSearch(try embed(query), top: mode == .vector ? top : depth, filter: filter, exact: exact, ef: max(ef, depth))
            for (rank, hit) in hits.enumerated() {
                vectorRanks[hit.id] = rank + 1
                scores[hit.id, default: 0] += mode == .vector ? Double(1 - hit.distance) : 1 / (fusionConstant + Double(rank + 1))
            }
        }
        if mode != .vector {
            let hits = try store.textSearch(query, top: mode == .text ? top : depth, filter: filter)
            for (rank, hit) in hits.enumerated() {
                textRanks[hit.id] = rank + 1
                scores[hit.id, default: 0] += mode == .text ? hit.score : 1 / (fusionConstant + Double(rank + 1))
            }
        }
        let best = scores.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(top).map(\.key)
        let chunks = try store.chunks(best)
        return best.compactMap { id in
            chunks[id].map { SearchHit(chunk: $0, score: scores[id]!, vectorRank: vectorRanks[id], textRank: textRanks[id]) }
        }
    }
}

/// A content hash for change detection (not for security): 64-bit FNV-1a of the bytes, in hex, with the length.
public func contentHash(_ data: Data) -> String {
    var h: UInt64 = 0xcbf29ce484222325
    data.withUnsafeBytes { raw in for b in raw { h = (h ^ UInt64(b)) &* 0x100000001b3 } }
    return String(format: "fnv1a64:%016llx:%d", h, data.count)
}
