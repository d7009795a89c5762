import XCTest
@testable import AttendSafety

/// The safety stage's parsers and scanners against random and mutated input: policy files parse or throw, the
/// detector never traps and returns sorted, disjoint spans inside the text, and the streaming filter gives the
/// detector's own redaction whatever the pieces. Seeded, so a failure reproduces.
final class SafetyFuzzTests: XCTestCase {
    struct SplitMix { var state: UInt64; mutating func next() -> UInt64 { state &+= 0x9E3779B97F4A7C15; var z = state; z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) &* 0x94D049BB133111EB; return z ^ (z >> 31) } }

    static func mutate(_ seed: [Unicode.Scalar], _ rng: inout SplitMix, alphabet: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var b = seed
        for _ in 0...(rng.next() % 6) {
            let at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
            let c = alphabet[Int(rng.next() % UInt64(alphabet.count))]
            switch rng.next() % 4 {
            case 0 where !b.isEmpty: b[at] = c
            case 1: b.insert(c, at: at)
            case 2 where !b.isEmpty: b.remove(at: at)
            default: b.insert(contentsOf: b[at..<min(b.count, at + Int(rng.next() % 24))], at: at)
            }
        }
        return b
    }

    func testDetectorAndFilterOnMutatedText() throws {
        var rng = SplitMix(state: 15)
        let seeds = ["Call +44 (0)20 7946 0958 x12 or mail jane.doe@example.co.uk.", "IBAN GB82 WEST 1234 5698 7654 32, card 4111-1111-1111-1111",
                     "api_key: \"sk-abc123DEF456ghi789JKL012\" AKIAIOSFODNN7EXAMPLE", "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----",
                     "ré 🙂 00441234567890 (555) 123-4567 2023-10-12 192.168.0.1 ext. 99"]
        let alphabet = Array("0123456789 +-.()/@x_:=\"'\nAZaz🙂é-----BEGIN ".unicodeScalars)
        let detector = PersonalDataDetector()
        let stage = try SafetyStage(policy: SafetyPolicy(), embed: nil)
        var found = 0
        for round in 0..<4000 {
            let scalars = Self.mutate(Array(seeds[round % seeds.count].unicodeScalars), &rng, alphabet: alphabet)
            let text = String(String.UnicodeScalarView(scalars))
            let spans = detector.find(in: text)
            found += spans.count
            for (a, b) in zip(spans, spans.dropFirst()) { XCTAssertLessThanOrEqual(a.range.upperBound, b.range.lowerBound, text) }
            for s in spans { XCTAssertTrue(s.range.lowerBound >= 0 && s.range.upperBound <= scalars.count && !s.range.isEmpty, text) }
            if round % 10 == 0 {
                let filter = SafetyFilter(stage: stage)
                var out = "", at = 0
                while at < scalars.count {
                    let n = 1 + Int(rng.next() % 9)
                    out += try filter.feed(String(String.UnicodeScalarView(scalars[at..<min(scalars.count, at + n)]))).text
                    at += n
                }
                out += try filter.finish().text
                XCTAssertEqual(out, detector.redact(text), "pieces of \(text.debugDescription)")
            }
        }
        XCTAssertGreaterThan(found, 2000, "the mutations keep many spans: the detector was exercised")
    }

    func testPolicyParserOnMutatedFiles() {
        var rng = SplitMix(state: 16)
        let seed = Array(#"{"personal_data": {"email": "redact", "phone": "block"}, "categories": [{"name": "v", "description": "d", "examples": ["a", "b"], "counter_examples": ["c"], "threshold": 0.5, "action": "flag"}], "apply_to": ["input"], "hold_back": 32}"#.unicodeScalars)
        let alphabet = Array(#"{}[]":,.0123456789-eE truefalsnul"#.unicodeScalars)
        var parsed = 0
        for _ in 0..<4000 {
            let text = String(String.UnicodeScalarView(Self.mutate(seed, &rng, alphabet: alphabet)))
            do { _ = try SafetyPolicy.parse(text, source: "p"); parsed += 1 } catch { XCTAssertTrue("\(error)".hasPrefix("p:"), "\(error)") }
        }
        XCTAssertGreaterThan(parsed, 10, "some mutations still parse: the checks past the JSON were exercised")
        XCTAssertLessThan(parsed, 3900)
    }
}
