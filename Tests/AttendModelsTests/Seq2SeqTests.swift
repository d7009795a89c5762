import AttendDatasets
@testable import AttendModels
import AttendLM
import AttendNN
import AttendTensor
import Foundation
import XCTest

final class Seq2SeqTests: XCTestCase {
    /// T5-style multitask: one model, every task's result reported; pairs longer than the positions are refused.
    func testMultitaskReportsEveryTaskAndRefusesPairsTooLong() throws {
        var config = Seq2SeqConfig()
        (config.width, config.encoderLayers, config.decoderLayers, config.maxLength) = (16, 1, 1, 72)
        let r = try Seq2SeqTraining.multitask(tasks: [.reverseWords, .numberToWords], config: config, steps: 3, trainPerTask: 20, testPerTask: 4, batchSize: 4)
        XCTAssertEqual(Set(r.exactMatch.keys), [.reverseWords, .numberToWords])
        XCTAssertTrue(r.exactMatch.values.allSatisfy { (0...1).contains($0) })
        config.maxLength = 20
        XCTAssertThrowsError(try Seq2SeqTraining.multitask(tasks: [.reverseWords], config: config, steps: 1, trainPerTask: 20, testPerTask: 2)) {
            XCTAssertTrue("\($0)".contains("longer than the model's 20 positions"), "\($0)")
        }
    }

    func testDatePairsAreValidAndSeeded() {
        let pairs = HumanDates.pairs(count: 200, seed: 4)
        XCTAssertEqual(pairs.map(\.source), HumanDates.pairs(count: 200, seed: 4).map(\.source))
        let iso = try! NSRegularExpression(pattern: "^(19[5-9]\\d|20[0-4]\\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$")
        for p in pairs { XCTAssertNotNil(iso.firstMatch(in: p.target, range: NSRange(location: 0, length: p.target.utf16.count)), p.target) }
        XCTAssertGreaterThan(Set(pairs.map { $0.source.count }).count, 5, "many formats")
    }

    func testPaddingDoesNotChangeResultsAndTrainingReducesLoss() throws {
        let pairs = HumanDates.pairs(count: 64, seed: 1)
        let v = Seq2SeqVocabulary(texts: pairs.flatMap { [$0.source, $0.target] })
        var g = RandomGenerator(seed: 2)
        var config = Seq2SeqConfig()
        config.width = 32
        config.encoderLayers = 1
        config.decoderLayers = 1
        let model = Seq2SeqTransformer(sourceVocabulary: v.count, targetVocabulary: v.count, config: config, generator: &g)
        model.eval()
        // The same source alone and padded in a batch decodes to the same logits.
        let a = try v.encode(pairs[0].source), b = try v.encode(pairs[1].source)
        let s = max(a.count, b.count)
        let target = IntTensor([Seq2SeqVocabulary.bos] + (try v.encode("19")), shape: [1, 3])
        let (m1, k1) = model.encode(IntTensor(a, shape: [1, a.count]), lengths: [a.count])
        let alone = model.decode(target, memory: m1, memoryMask: k1).toArray()
        let padded = (a + [Int32](repeating: 0, count: s - a.count)) + (b + [Int32](repeating: 0, count: s - b.count))
        let (m2, k2) = model.encode(IntTensor(padded, shape: [2, s]), lengths: [a.count, b.count])
        let both = model.decode(IntTensor(target.data + target.data, shape: [2, 3]), memory: m2, memoryMask: k2).toArray()
        for i in 0..<alone.count { XCTAssertEqual(alone[i], both[i], accuracy: 1e-4) }
        // A few teacher-forced steps lower the loss on a fixed batch.
        model.train()
        let batch = Seq2SeqBatch(pairs: try pairs.map { (try v.encode($0.source), try v.encode($0.target)) })
        let optimizer = AdamW(parameters: model.namedParameters(), learningRate: 3e-3)
        func loss() -> Tensor {
            let (m, k) = model.encode(batch.source, lengths: batch.sourceLengths)
            return Loss.crossEntropy(logits: model.decode(batch.decoderInput, memory: m, memoryMask: k), targets: batch.decoderTarget,
                                     ignoreIndex: Int(Seq2SeqVocabulary.pad))
        }
        let first = loss().item
        for _ in 0..<30 {
            model.zeroGrad()
            loss().backward()
            optimizer.update()
        }
        XCTAssertLessThan(loss().item, first * 0.7)
        XCTAssertThrowsError(try v.encode("日")) { XCTAssertTrue("\($0)".contains("not in the vocabulary")) }
    }

    func testGRUCellGradientsMatchFiniteDifferences() {
        var g = RandomGenerator(seed: 5)
        let cell = GRUCell(inputSize: 3, hiddenSize: 4, generator: &g)
        let x = Tensor.uniform([2, 3], low: -1, high: 1, seed: 6, requiresGrad: true)
        let h = Tensor.uniform([2, 4], low: -1, high: 1, seed: 7, requiresGrad: true)
        let w = Tensor.uniform([2, 4], low: 0.5, high: 1.5, seed: 8)
        (cell(x, h) * w).sum().backward()
        let eps: Float = 1e-2
        for t in [x, h, cell.input.weight, cell.hidden.bias!] {
            let analytic = t.grad!.toArray()
            for i in 0..<t.count {
                let saved = t.pointer[i]
                t.pointer[i] = saved + eps
                let up = withNoGrad { (cell(x, h) * w).sum().item }
                t.pointer[i] = saved - eps
                let down = withNoGrad { (cell(x, h) * w).sum().item }
                t.pointer[i] = saved
                XCTAssertEqual(analytic[i], (up - down) / (2 * eps), accuracy: 2e-3)
            }
        }
    }

    func testGRUFinalStateIgnoresPadding() {
        var g = RandomGenerator(seed: 9)
        let model = GRUSeq2Seq(sourceVocabulary: 10, targetVocabulary: 10, hiddenSize: 8, embeddingSize: 4, attention: false, generator: &g)
        let (_, alone) = model.encode(IntTensor([5, 6, 7], shape: [1, 3]), lengths: [3])
        let (_, padded) = model.encode(IntTensor([5, 6, 7, 0, 0], shape: [1, 5]), lengths: [3])
        XCTAssertEqual(alone.toArray(), padded.toArray())
    }

    /// Next-token scores that depend only on the prefix (a seeded table), so every sequence's probability
    /// can be enumerated. Tokens: PAD 0, BOS 1, EOS 2, and 3, 4.
    final class TableModel: Seq2SeqModel {
        func nextTokenLogits(_ source: IntTensor, lengths: [Int], prefixes: IntTensor) -> Tensor {
            let (b, t) = (prefixes.shape[0], prefixes.shape[1])
            var out = [Float]()
            for r in 0..<b {
                var h: UInt64 = 1469598103934665603 &+ UInt64(source.data[r * source.shape[1]])
                for k in 0..<t { h = (h ^ UInt64(prefixes.data[r * t + k])) &* 1099511628211 }
                var g = RandomGenerator(seed: h)
                out += [-30, -30] + (0..<3).map { _ in Float(g.next() % 1000) / 250 }
            }
            return Tensor(out, shape: [b, 5])
        }
    }

    /// Beam search wide enough for every hypothesis finds the best sequence by enumeration at length penalties 0, 1
    /// and 2; one beam is greedy; a batch decodes each source as it would alone.
    func testBeamSearchFindsTheMostProbableSequenceAndOneBeamIsGreedy() {
        let model = TableModel()
        let maxLength = 4
        var winners: Set<[Int32]> = []
        for first in Int32(3)...Int32(8) {
            let source = IntTensor([first], shape: [1, 1])
            func logProbs(_ prefix: [Int32]) -> [Float] {
                withNoGrad { model.nextTokenLogits(source, lengths: [1], prefixes: IntTensor(prefix, shape: [1, prefix.count])).logSoftmax(axis: -1).toArray() }
            }
            // Exhaustive: every body over {3, 4} of length < maxLength followed by EOS, or of length maxLength,
            // scored by logP / length^lengthPenalty (EOS counted in the length).
            for lengthPenalty: Float in [0, 1, 2] {
                func normalized(_ score: Float, _ length: Int) -> Float { score / Foundation.pow(Float(max(length, 1)), lengthPenalty) }
                var best: (tokens: [Int32], score: Float) = ([], -.infinity)
                func visit(_ body: [Int32], _ score: Float) {
                    let lp = logProbs([Seq2SeqVocabulary.bos] + body)
                    if body.count == maxLength { if normalized(score, body.count) > best.score { best = (body, normalized(score, body.count)) }; return }
                    if normalized(score + lp[2], body.count + 1) > best.score { best = (body, normalized(score + lp[2], body.count + 1)) }
                    for token in [Int32(3), 4] { visit(body + [token], score + lp[Int(token)]) }
                }
                visit([], 0)
                let beam = Seq2SeqDecoding.beam(model, source: source, lengths: [1], beams: 16, maxLength: maxLength, lengthPenalty: lengthPenalty)
                XCTAssertEqual(beam[0], best.tokens, "source \(first), length penalty \(lengthPenalty)")
                winners.insert(best.tokens)
            }
            // One beam: the argmax at every step.
            var greedy: [Int32] = []
            while greedy.count < maxLength {
                let lp = logProbs([Seq2SeqVocabulary.bos] + greedy)
                let next = Int32(lp.indices.max { lp[$0] < lp[$1] }!)
                if next == Seq2SeqVocabulary.eos { break }
                greedy.append(next)
            }
            XCTAssertEqual(Seq2SeqDecoding.greedy(model, source: source, lengths: [1], maxLength: maxLength)[0], greedy, "source \(first)")
        }
        XCTAssertGreaterThan(winners.count, 6, "sources and length penalties pick different sequences: \(winners)")
        // A batch decodes each source as it would alone.
        let batch = IntTensor([3, 4, 5], shape: [3, 1])
        let together = Seq2SeqDecoding.beam(model, source: batch, lengths: [1, 1, 1], beams: 3, maxLength: maxLength)
        for r in 0..<3 {
            XCTAssertEqual(together[r], Seq2SeqDecoding.beam(model, source: IntTensor([Int32(3 + r)], shape: [1, 1]), lengths: [1], beams: 3,
                                                             maxLength: maxLength)[0])
        }
    }
}
