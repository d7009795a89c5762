@testable import AttendKnowledge
@testable import AttendKnowledgePostgres
import AttendTensor
import Logging
import NIOPosix
import PostgresNIO
import XCTest

/// The PostgreSQL + pgvector store against a real server: `scripts/test.sh` starts one (scripts/postgres.sh) and
/// names it in ATTEND_TEST_POSTGRES. Without it these tests fail, they do not skip.
final class PostgresKnowledgeStoreTests: XCTestCase {
    var serverURL: String?

    override func setUpWithError() throws {
        serverURL = ProcessInfo.processInfo.environment["ATTEND_TEST_POSTGRES"]
        XCTAssertNotNil(serverURL, "ATTEND_TEST_POSTGRES is not set: run the tests with scripts/test.sh, which starts PostgreSQL + pgvector (scripts/postgres.sh)")
    }

    /// A fresh index in its own schema.
    func freshURL(_ schema: String) throws -> String {
        let url = try XCTUnwrap(serverURL) + "?schema=\(schema)"
        if let old = try? PostgresKnowledgeStore(url: url, settings: nil) { try old.drop() }
        return url
    }

    func settings() -> IndexSettings { IndexSettings(embeddingModel: "word-hash-64", dimension: 64, chunkTokens: 48, overlapTokens: 8) }

    /// Four real pages of the PostgreSQL manual, ingested into SQLite and copied into PostgreSQL: both stores hold the
    /// same chunks and the same vectors, so exact search must find the same hits at the same distances, filters must
    /// let the same chunks through, and pgvector's HNSW must find what exact search finds.
    func testSameHitsAsTheSQLiteStore() throws {
        let path = temporaryPath("pg-compare.sqlite")
        let sqlite = try SQLiteKnowledgeStore(path: path, settings: settings())
        var ingestor = Ingestor(store: sqlite, chunker: TextChunker(maxTokens: 48, overlapTokens: 8) { words($0).count }, embed: wordEmbedder)
        ingestor.showProgress = false
        let report = try ingestor.add(paths: [fixtures + "/pg"])
        XCTAssertEqual(report.added, 4)
        let postgres = try PostgresKnowledgeStore(url: try freshURL("attend_test_compare"), settings: sqlite.settings)
        let copied = try KnowledgeCopier.copy(from: sqlite, to: postgres, showProgress: false)
        XCTAssertEqual(copied.copied, 4)
        XCTAssertEqual(try postgres.counts().documents, 4)
        XCTAssertEqual(try postgres.counts().chunks, try sqlite.counts().chunks)
        XCTAssertGreaterThan(try sqlite.counts().chunks, 150)
        // A second copy has nothing to do.
        XCTAssertEqual(try KnowledgeCopier.copy(from: sqlite, to: postgres, showProgress: false).unchanged, 4)
        XCTAssertEqual(try postgres.sources(), try sqlite.sources())

        // The exported documents are the same, bit for bit (binary floats both ways).
        for source in try sqlite.sources() {
            let a = try XCTUnwrap(try sqlite.export(source: source)), b = try XCTUnwrap(try postgres.export(source: source))
            XCTAssertEqual(a.record, b.record)
            XCTAssertEqual(a.chunks, b.chunks)
            XCTAssertEqual(a.embeddings, b.embeddings)
        }

        /// A search result as both stores can name it: the chunk's source and position (ids are each store's own).
        func keyed(_ store: any KnowledgeStore, _ hits: [(id: Int64, distance: Float)]) throws -> [(String, Int, Float)] {
            let chunks = try store.chunks(hits.map(\.id))
            return hits.map { (chunks[$0.id]!.source, chunks[$0.id]!.position, $0.distance) }
        }
        let queries = ["create an index without locking writes", "window functions over a partition", "string concatenation and padding",
                       "which index types support range queries", "unique index on an expression", "rank and row_number", "trim spaces from text",
                       "GiST and GIN operator classes", "the fillfactor storage parameter", "lower upper substring"]
        let filters = [SearchFilter(), SearchFilter(sourcePattern: "*/sql-*.html"), SearchFilter(sourcePattern: "*/[ft]*-*.html"),
                       SearchFilter(metadata: ["format": "html"]), SearchFilter(sourcePattern: "*/indexes-types.html", metadata: ["format": "html"]),
                       SearchFilter(metadata: ["format": "markdown"])]
        var graphFound = 0, graphWanted = 0
        for q in queries {
            let v = wordVector(q)
            for filter in filters {
                let a = try keyed(sqlite, try sqlite.vectorSearch(v, top: 10, filter: filter, exact: true, ef: 10))
                let b = try keyed(postgres, try postgres.vectorSearch(v, top: 10, filter: filter, exact: true, ef: 10))
                XCTAssertEqual(a.count, b.count, "\(q) \(filter)")
                for (x, y) in zip(a, b) {
                    XCTAssertEqual(x.2, y.2, accuracy: 1e-5, "\(q) \(filter): distances")
                    // The same chunk, unless the two are tied: then SQLite's chunk is among pgvector's at the same distance.
                    if x.0 != y.0 || x.1 != y.1 {
                        XCTAssertTrue(b.contains { $0.0 == x.0 && $0.1 == x.1 && abs($0.2 - x.2) <= 1e-5 } || abs(x.2 - (b.last?.2 ?? 0)) <= 1e-5,
                                      "\(q) \(filter): \(x) against \(y)")
                    }
                }
                XCTAssertGreaterThanOrEqual(zip(a, b).filter { $0.0 == $1.0 && $0.1 == $1.1 }.count, a.count - 2, "\(q) \(filter)")
                if filter == SearchFilter(metadata: ["format": "markdown"]) { XCTAssertTrue(b.isEmpty) }
            }
            // pgvector's graph against its own exact search.
            let exact = Set(try postgres.vectorSearch(v, top: 10, filter: SearchFilter(), exact: true, ef: 10).map(\.id))
            let graph = try postgres.vectorSearch(v, top: 10, filter: SearchFilter(), exact: false, ef: 100)
            XCTAssertEqual(graph.count, 10)
            XCTAssertEqual(graph.map(\.distance), graph.map(\.distance).sorted())
            graphFound += graph.filter { exact.contains($0.id) }.count
            graphWanted += 10
        }
        XCTAssertGreaterThanOrEqual(Double(graphFound) / Double(graphWanted), 0.9)

        // Full-text search finds the page a question's words point to, through both indexes and hybrid fusion.
        let retriever = Retriever(store: postgres) { wordVector($0) }
        for (question, page) in [("build the index CONCURRENTLY", "sql-createindex.html"), ("window function PARTITION BY", "tutorial-window.html"),
                                 ("btrim ltrim rtrim", "functions-string.html"), ("BRIN block range index", "indexes-types.html")] {
            let hits = try postgres.textSearch(question, top: 3, filter: SearchFilter())
            XCTAssertEqual(try postgres.chunks([hits[0].id]).first?.value.source.hasSuffix(page), true, question)
            XCTAssertEqual(hits.map(\.score), hits.map(\.score).sorted(by: >))
            XCTAssertEqual(try retriever.search(question, top: 3, mode: .text).first?.chunk.source.hasSuffix(page), true, question)
        }
        XCTAssertTrue(try postgres.textSearch("zyzzyva", top: 3, filter: SearchFilter()).isEmpty)
        XCTAssertTrue(try postgres.textSearch("!!! ???", top: 3, filter: SearchFilter()).isEmpty)
        // Text search honours filters as the SQLite store does.
        let filtered = try postgres.textSearch("index", top: 50, filter: SearchFilter(sourcePattern: "*/indexes-*"))
        XCTAssertFalse(filtered.isEmpty)
        XCTAssertTrue(try postgres.chunks(filtered.map(\.id)).values.allSatisfy { $0.source.hasSuffix("indexes-types.html") })
    }

    /// The same life cycle as the SQLite store's test, through the Ingestor: add, skip unchanged, replace changed,
    /// remove, reopen; a failed replacement rolls back; SQL in filter values is only a value.
    func testIngestUpdateRemoveAndRollback() throws {
        let url = try freshURL("attend_test_lifecycle")
        let dir = temporaryPath("pg-docs")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "# Apples\nApples are red fruit that grow on trees.\n\n## Storage\nKeep apples cold.".write(toFile: dir + "/apples.md", atomically: true, encoding: .utf8)
        try "Cats sleep most of the day. Cats purr.".write(toFile: dir + "/cats.txt", atomically: true, encoding: .utf8)
        let chunker = TextChunker(maxTokens: 32, overlapTokens: 4) { words($0).count }
        var store: PostgresKnowledgeStore? = try PostgresKnowledgeStore(url: url, settings: settings())
        var ingestor = Ingestor(store: store!, chunker: chunker, embed: wordEmbedder)
        ingestor.showProgress = false
        XCTAssertEqual(try ingestor.add(paths: [dir]).added, 2)
        XCTAssertEqual(try ingestor.add(paths: [dir]).unchanged, 2)
        try "Cats chase mice at night.".write(toFile: dir + "/cats.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try ingestor.add(paths: [dir]).updated, 1)
        XCTAssertTrue(try store!.textSearch("purr", top: 5, filter: SearchFilter()).isEmpty)
        XCTAssertEqual(try store!.textSearch("mice", top: 5, filter: SearchFilter()).count, 1)
        let retriever = Retriever(store: store!) { wordVector($0) }
        XCTAssertEqual(try retriever.search("keep apples cold", top: 1).first?.chunk.heading, "Storage")
        XCTAssertEqual(try retriever.search("keep apples cold", top: 1).first?.chunk.citation.contains("apples.md"), true)
        for evil in ["x' OR 1=1 --", "'; DROP TABLE attend_test_lifecycle.chunks; --"] {
            XCTAssertTrue(try retriever.search("apples", top: 5, filter: SearchFilter(metadata: ["format": evil])).isEmpty)
            XCTAssertTrue(try retriever.search("apples", top: 5, filter: SearchFilter(sourcePattern: evil)).isEmpty)
        }
        XCTAssertEqual(try store!.counts().chunks, 3)

        // A replacement the server rejects half-way (PostgreSQL text cannot hold NUL) leaves the old document whole.
        let apples = (dir + "/apples.md" as NSString).standardizingPath
        let before = try XCTUnwrap(try store!.export(source: apples))
        var broken = before
        broken.record.contentHash = "changed"
        broken.chunks[broken.chunks.count - 1].text = "bad \u{0} text"
        XCTAssertThrowsError(try store!.replace(broken.record, chunks: broken.chunks, embeddings: broken.embeddings)) { error in
            XCTAssertTrue("\(error)".contains("attend_test_lifecycle"), "\(error)")
        }
        let after = try XCTUnwrap(try store!.export(source: apples))
        XCTAssertEqual(after.record, before.record)
        XCTAssertEqual(after.chunks, before.chunks)
        // The connection is usable after the rollback.
        XCTAssertEqual(try store!.counts().documents, 2)
        XCTAssertThrowsError(try store!.replace(before.record, chunks: before.chunks, embeddings: before.embeddings.map { Array($0.prefix(10)) }))

        XCTAssertTrue(try store!.remove(source: apples))
        XCTAssertFalse(try store!.remove(source: apples))
        store = nil
        let reopened = try PostgresKnowledgeStore(url: url, settings: nil)
        XCTAssertEqual(reopened.settings, settings())
        XCTAssertEqual(try reopened.counts().documents, 1)
        XCTAssertThrowsError(try PostgresKnowledgeStore(url: url, settings: IndexSettings(embeddingModel: "all-MiniLM-L6-v2", dimension: 384))) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("word-hash-64") && message.contains("all-MiniLM-L6-v2") && message.contains("384"), message)
        }
    }

    /// The BM25 side weighs words by their rarity: a chunk with the rare query word once outranks one with the
    /// common query word five times (plain ts_rank, with no IDF, ranks them the other way); query syntax in the
    /// user's text is only text.
    func testTextSearchWeighsRareWords() throws {
        let store = try PostgresKnowledgeStore(url: try freshURL("attend_test_bm25"), settings: settings())
        let texts = ["apple apple apple apple apple", "banana", "apple pie", "apple tart", "apple cake", "apple juice"]
        for (i, text) in texts.enumerated() {
            try store.replace(DocumentRecord(source: "/d/\(i).txt", contentHash: "h\(i)", byteCount: text.utf8.count, title: "", format: "text"),
                              chunks: [DocumentChunk(position: 0, heading: "", anchor: nil, text: text, tokenCount: words(text).count)], embeddings: [wordVector(text)])
        }
        func sources(_ q: String) throws -> [String] {
            let hits = try store.textSearch(q, top: 10, filter: SearchFilter())
            let chunks = try store.chunks(hits.map(\.id))
            return hits.map { chunks[$0.id]!.source }
        }
        XCTAssertEqual(try sources("apple banana").prefix(2), ["/d/1.txt", "/d/0.txt"])
        XCTAssertEqual(try sources("apples").first, "/d/0.txt", "stemmed, and more occurrences rank higher")
        XCTAssertEqual(try sources("juice").first, "/d/5.txt")
        for syntax in ["apple & !banana | (:*", "'apple':* <-> banana", "\\ ' \" ( ) !", "the a of"] {
            XCTAssertNoThrow(try store.textSearch(syntax, top: 5, filter: SearchFilter()), syntax)
        }
        XCTAssertTrue(try sources("the a of").isEmpty, "stop words alone match nothing")
    }

    /// The glob-to-regex translation against SQLite's own GLOB, on the same strings.
    func testSourceGlobsMatchAsSQLiteGlobs() throws {
        let url = try freshURL("attend_test_glob")
        let store = try PostgresKnowledgeStore(url: url, settings: settings())
        let names = ["/a/sql-createindex.html", "/a/b/sql-x.html", "/a/tutorial-window.html", "/a/func(1).html", "/a/x.y.html", "/a/a+b.html",
                     "/a/[x].html", "/a/q?.html", "/a/Ünï code.md", "/a/back\\slash.txt", "/a/star*.txt", "/a/^$|{}.txt"]
        for (i, name) in names.enumerated() {
            try store.replace(DocumentRecord(source: name, contentHash: "h\(i)", byteCount: 1, title: "t", format: "text"),
                              chunks: [DocumentChunk(position: 0, heading: "", anchor: nil, text: "word", tokenCount: 1)], embeddings: [wordVector("word \(i)")])
        }
        let sqlite = try SQLiteDatabase(path: ":memory:")
        let patterns = ["*/sql-*.html", "/a/*", "*.html", "/a/?-*", "*[(]*", "*x.y*", "*a+b*", "*[[]x]*", "*q[?]*", "*Ü*", "*\\*", "*star[*]*",
                        "*[^a-z].txt", "*[a-c]+*", "/a/sql-createindex.html", "*^$|{}*", "*.HTML", "[/]a*", "*[]]*", "*[", "*[a", "*[^]]*", "*[^^]*"]
        for pattern in patterns {
            var expected: [String] = []
            for name in names where try sqlite.query("SELECT ? GLOB ?", [.text(name), .text(pattern)], { $0.int(0) }).first == 1 { expected.append(name) }
            let hits = try store.vectorSearch(wordVector("word"), top: 50, filter: SearchFilter(sourcePattern: pattern), exact: true, ef: 50)
            let got = try store.chunks(hits.map(\.id)).values.map(\.source).sorted()
            XCTAssertEqual(got, expected.sorted(), "pattern \(pattern) -> \(PostgresKnowledgeStore.regex(glob: pattern))")
        }
    }

    /// Bad locations and servers get messages that say what is wrong.
    func testUnreachableServerMissingPgvectorAndBadURLs() throws {
        let base = try XCTUnwrap(serverURL)
        XCTAssertThrowsError(try PostgresKnowledgeStore(url: "postgres://attend@127.0.0.1:1/attend", settings: settings())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("cannot connect") && message.contains("127.0.0.1:1") && message.contains("scripts/postgres.sh"), message)
        }
        for (url, expected) in [("postgres://127.0.0.1/attend", "no user"), ("postgres://attend@127.0.0.1", "no database"),
                                ("postgres://attend@127.0.0.1:99999/attend", "port"), ("postgres://attend@h/db?schema=1x", "schema"),
                                ("postgres://attend@h/db?schema=a;drop", "schema"), ("postgres://attend@h/db?sslmode=maybe", "sslmode"),
                                ("postgres://attend@h/db?table=x", "unknown parameter")] {
            XCTAssertThrowsError(try PostgresLocation(url: url), url) { XCTAssertTrue("\($0)".contains(expected), "\(url): \($0)") }
        }
        XCTAssertEqual(try PostgresLocation(url: "postgres://u:secret@h:5433/db?schema=Docs").display, "postgres://u@h:5433/db?schema=docs")
        // A database with no index in the schema, opened for reading.
        XCTAssertThrowsError(try PostgresKnowledgeStore(url: try freshURL("attend_test_absent"), settings: nil)) { XCTAssertTrue("\($0)".contains("no index"), "\($0)") }

        // A role that may not create extensions, in a database without pgvector: the message names pgvector.
        let admin = try Admin(url: base)
        try admin.run("DROP DATABASE IF EXISTS attend_noext")
        try admin.run("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'attend_noext') THEN CREATE ROLE attend_noext LOGIN; END IF; END $$")
        try admin.run("CREATE DATABASE attend_noext")
        let location = try PostgresLocation(url: base)
        XCTAssertThrowsError(try PostgresKnowledgeStore(url: "postgres://attend_noext@\(location.host):\(location.port)/attend_noext", settings: settings())) { error in
            XCTAssertTrue("\(error)".contains("pgvector"), "\(error)")
        }
        // Tables that are not an index are not touched.
        try admin.run("DROP SCHEMA IF EXISTS attend_test_foreign CASCADE")
        try admin.run("CREATE SCHEMA attend_test_foreign")
        try admin.run("CREATE TABLE attend_test_foreign.orders(id int)")
        XCTAssertThrowsError(try PostgresKnowledgeStore(url: base + "?schema=attend_test_foreign", settings: settings())) { XCTAssertTrue("\($0)".contains("not an Attend index"), "\($0)") }
        // pgvector's limits are checked before anything is created.
        XCTAssertThrowsError(try PostgresKnowledgeStore(url: try freshURL("attend_test_wide"), settings: IndexSettings(embeddingModel: "wide", dimension: 4096))) {
            XCTAssertTrue("\($0)".contains("2000 dimensions"), "\($0)")
        }
        XCTAssertThrowsError(try PostgresKnowledgeStore(url: try freshURL("attend_test_m"), settings: IndexSettings(embeddingModel: "m", dimension: 8, m: 200, efConstruction: 400))) {
            XCTAssertTrue("\($0)".contains("M in 2...100"), "\($0)")
        }
    }
}

/// Raw SQL as the test server's superuser, for setting up what the store must refuse.
final class Admin {
    let connection: PostgresConnection
    deinit { _ = try? connection.close().wait() }
    init(url: String) throws {
        let l = try PostgresLocation(url: url)
        connection = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(),
                                                    configuration: .init(host: l.host, port: l.port, username: l.user, password: l.password, database: l.database, tls: .disable),
                                                    id: 9, logger: Logger(label: "test")).wait()
    }
    func run(_ sql: String) throws { _ = try connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test")).wait() }
}
