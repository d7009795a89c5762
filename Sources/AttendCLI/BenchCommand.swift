import ArgumentParser
import AttendDatasets
import AttendKnowledge
#if PostgreSQL
import AttendKnowledgePostgres
#endif
import AttendLM
import AttendModels
import AttendNN
import AttendTensor
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print Attend's figure beside a peer's.",
        subcommands: benchmarks)

    static var benchmarks: [ParsableCommand.Type] {
        var all: [ParsableCommand.Type] = [GemmBench.self, EfficientNetBench.self, CLIPStepBench.self, AnnBench.self, RetrievalBench.self]
        #if PostgreSQL
        all.append(StoreBench.self)   // needs the PostgreSQL trait
        #endif
        all += [ValuesBench.self, SafetyBench.self]
        #if MPI
        all.append(AllReduceBench.self)   // needs the MPI trait
        #endif
        return all
    }
}

/// Median wall time of `body` over `repeats` runs after one warm-up, each run lasting at least ~30 ms.
func medianSeconds(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var inner = 1
    var t0 = Date()
    body()
    let once = Date().timeIntervalSince(t0)
    if once < 0.03 { inner = Int(0.03 / max(once, 1e-6)) + 1 }
    var samples: [Double] = []
    for _ in 0..<repeats {
        t0 = Date()
        for _ in 0..<inner { body() }
        samples.append(Date().timeIntervalSince(t0) / Double(inner))
    }
    samples.sort()
    return samples[samples.count / 2]
}

struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "SGEMM GFLOP/s: Attend's own kernel, OpenBLAS called directly, and Attend's matmul, side by side.")

    @Option(parsing: .upToNextOption, help: "Square sizes n (C = A B with n x n matrices).") var sizes: [Int] = [256, 512, 1024, 2048]
    @Option(parsing: .upToNextOption, help: "Thread counts.") var threads: [Int] = [1, 2]
    @Option(help: "Timed runs per cell (the median is reported).") var repeats = 5

    func validate() throws {
        for n in sizes { try Require.count(n, "--sizes", 1...16_384) }
        for t in threads { try Require.count(t, "--threads", 1...1_024) }
        try Require.count(repeats, "--repeats", 1...1_000)
    }

    func run() {
        print("own micro-kernel: \(Gemm.ownKernelName); BLAS: \(BLAS.loadedPath ?? "none")")
        print("   n  thr |   own GF/s  BLAS GF/s  own/BLAS | matmul GF/s  matmul/BLAS")
        for n in sizes {
            let a = Tensor.uniform([n, n], low: -1, high: 1, seed: 1), b = Tensor.uniform([n, n], low: -1, high: 1, seed: 2)
            let c = Tensor.zeros([n, n])
            let flops = 2 * Double(n) * Double(n) * Double(n)
            for t in threads {
                Parallel.threads = t
                let own = medianSeconds(repeats: repeats) {
                    Gemm.ownSgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a.pointer, lda: n,
                                  b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n, threads: t)
                }
                var line = String(format: "%5d %3d | %10.1f", n, t, flops / own / 1e9)
                if BLAS.loadedPath != nil {
                    // OpenBLAS threads itself when called directly; Attend's matmul keeps it single-threaded per block.
                    BLAS.setThreads(t)
                    defer { BLAS.setThreads(1) }
                    let blas = medianSeconds(repeats: repeats) {
                        BLAS.sgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a.pointer, lda: n,
                                   b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
                    }
                    BLAS.setThreads(1)
                    let viaTensor = medianSeconds(repeats: repeats) { _ = withNoGrad { a.matmul(b) } }
                    line += String(format: " %10.1f %9.2fx | %11.1f %11.2fx", flops / blas / 1e9, blas / own,
                                   flops / viaTensor / 1e9, blas / viaTensor)
                } else {
                    line += "        n/a        n/a |         n/a          n/a"
                }
                print(line)
            }
        }
    }
}

/// ann-benchmarks' fashion-mnist-784-euclidean (or any IDX base/query pair): HNSW build time, then recall@k and
/// queries/s at each ef and thread count, against ground truth computed elsewhere (Benchmarks/ann_peers.py, numpy).
struct AnnBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ann", abstract: "HNSW recall@k and queries/s over an IDX base and query set (JSON lines).")
    @Option(help: "IDX images to index (uint8, as ann-benchmarks uses them: raw pixel values), or raw float32 rows (a .f32 file, with --dimension).") var base = FashionMNIST.defaultDirectory + "/train-images-idx3-ubyte.gz"
    @Option(help: "IDX query images, or raw float32 rows (.f32).") var queries = FashionMNIST.defaultDirectory + "/t10k-images-idx3-ubyte.gz"
    @Option(help: "Values per row of .f32 files.") var dimension: Int?
    @Option(help: "Ground truth: little-endian int32 [queries, width] of true neighbour indices, nearest first.") var truth: String
    @Option(name: .customLong("truth-width"), help: "Neighbours per query in --truth.") var truthWidth = 100
    @Option(help: "HNSW links per node.") var m = 16
    @Option(name: .customLong("ef-construction")) var efConstruction = 200
    @Option(parsing: .upToNextOption, help: "Search beams.") var ef: [Int] = [10, 20, 40, 80, 160, 320]
    @Option(parsing: .upToNextOption, help: "Thread counts for the queries.") var threads: [Int] = [1, 2]
    @Option(help: "Neighbours asked for (recall@k).") var k = 10
    @Option(help: "Timed passes over the queries per cell (median).") var repeats = 3

    func validate() throws {
        if let dimension { guard (1...65_536).contains(dimension) else { throw ValidationError("--dimension must be in 1...65536, got \(dimension)") } }
        guard m >= 2, efConstruction >= 1, k >= 1, k <= truthWidth, repeats >= 1 else { throw ValidationError("need --m >= 2, --ef-construction >= 1, 1 <= --k <= --truth-width, --repeats >= 1") }
        guard ef.allSatisfy({ (1...100_000).contains($0) }), threads.allSatisfy({ (1...256).contains($0) }), k <= 1000 else {
            throw ValidationError("--ef values must be in 1...100000, --threads in 1...256, --k at most 1000")
        }
    }

    static func rows(_ path: String, dimension: Int?) throws -> (count: Int, dim: Int, values: [Float]) {
        if path.hasSuffix(".f32") {
            guard let dimension else { throw ValidationError("\(path): a .f32 file needs --dimension") }
            guard let data = FileManager.default.contents(atPath: path) else { throw AttendError("\(path): cannot be read") }
            guard !data.isEmpty, data.count % (4 * dimension) == 0 else {
                throw AttendError("\(path): \(data.count) bytes is not a whole number of \(dimension)-value float32 rows")
            }
            let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return (values.count / dimension, dimension, values)
        }
        let (shape, bytes) = try IDX.readUInt8(path)
        guard shape.count >= 2 else { throw AttendError("\(path): expected at least 2 dimensions, got \(shape)") }
        return (shape[0], shape.dropFirst().reduce(1, *), bytes.map(Float.init))
    }

    func run() throws {
        let b = try AnnBench.rows(base, dimension: dimension), q = try AnnBench.rows(queries, dimension: dimension)
        guard b.dim == q.dim else { throw AttendError("\(queries): \(q.dim) values per row, \(base) has \(b.dim)") }
        guard let t = FileManager.default.contents(atPath: truth), t.count == q.count * truthWidth * 4 else {
            throw AttendError("\(truth): expected \(q.count) x \(truthWidth) int32 values")
        }
        let truthIDs = t.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        let index = try HNSWIndex(dimension: b.dim, metric: .euclidean, m: m, efConstruction: efConstruction)
        let started = Date()
        let bar = ProgressBar(total: b.count, label: "build", unit: "vectors")
        for i in 0..<b.count {
            try index.add(Array(b.values[(i * b.dim)..<((i + 1) * b.dim)]), label: Int64(i))
            if i % 1000 == 999 { bar.advance(1000) }
        }
        bar.finish()
        let buildSeconds = Date().timeIntervalSince(started)
        let graphMiB = Double(index.serializedLinks().count + b.count * b.dim * 4) / 1048576
        print(#"{"peer": "attend", "build_seconds": \#(buildSeconds), "build_threads": 1, "index_mib": \#(graphMiB)}"#)
        for threadCount in threads {
            for e in ef {
                var found: [Int64] = []
                let seconds = q.values.withUnsafeBufferPointer { rows in
                    medianSeconds(repeats: repeats) { found = index.search(batch: rows.baseAddress!, count: q.count, k: k, ef: e, threads: threadCount).labels }
                }
                var hits = 0
                for i in 0..<q.count {
                    let truthSet = Set(truthIDs[(i * truthWidth)..<(i * truthWidth + k)].map(Int64.init))
                    hits += found[(i * k)..<((i + 1) * k)].filter(truthSet.contains).count
                }
                print(#"{"peer": "attend", "threads": \#(threadCount), "ef": \#(e), "recall": \#(Double(hits) / Double(q.count * k)), "qps": \#(Double(q.count) / seconds)}"#)
            }
        }
    }
}

/// Retrieval quality: questions with the pages that answer them (tab-separated, `#` comments), recall@k and mean
/// reciprocal rank of the first right page, for vector, BM25 and hybrid retrieval.
struct RetrievalBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retrieval", abstract: "Recall@k of vector, BM25 and hybrid retrieval over hand-written questions.")
    @OptionGroup var options: IndexOptions
    @Argument(help: "question<TAB>page[,page...] lines; a hit is right when its file name is one of the pages.") var questions: String
    @Option(help: "Pages counted (k of recall@k); chunks are read until this many distinct pages are found.") var top = 5
    @Flag(help: "Print each question's ranks.") var verbose = false

    func validate() throws { guard (1...100).contains(top) else { throw ValidationError("--top must be in 1...100, got \(top)") } }

    func run() throws {
        guard let text = try? String(contentsOfFile: questions, encoding: .utf8) else { throw AttendError("\(questions): cannot be read as UTF-8") }
        var cases: [(String, Set<String>)] = []
        for (n, line) in text.split(separator: "\n").enumerated() where !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let parts = line.split(separator: "\t")
            guard parts.count == 2 else { throw AttendError("\(questions):\(n + 1): expected question<TAB>pages") }
            cases.append((String(parts[0]), Set(parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })))
        }
        guard !cases.isEmpty else { throw AttendError("\(questions): no questions") }
        let (embedder, name) = try options.embedder()
        let store = try options.open(embedder: embedder, name: name)
        let retriever = Retriever(store: store) { try embedder.encode([$0]).toArray() }
        print("\(cases.count) questions, \(try store.counts().chunks) chunks; recall@\(top) counts a question when one of its pages is among the first \(top) distinct pages")
        for mode in RetrievalMode.allCases {
            var found = 0, reciprocal = 0.0
            let started = Date()
            for (question, pages) in cases {
                let hits = try retriever.search(question, top: top * 8, mode: mode)
                var seen: [String] = []
                for hit in hits {
                    let page = (hit.chunk.source as NSString).lastPathComponent
                    if !seen.contains(page) { seen.append(page) }
                    if seen.count == top { break }
                }
                if let rank = seen.firstIndex(where: pages.contains) { found += 1; reciprocal += 1 / Double(rank + 1) }
                if verbose { print("  \(mode.rawValue) \(seen.firstIndex(where: pages.contains).map { "\($0 + 1)" } ?? "-")  \(question)  -> \(seen.prefix(3).joined(separator: " "))") }
            }
            let ms = Date().timeIntervalSince(started) * 1000 / Double(cases.count)
            print(String(format: "%-7@ recall@%d %.3f (%d/%d)  MRR %.3f  %.1f ms/question", mode.rawValue, top, Double(found) / Double(cases.count), found, cases.count,
                         reciprocal / Double(cases.count), ms))
        }
    }
}

#if PostgreSQL
/// The SQLite store against the PostgreSQL + pgvector store on the same index: a fresh copy into each (write
/// throughput, HNSW built as chunks arrive), then the same queries through both, exact (do they return the same
/// hits?) and through each one's HNSW graph (recall@k against its own exact answer, queries/s).
struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stores", abstract: "SQLite against PostgreSQL + pgvector on one index: copy time, exact agreement, HNSW recall and queries/s.")
    @Argument(help: "The index to read (an SQLite file made by `attend index add`).") var index: String
    @Argument(help: "A PostgreSQL + pgvector server: postgres://USER@HOST:PORT/DATABASE (the benchmark writes schema attend_bench).") var server: String
    @Option(help: "question<TAB>pages lines: the questions are among the queries.") var questions: String?
    @Option(help: "Queries in all: the questions, then section headings of the index's chunks.") var queries = 1000
    @Option(help: "Neighbours per query (k of recall@k).") var top = 10
    @Option(parsing: .upToNextOption, help: "HNSW search beams.") var ef: [Int] = [10, 20, 40, 80, 160, 320]
    @Option(name: .customLong("embedding-model")) var embeddingModel = "all-MiniLM-L6-v2"
    @Flag(name: .customLong("reuse"), help: "Keep the copies of an earlier run (skips the copy timings).") var reuse = false

    func validate() throws {
        guard (1...100_000).contains(queries) else { throw ValidationError("--queries must be in 1...100000, got \(queries)") }
        guard (1...100).contains(top) else { throw ValidationError("--top must be in 1...100, got \(top)") }
        guard !ef.isEmpty, ef.allSatisfy({ (1...PostgresKnowledgeStore.maxEF).contains($0) }) else { throw ValidationError("--ef values must be in 1...\(PostgresKnowledgeStore.maxEF)") }
        guard !KnowledgeStores.isPostgres(index) else { throw ValidationError("the first argument is the SQLite index to copy from") }
        guard KnowledgeStores.isPostgres(server) else { throw ValidationError("the second argument must be a postgres:// URL, got \(server)") }
        guard URLComponents(string: server)?.query == nil else { throw ValidationError("give the server's URL without ?schema= (the benchmark uses schema attend_bench)") }
    }

    func run() throws {
        let source = try Knowledge.openExisting(index)
        let embedder = try SentenceEmbedder.load(directory: try ModelLocator.locate(embeddingModel, kind: .sentenceEmbedder))
        guard embedder.dimension == source.settings.dimension else { throw AttendError("\(index) holds \(source.settings.dimension)-dimensional embeddings; \(embeddingModel) makes \(embedder.dimension)") }
        // Fresh copies: SQLite into a new file, PostgreSQL into a new schema.
        let copyPath = index + ".bench-copy.sqlite", pgURL = server + "?schema=attend_bench"
        var stores: [(String, any KnowledgeStore)] = []
        if !reuse {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: copyPath + suffix) }
            if let old = try? PostgresKnowledgeStore(url: pgURL, settings: nil) { try old.drop() }
        }
        for (name, location) in [("sqlite", copyPath), ("pgvector", pgURL)] {
            let store = try KnowledgeStores.open(location, settings: source.settings)
            let report = try KnowledgeCopier.copy(from: source, to: store)
            if report.copied > 0 {
                print(String(format: "%-8@ copy: %d documents, %d chunks in %.1f s (%.0f chunks/s, HNSW M %d ef_construction %d built as they arrive)",
                             name, report.copied, report.chunks, report.seconds, Double(report.chunks) / report.seconds, store.settings.m, store.settings.efConstruction))
            }
            stores.append((name, store))
        }
        // Queries: the hand-written questions, then distinct headings.
        var texts: [String] = []
        if let questions {
            guard let text = try? String(contentsOfFile: questions, encoding: .utf8) else { throw AttendError("\(questions): cannot be read as UTF-8") }
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                if let question = line.split(separator: "\t").first { texts.append(String(question)) }
            }
        }
        var seen = Set(texts)
        outer: for name in try source.sources() {
            for chunk in try source.export(source: name)?.chunks ?? [] where texts.count < queries {
                let heading = chunk.heading.trimmingCharacters(in: .whitespaces)
                if heading.count > 8 && seen.insert(heading).inserted { texts.append(heading) }
            }
            if texts.count >= queries { break outer }
        }
        texts = Array(texts.prefix(queries))
        let vectors = embedder.embed(texts, batchSize: 64)
        let d = vectors.shape[1], flat = vectors.toArray()
        let query = (0..<texts.count).map { Array(flat[($0 * d)..<(($0 + 1) * d)]) }
        print("\(texts.count) queries, k = \(top), \(try source.counts().chunks) chunks of \(d) dimensions; one connection / one thread each")

        // Exact answers, as (source, position, distance), and their agreement.
        func keyed(_ store: any KnowledgeStore, _ hits: [(id: Int64, distance: Float)]) throws -> [(String, Int, Float)] {
            let chunks = try store.chunks(hits.map(\.id))
            return hits.map { (chunks[$0.id]!.source, chunks[$0.id]!.position, $0.distance) }
        }
        var exact: [[[(String, Int, Float)]]] = []
        var exactIDs: [[Set<Int64>]] = []
        for (name, store) in stores {
            var answers: [[(String, Int, Float)]] = [], ids: [Set<Int64>] = []
            let started = Date()
            var raw: [[(id: Int64, distance: Float)]] = []
            for q in query { raw.append(try store.vectorSearch(q, top: top, filter: SearchFilter(), exact: true, ef: top)) }
            let seconds = Date().timeIntervalSince(started)
            for r in raw { answers.append(try keyed(store, r)); ids.append(Set(r.map(\.id))) }
            print(String(format: "%-8@ exact: %.1f queries/s", name, Double(query.count) / seconds))
            exact.append(answers); exactIDs.append(ids)
        }
        var identical = 0, sameSet = 0, maxDifference: Float = 0
        for (a, b) in zip(exact[0], exact[1]) {
            if a.count == b.count && zip(a, b).allSatisfy({ $0.0 == $1.0 && $0.1 == $1.1 }) { identical += 1 }
            if Set(a.map { "\($0.0)#\($0.1)" }) == Set(b.map { "\($0.0)#\($0.1)" }) { sameSet += 1 }
            for (x, y) in zip(a, b) { maxDifference = max(maxDifference, abs(x.2 - y.2)) }
        }
        print(String(format: "exact agreement: %d/%d queries return the same %d hits in the same order, %d/%d the same set; largest distance difference %.2e",
                     identical, query.count, top, sameSet, query.count, maxDifference))
        print("ef   " + stores.map { String(format: "%-8@ recall@%d  q/s    ", $0.0, top) }.joined() + "q/s ratio (sqlite / pgvector)")
        for beam in ef where beam >= top {
            var line = String(format: "%-4d ", beam), rates: [Double] = []
            for (i, (_, store)) in stores.enumerated() {
                var found = 0
                let started = Date()
                var results: [[(id: Int64, distance: Float)]] = []
                for q in query { results.append(try store.vectorSearch(q, top: top, filter: SearchFilter(), exact: false, ef: beam)) }
                let rate = Double(query.count) / Date().timeIntervalSince(started)
                for (r, truth) in zip(results, exactIDs[i]) { found += r.filter { truth.contains($0.id) }.count }
                line += String(format: "         %.4f  %7.0f    ", Double(found) / Double(query.count * top), rate)
                rates.append(rate)
            }
            print(line + String(format: "%.2fx", rates[0] / rates[1]))
        }
    }
}
#endif

/// Task-oriented values (issue 14): how well `index add --extract` filled each document's schema (field by field,
/// against facts read from the pages by Benchmarks/make_release_facts.py), and how often answers are right with the
/// raw passages in the prompt against the structured values.
struct ValuesBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "values", abstract: "Extracted values against the facts, and answer accuracy from raw passages against structured values.")
    @OptionGroup var options: IndexOptions
    @Argument(help: "page<TAB>field values... lines, the first comment line naming the fields (release-facts.tsv).") var facts: String
    @Argument(help: "question<TAB>text a right answer contains (release-questions.tsv).") var questions: String
    @Option(help: "Language model that answers.") var model = "SmolLM2-135M-Instruct"
    @Option(help: "Passages (or values) per prompt.") var top = 3
    @Option(name: .customLong("max-tokens")) var maxTokens = 48

    func validate() throws {
        guard (1...20).contains(top) else { throw ValidationError("--top must be in 1...20, got \(top)") }
        guard (1...1000).contains(maxTokens) else { throw ValidationError("--max-tokens must be in 1...1000, got \(maxTokens)") }
    }

    static func rows(_ path: String) throws -> (header: [String], rows: [[String]]) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AttendError("\(path): cannot be read as UTF-8") }
        var header: [String] = [], rows: [[String]] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") { if header.isEmpty { header = line.dropFirst().split(separator: "\t").map { $0.trimmingCharacters(in: .whitespaces) } }; continue }
            rows.append(line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init))
        }
        return (header, rows)
    }

    /// Whether `answer` states `expected` as a whole number or date (not as part of a longer one: 15.1 is not 15.10).
    static func states(_ answer: String, _ expected: String) -> Bool {
        var search = answer.startIndex..<answer.endIndex
        while let r = answer.range(of: expected, range: search) {
            let before = r.lowerBound == answer.startIndex ? nil : answer[answer.index(before: r.lowerBound)]
            let after = r.upperBound == answer.endIndex ? nil : answer[r.upperBound]
            if !(before?.isNumber ?? false) && !(after?.isNumber ?? false) && !(after == "." && answer[answer.index(after: r.upperBound)...].first?.isNumber == true) { return true }
            search = r.upperBound..<answer.endIndex
        }
        return false
    }

    func run() throws {
        let (embedder, name) = try options.embedder()
        let store = try options.open(embedder: embedder, name: name)
        let (header, factRows) = try Self.rows(facts)
        guard header.count >= 2, factRows.allSatisfy({ $0.count == header.count }) else { throw AttendError("\(facts): expected a '# page<TAB>field...' header and that many columns on every line") }
        let fields = Array(header.dropFirst()).map { $0.split(separator: " ").first.map(String.init) ?? $0 }
        var values: [String: JSONValue] = [:]
        for source in try store.sources() {
            if let v = try store.export(source: source)?.record.value { values[(source as NSString).lastPathComponent] = try? JSONValue.parse(v) }
        }
        print("\(values.count) documents with values in \(options.index)")
        var right = [Int](repeating: 0, count: fields.count)
        for row in factRows {
            let value = values[row[0]]
            for (i, field) in fields.enumerated() where value?[field]?.stringValue == row[i + 1] { right[i] += 1 }
        }
        for (i, field) in fields.enumerated() { print(String(format: "extracted %-14@ %d/%d right (%.0f%%)", field, right[i], factRows.count, 100 * Double(right[i]) / Double(factRows.count))) }

        let (_, questionRows) = try Self.rows(questions)
        let lm = try ModelLocator.languageModel(model)
        let retriever = Retriever(store: store) { try embedder.encode([$0]).toArray() }
        for useValues in [false, true] {
            var answerer = Answerer(retriever: retriever, model: lm.model, tokenizer: lm.tokenizer, template: ChatTemplate(ggufTemplate: lm.chatTemplate))
            answerer.top = top
            answerer.useValues = useValues
            answerer.options.maxTokens = maxTokens
            answerer.options.repetitionPenalty = 1.1
            var correct = 0, promptTokens = 0, retrieved = 0
            let started = Date()
            for row in questionRows {
                guard row.count == 3 else { throw AttendError("\(questions): expected question<TAB>answer<TAB>page lines") }
                let answer = try answerer.answer(row[0])
                if Self.states(answer.text, row[1]) { correct += 1 }
                if answer.prompt.sources.contains(where: { ($0.chunk.source as NSString).lastPathComponent == row[2] }) { retrieved += 1 }
                promptTokens += answer.generation.promptTokens
            }
            let n = questionRows.count
            print(String(format: "answers from %-17@ %d/%d right (%.1f%%); the page that says it was in the prompt for %d; %.0f prompt tokens and %.2f s per question",
                         useValues ? "structured values" : "raw passages", correct, n, 100 * Double(correct) / Double(n), retrieved,
                         Double(promptTokens) / Double(n), Date().timeIntervalSince(started) / Double(n)))
        }
    }
}
