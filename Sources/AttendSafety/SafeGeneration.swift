// Generation through the safety stage: each piece of text passes a `SafetyFilter` before it is handed on, and
// decoding stops as soon as the filter blocks. `SafetyGate` is the part shared by the single-sequence engine
// (`SafeGeneration.generate`) and the batched one (the server's `BatchedGenerator`).

import AttendLM
import AttendTokenizers

/// One answer's passage through a filter (or none): pieces in, checked text out.
public final class SafetyGate {
    public let filter: SafetyFilter?
    public private(set) var released = ""
    private var failure: Error?
    private let onText: (String) -> Void

    public init(filter: SafetyFilter?, onText: @escaping (String) -> Void) { (self.filter, self.onText) = (filter, onText) }

    /// Takes a generated piece; hands on what the filter releases.
    public func pass(_ piece: String) {
        guard let filter else { released += piece; onText(piece); return }
        guard failure == nil else { return }
        do { emit(try filter.feed(piece).text) } catch { failure = error }
    }

    /// Whether decoding should stop: the filter blocked, or failed.
    public var shouldStop: Bool { filter?.stopped == true || failure != nil }

    /// The generation has ended: releases the rest and returns the result as it left (its text what was released,
    /// finish reason `content_filter` when the filter blocked).
    public func finish(_ result: GenerationResult) throws -> GenerationResult {
        if let failure { throw failure }
        guard let filter else { return result }
        emit(try filter.finish().text)
        var r = result
        r.text = released
        if filter.stopped { r.finishReason = "content_filter" }
        return r
    }

    private func emit(_ text: String) {
        if !text.isEmpty { released += text; onText(text) }
    }
}

public enum SafeGeneration {
    /// Generates as `Generation.generate` does; with a filter, `onText` receives only checked text, the result's text is
    /// what was released, and a block ends the answer with finish reason `content_filter`.
    ///
    /// ```swift
    /// let r = try SafeGeneration.generate(model: lm.model, tokenizer: lm.tokenizer, input: LMInput(ids), options: options,
    ///                                     filter: SafetyFilter(stage: stage)) { print($0, terminator: "") }
    /// if r.finishReason == "content_filter" { print("\n(stopped by the safety policy)") }
    /// ```
    public static func generate(model: any LanguageModel, tokenizer: any TextTokenizer, input: LMInput, options: SamplingOptions,
                                constraint: GrammarConstraint? = nil, filter: SafetyFilter?,
                                onText: @escaping (String) -> Void = { _ in }, isCancelled: () -> Bool = { false }) throws -> GenerationResult {
        let gate = SafetyGate(filter: filter, onText: onText)
        let r = try Generation.generate(model: model, tokenizer: tokenizer, input: input, options: options, constraint: constraint,
                                        onText: gate.pass, isCancelled: { isCancelled() || gate.shouldStop })
        return try gate.finish(r)
    }
}
