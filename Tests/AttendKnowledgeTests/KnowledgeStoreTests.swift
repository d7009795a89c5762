@testable import AttendKnowledge
import AttendLM
import AttendModels
import AttendTensor
import XCTest

let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path
let miniLM = FileManager.default.currentDirectoryPath + "/.cache/assets/all-MiniLM-L6-v2"

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-knowledge-\(ProcessInfo.processInfo.processIdentifier)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    return path
}

/// Words of text, split as the reference splits them (whitespace).
func words(_ s: String) -> [String] { s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\u{00A0}" }).map(String.init) }

final class DocumentTests: XCTestCase {
    /// Four pages of the PostgreSQL manual against Python's html.parser with the same reading rules
    /// (scripts/reference/make_html_text.py): the same title, the same sections (heading, anchor), the same words.
    func testHTMLSectionsMatchPythonsParser() throws {
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixtures + "/html_text.json"))) as! [String: [String: Any]]
        XCTAssertEqual(reference.count, 4)
        for (name, expected) in reference {
            let doc = try SourceDocument.read(path: fixtures + "/pg/" + name)
            XCTAssertEqual(doc.title, expected["title"] as? String, name)
            let sections = expected["sections"] as! [[String: Any]]
            XCTAssertEqual(doc.sections.count, sections.count, name)
            for (got, want) in zip(doc.sections, sections) {
                XCTAssertEqual(words(got.heading), words(want["heading"] as! String), name)
                XCTAssertEqual(got.anchor, want["anchor"] as? String, "\(name) \(got.heading)")
                let w = want["words"] as! [String]
                XCTAssertEqual(words(got.text), w, "\(name) section \(got.heading)")
            }
        }
    }

    func testHTMLEdgeCases() throws {
        let html = """
            <html><head><title>T &amp; t</title><script>if (a<b && c>d) {}</script><style>p{x:1}</style></head>
            <body><div class="navheader"><div>Prev <div>Next</div></div></div>
            <!-- a <p>comment</p> -->
            <div class="sect1" id="S1"><h2>First &#x41;&#66;</h2><p>caf&eacute; one<br>two&nbsp;three &unknown; &lt;tag&gt;</p>
            <pre>line 1
              line 2</pre></div>
            <h3 id="own">Second</h3><p>x<b>y</b>z</p>
            <div class="navfooter">Home</div></body></html>
            """
        let doc = try SourceDocument.parse(Data(html.utf8), source: "t.html", format: .html)
        XCTAssertEqual(doc.title, "T & t")
        XCTAssertEqual(doc.sections.map(\.heading), ["First AB", "Second"])
        XCTAssertEqual(doc.sections.map(\.anchor), ["S1", "own"])
        XCTAssertEqual(words(doc.sections[0].text), ["café", "one", "two", "three", "&unknown;", "<tag>", "line", "1", "line", "2"])
        XCTAssertTrue(doc.sections[0].text.contains("line 1\nline 2"), "pre keeps its lines")
        XCTAssertEqual(doc.sections[1].text, "xyz")
        XCTAssertFalse(doc.text.contains("Prev") || doc.text.contains("Home") || doc.text.contains("comment"))

        XCTAssertThrowsError(try SourceDocument.parse(Data("<p>ok</p><a href='x'".utf8), source: "bad.html", format: .html)) {
            XCTAssertTrue("\($0)".contains("bad.html") && "\($0)".contains("never closed"), "\($0)")
        }
        XCTAssertThrowsError(try SourceDocument.parse(Data([0x50, 0x4B, 0, 3]), source: "z.html", format: .html)) { XCTAssertTrue("\($0)".contains("not a text file")) }
        XCTAssertThrowsError(try SourceDocument.parse(Data([0xC3, 0x28]), source: "l.txt", format: .text)) { XCTAssertTrue("\($0)".contains("not UTF-8")) }
        XCTAssertThrowsError(try SourceDocument.read(path: "/nonexistent/x.html")) { XCTAssertTrue("\($0)".contains("/nonexistent/x.html")) }
    }

    func testMarkdownSections() throws {
        let md = "Intro line.\n\n# Guide\nSome text.\n\n## Install it now\n```\n# not a heading\n```\nMore.\n### Last\n"
        let doc = try SourceDocument.parse(Data(md.utf8), source: "g.md", format: .markdown)
        XCTAssertEqual(doc.title, "Guide")
        XCTAssertEqual(doc.sections.map(\.heading), ["", "Guide", "Install it now", "Last"])
        XCTAssertEqual(doc.sections.map(\.anchor), [nil, "guide", "install-it-now", "last"])
        XCTAssertTrue(doc.sections[2].text.contains("# not a heading"))
    }

    /// Chunks stay within the budget, start on sentence boundaries, repeat the previous chunk's last sentences, and
    /// never cross a section.
    func testChunkerBudgetOverlapAndSections() {
        let sentences = (1...60).map { "Sentence number \($0) has exactly eight words here." }
        let doc = SourceDocument(source: "s", format: .text, title: "s", sections: [
            DocumentSection(heading: "A", text: sentences[..<40].joined(separator: " ")),
            DocumentSection(heading: "B", text: sentences[40...].joined(separator: " ")),
        ])
        let count: (String) -> Int = { words($0).count }
        let chunker = TextChunker(maxTokens: 50, overlapTokens: 16, countTokens: count)
        let chunks = chunker.chunks(of: doc)
        XCTAssertEqual(chunks.map(\.position), Array(0..<chunks.count))
        for c in chunks {
            XCTAssertLessThanOrEqual(count(c.text), 50)
            XCTAssertTrue(c.text.hasPrefix("Sentence number"), c.text)
            XCTAssertTrue(c.text.hasSuffix("here."), c.text)
        }
        XCTAssertTrue(chunks.filter { $0.heading == "A" }.allSatisfy { !$0.text.contains("number 41 ") })
        // Overlap: each chunk after the first in a section starts with the last two sentences of the one before (16 tokens).
        let a = chunks.filter { $0.heading == "A" }
        XCTAssertGreaterThan(a.count, 1, "section A spans several chunks")
        for (prev, next) in zip(a, a.dropFirst()) {
            let lastTwo = TextChunker.sentences(Substring(prev.text)).suffix(2).joined(separator: " ")
            XCTAssertTrue(next.text.hasPrefix(lastTwo), "\(next.text) should start with \(lastTwo)")
        }
        // Every sentence is in some chunk of its section.
        for (i, s) in sentences.enumerated() { XCTAssertTrue(chunks.contains { $0.heading == (i < 40 ? "A" : "B") && $0.text.contains(s) }, s) }
        // A sentence longer than a chunk is cut at words.
        let long = SourceDocument(source: "l", format: .text, title: "l", sections: [DocumentSection(heading: "", text: (1...300).map { "w\($0)" }.joined(separator: " "))])
        let cut = TextChunker(maxTokens: 64, overlapTokens: 0, countTokens: count).chunks(of: long)
        XCTAssertGreaterThan(cut.count, 4)
        XCTAssertTrue(cut.allSatisfy { count($0.text) <= 64 })
        XCTAssertEqual(cut.flatMap { words($0.text) }, (1...300).map { "w\($0)" })
        XCTAssertEqual(TextChunker.sentences("See e.g. the docs. Then 3.14 is pi! Why? Done"), ["See e.g. the docs.", "Then 3.14 is pi!", "Why?", "Done"])
    }
}

/// Unit vectors that depend only on a chunk's words (a bag of hashed words): close for texts that share words.
func wordVector(_ text: String, dimension: Int = 64) -> [Float] {
    var v = [Float](repeating: 0, count: dimension)
    for w in words(text.lowercased()) {
        var h: UInt64 = 1469598103934665603
        for b in w.utf8 { h = (h ^ UInt64(b)) &* 1099511628211 }
        v[Int(h % UInt64(dimension))] += 1
    }
    let n = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-6)
    return v.map { $0 / n }
}

func wordEmbedder(_ texts: [String]) -> Tensor { Tensor(texts.flatMap { wordVector($0) }, shape: [texts.count, 64]) }

final class SQLiteKnowledgeStoreTests: XCTestCase {
    func makeFiles() throws -> String {
        let dir = temporaryPath("docs")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try "# Apples\nApples are red fruit that grow on trees.\n\n## Storage\nKeep apples cold.".write(toFile: dir + "/apples.md", atomically: true, encoding: .utf8)
        try "<html><title>Boats</title><h1 id='b'>Boats</h1><p>Boats float on water and sail the sea.</p></html>".write(toFile: dir + "/sub/boats.html", atomically: true, encoding: .utf8)
        try "Cats sleep most of the day. Cats purr.".write(toFile: dir + "/cats.txt", atomically: true, encoding: .utf8)
        try Data([0x89, 0x50, 0x4E, 0x47, 0, 0]).write(to: URL(fileURLWithPath: dir + "/broken.txt"))
        return dir
    }

    func settings() -> IndexSettings { IndexSettings(embeddingModel: "word-hash-64", dimension: 64, chunkTokens: 32, overlapTokens: 4) }

    func testIngestSearchUpdateRemoveAndReopen() throws {
        let dir = try makeFiles(), path = temporaryPath("index.sqlite")
        let chunker = TextChunker(maxTokens: 32, overlapTokens: 4) { words($0).count }
        var store: SQLiteKnowledgeStore? = try SQLiteKnowledgeStore(path: path, settings: settings())
        var ingestor = Ingestor(store: store!, chunker: chunker, embed: wordEmbedder)
        ingestor.showProgress = false
        var report = try ingestor.add(paths: [dir, dir + "/missing.md"])
        XCTAssertEqual(report.added, 3)
        XCTAssertEqual(report.failed.map { ($0.source as NSString).lastPathComponent }.sorted(), ["broken.txt", "missing.md"])
        XCTAssertTrue(report.failed.contains { $0.reason.contains("not a text file") })
        XCTAssertEqual(try store!.counts().documents, 3)

        let retriever = Retriever(store: store!) { wordVector($0) }
        for mode in RetrievalMode.allCases {
            let top = try retriever.search("do boats float on water", top: 2, mode: mode)
            XCTAssertEqual(top.first?.chunk.source, (dir + "/sub/boats.html" as NSString).standardizingPath, "\(mode)")
            XCTAssertEqual(top.first?.chunk.citation.hasSuffix("boats.html#b"), true)
        }
        // Filters: by source glob and by metadata; a filter value with SQL in it is only a value.
        XCTAssertEqual(try retriever.search("apples boats cats", top: 5, filter: SearchFilter(sourcePattern: "*/cats.txt")).map { ($0.chunk.source as NSString).lastPathComponent }, ["cats.txt"])
        XCTAssertEqual(Set(try retriever.search("apples boats cats", top: 5, filter: SearchFilter(metadata: ["format": "markdown"])).map(\.chunk.title)), ["Apples"])
        XCTAssertTrue(try retriever.search("apples", top: 5, filter: SearchFilter(metadata: ["format": "x' OR 1=1 --"])).isEmpty)
        XCTAssertThrowsError(try SearchFilter.metadataPair("a'b=1"))
        XCTAssertEqual(try SearchFilter.metadataPair("k=v=w").1, "v=w")

        // Unchanged files are skipped; a changed one replaces its chunks (the old words are gone from both indexes).
        report = try ingestor.add(paths: [dir])
        XCTAssertEqual(report.unchanged, 3)
        XCTAssertEqual(report.added + report.updated, 0)
        try "Cats chase mice at night.".write(toFile: dir + "/cats.txt", atomically: true, encoding: .utf8)
        report = try ingestor.add(paths: [dir])
        XCTAssertEqual(report.updated, 1)
        XCTAssertEqual(report.unchanged, 2)
        XCTAssertTrue(try store!.textSearch("purr", top: 5, filter: SearchFilter()).isEmpty)
        XCTAssertEqual(try store!.textSearch("mice", top: 5, filter: SearchFilter()).count, 1)
        let purr = wordVector("Cats sleep most of the day. Cats purr.")
        let nearest = try store!.vectorSearch(purr, top: 10, filter: SearchFilter(), exact: true, ef: 10)
        XCTAssertTrue(try store!.chunks(nearest.map(\.id)).values.allSatisfy { !$0.text.contains("purr") })

        // Exact and graph search agree on this small index; the graph survives reopening.
        let q = wordVector("keep apples cold")
        let exactIDs = try store!.vectorSearch(q, top: 3, filter: SearchFilter(), exact: true, ef: 10).map(\.id)
        XCTAssertEqual(try store!.vectorSearch(q, top: 3, filter: SearchFilter(), exact: false, ef: 10).map(\.id), exactIDs)
        XCTAssertTrue(try store!.remove(source: (dir + "/cats.txt" as NSString).standardizingPath))
        XCTAssertFalse(try store!.remove(source: "/not/there"))
        try store!.flush()
        store = nil
        ingestor = Ingestor(store: try SQLiteKnowledgeStore(path: path, settings: nil), chunker: chunker, embed: wordEmbedder)
        let reopened = ingestor.store
        XCTAssertEqual(try reopened.counts().documents, 2)
        // The reloaded graph answers as exact search does over what is left (the removed file's chunks are gone).
        let exactAfter = try reopened.vectorSearch(q, top: 3, filter: SearchFilter(), exact: true, ef: 10).map(\.id)
        XCTAssertEqual(try reopened.vectorSearch(q, top: 3, filter: SearchFilter(), exact: false, ef: 10).map(\.id), exactAfter)
        XCTAssertEqual(exactAfter.filter(exactIDs.contains), exactIDs.filter(exactAfter.contains), "surviving neighbours keep their order")
        XCTAssertEqual(reopened.settings, settings())
    }

    /// Chunks written without the graph being saved (a run killed before `flush`) are found after reopening.
    func testGraphIsReconciledAfterAKilledRun() throws {
        let path = temporaryPath("killed.sqlite")
        do {
            let store = try SQLiteKnowledgeStore(path: path, settings: settings())
            let chunk = DocumentChunk(position: 0, heading: "", anchor: nil, text: "zebras are striped", tokenCount: 3)
            try store.replace(DocumentRecord(source: "/z.txt", contentHash: "h", byteCount: 1, title: "z", format: "text"), chunks: [chunk], embeddings: [wordVector(chunk.text)])
            try store.flush()
            let second = DocumentChunk(position: 0, heading: "", anchor: nil, text: "yaks are hairy", tokenCount: 3)
            try store.replace(DocumentRecord(source: "/y.txt", contentHash: "h", byteCount: 1, title: "y", format: "text"), chunks: [second], embeddings: [wordVector(second.text)])
        }
        // The kill: the saved graph knows only the zebra (as it would if the process died before saving the yak).
        let db = try SQLiteDatabase(path: path)
        let g = try HNSWIndex(dimension: 64, metric: .cosine, m: 16, efConstruction: 200)
        let zebraID = try db.query("SELECT id FROM chunks WHERE text LIKE 'zebras%'") { $0.int(0) }[0]
        try g.add(wordVector("zebras are striped"), label: zebraID)
        try db.run("UPDATE vector_graph SET links = ?", [.blob(g.serializedLinks())])
        let reopened = try SQLiteKnowledgeStore(path: path, settings: nil)
        let hits = try reopened.vectorSearch(wordVector("yaks are hairy"), top: 1, filter: SearchFilter(), exact: false, ef: 10)
        XCTAssertEqual(try reopened.chunks(hits.map(\.id)).values.first?.text, "yaks are hairy")
    }

    func testRefusesOtherModelsAndOtherFiles() throws {
        let path = temporaryPath("model.sqlite")
        _ = try SQLiteKnowledgeStore(path: path, settings: settings())
        var other = settings()
        other.embeddingModel = "other-model"
        other.dimension = 32
        XCTAssertThrowsError(try SQLiteKnowledgeStore(path: path, settings: other)) { error in
            XCTAssertTrue("\(error)".contains("word-hash-64") && "\(error)".contains("other-model") && "\(error)".contains("32"), "\(error)")
        }
        let notIndex = temporaryPath("plain.sqlite")
        try SQLiteDatabase(path: notIndex).execute("CREATE TABLE t(x)")
        XCTAssertThrowsError(try SQLiteKnowledgeStore(path: notIndex, settings: settings())) { XCTAssertTrue("\($0)".contains("not an Attend index"), "\($0)") }
        let text = temporaryPath("text.sqlite")
        try "hello, not a database at all........................................................".write(toFile: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SQLiteKnowledgeStore(path: text, settings: settings())) { XCTAssertTrue("\($0)".contains(text), "\($0)") }
        XCTAssertThrowsError(try SQLiteKnowledgeStore(path: temporaryPath("absent.sqlite"), settings: nil)) { XCTAssertTrue("\($0)".contains("no such index")) }
        var bad = settings(); bad.overlapTokens = 40
        XCTAssertThrowsError(try SQLiteKnowledgeStore(path: temporaryPath("bad.sqlite"), settings: bad))
    }

    /// Reciprocal rank fusion, by hand: with k = 60, a chunk ranked 1st by BM25 and 3rd by vectors scores
    /// 1/61 + 1/63; the hybrid order follows those sums.
    func testHybridScoresAreReciprocalRankSums() throws {
        let path = temporaryPath("rrf.sqlite")
        let store = try SQLiteKnowledgeStore(path: path, settings: settings())
        let texts = ["red apples", "green apples and red pears", "red red red cars", "blue sea", "apples apples apples"]
        for (i, t) in texts.enumerated() {
            try store.replace(DocumentRecord(source: "/\(i).txt", contentHash: "\(i)", byteCount: 1, title: "", format: "text"),
                              chunks: [DocumentChunk(position: 0, heading: "", anchor: nil, text: t, tokenCount: 2)], embeddings: [wordVector(t)])
        }
        let retriever = Retriever(store: store) { wordVector($0) }
        let query = "red apples"
        let vector = try store.vectorSearch(wordVector(query), top: 40, filter: SearchFilter(), exact: false, ef: 64).map(\.id)
        let text = try store.textSearch(query, top: 40, filter: SearchFilter()).map(\.id)
        var expected: [Int64: Double] = [:]
        for (r, id) in vector.enumerated() { expected[id, default: 0] += 1 / (60 + Double(r + 1)) }
        for (r, id) in text.enumerated() { expected[id, default: 0] += 1 / (60 + Double(r + 1)) }
        let hybrid = try retriever.search(query, top: 5, mode: .hybrid)
        XCTAssertEqual(hybrid.count, 5)
        for hit in hybrid { XCTAssertEqual(hit.score, expected[hit.chunk.id]!, accuracy: 1e-12) }
        XCTAssertEqual(hybrid.map(\.score), hybrid.map(\.score).sorted(by: >))
        XCTAssertEqual(hybrid.first?.chunk.text, "red apples")
        // BM25: the text with no query word is not a text hit at all.
        XCTAssertFalse(text.contains { id in (try? store.chunks([id])[id]?.text == "blue sea") ?? false })
        XCTAssertEqual(SQLiteKnowledgeStore.ftsQuery("NEAR(\"x\" OR) *"), "\"near\" OR \"x\" OR \"or\"")
        // Query syntax in the user's text is only words: no FTS5 syntax error reaches the user.
        XCTAssertNoThrow(try store.textSearch("\" OR * NEAR( AND", top: 3, filter: SearchFilter()))
    }

    /// The real thing: three manual pages embedded with all-MiniLM-L6-v2; questions find the page that answers them.
    func testMiniLMRetrievalOnManualPages() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: miniLM + "/model.safetensors"), "run scripts/fetch-assets.sh all-MiniLM-L6-v2")
        let embedder = try SentenceEmbedder.load(directory: miniLM)
        let path = temporaryPath("minilm.sqlite")
        let store = try SQLiteKnowledgeStore(path: path, settings: IndexSettings(embeddingModel: "all-MiniLM-L6-v2", dimension: 384, chunkTokens: 128, overlapTokens: 16))
        let chunker = TextChunker(maxTokens: 128, overlapTokens: 16) { embedder.tokenizer.encode($0, maxLength: 1 << 20).count - 2 }
        var ingestor = Ingestor(store: store, chunker: chunker) { embedder.embed($0) }
        ingestor.showProgress = false
        // Three pages (the fourth, functions-string, is long for a debug build).
        let report = try ingestor.add(paths: ["tutorial-window", "indexes-types", "sql-createindex"].map { fixtures + "/pg/\($0).html" })
        XCTAssertEqual(report.added, 3)
        // Chunks never exceed what the embedder reads.
        let lengths = try store.database.query("SELECT text FROM chunks") { embedder.tokenizer.encode($0.text(0), maxLength: 1 << 20).count - 2 }
        XCTAssertLessThanOrEqual(lengths.max() ?? 0, 128)
        let retriever = Retriever(store: store) { try embedder.encode([$0]).toArray() }
        let cases = [("build an index without locking out writes", "sql-createindex.html"),
                     ("which index type supports range queries on sorted data", "indexes-types.html"),
                     ("compute the rank of each row within its partition", "tutorial-window.html")]
        for mode in RetrievalMode.allCases {
            for (question, page) in cases {
                let hits = try retriever.search(question, top: 3, mode: mode)
                XCTAssertEqual((hits.first?.chunk.source as NSString?)?.lastPathComponent, page, "\(mode): \(question)")
            }
        }
        // The stored vectors are MiniLM's own for the embedded text.
        let row = try store.database.query("SELECT c.id, c.text, c.heading, d.title FROM chunks c JOIN documents d ON d.id = c.document_id LIMIT 1") {
            ($0.int(0), $0.text(1), $0.text(2), $0.text(3))
        }[0]
        let chunk = DocumentChunk(position: 0, heading: row.2, anchor: nil, text: row.1, tokenCount: 0)
        let fresh = embedder.embed([Ingestor.embeddingText(title: row.3, chunk: chunk)]).toArray()
        let stored = try store.vectorSearch(fresh, top: 1, filter: SearchFilter(), exact: true, ef: 1)
        XCTAssertEqual(stored.first?.id, row.0)
        XCTAssertEqual(stored.first?.distance ?? 1, 0, accuracy: 1e-5)
    }
}

/// Task-oriented values with the real model on a real page: SmolLM2-135M fills a schema from the PostgreSQL 15.4
/// release notes under constrained decoding; the value parses, conforms, and carries the page's release date.
/// The kernels are pinned to the portable path: a model this small flips its greedy answer on rounding (with the AVX2
/// GEMM's fused multiply-adds it writes 2023-09-16, a date the page does not hold), and the portable path rounds the
/// same on every machine.
final class ValueExtractionTests: XCTestCase {
    func testExtractedValueConformsAndIsStoredWithTheChunks() throws {
        try SIMDLevel.withLimit(.portable) { try extractAndCheck() }
    }

    func extractAndCheck() throws {
        let loaded = try ModelLocator.languageModel("SmolLM2-135M-Instruct")
        let schema = #"{"type": "object", "properties": {"version": {"type": "string", "maxLength": 8}, "release_date": {"type": "string", "format": "date"}}, "required": ["version", "release_date"]}"#
        var extractor = try ValueExtractor(schema: schema, model: loaded.model, tokenizer: loaded.tokenizer, template: ChatTemplate(ggufTemplate: loaded.chatTemplate))
        extractor.documentTokens = 160
        let dir = temporaryPath("release")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixtures + "/release-15-4.html", toPath: dir + "/release-15-4.html")
        let store = try SQLiteKnowledgeStore(path: temporaryPath("values.sqlite"), settings: IndexSettings(embeddingModel: "word-hash-64", dimension: 64, chunkTokens: 64, overlapTokens: 8))
        var ingestor = Ingestor(store: store, chunker: TextChunker(maxTokens: 64, overlapTokens: 8) { words($0).count }, embed: wordEmbedder)
        ingestor.showProgress = false
        ingestor.extractor = extractor
        let report = try ingestor.add(paths: [dir])
        XCTAssertEqual(report.extracted, 1, "\(report.failed)")
        let source = (dir + "/release-15-4.html" as NSString).standardizingPath
        let stored = try XCTUnwrap(try store.export(source: source))
        let value = try JSONValue.parse(try XCTUnwrap(stored.record.value))
        XCTAssertTrue(try Grammar(gbnf: JSONSchemaGrammar.gbnf(schemaText: schema)).matches(stored.record.value!))
        XCTAssertEqual(value["release_date"]?.stringValue, "2023-08-10", "the date the page states")
        XCTAssertEqual(value.objectValue?.map(\.0), ["version", "release_date"])
        // Every chunk of the document carries the value; answering can use it instead of the passage.
        let hits = try Retriever(store: store) { wordVector($0) }.search("release date", top: 3)
        XCTAssertFalse(hits.isEmpty)
        XCTAssertTrue(hits.allSatisfy { $0.chunk.value == stored.record.value })
        // Unchanged file and schema: skipped. Without the extractor the document counts as changed (no value now).
        XCTAssertEqual(try ingestor.add(paths: [dir]).unchanged, 1)
        ingestor.extractor = nil
        XCTAssertEqual(try ingestor.add(paths: [dir]).updated, 1)
        XCTAssertNil(try store.export(source: source)?.record.value)
        XCTAssertThrowsError(try ValueExtractor(schema: #"{"type": "string", "pattern": "x"}"#, model: loaded.model, tokenizer: loaded.tokenizer, template: ChatTemplate(ggufTemplate: nil)))
    }
}
