@testable import AttendModels
import AttendLM
import AttendNN
import AttendTensor
import Foundation
import XCTest

let smolLMPath = FileManager.default.currentDirectoryPath + "/.cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

/// SmolLM2 loaded once for all tests (dequantizing takes a few seconds in a debug build).
private var loadedSmolLM: (GGUFFile, LlamaModel)?

func smolLM() throws -> (GGUFFile, LlamaModel) {
    try XCTSkipUnless(FileManager.default.fileExists(atPath: smolLMPath), "run scripts/fetch-assets.sh SmolLM2-135M-Instruct")
    if let c = loadedSmolLM { return c }
    let file = try GGUFFile(smolLMPath)
    let model = try LlamaModel.load(gguf: file)
    loadedSmolLM = (file, model)
    return (file, model)
}

final class LlamaTests: XCTestCase {
    func expected() throws -> [String: Any] {
        let url = Bundle.module.url(forResource: "smollm2_expected", withExtension: "json", subdirectory: "Fixtures")!
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// The attention map of `attend generate --attention-map` equals the numpy reference's softmax weights.
    func testAttentionMapMatchesTheNumpyReference() throws {
        let (_, model) = try smolLM()
        model.int8Activations = false  // the reference is exact float32
        defer { model.int8Activations = true }
        let e = try expected()
        let prompt = (e["prompt"] as! [Int]).map(Int32.init)
        let (weights, layer) = try Generation.attentionMap(model: model, prompt: prompt, layer: e["attention_layer"] as! Int,
                                                           head: e["attention_head"] as! Int)
        XCTAssertEqual(layer, 10)
        XCTAssertEqual(weights.shape, [prompt.count, prompt.count])
        let reference = (e["attention"] as! [Double]).map(Float.init)
        XCTAssertEqual(reference.count, prompt.count * prompt.count)
        for (a, b) in zip(weights.toArray(), reference) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        XCTAssertThrowsError(try Generation.attentionMap(model: model, prompt: prompt, layer: 30, head: 0)) {
            XCTAssertTrue("\($0)".contains("30 layers"), "\($0)")
        }
        XCTAssertThrowsError(try Generation.attentionMap(model: model, prompt: prompt, layer: 0, head: 9)) {
            XCTAssertTrue("\($0)".contains("9 query heads"), "\($0)")
        }
    }

    func testGGUFMetadataAndConfig() throws {
        let (file, model) = try smolLM()
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(model.config, LlamaConfig(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, layerCount: 30, headCount: 9,
                                                 kvHeadCount: 3, ropeTheta: 100_000, rmsNormEps: 1e-5, contextLength: 8192))
        XCTAssertNil(model.output, "SmolLM2 ties its output to the embedding")
        XCTAssertEqual(file.tensors["blk.0.ffn_down.weight"]?.shape, [576, 1536])
        XCTAssertEqual(file.tensors["blk.0.ffn_down.weight"]?.type, 3, "Q4_1")
    }

    func testLogitsAndGreedyTokensMatchTheNumpyReference() throws {
        let (_, model) = try smolLM()
        model.int8Activations = false  // the reference is exact float32 on the dequantized weights
        defer { model.int8Activations = true }
        let e = try expected()
        let prompt = (e["prompt"] as! [Int]).map { Int32($0) }
        let cache = KVCache(config: model.config, capacity: 128)
        let logits = model(prompt, cache: cache, lastOnly: true).toArray()
        let reference = e["last_logits"] as! [Double]
        XCTAssertEqual(logits.count, reference.count)
        var worst = 0.0
        for (a, b) in zip(logits, reference) { worst = max(worst, abs(Double(a) - b)) }
        XCTAssertLessThanOrEqual(worst, 1e-3, "max |logit difference| with the numpy reference")
        // Greedy decoding with the KV cache gives the reference's tokens (computed without a cache).
        var next = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
        var greedy = [next]
        for _ in 1..<8 {
            let l = model([next], cache: cache, lastOnly: true).toArray()
            next = Int32(l.indices.max { l[$0] < l[$1] }!)
            greedy.append(next)
        }
        XCTAssertEqual(greedy.map(Int.init), e["greedy"] as! [Int])
    }

    func testQuantizedMatvecEqualsTheDequantizedProduct() throws {
        let (file, _) = try smolLM()
        for name in ["blk.3.ffn_down.weight", "blk.0.attn_k.weight", "token_embd.weight"] {  // Q4_1, Q4_1, Q8_0
            let q = try XCTUnwrap(try file.quantizedMatrix(name))
            let w = try file.tensor(name)
            let x = Tensor.uniform([1, q.columns], low: -1, high: 1, seed: 3)
            let fast = q.matvec(x).toArray(), exact = x.matmul(w.transposed(0, 1)).toArray()
            XCTAssertEqual(fast.count, q.rows)
            for (a, b) in zip(fast, exact) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b)), name) }
        }
        XCTAssertNil(try file.quantizedMatrix("blk.0.attn_norm.weight"), "F32 tensors stay float")
    }

    /// Several rows (a prompt) multiply tiles expanded from the blocks: the same floats as the dequantized
    /// tensor, so the product equals the float32 GEMM up to summation order. Rows double as embedding lookups.
    func testQuantizedMatmulAndRowsEqualTheDequantizedTensor() throws {
        let (file, _) = try smolLM()
        for name in ["blk.3.ffn_down.weight", "blk.0.attn_k.weight", "token_embd.weight"] {  // Q4_1, Q4_1, Q8_0
            let q = try XCTUnwrap(try file.quantizedMatrix(name))
            let w = try file.tensor(name)
            let x = Tensor.uniform([37, q.columns], low: -1, high: 1, seed: 5)
            let tiled = q.matmul(x).toArray(), exact = x.matmul(w.transposed(0, 1)).toArray()
            XCTAssertEqual(tiled.count, 37 * q.rows)
            for (a, b) in zip(tiled, exact) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b)), name) }
            let ids: [Int32] = [0, Int32(q.rows - 1), 7, 7]
            XCTAssertEqual(q.rows(ids).toArray(), w.indexSelect(IntTensor(ids, shape: [4])).toArray(), "rows of \(name), bit for bit")
        }
    }

    /// A GGUF model keeps its quantized matrices in the file; `loadFloatWeights()` fills the module's tensors.
    func testFloatWeightsAreLoadedOnDemand() throws {
        let file = try GGUFFile(smolLMPath)
        let model = try LlamaModel.load(gguf: file)
        try model.loadFloatWeights()
        XCTAssertEqual(model.layers[2].mlp.up.weight.toArray(), try file.tensor("blk.2.ffn_up.weight").toArray())
        XCTAssertEqual(model.embedding.weight.toArray(), try file.tensor("token_embd.weight").toArray())
    }

    /// 8-bit activations (llama.cpp's arithmetic): the product of the quantized activations with the
    /// dequantized weights, computed here in float64 from the same rounding rules, for 3 tokens at once.
    func testInt8ActivationProductMatchesItsDefinition() throws {
        let (file, _) = try smolLM()
        for name in ["blk.3.ffn_down.weight", "blk.0.attn_k.weight", "token_embd.weight"] {
            try checkInt8Product(XCTUnwrap(try file.quantizedMatrix(name)), weights: file.tensor(name).toArray(), name: name)
        }
    }

    func testCorruptAndTruncatedGGUFGiveClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-gguf-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let bad = dir.appendingPathComponent("bad.gguf").path
        FileManager.default.createFile(atPath: bad, contents: Data("NOPE0000".utf8))
        XCTAssertThrowsError(try GGUFFile(bad)) { XCTAssertTrue("\($0)".contains("not a GGUF file"), "\($0)") }
        XCTAssertThrowsError(try GGUFFile(dir.appendingPathComponent("missing.gguf").path)) { XCTAssertTrue("\($0)".contains("no such file")) }
        try XCTSkipUnless(FileManager.default.fileExists(atPath: smolLMPath), "run scripts/fetch-assets.sh SmolLM2-135M-Instruct")
        // The first 40 MB of the real file: the header parses, but tensors run past the end.
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: smolLMPath))
        let head = handle.readData(ofLength: 40_000_000)
        let truncated = dir.appendingPathComponent("truncated.gguf").path
        FileManager.default.createFile(atPath: truncated, contents: head)
        XCTAssertThrowsError(try GGUFFile(truncated)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        try? FileManager.default.removeItem(atPath: truncated)
    }
}

extension Float {
    /// Rounded to half precision (ties to even) and back.
    var roundedToHalfForTest: Float { Float(Float16(self)) }
}

/// Checks `q` times 8-bit activations against their definition, in float64: each block of 32 activations is
/// quantized as GGML does, d = max|x| / 127 (stored as f16), q = round-half-even(x * 127 / max|x|), and for
/// Q8_1 also s = f16(d * sum(q)); Q4_1 adds its block minimum times s. `weights`: the dequantized matrix.
func checkInt8Product(_ q: QuantizedMatrix, weights w: [Float], name: String) {
    let x = Tensor.uniform([3, q.columns], low: -1, high: 1, seed: 4)
    let xs = x.toArray()
    let y = q.matmul(QuantizedActivations(x)).toArray()
    for t in 0..<3 {
        let blocks = q.columns / 32
        var xq = [Double](repeating: 0, count: q.columns)
        var sums = [Double](repeating: 0, count: blocks)
        for b in 0..<blocks {
            let block = xs[(t * q.columns + 32 * b)..<(t * q.columns + 32 * b + 32)]
            let amax = block.map { abs($0) }.max()!
            let d = Float(amax / 127).roundedToHalfForTest
            var sum: Float = 0
            for (j, v) in block.enumerated() {
                let qv = (v * (127 / amax)).rounded(.toNearestOrEven)
                xq[32 * b + j] = Double(d) * Double(qv)
                sum += qv
            }
            sums[b] = Double((amax / 127 * sum).roundedToHalfForTest)
        }
        for r in stride(from: 0, to: q.rows, by: max(1, q.rows / 50)) {
            var exact = 0.0
            for b in 0..<blocks {
                let row = w[(r * q.columns + 32 * b)..<(r * q.columns + 32 * b + 32)].map(Double.init)
                // Q4_1's m is its block minimum (the smallest weight has q = 0), so w = (w - m) + m.
                let m = q.type == 3 ? row.min()! : 0
                for j in 0..<32 { exact += (row[j] - m) * xq[32 * b + j] }
                exact += m * sums[b]
            }
            XCTAssertEqual(Double(y[t * q.rows + r]), exact, accuracy: 1e-4 * max(1, abs(exact)), "\(name) token \(t) row \(r)")
        }
    }
}
