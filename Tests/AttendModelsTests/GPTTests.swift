@testable import AttendModels
import AttendLM
import AttendNN
import AttendTensor
import Foundation
import XCTest

final class GPTTests: XCTestCase {
    func fixtureDirectory(_ name: String) -> String {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
    }

    func testTinyGPT2CheckpointMatchesTransformers() throws {
        let model = try GPTModel.loadHuggingFace(directory: fixtureDirectory("tiny-gpt2"))
        let url = Bundle.module.url(forResource: "tiny_gpt2_expected", withExtension: "json", subdirectory: "Fixtures")!
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let ids = (expected["ids"] as! [[Int]]).flatMap { $0 }.map { Int32($0) }
        let logits = model(IntTensor(ids, shape: [2, 7])).toArray()
        let reference = expected["logits"] as! [Double]
        XCTAssertEqual(logits.count, reference.count)
        var worst = 0.0
        for (a, b) in zip(logits, reference) { worst = max(worst, abs(Double(a) - b)) }
        XCTAssertLessThanOrEqual(worst, 1e-4)
        // The first row again, one token at a time through the KV cache.
        XCTAssertLessThanOrEqual(try cachedWorst(model, ids: Array(ids[0..<7]), reference: Array(reference[0..<(7 * model.config.vocabSize)])), 1e-4)
    }

    /// Largest |difference| between logits computed token by token with a KV cache (prompt of 3, then one at
    /// a time) and `reference` for the whole sequence.
    func cachedWorst(_ model: GPTModel, ids: [Int32], reference: [Double]) throws -> Double {
        let cache = model.makeCache(capacity: ids.count)
        var logits = model(Array(ids[0..<3]), cache: cache).toArray()
        for id in ids[3...] { logits += model([id], cache: cache, lastOnly: true).toArray() }
        XCTAssertEqual(logits.count, reference.count)
        return zip(logits, reference).map { abs(Double($0) - $1) }.max()!
    }

    func testTinyOPTCheckpointMatchesTransformers() throws {
        let model = try GPTModel.loadOPT(directory: fixtureDirectory("tiny-opt"))
        XCTAssertEqual(model.config.activation, .relu)
        XCTAssertEqual(model.config.positionOffset, 2)
        let url = Bundle.module.url(forResource: "tiny_opt_expected", withExtension: "json", subdirectory: "Fixtures")!
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let ids = (expected["ids"] as! [[Int]]).flatMap { $0 }.map { Int32($0) }
        let logits = model(IntTensor(ids, shape: [1, ids.count])).toArray()
        let reference = expected["logits"] as! [Double]
        XCTAssertEqual(logits.count, reference.count)
        var worst = 0.0
        for (a, b) in zip(logits, reference) { worst = max(worst, abs(Double(a) - b)) }
        XCTAssertLessThanOrEqual(worst, 1e-4)
        XCTAssertLessThanOrEqual(try cachedWorst(model, ids: ids, reference: reference), 1e-4)
        XCTAssertThrowsError(try GPTModel.loadOPT(directory: fixtureDirectory("tiny-gpt2"))) { XCTAssertTrue("\($0)".contains("not an OPT config"), "\($0)") }
    }

    func testSavedHuggingFaceLayoutLoadsBack() throws {
        var g = RandomGenerator(seed: 5)
        let model = GPTModel(GPTConfig(vocabSize: 20, contextLength: 8, width: 12, layerCount: 2, headCount: 3), generator: &g)
        model.eval()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-gpt-\(ProcessInfo.processInfo.processIdentifier)").path
        try model.saveHuggingFace(directory: dir)
        let loaded = try GPTModel.loadHuggingFace(directory: dir)
        let ids = IntTensor([1, 5, 7, 19, 0, 3], shape: [1, 6])
        XCTAssertEqual(loaded(ids).toArray(), model(ids).toArray())
        XCTAssertThrowsError(try GPTModel.loadHuggingFace(directory: "/nonexistent")) { XCTAssertTrue("\($0)".contains("config.json")) }
        XCTAssertThrowsError(try GPTConfig(vocabSize: 10, contextLength: 8, width: 10, layerCount: 1, headCount: 3).validate()) {
            XCTAssertTrue("\($0)".contains("3 heads do not divide width 10"))
        }
        // Sizes whose products overflow Int or exceed memory are errors, not traps (4 x 2^40 would overflow).
        for (width, feedForward, offset) in [(1 << 40, nil, 0), (1 << 20, nil, 0), (64, 1 << 50, 0), (64, nil, Int.max)] as [(Int, Int?, Int)] {
            var c = GPTConfig(vocabSize: 10, contextLength: 8, width: width, layerCount: 2, headCount: 1)
            (c.feedForwardSize, c.positionOffset) = (feedForward, offset)
            XCTAssertThrowsError(try c.validate(), "\(width) \(String(describing: feedForward)) \(offset)") { XCTAssertTrue("\($0)".contains("memory"), "\($0)") }
        }
        XCTAssertNoThrow(try GPTConfig(vocabSize: 10, contextLength: 8, width: 64, layerCount: 2, headCount: 1).validate())
    }

    func testCausality() {
        var g = RandomGenerator(seed: 1)
        let model = GPTModel(GPTConfig(vocabSize: 10, contextLength: 8, width: 8, layerCount: 1, headCount: 2), generator: &g)
        let a = model(IntTensor([1, 2, 3, 4], shape: [1, 4])).toArray()
        let b = model(IntTensor([1, 2, 3, 9], shape: [1, 4])).toArray()
        XCTAssertEqual(Array(a[0..<30]), Array(b[0..<30]), "changing the last token leaves earlier positions alone")
        XCTAssertNotEqual(Array(a[30..<40]), Array(b[30..<40]))
    }

    /// The config's coding keys are GPT-2's config.json names, and every field survives a round trip (OPT's ReLU and
    /// position offset included, which the hand-written coding used to drop).
    func testConfigRoundTripKeepsEveryField() throws {
        var c = GPTConfig(vocabSize: 50, contextLength: 32, width: 16, layerCount: 2, headCount: 4, dropout: 0.1)
        c.feedForwardSize = 24
        c.activation = .relu
        c.positionOffset = 2
        c.layerNormEps = 1e-6
        let data = try JSONEncoder().encode(c)
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(json["n_embd"] as? Int, 16)
        XCTAssertEqual(json["n_inner"] as? Int, 24)
        XCTAssertEqual(json["activation_function"] as? String, "relu")
        XCTAssertEqual(try JSONDecoder().decode(GPTConfig.self, from: data), c)
        // transformers' other name for GPT-2's tanh GELU, and a clear error for one Attend lacks.
        let hf = #"{"vocab_size": 5, "n_positions": 8, "n_embd": 4, "n_layer": 1, "n_head": 2, "activation_function": "gelu_pytorch_tanh"}"#
        XCTAssertEqual(try JSONDecoder().decode(GPTConfig.self, from: Data(hf.utf8)).activation, .geluTanh)
        let bad = hf.replacingOccurrences(of: "gelu_pytorch_tanh", with: "swish_beta")
        XCTAssertThrowsError(try ConfigDecoding.decode(GPTConfig.self, from: Data(bad.utf8), source: "c.json")) {
            XCTAssertTrue("\($0)".contains("c.json: activation_function 'swish_beta' is not supported"), "\($0)")
        }
    }

    /// Attention maps come from every family through the one interface: for GPT-2, causal rows of weights summing
    /// to 1, the same as the composition's weights from the model's own projections.
    func testAttentionMapForGPT2() throws {
        let model = try GPTModel.loadHuggingFace(directory: fixtureDirectory("tiny-gpt2"))
        let ids: [Int32] = [3, 14, 15, 9, 26, 5]
        let (w, layer) = try Generation.attentionMap(model: model, prompt: ids, layer: -1, head: 1)
        XCTAssertEqual(layer, model.config.layerCount - 1)
        XCTAssertEqual(w.shape, [6, 6])
        let v = w.toArray()
        for i in 0..<6 {
            XCTAssertEqual(v[(i * 6)..<(i * 6 + 6)].reduce(0, +), 1, accuracy: 1e-5)
            for j in (i + 1)..<6 { XCTAssertEqual(v[i * 6 + j], 0) }
        }
        XCTAssertGreaterThan(v[5 * 6 + 0], 0)
        XCTAssertThrowsError(try Generation.attentionMap(model: model, prompt: ids, layer: 0, head: model.config.headCount)) {
            XCTAssertTrue("\($0)".contains("query heads"), "\($0)")
        }
    }
}
