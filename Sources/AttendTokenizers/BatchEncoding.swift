// Batch encoding for model inputs: many texts at once (on all cores), truncated to a maximum length and
// padded to the longest text or a fixed length, with the attention mask that marks real tokens.

import Foundation

public enum Padding: Equatable {
    case none
    /// To the longest sequence in the batch.
    case longest
    /// To exactly this many tokens (longer sequences are truncated to it).
    case toLength(Int)
}

/// The ids of a batch of texts padded to one width, with the mask of real tokens.
///
/// ```swift
/// let batch = tokenizer.encodeBatch(texts, maxLength: 128, padding: .longest, padId: tokenizer.padId)
/// let ids = IntTensor(batch.ids.flatMap { $0 }, shape: [texts.count, batch.ids[0].count])
/// let lengths = batch.attentionMask.map { Int($0.reduce(0, +)) }
/// ```
public struct BatchEncoding: Equatable {
    public var ids: [[Int32]]
    /// 1 for a real token, 0 for padding.
    public var attentionMask: [[Int32]]
}

/// A tokenizer that turns one text into the ids a model reads (special tokens included).
public protocol TextEncoder {
    /// Ids of `text`, at most `maxLength` of them when given.
    func modelInput(_ text: String, maxLength: Int?) -> [Int32]
}

extension TextEncoder {
    /// Encodes `texts` in order, in parallel, then pads with `padId` on the right.
    public func encodeBatch(_ texts: [String], maxLength: Int? = nil, padding: Padding = .longest, padId: Int32) -> BatchEncoding {
        var limit = maxLength
        if case .toLength(let n) = padding { limit = min(limit ?? n, n) }
        var rows = [[Int32]](repeating: [], count: texts.count)
        rows.withUnsafeMutableBufferPointer { out in
            let buffer = out
            DispatchQueue.concurrentPerform(iterations: texts.isEmpty ? 0 : min(texts.count, ProcessInfo.processInfo.activeProcessorCount)) { chunk in
                let n = min(texts.count, ProcessInfo.processInfo.activeProcessorCount)
                for i in stride(from: chunk, to: texts.count, by: n) { buffer[i] = modelInput(texts[i], maxLength: limit) }
            }
        }
        let width: Int
        switch padding {
        case .none: return BatchEncoding(ids: rows, attentionMask: rows.map { [Int32](repeating: 1, count: $0.count) })
        case .longest: width = rows.map(\.count).max() ?? 0
        case .toLength(let n): width = n
        }
        return BatchEncoding(ids: rows.map { $0 + [Int32](repeating: padId, count: width - $0.count) },
                             attentionMask: rows.map { [Int32](repeating: 1, count: $0.count) + [Int32](repeating: 0, count: width - $0.count) })
    }
}

extension WordPieceTokenizer: TextEncoder {
    /// [CLS] pieces [SEP], cut to `maxLength` ids with both special tokens kept.
    public func modelInput(_ text: String, maxLength: Int?) -> [Int32] { encode(text, maxLength: maxLength ?? Int.max / 2) }
}

extension ByteLevelBPETokenizer: TextEncoder {
    /// The ids of `text` (no added special tokens), cut to `maxLength`.
    public func modelInput(_ text: String, maxLength: Int?) -> [Int32] { Array(encode(text).prefix(maxLength ?? Int.max)) }
}
