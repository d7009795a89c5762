// Picking the next token from logits: repetition / presence / frequency penalties, temperature, top-k,
// top-p and min-p, then greedy choice or seeded sampling. Shared by every caller of the generation engine.

import AttendTensor
import Foundation

/// How the next token is chosen, and when generation stops.
///
/// ```swift
/// var options = SamplingOptions()
/// options.temperature = 0.8
/// options.topP = 0.95
/// options.stop = ["\n\n"]
/// ```
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
    /// When the context fills, re-read its last half and go on instead of stopping (for long samples from
    /// small models trained here).
    public var contextShift = false
    /// What the text must be: a grammar's sentence, or JSON that a schema describes (constrained decoding).
    public var constraint: OutputConstraint?
    /// Go on past the end-of-sequence token up to `maxTokens` (llama.cpp's `--ignore-eos`): timings of a fixed number
    /// of tokens, whatever the model would answer.
    public var ignoreEOS = false

    public init() {}
}

/// The generated tokens and text, with timings and why generation stopped ("stop", "length", "cancelled").
public struct GenerationResult {
    public var tokens: [Int32]
    public var text: String
    public var promptTokens: Int
    public var promptSeconds: Double
    public var generationSeconds: Double
    public var finishReason: String
    /// Per generated token, its log-probability under the model and the likeliest alternatives, when asked for
    /// (`BatchedGenerator`'s `logprobs`).
    public var logprobs: [TokenLogprob] = []
}

/// A generated token's log-probability (the model's log-softmax, before penalties and temperature) and the
/// `top` likeliest tokens at that step with theirs, best first.
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int32
    public var logprob: Float
    public var top: [(token: Int32, logprob: Float)]

    public static func == (a: Self, b: Self) -> Bool {
        a.token == b.token && a.logprob == b.logprob && a.top.map(\.token) == b.top.map(\.token) && a.top.map(\.logprob) == b.top.map(\.logprob)
    }

    /// The log-softmax of `logits` at `token`, and the `top` best tokens.
    public init(logits: [Float], token: Int32, top count: Int) {
        var m = -Float.infinity
        for v in logits { m = max(m, v) }
        var sum: Double = 0
        for v in logits { sum += Double(expf(v - m)) }
        let lse = m + Float(log(sum))
        self.token = token
        logprob = logits[Int(token)] - lse
        var best: [(token: Int32, logprob: Float)] = []
        if count > 0 {
            for (i, v) in logits.enumerated() where best.count < count || v > best[best.count - 1].logprob + lse {
                let entry = (token: Int32(i), logprob: v - lse)
                let at = best.firstIndex { $0.logprob < entry.logprob } ?? best.count
                best.insert(entry, at: at)
                if best.count > count { best.removeLast() }
            }
        }
        top = best
    }
}

public enum Generation {
    /// Picks the next token from `logits` given the tokens seen so far (`context`) and those generated.
    /// `allowed`, when given, says which tokens may come (constrained decoding); the others are never picked.
    public static func pick(_ logits: [Float], context: [Int32], generated: [Int32], options o: SamplingOptions,
                            generator: inout RandomGenerator, allowed: ((Int) -> Bool)? = nil) -> Int32 {
        var l = logits
        if o.repetitionPenalty != 1 {
            for id in Set(context + generated) { let i = Int(id); l[i] = l[i] > 0 ? l[i] / o.repetitionPenalty : l[i] * o.repetitionPenalty }
        }
        if o.presencePenalty != 0 || o.frequencyPenalty != 0 {
            var counts: [Int32: Int] = [:]
            for id in generated { counts[id, default: 0] += 1 }
            for (id, n) in counts { l[Int(id)] -= o.presencePenalty + o.frequencyPenalty * Float(n) }
        }
        if let allowed {
            if o.temperature <= 0 {
                // The best allowed token: usually the best token, so try the few best before sorting them all.
                var probe = l
                for _ in 0..<64 {
                    let i = probe.indices.max { probe[$0] < probe[$1] }!
                    if probe[i] == -.infinity { break }
                    if allowed(i) { return Int32(i) }
                    probe[i] = -.infinity
                }
                let order = l.indices.sorted { l[$0] > l[$1] }
                return Int32(order.first(where: allowed) ?? order[0])
            }
            // Sampling: ask the constraint about tokens from the most likely down, until those asked hold all but
            // 1e-3 of the probability (or top-k allowed ones are found); the unasked tail is dropped. Asking about
            // the whole vocabulary would cost a grammar step per token, every step.
            let order = l.indices.sorted { l[$0] > l[$1] }
            let top = l[order[0]] / o.temperature
            let total = order.reduce(Float(0)) { $0 + Foundation.exp(l[$1] / o.temperature - top) }
            var keep: [Int] = [], asked: Float = 0
            for i in order where l[i] > -.infinity {
                if allowed(i) { keep.append(i) }
                asked += Foundation.exp(l[i] / o.temperature - top) / total
                if !keep.isEmpty && (asked > 1 - 1e-3 || keep.count == o.topK) { break }
            }
            guard !keep.isEmpty else { return Int32(order[0]) }
            var masked = [Float](repeating: -.infinity, count: l.count)
            for i in keep { masked[i] = l[i] }
            l = masked
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

}
