// An OpenAI-compatible HTTP server on Hummingbird: chat and text completions (whole or streamed as server-sent
// events, with JSON-schema output through the generation engine's constrained decoding), embeddings (float arrays or
// base64), models, health and tokenize, errors in OpenAI's shape. The model runs on one worker thread of its own,
// requests taking turns in arrival order; the HTTP side stays on SwiftNIO's event loops and never blocks them.

import AttendLM
import AttendTensor
import AttendTokenizers
import Foundation
import Hummingbird
import NIOCore

/// What the server serves: a chat model, and optionally an embedding model.
public struct ServedModels: @unchecked Sendable {
    public var chatName: String
    public var model: any LanguageModel
    public var tokenizer: any TextTokenizer
    public var template: ChatTemplate
    public var addBos: Bool
    public var embeddingName: String?
    /// Embeds texts: [count, dimension], normalized as the model's pooling says.
    public var embed: (([String]) throws -> Tensor)?
    public var embeddingTokens: ((String) -> Int)?

    public init(chatName: String, model: any LanguageModel, tokenizer: any TextTokenizer, template: ChatTemplate, addBos: Bool,
                embeddingName: String? = nil, embed: (([String]) throws -> Tensor)? = nil, embeddingTokens: ((String) -> Int)? = nil) {
        (self.chatName, self.model, self.tokenizer, self.template, self.addBos) = (chatName, model, tokenizer, template, addBos)
        (self.embeddingName, self.embed, self.embeddingTokens) = (embeddingName, embed, embeddingTokens)
    }
}

/// Runs model work one job at a time on a thread of its own, so that CPU-bound decoding never holds an event loop
/// or a task executor.
final class ModelWorker: @unchecked Sendable {
    private let queue = DispatchQueue(label: "attend.model", qos: .userInitiated)

    func run<T>(_ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// The OpenAI-compatible server.
///
/// ```swift
/// let server = OpenAIServer(models: served)
/// try await server.run(host: "127.0.0.1", port: 8080)
/// // curl http://127.0.0.1:8080/v1/chat/completions -d '{"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Hi"}]}'
/// ```
public final class OpenAIServer: @unchecked Sendable {
    public let models: ServedModels
    /// Request bodies larger than this get 413.
    public var maxBodyBytes = 4 << 20
    let worker = ModelWorker()
    let started = Int(Date().timeIntervalSince1970)
    private let counterLock = NSLock()
    private var counter = 0

    /// The vocabulary's bytes, read once for every request that carries a schema.
    private let tokenBytes: [[UInt8]]

    public init(models: ServedModels) {
        self.models = models
        tokenBytes = GrammarConstraint.tokenBytes(of: models.tokenizer)
    }

    func nextID(_ prefix: String) -> String {
        counterLock.lock(); defer { counterLock.unlock() }
        counter += 1
        return "\(prefix)-\(started)-\(counter)"
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("health") { _, _ in Self.json(["status": "ok"]) }
        router.get("v1/models") { [self] _, _ in
            var data: [[String: Any]] = [["id": models.chatName, "object": "model", "created": started, "owned_by": "attend"]]
            if let e = models.embeddingName { data.append(["id": e, "object": "model", "created": started, "owned_by": "attend"]) }
            return Self.json(["object": "list", "data": data])
        }
        router.post("v1/chat/completions") { [self] request, _ in try await handle(request) { try await self.chat($0) } }
        router.post("v1/completions") { [self] request, _ in try await handle(request) { try await self.completion($0) } }
        router.post("v1/embeddings") { [self] request, _ in try await handle(request) { try await self.embeddings($0) } }
        router.post("tokenize") { [self] request, _ in
            try await handle(request) { body in
                guard let content = try body.string("content") else { throw APIError.invalid("'content' must be a string", param: "content") }
                return Self.json(["tokens": try self.models.tokenizer.encode(content, allowSpecial: false).map(Int.init)])
            }
        }
        return router
    }

    /// Runs until the process is stopped.
    public func run(host: String, port: Int) async throws {
        let app = Application(router: router(), configuration: .init(address: .hostname(host, port: port), serverName: "attend"))
        try await app.runService()
    }

    // MARK: Handlers

    private func handle(_ request: Request, _ body: (RequestObject) async throws -> Response) async throws -> Response {
        do {
            let buffer: ByteBuffer
            do { buffer = try await request.body.collect(upTo: maxBodyBytes) } catch {
                throw APIError(status: 413, message: "the request body is larger than \(maxBodyBytes) bytes", type: "invalid_request_error")
            }
            return try await body(try RequestObject(body: Data(buffer.readableBytesView)))
        } catch let e as APIError {
            return Self.json(e.json, status: e.status)
        } catch {
            return Self.json(APIError(status: 500, message: "\(error)", type: "server_error").json, status: 500)
        }
    }

    private func checkModel(_ body: RequestObject, _ served: String?) throws {
        guard let name = try body.string("model") else { throw APIError.invalid("'model' is required", param: "model") }
        guard let served, name == served else {
            throw APIError(status: 404, message: "the model '\(name)' is not served here (this server serves \([models.chatName, models.embeddingName].compactMap { $0 }.joined(separator: ", ")))",
                           type: "invalid_request_error", param: "model", code: "model_not_found")
        }
    }

    func chat(_ body: RequestObject) async throws -> Response {
        try checkModel(body, models.chatName)
        let messages = try body.messages()
        let text = models.template.render(messages)
        let ids = try models.tokenizer.encode(text, allowSpecial: true)
        return try await complete(body, prompt: ids, chat: true)
    }

    func completion(_ body: RequestObject) async throws -> Response {
        try checkModel(body, models.chatName)
        guard let prompt = try body.string("prompt") else { throw APIError.invalid("'prompt' must be a string", param: "prompt") }
        var ids = try models.tokenizer.encode(prompt, allowSpecial: false)
        if models.addBos, let bos = models.tokenizer.bosId { ids.insert(bos, at: 0) }
        return try await complete(body, prompt: ids, chat: false)
    }

    /// Generates for either endpoint, whole or streamed.
    private func complete(_ body: RequestObject, prompt: [Int32], chat: Bool) async throws -> Response {
        let options = try body.samplingOptions(contextLength: models.model.contextLength, promptTokens: prompt.count)
        let stream = try body.bool("stream") ?? false
        let includeUsage = ((body.fields["stream_options"] as? [String: Any])?["include_usage"] as? Bool) ?? false
        let id = nextID(chat ? "chatcmpl" : "cmpl"), created = Int(Date().timeIntervalSince1970)
        let object = chat ? "chat.completion" : "text_completion"
        let models = self.models
        let constraint = try options.constraint.map { GrammarConstraint(grammar: try $0.compile(), tokenBytes: tokenBytes, eosId: models.tokenizer.eosId) }
        @Sendable func usage(_ r: GenerationResult) -> [String: Any] {
            ["prompt_tokens": r.promptTokens, "completion_tokens": r.tokens.count, "total_tokens": r.promptTokens + r.tokens.count]
        }
        guard stream else {
            let result = try await worker.run {
                try Generation.generate(model: models.model, tokenizer: models.tokenizer, input: LMInput(prompt), options: options, constraint: constraint)
            }
            let choice: [String: Any] = chat
                ? ["index": 0, "message": ["role": "assistant", "content": result.text], "finish_reason": result.finishReason, "logprobs": NSNull()]
                : ["index": 0, "text": result.text, "finish_reason": result.finishReason, "logprobs": NSNull()]
            return Self.json(["id": id, "object": object, "created": created, "model": models.chatName, "choices": [choice], "usage": usage(result)])
        }
        // Streamed: the worker pushes text pieces; the response body writes them as server-sent events. A client that
        // goes away makes the next write fail, which cancels the decoding loop.
        let (pieces, continuation) = AsyncThrowingStream<Generation.StreamEvent, Error>.makeStream()
        let cancelled = CancelFlag()
        let worker = self.worker
        Task {
            do {
                let result = try await worker.run {
                    try Generation.generate(model: models.model, tokenizer: models.tokenizer, input: LMInput(prompt), options: options,
                                            constraint: constraint, onText: { continuation.yield(.text($0)) }, isCancelled: { cancelled.isSet })
                }
                continuation.yield(.finished(result))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        let chunkObject = chat ? "chat.completion.chunk" : "text_completion"
        @Sendable func chunk(_ choice: [String: Any], usage: [String: Any]? = nil) -> ByteBuffer {
            var event: [String: Any] = ["id": id, "object": chunkObject, "created": created, "model": models.chatName, "choices": usage == nil ? [choice] : []]
            if let usage { event["usage"] = usage }
            return ByteBuffer(string: "data: " + Self.text(event) + "\n\n")
        }
        let body = ResponseBody { writer in
            do {
                if chat { try await writer.write(chunk(["index": 0, "delta": ["role": "assistant", "content": ""], "finish_reason": NSNull()])) }
                for try await event in pieces {
                    switch event {
                    case .text(let piece):
                        try await writer.write(chunk(chat ? ["index": 0, "delta": ["content": piece], "finish_reason": NSNull()]
                                                          : ["index": 0, "text": piece, "finish_reason": NSNull()]))
                    case .finished(let result):
                        try await writer.write(chunk(chat ? ["index": 0, "delta": [String: Any](), "finish_reason": result.finishReason]
                                                          : ["index": 0, "text": "", "finish_reason": result.finishReason]))
                        if includeUsage { try await writer.write(chunk([:], usage: usage(result))) }
                    }
                }
            } catch {
                cancelled.set()
                let e = (error as? APIError) ?? APIError(status: 500, message: "\(error)", type: "server_error")
                try? await writer.write(ByteBuffer(string: "data: " + Self.text(e.json) + "\n\n"))
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    func embeddings(_ body: RequestObject) async throws -> Response {
        try checkModel(body, models.embeddingName)
        guard let embed = models.embed else { throw APIError.invalid("no embedding model is served", param: "model") }
        let texts: [String]
        if let s = body.fields["input"] as? String { texts = [s] }
        else if let list = body.fields["input"] as? [Any], !list.isEmpty, list.count <= 2048, let strings = list as? [String] { texts = strings }
        else { throw APIError.invalid("'input' must be a string or an array of 1 to 2048 strings (token arrays are not supported)", param: "input") }
        let format = try body.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else { throw APIError.invalid("'encoding_format' must be float or base64, got '\(format)'", param: "encoding_format") }
        if body.has("dimensions") { throw APIError.invalid("'dimensions' is not supported: the model's vectors have a fixed size", param: "dimensions") }
        let vectors = try await worker.run { try embed(texts) }
        let d = vectors.shape[1], values = vectors.toArray()
        var data: [[String: Any]] = []
        for i in 0..<texts.count {
            let row = Array(values[(i * d)..<((i + 1) * d)])
            let embedding: Any = format == "float" ? row.map(Double.init) : row.withUnsafeBytes { Data($0).base64EncodedString() }
            data.append(["object": "embedding", "index": i, "embedding": embedding])
        }
        let tokens = texts.reduce(0) { $0 + (models.embeddingTokens?($1) ?? 0) }
        return Self.json(["object": "list", "data": data, "model": models.embeddingName!, "usage": ["prompt_tokens": tokens, "total_tokens": tokens]])
    }

    // MARK: JSON

    static func text(_ object: Any) -> String {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func json(_ object: Any, status: Int = 200) -> Response {
        Response(status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text(object))))
    }
}
