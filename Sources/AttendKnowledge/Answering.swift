// Retrieval-augmented answering, the lecture's "attention turned outward": the question is the query, the chunks'
// embeddings are the keys, their texts (or structured values) are the values; the best ones go, numbered, into the
// prompt, within the model's context budget, and the answer cites them by number.

import AttendLM
import AttendTensor
import AttendTokenizers
import Foundation

/// A prompt built from retrieved passages.
public struct GroundedPrompt {
    /// The chat messages (system instructions, then the user turn with the numbered sources and the question).
    public var messages: [(role: String, content: String)]
    /// The hits that fit, in the order they are numbered ([1], [2], ...).
    public var sources: [SearchHit]
    /// Token ids of the rendered prompt.
    public var ids: [Int32]
}

/// Answers questions from a store with a language model.
///
/// ```swift
/// let answerer = Answerer(retriever: retriever, model: lm.model, tokenizer: lm.tokenizer, template: ChatTemplate(ggufTemplate: lm.chatTemplate))
/// let answer = try answerer.answer("How do I create an index without locking writes?") { print($0, terminator: "") }
/// for (i, hit) in answer.prompt.sources.enumerated() { print("[\(i + 1)] \(hit.chunk.citation)") }
/// ```
public struct Answerer {
    public let retriever: Retriever
    public let model: any LanguageModel
    public let tokenizer: any TextTokenizer
    public let template: ChatTemplate
    /// Passages retrieved; those that do not fit the budget are dropped from the end.
    public var top = 5
    public var mode: RetrievalMode = .hybrid
    public var filter = SearchFilter()
    /// Tokens the prompt may use; the rest of the context is left for the answer.
    public var promptBudget: Int?
    /// Use each document's structured value instead of the passage text, when it has one.
    public var useValues = false
    public var options: SamplingOptions = {
        var o = SamplingOptions()
        o.maxTokens = 200
        return o
    }()

    public init(retriever: Retriever, model: any LanguageModel, tokenizer: any TextTokenizer, template: ChatTemplate) {
        (self.retriever, self.model, self.tokenizer, self.template) = (retriever, model, tokenizer, template)
    }

    static let instructions = "You answer questions from the numbered sources you are given, briefly, and cite them like [1]."
    static let request = "Answer the question in two or three sentences, using only the sources above, and cite them like [1]. If they do not say, answer that you do not know."

    /// The prompt for `question` over `hits`: sources are added in rank order while the rendered prompt stays within
    /// the budget (a passage that does not fit is cut to what does, if at least a quarter of it fits).
    /// Earlier turns of a conversation (`history`) go between the instructions and the question.
    public func prompt(question: String, hits: [SearchHit], history: [(role: String, content: String)] = []) throws -> GroundedPrompt {
        let budget = promptBudget ?? max(256, model.contextLength - options.maxTokens - 8)
        func render(_ sources: [(hit: SearchHit, text: String)]) throws -> (messages: [(role: String, content: String)], ids: [Int32]) {
            var body = "Sources:\n"
            for (i, s) in sources.enumerated() {
                let where_ = s.hit.chunk.heading.isEmpty || s.hit.chunk.heading == s.hit.chunk.title ? s.hit.chunk.title : "\(s.hit.chunk.title) — \(s.hit.chunk.heading)"
                body += "[\(i + 1)] \(where_)\n\(s.text)\n\n"
            }
            body += "Question: \(question)\n\n\(Answerer.request)"
            let messages: [(role: String, content: String)] = [("system", Answerer.instructions)] + history + [("user", body)]
            return (messages, try tokenizer.encode(template.render(messages), allowSpecial: true))
        }
        let bare = try render([])
        guard bare.ids.count <= budget else {
            throw AttendError("the question takes \(bare.ids.count) tokens with the instructions, more than the prompt budget of \(budget) tokens")
        }
        var kept: [(hit: SearchHit, text: String)] = []
        var ids = bare.ids
        var messages = bare.messages
        var valueSources = Set<String>()
        for hit in hits {
            // A document's value stands for all its chunks: it goes in once.
            if useValues, hit.chunk.value != nil, !valueSources.insert(hit.chunk.source).inserted { continue }
            let text = useValues ? (hit.chunk.value ?? hit.chunk.text) : hit.chunk.text
            let attempt = try render(kept + [(hit, text)])
            if attempt.ids.count <= budget {
                kept.append((hit, text)); ids = attempt.ids; messages = attempt.messages
                continue
            }
            // Cut the passage by words to what fits, when enough of it does to be worth citing.
            let words = text.split(separator: " ")
            var lo = 0, hi = words.count
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if try render(kept + [(hit, words.prefix(mid).joined(separator: " ") + " …")]).ids.count <= budget { lo = mid } else { hi = mid - 1 }
            }
            if lo >= words.count / 4 && lo > 0 {
                let cut = words.prefix(lo).joined(separator: " ") + " …"
                let r = try render(kept + [(hit, cut)])
                kept.append((hit, cut)); ids = r.ids; messages = r.messages
            }
            break
        }
        return GroundedPrompt(messages: messages, sources: kept.map(\.hit), ids: ids)
    }

    public struct Answer {
        public var text: String
        public var prompt: GroundedPrompt
        public var generation: GenerationResult
        public var retrievalSeconds: Double

        public init(text: String, prompt: GroundedPrompt, generation: GenerationResult, retrievalSeconds: Double) {
            (self.text, self.prompt, self.generation, self.retrievalSeconds) = (text, prompt, generation, retrievalSeconds)
        }
        /// Source numbers the answer cites ([n] in its text), in order of first mention.
        public var citedSources: [Int] {
            var out: [Int] = []
            var i = text.startIndex
            while let open = text[i...].firstIndex(of: "[") {
                guard let close = text[open...].firstIndex(of: "]") else { break }
                for part in text[text.index(after: open)..<close].split(separator: ",") {
                    if let n = Int(part.trimmingCharacters(in: .whitespaces)), (1...prompt.sources.count).contains(n), !out.contains(n) { out.append(n) }
                }
                i = text.index(after: open)
            }
            return out
        }
    }

    /// Retrieves, builds the prompt and generates; `onText` streams the answer.
    public func answer(_ question: String, onText: (String) -> Void = { _ in }) throws -> Answer {
        let (p, seconds) = try ground(question)
        let r = try Generation.generate(model: model, tokenizer: tokenizer, prompt: p.ids, options: options, onText: onText)
        return Answer(text: r.text, prompt: p, generation: r, retrievalSeconds: seconds)
    }

    /// Retrieves for `question` and builds the prompt, without generating (for callers that generate themselves,
    /// through a safety filter or a server's queue). Returns the prompt and the seconds retrieval took.
    public func ground(_ question: String, history: [(role: String, content: String)] = []) throws -> (prompt: GroundedPrompt, seconds: Double) {
        let question = question.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !question.isEmpty else { throw AttendError("ask: the question is empty") }
        let started = Date()
        let hits = try retriever.search(question, top: top, mode: mode, filter: filter)
        let seconds = Date().timeIntervalSince(started)
        return (try prompt(question: question, hits: hits, history: history), seconds)
    }
}
