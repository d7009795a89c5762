import ArgumentParser
import AttendModels
import AttendTensor
import Foundation

struct EmbeddingModelOptions: ParsableArguments {
    @Option(help: "Sentence-transformers model: a folder, a Hugging Face cache repo id, or a short name.") var model = "all-MiniLM-L6-v2"
    @Option(name: .customLong("batch-size"), help: "Sentences per forward pass.") var batchSize = 32
    @Option(help: "float32 (sentence-transformers' vectors) or int8 (faster linear layers, cosine about 0.99 to float32).")
    var precision: SentenceEmbedder.Precision = .float32

    func validate() throws {
        try Require.count(batchSize, "--batch-size", 1...65_536)
    }

    func load() throws -> SentenceEmbedder {
        let embedder = try ModelLocator.sentenceEmbedder(model)
        embedder.precision = precision
        return embedder
    }
}

extension SentenceEmbedder.Precision: ExpressibleByArgument {}

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed", abstract: "Sentence embeddings (BERT / MiniLM): one line of numbers per sentence.")
    @OptionGroup var modelOptions: EmbeddingModelOptions
    @Option(help: "Read sentences from this file, one per line.") var file: String?
    @Option(name: .shortAndLong, help: "Write the vectors here (word2vec text format, the sentence index as the word).") var output: String?
    @Argument(help: "Sentences.") var sentences: [String] = []

    func validate() throws {
        if let output { try OutputPath.check(output, isNotInput: (file.map { [$0] } ?? []) + [modelOptions.model]) }
    }

    func run() throws {
        var all = sentences
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw AttendError("\(file): no such file or not UTF-8") }
            all += text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        }
        guard !all.isEmpty else { throw ValidationError("give sentences as arguments or --file") }
        let embedder = try modelOptions.load()
        let started = Date()
        let vectors = embedder.embed(all, batchSize: modelOptions.batchSize)
        let seconds = Date().timeIntervalSince(started)
        let d = vectors.shape[1], v = vectors.toArray()
        let lines = (0..<all.count).map { i in (0..<d).map { String(v[i * d + $0]) }.joined(separator: " ") }
        if let output {
            let body = "\(all.count) \(d)\n" + lines.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: "\n") + "\n"
            try AtomicFile.write(Data(body.utf8), to: output)
            FileHandle.standardError.write(String(format: "%d sentences in %.2f s (%.1f sentences/s); wrote %@\n", all.count, seconds,
                                                  Double(all.count) / seconds, output).data(using: .utf8)!)
        } else {
            lines.forEach { print($0) }
        }
    }
}

struct SimilarityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "similarity", abstract: "Cosine similarity matrix of sentence embeddings.")
    @OptionGroup var modelOptions: EmbeddingModelOptions
    @Argument(help: "Two or more sentences.") var sentences: [String]

    func validate() throws { guard sentences.count >= 2 else { throw ValidationError("give at least two sentences") } }

    func run() throws {
        let embedder = try modelOptions.load()
        let e = embedder.embed(sentences, batchSize: modelOptions.batchSize)
        let unit = embedder.normalize ? e : withNoGrad { e * (e * e).sum(axes: [1], keepDims: true).rsqrt() }
        let sim = withNoGrad { unit.matmul(unit.transposed(0, 1)) }.toArray()
        let n = sentences.count
        for (i, s) in sentences.enumerated() {
            let row = (0..<n).map { String(format: "%6.3f", sim[i * n + $0]) }.joined(separator: " ")
            print("\(row)  \(s.prefix(60))")
        }
    }
}
