@testable import AttendModels
import AttendLM
import AttendTensor
import AttendTokenizers
import CAttendKernels
import Foundation
import XCTest

/// Expected logits from transformers' LlamaForCausalLM: scripts/reference/make_llama_hf_fixtures.py.
final class LlamaHuggingFaceTests: XCTestCase {
    func testTinyLlamaMatchesTransformers() throws {
        let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let e = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tiny_llama_expected.json"))) as! [String: Any]
        let model = try LlamaModel.load(huggingFace: dir.appendingPathComponent("tiny-llama").path)
        XCTAssertEqual(model.config.kvHeadCount, 2)
        XCTAssertNotNil(model.output, "untied output")
        let ids = (e["ids"] as! [[Int]])[0].map(Int32.init)
        let expected = (e["logits"] as! [Double]).map(Float.init)
        // All positions at once, then the last one again token by token through the KV cache.
        let all = model(ids, cache: KVCache(config: model.config, capacity: 16)).toArray()
        for (a, b) in zip(all, expected) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        let cache = KVCache(config: model.config, capacity: 16)
        var last: [Float] = []
        for id in ids { last = model([id], cache: cache, lastOnly: true).toArray() }
        for (a, b) in zip(last, expected.suffix(64)) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        // A token id the model has no row for is an error, not a crash.
        let tokenizer = try ByteLevelBPETokenizer(tokens: (0..<64).map { String(UnicodeScalar(UInt8(65 + $0 % 26))) + "\($0)" }, merges: [], specialTokenIds: [])
        XCTAssertThrowsError(try Generation.generate(model: model, tokenizer: tokenizer, prompt: [1, 100], options: SamplingOptions())) {
            XCTAssertTrue("\($0)".contains("token id 100 is outside the model's vocabulary of 64"), "\($0)")
        }
    }

    func testUnsupportedConfigsAreNamed() throws {
        var json: [String: Any] = ["vocab_size": 8, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 3]
        XCTAssertThrowsError(try LlamaConfig.fromHuggingFace(json, path: "c.json")) { XCTAssertTrue("\($0)".contains("do not divide"), "\($0)") }
        json["num_attention_heads"] = 2
        json["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 1e4]
        XCTAssertThrowsError(try LlamaConfig.fromHuggingFace(json, path: "c.json")) { XCTAssertTrue("\($0)".contains("'yarn'"), "\($0)") }
        json.removeValue(forKey: "rope_parameters")
        json.removeValue(forKey: "vocab_size")
        XCTAssertThrowsError(try LlamaConfig.fromHuggingFace(json, path: "c.json")) { XCTAssertTrue("\($0)".contains("'vocab_size'"), "\($0)") }
    }
}

/// Dequantization of every GGML type Attend reads, against the `gguf` package's own dequantizer
/// (scripts/reference/make_gguf_fixtures.py).
final class GGUFTypesTests: XCTestCase {
    func testEveryTypeDequantizesLikeTheGGUFPackage() throws {
        let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let e = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tiny_types_expected.json"))) as! [String: [Double]]
        let file = try GGUFFile(dir.appendingPathComponent("tiny_types.gguf").path)
        for (name, values) in e {
            let t = try file.tensor(name)
            XCTAssertEqual(t.shape, [3, 64], name)
            // As Float: JSON's decimal of a float32 value may parse into a neighbouring double.
            XCTAssertEqual(t.toArray(), values.map(Float.init), "\(name): the same floats")
        }
    }

    /// Quantized matrices multiply straight from their blocks (Q4_0 has no real model here, so this file is
    /// its check): with float activations as the dequantized product, rows bit for bit, and with 8-bit
    /// activations as their definition. Both the SIMD kernels and the portable C ones.
    func testQuantizedProductsForEveryQuantizedType() throws {
        let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let file = try GGUFFile(dir.appendingPathComponent("tiny_types.gguf").path)
        // The weights as the gguf package dequantizes them (not file.tensor, which shares the kernels under test).
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tiny_types_expected.json"))) as! [String: [Double]]
        defer { attend_set_quantized_generic_only(0) }
        for (generic, name) in [0, 1].flatMap({ g in ["q4_0", "q4_1", "q8_0"].map { (g, $0) } }) {
            attend_set_quantized_generic_only(Int32(generic))
            let q = try XCTUnwrap(try file.quantizedMatrix(name), name)
            let w = Tensor(try XCTUnwrap(expected[name]).map(Float.init), shape: [3, 64])
            XCTAssertEqual(q.rows(Array(0..<3)).toArray(), w.toArray(), "\(name), generic \(generic)")
            let x = Tensor.uniform([5, 64], low: -1, high: 1, seed: 6)
            let exact = x.matmul(w.transposed(0, 1)).toArray()
            for (a, b) in zip(q.matmul(x).toArray(), exact) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(name), generic \(generic)") }
            for (a, b) in zip(q.matvec(x.slice(axis: 0, start: 2, length: 1)).toArray(), exact[6..<9]) {
                XCTAssertEqual(a, b, accuracy: 1e-5, "\(name), generic \(generic)")
            }
            checkInt8Product(q, weights: w.toArray(), name: "\(name), generic \(generic)")
        }
        XCTAssertNil(try file.quantizedMatrix("f16"))
    }
}
