// The recurrent baseline of the lectures: a GRU encoder-decoder (Cho et al., 2014), with or without
// attention over the encoder states (Bahdanau et al., 2015; dot-product scoring as in Luong et al., 2015).
// Without attention the decoder sees the source only through the encoder's final hidden state: the
// bottleneck ("the hidden state forgets") that attention removes.

import AttendNN
import AttendTensor
import Foundation

/// One GRU step: z = sigma(Wz x + Uz h), r = sigma(Wr x + Ur h), n = tanh(Wn x + r * (Un h)), h' = (1 - z) n + z h.
public final class GRUCell: Module {
    public let input: Linear    // x -> [z, r, n] pre-activations (3H)
    public let hidden: Linear   // h -> [z, r, n] (3H)
    public let size: Int

    public init(inputSize: Int, hiddenSize: Int, generator: inout RandomGenerator) {
        input = Linear(inputSize, 3 * hiddenSize, generator: &generator)
        hidden = Linear(hiddenSize, 3 * hiddenSize, generator: &generator)
        size = hiddenSize
    }

    /// x: [B, I], h: [B, H] -> [B, H].
    public func callAsFunction(_ x: Tensor, _ h: Tensor) -> Tensor {
        let gx = input(x), gh = hidden(h)
        let z = (gx.slice(axis: 1, start: 0, length: size) + gh.slice(axis: 1, start: 0, length: size)).sigmoid()
        let r = (gx.slice(axis: 1, start: size, length: size) + gh.slice(axis: 1, start: size, length: size)).sigmoid()
        let n = (gx.slice(axis: 1, start: 2 * size, length: size) + r * gh.slice(axis: 1, start: 2 * size, length: size)).tanh()
        return (1 - z) * n + z * h
    }
}

/// A GRU encoder-decoder, with or without dot-product attention over the encoder states: the recurrent
/// baseline the Transformer is compared with.
///
/// ```swift
/// let gru = GRUSeq2Seq(sourceVocabulary: v.count, targetVocabulary: v.count, attention: true, generator: &g)
/// let report = try Seq2SeqTraining.runGRU(model: gru, vocabulary: v, train: train, test: test, steps: 3000)
/// let predicted = gru.greedy(source, lengths: lengths, maxLength: 11)
/// ```
public final class GRUSeq2Seq: Module {
    public let sourceEmbedding: Embedding
    public let targetEmbedding: Embedding
    public let encoder: GRUCell
    public let decoder: GRUCell
    public let output: Linear
    public let useAttention: Bool
    public let size: Int

    public init(sourceVocabulary: Int, targetVocabulary: Int, hiddenSize: Int = 128, embeddingSize: Int = 32, attention: Bool,
                generator: inout RandomGenerator) {
        sourceEmbedding = Embedding(sourceVocabulary, embeddingSize, generator: &generator)
        targetEmbedding = Embedding(targetVocabulary, embeddingSize, generator: &generator)
        encoder = GRUCell(inputSize: embeddingSize, hiddenSize: hiddenSize, generator: &generator)
        decoder = GRUCell(inputSize: embeddingSize + (attention ? hiddenSize : 0), hiddenSize: hiddenSize, generator: &generator)
        output = Linear(hiddenSize * (attention ? 2 : 1), targetVocabulary, generator: &generator)
        useAttention = attention
        size = hiddenSize
    }

    /// Encoder states [B, S, H] (held at each row's last real token past its length) and final states [B, H].
    func encode(_ source: IntTensor, lengths: [Int]) -> (Tensor, Tensor) {
        let (b, s) = (source.shape[0], source.shape[1])
        let e = sourceEmbedding(source)  // (B, S, E)
        var h = Tensor.zeros([b, size])
        var states: [Tensor] = []
        for t in 0..<s {
            let next = encoder(e.slice(axis: 1, start: t, length: 1).reshape([b, -1]), h)
            // Rows that have ended keep their state, so the final state is the last real token's.
            let live = Tensor(lengths.map { t < $0 ? 1 : 0 }, shape: [b, 1])
            h = next * live + h * (1 - live)
            states.append(h)
        }
        return (Tensor.stack(states, axis: 1), h)
    }

    /// Teacher-forced logits [B, T, V].
    public func callAsFunction(_ source: IntTensor, lengths: [Int], decoderInput: IntTensor) -> Tensor {
        let (memory, final) = encode(source, lengths: lengths)
        let mask = Tensor(shape: [source.shape[0], 1, source.shape[1]])
        for (r, n) in lengths.enumerated() { for k in n..<source.shape[1] { mask.pointer[r * source.shape[1] + k] = 1 } }
        let (b, t) = (decoderInput.shape[0], decoderInput.shape[1])
        let y = targetEmbedding(decoderInput)
        var h = final, context = Tensor.zeros([b, size])
        var logits: [Tensor] = []
        for i in 0..<t {
            let yi = y.slice(axis: 1, start: i, length: 1).reshape([b, -1])
            h = decoder(useAttention ? Tensor.concat([yi, context], axis: 1) : yi, h)
            if useAttention {
                // Dot-product attention of the new state over the encoder states.
                let scores = h.unsqueeze(1).matmul(memory.transposed(1, 2)).maskedFill(mask, -.infinity)  // (B, 1, S)
                context = scores.softmax(axis: -1).matmul(memory).reshape([b, size])
                logits.append(output(Tensor.concat([h, context], axis: 1)))
            } else {
                logits.append(output(h))
            }
        }
        return Tensor.stack(logits, axis: 1)
    }

    /// Greedy decoding of a batch; target ids (without BOS/EOS) per row.
    public func greedy(_ source: IntTensor, lengths: [Int], maxLength: Int) -> [[Int32]] {
        Seq2SeqDecoding.greedy(self, source: source, lengths: lengths, maxLength: maxLength)
    }
}

extension GRUSeq2Seq: Seq2SeqModel {
    // Re-running the decoder over the growing prefix keeps the code short; targets are short.
    public func nextTokenLogits(_ source: IntTensor, lengths: [Int], prefixes: IntTensor) -> Tensor {
        let t = prefixes.shape[1]
        return self(source, lengths: lengths, decoderInput: prefixes).slice(axis: 1, start: t - 1, length: 1).reshape([prefixes.shape[0], -1])
    }
}

extension Seq2SeqTraining {
    /// Trains a GRU encoder-decoder like `run` trains the Transformer; returns held-out exact match.
    public static func runGRU(model: GRUSeq2Seq, vocabulary v: Seq2SeqVocabulary, train: [(String, String)], test: [(String, String)],
                              steps: Int, batchSize: Int = 64, learningRate: Float = 3e-3, seed: UInt64 = 1, beams: Int = 1,
                              onLog: (Int, Float) -> Void = { _, _ in }) throws -> Seq2SeqReport {
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: learningRate)
        let schedule = WarmupCosineSchedule(peak: learningRate, minimum: learningRate / 20, warmupSteps: min(100, steps / 10), totalSteps: steps)
        let seconds = try teacherForced(model, optimizer: optimizer, schedule: schedule, vocabulary: v, train: train, steps: steps,
                                        batchSize: batchSize, seed: seed, label: model.useAttention ? "gru+attention" : "gru", onLog: onLog) {
            model($0.source, lengths: $0.sourceLengths, decoderInput: $0.decoderInput)
        }
        let (accuracy, examples) = try Seq2SeqDecoding.exactMatch(model, vocabulary: v, test: test, beams: beams, maxLength: 11)
        return Seq2SeqReport(exactMatch: accuracy, examples: examples, seconds: seconds)
    }
}
