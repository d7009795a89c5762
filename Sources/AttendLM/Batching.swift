// Continuous batching: many generations share one model. Each step decodes one token for every active sequence in
// one batched forward pass (the weights are read once per step, not once per sequence); a new request joins between
// steps (its prompt is read on its own first), and a finished or cancelled one leaves. Sampling, constraints, stop
// sequences and streaming are those of the single-sequence engine (`Generation.pick`, `TextAssembler`), per sequence.

import AttendTensor
import AttendTokenizers
import Foundation

/// Runs generations in batches on a thread of its own.
///
/// ```swift
/// let batcher = BatchedGenerator(model: lm.model, tokenizer: lm.tokenizer, maxBatch: 16)
/// async let a = batcher.generate(input: LMInput(idsA), options: options) { print($0, terminator: "") }
/// async let b = batcher.generate(input: LMInput(idsB), options: options)
/// let (ra, rb) = try await (a, b)   // decoded together, one forward pass per step for both
/// ```
public final class BatchedGenerator: @unchecked Sendable {
    public let model: any LanguageModel
    public let tokenizer: any TextTokenizer
    /// Sequences decoded together at most; more wait their turn.
    public let maxBatch: Int

    /// How many finished sequences' caches to keep, with their prompts (0: none, the default). A prompt that starts
    /// like one of them (the same system prompt, instructions, or earlier turns of a chat) then reads only what
    /// follows (prompt caching). Only positions read as a prompt are reused, and at least two tokens are read anew
    /// (a generated token's keys come from the one-token step, whose 8-bit arithmetic differs). The positions read anew
    /// can still differ from a fresh read in the last bits, because the float GEMM tiles rows by how many there are,
    /// so a greedy answer can change where two tokens are nearly tied: off by default, to keep answers reproducible.
    public var cachedPrefixes = 0
    /// Prompt tokens read from a cached prefix instead of the model, since the start (for tests and metrics).
    public private(set) var reusedPromptTokens = 0
    private var prefixes: [(tokens: [Int32], cache: KVCache)] = []

    private let condition = NSCondition()
    private var pending: [Request] = []
    private var activeCount = 0
    private var started = false

    final class Request {
        let input: LMInput, options: SamplingOptions, constraint: GrammarConstraint?, logprobs: Int?
        let onText: (String) -> Void, onToken: ((TokenLogprob) -> Void)?, isCancelled: () -> Bool, done: (Result<GenerationResult, Error>) -> Void
        init(input: LMInput, options: SamplingOptions, constraint: GrammarConstraint?, logprobs: Int?, onText: @escaping (String) -> Void,
             onToken: ((TokenLogprob) -> Void)?, isCancelled: @escaping () -> Bool, done: @escaping (Result<GenerationResult, Error>) -> Void) {
            (self.input, self.options, self.constraint, self.logprobs) = (input, options, constraint, logprobs)
            (self.onText, self.onToken, self.isCancelled, self.done) = (onText, onToken, isCancelled, done)
        }
    }

    /// One sequence being decoded.
    final class Sequence {
        let request: Request
        let cache: KVCache
        let capacity: Int
        let context: [Int32]
        var logits: [Float]
        var generator: RandomGenerator
        var text: TextAssembler
        var constraint: GrammarConstraint?
        var last: Int32 = 0
        var logprobs: [TokenLogprob] = []
        let promptSeconds: Double
        let decodeStart = Date()

        init(_ r: Request, cache: KVCache, capacity: Int, logits: [Float], promptSeconds: Double, tokenizer: any TextTokenizer) {
            (request, self.cache, self.capacity, self.logits, self.promptSeconds) = (r, cache, capacity, logits, promptSeconds)
            context = r.input.tokenIds
            generator = RandomGenerator(seed: r.options.seed)
            text = TextAssembler(tokenizer: tokenizer, stops: r.options.stop)
            constraint = r.constraint
        }
    }

    public init(model: any LanguageModel, tokenizer: any TextTokenizer, maxBatch: Int = 16) {
        precondition(maxBatch >= 1, "BatchedGenerator: maxBatch \(maxBatch) must be at least 1")
        (self.model, self.tokenizer, self.maxBatch) = (model, tokenizer, maxBatch)
    }

    /// Requests waiting or being decoded.
    public var load: Int {
        condition.lock(); defer { condition.unlock() }
        return pending.count + activeCount
    }

    /// Queues a generation. `onText`, `onToken` and `done` are called on the batch thread; `isCancelled` is asked
    /// before each token. With `logprobs` (the number of alternatives, 0 to 20), each token's log-probability goes to
    /// `onToken` before its text goes to `onText`, and into the result.
    public func submit(input: LMInput, options: SamplingOptions, constraint: GrammarConstraint? = nil, logprobs: Int? = nil,
                       onText: @escaping (String) -> Void = { _ in }, onToken: ((TokenLogprob) -> Void)? = nil,
                       isCancelled: @escaping () -> Bool = { false }, done: @escaping (Result<GenerationResult, Error>) -> Void) {
        condition.lock()
        pending.append(Request(input: input, options: options, constraint: constraint, logprobs: logprobs, onText: onText, onToken: onToken,
                               isCancelled: isCancelled, done: done))
        if !started {
            started = true
            let thread = Thread { [self] in loop() }
            thread.name = "attend.batch"
            thread.qualityOfService = .userInitiated
            thread.start()
        }
        condition.signal()
        condition.unlock()
    }

    /// The same, awaited.
    public func generate(input: LMInput, options: SamplingOptions, constraint: GrammarConstraint? = nil, logprobs: Int? = nil,
                         onText: @escaping (String) -> Void = { _ in }, isCancelled: @escaping () -> Bool = { false }) async throws -> GenerationResult {
        try await withCheckedThrowingContinuation { continuation in
            submit(input: input, options: options, constraint: constraint, logprobs: logprobs, onText: onText, isCancelled: isCancelled) { continuation.resume(with: $0) }
        }
    }

    private func loop() {
        var active: [Sequence] = []
        while true {
            condition.lock()
            while pending.isEmpty && active.isEmpty { condition.wait() }
            let admitted = Array(pending.prefix(maxBatch - active.count))
            pending.removeFirst(admitted.count)
            activeCount += admitted.count
            condition.unlock()
            for r in admitted {
                // One cancelled while it waited (its client left, or its time ran out) is not read at all.
                if r.isCancelled() {
                    leave()
                    r.done(.success(GenerationResult(tokens: [], text: "", promptTokens: r.input.count, promptSeconds: 0, generationSeconds: 0, finishReason: "cancelled")))
                    continue
                }
                do { active.append(try start(r)) } catch { leave(); r.done(.failure(error)) }
            }
            // Each sequence picks its next token from its logits; those that end leave the batch.
            var stepping: [Sequence] = []
            for s in active {
                do {
                    if let reason = try choose(s) { finish(s, reason) } else { stepping.append(s) }
                } catch { leave(); s.request.done(.failure(error)) }
            }
            active = stepping
            guard !active.isEmpty else { continue }
            let logits = model.forwardBatch(active.map(\.last), caches: active.map(\.cache))
            let v = logits.shape[1], values = logits.contiguous().pointer
            for (i, s) in active.enumerated() { s.logits = Array(UnsafeBufferPointer(start: values + i * v, count: v)) }
        }
    }

    /// A sequence has left the batch (before its caller hears of it, so that `load` is already right then).
    private func leave() {
        condition.lock(); activeCount -= 1; condition.unlock()
    }

    /// Reads a request's prompt.
    private func start(_ r: Request) throws -> Sequence {
        try model.check(r.input)
        guard r.input.count < model.contextLength else {
            throw AttendError("the prompt has \(r.input.count) tokens; the model's context is \(model.contextLength)")
        }
        guard r.options.maxTokens > 0 else { throw AttendError("maxTokens must be positive, got \(r.options.maxTokens)") }
        let capacity = min(model.contextLength, r.input.count + r.options.maxTokens)
        let cache = model.makeCache(capacity: capacity)
        let t0 = Date()
        var input = r.input
        // The longest cached prefix of the prompt (all but its last token, whose logits are needed).
        if let tokens = r.input.onlyTokens, cachedPrefixes > 0 {
            var best = (length: 0, index: -1)
            for (i, p) in prefixes.enumerated() {
                var n = 0
                while n < min(p.tokens.count, tokens.count - 2), p.tokens[n] == tokens[n] { n += 1 }
                if n > best.length { best = (n, i) }
            }
            if best.length >= 8 {
                prefixes[best.index].cache.copyPrefix(best.length, into: cache)
                input = LMInput(Array(tokens[best.length...]))
                reusedPromptTokens += best.length
            }
        }
        let logits = model.forward(input, cache: cache, lastOnly: true, attentionLayer: nil).logits.toArray()
        return Sequence(r, cache: cache, capacity: capacity, logits: logits, promptSeconds: Date().timeIntervalSince(t0), tokenizer: tokenizer)
    }

    /// Picks and hands on a sequence's next token; returns the finish reason when the sequence ends here (the loop of
    /// `Generation.decode`, one step of it).
    private func choose(_ s: Sequence) throws -> String? {
        let o = s.request.options
        if s.request.isCancelled() { return "cancelled" }
        if let c = s.constraint, c.isComplete && !c.canContinue { return "stop" }
        let rule = s.constraint
        let next = Generation.pick(s.logits, context: s.context, generated: s.text.generated, options: o, generator: &s.generator,
                                   allowed: rule.map { c in { c.allows(Int32($0)) } })
        if let c = s.constraint, !c.allows(next) {
            throw AttendError("constrained decoding: no token of the vocabulary may continue \(String(decoding: c.text, as: UTF8.self).debugDescription) (after \(s.text.generated.count) tokens)")
        }
        if next == tokenizer.eosId { return "stop" }
        s.constraint?.accept(next)
        if let k = s.request.logprobs {
            let entry = TokenLogprob(logits: s.logits, token: next, top: k)
            s.logprobs.append(entry)
            s.request.onToken?(entry)
        }
        let (piece, stopped) = s.text.add(next)
        if !piece.isEmpty { s.request.onText(piece) }
        if stopped { return "stop" }
        if s.text.generated.count >= o.maxTokens || s.cache.count >= s.capacity { return "length" }
        s.last = next
        return nil
    }

    private func finish(_ s: Sequence, _ reason: String) {
        if cachedPrefixes > 0, let prompt = s.request.input.onlyTokens, prompt.count >= 8, s.cache.count >= prompt.count {
            prefixes.removeAll { prompt.starts(with: $0.tokens) }   // one that this prompt extends is redundant
            prefixes.append((prompt, s.cache))
            if prefixes.count > cachedPrefixes { prefixes.removeFirst() }
        }
        let (text, rest) = s.text.finish()
        if !rest.isEmpty { s.request.onText(rest) }
        leave()
        s.request.done(.success(GenerationResult(tokens: s.text.generated, text: text, promptTokens: s.request.input.count,
                                                 promptSeconds: s.promptSeconds, generationSeconds: Date().timeIntervalSince(s.decodeStart),
                                                 finishReason: s.text.stoppedText != nil ? "stop" : reason, logprobs: s.logprobs)))
    }
}
