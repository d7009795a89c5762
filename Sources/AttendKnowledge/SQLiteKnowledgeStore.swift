// The knowledge store in one SQLite file: documents, chunks with their embeddings (Float32 BLOBs), an FTS5 table
// for BM25, and the HNSW graph's links (the vectors are the chunks' own). Every change to a document is one
// transaction; the graph is saved by `flush()` and reconciled with the chunks table when the file is opened, so an
// ingestion killed at any point leaves an index that opens, answers, and continues where it stopped.

import AttendTensor
import Foundation

public final class SQLiteKnowledgeStore: KnowledgeStore {
    public let database: SQLiteDatabase
    public private(set) var settings: IndexSettings
    public var location: String { database.path }
    static let formatVersion = "1"

    // In memory: every live chunk's vector, for exact search and the graph.
    private var vectors: [Int64: [Float]] = [:]
    private var graph: HNSWIndex
    private var graphDirty = false
    private var exact: ExactIndex?

    /// Opens an index file, creating it with `settings` when it does not exist. An existing index keeps its own
    /// settings; `settings` must then name the same embedding model and dimension (or be nil).
    public init(path: String, settings requested: IndexSettings?) throws {
        let existed = FileManager.default.fileExists(atPath: path)
        if !existed && requested == nil { throw AttendError("\(path): no such index (add documents to create it)") }
        database = try SQLiteDatabase(path: path)
        let db = database
        guard db.hasFTS5() else { throw AttendError("\(path): this SQLite library was built without FTS5") }
        let tables = try db.query("SELECT name FROM sqlite_master WHERE type = 'table'") { $0.text(0) }
        if !tables.contains("attend_index") {
            guard tables.isEmpty else { throw AttendError("\(path): an SQLite database, but not an Attend index (tables: \(tables.prefix(5).joined(separator: ", ")))") }
            guard let requested else { throw AttendError("\(path): an empty database, not an Attend index") }
            try requested.validate()
            try db.transaction {
                try db.execute("""
                    CREATE TABLE attend_index(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE documents(id INTEGER PRIMARY KEY, source TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, bytes INTEGER NOT NULL,
                                           title TEXT NOT NULL, format TEXT NOT NULL, metadata TEXT NOT NULL, value TEXT, added REAL NOT NULL);
                    CREATE TABLE chunks(id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
                                        position INTEGER NOT NULL, heading TEXT NOT NULL, anchor TEXT, text TEXT NOT NULL, tokens INTEGER NOT NULL,
                                        embedding BLOB NOT NULL);
                    CREATE INDEX chunks_document ON chunks(document_id);
                    CREATE VIRTUAL TABLE chunk_words USING fts5(text, heading, title, tokenize = 'porter unicode61');
                    CREATE TABLE vector_graph(id INTEGER PRIMARY KEY CHECK (id = 1), links BLOB NOT NULL);
                    """)
                let data = try JSONEncoder().encode(requested)
                try db.run("INSERT INTO attend_index VALUES ('format', ?), ('settings', ?)", [.text(Self.formatVersion), .text(String(decoding: data, as: UTF8.self))])
            }
        }
        let stored: [(String, String)] = try db.query("SELECT key, value FROM attend_index", []) { ($0.text(0), $0.text(1)) }
        let s = try IndexSettings.stored(stored, formatVersion: Self.formatVersion, location: path, requested: requested)
        settings = s
        graph = try HNSWIndex(dimension: s.dimension, metric: s.metric, m: s.m, efConstruction: s.efConstruction)
        try loadVectors()
    }

    private func loadVectors() throws {
        let d = settings.dimension
        var bad: Int64? = nil
        _ = try database.query("SELECT id, embedding FROM chunks") { row -> Void in
            let blob = row.blob(1)
            guard blob.count == d * 4 else { bad = row.int(0); return }
            vectors[row.int(0)] = Array(blob.bindMemory(to: Float.self))
        }
        if let bad { throw AttendError("\(location): chunk \(bad) has an embedding of the wrong size (expected \(d) floats)") }
        // The saved graph, reconciled: chunks added after the last save are inserted, removed ones dropped.
        if let links = try database.query("SELECT links FROM vector_graph WHERE id = 1", [], { row -> [UInt8] in Array(row.blob(0)) }).first {
            do {
                let loaded = try links.withUnsafeBytes { raw in try HNSWIndex.load(links: raw) { [vectors] in vectors[$0] ?? [Float](repeating: 0, count: d) } }
                if loaded.dimension == d && loaded.metric == settings.metric { graph = loaded }
            } catch {
                FileHandle.standardError.write("\(location): the saved vector graph is unusable (\(error)); rebuilding it\n".data(using: .utf8)!)
            }
        }
        for label in Array(graph.labels) where vectors[label] == nil { graph.remove(label); graphDirty = true }
        for (id, v) in vectors.sorted(by: { $0.key < $1.key }) where !graph.contains(id) { try graph.add(v, label: id); graphDirty = true }
        if graph.nodeCount > 2 * max(graph.count, 1000) { try rebuildGraph() }
    }

    /// A new graph from the live vectors (deleted nodes still cost time until then).
    private func rebuildGraph() throws {
        let fresh = try HNSWIndex(dimension: settings.dimension, metric: settings.metric, m: settings.m, efConstruction: settings.efConstruction)
        for (id, v) in vectors.sorted(by: { $0.key < $1.key }) { try fresh.add(v, label: id) }
        graph = fresh
        graphDirty = true
    }

    public func contentHash(of source: String) throws -> String? {
        try database.query("SELECT hash FROM documents WHERE source = ?", [.text(source)]) { $0.text(0) }.first
    }

    public func replace(_ document: DocumentRecord, chunks: [DocumentChunk], embeddings: [[Float]]) throws {
        precondition(chunks.count == embeddings.count, "replace: \(chunks.count) chunks, \(embeddings.count) embeddings")
        for e in embeddings where e.count != settings.dimension {
            throw AttendError("\(location): an embedding of \(e.count) values for an index of dimension \(settings.dimension)")
        }
        let metadata = String(decoding: try JSONSerialization.data(withJSONObject: document.metadata, options: [.sortedKeys]), as: UTF8.self)
        let db = database
        var removed: [Int64] = [], added: [(Int64, [Float])] = []
        try db.transaction {
            removed = try deleteDocument(source: document.source)
            try db.run("INSERT INTO documents(source, hash, bytes, title, format, metadata, value, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [.text(document.source), .text(document.contentHash), .integer(Int64(document.byteCount)), .text(document.title),
                        .text(document.format), .text(metadata), document.value.map { .text($0) } ?? .null, .real(Date().timeIntervalSince1970)])
            let documentID = db.lastInsertedRowID
            for (chunk, embedding) in zip(chunks, embeddings) {
                let blob = embedding.withUnsafeBytes { Array($0) }
                try db.run("INSERT INTO chunks(document_id, position, heading, anchor, text, tokens, embedding) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [.integer(documentID), .integer(Int64(chunk.position)), .text(chunk.heading), chunk.anchor.map { .text($0) } ?? .null,
                            .text(chunk.text), .integer(Int64(chunk.tokenCount)), .blob(blob)])
                let id = db.lastInsertedRowID
                try db.run("INSERT INTO chunk_words(rowid, text, heading, title) VALUES (?, ?, ?, ?)",
                           [.integer(id), .text(chunk.text), .text(chunk.heading), .text(document.title)])
                added.append((id, embedding))
            }
        }
        // Memory follows the committed transaction only.
        for id in removed { vectors[id] = nil; graph.remove(id) }
        for (id, v) in added { vectors[id] = v; try graph.add(v, label: id) }
        graphDirty = true
        exact = nil
    }

    private func deleteDocument(source: String) throws -> [Int64] {
        let db = database
        guard let documentID = try db.query("SELECT id FROM documents WHERE source = ?", [.text(source)], { $0.int(0) }).first else { return [] }
        let ids = try db.query("SELECT id FROM chunks WHERE document_id = ?", [.integer(documentID)]) { $0.int(0) }
        for id in ids { try db.run("DELETE FROM chunk_words WHERE rowid = ?", [.integer(id)]) }
        try db.run("DELETE FROM chunks WHERE document_id = ?", [.integer(documentID)])
        try db.run("DELETE FROM documents WHERE id = ?", [.integer(documentID)])
        return ids
    }

    public func remove(source: String) throws -> Bool {
        guard try contentHash(of: source) != nil else { return false }
        let removed = try database.transaction { try deleteDocument(source: source) }
        for id in removed { vectors[id] = nil; graph.remove(id) }
        graphDirty = true
        exact = nil
        return true
    }

    public func sources() throws -> [String] { try database.query("SELECT source FROM documents ORDER BY source") { $0.text(0) } }

    public func counts() throws -> (documents: Int, chunks: Int) {
        let d = try database.query("SELECT count(*) FROM documents") { Int($0.int(0)) }.first ?? 0
        return (d, vectors.count)
    }

    /// The filter as SQL over `documents d` (and its bound values), or nil when there is none.
    private func filterSQL(_ filter: SearchFilter) -> (String, [SQLValue])? {
        guard !filter.isEmpty else { return nil }
        var clauses: [String] = [], values: [SQLValue] = []
        if let pattern = filter.sourcePattern { clauses.append("d.source GLOB ?"); values.append(.text(pattern)) }
        for (key, value) in filter.metadata.sorted(by: { $0.key < $1.key }) {
            clauses.append("json_extract(d.metadata, '$.\"' || ? || '\"') = ?")
            values += [.text(key), .text(value)]
        }
        return (clauses.joined(separator: " AND "), values)
    }

    private func allowedChunks(_ filter: SearchFilter) throws -> Set<Int64>? {
        guard let (sql, values) = filterSQL(filter) else { return nil }
        return Set(try database.query("SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE \(sql)", values) { $0.int(0) })
    }

    public func vectorSearch(_ query: [Float], top: Int, filter: SearchFilter, exact useExact: Bool, ef: Int) throws -> [(id: Int64, distance: Float)] {
        guard query.count == settings.dimension else { throw AttendError("\(location): a query vector of \(query.count) values for an index of dimension \(settings.dimension)") }
        let allowed = try allowedChunks(filter)
        // A narrow filter is cheaper, and exact, by scoring only what it lets through.
        if useExact || (allowed.map { $0.count < max(2000, vectors.count / 20) } ?? false) {
            if exact == nil {
                var e = ExactIndex(dimension: settings.dimension, metric: settings.metric)
                e.reserveCapacity(vectors.count)
                for (id, v) in vectors.sorted(by: { $0.key < $1.key }) { e.add(v, label: id) }
                exact = e
            }
            return exact!.search(query, k: top, allowed: allowed.map { set in { set.contains($0) } }).map { ($0.label, $0.distance) }
        }
        return graph.search(query, k: top, ef: ef, allowed: allowed).map { ($0.label, $0.distance) }
    }

    /// FTS5 query from free text: each word quoted (so nothing in it is query syntax), any word may match; BM25
    /// weighs heading and title words twice.
    static func ftsQuery(_ text: String) -> String? {
        let words = text.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "_") }.map { "\"\($0)\"" }
        return words.isEmpty ? nil : words.joined(separator: " OR ")
    }

    public func textSearch(_ query: String, top: Int, filter: SearchFilter) throws -> [(id: Int64, score: Double)] {
        guard let match = Self.ftsQuery(query) else { return [] }
        var sql = "SELECT chunk_words.rowid, bm25(chunk_words, 1.0, 2.0, 2.0) AS s FROM chunk_words"
        var values: [SQLValue] = [.text(match)]
        if let (where_, filterValues) = filterSQL(filter) {
            sql += " JOIN chunks c ON c.id = chunk_words.rowid JOIN documents d ON d.id = c.document_id WHERE chunk_words MATCH ? AND \(where_)"
            values += filterValues
        } else {
            sql += " WHERE chunk_words MATCH ?"
        }
        sql += " ORDER BY s LIMIT ?"
        values.append(.integer(Int64(top)))
        return try database.query(sql, values) { ($0.int(0), -$0.double(1)) }
    }

    public func chunks(_ ids: [Int64]) throws -> [Int64: StoredChunk] {
        var out: [Int64: StoredChunk] = [:]
        for id in ids {
            let rows = try database.query("""
                SELECT c.id, d.source, d.title, c.heading, c.anchor, c.position, c.text, d.value
                FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?
                """, [.integer(id)]) { r in
                StoredChunk(id: r.int(0), source: r.text(1), title: r.text(2), heading: r.text(3), anchor: r.isNull(4) ? nil : r.text(4),
                            position: Int(r.int(5)), text: r.text(6), value: r.isNull(7) ? nil : r.text(7))
            }
            if let c = rows.first { out[id] = c }
        }
        return out
    }

    public func export(source: String) throws -> StoredDocument? {
        guard let record = try database.query("SELECT id, hash, bytes, title, format, metadata, value FROM documents WHERE source = ?", [.text(source)], { r in
            (r.int(0), DocumentRecord(source: source, contentHash: r.text(1), byteCount: Int(r.int(2)), title: r.text(3), format: r.text(4),
                                      metadata: (try? JSONSerialization.jsonObject(with: Data(r.text(5).utf8))) as? [String: String] ?? [:],
                                      value: r.isNull(6) ? nil : r.text(6)))
        }).first else { return nil }
        var chunks: [DocumentChunk] = [], embeddings: [[Float]] = []
        _ = try database.query("SELECT id, position, heading, anchor, text, tokens FROM chunks WHERE document_id = ? ORDER BY position, id", [.integer(record.0)]) { r -> Void in
            chunks.append(DocumentChunk(position: Int(r.int(1)), heading: r.text(2), anchor: r.isNull(3) ? nil : r.text(3), text: r.text(4), tokenCount: Int(r.int(5))))
            embeddings.append(vectors[r.int(0)] ?? [])
        }
        return StoredDocument(record: record.1, chunks: chunks, embeddings: embeddings)
    }

    public func flush() throws {
        guard graphDirty else { return }
        if graph.nodeCount > 2 * max(graph.count, 1000) { try rebuildGraph() }
        let links = graph.serializedLinks()
        try database.run("INSERT OR REPLACE INTO vector_graph(id, links) VALUES (1, ?)", [.blob(links)])
        graphDirty = false
    }

    deinit { try? flush() }
}
