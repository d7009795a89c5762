// Decoding for encoder-decoder models: greedy and beam search over any model that gives next-token logits
// for a batch of target prefixes. One implementation serves the Transformer and the GRU models.

import AttendNN
import AttendTensor
import Foundation

/// An encoder-decoder that gives next-token logits for target prefixes: all that greedy and beam search need,
/// so the Transformer and the GRU models share one decoder.
///
/// ```swift
/// let models: [Seq2SeqModel] = [transformer, gru]
/// for m in models { print(try Seq2SeqDecoding.exactMatch(m, vocabulary: v, test: test, beams: 4, maxLength: 12).accuracy) }
/// ```
public protocol Seq2SeqModel: AnyObject {
    /// Next-token logits [B, V] after each row's target prefix (BOS first; all rows the same length), for
    /// source rows [B, S] with real lengths `lengths`.
    func nextTokenLogits(_ source: IntTensor, lengths: [Int], prefixes: IntTensor) -> Tensor
}

/// Greedy decoding and beam search over any `Seq2SeqModel`, and exact-match scoring.
///
/// ```swift
/// let ids = try v.encode("Thursday, March 5, 1998")
/// let source = IntTensor(ids, shape: [1, ids.count])
/// let greedy = Seq2SeqDecoding.greedy(model, source: source, lengths: [ids.count], maxLength: 12)[0]
/// let best = Seq2SeqDecoding.beam(model, source: source, lengths: [ids.count], beams: 4, maxLength: 12)[0]
/// v.decode(best)   // "1998-03-05"
/// ```
public enum Seq2SeqDecoding {
    /// Greedy decoding of a batch; target ids (without BOS/EOS) per row.
    public static func greedy(_ model: Seq2SeqModel, source: IntTensor, lengths: [Int], maxLength: Int) -> [[Int32]] {
        beam(model, source: source, lengths: lengths, beams: 1, maxLength: maxLength)
    }

    /// Beam search for a batch of sources: each source keeps its `beams` most probable prefixes (sum of token
    /// log-probabilities); a hypothesis that emits EOS is finished and ranked by logProb / length^lengthPenalty.
    /// With one beam this is greedy decoding. Returns the best target ids (without BOS/EOS) per source.
    public static func beam(_ model: Seq2SeqModel, source: IntTensor, lengths: [Int], beams k: Int, maxLength: Int,
                            lengthPenalty: Float = 1) -> [[Int32]] {
        precondition(k >= 1, "beam search needs at least one beam")
        let (b, s) = (source.shape[0], source.shape[1])
        // Every source repeated k times: row r * k + j is hypothesis j of source r.
        var src = [Int32](), lens = [Int]()
        src.reserveCapacity(b * k * s)
        let sourceData = source.data
        for r in 0..<b { for _ in 0..<k { src += sourceData[(r * s)..<((r + 1) * s)]; lens.append(lengths[r]) } }
        let expanded = IntTensor(src, shape: [b * k, s])
        // At the start only hypothesis 0 of each source is live (the others would duplicate it).
        var prefixes = [[Int32]](repeating: [Seq2SeqVocabulary.bos], count: b * k)
        var scores = (0..<(b * k)).map { $0 % k == 0 ? Float(0) : -.infinity }
        var finished = [[(tokens: [Int32], score: Float)]](repeating: [], count: b)
        var done = [Bool](repeating: false, count: b)
        func normalized(_ logProb: Float, _ length: Int) -> Float { logProb / Foundation.pow(Float(max(length, 1)), lengthPenalty) }
        withNoGrad {
            for _ in 0..<maxLength {
                let t = prefixes[0].count
                let logProbs = model.nextTokenLogits(expanded, lengths: lens, prefixes: IntTensor(prefixes.flatMap { $0 }, shape: [b * k, t]))
                    .logSoftmax(axis: -1).contiguous()
                let v = logProbs.shape[1]
                let lp = logProbs.pointer
                var nextPrefixes = prefixes, nextScores = scores
                for r in 0..<b where !done[r] {
                    // The best k + 1 candidates over the k hypotheses (one more than k so that k stay live even
                    // when one candidate finishes).
                    var candidates: [(score: Float, parent: Int, token: Int32)] = []
                    for j in 0..<k {
                        let row = r * k + j
                        guard scores[row] > -.infinity else { continue }
                        var top: [(Float, Int32)] = []
                        for i in 0..<v {
                            let score = scores[row] + lp[row * v + i]
                            if top.count < k + 1 { top.append((score, Int32(i))); top.sort { $0.0 > $1.0 } } else if score > top[k].0 {
                                top[k] = (score, Int32(i))
                                top.sort { $0.0 > $1.0 }
                            }
                        }
                        candidates += top.map { ($0.0, row, $0.1) }
                    }
                    candidates.sort { $0.score > $1.score }
                    var live = 0
                    for c in candidates where live < k {
                        let body = Array(prefixes[c.parent].dropFirst())
                        if c.token == Seq2SeqVocabulary.eos || c.token == Seq2SeqVocabulary.pad {
                            finished[r].append((body, normalized(c.score, body.count + 1)))
                            if k == 1 { break }
                            continue
                        }
                        nextPrefixes[r * k + live] = prefixes[c.parent] + [c.token]
                        nextScores[r * k + live] = c.score
                        live += 1
                    }
                    for j in live..<k { nextPrefixes[r * k + j] = prefixes[r * k] + [Seq2SeqVocabulary.pad]; nextScores[r * k + j] = -.infinity }
                    // Stop a source once no live hypothesis can still beat its best finished one. Log-probabilities only
                    // fall as tokens are added, so a live score s (< 0) can at best become s / maxLength^lengthPenalty
                    // when longer answers are favoured (lengthPenalty > 0), and s / t^lengthPenalty otherwise. (Scoring
                    // at the current length in every case, as Hugging Face's default does, stops too early: with
                    // penalty 1 it returned an empty answer where a longer one scored better.)
                    let boundLength = lengthPenalty > 0 ? maxLength : t
                    if let best = finished[r].map(\.score).max(),
                       (0..<k).allSatisfy({ nextScores[r * k + $0] == -.infinity || normalized(nextScores[r * k + $0], boundLength) < best }) {
                        done[r] = true
                    }
                }
                // Finished sources keep rows of the same length.
                for r in 0..<b where done[r] { for j in 0..<k where nextPrefixes[r * k + j].count == t { nextPrefixes[r * k + j].append(Seq2SeqVocabulary.pad) } }
                prefixes = nextPrefixes
                scores = nextScores
                if done.allSatisfy({ $0 }) { break }
            }
        }
        return (0..<b).map { r in
            let live = (0..<k).compactMap { j -> (tokens: [Int32], score: Float)? in
                let row = r * k + j
                return scores[row] > -.infinity ? (Array(prefixes[row].dropFirst()), normalized(scores[row], prefixes[row].count - 1)) : nil
            }
            return (finished[r] + (done[r] ? [] : live)).max { $0.score < $1.score }?.tokens ?? []
        }
    }

    /// Exact-match accuracy of decoding `test` (source, target) pairs with `beams` beams, and a few examples.
    public static func exactMatch(_ model: Seq2SeqModel, vocabulary v: Seq2SeqVocabulary, test: [(String, String)], beams: Int,
                                  maxLength: Int) throws -> (accuracy: Double, examples: [(source: String, predicted: String, target: String)]) {
        (model as? Module)?.eval()
        defer { (model as? Module)?.train() }
        var correct = 0
        var examples: [(String, String, String)] = []
        let chunkSize = max(1, 256 / beams)
        for chunk in stride(from: 0, to: test.count, by: chunkSize) {
            let part = Array(test[chunk..<min(test.count, chunk + chunkSize)])
            let sources = try part.map { try v.encode($0.0) }
            let predicted = beam(model, source: IntTensor.padded(sources, with: Seq2SeqVocabulary.pad), lengths: sources.map(\.count), beams: beams,
                                 maxLength: maxLength)
            for (pair, p) in zip(part, predicted) {
                let text = v.decode(p)
                if text == pair.1 { correct += 1 }
                if examples.count < 5 { examples.append((pair.0, text, pair.1)) }
            }
        }
        return (Double(correct) / Double(max(test.count, 1)), examples)
    }
}
