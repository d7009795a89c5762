// Task-oriented values: the lecture's point that a document's value need not be its raw text. At ingestion a
// language model fills a JSON schema from each document, decoding under the schema's grammar so the output always
// parses and conforms; the value is stored beside the chunks, and answering can put it in the prompt instead of
// the passage.

import AttendLM
import AttendTensor
import AttendTokenizers
import Foundation

/// Fills a JSON schema from a document with a language model, under constrained decoding.
///
/// ```swift
/// let extractor = try ValueExtractor(schema: #"{"type": "object", "properties": {"release_date": {"type": "string", "format": "date"}}, "required": ["release_date"]}"#,
///                                    model: lm.model, tokenizer: lm.tokenizer, template: ChatTemplate(ggufTemplate: lm.chatTemplate))
/// let value = try extractor.extract(try SourceDocument.read(path: "release-15-4.html"))   // {"release_date": "2023-08-10"}
/// ```
public struct ValueExtractor {
    public let schema: String
    public let model: any LanguageModel
    public let tokenizer: any TextTokenizer
    public let template: ChatTemplate
    /// The document's first tokens that the prompt carries (the rest is not read).
    public var documentTokens = 600
    public var options: SamplingOptions
    private let constraint: GrammarConstraint

    /// Compiles the schema (a schema the grammar cannot express is refused here, naming the keyword).
    public init(schema: String, model: any LanguageModel, tokenizer: any TextTokenizer, template: ChatTemplate) throws {
        (self.schema, self.model, self.tokenizer, self.template) = (schema, model, tokenizer, template)
        constraint = GrammarConstraint(grammar: try OutputConstraint.jsonSchema(schema).compile(), tokenizer: tokenizer)
        options = SamplingOptions()
        options.maxTokens = 256
        options.repetitionPenalty = 1.1
        options.constraint = .jsonSchema(schema)
    }

    /// A short fingerprint of the schema, stored with each document so a new schema re-extracts.
    public var schemaHash: String { contentHash(Data(schema.utf8)) }

    static let instructions = "You read a document and fill in JSON about it. Copy values exactly as the document writes them."

    /// The prompt for one document: its title and first `documentTokens` tokens, then the schema.
    public func prompt(_ document: SourceDocument) throws -> [Int32] {
        let text = document.sections.map { $0.heading.isEmpty ? $0.text : "\($0.heading)\n\($0.text)" }.joined(separator: "\n\n")
        var ids = try tokenizer.encode(text, allowSpecial: false)
        if ids.count > documentTokens { ids = Array(ids.prefix(documentTokens)) }
        let body = "Document: \(document.title)\n\(tokenizer.decode(ids))\n\nJSON schema:\n\(schema)\n\nWrite the JSON for this document."
        let prompt = try tokenizer.encode(template.render([("system", Self.instructions), ("user", body)]), allowSpecial: true)
        guard prompt.count + options.maxTokens < model.contextLength else {
            throw AttendError("extract: the prompt takes \(prompt.count) tokens; with \(options.maxTokens) for the JSON that exceeds the model's context of \(model.contextLength)")
        }
        return prompt
    }

    /// The document's value: JSON text that parses and conforms to the schema.
    public func extract(_ document: SourceDocument) throws -> String {
        let result = try Generation.generate(model: model, tokenizer: tokenizer, input: LMInput(try prompt(document)), options: options, constraint: constraint)
        guard result.finishReason == "stop", constraint.grammar.matches(result.text) else {
            throw AttendError("\(document.source): the JSON was not finished within \(options.maxTokens) tokens")
        }
        return result.text
    }
}
