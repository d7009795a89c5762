@testable import AttendTokenizers
import Foundation
import XCTest

final class PreTokenizerTests: XCTestCase {
    /// The hand-written pre-tokenizer gives exactly the pieces of GPT-2's regex.
    func testHandWrittenPreTokenizerEqualsTheRegex() throws {
        let tokenizer = try ByteLevelBPETokenizer(tokens: [], merges: [], specialTokenIds: [])
        let url = Bundle.module.url(forResource: "bpe_corpus", withExtension: "txt", subdirectory: "Fixtures")!
        var texts = try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
        texts += ["  a  b\t\tc \n\n d ", "'s 's's don't '''s !'s \"'ll\" 'RE 've", "x\u{3000}y\u{A0}z \u{2028}w", "1,234.5e-3 ½ Ⅻ ٣",
                  "emoji😀 😀x 日本語 テキスト", " ", "", "\n", "a ", " a", "\r\n\r\nb", "tab\t", "مرحبا بالعالم", "Ω≈ç√ ∫˜µ≤≥÷",
                  "a   ", "end\n\n", "two \t", "   "]   // whitespace runs at the very end: one piece, as \s+(?!\S) takes them
        for t in texts { XCTAssertEqual(ByteLevelBPETokenizer.gpt2Split(t), tokenizer.gpt2SplitByRegex(t), t.debugDescription) }
    }
}
