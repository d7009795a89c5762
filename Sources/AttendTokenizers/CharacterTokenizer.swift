// Character-level tokenization (nanoGPT's shakespeare_char): each distinct character of the training text
// is one token, in sorted order.

import AttendTensor

/// A character-level tokenizer (nanoGPT's shakespeare_char): one id per distinct character of the training text.
///
/// ```swift
/// let tokenizer = CharacterTokenizer(text: "hello world")
/// let ids = try tokenizer.encode("hello")   // throws on a character the text did not have
/// tokenizer.decode(ids)   // "hello"
/// ```
public struct CharacterTokenizer: Codable, Equatable {
    public let characters: [Character]
    private let index: [Character: Int32]

    public init(text: String) {
        characters = Array(Set(text)).sorted()
        index = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, Int32($0)) })
    }

    public init(characters: [Character]) {
        self.characters = characters
        index = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, Int32($0)) })
    }

    enum CodingKeys: String, CodingKey { case characters }
    public init(from decoder: Decoder) throws {
        let s = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .characters)
        self.init(characters: Array(s))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(String(characters), forKey: .characters)
    }

    public var count: Int { characters.count }

    /// Ids of `text`; throws naming the first character that is not in the vocabulary.
    public func encode(_ text: String) throws -> [Int32] {
        try text.map { ch in
            guard let id = index[ch] else { throw AttendError("character '\(ch)' is not in the \(count)-character vocabulary") }
            return id
        }
    }

    public func decode(_ ids: [Int32]) -> String { String(ids.map { characters[Int($0)] }) }
}
