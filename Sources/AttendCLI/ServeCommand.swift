import ArgumentParser
import AttendLM
import AttendModels
import AttendServer
import AttendTensor
import Foundation

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the OpenAI HTTP API: /v1/chat/completions (streaming, JSON schemas), /v1/completions, /v1/embeddings, /v1/models, /health, /tokenize.")
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Chat model (GGUF file, Hugging Face folder or short name).") var model = "SmolLM2-135M-Instruct"
    @Option(name: .customLong("embedding-model"), help: "Sentence-embedding model for /v1/embeddings ('none' serves none).") var embeddingModel = "all-MiniLM-L6-v2"
    @Option(name: .customLong("max-body"), help: "Largest request body in bytes.") var maxBody = 4 << 20

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard (1_024...(1 << 30)).contains(maxBody) else { throw ValidationError("--max-body must be in 1024...\(1 << 30), got \(maxBody)") }
        guard !host.isEmpty else { throw ValidationError("--host is empty") }
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
        let server = OpenAIServer(models: served)
        server.maxBodyBytes = maxBody
        FileHandle.standardError.write("attend serve: \(served.chatName)\(served.embeddingName.map { " and \($0)" } ?? "") on http://\(host):\(port)\n".data(using: .utf8)!)
        try await server.run(host: host, port: port)
    }
}
