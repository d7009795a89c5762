// The generation engine: one loop over any `LanguageModel` and any `TextTokenizer`, with every sampling
// strategy, stop sequences, streaming of whole UTF-8 characters (as a callback or an `AsyncSequence`),
// cancellation, beam search and attention maps.

import AttendTensor
import AttendTokenizers
import Foundation

extension Generation {
    /// Generates after the `prompt` ids, calling `onText` with each newly complete piece of text.
    ///
    /// ```swift
    /// let loaded = try ModelLocator.languageModel("SmolLM2-135M-Instruct")
    /// var options = SamplingOptions()
    /// options.maxTokens = 32
    /// let result = try Generation.generate(model: loaded.model, tokenizer: loaded.tokenizer,
    ///                                      prompt: loaded.tokenizer.encode("Once upon a time", allowSpecial: true),
    ///                                      options: options) { print($0, terminator: "") }
    /// ```
    public static func generate(model: any LanguageModel, tokenizer: any TextTokenizer, prompt: [Int32], options: SamplingOptions,
                                onText: (String) -> Void = { _ in }, isCancelled: () -> Bool = { false }) throws -> GenerationResult {
        try generate(model: model, tokenizer: tokenizer, input: LMInput(prompt), options: options, onText: onText, isCancelled: isCancelled)
    }

    /// Generates after `input` (token ids with spliced input vectors, e.g. an image's).
    /// `isCancelled` is asked before each token; when it says yes, generation ends with finish reason "cancelled".
    /// `constraint`, when given, is `options.constraint` already compiled for this tokenizer (callers that generate
    /// many times under one grammar compile it once).
    public static func generate(model: any LanguageModel, tokenizer: any TextTokenizer, input: LMInput, options: SamplingOptions,
                                constraint compiled: GrammarConstraint? = nil,
                                onText: (String) -> Void = { _ in }, isCancelled: () -> Bool = { false }) throws -> GenerationResult {
        var text = TextAssembler(tokenizer: tokenizer, stops: options.stop)
        let constraint = try compiled ?? options.constraint.map { GrammarConstraint(grammar: try $0.compile(), tokenizer: tokenizer) }
        let run = try decode(model: model, input: input, options: options, eosId: tokenizer.eosId, constraint: constraint, isCancelled: isCancelled) { next in
            let (piece, stopped) = text.add(next)
            if !piece.isEmpty { onText(piece) }
            return !stopped
        }
        let (final, rest) = text.finish()
        if !rest.isEmpty { onText(rest) }
        return GenerationResult(tokens: text.generated, text: final, promptTokens: input.count, promptSeconds: run.promptSeconds,
                                generationSeconds: run.generationSeconds, finishReason: text.stoppedText != nil ? "stop" : run.finishReason)
    }

    /// The decoding loop under `generate`: reads `input`, then picks one token at a time and hands it to
    /// `onToken` (which returns false to stop), until `maxTokens`, `eosId`, cancellation or the end of the
    /// context. With `options.contextShift`, a full context is not the end: the model re-reads the last half
    /// of the sequence and goes on (learned absolute positions cannot be shifted in place).
    /// With a `constraint`, only tokens it allows are picked, and generation ends when its text is complete and
    /// nothing may follow.
    public static func decode(model: any LanguageModel, input: LMInput, options: SamplingOptions, eosId: Int32?,
                              constraint: GrammarConstraint? = nil, isCancelled: () -> Bool = { false },
                              onToken: (Int32) -> Bool) throws -> (promptSeconds: Double, generationSeconds: Double, finishReason: String) {
        try model.check(input)
        guard input.count < model.contextLength else {
            throw AttendError("the prompt has \(input.count) tokens; the model's context is \(model.contextLength)")
        }
        guard options.maxTokens > 0 else { throw AttendError("maxTokens must be positive, got \(options.maxTokens)") }
        let shift = options.contextShift && input.onlyTokens != nil
        let capacity = shift ? model.contextLength : min(model.contextLength, input.count + min(options.maxTokens, model.contextLength))
        var cache = model.makeCache(capacity: capacity)
        let context = input.tokenIds
        var generator = RandomGenerator(seed: options.seed)
        let t0 = Date()
        var logits = model.forward(input, cache: cache, lastOnly: true, attentionLayer: nil).logits.toArray()
        let promptSeconds = Date().timeIntervalSince(t0)
        var generated: [Int32] = []
        var finish = "length"
        var constraint = constraint
        let t1 = Date()
        while generated.count < options.maxTokens {
            if isCancelled() { finish = "cancelled"; break }
            if let c = constraint, c.isComplete && !c.canContinue { finish = "stop"; break }
            let rule = constraint
            let next = pick(logits, context: context, generated: generated, options: options, generator: &generator,
                            allowed: rule.map { c in { c.allows(Int32($0)) } })
            if let c = constraint, !c.allows(next) {
                throw AttendError("constrained decoding: no token of the vocabulary may continue \(String(decoding: c.text, as: UTF8.self).debugDescription) (after \(generated.count) tokens)")
            }
            if next == eosId && !options.ignoreEOS { finish = "stop"; break }
            constraint?.accept(next)
            generated.append(next)
            guard onToken(next) else { finish = "stop"; break }
            if generated.count == options.maxTokens { break }
            if cache.count >= capacity {
                guard shift else { break }
                let kept = Array((context + generated).suffix(model.contextLength / 2))
                cache = model.makeCache(capacity: capacity)
                logits = model.forward(LMInput(kept), cache: cache, lastOnly: true, attentionLayer: nil).logits.toArray()
                continue
            }
            logits = model([next], cache: cache, lastOnly: true).toArray()
        }
        return (promptSeconds, Date().timeIntervalSince(t1), finish)
    }

    /// One event of a streamed generation: a piece of text, then the finished result.
    public enum StreamEvent {
        case text(String)
        case finished(GenerationResult)
    }

    /// The same generation as an `AsyncSequence`: pieces of text as they are decoded, then `.finished`. Ending
    /// the iteration early (or cancelling its task) stops the decoding loop after the current token.
    ///
    /// ```swift
    /// for try await event in Generation.stream(model: model, tokenizer: tokenizer, input: LMInput(ids), options: options) {
    ///     if case .text(let piece) = event { print(piece, terminator: "") }
    /// }
    /// ```
    public static func stream(model: any LanguageModel, tokenizer: any TextTokenizer, input: LMInput,
                              options: SamplingOptions) -> AsyncThrowingStream<StreamEvent, Error> {
        // The model and tokenizer are only read while this generation runs.
        final class Job: @unchecked Sendable {
            let model: any LanguageModel, tokenizer: any TextTokenizer, input: LMInput, options: SamplingOptions
            let cancelled = CancellationFlag()
            init(_ m: any LanguageModel, _ t: any TextTokenizer, _ i: LMInput, _ o: SamplingOptions) { model = m; tokenizer = t; input = i; options = o }
        }
        let job = Job(model, tokenizer, input, options)
        return AsyncThrowingStream { continuation in
            continuation.onTermination = { _ in job.cancelled.set() }
            Thread.detachNewThread {
                do {
                    let r = try generate(model: job.model, tokenizer: job.tokenizer, input: job.input, options: job.options,
                                         onText: { continuation.yield(.text($0)) }, isCancelled: { job.cancelled.isSet })
                    continuation.yield(.finished(r))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }
}

/// A flag set once from any thread (a stream's consumer going away) and read by the decoding loop.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public func set() { lock.lock(); value = true; lock.unlock() }
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

extension Generation {
    /// Self-attention weights [T, T] of query head `head` in `layer` (negative: from the end) while the model
    /// reads `prompt`. Returns the weights and the layer index used. Works for every `LanguageModel`.
    public static func attentionMap(model: any LanguageModel, prompt: [Int32], layer: Int, head: Int) throws -> (Tensor, Int) {
        let layers = model.layerCount
        let l = layer < 0 ? layers + layer : layer
        guard (0..<layers).contains(l) else { throw AttendError("--layer \(layer): the model has \(layers) layers (0...\(layers - 1), or -1...-\(layers))") }
        guard (0..<model.queryHeadCount).contains(head) else {
            throw AttendError("--head \(head): the model has \(model.queryHeadCount) query heads (0...\(model.queryHeadCount - 1))")
        }
        guard !prompt.isEmpty, prompt.count <= model.contextLength else {
            throw AttendError("the prompt has \(prompt.count) tokens; an attention map needs 1...\(model.contextLength)")
        }
        try model.checkTokenIds(prompt)
        let out = model.forward(LMInput(prompt), cache: model.makeCache(capacity: prompt.count), lastOnly: true, attentionLayer: l)
        guard let attention = out.attention else { throw AttendError("the model returned no attention weights for layer \(l)") }
        let t = prompt.count
        return (attention.slice(axis: 0, start: head, length: 1).reshape([t, t]).contiguous(), l)
    }

    /// A token's text made visible on a plot axis: spaces as '_', line breaks as "\n".
    public static func visibleToken(_ s: String) -> String {
        s.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
    }
}

extension Generation {
    /// Beam search: keeps the `beams` most probable continuations (sum of token log-probabilities), each with
    /// its own KV cache. A finished hypothesis (end-of-sequence) is ranked by score / length^lengthPenalty.
    /// Returns the best hypothesis' tokens (without the end token) and its score.
    public static func beamSearch(model: any LanguageModel, eosId: Int32?, prompt: [Int32], beams: Int, maxTokens: Int,
                                  lengthPenalty: Float = 1) throws -> (tokens: [Int32], score: Float) {
        guard beams >= 1 else { throw AttendError("beam search needs at least one beam") }
        guard !prompt.isEmpty, prompt.count + maxTokens <= model.contextLength else {
            throw AttendError("the prompt (\(prompt.count) tokens) plus \(maxTokens) new tokens do not fit the context of \(model.contextLength)")
        }
        try model.checkTokenIds(prompt)
        struct Hypothesis { var tokens: [Int32]; var logProb: Float; var cache: KVCache; var logits: [Float] }
        let cache = model.makeCache(capacity: prompt.count + maxTokens)
        let first = model(prompt, cache: cache, lastOnly: true).toArray()
        var alive = [Hypothesis(tokens: [], logProb: 0, cache: cache, logits: first)]
        var finished: [(tokens: [Int32], score: Float)] = []
        func normalized(_ logProb: Float, _ length: Int) -> Float { logProb / Foundation.pow(Float(max(length, 1)), lengthPenalty) }
        for _ in 0..<maxTokens {
            // Every (hypothesis, next token) among each hypothesis' top `beams` tokens.
            var candidates: [(parent: Int, token: Int32, logProb: Float)] = []
            for (h, hyp) in alive.enumerated() {
                let l = hyp.logits, m = l.max()!
                let logZ = m + Foundation.log(l.reduce(0) { $0 + Foundation.exp($1 - m) })
                for i in l.indices.sorted(by: { l[$0] > l[$1] }).prefix(beams) {
                    candidates.append((h, Int32(i), hyp.logProb + l[i] - logZ))
                }
            }
            candidates.sort { $0.logProb > $1.logProb }
            var next: [Hypothesis] = []
            for c in candidates {
                if next.count == beams { break }
                let parent = alive[c.parent]
                if c.token == eosId {
                    finished.append((parent.tokens, normalized(c.logProb, parent.tokens.count + 1)))
                    continue
                }
                let forked = parent.cache.copy()
                let logits = model([c.token], cache: forked, lastOnly: true).toArray()
                next.append(Hypothesis(tokens: parent.tokens + [c.token], logProb: c.logProb, cache: forked, logits: logits))
            }
            alive = next
            // Log-probabilities only fall as tokens are added, so a live score s (< 0) can at best become
            // s / maxTokens^lengthPenalty when longer answers are favoured, and s / length^lengthPenalty otherwise:
            // stop once no live hypothesis can beat the best finished one.
            if let best = finished.map(\.score).max(),
               alive.allSatisfy({ normalized($0.logProb, lengthPenalty > 0 ? maxTokens : $0.tokens.count) < best }) { break }
            if alive.isEmpty { break }
        }
        let all = finished + alive.map { ($0.tokens, normalized($0.logProb, $0.tokens.count)) }
        return all.max { $0.score < $1.score }!
    }
}

/// Generated tokens to streamed text: only whole UTF-8 characters are handed on, and text that might still become a
/// stop sequence is held back; a stop sequence ends the text before it. One per generated sequence.
public struct TextAssembler {
    let tokenizer: any TextTokenizer
    let stops: [String]
    let holdBack: Int
    public private(set) var generated: [Int32] = []
    private var emittedBytes = 0
    /// The text when a stop sequence ended it.
    public private(set) var stoppedText: String?

    public init(tokenizer: any TextTokenizer, stops: [String]) {
        self.tokenizer = tokenizer
        self.stops = stops.filter { !$0.isEmpty }
        holdBack = self.stops.map { $0.utf8.count - 1 }.max() ?? 0
    }

    /// Takes the next token: the text that may be handed on now, and whether a stop sequence has ended the text.
    public mutating func add(_ token: Int32) -> (piece: String, stopped: Bool) {
        generated.append(token)
        let bytes = tokenizer.bytes(generated)
        if !stops.isEmpty {
            let text = String(decoding: bytes, as: UTF8.self)
            if let cut = stops.compactMap({ text.range(of: $0)?.lowerBound }).min() {
                let final = String(text[..<cut])
                stoppedText = final
                let piece = final.utf8.count > emittedBytes ? String(decoding: Array(final.utf8)[emittedBytes...], as: UTF8.self) : ""
                emittedBytes = max(emittedBytes, final.utf8.count)
                return (piece, true)
            }
        }
        var complete = bytes.count
        while complete > emittedBytes && String(validating: bytes[emittedBytes..<complete], as: UTF8.self) == nil { complete -= 1 }
        let safe = max(emittedBytes, complete - holdBack)
        guard safe > emittedBytes else { return ("", false) }
        defer { emittedBytes = safe }
        return (String(decoding: bytes[emittedBytes..<safe], as: UTF8.self), false)
    }

    /// The whole text, and what of it is still to be handed on.
    public mutating func finish() -> (text: String, rest: String) {
        if let s = stoppedText { return (s, "") }
        let text = tokenizer.decode(generated)
        let rest = text.utf8.count > emittedBytes ? String(decoding: Array(text.utf8)[emittedBytes...], as: UTF8.self) : ""
        emittedBytes = text.utf8.count
        return (text, rest)
    }
}
