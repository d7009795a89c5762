// Text generation from a causal language model: logits processing (repetition / presence / frequency
// penalties, temperature, top-k, top-p, min-p) then greedy choice or seeded sampling, with stop
// sequences and streaming of whole UTF-8 characters.

import AttendTensor
import AttendTokenizers
import Foundation

public struct SamplingOptions: Codable, Equatable {
    /// 0 means greedy decoding.
    public var temperature: Float = 0
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    /// > 1 discourages tokens already in the context (positive logits divided, negative multiplied).
    public var repetitionPenalty: Float = 1
    /// Subtracted once from the logit of every token already generated.
    public var presencePenalty: Float = 0
    /// Subtracted per occurrence from the logit of every token already generated.
    public var frequencyPenalty: Float = 0
    public var maxTokens = 128
    public var stop: [String] = []
    public var seed: UInt64 = 0

    public init() {}
}

public struct GenerationResult {
    public var tokens: [Int32]
    public var text: String
    public var promptTokens: Int
    public var promptSeconds: Double
    public var generationSeconds: Double
    public var finishReason: String
}

public enum Generation {
    /// Picks the next token from `logits` given the tokens seen so far (`context`) and those generated.
    public static func pick(_ logits: [Float], context: [Int32], generated: [Int32], options o: SamplingOptions,
                            generator: inout RandomGenerator) -> Int32 {
        var l = logits
        if o.repetitionPenalty != 1 {
            for id in Set(context + generated) { let i = Int(id); l[i] = l[i] > 0 ? l[i] / o.repetitionPenalty : l[i] * o.repetitionPenalty }
        }
        if o.presencePenalty != 0 || o.frequencyPenalty != 0 {
            var counts: [Int32: Int] = [:]
            for id in generated { counts[id, default: 0] += 1 }
            for (id, n) in counts { l[Int(id)] -= o.presencePenalty + o.frequencyPenalty * Float(n) }
        }
        if o.temperature <= 0 { return Int32(l.indices.max { l[$0] < l[$1] }!) }
        // Candidates sorted by logit; each filter keeps a prefix.
        var order = l.indices.sorted { l[$0] > l[$1] }
        if let k = o.topK, k > 0 { order = Array(order.prefix(k)) }
        let scaled = order.map { l[$0] / o.temperature }
        let m = scaled[0]
        var p = scaled.map { Foundation.exp($0 - m) }
        let total = p.reduce(0, +)
        p = p.map { $0 / total }
        var keep = p.count
        if let topP = o.topP, topP < 1 {
            var cumulative: Float = 0
            for (i, x) in p.enumerated() {
                cumulative += x
                if cumulative >= topP { keep = min(keep, i + 1); break }
            }
        }
        if let minP = o.minP, minP > 0 { keep = min(keep, max(1, p.prefix(keep).filter { $0 >= minP * p[0] }.count)) }
        let kept = p.prefix(keep), mass = kept.reduce(0, +)
        var u = generator.nextUniform() * mass
        for (i, x) in kept.enumerated() {
            u -= x
            if u <= 0 { return Int32(order[i]) }
        }
        return Int32(order[keep - 1])
    }

    /// Generates after `prompt` ids, calling `onText` with each newly complete piece of text.
    public static func generate(model: CausalLanguageModel, tokenizer: ByteLevelBPETokenizer, prompt: [Int32], options: SamplingOptions,
                                onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw AttendError("the prompt is empty") }
        try model.checkTokenIds(prompt)
        let capacity = min(model.contextLength, prompt.count + options.maxTokens)
        guard prompt.count < model.contextLength else {
            throw AttendError("the prompt has \(prompt.count) tokens; the model's context is \(model.contextLength)")
        }
        let cache = model.makeCache(capacity: capacity)
        var generator = RandomGenerator(seed: options.seed)
        let t0 = Date()
        var logits = model(prompt, cache: cache, lastOnly: true).toArray()
        let promptSeconds = Date().timeIntervalSince(t0)
        var generated: [Int32] = []
        var emittedBytes = 0
        var finish = "length"
        let t1 = Date()
        while generated.count < options.maxTokens && cache.count < capacity {
            let next = pick(logits, context: prompt, generated: generated, options: options, generator: &generator)
            if next == tokenizer.eosId { finish = "stop"; break }
            generated.append(next)
            // Stream only whole characters; hold back text that might become a stop sequence.
            let bytes = tokenizer.bytes(generated)
            let text = String(decoding: bytes, as: UTF8.self)
            if let stop = options.stop.first(where: { text.hasSuffix($0) || text.contains($0) }) {
                let cut = text.range(of: stop)!.lowerBound
                let final = String(text[..<cut])
                if final.utf8.count > emittedBytes { onText(String(decoding: Array(final.utf8)[emittedBytes...], as: UTF8.self)) }
                return GenerationResult(tokens: generated, text: final, promptTokens: prompt.count, promptSeconds: promptSeconds,
                                        generationSeconds: Date().timeIntervalSince(t1), finishReason: "stop")
            }
            var complete = bytes.count
            while complete > emittedBytes && String(validating: bytes[emittedBytes..<complete], as: UTF8.self) == nil { complete -= 1 }
            let holdBack = options.stop.map { $0.utf8.count - 1 }.max() ?? 0
            let safe = max(emittedBytes, complete - holdBack)
            if safe > emittedBytes {
                onText(String(decoding: bytes[emittedBytes..<safe], as: UTF8.self))
                emittedBytes = safe
            }
            if cache.count >= capacity { break }
            logits = model([next], cache: cache, lastOnly: true).toArray()
        }
        let text = tokenizer.decode(generated)
        if text.utf8.count > emittedBytes { onText(String(decoding: Array(text.utf8)[emittedBytes...], as: UTF8.self)) }
        return GenerationResult(tokens: generated, text: text, promptTokens: prompt.count, promptSeconds: promptSeconds,
                                generationSeconds: Date().timeIntervalSince(t1), finishReason: finish)
    }
}

/// A decoder-only language model that continues a token sequence with a KV cache: Llama, GPT-2, OPT.
public protocol CausalLanguageModel: AnyObject {
    var contextLength: Int { get }
    var vocabularySize: Int { get }
    /// An empty cache for `capacity` tokens.
    func makeCache(capacity: Int) -> KVCache
    /// Runs `tokens` after those already in `cache`, appends their keys and values, and returns logits
    /// [T, vocab] (only the last position's when `lastOnly`).
    func callAsFunction(_ tokens: [Int32], cache: KVCache, lastOnly: Bool) -> Tensor
}

extension CausalLanguageModel {
    /// A clear error for token ids the model has no embedding for (a tokenizer from another model).
    public func checkTokenIds(_ ids: [Int32]) throws {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw AttendError("token id \(bad) is outside the model's vocabulary of \(vocabularySize) (is the tokenizer from another model?)")
        }
    }
}

extension Generation {
    /// Beam search: keeps the `beams` most probable continuations (sum of token log-probabilities), each with
    /// its own KV cache. A finished hypothesis (end-of-sequence) is ranked by score / length^lengthPenalty.
    /// Returns the best hypothesis' tokens (without the end token) and its score.
    public static func beamSearch(model: CausalLanguageModel, eosId: Int32?, prompt: [Int32], beams: Int, maxTokens: Int,
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
            // Without a length reward, scores only fall as tokens are added: stop once no live hypothesis can
            // beat the best finished one.
            if lengthPenalty <= 0, let best = finished.map(\.score).max(),
               alive.allSatisfy({ normalized($0.logProb, $0.tokens.count) < best }) { break }
            if alive.isEmpty { break }
        }
        let all = finished + alive.map { ($0.tokens, normalized($0.logProb, $0.tokens.count)) }
        return all.max { $0.score < $1.score }!
    }
}

extension Generation {
    /// Self-attention weights [T, T] of query head `head` in `layer` (negative: from the end) while the model
    /// reads `prompt`. Returns the weights and the layer index used.
    public static func attentionMap(model: LlamaModel, prompt: [Int32], layer: Int, head: Int) throws -> (Tensor, Int) {
        let layers = model.config.layerCount
        let l = layer < 0 ? layers + layer : layer
        guard (0..<layers).contains(l) else { throw AttendError("--layer \(layer): the model has \(layers) layers (0...\(layers - 1), or -1...-\(layers))") }
        guard (0..<model.config.headCount).contains(head) else {
            throw AttendError("--head \(head): the model has \(model.config.headCount) query heads (0...\(model.config.headCount - 1))")
        }
        guard !prompt.isEmpty, prompt.count <= model.config.contextLength else {
            throw AttendError("the prompt has \(prompt.count) tokens; an attention map needs 1...\(model.config.contextLength)")
        }
        try model.checkTokenIds(prompt)
        model.attentionMapLayer = l
        defer { model.attentionMapLayer = nil; model.lastAttention = nil }
        _ = model(prompt, cache: KVCache(config: model.config, capacity: prompt.count), lastOnly: true)
        let t = prompt.count
        let weights = model.lastAttention!.slice(axis: 0, start: head, length: 1).reshape([t, t]).contiguous()
        return (weights, l)
    }

    /// A token's text made visible on a plot axis: spaces as '_', line breaks as "\n".
    public static func visibleToken(_ s: String) -> String {
        s.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
    }
}

/// Chat formatting. A full Jinja engine is not needed for the ChatML family: the template's own default
/// system message is kept, and messages are wrapped in <|im_start|>role ... <|im_end|>.
public struct ChatTemplate {
    public let defaultSystem: String?

    public init(ggufTemplate: String?) {
        if let t = ggufTemplate, let r = t.range(of: "<|im_start|>system\n"), let end = t.range(of: "<|im_end|>", range: r.upperBound..<t.endIndex) {
            defaultSystem = String(t[r.upperBound..<end.lowerBound])
        } else {
            defaultSystem = nil
        }
    }

    /// The prompt text for `messages` (role, content), ending with the assistant's turn.
    public func render(_ messages: [(role: String, content: String)]) -> String {
        var out = ""
        if let system = defaultSystem, messages.first?.role != "system" { out += "<|im_start|>system\n\(system)<|im_end|>\n" }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        return out + "<|im_start|>assistant\n"
    }
}
