// The knowledge store on PostgreSQL + pgvector: the same documents, chunks, filters and searches as the SQLite store,
// for when one file no longer serves. Embeddings live in a `vector(D)` column with pgvector's HNSW index; the BM25
// side is PostgreSQL's full-text search (a weighted tsvector per chunk, GIN-indexed, ranked by ts_rank). Each change
// to a document is one transaction, so a killed ingestion leaves the index consistent, and rerunning it continues.
//
// The store is synchronous like the SQLite one: it waits on postgres-nio's futures, so call it from a thread of
// your own (the CLI's main thread, a worker), never from an event loop or an async task's executor.

import AttendKnowledge
import AttendTensor
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// What a `postgres://` URL says: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME&sslmode=disable|require]`.
/// The schema (default `attend`) holds one index, so one database can hold several.
public struct PostgresLocation: Equatable, Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var schema: String
    public var requireTLS: Bool

    public init(url: String) throws {
        guard KnowledgeStores.isPostgres(url), let parts = URLComponents(string: url) else {
            throw AttendError("\(url): expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME]")
        }
        guard let host = parts.host, !host.isEmpty else { throw AttendError("\(url): the URL names no host") }
        guard let user = parts.user, !user.isEmpty else { throw AttendError("\(url): the URL names no user (postgres://USER@HOST/DATABASE)") }
        let database = String(parts.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw AttendError("\(url): the URL names no database (postgres://USER@HOST/DATABASE)") }
        if let p = parts.port, !(1...65_535).contains(p) { throw AttendError("\(url): port \(p) is not in 1...65535") }
        (self.host, self.port, self.user, self.password, self.database) = (host, parts.port ?? 5432, user, parts.password, database)
        schema = "attend"
        requireTLS = false
        for item in parts.queryItems ?? [] {
            switch item.name {
            case "schema":
                let s = item.value ?? ""
                guard let first = s.first, first.isLetter || first == "_", s.count <= 63,
                      s.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" }) else {
                    throw AttendError("\(url): schema '\(s)' must be 1 to 63 ASCII letters, digits and '_', not starting with a digit")
                }
                schema = s.lowercased()
            case "sslmode":
                switch item.value {
                case "disable": requireTLS = false
                case "require": requireTLS = true
                default: throw AttendError("\(url): sslmode must be disable or require, got '\(item.value ?? "")'")
                }
            default:
                throw AttendError("\(url): unknown parameter '\(item.name)' (expected schema or sslmode)")
            }
        }
    }

    /// The URL without its password, for messages.
    public var display: String { "postgres://\(user)@\(host):\(port)/\(database)\(schema == "attend" ? "" : "?schema=\(schema)")" }
}

/// A knowledge store in a PostgreSQL database with pgvector.
///
/// ```swift
/// let store = try PostgresKnowledgeStore(url: "postgres://attend@127.0.0.1:54329/attend",
///                                        settings: IndexSettings(embeddingModel: "all-MiniLM-L6-v2", dimension: 384))
/// let retriever = Retriever(store: store) { try embedder.encode([$0]).toArray() }
/// ```
public final class PostgresKnowledgeStore: KnowledgeStore {
    public let endpoint: PostgresLocation
    public private(set) var settings: IndexSettings
    public var location: String { endpoint.display }
    static let formatVersion = "1"
    /// pgvector 0.6's limits: HNSW indexes at most 2,000 dimensions, M in 2...100, ef_construction in 4...1000, and a
    /// search beam (hnsw.ef_search) of at most 1,000, which also bounds how many hits one index scan returns.
    public static let maxIndexedDimension = 2000, maxM = 100, maxEF = 1000

    private let connection: PostgresConnection
    private let logger = Logger(label: "attend.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    private var currentEF: Int?
    private var schema: String { "\"\(endpoint.schema)\"" }

    /// Connects, creating the index (its schema and tables) with `settings` when the schema holds none. An existing
    /// index keeps its own settings; `settings` must then name the same embedding model and dimension (or be nil).
    public init(url: String, settings requested: IndexSettings?) throws {
        endpoint = try PostgresLocation(url: url)
        var configuration = PostgresConnection.Configuration(host: endpoint.host, port: endpoint.port, username: endpoint.user,
                                                             password: endpoint.password, database: endpoint.database,
                                                             tls: endpoint.requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable)
        configuration.options.connectTimeout = .seconds(10)
        let display = endpoint.display
        do {
            connection = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: 1, logger: logger).wait()
        } catch {
            throw AttendError("\(display): cannot connect to PostgreSQL at \(endpoint.host):\(endpoint.port) (\(Self.describe(error))). Is the server running? `scripts/postgres.sh start` starts one for Attend.")
        }
        settings = requested ?? IndexSettings(embeddingModel: "?", dimension: 1)
        do {
            _ = try sql("SET client_min_messages = warning")
            _ = try sql("CREATE EXTENSION IF NOT EXISTS vector")
        } catch {
            throw AttendError("\(display): this PostgreSQL lacks the pgvector extension (CREATE EXTENSION vector failed: \(Self.describe(error))). Install pgvector, or use `scripts/postgres.sh start`.")
        }
        let tables = try sql("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1", [endpoint.schema]).map { try $0.decode(String.self) }
        if !tables.contains("attend_index") {
            guard tables.isEmpty else { throw AttendError("\(display): schema \(endpoint.schema) holds tables, but not an Attend index (\(tables.sorted().prefix(5).joined(separator: ", ")))") }
            guard let requested else { throw AttendError("\(display): no index in schema \(endpoint.schema) (add documents to create it)") }
            try create(requested)
        }
        let stored = try sql("SELECT key, value FROM \(schema).attend_index").map { try $0.decode((String, String).self) }
        let s = try IndexSettings.stored(stored, formatVersion: Self.formatVersion, location: display, requested: requested)
        settings = s
    }

    deinit { _ = try? connection.close().wait() }

    private var distanceOperator: String { settings.metric == .cosine ? "<=>" : "<->" }

    private func create(_ s: IndexSettings) throws {
        try s.validate()
        guard s.dimension <= Self.maxIndexedDimension else { throw AttendError("\(location): pgvector's HNSW indexes at most \(Self.maxIndexedDimension) dimensions, the embedder has \(s.dimension)") }
        guard s.m <= Self.maxM, (max(4, 2 * s.m)...Self.maxEF).contains(s.efConstruction) else {
            throw AttendError("\(location): pgvector needs HNSW M in 2...\(Self.maxM) and ef_construction in \(max(4, 2 * s.m))...\(Self.maxEF), got M \(s.m), ef_construction \(s.efConstruction)")
        }
        let opclass = s.metric == .cosine ? "vector_cosine_ops" : "vector_l2_ops"
        let settingsJSON = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        try transaction {
            for statement in [
                "CREATE SCHEMA IF NOT EXISTS \(schema)",
                "CREATE TABLE \(schema).attend_index(key text PRIMARY KEY, value text NOT NULL)",
                """
                CREATE TABLE \(schema).documents(id bigserial PRIMARY KEY, source text NOT NULL UNIQUE, hash text NOT NULL, bytes bigint NOT NULL,
                    title text NOT NULL, format text NOT NULL, metadata jsonb NOT NULL, value text, added timestamptz NOT NULL DEFAULT now())
                """,
                """
                CREATE TABLE \(schema).chunks(id bigserial PRIMARY KEY, document_id bigint NOT NULL REFERENCES \(schema).documents(id) ON DELETE CASCADE,
                    position integer NOT NULL, heading text NOT NULL, anchor text, text text NOT NULL, tokens integer NOT NULL,
                    embedding vector(\(s.dimension)) NOT NULL, words tsvector NOT NULL)
                """,
                // Vectors kept in the row, not moved out to TOAST beside long texts: a scan that scores every chunk
                // then reads no second table (4x the exact queries/s on the manual's chunks).
                "ALTER TABLE \(schema).chunks ALTER COLUMN embedding SET STORAGE \(s.dimension <= 1024 ? "PLAIN" : "MAIN")",
                "CREATE INDEX chunks_document ON \(schema).chunks(document_id)",
                "CREATE INDEX chunks_words ON \(schema).chunks USING gin(words)",
                "CREATE INDEX chunks_embedding ON \(schema).chunks USING hnsw (embedding \(opclass)) WITH (m = \(s.m), ef_construction = \(s.efConstruction))",
            ] { _ = try sql(statement) }
            _ = try sql("INSERT INTO \(schema).attend_index VALUES ('format', $1), ('settings', $2)", [Self.formatVersion, settingsJSON])
        }
    }

    // MARK: KnowledgeStore

    public func contentHash(of source: String) throws -> String? {
        try sql("SELECT hash FROM \(schema).documents WHERE source = $1", [source]).first.map { try $0.decode(String.self) }
    }

    public func replace(_ document: DocumentRecord, chunks: [DocumentChunk], embeddings: [[Float]]) throws {
        precondition(chunks.count == embeddings.count, "replace: \(chunks.count) chunks, \(embeddings.count) embeddings")
        let d = settings.dimension
        for e in embeddings where e.count != d { throw AttendError("\(location): an embedding of \(e.count) values for an index of dimension \(d)") }
        let metadata = String(decoding: try JSONSerialization.data(withJSONObject: document.metadata, options: [.sortedKeys]), as: UTF8.self)
        try transaction {
            _ = try sql("DELETE FROM \(schema).documents WHERE source = $1", [document.source])
            var binds = PostgresBindings()
            binds.append(document.source); binds.append(document.contentHash); binds.append(Int64(document.byteCount)); binds.append(document.title)
            binds.append(document.format); binds.append(metadata); binds.append(document.value)
            let id = try fetch(PostgresQuery(unsafeSQL: """
                INSERT INTO \(schema).documents(source, hash, bytes, title, format, metadata, value) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING id
                """, binds: binds))[0].decode(Int64.self)
            guard !chunks.isEmpty else { return }
            // All chunks in one statement: columns as arrays, the embeddings as one flat real[] sliced per row
            // (binary floats, so the stored vector is exactly the embedder's).
            var c = PostgresBindings()
            c.append(id); c.append(document.title)
            c.append(chunks.map { Int32($0.position) }); c.append(chunks.map(\.heading)); c.append(chunks.map { $0.anchor ?? "" })
            c.append(chunks.map(\.text)); c.append(chunks.map { Int32($0.tokenCount) }); c.append(embeddings.flatMap { $0 })
            _ = try fetch(PostgresQuery(unsafeSQL: """
                INSERT INTO \(schema).chunks(document_id, position, heading, anchor, text, tokens, embedding, words)
                SELECT $1, u.p, u.h, NULLIF(u.a, ''), u.t, u.k, ($8::real[])[(u.i - 1) * \(d) + 1 : u.i * \(d)]::vector,
                       setweight(to_tsvector('english', u.h || ' ' || $2), 'A') || setweight(to_tsvector('english', u.t), 'B')
                FROM unnest($3::integer[], $4::text[], $5::text[], $6::text[], $7::integer[]) WITH ORDINALITY AS u(p, h, a, t, k, i)
                """, binds: c))
        }
    }

    public func remove(source: String) throws -> Bool {
        try sql("DELETE FROM \(schema).documents WHERE source = $1 RETURNING id", [source]).count > 0
    }

    public func sources() throws -> [String] {
        try sql("SELECT source FROM \(schema).documents ORDER BY source COLLATE \"C\"").map { try $0.decode(String.self) }
    }

    public func counts() throws -> (documents: Int, chunks: Int) {
        let r = try sql("SELECT (SELECT count(*) FROM \(schema).documents), (SELECT count(*) FROM \(schema).chunks)")[0].decode((Int64, Int64).self)
        return (Int(r.0), Int(r.1))
    }

    /// The filter as SQL over `documents d`, its values appended to `binds` (so it reaches SQL only as parameters).
    private func filterSQL(_ filter: SearchFilter, binds: inout PostgresBindings) -> String? {
        guard !filter.isEmpty else { return nil }
        var clauses: [String] = []
        if let pattern = filter.sourcePattern {
            binds.append(Self.regex(glob: pattern))
            clauses.append("d.source ~ $\(binds.count)")
        }
        for (key, value) in filter.metadata.sorted(by: { $0.key < $1.key }) {
            binds.append(key); binds.append(value)
            clauses.append("d.metadata ->> $\(binds.count - 1) = $\(binds.count)")
        }
        return clauses.joined(separator: " AND ")
    }

    /// A POSIX regular expression matching what SQLite's GLOB matches: `*` any run, `?` one character, `[...]` a
    /// class (`[^...]` negated), everything else literally, case-sensitive.
    public static func regex(glob: String) -> String {
        var out = "^", inClass = false, classLength = 0
        for ch in glob {
            if inClass {
                // As in GLOB, a `]` first in the class (after an optional `^`) is a member, not the end.
                if ch == "]" && classLength > 0 { out += "]"; inClass = false; continue }
                if ch == "^" && classLength == 0 && !out.hasSuffix("[^") && out.hasSuffix("[") { out += "^"; continue }
                out += ch == "\\" ? "\\\\" : ch == "[" ? "\\[" : String(ch)
                classLength += 1
                continue
            }
            switch ch {
            case "*": out += ".*"
            case "?": out += "."
            case "[": out += "["; inClass = true; classLength = 0
            default: out += ch.isLetter || ch.isNumber || ch == " " || ch == "/" ? String(ch) : "\\" + String(ch)
            }
        }
        // An unclosed class matches nothing in GLOB; so does this (nothing follows the end).
        return inClass ? "^$." : out + "$"
    }

    public func vectorSearch(_ query: [Float], top: Int, filter: SearchFilter, exact: Bool, ef: Int) throws -> [(id: Int64, distance: Float)] {
        guard query.count == settings.dimension else { throw AttendError("\(location): a query vector of \(query.count) values for an index of dimension \(settings.dimension)") }
        var binds = PostgresBindings()
        binds.append(query)
        let op = distanceOperator
        let filterClause = filterSQL(filter, binds: &binds)
        binds.append(Int64(top))
        let limit = "$\(binds.count)"
        let decode: (PostgresRow) throws -> (id: Int64, distance: Float) = { row in
            let (id, d) = try row.decode((Int64, Double).self)
            return (id, Float(d))
        }
        // pgvector 0.6 filters after the index scan, so a filter could starve the graph's answer: filtered searches
        // score every chunk the filter lets through (as the SQLite store does for narrow filters). The query vector
        // is made once (a materialized CTE), not cast again for every row.
        if exact || filterClause != nil {
            let distance = settings.metric == .cosine ? "c.embedding <=> q.v" : "(c.embedding <-> q.v) ^ 2"
            let statement = """
                WITH q AS MATERIALIZED (SELECT $1::real[]::vector AS v)
                SELECT c.id, \(distance) AS distance FROM q, \(schema).chunks c
                \(filterClause.map { "JOIN \(schema).documents d ON d.id = c.document_id WHERE " + $0 } ?? "") ORDER BY distance, c.id LIMIT \(limit)
                """
            return try transaction {
                _ = try sql("SET LOCAL enable_indexscan = off")
                return try fetch(PostgresQuery(unsafeSQL: statement, binds: binds)).map(decode)
            }
        }
        let distance = settings.metric == .cosine ? "c.embedding <=> $1::real[]::vector" : "(c.embedding <-> $1::real[]::vector) ^ 2"
        let beam = min(max(ef, top), Self.maxEF)
        if currentEF != beam { _ = try sql("SET hnsw.ef_search = \(beam)"); currentEF = beam }
        return try fetch(PostgresQuery(unsafeSQL: """
            SELECT c.id, \(distance) AS distance FROM \(schema).chunks c ORDER BY c.embedding \(op) $1::real[]::vector LIMIT \(limit)
            """, binds: binds)).map(decode)
    }

    /// BM25's ranking on PostgreSQL's full-text search: the query's words become lexemes as the chunks' words did
    /// (`to_tsvector`, so nothing in the user's text is query syntax); each lexeme weighs its inverse document
    /// frequency, ln(1 + (N - n + 0.5) / (n + 0.5)), times ts_rank of the chunk for that lexeme alone, which grows
    /// with the lexeme's count and saturates as BM25's term frequency does (heading and title words, weight A,
    /// count 2.5 times body words). Plain ts_rank has no IDF, and on the manual's questions found 0.70 of the pages
    /// BM25 finds at 0.80 in SQLite; this finds 0.83 (docs/BENCHMARKS.md). Length normalization made it worse.
    public func textSearch(_ query: String, top: Int, filter: SearchFilter) throws -> [(id: Int64, score: Double)] {
        guard query.contains(where: { $0.isLetter || $0.isNumber }) else { return [] }
        var binds = PostgresBindings()
        binds.append(query)
        let filterClause = filterSQL(filter, binds: &binds)
        binds.append(Int64(top))
        return try fetch(PostgresQuery(unsafeSQL: """
            WITH terms AS (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', $1))),
                 total AS (SELECT count(*)::float8 AS n FROM \(schema).chunks),
                 weights AS (SELECT quote_literal(t.lexeme)::tsquery AS q, ln(1 + (total.n - f.n + 0.5) / (f.n + 0.5)) AS idf FROM terms t, total,
                             LATERAL (SELECT count(*)::float8 AS n FROM \(schema).chunks c WHERE c.words @@ quote_literal(t.lexeme)::tsquery) f)
            SELECT c.id, sum(w.idf * ts_rank(c.words, w.q, 0))::float8 AS score
            FROM weights w JOIN \(schema).chunks c ON c.words @@ w.q
            \(filterClause.map { "JOIN \(schema).documents d ON d.id = c.document_id WHERE " + $0 } ?? "")
            GROUP BY c.id ORDER BY score DESC, c.id LIMIT $\(binds.count)
            """, binds: binds)).map { try $0.decode((Int64, Double).self) }
    }

    public func chunks(_ ids: [Int64]) throws -> [Int64: StoredChunk] {
        guard !ids.isEmpty else { return [:] }
        var binds = PostgresBindings()
        binds.append(ids)
        var out: [Int64: StoredChunk] = [:]
        for row in try fetch(PostgresQuery(unsafeSQL: """
            SELECT c.id, d.source, d.title, c.heading, c.anchor, c.position, c.text, d.value
            FROM \(schema).chunks c JOIN \(schema).documents d ON d.id = c.document_id WHERE c.id = ANY($1::bigint[])
            """, binds: binds)) {
            let (id, source, title, heading, anchor, position, text, value) = try row.decode((Int64, String, String, String, String?, Int32, String, String?).self)
            out[id] = StoredChunk(id: id, source: source, title: title, heading: heading, anchor: anchor, position: Int(position), text: text, value: value)
        }
        return out
    }

    public func export(source: String) throws -> StoredDocument? {
        guard let doc = try sql("SELECT id, hash, bytes, title, format, metadata::text, value FROM \(schema).documents WHERE source = $1", [source]).first else { return nil }
        let (id, hash, bytes, title, format, metadataJSON, value) = try doc.decode((Int64, String, Int64, String, String, String, String?).self)
        var binds = PostgresBindings()
        binds.append(id)
        var chunks: [DocumentChunk] = [], embeddings: [[Float]] = []
        for row in try fetch(PostgresQuery(unsafeSQL: """
            SELECT position, heading, anchor, text, tokens, embedding::real[] FROM \(schema).chunks WHERE document_id = $1 ORDER BY position, id
            """, binds: binds)) {
            let (position, heading, anchor, text, tokens, embedding) = try row.decode((Int32, String, String?, String, Int32, [Float]).self)
            chunks.append(DocumentChunk(position: Int(position), heading: heading, anchor: anchor, text: text, tokenCount: Int(tokens)))
            embeddings.append(embedding)
        }
        let metadata = (try? JSONSerialization.jsonObject(with: Data(metadataJSON.utf8))) as? [String: String] ?? [:]
        return StoredDocument(record: DocumentRecord(source: source, contentHash: hash, byteCount: Int(bytes), title: title, format: format, metadata: metadata, value: value),
                              chunks: chunks, embeddings: embeddings)
    }

    /// Every change is committed as it is made.
    public func flush() throws {}

    /// Drops the index: its schema and everything in it.
    public func drop() throws { _ = try sql("DROP SCHEMA \(schema) CASCADE") }

    // MARK: Queries

    /// A statement whose only parameters are strings (`$1`, `$2`, ... in `text`).
    @discardableResult
    private func sql(_ text: String, _ values: [String] = []) throws -> [PostgresRow] {
        var binds = PostgresBindings()
        for v in values { binds.append(v) }
        return try fetch(PostgresQuery(unsafeSQL: text, binds: binds))
    }

    @discardableResult
    private func fetch(_ query: PostgresQuery) throws -> [PostgresRow] {
        do {
            return try connection.query(query, logger: logger).wait().rows
        } catch {
            throw AttendError("\(location): \(Self.describe(error))")
        }
    }

    private func transaction<T>(_ body: () throws -> T) throws -> T {
        _ = try sql("BEGIN")
        do {
            let result = try body()
            _ = try sql("COMMIT")
            return result
        } catch {
            _ = try? sql("ROLLBACK")
            throw error
        }
    }

    /// postgres-nio keeps its errors' descriptions vague on purpose; the server's message and SQLSTATE are what a
    /// user needs.
    static func describe(_ error: Error) -> String {
        if let e = error as? AttendError { return e.message }
        guard let e = error as? PSQLError else { return "\(error)" }
        if let info = e.serverInfo, let message = info[.message] {
            return "\(message)\(info[.sqlState].map { " [SQLSTATE \($0)]" } ?? "")\(info[.detail].map { "; \($0)" } ?? "")"
        }
        if let underlying = e.underlying { return "\(e.code): \(underlying)" }
        return "\(e.code)"
    }
}

extension KnowledgeStores {
    /// Opens the store `location` names: a `postgres://` URL (PostgreSQL + pgvector), or else a path to an SQLite
    /// file. With `settings` nil the index must exist.
    public static func open(_ location: String, settings: IndexSettings?) throws -> any KnowledgeStore {
        if isPostgres(location) { return try PostgresKnowledgeStore(url: location, settings: settings) }
        return try SQLiteKnowledgeStore(path: location, settings: settings)
    }
}
