// An OpenAI-compatible HTTP server on Hummingbird: chat and text completions (whole or streamed as server-sent
// events, with JSON-schema output through the generation engine's constrained decoding), embeddings (float arrays or
// base64), models, health and tokenize, errors in OpenAI's shape. The model runs on one worker thread of its own,
// requests taking turns in arrival order; embeddings, the safety stage and retrieval run on a second thread, so that
// they do not wait behind a long answer. The HTTP side stays on SwiftNIO's event loops and never blocks them.

import AttendLM
import AttendPlots
import AttendSafety
import AttendTensor
import AttendTokenizers
import Foundation
import Hummingbird
import NIOCore
import Prometheus

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
    /// The safety stage on inputs and answers (and behind /v1/moderations), when a policy is given.
    public var safety: SafetyStage?
    /// Retrieval-augmented chat, served as a model of its own name (`groundedName`): from the conversation, the prompt
    /// with the retrieved sources numbered in it, and the sources themselves, returned to the client as `citations`.
    public var ground: (([(role: String, content: String)]) throws -> (prompt: [Int32], citations: [[String: Any]]))?
    public var groundedName: String?

    public init(chatName: String, model: any LanguageModel, tokenizer: any TextTokenizer, template: ChatTemplate, addBos: Bool,
                embeddingName: String? = nil, embed: (([String]) throws -> Tensor)? = nil, embeddingTokens: ((String) -> Int)? = nil) {
        (self.chatName, self.model, self.tokenizer, self.template, self.addBos) = (chatName, model, tokenizer, template, addBos)
        (self.embeddingName, self.embed, self.embeddingTokens) = (embeddingName, embed, embeddingTokens)
    }
}

/// Runs work one job at a time on a thread of its own, so that CPU-bound work never holds an event loop or a task
/// executor.
final class ModelWorker: @unchecked Sendable {
    private let queue: DispatchQueue

    init(label: String) { queue = DispatchQueue(label: label, qos: .userInitiated) }

    func run<T>(_ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Limits and access rules of a server.
public struct ServerOptions: Sendable {
    /// Request bodies larger than this get 413.
    public var maxBodyBytes = 4 << 20
    /// Bearer tokens accepted in `Authorization`; empty means none is asked for. `/` (the page) and `/health` are open.
    public var apiKeys: Set<String> = []
    /// The origin allowed to call from a browser page on another origin (CORS): `*` for every origin, nil for none.
    public var corsOrigin: String?
    /// Requests waiting for or using the model at once; one more gets 429.
    public var maxQueue = 64
    /// Seconds a generation may take, waiting in the queue included: a request still waiting then gets 503, an answer
    /// still being written ends there with finish reason `length`.
    public var requestTimeout: Double = 600

    public init() {}
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
    public var options = ServerOptions()
    /// The language model's batch thread (continuous batching), and a second thread for embeddings, the safety stage
    /// and retrieval.
    let batcher: BatchedGenerator
    let aux = ModelWorker(label: "attend.aux")
    let metrics = ServerMetrics()
    let started = Int(Date().timeIntervalSince1970)
    private let counterLock = NSLock()
    private var counter = 0
    /// The stage behind /v1/moderations when no policy is given: personal data only.
    private let defaultSafety: SafetyStage

    /// The vocabulary's bytes, read once for every request that carries a schema.
    private let tokenBytes: [[UInt8]]

    /// `maxBatch`: sequences decoded together at most; `cachedPrompts`: finished prompts whose keys and values are
    /// kept for prompts that start the same way (0: none).
    public init(models: ServedModels, maxBatch: Int = 16, cachedPrompts: Int = 0) {
        self.models = models
        batcher = BatchedGenerator(model: models.model, tokenizer: models.tokenizer, maxBatch: maxBatch)
        batcher.cachedPrefixes = cachedPrompts
        tokenBytes = GrammarConstraint.tokenBytes(of: models.tokenizer)
        defaultSafety = models.safety ?? (try! SafetyStage(policy: SafetyPolicy(), embed: nil))
    }

    func nextID(_ prefix: String) -> String {
        counterLock.lock(); defer { counterLock.unlock() }
        counter += 1
        return "\(prefix)-\(started)-\(counter)"
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        if let origin = options.corsOrigin {
            router.add(middleware: CORSMiddleware(allowOrigin: origin == "*" ? .all : .custom(origin),
                                                  allowHeaders: [.accept, .authorization, .contentType, .origin], allowMethods: [.get, .post, .options]))
        }
        if !options.apiKeys.isEmpty { router.add(middleware: APIKeyMiddleware(keys: options.apiKeys)) }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: ChatPage.html)))
        }
        router.get("health") { _, _ in Self.json(["status": "ok"]) }
        router.get("metrics") { [self] _, _ in
            metrics.queueDepth.set(Double(batcher.load))
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
        router.get("v1/models") { [self] _, _ in
            // The chat page talks to the first model listed: the grounded one when there is an index.
            var data: [[String: Any]] = [["id": models.chatName, "object": "model", "created": started, "owned_by": "attend"]]
            if let g = models.groundedName { data.insert(["id": g, "object": "model", "created": started, "owned_by": "attend"], at: 0) }
            if let e = models.embeddingName { data.append(["id": e, "object": "model", "created": started, "owned_by": "attend"]) }
            return Self.json(["object": "list", "data": data])
        }
        router.post("v1/chat/completions") { [self] request, _ in try await handle(request, "chat") { try await self.chat($0) } }
        router.post("v1/completions") { [self] request, _ in try await handle(request, "completions") { try await self.completion($0) } }
        router.post("v1/embeddings") { [self] request, _ in try await handle(request, "embeddings") { try await self.embeddings($0) } }
        router.post("v1/moderations") { [self] request, _ in try await handle(request, "moderations") { try await self.moderations($0) } }
        router.post("v1/attention") { [self] request, _ in try await handle(request, "attention") { try await self.attention($0) } }
        router.post("tokenize") { [self] request, _ in
            try await handle(request, "tokenize") { body in
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

    private func handle(_ request: Request, _ endpoint: String, _ body: (RequestObject) async throws -> Response) async throws -> Response {
        let start = Date()
        let response: Response
        do {
            let buffer: ByteBuffer
            do { buffer = try await request.body.collect(upTo: options.maxBodyBytes) } catch {
                throw APIError(status: 413, message: "the request body is larger than \(options.maxBodyBytes) bytes", type: "invalid_request_error")
            }
            response = try await body(try RequestObject(body: Data(buffer.readableBytesView)))
        } catch let e as APIError {
            response = Self.json(e.json, status: e.status)
        } catch {
            response = Self.json(APIError(status: 500, message: "\(error)", type: "server_error").json, status: 500)
        }
        metrics.request(endpoint, status: Int(response.status.code), seconds: Date().timeIntervalSince(start))
        return response
    }

    /// Checks that the request names one of `served`; returns the name.
    @discardableResult
    private func checkModel(_ body: RequestObject, _ served: String?...) throws -> String {
        guard let name = try body.string("model") else { throw APIError.invalid("'model' is required", param: "model") }
        guard served.contains(name) else {
            let all = [models.groundedName, models.chatName, models.embeddingName].compactMap { $0 }.joined(separator: ", ")
            throw APIError(status: 404, message: "the model '\(name)' is not served here (this server serves \(all))",
                           type: "invalid_request_error", param: "model", code: "model_not_found")
        }
        return name
    }

    /// The input side of the safety stage: a text the policy blocks is refused with 400 `content_filter`; personal
    /// data the policy redacts is replaced before the model sees it.
    private func screen(_ text: String, param: String) throws -> String {
        guard let stage = models.safety, stage.policy.checkInput else { return text }
        let report = try stage.check(text)
        if let v = report.violation {
            metrics.safetyBlocks.increment()
            throw APIError(status: 400, message: "the input was refused by the safety policy (\(v.reason))", type: "invalid_request_error", param: param, code: "content_filter")
        }
        return report.redacted
    }

    func chat(_ body: RequestObject) async throws -> Response {
        let name = try checkModel(body, models.chatName, models.groundedName)
        var messages = try body.messages()
        let grounded = name == models.groundedName
        let queued = try admit()
        let (ids, citations): ([Int32], [[String: Any]]?) = try await aux.run { [self] in
            for i in messages.indices { messages[i].content = try screen(messages[i].content, param: "messages[\(i)].content") }
            if grounded, let ground = models.ground {
                guard messages.last?.role == "user" else { throw APIError.invalid("the last message must be the user's question", param: "messages") }
                let g = try ground(messages)
                return (g.prompt, g.citations)
            }
            return (try models.tokenizer.encode(models.template.render(messages), allowSpecial: true), nil)
        }
        return try await complete(body, prompt: ids, chat: true, citations: citations, deadline: queued, name: name)
    }

    func completion(_ body: RequestObject) async throws -> Response {
        try checkModel(body, models.chatName)
        guard var prompt = try body.string("prompt") else { throw APIError.invalid("'prompt' must be a string", param: "prompt") }
        let queued = try admit()
        prompt = try await aux.run { [self] in try screen(prompt, param: "prompt") }
        var ids = try models.tokenizer.encode(prompt, allowSpecial: false)
        if models.addBos, let bos = models.tokenizer.bosId { ids.insert(bos, at: 0) }
        return try await complete(body, prompt: ids, chat: false, citations: nil, deadline: queued, name: models.chatName)
    }

    /// Refuses a request when the queue is full; returns the request's deadline.
    private func admit() throws -> Date {
        guard batcher.load < options.maxQueue else {
            throw APIError(status: 429, message: "the server is busy: \(options.maxQueue) requests are waiting for the model; retry later", type: "requests", code: "rate_limit_exceeded")
        }
        return Date().addingTimeInterval(options.requestTimeout)
    }

    /// Generates for either endpoint, whole or streamed, through the safety stage when the policy checks answers.
    private func complete(_ body: RequestObject, prompt: [Int32], chat: Bool, citations: [[String: Any]]?, deadline: Date, name: String) async throws -> Response {
        let options = try body.samplingOptions(contextLength: models.model.contextLength, promptTokens: prompt.count)
        let logprobs = try body.logprobs(chat: chat)
        if logprobs != nil, models.safety?.policy.checkOutput == true {
            throw APIError.invalid("'logprobs' is not available while the safety policy checks answers: the tokens would carry what it redacts", param: "logprobs")
        }
        let tokenizer = models.tokenizer
        @Sendable func entry(_ t: TokenLogprob) -> [String: Any] {
            func piece(_ id: Int32, _ lp: Float) -> [String: Any] {
                let bytes = tokenizer.bytes([id])
                return ["token": String(decoding: bytes, as: UTF8.self), "logprob": Double(lp), "bytes": bytes.map(Int.init)]
            }
            var e = piece(t.token, t.logprob)
            e["top_logprobs"] = t.top.map { piece($0.token, $0.logprob) }
            return e
        }
        final class Pending: @unchecked Sendable { var entries: [[String: Any]] = [] }
        let pendingLogprobs = Pending()
        let stream = try body.bool("stream") ?? false
        let includeUsage = ((body.fields["stream_options"] as? [String: Any])?["include_usage"] as? Bool) ?? false
        let id = nextID(chat ? "chatcmpl" : "cmpl"), created = Int(Date().timeIntervalSince1970)
        let object = chat ? "chat.completion" : "text_completion"
        let models = self.models, metrics = self.metrics
        let constraint = try options.constraint.map { GrammarConstraint(grammar: try $0.compile(), tokenBytes: tokenBytes, eosId: models.tokenizer.eosId) }
        @Sendable func usage(_ r: GenerationResult) -> [String: Any] {
            ["prompt_tokens": r.promptTokens, "completion_tokens": r.tokens.count, "total_tokens": r.promptTokens + r.tokens.count]
        }
        // The batch thread pushes text pieces (with the log-probabilities of the tokens since the last piece); a client
        // that goes away (streamed) sets `cancelled`, which ends decoding.
        enum Event { case text(String, [[String: Any]]), finished(GenerationResult) }
        let (pieces, continuation) = AsyncThrowingStream<Event, Error>.makeStream()
        let cancelled = CancellationFlag()
        let arrived = Date()
        let filter = models.safety.flatMap { $0.policy.checkOutput ? SafetyFilter(stage: $0) : nil }
        var first = true
        let gate = SafetyGate(filter: filter) { piece in
            if first { first = false; metrics.firstToken.record(Date().timeIntervalSince(arrived)) }
            continuation.yield(.text(piece, pendingLogprobs.entries))
            pendingLogprobs.entries = []
        }
        batcher.submit(input: LMInput(prompt), options: options, constraint: constraint, logprobs: logprobs, onText: gate.pass,
                       onToken: logprobs == nil ? nil : { pendingLogprobs.entries.append(entry($0)) },
                       isCancelled: { cancelled.isSet || Date() >= deadline || gate.shouldStop }) { result in
            do {
                var r = try gate.finish(try result.get())
                if r.finishReason == "cancelled", !cancelled.isSet {   // the deadline
                    guard !r.tokens.isEmpty else {
                        throw APIError(status: 503, message: "the request waited longer than the server's timeout for the model", type: "server_error", code: "timeout")
                    }
                    r.finishReason = "length"
                }
                if filter?.stopped == true { metrics.safetyBlocks.increment() }
                if let f = filter { metrics.safetyRedactions.increment(by: Int64(f.redactions)) }
                metrics.tokens(prompt: r.promptTokens, completion: r.tokens.count)
                continuation.yield(.finished(r))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        guard stream else {
            var text = ""
            var result: GenerationResult? = nil
            for try await event in pieces {
                switch event {
                case .text(let piece, _): text += piece
                case .finished(let r): result = r
                }
            }
            let choiceLogprobs: Any = logprobs == nil ? NSNull() : ["content": result?.logprobs.map(entry) ?? []]
            guard let result else { throw APIError(status: 500, message: "the generation ended without a result", type: "server_error") }
            let choice: [String: Any] = chat
                ? ["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": result.finishReason, "logprobs": choiceLogprobs]
                : ["index": 0, "text": text, "finish_reason": result.finishReason, "logprobs": NSNull()]
            var response: [String: Any] = ["id": id, "object": object, "created": created, "model": name, "choices": [choice], "usage": usage(result)]
            if let citations { response["citations"] = citations }
            return Self.json(response)
        }
        let chunkObject = chat ? "chat.completion.chunk" : "text_completion"
        @Sendable func chunk(_ choice: [String: Any], usage: [String: Any]? = nil, citations: [[String: Any]]? = nil) -> ByteBuffer {
            var event: [String: Any] = ["id": id, "object": chunkObject, "created": created, "model": name, "choices": usage == nil ? [choice] : []]
            if let usage { event["usage"] = usage }
            if let citations { event["citations"] = citations }
            return ByteBuffer(string: "data: " + Self.text(event) + "\n\n")
        }
        let body = ResponseBody { writer in
            do {
                if chat { try await writer.write(chunk(["index": 0, "delta": ["role": "assistant", "content": ""], "finish_reason": NSNull()], citations: citations)) }
                for try await event in pieces {
                    switch event {
                    case .text(let piece, let entries):
                        var choice: [String: Any] = chat ? ["index": 0, "delta": ["content": piece], "finish_reason": NSNull()]
                                                         : ["index": 0, "text": piece, "finish_reason": NSNull()]
                        if logprobs != nil { choice["logprobs"] = ["content": entries] }
                        try await writer.write(chunk(choice))
                    case .finished(let result):
                        var choice: [String: Any] = chat ? ["index": 0, "delta": [String: Any](), "finish_reason": result.finishReason]
                                                         : ["index": 0, "text": "", "finish_reason": result.finishReason]
                        // Tokens whose text never came out (an end token, text held back and then cut by a stop sequence).
                        if logprobs != nil { choice["logprobs"] = ["content": pendingLogprobs.entries] }
                        try await writer.write(chunk(choice))
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
        let texts = try Self.inputs(body, limit: 2048)
        let format = try body.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else { throw APIError.invalid("'encoding_format' must be float or base64, got '\(format)'", param: "encoding_format") }
        if body.has("dimensions") { throw APIError.invalid("'dimensions' is not supported: the model's vectors have a fixed size", param: "dimensions") }
        let vectors = try await aux.run { try embed(texts) }
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

    /// `POST /v1/moderations`: OpenAI's shape, one result per input, with a category for each kind of personal data
    /// (`personal_data/email`, ...) and each of the policy's categories.
    func moderations(_ body: RequestObject) async throws -> Response {
        let texts = try Self.inputs(body, limit: 256)
        let stage = defaultSafety
        let results: [[String: Any]] = try await aux.run {
            try texts.map { text in
                let report = try stage.check(text)
                var categories: [String: Any] = [:], scores: [String: Any] = [:]
                for kind in PersonalDataKind.allCases {
                    let found = report.personalData.contains { $0.kind == kind }
                    let action = stage.policy.personalData[kind] ?? .allow
                    categories["personal_data/\(kind.rawValue)"] = found && action != .allow
                    scores["personal_data/\(kind.rawValue)"] = found ? 1.0 : 0.0
                }
                for c in report.categoryScores { categories[c.name] = c.flagged; scores[c.name] = Double(c.score) }
                return ["flagged": report.flagged, "categories": categories, "category_scores": scores]
            }
        }
        return Self.json(["id": nextID("modr"), "model": (try body.string("model")) ?? "attend-safety", "results": results])
    }

    /// `POST /v1/attention` (Attend's own): the attention map of an answer as a PNG: for each of the answer's tokens (rows),
    /// its attention over every token of the conversation and of the answer before it (columns), in one layer and head.
    /// Body: `model`, `messages` (the conversation the answer replied to), `answer`, optional `layer` (default -1, the
    /// last) and `head` (default 0). For the grounded model the prompt is built again with its sources.
    func attention(_ body: RequestObject) async throws -> Response {
        let name = try checkModel(body, models.chatName, models.groundedName)
        var messages = try body.messages()
        guard let answer = try body.string("answer"), !answer.isEmpty else { throw APIError.invalid("'answer' must be a non-empty string", param: "answer") }
        let layer = try body.integer("layer", in: -models.model.layerCount...(models.model.layerCount - 1)) ?? -1
        let head = try body.integer("head", in: 0...(models.model.queryHeadCount - 1)) ?? 0
        let png: Data = try await aux.run { [self] in
            for i in messages.indices { messages[i].content = try screen(messages[i].content, param: "messages[\(i)].content") }
            let prompt = try name == models.groundedName && models.ground != nil ? models.ground!(messages).prompt
                : models.tokenizer.encode(models.template.render(messages), allowSpecial: true)
            let answerIds = try models.tokenizer.encode(answer, allowSpecial: false)
            let ids = prompt + answerIds
            guard ids.count <= 1024 else {
                throw APIError.invalid("the conversation and answer take \(ids.count) tokens; an attention map is drawn for at most 1024", param: "messages")
            }
            let (weights, l) = try Generation.attentionMap(model: models.model, prompt: ids, layer: layer, head: head)
            let rows = weights.slice(axis: 0, start: prompt.count, length: answerIds.count).contiguous()
            let cell = max(3, min(16, 1400 / ids.count))
            let tokenizer = models.tokenizer
            let label = { (id: Int32) in Generation.visibleToken(tokenizer.decode([id])) }
            return try Heatmap.render(rows, cell: cell, rowLabels: cell >= 8 ? answerIds.map(label) : nil, columnLabels: cell >= 8 ? ids.map(label) : nil,
                                      title: "layer \(l) head \(head): answer tokens (rows) attend to the conversation (columns)").pngData()
        }
        return Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
    }

    static func inputs(_ body: RequestObject, limit: Int) throws -> [String] {
        if let s = body.fields["input"] as? String { return [s] }
        if let list = body.fields["input"] as? [Any], !list.isEmpty, list.count <= limit, let strings = list as? [String] { return strings }
        throw APIError.invalid("'input' must be a string or an array of 1 to \(limit) strings (token arrays are not supported)", param: "input")
    }

    // MARK: JSON

    static func text(_ object: Any) -> String {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func json(_ object: Any, status: Int = 200) -> Response {
        Response(status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text(object))))
    }
}

/// Bearer-token API keys: a request without one of the keys gets 401 in OpenAI's shape and nothing else.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/" || path == "/health" || request.method == .options { return try await next(request, context) }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer "), keys.contains(String(header.dropFirst(7))) {
            return try await next(request, context)
        }
        let e = APIError(status: 401, message: "a valid API key is needed: send 'Authorization: Bearer KEY'", type: "invalid_request_error", code: "invalid_api_key")
        return OpenAIServer.json(e.json, status: 401)
    }
}

/// What /metrics reports, in Prometheus' text format.
final class ServerMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    let queueDepth: Gauge
    let promptTokens: Counter, completionTokens: Counter
    let firstToken: ValueHistogram
    let safetyBlocks: Counter, safetyRedactions: Counter

    init() {
        queueDepth = registry.makeGauge(name: "attend_queue_depth", help: "Requests waiting for or using the language model.")
        promptTokens = registry.makeCounter(name: "attend_prompt_tokens_total", help: "Prompt tokens read.")
        completionTokens = registry.makeCounter(name: "attend_completion_tokens_total", help: "Tokens generated.")
        firstToken = registry.makeValueHistogram(name: "attend_time_to_first_token_seconds", buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
                                                 help: "Seconds from a request's arrival to its first generated text.")
        safetyBlocks = registry.makeCounter(name: "attend_safety_blocks_total", help: "Inputs refused and answers stopped by the safety policy.")
        safetyRedactions = registry.makeCounter(name: "attend_safety_redactions_total", help: "Spans of personal data redacted from answers.")
    }

    func request(_ endpoint: String, status: Int, seconds: Double) {
        registry.makeCounter(name: "attend_requests_total", labels: [("endpoint", endpoint), ("status", String(status))], help: "HTTP requests answered.").increment()
        registry.makeValueHistogram(name: "attend_request_seconds", labels: [("endpoint", endpoint)], buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
                                    help: "Seconds to answer a request (to the start of a streamed answer).").record(seconds)
    }

    func tokens(prompt: Int, completion: Int) {
        promptTokens.increment(by: Int64(prompt))
        completionTokens.increment(by: Int64(completion))
    }
}
