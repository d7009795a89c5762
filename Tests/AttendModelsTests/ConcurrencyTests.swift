@testable import AttendModels
import AttendLM
import AttendNN
import AttendTensor
import AttendTokenizers
import Foundation
import XCTest

/// Nothing process-wide changes under a running generation: two generations at once in one process give the
/// tokens each gives alone, and a training step beside them still records gradients (gradient mode is
/// task-local, not a global that one thread's `withNoGrad` turns off for all).
final class ConcurrencyTests: XCTestCase {
    func tinyLlama() throws -> LlamaModel {
        let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        return try LlamaModel.load(huggingFace: dir.appendingPathComponent("tiny-llama").path)
    }

    func testConcurrentGenerationsMatchSequentialOnes() throws {
        let model = try tinyLlama()
        let tokenizer = try ByteLevelBPETokenizer(tokens: (0..<64).map { "t\($0)" }, merges: [], specialTokenIds: [])
        @Sendable func options(_ seed: UInt64) -> SamplingOptions {
            var o = SamplingOptions()
            o.maxTokens = 40
            o.temperature = 0.9
            o.topK = 20
            o.seed = seed
            return o
        }
        let prompts: [[Int32]] = [[1, 17, 3, 60], [5, 9, 33, 2, 44]]
        let alone = try (0..<2).map { try Generation.generate(model: model, tokenizer: tokenizer, prompt: prompts[$0], options: options(UInt64($0))).tokens }
        XCTAssertNotEqual(alone[0], alone[1])

        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var tokens: [Int: [Int32]] = [:]
            var trainingRecorded = [Bool]()
        }
        let results = Results()
        let group = DispatchGroup()
        for round in 0..<3 {
            for i in 0..<2 {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    let t = try? Generation.generate(model: model, tokenizer: tokenizer, prompt: prompts[i], options: options(UInt64(i))).tokens
                    results.lock.lock()
                    if round == 0 { results.tokens[i] = t } else if results.tokens[i] != t { results.tokens[i] = [] }
                    results.lock.unlock()
                }
            }
            // A training step on another model while the generations run: its loss must record gradients.
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var g = RandomGenerator(seed: 3)
                let gpt = GPTModel(GPTConfig(vocabSize: 11, contextLength: 8, width: 16, layerCount: 1, headCount: 2), generator: &g)
                var recorded = true
                for _ in 0..<20 {
                    let loss = Loss.crossEntropy(logits: gpt(IntTensor([1, 2, 3, 4], shape: [1, 4])), targets: IntTensor([2, 3, 4, 5], shape: [1, 4]))
                    recorded = recorded && loss.requiresGrad
                }
                results.lock.lock()
                results.trainingRecorded.append(recorded)
                results.lock.unlock()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 300), .success)
        XCTAssertEqual(results.tokens[0], alone[0], "generation 0 alone and beside another")
        XCTAssertEqual(results.tokens[1], alone[1], "generation 1 alone and beside another")
        XCTAssertEqual(results.trainingRecorded, [true, true, true], "a training step beside generations records gradients")
    }

    func testGradientModeIsPerTask() async throws {
        let w = Tensor.ones([2], requiresGrad: true)
        async let other: Bool = Task.detached { (w * 3).requiresGrad }.value
        let outside = withNoGrad { (w * 2).requiresGrad }
        let detachedRecorded = await other
        XCTAssertFalse(outside)
        XCTAssertTrue(detachedRecorded, "a detached task keeps the default (recording) while another turns it off")
        XCTAssertTrue((w * 2).requiresGrad)
    }

    func testStreamYieldsTheSameTextAndCanBeCancelled() async throws {
        let model = try tinyLlama()
        let tokenizer = try ByteLevelBPETokenizer(tokens: (0..<64).map { "t\($0)" }, merges: [], specialTokenIds: [])
        var o = SamplingOptions()
        o.maxTokens = 30
        let direct = try Generation.generate(model: model, tokenizer: tokenizer, prompt: [1, 2, 3], options: o)
        var streamed = "", finished: GenerationResult?
        for try await event in Generation.stream(model: model, tokenizer: tokenizer, input: LMInput([1, 2, 3]), options: o) {
            switch event {
            case .text(let piece): streamed += piece
            case .finished(let r): finished = r
            }
        }
        XCTAssertEqual(streamed, direct.text)
        XCTAssertEqual(finished?.tokens, direct.tokens)
        // Leaving the loop early stops decoding: no `.finished` is needed and the call returns.
        o.maxTokens = 10_000
        var pieces = 0
        for try await event in Generation.stream(model: model, tokenizer: tokenizer, input: LMInput([1, 2, 3]), options: o) {
            if case .text = event { pieces += 1 }
            if pieces == 3 { break }
        }
        XCTAssertEqual(pieces, 3)
        // A caller's cancellation ends the loop before the next token, with its own finish reason.
        var asked = 0
        let cancelled = try Generation.generate(model: model, tokenizer: tokenizer, prompt: [1, 2, 3], options: o,
                                                isCancelled: { asked += 1; return asked > 4 })
        XCTAssertEqual(cancelled.tokens.count, 4)
        XCTAssertEqual(cancelled.finishReason, "cancelled")
    }
}
