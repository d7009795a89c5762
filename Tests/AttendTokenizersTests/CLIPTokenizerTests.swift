import AttendTokenizers
import Foundation
import XCTest

/// Expected ids from open_clip's SimpleTokenizer: scripts/reference/make_clip_fixtures.py.
final class CLIPTokenizerTests: XCTestCase {
    let mergesPath = FileManager.default.currentDirectoryPath + "/.cache/assets/clip-bpe/bpe_simple_vocab_16e6.txt.gz"

    func testIdsAndModelInputsMatchOpenCLIP() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: mergesPath), "run scripts/fetch-assets.sh clip-bpe")
        let tokenizer = try CLIPTokenizer(mergesFile: mergesPath)
        XCTAssertEqual(tokenizer.tokens.count, 49408)
        let url = Bundle.module.url(forResource: "clip_expected", withExtension: "json", subdirectory: "Fixtures")!
        let e = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let cases = try XCTUnwrap(e["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 15)
        for item in cases {
            let text = item["text"] as! String
            XCTAssertEqual(tokenizer.encode(text).map(Int.init), item["ids"] as! [Int], "text: \(text)")
        }
        let inputs = e["inputs"] as! [[Int]]
        XCTAssertEqual(tokenizer.modelInput("a photo of a cat.").map(Int.init), inputs[0])
        XCTAssertEqual(tokenizer.modelInput(e["long"] as! String).map(Int.init), inputs[1], "cut to 77 with the end token kept")
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("a photo of a cat.")), "a photo of a cat . ")
        // open_clip's cleaning: ftfy turns the ffi ligature into three letters, and HTML is unescaped twice.
        XCTAssertEqual(tokenizer.encode("\u{FB03}ne"), tokenizer.encode("ffine"))
        XCTAssertEqual(tokenizer.encode("a &amp;lt; b"), tokenizer.encode("a < b"))
    }

    func testBadMergesFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("clip-\(ProcessInfo.processInfo.processIdentifier).txt").path
        FileManager.default.createFile(atPath: path, contents: Data("#version\na b\n".utf8))
        XCTAssertThrowsError(try CLIPTokenizer(mergesFile: path)) { XCTAssertTrue("\($0)".contains("a CLIP merges file has more than"), "\($0)") }
        XCTAssertThrowsError(try CLIPTokenizer(mergesFile: path + ".missing")) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
    }
}
