// The encoder interface: a batch of inputs in, one vector per input out. Text encoders (BERT / MiniLM sentence
// embeddings) implement it today; image encoders and CLIP's towers will implement the same protocol, so that
// retrieval, the server's /v1/embeddings and contrastive training take any of them.

import AttendTensor

/// Anything that turns a batch of inputs into vectors [B, dimension], pooled and normalized as configured.
///
/// ```swift
/// let embedder = try ModelLocator.sentenceEmbedder("all-MiniLM-L6-v2")     // a VectorEncoder of String
/// let vectors = try embedder.encode(["A man is eating food.", "A man is riding a horse."])   // [2, 384]
/// ```
public protocol VectorEncoder {
    associatedtype Input
    /// Width of the vectors.
    var dimension: Int { get }
    /// Whether the vectors have unit length (so a dot product is the cosine similarity).
    var producesUnitVectors: Bool { get }
    /// Vectors [inputs.count, dimension], in the order of `inputs`.
    func encode(_ inputs: [Input]) throws -> Tensor
}
