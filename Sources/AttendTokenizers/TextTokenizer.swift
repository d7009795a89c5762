// The one interface the generation engine, the server and the trainers need from a tokenizer: text to ids,
// ids back to bytes and text, and the special tokens that end or begin a sequence.

/// A tokenizer the generation engine can drive: byte-level BPE (GPT-2, Llama), characters (nanoGPT), or the
/// tokenizer a checkpoint trained here carries.
///
/// ```swift
/// let tokenizer: any TextTokenizer = try ByteLevelBPETokenizer.load(tokenizerJSON: "tokenizer.json")
/// let ids = try tokenizer.encode("Hello", allowSpecial: true)
/// tokenizer.decode(ids)   // "Hello"
/// ```
public protocol TextTokenizer {
    /// Ids of `text`; `allowSpecial` lets special-token text ("<|im_end|>") map to its id.
    func encode(_ text: String, allowSpecial: Bool) throws -> [Int32]
    func decode(_ ids: [Int32]) -> String
    /// The UTF-8 bytes of `ids` (a token may end in the middle of a character; streaming needs the bytes).
    func bytes(_ ids: [Int32]) -> [UInt8]
    var bosId: Int32? { get }
    var eosId: Int32? { get }
    /// Number of ids the tokenizer can produce.
    var vocabularyCount: Int { get }
    /// Whether `id` is a special (control) token such as "<|im_end|>", never part of generated text.
    func isSpecial(_ id: Int32) -> Bool
}

extension TextTokenizer {
    public func isSpecial(_ id: Int32) -> Bool { id == eosId || id == bosId }
}

extension ByteLevelBPETokenizer: TextTokenizer {
    public var vocabularyCount: Int { tokens.count }
    public func isSpecial(_ id: Int32) -> Bool { id == eosId || id == bosId || specialTokenIds.contains(id) }
}

extension CharacterTokenizer: TextTokenizer {
    public func encode(_ text: String, allowSpecial: Bool) throws -> [Int32] { try encode(text) }
    public func bytes(_ ids: [Int32]) -> [UInt8] { Array(decode(ids).utf8) }
    public var bosId: Int32? { nil }
    public var eosId: Int32? { nil }
    public var vocabularyCount: Int { count }
}
