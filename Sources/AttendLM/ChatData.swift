// Chat-formatted training data: JSON Lines of {"messages": [{"role": ..., "content": ...}, ...]}, the format
// people already have (OpenAI fine-tuning, TRL), turned into token ids and a mask of the tokens the model
// learns to produce (the assistant's replies and their end marks; prompts and system text are context only).

import AttendTensor
import AttendTokenizers
import Foundation

/// One conversation.
public struct ChatExample: Equatable {
    public var messages: [Message]

    public struct Message: Codable, Equatable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public init(messages: [Message]) { self.messages = messages }

    /// Reads a JSON Lines file; blank lines are skipped. Throws naming the file and line of the first line
    /// that is not a JSON object with a "messages" list of {role, content}, roles system / user / assistant,
    /// and at least one assistant message.
    ///
    /// ```swift
    /// let examples = try ChatExample.read(jsonl: "train.jsonl")
    /// ```
    public static func read(jsonl path: String) throws -> [ChatExample] {
        guard let data = FileManager.default.contents(atPath: path) else { throw AttendError("\(path): no such file") }
        return try parse(String(decoding: data, as: UTF8.self), source: path)
    }

    public static func parse(_ text: String, source: String) throws -> [ChatExample] {
        struct Line: Decodable { var messages: [Message]? }
        var out: [ChatExample] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let where_ = "\(source):\(i + 1)"
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let decoded: Line
            do {
                decoded = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
            } catch DecodingError.dataCorrupted {
                throw AttendError("\(where_): not valid JSON (each line must be one JSON object)")
            } catch DecodingError.typeMismatch(_, let context) {
                let key = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
                throw AttendError("\(where_): \(key.isEmpty ? "the line" : "'\(key)'") has the wrong type (expected {\"messages\": [{\"role\": ..., \"content\": ...}]})")
            } catch DecodingError.keyNotFound(let key, let context) {
                let at = (context.codingPath + [key]).map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
                throw AttendError("\(where_): '\(at)' is missing")
            }
            guard let messages = decoded.messages else { throw AttendError("\(where_): no \"messages\" list") }
            for (j, m) in messages.enumerated() where !["system", "user", "assistant"].contains(m.role) {
                throw AttendError("\(where_): messages.\(j).role is '\(m.role)'; expected system, user or assistant")
            }
            guard messages.contains(where: { $0.role == "assistant" }) else {
                throw AttendError("\(where_): no assistant message, so nothing to learn from")
            }
            out.append(ChatExample(messages: messages))
        }
        guard !out.isEmpty else { throw AttendError("\(source): no examples") }
        return out
    }
}

/// A conversation as token ids, with `trained[i]` true where token i is one the model should learn to produce.
public struct TokenizedChat: Equatable {
    public var ids: [Int32]
    public var trained: [Bool]
    public var trainedCount: Int { trained.lazy.filter { $0 }.count }
}

extension ChatTemplate {
    /// The conversation in this template, as ids with the assistant's content and its `<|im_end|>` marked
    /// for training. Each piece is encoded on its own (they meet at special tokens or newlines, where a
    /// byte-level BPE splits anyway), so the mask falls on token boundaries. At most `maxLength` tokens are kept.
    ///
    /// ```swift
    /// let chat = template.tokenize(example, tokenizer: tokenizer, maxLength: 256)
    /// ```
    public func tokenize(_ example: ChatExample, tokenizer: TextTokenizer, maxLength: Int) throws -> TokenizedChat {
        var ids: [Int32] = [], trained: [Bool] = []
        func add(_ text: String, train: Bool) throws {
            let piece = try tokenizer.encode(text, allowSpecial: true)
            ids += piece
            trained += Array(repeating: train, count: piece.count)
        }
        if let system = defaultSystem, example.messages.first?.role != "system" { try add("<|im_start|>system\n\(system)<|im_end|>\n", train: false) }
        for m in example.messages {
            if m.role == "assistant" {
                try add("<|im_start|>assistant\n", train: false)
                try add(m.content + "<|im_end|>", train: true)
                try add("\n", train: false)
            } else {
                try add("<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n", train: false)
            }
        }
        if ids.count > maxLength {
            ids.removeLast(ids.count - maxLength)
            trained.removeLast(trained.count - maxLength)
        }
        return TokenizedChat(ids: ids, trained: trained)
    }
}
