@testable import AttendModels
import AttendLM
import AttendNN
import AttendTensor
import AttendTokenizers
import Foundation
import XCTest

final class GPTTrainingTests: XCTestCase {
    let text = String(repeating: "the cat sat on the mat. the dog sat on the log. ", count: 40)

    func makeTrainer(iterations: Int, seed: UInt64 = 3) throws -> GPTTrainer {
        let tokenizer = CharacterTokenizer(text: text)
        var g = RandomGenerator(seed: seed)
        let model = GPTModel(GPTConfig(vocabSize: tokenizer.count, contextLength: 16, width: 32, layerCount: 2, headCount: 4), generator: &g)
        var c = GPTTrainingConfig()
        c.batchSize = 8
        c.iterations = iterations
        c.warmupIterations = 10
        c.learningRate = 3e-3
        c.evalInterval = 20
        c.evalIterations = 4
        c.gradientAccumulation = 2
        return try GPTTrainer(model: model, tokens: try tokenizer.encode(text), config: c)
    }

    func testLossFallsAndSamplesLookLikeTheText() throws {
        let trainer = try makeTrainer(iterations: 120)
        let before = trainer.evaluate().trainLoss
        try trainer.run(progress: false)
        let after = trainer.history.last!.trainLoss
        XCTAssertLessThan(after, before * 0.5, "loss \(before) -> \(after)")
        let tokenizer = CharacterTokenizer(text: text)
        let sample = tokenizer.decode(GPTTrainer.sample(model: trainer.model, context: try tokenizer.encode("the "), count: 40,
                                                        temperature: 0.5, topK: 5))
        XCTAssertTrue(sample.contains("sat") || sample.contains("the"), sample)
    }

    func testInterruptedRunResumesExactly() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("attend-gpt-\(ProcessInfo.processInfo.processIdentifier).safetensors").path
        let full = try makeTrainer(iterations: 40)
        var savedAt20 = false
        try full.run(progress: false, checkpoint: { t in
            if t.optimizer.step == 20 { try t.save(to: path); savedAt20 = true }
        })
        XCTAssertTrue(savedAt20)
        let resumed = try makeTrainer(iterations: 40, seed: 99)  // different init: everything must come from the checkpoint
        try resumed.resume(from: path)
        XCTAssertEqual(resumed.optimizer.step, 20)
        try resumed.run(progress: false)
        XCTAssertEqual(resumed.model.parameters().flatMap { $0.toArray() }, full.model.parameters().flatMap { $0.toArray() })
    }

    func testBadInputsGiveClearErrors() throws {
        let tokenizer = CharacterTokenizer(text: "abc")
        var g = RandomGenerator(seed: 1)
        let model = GPTModel(GPTConfig(vocabSize: 3, contextLength: 16, width: 8, layerCount: 1, headCount: 2), generator: &g)
        XCTAssertThrowsError(try GPTTrainer(model: model, tokens: try tokenizer.encode("abcabc"), config: GPTTrainingConfig())) {
            XCTAssertTrue("\($0)".contains("more than the context"), "\($0)")
        }
        XCTAssertThrowsError(try tokenizer.encode("abd")) { XCTAssertTrue("\($0)".contains("'d'")) }
        // A checkpoint from another model shape is refused by name.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("attend-gpt-other-\(ProcessInfo.processInfo.processIdentifier).safetensors").path
        let small = try makeTrainer(iterations: 1)
        try small.save(to: path)
        var g2 = RandomGenerator(seed: 1)
        let other = GPTModel(GPTConfig(vocabSize: small.model.config.vocabSize, contextLength: 16, width: 16, layerCount: 2, headCount: 4), generator: &g2)
        let trainer = try GPTTrainer(model: other, tokens: try CharacterTokenizer(text: text).encode(text), config: GPTTrainingConfig())
        XCTAssertThrowsError(try trainer.resume(from: path)) { XCTAssertTrue("\($0)".contains("different model"), "\($0)") }
    }
}
