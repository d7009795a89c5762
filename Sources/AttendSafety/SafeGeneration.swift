// Generation through the safety stage: the shared generation engine, with each piece of text passed through a
// `SafetyFilter` before it is handed on, and decoding stopped as soon as the filter blocks.

import AttendLM
import AttendTokenizers

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
                                onText: (String) -> Void = { _ in }, isCancelled: () -> Bool = { false }) throws -> GenerationResult {
        guard let filter else {
            return try Generation.generate(model: model, tokenizer: tokenizer, input: input, options: options, constraint: constraint,
                                           onText: onText, isCancelled: isCancelled)
        }
        var released = ""
        var failure: Error? = nil
        func pass(_ r: (text: String, stopped: Bool)) {
            if !r.text.isEmpty { released += r.text; onText(r.text) }
        }
        var result = try Generation.generate(model: model, tokenizer: tokenizer, input: input, options: options, constraint: constraint,
                                             onText: { piece in
                                                 guard failure == nil else { return }
                                                 do { pass(try filter.feed(piece)) } catch { failure = error }
                                             },
                                             isCancelled: { isCancelled() || filter.stopped || failure != nil })
        if let failure { throw failure }
        pass(try filter.finish())
        result.text = released
        if filter.stopped { result.finishReason = "content_filter" }
        return result
    }
}
