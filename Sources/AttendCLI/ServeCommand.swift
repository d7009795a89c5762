// Only in an attend built with the Server trait (the default): the HTTP stack is what takes longest to build.
#if Server
import ArgumentParser
import AttendLM
import AttendModels
import AttendKnowledge
import AttendSafety
import AttendServer
import AttendTensor
import Foundation

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the OpenAI HTTP API and a chat page: /v1/chat/completions (streaming, JSON schemas, retrieval with citations), /v1/completions, /v1/embeddings, /v1/moderations, /v1/models, /metrics, /health, /tokenize, and / (the page).")
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Chat model (GGUF file, Hugging Face folder or short name).") var model = "SmolLM2-135M-Instruct"
    @Option(name: .customLong("embedding-model"), help: "Sentence-embedding model for /v1/embeddings ('none' serves none).") var embeddingModel = "all-MiniLM-L6-v2"
    @Option(name: .customLong("max-body"), help: "Largest request body in bytes.") var maxBody = 4 << 20
    @Option(help: "Also serve retrieval-augmented chat over this index (an SQLite file or a postgres:// URL from `attend index add`) as the model MODEL+INDEXNAME, with the sources returned as citations.") var index: String?
    @Option(help: "Passages retrieved per question with --index.") var top = 4
    @OptionGroup var safety: SafetyOptions
    @Option(name: .customLong("api-key-file"), help: "A file of API keys, one per line; requests must then send 'Authorization: Bearer KEY'. The variable ATTEND_API_KEY also gives one.") var apiKeyFile: String?
    @Option(help: "The origin allowed to call from a browser page elsewhere (CORS), such as https://example.com, or '*' for any.") var cors: String?
    @Option(name: .customLong("max-queue"), help: "Requests waiting for the model at once; more get 429.") var maxQueue = 64
    @Option(help: "Seconds a request may take, waiting included.") var timeout: Double = 600
    @Option(name: .customLong("prompt-cache"), help: "Keep the keys and values of this many finished prompts, for prompts that start the same way (a shared system prompt); 0 keeps none. Greedy answers may then differ in the last bits from a fresh read.") var promptCache = 0
    @Option(name: .customLong("max-batch"), help: "Sequences decoded together in one batch at most (continuous batching); 1 decodes one at a time.") var maxBatch = 16

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard (1_024...(1 << 30)).contains(maxBody) else { throw ValidationError("--max-body must be in 1024...\(1 << 30), got \(maxBody)") }
        guard !host.isEmpty else { throw ValidationError("--host is empty") }
        guard (1...100).contains(top) else { throw ValidationError("--top must be in 1...100, got \(top)") }
        guard (0...64).contains(promptCache) else { throw ValidationError("--prompt-cache must be in 0...64, got \(promptCache)") }
        guard (1...256).contains(maxBatch) else { throw ValidationError("--max-batch must be in 1...256, got \(maxBatch)") }
        guard (1...100_000).contains(maxQueue) else { throw ValidationError("--max-queue must be in 1...100000, got \(maxQueue)") }
        guard timeout.isFinite, timeout >= 1, timeout <= 86_400 else { throw ValidationError("--timeout must be 1 to 86400 seconds, got \(timeout)") }
        if let origin = cors, origin != "*" && !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) || cors?.hasSuffix("/") == true {
            throw ValidationError("--cors takes '*' or an origin such as https://example.com, got '\(origin)'")
        }
        if index != nil, embeddingModel == "none" { throw ValidationError("--index needs an embedding model (the one the index was built with), not --embedding-model none") }
    }

    func run() async throws {
        let lm = try ModelLocator.languageModel(model)
        // The name clients send: the short name as given, or a file's or folder's name without its extension.
        let chatName = model.contains("/") ? ((model as NSString).lastPathComponent as NSString).deletingPathExtension : model
        var served = ServedModels(chatName: chatName, model: lm.model, tokenizer: lm.tokenizer, template: ChatTemplate(ggufTemplate: lm.chatTemplate), addBos: lm.addBos)
        if embeddingModel != "none" {
            let embedder = try ModelLocator.sentenceEmbedder(embeddingModel)
            served.embeddingName = embeddingModel
            served.embed = { embedder.embed($0, batchSize: 32) }
            served.embeddingTokens = { embedder.tokenizer.encode($0, maxLength: embedder.maxLength).count }
        }
        served.safety = try safety.stage()
        if let index {
            let path = try ModelLocator.locate(embeddingModel, kind: .sentenceEmbedder)
            let embedder = try SentenceEmbedder.load(directory: path)
            let name = (path as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? embeddingModel
            let store = try Knowledge.openExisting(index, settings: IndexSettings(embeddingModel: name, dimension: embedder.dimension))
            var answerer = Answerer(retriever: Retriever(store: store) { try embedder.encode([$0]).toArray() },
                                    model: lm.model, tokenizer: lm.tokenizer, template: served.template)
            answerer.top = top
            served.groundedName = chatName + "+" + (KnowledgeStores.isPostgres(index) ? "rag" : ((index as NSString).lastPathComponent as NSString).deletingPathExtension)
            served.ground = { messages in
                let question = messages.last!.content
                let (prompt, _) = try answerer.ground(question, history: Array(messages.dropLast()).filter { $0.role != "system" })
                let citations: [[String: Any]] = prompt.sources.enumerated().map { i, hit in
                    ["number": i + 1, "source": hit.chunk.source, "anchor": hit.chunk.anchor as Any, "title": hit.chunk.title,
                     "heading": hit.chunk.heading, "text": hit.chunk.text]
                }
                return (prompt.ids, citations)
            }
        }
        let server = OpenAIServer(models: served, maxBatch: maxBatch, cachedPrompts: promptCache)
        server.options.maxBodyBytes = maxBody
        server.options.maxQueue = maxQueue
        server.options.requestTimeout = timeout
        server.options.corsOrigin = cors
        var keys = Set<String>()
        if let apiKeyFile {
            guard let text = try? String(contentsOfFile: apiKeyFile, encoding: .utf8) else { throw ValidationError("--api-key-file \(apiKeyFile): cannot read it as UTF-8 text") }
            keys.formUnion(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") })
            guard !keys.isEmpty else { throw ValidationError("--api-key-file \(apiKeyFile): holds no key") }
        }
        if let key = ProcessInfo.processInfo.environment["ATTEND_API_KEY"], !key.isEmpty { keys.insert(key) }
        for key in keys where key.count < 8 || key.contains(where: { $0.isWhitespace }) {
            throw ValidationError("an API key must be at least 8 characters without spaces (got one of \(key.count) characters)")
        }
        server.options.apiKeys = keys
        let extras = [index.map { "index \($0)" }, safety.safety.map { "safety policy \($0)" }, keys.isEmpty ? nil : "\(keys.count) API key(s)"].compactMap { $0 }
        FileHandle.standardError.write("attend serve: \(served.chatName)\(served.embeddingName.map { " and \($0)" } ?? "")\(extras.isEmpty ? "" : " (" + extras.joined(separator: ", ") + ")") on http://\(host):\(port)\n".data(using: .utf8)!)
        try await server.run(host: host, port: port)
    }
}
#endif
