@testable import AttendModels
import AttendLM
import AttendNN
import AttendTensor
import AttendTokenizers
import Foundation
import XCTest

let miniLMDirectory = FileManager.default.currentDirectoryPath + "/.cache/assets/all-MiniLM-L6-v2"

func expectedMiniLM() throws -> [String: Any] {
    let url = Bundle.module.url(forResource: "minilm_expected", withExtension: "json", subdirectory: "Fixtures")!
    return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}

final class BERTTests: XCTestCase {
    func testWordPieceIdsMatchHuggingFace() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: miniLMDirectory + "/vocab.txt"), "run scripts/fetch-assets.sh all-MiniLM-L6-v2")
        let tokenizer = try WordPieceTokenizer.load(directory: miniLMDirectory)
        let items = try XCTUnwrap(try expectedMiniLM()["tokenizer"] as? [[String: Any]])
        XCTAssertEqual(items.count, 17)
        for item in items {
            let text = item["text"] as! String
            let ids = (item["ids"] as! [Int]).map { Int32($0) }
            XCTAssertEqual(tokenizer.encode(text, maxLength: 256), ids, "text: \(text.prefix(60))")
        }
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("Hello, world!")), "hello , world !")
        // BERT's basic tokenizer counts every ASCII symbol as punctuation (33-47, 58-64, 91-96, 123-126), the backtick
        // and the edges of each range included.
        XCTAssertEqual(tokenizer.tokenize("don`t [a] ~b! /c: @d{"), ["don", "`", "t", "[", "a", "]", "~", "b", "!", "/", "c", ":", "@", "d", "{"])
        // Hugging Face's max_input_chars_per_word: a word of 100 characters is split into pieces, one of 101 is [UNK].
        XCTAssertNotEqual(tokenizer.tokenize(String(repeating: "ab", count: 50)), ["[UNK]"])
        XCTAssertEqual(tokenizer.tokenize(String(repeating: "ab", count: 50) + "a"), ["[UNK]"])
    }

    func testMiniLMSentenceEmbeddingsMatchSentenceTransformers() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: miniLMDirectory + "/model.safetensors"), "run scripts/fetch-assets.sh all-MiniLM-L6-v2")
        let expected = try expectedMiniLM()
        let sentences = expected["sentences"] as! [String]
        let reference = expected["embeddings"] as! [[Double]]
        let embedder = try SentenceEmbedder.load(directory: miniLMDirectory)
        XCTAssertEqual(embedder.pooling, .mean)
        XCTAssertTrue(embedder.normalize)
        XCTAssertEqual(embedder.maxLength, 256)
        let ours = embedder.embed(sentences, batchSize: 5)
        XCTAssertEqual(ours.shape, [sentences.count, 384])
        let v = ours.toArray()
        XCTAssertEqual(sentences.count, 12)
        XCTAssertEqual(reference.count, sentences.count)
        for (i, ref) in reference.enumerated() {
            var dot = 0.0, worst = 0.0
            for k in 0..<384 {
                dot += Double(v[i * 384 + k]) * ref[k]
                worst = max(worst, abs(Double(v[i * 384 + k]) - ref[k]))
            }
            XCTAssertLessThanOrEqual(worst, 1e-4, "sentence \(i): max abs difference")
            XCTAssertGreaterThanOrEqual(dot, 0.9999, "sentence \(i): cosine with sentence-transformers")
        }
    }

    /// `precision = .int8` (every linear layer through Int8Matrix) stays within cosine 0.99 of sentence-transformers'
    /// float32 vectors, really runs in int8 (the vectors move), and going back to float32 gives the float vectors again.
    func testMiniLMInt8EmbeddingsStayCloseToSentenceTransformers() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: miniLMDirectory + "/model.safetensors"), "run scripts/fetch-assets.sh all-MiniLM-L6-v2")
        let expected = try expectedMiniLM()
        let sentences = expected["sentences"] as! [String]
        let reference = expected["embeddings"] as! [[Double]]
        let embedder = try SentenceEmbedder.load(directory: miniLMDirectory)
        let float32 = embedder.embed(sentences, batchSize: 5).toArray()
        embedder.precision = .int8
        XCTAssertEqual(embedder.model.layers[0].feedForward.up.int8?.outputs, 1536)
        let int8 = embedder.embed(sentences, batchSize: 5).toArray()
        XCTAssertEqual(reference.count, 12)
        XCTAssertEqual(int8.count, reference.count * 384)
        var largestMove = 0.0
        for (i, ref) in reference.enumerated() {
            var dot = 0.0
            for k in 0..<384 {
                dot += Double(int8[i * 384 + k]) * ref[k]
                largestMove = max(largestMove, abs(Double(int8[i * 384 + k] - float32[i * 384 + k])))
            }
            XCTAssertGreaterThanOrEqual(dot, 0.99, "sentence \(i): int8 cosine with sentence-transformers")
        }
        XCTAssertGreaterThan(largestMove, 1e-4, "int8 gave the float32 vectors: the int8 layers did not run")
        embedder.precision = .float32
        XCTAssertNil(embedder.model.layers[0].feedForward.up.int8)
        XCTAssertEqual(embedder.embed(sentences, batchSize: 5).toArray(), float32)
    }

    func testTinyRandomBERTRoundTripsThroughHuggingFaceNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-tiny-bert-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = BERTConfig(vocabSize: 50, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 16, maxPositions: 16)
        try JSONEncoder().encode(config).write(to: dir.appendingPathComponent("config.json"))
        var g = RandomGenerator(seed: 4)
        let original = BERTModel(config, generator: &g)
        let hfNames = original.namedTensors().map { (BERTModel.checkpointName($0.name), $0.tensor) }
        XCTAssertTrue(hfNames.contains { $0.0 == "encoder.layer.1.attention.self.query.weight" })
        XCTAssertTrue(hfNames.contains { $0.0 == "encoder.layer.0.output.LayerNorm.bias" })
        XCTAssertTrue(hfNames.contains { $0.0 == "embeddings.LayerNorm.weight" })
        try Safetensors.write(hfNames.map { ("bert." + $0.0, $0.1) }, to: dir.appendingPathComponent("model.safetensors").path)
        let loaded = try BERTModel.load(directory: dir.path)
        original.eval()
        let ids = IntTensor([2, 7, 9, 4, 0, 0], shape: [2, 3])
        XCTAssertEqual(loaded(ids, lengths: [3, 1]).toArray(), original(ids, lengths: [3, 1]).toArray())
        // A padded position does not change the real tokens' states.
        let alone = original(IntTensor([4], shape: [1, 1])).toArray()
        let padded = original(IntTensor([4, 0, 0], shape: [1, 3]), lengths: [1]).toArray()
        for k in 0..<8 { XCTAssertEqual(alone[k], padded[k], accuracy: 1e-5) }

        // A checkpoint missing a tensor names it.
        try Safetensors.write(Array(hfNames.dropLast()), to: dir.appendingPathComponent("model.safetensors").path)
        XCTAssertThrowsError(try BERTModel.load(directory: dir.path)) { XCTAssertTrue("\($0)".contains("is missing"), "\($0)") }
        XCTAssertThrowsError(try BERTModel.load(directory: "/nonexistent")) { XCTAssertTrue("\($0)".contains("config.json")) }
    }
}
