import AttendTokenizers
import Foundation
import XCTest

/// Expected values from Hugging Face tokenizers: scripts/reference/make_bpe_fixtures.py.
final class BPETrainingTests: XCTestCase {
    func fixture(_ name: String, _ ext: String) -> URL { Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures")! }

    func expected() throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(contentsOf: fixture("bpe_expected", "json"))) as! [String: Any] }

    func checkCases(_ tokenizer: ByteLevelBPETokenizer, _ e: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try XCTUnwrap(e["cases"] as? [[String: Any]], "every case parses", file: file, line: line)
        XCTAssertEqual(cases.count, 13, file: file, line: line)
        for item in cases {
            let text = item["text"] as! String
            let ids = tokenizer.encode(text)
            XCTAssertEqual(ids.map(Int.init), item["ids"] as! [Int], "text: \(text)", file: file, line: line)
            XCTAssertEqual(tokenizer.decode(ids), text, file: file, line: line)
        }
    }

    func testTrainingGivesTheMergesOfHuggingFaceTokenizers() throws {
        let e = try expected()
        let lines = try String(contentsOf: fixture("bpe_corpus", "txt"), encoding: .utf8).components(separatedBy: "\n")
        var options = BPETrainingOptions()
        options.vocabularySize = 1000
        options.minFrequency = 2
        let tokenizer = try BPETrainer.train(lines, options: options)
        XCTAssertEqual(tokenizer.merges, e["merges"] as! [String])
        XCTAssertEqual(tokenizer.tokens.count, e["vocab_size"] as! Int)
        try checkCases(tokenizer, e)
        // With room in the vocabulary, min_frequency decides: a pair seen exactly twice is merged, one seen once is not
        // (tokenizers' rule: pairs below min_frequency stop training).
        var roomy = BPETrainingOptions()
        roomy.vocabularySize = 5000
        roomy.minFrequency = 2
        let small = try BPETrainer.train(["xq xq", "zj"], options: roomy)
        XCTAssertTrue(small.merges.contains("x q"), "\(small.merges)")
        XCTAssertFalse(small.merges.contains("z j"), "\(small.merges)")

        // Saved files load back (both formats) and tokenize the same.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpe-\(ProcessInfo.processInfo.processIdentifier)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try tokenizer.save(directory: dir)
        try checkCases(try ByteLevelBPETokenizer.load(tokenizerJSON: dir + "/tokenizer.json"), e)
        try checkCases(try ByteLevelBPETokenizer.load(vocabJSON: dir + "/vocab.json", mergesText: dir + "/merges.txt"), e)
    }

    func testLoadsTokenizerJSONWrittenByHuggingFace() throws {
        try checkCases(try ByteLevelBPETokenizer.load(tokenizerJSON: fixture("bpe_trained_tokenizer", "json").path), try expected())
    }

    func testOffsetsAndBatchesMatchHuggingFace() throws {
        let e = try expected()
        let tokenizer = try ByteLevelBPETokenizer.load(tokenizerJSON: fixture("bpe_trained_tokenizer", "json").path)
        let cases = e["cases"] as! [[String: Any]]
        for item in cases {
            let text = item["text"] as! String
            let got = tokenizer.encodeWithOffsets(text)
            XCTAssertEqual(got.map { [$0.start, $0.end] }, item["offsets"] as! [[Int]], "offsets of \(text)")
        }
        let texts = cases.map { $0["text"] as! String }
        let batches = e["batches"] as! [String: [[String: [Int]]]]
        let bpe = tokenizer.encodeBatch(texts, maxLength: 8, padding: .longest, padId: 0)
        XCTAssertEqual(bpe.ids.map { $0.map(Int.init) }, batches["bpe"]!.map { $0["ids"]! })
        XCTAssertEqual(bpe.attentionMask.map { $0.map(Int.init) }, batches["bpe"]!.map { $0["mask"]! })
        let minilm = FileManager.default.currentDirectoryPath + "/.cache/assets/all-MiniLM-L6-v2"
        // No silent pass without the asset: the WordPiece half is part of what this test claims.
        try XCTSkipUnless(FileManager.default.fileExists(atPath: minilm + "/vocab.txt"), "run scripts/fetch-assets.sh all-MiniLM-L6-v2")
        do {
            let wordPiece = try WordPieceTokenizer.load(directory: minilm)
            let batch = wordPiece.encodeBatch(texts, maxLength: 12, padding: .longest, padId: wordPiece.padId)
            XCTAssertEqual(batch.ids.map { $0.map(Int.init) }, batches["wordpiece"]!.map { $0["ids"]! })
            XCTAssertEqual(batch.attentionMask.map { $0.map(Int.init) }, batches["wordpiece"]!.map { $0["mask"]! })
        }
        do {
            let wordPiece = try WordPieceTokenizer.load(directory: minilm)
            let items = e["wordpiece_offsets"] as! [Any]
            XCTAssertEqual(items.compactMap { $0 as? [String: Any] }.count, items.count, "every offsets case parses")
            XCTAssertFalse(items.isEmpty)
            for case let item as [String: Any] in e["wordpiece_offsets"] as! [Any] {
                let text = item["text"] as! String
                let got = wordPiece.encodeWithOffsets(text)
                XCTAssertEqual(got.map { Int($0.id) }, item["ids"] as! [Int], "ids of \(text)")
                XCTAssertEqual(got.map { [$0.start, $0.end] }, item["offsets"] as! [[Int]], "WordPiece offsets of \(text)")
            }
        }
        let fixed = tokenizer.encodeBatch(["a b c d e f", "a"], padding: .toLength(3), padId: 0)
        XCTAssertEqual(fixed.ids.map(\.count), [3, 3])
        XCTAssertEqual(fixed.attentionMask[1], [1, 0, 0])
    }

    func testBadFilesNameWhatIsWrong() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpe-bad-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = dir.appendingPathComponent("tokenizer.json")
        try Data(#"{"model": {"type": "WordPiece", "vocab": {}}}"#.utf8).write(to: json)
        XCTAssertThrowsError(try ByteLevelBPETokenizer.load(tokenizerJSON: json.path)) { XCTAssertTrue("\($0)".contains("expected 'BPE'"), "\($0)") }
        try Data("{not json".utf8).write(to: json)
        XCTAssertThrowsError(try ByteLevelBPETokenizer.load(tokenizerJSON: json.path)) { XCTAssertTrue("\($0)".contains("does not parse"), "\($0)") }
        let vocab = dir.appendingPathComponent("vocab.json"), merges = dir.appendingPathComponent("merges.txt")
        try Data(#"{"a": 0, "b": 1, "ab": 2}"#.utf8).write(to: vocab)
        try Data("#version: 0.2\na b\nabc\n".utf8).write(to: merges)
        XCTAssertThrowsError(try ByteLevelBPETokenizer.load(vocabJSON: vocab.path, mergesText: merges.path)) {
            XCTAssertTrue("\($0)".contains("merges.txt:3:"), "\($0)")
        }
        var options = BPETrainingOptions()
        options.vocabularySize = 100
        XCTAssertThrowsError(try BPETrainer.train(["abc"], options: options)) { XCTAssertTrue("\($0)".contains("256 byte symbols"), "\($0)") }
    }
}
