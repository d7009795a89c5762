import AttendTokenizers
import Foundation
import XCTest

final class GPT2TokenizerTests: XCTestCase {
    let ranksPath = FileManager.default.currentDirectoryPath + "/.cache/assets/gpt2-tiktoken/gpt2.tiktoken"

    func testGPT2FromTiktokenRanksMatchesTiktoken() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: ranksPath), "run scripts/fetch-assets.sh gpt2-tiktoken")
        let tokenizer = try ByteLevelBPETokenizer.fromTiktoken(path: ranksPath, specialTokens: ["<|endoftext|>": 50256])
        XCTAssertEqual(tokenizer.tokens.count, 50257)
        let url = Bundle.module.url(forResource: "gpt2_tiktoken_expected", withExtension: "json", subdirectory: "Fixtures")!
        let items = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [[String: Any]])
        XCTAssertEqual(items.count, 13)
        for item in items {
            let text = item["text"] as! String
            let ids = tokenizer.encode(text)
            XCTAssertEqual(ids.map(Int.init), item["ids"] as! [Int], "text: \(text)")
            XCTAssertEqual(tokenizer.decode(ids), text)
        }
    }

    func testBadRankFileGivesLineNumber() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(ProcessInfo.processInfo.processIdentifier).tiktoken").path
        FileManager.default.createFile(atPath: path, contents: Data("IQ== 0\nnot-a-line\n".utf8))
        XCTAssertThrowsError(try ByteLevelBPETokenizer.fromTiktoken(path: path)) { XCTAssertTrue("\($0)".contains(":2: expected"), "\($0)") }
    }
}
