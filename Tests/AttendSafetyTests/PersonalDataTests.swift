import Foundation
import XCTest
@testable import AttendSafety

final class PersonalDataTests: XCTestCase {
    func spans(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return PersonalDataDetector().find(in: text).map { "\($0.kind.rawValue):" + String(String.UnicodeScalarView(scalars[$0.range])) }
    }

    /// Hand-made cases for every branch: each kind found whole, and the look-alikes that must not be.
    func testEachKindAndItsLookAlikes() {
        let cases: [(String, [String])] = [
            ("Mail jane.doe@example.com.", ["email:jane.doe@example.com"]),
            ("(bob+tag@mail.example.co.uk)", ["email:bob+tag@mail.example.co.uk"]),
            ("not an address: a@b, x@localhost, @home", []),
            ("Visa 4111 1111 1111 1111 expires", ["payment_card:4111 1111 1111 1111"]),
            ("card 4111-1111-1111-1111.", ["payment_card:4111-1111-1111-1111"]),
            ("Amex 378282246310005", ["payment_card:378282246310005"]),
            ("fails Luhn 4111 1111 1111 1112", []),
            ("order 1234567890123456 shipped", []),           // fails Luhn
            ("IBAN GB82 WEST 1234 5698 7654 32 please", ["iban:GB82 WEST 1234 5698 7654 32"]),
            ("DE89370400440532013000", ["iban:DE89370400440532013000"]),
            ("wrong check GB82 WEST 1234 5698 7654 33", []),
            ("Call +44 20 7946 0958 today", ["phone:+44 20 7946 0958"]),
            ("Call +1-202-555-0143x1234", ["phone:+1-202-555-0143x1234"]),
            ("Office (202) 555-0143.", ["phone:(202) 555-0143"]),
            ("Tel. 030 1234567", ["phone:030 1234567"]),
            ("phone: 2025550143", ["phone:2025550143"]),
            ("ticket 2025550143 closed", []),               // a plain run without a phone word
            ("released 2023-10-12, version 15.4.2, host 192.168.100.200", []),
            ("ISBN 0-306-40615-2", []),
            ("key AKIAIOSFODNN7EXAMPLE in the log", ["secret:AKIAIOSFODNN7EXAMPLE"]),
            ("export OPENAI_API_KEY=sk-abc123DEF456ghi789JKL012", ["secret:sk-abc123DEF456ghi789JKL012"]),
            ("we use scikit-learn and sk-learn-style task-force names", []),
            ("DB_PASSWORD = 'hunter2hunter2'", ["secret:hunter2hunter2"]),
            (#"{"api_key": "Zx81Qm27Lp"}"#, ["secret:Zx81Qm27Lp"]),
            ("password: <your password here>", []),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter",
             ["secret:-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"]),
            ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", []),
            ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
             ["secret:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"]),
        ]
        for (text, expected) in cases { XCTAssertEqual(spans(text), expected, text) }
    }

    func testRedactionReplacesEachSpanByItsPlaceholder() {
        XCTAssertEqual(PersonalDataDetector().redact("Write to jane@example.com or +44 20 7946 0958, IBAN DE89 3704 0044 0532 0130 00."),
                       "Write to [EMAIL] or [PHONE], IBAN [IBAN].")
        XCTAssertEqual(PersonalDataDetector(kinds: [.email]).redact("jane@example.com +44 20 7946 0958"), "[EMAIL] +44 20 7946 0958")
    }
}
