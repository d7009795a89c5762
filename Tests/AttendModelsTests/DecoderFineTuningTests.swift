import AttendLM
import AttendNN
import AttendTensor
import Foundation
import XCTest
@testable import AttendModels

/// GPT-1's input layouts on a small decoder: the sequences each layout builds, the similarity layout's order
/// invariance, cutting to the context, and learning tasks that need each layout.
final class DecoderFineTuningTests: XCTestCase {
    func tinyGPT(context: Int = 24, seed: UInt64 = 3) -> GPTModel {
        var g = RandomGenerator(seed: seed)
        return GPTModel(GPTConfig(vocabSize: 12, contextLength: context, width: 32, layerCount: 2, headCount: 4), generator: &g)
    }

    func testLayoutsBuildGPT1Sequences() {
        var g = RandomGenerator(seed: 1)
        let e = TaskExample(texts: [[4, 5], [6], [7, 8]], label: 1)
        let choice = GPTTaskModel(decoder: tinyGPT(), layout: .multipleChoice, classCount: 0, generator: &g).sequences(e, maxLength: 24)
        // One sequence per option: [start] context [delim] option [extract].
        XCTAssertEqual(choice.map { $0.map { $0.added.map { -1 - $0 } ?? Int($0.id) } }, [[-1, 4, 5, -2, 6, -3], [-1, 4, 5, -2, 7, 8, -3]])
        let pair = TaskExample(texts: [[4, 5], [6]], label: 0)
        let similarity = GPTTaskModel(decoder: tinyGPT(), layout: .similarity, classCount: 2, generator: &g).sequences(pair, maxLength: 24)
        XCTAssertEqual(similarity.map { $0.map { $0.added.map { -1 - $0 } ?? Int($0.id) } }, [[-1, 4, 5, -2, 6, -3], [-1, 6, -2, 4, 5, -3]])
        // Entailment: one sequence, [start] premise [delim] hypothesis [extract], in the order given.
        let entailment = GPTTaskModel(decoder: tinyGPT(), layout: .entailment, classCount: 2, generator: &g).sequences(pair, maxLength: 24)
        XCTAssertEqual(entailment.map { $0.map { $0.added.map { -1 - $0 } ?? Int($0.id) } }, [[-1, 4, 5, -2, 6, -3]])
        let single = GPTTaskModel(decoder: tinyGPT(), layout: .classification, classCount: 2, generator: &g).sequences(TaskExample(texts: [[9]], label: 0), maxLength: 24)
        XCTAssertEqual(single.map { $0.map { $0.added.map { -1 - $0 } ?? Int($0.id) } }, [[-1, 9, -3]])
        // Long texts are cut to the context: the longest loses tokens first; a choice context keeps its end.
        let long = TaskExample(texts: [Array(0..<20).map { Int32($0 % 10) }, [1, 2, 3]], label: 0)
        let cut = GPTTaskModel(decoder: tinyGPT(context: 10), layout: .multipleChoice, classCount: 0, generator: &g).sequences(
            TaskExample(texts: long.texts + [[4]], label: 0), maxLength: 10)
        XCTAssertTrue(cut.allSatisfy { $0.count <= 10 }, "\(cut.map(\.count))")
        XCTAssertEqual(cut[0][1...4].map(\.id), [6, 7, 8, 9], "the context keeps its last tokens")
    }

    func testSimilarityIsOrderInvariant() {
        var g = RandomGenerator(seed: 2)
        let model = GPTTaskModel(decoder: tinyGPT(), layout: .similarity, classCount: 2, generator: &g)
        model.eval()
        let ab = withNoGrad { model.forward([TaskExample(texts: [[4, 5, 6], [7, 8]], label: 0)]).taskLogits }.toArray()
        let ba = withNoGrad { model.forward([TaskExample(texts: [[7, 8], [4, 5, 6]], label: 0)]).taskLogits }.toArray()
        XCTAssertEqual(ab.count, 2)
        XCTAssertEqual(ab.count, ba.count)
        for (x, y) in zip(ab, ba) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        let entail = GPTTaskModel(decoder: tinyGPT(), layout: .entailment, classCount: 2, generator: &g)
        entail.eval()
        let e1 = withNoGrad { entail.forward([TaskExample(texts: [[4, 5, 6], [7, 8]], label: 0)]).taskLogits }.toArray()
        let e2 = withNoGrad { entail.forward([TaskExample(texts: [[7, 8], [4, 5, 6]], label: 0)]).taskLogits }.toArray()
        XCTAssertNotEqual(e1, e2, "entailment reads the order")
    }

    /// Tasks that need each layout: the class is which token the text holds most of; entailment asks whether the
    /// hypothesis's token occurs in the premise; multiple choice picks the option equal to the context's last token.
    func testEachLayoutLearnsItsTask() throws {
        var g = RandomGenerator(seed: 5)
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(2 + g.next() % 8) } }
        func classification() -> TaskExample {
            let label = Int(g.next() % 2)
            return TaskExample(texts: [tokens(3) + Array(repeating: Int32(label == 0 ? 10 : 11), count: 3)], label: label)
        }
        func entailment() -> TaskExample {
            let premise = tokens(4), label = Int(g.next() % 2)
            let hyp: Int32 = label == 1 ? premise[Int(g.next() % 4)] : (2...9).map(Int32.init).first { !premise.contains($0) } ?? 11
            return TaskExample(texts: [premise, [hyp]], label: label)
        }
        func choice() -> TaskExample {
            let context = tokens(4), answer = Int(g.next() % 3)
            var options: [[Int32]] = (0..<3).map { _ in [Int32(10 + g.next() % 2)] }
            options[answer] = [context.last!]
            return TaskExample(texts: [context] + options, label: answer)
        }
        for (layout, make, classes, bar) in [(GPTTaskLayout.classification, classification, 2, 0.95), (.entailment, entailment, 2, 0.8), (.multipleChoice, choice, 0, 0.9)] {
            let train = (0..<400).map { _ in make() }, test = (0..<100).map { _ in make() }
            var config = GPTFineTuningConfig()
            config.epochs = 6
            config.learningRate = 3e-3
            let model = GPTTaskModel(decoder: tinyGPT(), layout: layout, classCount: classes, generator: &g)
            let accuracies = try GPTFineTuning.run(model, train: train, test: test, config: config, progress: false)
            XCTAssertGreaterThanOrEqual(accuracies.last!, bar, "\(layout.rawValue): \(accuracies)")
        }
    }

    /// The auxiliary LM loss is the decoder's own next-token loss on the text tokens; the added tokens, the head
    /// and the decoder all receive gradients; a Llama decoder works the same way.
    func testLossesAndGradientsReachEveryPart() throws {
        var g = RandomGenerator(seed: 6)
        let gpt = tinyGPT()
        gpt.eval()
        let model = GPTTaskModel(decoder: gpt, layout: .classification, classCount: 3, generator: &g)
        model.eval()
        let e = TaskExample(texts: [[4, 5, 6, 7]], label: 2)
        let (logits, lm) = model.forward([e])
        XCTAssertEqual(logits.shape, [1, 3])
        // Reference LM loss: the decoder on [start, 4, 5, 6, 7] predicting 4, 5, 6, 7.
        let input = Tensor.concat([model.addedTokens.slice(axis: 0, start: 0, length: 1), gpt.embed(IntTensor([4, 5, 6, 7], shape: [4]))], axis: 0)
        let full = gpt.logits(inputEmbeddings: input.reshape([1, 5, -1])).reshape([5, -1]).slice(axis: 0, start: 0, length: 4)
        let reference = Loss.crossEntropy(logits: full, targets: IntTensor([4, 5, 6, 7], shape: [4]))
        XCTAssertEqual(lm.item, reference.item, accuracy: 1e-5)
        (Loss.crossEntropy(logits: logits, targets: IntTensor([2], shape: [1])) + lm * 0.5).backward()
        XCTAssertGreaterThan(model.addedTokens.grad!.toArray().map(abs).max()!, 0)
        XCTAssertGreaterThan(model.head.weight.grad!.toArray().map(abs).max()!, 0)
        XCTAssertGreaterThan(gpt.blocks[0].attention.query.weight.grad!.toArray().map(abs).max()!, 0)

        let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let llama = try LlamaModel.load(huggingFace: fixtures.appendingPathComponent("tiny-llama").path)
        for (_, t) in llama.namedTensors() { t.requiresGrad = true }
        let task = GPTTaskModel(decoder: llama, layout: .multipleChoice, classCount: 0, generator: &g)
        let (scores, _) = task.forward([TaskExample(texts: [[3, 9, 12], [5], [6, 7]], label: 1)])
        XCTAssertEqual(scores.shape, [1, 2])
        Loss.crossEntropy(logits: scores, targets: IntTensor([1], shape: [1])).backward()
        XCTAssertGreaterThan(llama.layers[0].mlp.down.weight.grad!.toArray().map(abs).max()!, 0)
    }

    func testBadExamplesAreRefused() throws {
        XCTAssertThrowsError(try GPTTaskLayout.entailment.check(textCount: 1, source: "x.tsv:3")) {
            XCTAssertTrue("\($0)".contains("x.tsv:3: the entailment layout takes two texts per example, got 1"), "\($0)")
        }
        XCTAssertThrowsError(try GPTTaskLayout.multipleChoice.check(textCount: 2, source: "x.tsv:1")) {
            XCTAssertTrue("\($0)".contains("a context and at least two options"), "\($0)")
        }
        var g = RandomGenerator(seed: 1)
        let model = GPTTaskModel(decoder: tinyGPT(), layout: .classification, classCount: 2, generator: &g)
        XCTAssertThrowsError(try GPTFineTuning.run(model, train: [TaskExample(texts: [[3]], label: 2)], test: [TaskExample(texts: [[3]], label: 0)],
                                                   config: GPTFineTuningConfig(), progress: false)) {
            XCTAssertTrue("\($0)".contains("label 2 is outside the head's 2 classes"), "\($0)")
        }
        // A decoder whose weights are still quantized cannot take gradients: refused before training.
        let quantized = try LlamaModel.load(gguf: GGUFFile(smolLMPath))
        let onQuantized = GPTTaskModel(decoder: quantized, layout: .classification, classCount: 2, generator: &g)
        XCTAssertThrowsError(try GPTFineTuning.run(onQuantized, train: [TaskExample(texts: [[3]], label: 1)], test: [TaskExample(texts: [[3]], label: 0)],
                                                   config: GPTFineTuningConfig(), progress: false)) {
            XCTAssertTrue("\($0)".contains("needs its float weights"), "\($0)")
        }
    }
}
