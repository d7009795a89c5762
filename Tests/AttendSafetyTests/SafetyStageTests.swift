import AttendLM
import AttendModels
import Foundation
import XCTest
@testable import AttendSafety

let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path
let miniLM = FileManager.default.currentDirectoryPath + "/.cache/assets/all-MiniLM-L6-v2"

final class PersonalDataFixtureTests: XCTestCase {
    /// 199 cases made by scripts/reference/make_personal_data_cases.py: Faker's e-mails, phone numbers (7 locales),
    /// cards and IBANs, each card and IBAN checked by python-stdnum and given a twin with one digit changed that fails
    /// the check; secrets in their providers' formats; hard negatives (dates, versions, addresses, order numbers).
    func testLabelledCases() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixtures + "/personal_data_cases.json"))
        let cases = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        XCTAssertEqual(cases.count, 199)
        let detector = PersonalDataDetector()
        var scores: [PersonalDataKind: DetectionScore] = [:]
        for c in cases {
            let text = c["text"] as! String
            let spans = (c["spans"] as! [[String: Any]]).map {
                PersonalDataMatch(kind: PersonalDataKind(rawValue: $0["kind"] as! String)!, range: ($0["start"] as! Int)..<($0["end"] as! Int))
            }
            let found = detector.find(in: text)
            var one: [PersonalDataKind: DetectionScore] = [:]
            DetectionScore.score(found: found, labelled: spans, into: &one)
            // Everything but phone numbers is exact: every span found whole, nothing else; the twins are never found.
            for kind in [PersonalDataKind.email, .paymentCard, .iban, .secret] {
                XCTAssertEqual(found.filter { $0.kind == kind }.map(\.range), spans.filter { $0.kind == kind }.map(\.range), "\(kind): \(text)")
            }
            for (k, v) in one { scores[k, default: DetectionScore()].truePositives += v.truePositives; scores[k]!.falsePositives += v.falsePositives; scores[k]!.falseNegatives += v.falseNegatives }
        }
        // Phone numbers have no check digit: a few written as a plain run without a word saying so are missed.
        let phone = scores[.phone]!
        XCTAssertEqual(phone.falsePositives, 0)
        XCTAssertGreaterThanOrEqual(phone.recall, 0.9, "\(phone)")
        XCTAssertEqual(scores[.paymentCard]!.truePositives, 22)
        XCTAssertEqual(scores[.iban]!.truePositives, 23)
    }

    func testLuhnAndIBANChecksOnTheirOwn() {
        XCTAssertTrue(PersonalDataDetector.luhn(PersonalDataDetector.scalars("79927398713")))
        for wrong in ["79927398710", "79927398711", "79927398712", "79927398714"] { XCTAssertFalse(PersonalDataDetector.luhn(PersonalDataDetector.scalars(wrong)), wrong) }
        XCTAssertTrue(PersonalDataDetector.ibanChecks(PersonalDataDetector.scalars("GB82WEST12345698765432")))
        XCTAssertFalse(PersonalDataDetector.ibanChecks(PersonalDataDetector.scalars("GB82WEST12345698765423")))   // two digits swapped
        // A right check but the wrong length for the country is not an IBAN.
        XCTAssertEqual(PersonalDataDetector().find(in: "GB82 WEST 1234 5698 7654").count, 0)
    }
}

final class SafetyPolicyTests: XCTestCase {
    func testEveryKeyIsChecked() {
        func error(_ text: String) -> String {
            do { _ = try SafetyPolicy.parse(text, source: "p.json"); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(error(#"{"personal_data": "redact", "hold_back": 64}"#).isEmpty)
        XCTAssertTrue(error(#"{"personal_data": {"emial": "redact"}}"#).contains("'personal_data.emial' is not a kind"))
        XCTAssertTrue(error(#"{"personal_data": {"email": "erase"}}"#).contains("must be one of allow, flag, redact, block"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": ["a"], "threshold": 1.5}]}"#).contains("categories[0].threshold' must be a number between 0 and 1"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": ["a"], "action": "redact"}]}"#).contains("must be one of flag, block"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": ["a"]}, {"name": "x", "examples": ["b"]}]}"#).contains("names 'x' twice"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x"}]}"#).contains("needs a description or examples"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": [""]}]}"#).contains("non-empty strings"))
        XCTAssertTrue(error(#"{"apply_to": ["outputs"]}"#).contains("'apply_to'"))
        XCTAssertTrue(error(#"{"hold_back": 2}"#).contains("'hold_back' must be an integer in 8...4096"))
        XCTAssertTrue(error(#"{"holdback": 64}"#).contains("'holdback' is not a policy key"))
        // The keys not covered above: each wrong type or value is named.
        XCTAssertTrue(error(#"{"embedding_model": 3}"#).contains("'embedding_model' must be a model name or path"))
        XCTAssertTrue(error(#"{"embedding_model": ""}"#).contains("'embedding_model' must be a model name or path"))
        XCTAssertTrue(error(#"{"personal_data": 7}"#).contains("'personal_data' must be an action or an object"))
        XCTAssertTrue(error(#"{"categories": {"name": "x"}}"#).contains("'categories' must be an array of categories"))
        XCTAssertTrue(error(#"{"categories": ["x"]}"#).contains("'categories[0]' must be an object"))
        XCTAssertTrue(error(#"{"categories": [{"name": 5, "examples": ["a"]}]}"#).contains("'categories[0].name' must be 1 to 64"))
        XCTAssertTrue(error(#"{"categories": [{"name": "a;b", "examples": ["a"]}]}"#).contains("'categories[0].name' must be 1 to 64"))
        XCTAssertTrue(error(#"{"categories": [{"examples": ["a"]}]}"#).contains("'categories[0].name' is required"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "description": 1}]}"#).contains("'categories[0].description' must be a non-empty string"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": "a"}]}"#).contains("'categories[0].examples' must be an array of non-empty strings"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": ["a"], "counter_examples": [1]}]}"#).contains("'categories[0].counter_examples' must be an array of non-empty strings"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": ["a"], "threshold": "high"}]}"#).contains("categories[0].threshold' must be a number"))
        XCTAssertTrue(error(#"{"categories": [{"name": "x", "examples": ["a"], "colour": "red"}]}"#).contains("'categories[0].colour' is not a category key"))
        XCTAssertTrue(error(#"{"apply_to": "output"}"#).contains("'apply_to'"))
        XCTAssertTrue(error(#"{"apply_to": []}"#).contains("'apply_to'"))
        XCTAssertTrue(error(#"{"hold_back": 64.5}"#).contains("'hold_back' must be an integer"))
        XCTAssertTrue(error("[1]").contains("must be a JSON object"))
        XCTAssertTrue(error("{").contains("p.json: not JSON"))
        XCTAssertThrowsError(try SafetyStage(policy: try SafetyPolicy.parse(#"{"categories": [{"name": "x", "examples": ["a"]}]}"#), embed: nil))
    }
}

final class SafetyFilterTests: XCTestCase {
    let answer = "Sure. Write to jane.doe@example.com or call +44 20 7946 0958, and pay to GB82 WEST 1234 5698 7654 32 today. "
        + "The key is AKIAIOSFODNN7EXAMPLE and that is all."

    func stage(_ json: String = #"{"personal_data": "redact"}"#) throws -> SafetyStage {
        try SafetyStage(policy: try SafetyPolicy.parse(json), embed: nil)
    }

    /// Streamed in pieces of every size, the released text equals the whole text redacted, and no released prefix
    /// ever holds a piece of the personal data.
    func testStreamingEqualsWholeTextAndNeverLeaks() throws {
        let whole = PersonalDataDetector().redact(answer)
        XCTAssertEqual(whole, "Sure. Write to [EMAIL] or call [PHONE], and pay to [IBAN] today. The key is [SECRET] and that is all.")
        let secrets = ["jane.doe", "example.com", "7946", "0958", "WEST", "5698", "AKIA"]
        let scalars = Array(answer.unicodeScalars)
        for size in [1, 2, 3, 5, 7, 11, 16, 40, 1000] {
            let filter = SafetyFilter(stage: try stage())
            var released = ""
            for start in stride(from: 0, to: scalars.count, by: size) {
                released += try filter.feed(String(String.UnicodeScalarView(scalars[start..<min(scalars.count, start + size)]))).text
                // Every released text is a prefix of the final redacted one: no character of the personal data (which
                // the redacted text does not hold) ever leaves, not even its first.
                XCTAssertTrue(whole.hasPrefix(released), "piece size \(size): released text is not a prefix of the redacted answer: \(released)")
                for s in secrets { XCTAssertFalse(released.contains(s), "piece size \(size): '\(s)' left before it was checked: \(released)") }
            }
            released += try filter.finish().text
            XCTAssertEqual(released, whole, "piece size \(size)")
            XCTAssertEqual(filter.redactions, 4)
        }
    }

    /// Text is released as it comes, not all at the end: only the hold-back waits.
    func testReleasesAllButTheHoldBack() throws {
        let filter = SafetyFilter(stage: try stage(#"{"hold_back": 16}"#))
        let r = try filter.feed("one two three four five six seven eight nine ten eleven twelve")
        XCTAssertEqual(r.text, "one two three four five six seven eight nine ")
        XCTAssertEqual(try filter.finish().text, "ten eleven twelve")
    }

    func testBlockStopsBeforeTheSpanLeaves() throws {
        let filter = SafetyFilter(stage: try stage(#"{"personal_data": {"payment_card": "block"}}"#))
        var out = ""
        for piece in ["Your card ", "4111 1111 ", "1111 1111 ", "is on file. More text follows here to push the hold-back."] {
            let r = try filter.feed(piece)
            out += r.text
            if r.stopped { break }
        }
        out += try filter.finish().text
        XCTAssertEqual(out, "Your card ")
        XCTAssertEqual(filter.violation?.reason, "personal_data/payment_card")
        XCTAssertTrue(filter.stopped)
    }

    func testPrivateKeyIsHeldUntilItEnds() throws {
        let filter = SafetyFilter(stage: try stage(#"{"hold_back": 8}"#))
        var out = try filter.feed("Here it is:\n-----BEGIN RSA PRIVATE KEY-----\n" + String(repeating: "MIIEowIBAAKCAQEA\n", count: 20)).text
        XCTAssertEqual(out, "Here it is:\n")
        out += try filter.feed("-----END RSA PRIVATE KEY-----\nDone, as asked by you.").text
        out += try filter.finish().text
        XCTAssertEqual(out, "Here it is:\n[SECRET]\nDone, as asked by you.")
    }

    /// Categories scored by all-MiniLM-L6-v2: a threat is blocked (nothing of its sentence leaves), its counter-example
    /// is not, and text before the threat's sentence is released.
    func testCategoryBlocksTheSentenceWithMiniLM() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: miniLM + "/model.safetensors"), "run scripts/fetch-assets.sh all-MiniLM-L6-v2")
        let embedder = try SentenceEmbedder.load(directory: miniLM)
        let policy = try SafetyPolicy.load(path: FileManager.default.currentDirectoryPath + "/examples/safety-policy.json")
        let stage = try SafetyStage(policy: policy, embed: { embedder.embed($0) })
        let filter = SafetyFilter(stage: stage)
        var out = ""
        for piece in ["The server is ", "fine. You can kill the process with SIGTERM. ", "I am going to ", "hurt you badly tomorrow. ", "Bye."] {
            let r = try filter.feed(piece)
            out += r.text
            if r.stopped { break }
        }
        XCTAssertEqual(out, "The server is fine. You can kill the process with SIGTERM.")
        XCTAssertEqual(filter.violation?.reason, "category/violence")
        let report = try stage.check("I will kill him tomorrow, I swear.")
        XCTAssertEqual(report.violation?.reason, "category/violence")
        XCTAssertGreaterThan(report.categoryScores[0].score, 0.6)
        let calm = try stage.check("Kill the server with SIGTERM, then start it again.")
        XCTAssertNil(calm.violation)
        XCTAssertFalse(calm.categoryScores[0].flagged)
    }
}
