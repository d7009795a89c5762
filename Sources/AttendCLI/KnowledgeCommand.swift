import ArgumentParser
import AttendKnowledge
#if PostgreSQL
import AttendKnowledgePostgres
#endif
import AttendLM
import AttendModels
import AttendSafety
import AttendTensor
import Foundation

/// The embedding model and the index it goes with: `INDEX` is an SQLite file (a `postgres://` URL names a
/// PostgreSQL + pgvector server).
struct IndexOptions: ParsableArguments {
    @Argument(help: "The index: a path to an SQLite file, or a postgres://USER@HOST:PORT/DATABASE[?schema=NAME] URL (PostgreSQL + pgvector); created on first add.") var index: String
    @Option(name: .customLong("embedding-model"), help: "Sentence-transformers model: a folder, a hub repo id or a short name.") var embeddingModel = "all-MiniLM-L6-v2"
    @Option(name: .customLong("embedding-batch"), help: "Passages per embedding forward pass.") var embeddingBatch = 32
    // int8 by default here: it indexes the manual 2.0x faster (docs/BENCHMARKS.md, "Ingestion") and retrieves as well
    // ("Retrieval quality"); its vectors stay within cosine 0.988 of float32, so an index built either way answers
    // queries embedded either way.
    @Option(name: .customLong("embedding-precision"), help: "int8 or float32: how the embedder's linear layers multiply (int8 is faster and retrieves as well; the two kinds of vectors mix).")
    var embeddingPrecision: SentenceEmbedder.Precision = .int8

    func validate() throws {
        guard (1...4096).contains(embeddingBatch) else { throw ValidationError("--embedding-batch must be in 1...4096, got \(embeddingBatch)") }
        try Knowledge.checkLocation(index)
    }

    func embedder() throws -> (SentenceEmbedder, name: String) {
        let path = try ModelLocator.locate(embeddingModel, kind: .sentenceEmbedder)
        let embedder = try SentenceEmbedder.load(directory: path)
        embedder.precision = embeddingPrecision
        return (embedder, (path as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? embeddingModel)
    }

    func embed(_ embedder: SentenceEmbedder) -> ([String]) throws -> Tensor {
        { [embeddingBatch] texts in embedder.embed(texts, batchSize: embeddingBatch) }
    }

    /// An existing index, checked against the embedder.
    func open(embedder: SentenceEmbedder, name: String) throws -> any KnowledgeStore {
        try Knowledge.openExisting(index, settings: IndexSettings(embeddingModel: name, dimension: embedder.dimension))
    }
}

struct ChunkingOptions: ParsableArguments {
    @Option(name: .customLong("chunk-tokens"), help: "Tokens per chunk at most (the embedder's tokens; at most its max length).") var chunkTokens = 200
    @Option(help: "Tokens of overlap between neighbouring chunks.") var overlap = 32
    @Option(name: .customLong("hnsw-m"), help: "HNSW links per node.") var m = 16
    @Option(name: .customLong("ef-construction"), help: "HNSW candidates while inserting.") var efConstruction = 200

    func validate() throws {
        guard chunkTokens >= 8 else { throw ValidationError("--chunk-tokens must be at least 8, got \(chunkTokens)") }
        guard overlap >= 0 && overlap < chunkTokens else { throw ValidationError("--overlap must be in 0..<\(chunkTokens), got \(overlap)") }
        guard (2...512).contains(m) else { throw ValidationError("--hnsw-m must be in 2...512, got \(m)") }
        guard efConstruction >= 1 else { throw ValidationError("--ef-construction must be at least 1, got \(efConstruction)") }
    }
}

enum Knowledge {
    /// The store `location` names: a `postgres://` URL (PostgreSQL + pgvector), or else a path to an SQLite file.
    /// With `settings` nil the index must exist. An `attend` built without the PostgreSQL trait (the README's
    /// main job builds without it, to build in a third of the time) refuses a URL and says how to get one that takes it.
    static func open(_ location: String, settings: IndexSettings?) throws -> any KnowledgeStore {
        #if PostgreSQL
        return try KnowledgeStores.open(location, settings: settings)
        #else
        try checkLocation(location)
        return try SQLiteKnowledgeStore(path: location, settings: settings)
        #endif
    }

    /// Checks a `postgres://` URL's form before anything runs (a path passes).
    static func checkLocation(_ location: String) throws {
        guard KnowledgeStores.isPostgres(location) else { return }
        #if PostgreSQL
        _ = try PostgresLocation(url: location)
        #else
        throw ValidationError("\(location): this attend was built without PostgreSQL support (swift build --disable-default-traits); build it with `swift build -c release` to use a postgres:// index")
        #endif
    }

    /// Opens or creates the index and adds `paths`, printing what happened. Returns the store.
    static func ingest(_ options: IndexOptions, chunking: ChunkingOptions, paths: [String], embedder: SentenceEmbedder, name: String,
                       quiet: Bool = false, extractor: ValueExtractor? = nil) throws -> any KnowledgeStore {
        guard chunking.chunkTokens <= embedder.maxLength else {
            throw ValidationError("--chunk-tokens \(chunking.chunkTokens) is more than \(name) embeds (\(embedder.maxLength) tokens)")
        }
        let settings = IndexSettings(embeddingModel: name, dimension: embedder.dimension, metric: embedder.normalize ? .cosine : .euclidean,
                                     chunkTokens: chunking.chunkTokens, overlapTokens: chunking.overlap, m: chunking.m, efConstruction: chunking.efConstruction)
        let store = try Knowledge.open(options.index, settings: settings)
        let tokenizer = embedder.tokenizer
        // Tokens without [CLS] and [SEP], which the embedder adds once per chunk (chunk sizes leave room for them).
        let chunker = TextChunker(maxTokens: min(store.settings.chunkTokens, embedder.maxLength - 2), overlapTokens: store.settings.overlapTokens) {
            tokenizer.encode($0, maxLength: 1 << 20).count - 2
        }
        var ingestor = Ingestor(store: store, chunker: chunker, embed: options.embed(embedder))
        ingestor.extractor = extractor
        let report = try ingestor.add(paths: paths)
        if report.extracted > 0 {
            FileHandle.standardError.write(String(format: "filled %d values in %.1f s (%.1f s each)\n", report.extracted, report.extractSeconds,
                                                  report.extractSeconds / Double(report.extracted)).data(using: .utf8)!)
        }
        for f in report.failed { FileHandle.standardError.write("skipped \(f.source): \(f.reason)\n".data(using: .utf8)!) }
        let (documents, chunks) = try store.counts()
        if !quiet || report.added + report.updated > 0 {
            FileHandle.standardError.write(String(
                format: "%@: %d added, %d updated, %d unchanged, %d skipped; %d chunks (%d tokens) in %.1f s (%.1f files/s, %.1f chunks/s, %.0f tokens/s; read + chunk %.1f s, embed %.1f s, write %.1f s); index holds %d documents, %d chunks\n",
                options.index, report.added, report.updated, report.unchanged, report.failed.count, report.chunks, report.tokens, report.seconds,
                Double(report.added + report.updated) / max(report.seconds, 1e-9), Double(report.chunks) / max(report.seconds, 1e-9),
                Double(report.tokens) / max(report.seconds, 1e-9), report.readSeconds, report.embedSeconds, report.writeSeconds,
                documents, chunks).data(using: .utf8)!)
        }
        return store
    }

    /// An index that must already exist (a file path or a postgres:// URL).
    static func openExisting(_ location: String, settings: IndexSettings? = nil) throws -> any KnowledgeStore {
        if !KnowledgeStores.isPostgres(location) && !FileManager.default.fileExists(atPath: location) {
            throw AttendError("\(location): no such index (create it with `attend index add \(location) PATH...`)")
        }
        return try Knowledge.open(location, settings: settings)
    }

    static func filter(source: String?, metadata: [String]) throws -> SearchFilter {
        var f = SearchFilter(sourcePattern: source)
        for pair in metadata { let (k, v) = try SearchFilter.metadataPair(pair); f.metadata[k] = v }
        return f
    }
}

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index", abstract: "Build and maintain a document index for search and retrieval-augmented answers.",
        subcommands: [Add.self, Remove.self, List.self, Copy.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add files or folders (.html, .md, .txt); changed files replace their chunks, unchanged ones are skipped.")
        @OptionGroup var options: IndexOptions
        @OptionGroup var chunking: ChunkingOptions
        @Argument(help: "Files and folders to add.") var paths: [String]
        @Option(help: "A JSON schema: a language model fills it from each document (decoding constrained to the schema), and the value is stored beside the chunks (`attend ask --use-values` answers from it).")
        var extract: String?
        @Option(name: .customLong("extract-model"), help: "The language model that fills --extract's schema.") var extractModel = "SmolLM2-135M-Instruct"

        func validate() throws {
            guard !paths.isEmpty else { throw ValidationError("give at least one file or folder to add") }
            if let extract {
                guard let text = try? String(contentsOfFile: extract, encoding: .utf8) else { throw ValidationError("--extract \(extract): cannot be read as UTF-8 text") }
                do { _ = try OutputConstraint.jsonSchema(text).compile() } catch { throw ValidationError("--extract \(extract): \(error)") }
            }
        }

        func run() throws {
            let (embedder, name) = try options.embedder()
            var extractor: ValueExtractor? = nil
            if let extract {
                let lm = try ModelLocator.languageModel(extractModel)
                extractor = try ValueExtractor(schema: try String(contentsOfFile: extract, encoding: .utf8), model: lm.model, tokenizer: lm.tokenizer,
                                               template: ChatTemplate(ggufTemplate: lm.chatTemplate))
            }
            _ = try Knowledge.ingest(options, chunking: chunking, paths: paths, embedder: embedder, name: name, extractor: extractor)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove documents (by path; a folder removes everything under it).")
        @Argument(help: "The index: an SQLite file or a postgres:// URL.") var index: String
        @Argument(help: "Documents or folders to remove.") var paths: [String]

        func run() throws {
            let store = try Knowledge.openExisting(index)
            let sources = try store.sources()
            var removed = 0
            for path in paths {
                let p = (path as NSString).standardizingPath
                let matches = sources.filter { $0 == p || $0.hasPrefix(p.hasSuffix("/") ? p : p + "/") }
                if matches.isEmpty { FileHandle.standardError.write("\(path): not in \(index)\n".data(using: .utf8)!) }
                for source in matches where try store.remove(source: source) { removed += 1 }
            }
            try store.flush()
            let (documents, chunks) = try store.counts()
            print("removed \(removed) documents; \(index) holds \(documents) documents, \(chunks) chunks")
            if removed == 0 { throw ExitCode(1) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The index's settings and documents.")
        @Argument(help: "The index: an SQLite file or a postgres:// URL.") var index: String

        func run() throws {
            let store = try Knowledge.openExisting(index)
            let s = store.settings, (documents, chunks) = try store.counts()
            print("\(index): \(documents) documents, \(chunks) chunks; embedded with \(s.embeddingModel) (\(s.dimension) dimensions, \(s.metric.rawValue)); chunks of \(s.chunkTokens) tokens, overlap \(s.overlapTokens); HNSW M \(s.m), ef_construction \(s.efConstruction)")
            for source in try store.sources() { print(source) }
        }
    }
}

extension IndexCommand {
    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy an index into another store (e.g. an SQLite file into PostgreSQL), chunks and embeddings as they are, with no re-embedding.")
        @Argument(help: "The index to read: an SQLite file or a postgres:// URL.") var from: String
        @Argument(help: "The index to write (created with the source's settings; documents already there with the same hash are skipped).") var to: String

        func validate() throws {
            guard from != to else { throw ValidationError("the source and the destination are the same index: \(from)") }
            for location in [from, to] { try Knowledge.checkLocation(location) }
            if !KnowledgeStores.isPostgres(from) && !KnowledgeStores.isPostgres(to),
               (from as NSString).standardizingPath == (to as NSString).standardizingPath {
                throw ValidationError("the source and the destination are the same file: \(from)")
            }
        }

        func run() throws {
            let source = try Knowledge.openExisting(from)
            let destination = try Knowledge.open(to, settings: source.settings)
            let report = try KnowledgeCopier.copy(from: source, to: destination)
            let (documents, chunks) = try destination.counts()
            print(String(format: "%@ -> %@: %d documents copied (%d chunks), %d unchanged, in %.1f s; %@ holds %d documents, %d chunks",
                         source.location, destination.location, report.copied, report.chunks, report.unchanged, report.seconds,
                         destination.location, documents, chunks))
        }
    }
}

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Search an index: vector, BM25 or hybrid (reciprocal rank fusion).")
    @OptionGroup var options: IndexOptions
    @Argument(help: "The query.") var query: String
    @Option(help: "Results to print.") var top = 5
    @Option(help: "vector, text (BM25) or hybrid.") var mode: String = "hybrid"
    @Option(help: "Only sources matching this glob (e.g. '*/sql-*.html').") var source: String?
    @Option(name: .customLong("where"), help: "Only documents whose metadata key equals the value: key=value (repeatable).") var metadata: [String] = []
    @Flag(help: "Score every chunk instead of walking the HNSW graph.") var exact = false
    @Option(help: "HNSW search beam (at least the number of results).") var ef = 64
    @Flag(help: "One JSON object per hit: source, anchor, title, heading, score, text.") var json = false

    func validate() throws {
        guard (1...1000).contains(top) else { throw ValidationError("--top must be in 1...1000, got \(top)") }
        guard (1...100_000).contains(ef) else { throw ValidationError("--ef must be in 1...100000, got \(ef)") }
        guard RetrievalMode(rawValue: mode) != nil else { throw ValidationError("--mode must be vector, text or hybrid, got '\(mode)'") }
        guard !query.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("the query is empty") }
    }

    func run() throws {
        let (embedder, name) = try options.embedder()
        let store = try options.open(embedder: embedder, name: name)
        var retriever = Retriever(store: store) { try embedder.encode([$0]).toArray() }
        retriever.ef = ef
        let hits = try retriever.search(query, top: top, mode: RetrievalMode(rawValue: mode)!, filter: try Knowledge.filter(source: source, metadata: metadata), exact: exact)
        for (i, hit) in hits.enumerated() {
            let c = hit.chunk
            if json {
                var object: [String: Any] = ["source": c.source, "title": c.title, "heading": c.heading, "score": hit.score, "text": c.text, "chunk": c.id, "rank": i + 1]
                if let a = c.anchor { object["anchor"] = a }
                if let r = hit.vectorRank { object["vector_rank"] = r }
                if let r = hit.textRank { object["text_rank"] = r }
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "%d. %.4f  %@", i + 1, hit.score, c.citation))
                print("   \(c.title)\(c.heading.isEmpty || c.heading == c.title ? "" : " — " + c.heading)")
                print("   \(c.text.replacingOccurrences(of: "\n", with: " ").prefix(240))")
            }
        }
        if hits.isEmpty && !json { print("no results") }
    }
}

struct AskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ask", abstract: "Answer a question from an index: retrieve passages, put them numbered into the prompt, generate, cite.")
    @OptionGroup var options: IndexOptions
    @OptionGroup var chunking: ChunkingOptions
    @Argument(help: "The question.") var question: String
    @Option(name: .customLong("documents"), help: "Add (or refresh) these files or folders first; unchanged files are skipped by hash (repeatable).")
    var documents: [String] = []
    @Option(help: "Language model (GGUF file, Hugging Face folder or short name).") var model = "SmolLM2-135M-Instruct"
    @Option(help: "Passages to retrieve.") var top = 4
    @Option(help: "vector, text (BM25) or hybrid.") var mode: String = "hybrid"
    @Option(help: "Only sources matching this glob.") var source: String?
    @Option(name: .customLong("max-tokens"), help: "Answer tokens at most.") var maxTokens = 200
    @Option(name: .customLong("repetition-penalty"), help: "Divides the logits of tokens already seen (small models loop without it).") var repetitionPenalty: Float = 1.2
    @Option(help: "0 = greedy.") var temperature: Float = 0
    @Option(name: .customLong("prompt-budget"), help: "Tokens the prompt may use (default: the context minus --max-tokens).") var promptBudget: Int?
    @Flag(help: "Print the answer and its sources as one JSON object.") var json = false
    @Flag(name: .customLong("show-prompt"), help: "Print the prompt before the answer.") var showPrompt = false
    @Flag(name: .customLong("use-values"), help: "Put each source's structured value (from `index add --extract`) in the prompt instead of its passage, where it has one.") var useValues = false
    @OptionGroup var safety: SafetyOptions

    func validate() throws {
        guard (1...100).contains(top) else { throw ValidationError("--top must be in 1...100, got \(top)") }
        guard (1...100_000).contains(maxTokens) else { throw ValidationError("--max-tokens must be in 1...100000, got \(maxTokens)") }
        try Require.number(repetitionPenalty, "--repetition-penalty", 0...100, aboveLower: true)
        try Require.number(temperature, "--temperature", 0...100)
        try Require.count(promptBudget, "--prompt-budget", 64...Require.sizeLimit)
        guard RetrievalMode(rawValue: mode) != nil else { throw ValidationError("--mode must be vector, text or hybrid, got '\(mode)'") }
        guard !question.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("the question is empty") }
    }

    func run() throws {
        let (embedder, name) = try options.embedder()
        let store = documents.isEmpty ? try options.open(embedder: embedder, name: name)
            : try Knowledge.ingest(options, chunking: chunking, paths: documents, embedder: embedder, name: name, quiet: true)
        let lm = try ModelLocator.languageModel(model)
        let retriever = Retriever(store: store) { try embedder.encode([$0]).toArray() }
        var answerer = Answerer(retriever: retriever, model: lm.model, tokenizer: lm.tokenizer, template: ChatTemplate(ggufTemplate: lm.chatTemplate))
        answerer.top = top
        answerer.mode = RetrievalMode(rawValue: mode)!
        answerer.filter = SearchFilter(sourcePattern: source)
        answerer.options.maxTokens = maxTokens
        answerer.options.repetitionPenalty = repetitionPenalty
        answerer.options.temperature = temperature
        answerer.promptBudget = promptBudget
        answerer.useValues = useValues
        let stage = try safety.stage()
        let question = try SafetyOptions.screen(self.question, stage, what: "question")
        let (prompt, retrievalSeconds) = try answerer.ground(question)
        if showPrompt { print(prompt.messages.map { "\($0.role): \($0.content)" }.joined(separator: "\n\n") + "\n---") }
        let generation = try SafeGeneration.generate(model: lm.model, tokenizer: lm.tokenizer, input: LMInput(prompt.ids), options: answerer.options,
                                                     filter: SafetyOptions.filter(stage)) { if !json { print($0, terminator: ""); fflush(stdout) } }
        let answer = Answerer.Answer(text: generation.text, prompt: prompt, generation: generation, retrievalSeconds: retrievalSeconds)
        if generation.finishReason == "content_filter", !json { print("\n(the answer was stopped by the safety policy)") }
        let sources = answer.prompt.sources.map(\.chunk)
        if json {
            let object: [String: Any] = [
                "answer": answer.text, "cited": answer.citedSources,
                "sources": sources.enumerated().map { ["number": $0.offset + 1, "source": $0.element.source, "anchor": $0.element.anchor as Any,
                                                       "title": $0.element.title, "heading": $0.element.heading, "text": $0.element.text] },
                "prompt_tokens": answer.generation.promptTokens, "retrieval_seconds": answer.retrievalSeconds, "finish_reason": answer.generation.finishReason,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("\n\nSources:")
        let cited = Set(answer.citedSources)
        for (i, c) in sources.enumerated() {
            print("[\(i + 1)]\(cited.contains(i + 1) ? "*" : " ") \(c.title)\(c.heading.isEmpty || c.heading == c.title ? "" : " — " + c.heading)  \(c.citation)")
            // The passage itself: a small model's answer is only as good as it reads them, so the reader can check.
            let excerpt = c.text.replacingOccurrences(of: "\n", with: " ")
            print("     \(excerpt.prefix(320))\(excerpt.count > 320 ? "…" : "")")
        }
        fflush(stdout)
        FileHandle.standardError.write(String(format: "retrieval %.0f ms; prompt %d tokens (%.0f tokens/s); answer %d tokens (%.1f tokens/s)\n",
                                              answer.retrievalSeconds * 1000, answer.generation.promptTokens,
                                              Double(answer.generation.promptTokens) / answer.generation.promptSeconds, answer.generation.tokens.count,
                                              Double(answer.generation.tokens.count) / max(answer.generation.generationSeconds, 1e-9)).data(using: .utf8)!)
    }
}
