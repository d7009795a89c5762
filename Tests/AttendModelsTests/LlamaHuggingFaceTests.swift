@testable import AttendModels
import AttendLM
import AttendNN
@testable import AttendTensor
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
        // All positions at once, then every position again token by token through the KV cache.
        let all = model(ids, cache: KVCache(config: model.config, capacity: 16)).toArray()
        XCTAssertEqual(all.count, expected.count)
        XCTAssertEqual(expected.count, ids.count * 64)
        for (a, b) in zip(all, expected) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        let cache = KVCache(config: model.config, capacity: 16)
        for (position, id) in ids.enumerated() {
            let step = model([id], cache: cache, lastOnly: true).toArray()
            XCTAssertEqual(step.count, 64)
            for (a, b) in zip(step, expected[(position * 64)..<((position + 1) * 64)]) {
                XCTAssertEqual(a, b, accuracy: 1e-4, "position \(position) through the cache")
            }
        }
        // A token id the model has no row for is an error, not a crash.
        let tokenizer = try ByteLevelBPETokenizer(tokens: (0..<64).map { String(UnicodeScalar(UInt8(65 + $0 % 26))) + "\($0)" }, merges: [], specialTokenIds: [])
        XCTAssertThrowsError(try Generation.generate(model: model, tokenizer: tokenizer, prompt: [1, 100], options: SamplingOptions())) {
            XCTAssertTrue("\($0)".contains("token id 100 is outside the model's vocabulary of 64"), "\($0)")
        }
    }

    /// Logits and gradients (every weight, and the input vectors) against transformers on a batch of two, through
    /// the token path and the embeddings path: scripts/reference/make_llama_grad_fixtures.py. Tolerance 1e-4.
    func testTinyLlamaGradientsMatchTransformers() throws {
        let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let e = try Safetensors.read(dir.appendingPathComponent("tiny_llama_gradients.safetensors").path).tensors
        let model = try LlamaModel.load(huggingFace: dir.appendingPathComponent("tiny-llama").path)
        let (ids, r) = (try XCTUnwrap(e["ids"]), try XCTUnwrap(e["r"]))
        let tokens = IntTensor(ids.toArray().map { Int32($0) }, shape: ids.shape)
        func assertClose(_ a: Tensor, _ b: Tensor?, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let b = try XCTUnwrap(b, what)
            XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
            let worst = zip(a.toArray(), b.toArray()).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-4, what, file: file, line: line)
            XCTAssertGreaterThan(b.toArray().map(abs).max() ?? 0, 1e-3, "\(what): the reference gradient is not trivially zero", file: file, line: line)
        }

        // Token path: every weight's gradient, under its Hugging Face name (query / key rows back in HF's order).
        model.zeroGrad()
        let logits = model.logits(tokens)
        try assertClose(logits, e["logits_tokens"], "logits (token path)")
        (logits * r).sum().backward()
        var checked = 0
        for (name, p) in model.namedParameters() {
            var grad = try XCTUnwrap(p.grad, name)
            if name.hasSuffix("attention.query.weight") { grad = LlamaModel.deinterleaveRotaryRows(grad, heads: model.config.headCount) }
            if name.hasSuffix("attention.key.weight") { grad = LlamaModel.deinterleaveRotaryRows(grad, heads: model.config.kvHeadCount) }
            try assertClose(grad, e["grad." + LlamaModel.huggingFaceName(name)], "gradient of \(name)")
            checked += 1
        }
        XCTAssertEqual(checked, e.keys.filter { $0.hasPrefix("grad.") }.count, "every weight's gradient is compared")

        // Embeddings path: vectors spliced in place of three tokens; the gradient reaches them.
        model.zeroGrad()
        let embeds = try XCTUnwrap(e["inputs_embeds"]).copy()
        embeds.requiresGrad = true
        let logitsE = model.logits(inputEmbeddings: embeds)
        try assertClose(logitsE, e["logits_embeds"], "logits (embeddings path)")
        (logitsE * r).sum().backward()
        try assertClose(try XCTUnwrap(embeds.grad), e["grad_inputs_embeds"], "gradient of the input embeddings")

        // The inference path (KV cache, RoPE and attention kernels, vector and portable) gives the same logits as the
        // training path, row by row.
        for level in SIMDLevel.available { try SIMDLevel.withLimit(level) {
            let cache = model.makeCache(capacity: 9)
            let inference = model.forward(LMInput(segments: [.embeddings(embeds.slice(axis: 0, start: 0, length: 1).reshape([9, -1]).contiguous())]),
                                          cache: cache, lastOnly: false, attentionLayer: nil).logits
            try assertClose(inference, logitsE.slice(axis: 0, start: 0, length: 1).reshape([9, -1]).contiguous(), "cached inference on spliced vectors (\(level.name))")
        } }
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
        // Positive sizes whose product no machine holds: a trap or a failed allocation before this check.
        json["vocab_size"] = 8
        XCTAssertNoThrow(try LlamaConfig.fromHuggingFace(json, path: "c.json"))
        for (key, value) in [("hidden_size", 1 << 40), ("intermediate_size", 1 << 50), ("num_hidden_layers", 1 << 60), ("vocab_size", 1 << 59)] {
            var big = json
            big[key] = value
            XCTAssertThrowsError(try LlamaConfig.fromHuggingFace(big, path: "c.json"), key) { XCTAssertTrue("\($0)".contains("c.json: these sizes"), "\($0)") }
        }
    }
}

/// Dequantization of every GGML type Attend reads, against the `gguf` package's own dequantizer
/// (scripts/reference/make_gguf_fixtures.py).
final class GGUFTypesTests: XCTestCase {
    func testEveryTypeDequantizesLikeTheGGUFPackage() throws {
        let dir = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let e = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tiny_types_expected.json"))) as! [String: [Double]]
        let file = try GGUFFile(dir.appendingPathComponent("tiny_types.gguf").path)
        XCTAssertEqual(Set(e.keys), ["f32", "f16", "q4_0", "q4_1", "q8_0"])
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
        for (level, name) in SIMDLevel.available.flatMap({ g in ["q4_0", "q4_1", "q8_0"].map { (g, $0) } }) { try SIMDLevel.withLimit(level) {
            let q = try XCTUnwrap(try file.quantizedMatrix(name), name)
            let w = Tensor(try XCTUnwrap(expected[name]).map(Float.init), shape: [3, 64])
            XCTAssertEqual(q.rows(Array(0..<3)).toArray(), w.toArray(), "\(name), \(level.name)")
            let x = Tensor.uniform([5, 64], low: -1, high: 1, seed: 6)
            let exact = x.matmul(w.transposed(0, 1)).toArray()
            let y = q.matmul(x).toArray()
            XCTAssertEqual(y.count, exact.count, "\(name), \(level.name)")
            XCTAssertEqual(exact.count, 5 * 3)
            for (a, b) in zip(y, exact) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(name), \(level.name)") }
            let v = q.matvec(x.slice(axis: 0, start: 2, length: 1)).toArray()
            XCTAssertEqual(v.count, 3, "\(name), \(level.name)")
            for (a, b) in zip(v, exact[6..<9]) {
                XCTAssertEqual(a, b, accuracy: 1e-5, "\(name), \(level.name)")
            }
            checkInt8Product(q, weights: w.toArray(), name: "\(name), \(level.name)")
        } }
        XCTAssertNil(try file.quantizedMatrix("f16"))
    }

    /// The 8-bit kernels take rows four at a time and the rest one by one: 1, 4 and 7 rows (a group and three
    /// left over) of random blocks, every type, every SIMD level, against the definition.
    func testInt8ProductsOnEveryRowGroupingAndLevel() throws {
        var g = RandomGenerator(seed: 12)
        func half(_ v: Float) -> [UInt8] { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { Array($0) } }
        for (type, rows) in [UInt32(2), 3, 8].flatMap({ t in [1, 4, 7, 8, 16].map { (t, $0) } }) {
            let columns = 96
            var bytes: [UInt8] = []
            for _ in 0..<(rows * columns / 32) {
                bytes += half(0.001 + 0.1 * g.nextUniform())
                switch type {
                case 3:
                    bytes += half(-0.5 * g.nextUniform())
                    // One nibble 0 per block, so its minimum is the block's smallest weight (what checkInt8Product assumes).
                    var nibbles = (0..<16).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                    nibbles[Int(g.next() % 16)] &= 0xF0
                    bytes += nibbles
                case 2: bytes += (0..<16).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                default: bytes += (0..<32).map { _ in UInt8(bitPattern: Int8(Int(g.next() % 255) - 127)) }
                }
            }
            let data = NSData(bytes: bytes, length: bytes.count)
            let q = QuantizedMatrix(type: type, rows: rows, columns: columns, bytes: data.bytes, owner: data)
            let weights = q.rows((0..<Int32(rows)).map { $0 }).toArray()
            for level in SIMDLevel.available {
                SIMDLevel.withLimit(level) { checkInt8Product(q, weights: weights, name: "type \(type), \(rows) rows, \(level.name)") }
            }
        }
    }
}
