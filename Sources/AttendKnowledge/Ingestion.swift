// Ingestion: files and folders in, chunks with embeddings out, into a store. Unchanged files (same content hash)
// are skipped, changed ones replace their chunks, unreadable ones are named, counted and skipped. Chunks of many
// documents are embedded together (full batches keep the embedder fast) and each document is written in its own
// transaction, so a killed run loses at most the batch in flight and a rerun continues.

import AttendNN
import AttendTensor
import Foundation

/// What an ingestion did.
public struct IngestionReport: Sendable {
    public var added = 0, updated = 0, unchanged = 0
    public var failed: [(source: String, reason: String)] = []
    public var chunks = 0, tokens = 0
    public var seconds = 0.0
    /// Of which: reading, parsing and chunking; embedding; writing to the store; filling values (with `extractor`).
    public var readSeconds = 0.0, embedSeconds = 0.0, writeSeconds = 0.0, extractSeconds = 0.0
    public var extracted = 0
}

/// Adds documents to a store.
///
/// ```swift
/// let ingestor = Ingestor(store: store, chunker: chunker) { texts in try embedder.encode(texts) }
/// let report = try ingestor.add(paths: ["/usr/share/doc/postgresql-doc-15/html"])
/// ```
public struct Ingestor {
    public let store: any KnowledgeStore
    public let chunker: TextChunker
    /// Embeds a batch of passages: [count, dimension].
    public let embed: ([String]) throws -> Tensor
    /// Passages per embedding call.
    public var batchSize = 256
    public var showProgress = true
    /// Per-document metadata added to what the reader finds (title, format).
    public var metadata: [String: String] = [:]
    /// Fills each document's structured value (JSON) as it is read; the schema's hash joins the content hash, so
    /// documents read under another schema (or none) count as changed.
    public var extractor: ValueExtractor?

    public init(store: any KnowledgeStore, chunker: TextChunker, embed: @escaping ([String]) throws -> Tensor) {
        (self.store, self.chunker, self.embed) = (store, chunker, embed)
    }

    /// The documents under `paths`: files as given (whatever their extension), folders walked for .html, .htm,
    /// .md, .markdown and .txt files, in sorted order. Missing paths are reported, not thrown.
    public static func files(under paths: [String], failed: inout [(source: String, reason: String)]) -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { failed.append((path, "no such file or folder")); continue }
            guard isDirectory.boolValue else { out.append(path); continue }
            guard let walker = fm.enumerator(atPath: path) else { failed.append((path, "cannot list the folder")); continue }
            var found: [String] = []
            while let relative = walker.nextObject() as? String {
                if SourceDocument.format(ofPath: relative) != nil { found.append((path as NSString).appendingPathComponent(relative)) }
            }
            out += found.sorted()
        }
        return out
    }

    /// The text a chunk is embedded as: the page title and the section heading give the passage its context.
    public static func embeddingText(title: String, chunk: DocumentChunk) -> String {
        var head = title
        if !chunk.heading.isEmpty && chunk.heading != title { head += head.isEmpty ? chunk.heading : " — " + chunk.heading }
        return head.isEmpty ? chunk.text : head + "\n" + chunk.text
    }

    public func add(paths: [String]) throws -> IngestionReport {
        var report = IngestionReport()
        let started = Date()
        let files = Ingestor.files(under: paths, failed: &report.failed)
        // First pass: read, hash, parse, chunk; skip unchanged files. Cheap next to embedding.
        struct Pending { var record: DocumentRecord; var chunks: [DocumentChunk]; var isNew: Bool }
        var pending: [Pending] = []
        let extracting = showProgress && extractor != nil && !files.isEmpty ? ProgressBar(total: files.count, label: "extracting", unit: "files") : nil
        for file in files {
            defer { extracting?.advance(1, status: (file as NSString).lastPathComponent) }
            let source = (file as NSString).standardizingPath
            guard let data = FileManager.default.contents(atPath: file) else { report.failed.append((source, "cannot be read")); continue }
            let hash = contentHash(data) + (extractor.map { "+value:" + $0.schemaHash } ?? "")
            let stored = try store.contentHash(of: source)
            if stored == hash { report.unchanged += 1; continue }
            guard let format = SourceDocument.format(ofPath: file) else {
                report.failed.append((source, "not a document (expected .html, .htm, .md, .markdown or .txt)")); continue
            }
            do {
                let doc = try SourceDocument.parse(data, source: source, format: format)
                var meta = metadata
                meta["title"] = doc.title
                meta["format"] = format.rawValue
                var value: String? = nil
                if let extractor {
                    let started = Date()
                    value = try extractor.extract(doc)
                    report.extractSeconds += Date().timeIntervalSince(started)
                    report.extracted += 1
                }
                let record = DocumentRecord(source: source, contentHash: hash, byteCount: data.count, title: doc.title, format: format.rawValue, metadata: meta, value: value)
                pending.append(Pending(record: record, chunks: chunker.chunks(of: doc), isNew: stored == nil))
            } catch {
                report.failed.append((source, "\(error)"))
            }
        }
        report.readSeconds = Date().timeIntervalSince(started) - report.extractSeconds
        let totalChunks = pending.reduce(0) { $0 + $1.chunks.count }
        let bar = showProgress && totalChunks > 0 ? ProgressBar(total: totalChunks, label: "embedding", unit: "chunks") : nil
        // Second pass: embed in full batches across documents; write each document once all its chunks have vectors.
        var next = 0
        while next < pending.count {
            var end = next, count = 0
            while end < pending.count && (count == 0 || count + pending[end].chunks.count <= batchSize) { count += pending[end].chunks.count; end += 1 }
            let texts = pending[next..<end].flatMap { p in p.chunks.map { Ingestor.embeddingText(title: p.record.title, chunk: $0) } }
            var vectors: [[Float]] = []
            let embedStarted = Date()
            if !texts.isEmpty {
                let e = try embed(texts)
                let (n, d) = (e.shape[0], e.shape[1])
                precondition(n == texts.count, "Ingestor: the embedder returned \(n) vectors for \(texts.count) passages")
                let values = e.toArray()
                vectors = (0..<n).map { Array(values[($0 * d)..<(($0 + 1) * d)]) }
            }
            let writeStarted = Date()
            report.embedSeconds += writeStarted.timeIntervalSince(embedStarted)
            var offset = 0
            for p in pending[next..<end] {
                try store.replace(p.record, chunks: p.chunks, embeddings: Array(vectors[offset..<(offset + p.chunks.count)]))
                offset += p.chunks.count
                if p.isNew { report.added += 1 } else { report.updated += 1 }
                report.chunks += p.chunks.count
                report.tokens += p.chunks.reduce(0) { $0 + $1.tokenCount }
            }
            report.writeSeconds += Date().timeIntervalSince(writeStarted)
            bar?.advance(count, status: "\(end)/\(pending.count) files")
            next = end
            // Saving the graph now and then bounds what a killed run must re-insert when the file is next opened.
            if next == pending.count || report.chunks % (batchSize * 16) < count { try store.flush() }
        }
        try store.flush()
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}

/// Copies an index into another store: documents, chunks and embeddings as they are (no re-embedding), each
/// document in one transaction; documents the destination already holds with the same content hash are skipped,
/// so a killed copy continues when rerun.
///
/// ```swift
/// let sqlite = try SQLiteKnowledgeStore(path: "manual.sqlite", settings: nil)
/// let postgres = try KnowledgeStores.open("postgres://attend@127.0.0.1:54329/attend", settings: sqlite.settings)
/// try KnowledgeCopier.copy(from: sqlite, to: postgres)
/// ```
public enum KnowledgeCopier {
    public struct Report: Sendable { public var copied = 0, unchanged = 0, chunks = 0; public var seconds = 0.0 }

    @discardableResult
    public static func copy(from source: any KnowledgeStore, to destination: any KnowledgeStore, showProgress: Bool = true) throws -> Report {
        let (s, d) = (source.settings, destination.settings)
        guard s.embeddingModel == d.embeddingModel, s.dimension == d.dimension, s.metric == d.metric else {
            throw AttendError("\(destination.location) holds \(d.embeddingModel) embeddings (\(d.dimension), \(d.metric.rawValue)); \(source.location) holds \(s.embeddingModel) (\(s.dimension), \(s.metric.rawValue))")
        }
        var report = Report()
        let started = Date()
        let sources = try source.sources()
        let bar = showProgress && !sources.isEmpty ? ProgressBar(total: sources.count, label: "copying", unit: "documents") : nil
        for (i, name) in sources.enumerated() {
            guard let document = try source.export(source: name) else { continue }
            if try destination.contentHash(of: name) == document.record.contentHash {
                report.unchanged += 1
            } else {
                try destination.replace(document.record, chunks: document.chunks, embeddings: document.embeddings)
                report.copied += 1
                report.chunks += document.chunks.count
            }
            bar?.advance(1, status: "\(i + 1)/\(sources.count)")
            if i % 256 == 255 { try destination.flush() }
        }
        try destination.flush()
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
