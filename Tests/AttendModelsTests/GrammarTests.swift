@testable import AttendLM
import AttendModels
import AttendTokenizers
import AttendTensor
import XCTest

final class GrammarTests: XCTestCase {
    /// 280 instances of 7 schemas, labelled by Python's `jsonschema` (scripts/reference/make_json_schema_cases.py):
    /// the grammar compiled from each schema accepts exactly the valid ones.
    func testJSONSchemaGrammarAgreesWithJsonschema() throws {
        let url = Bundle.module.url(forResource: "json_schema_cases", withExtension: "json", subdirectory: "Fixtures")!
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        XCTAssertEqual(cases.count, 280)
        var grammars: [String: Grammar] = [:]
        var valid = 0, invalid = 0
        for c in cases {
            // The schema as text, its keys in the order the script wrote them (the order the grammar writes).
            let raw = try XCTUnwrap(c["schema"] as? String)
            let grammar = try grammars[raw] ?? Grammar(gbnf: JSONSchemaGrammar.gbnf(schemaText: raw))
            grammars[raw] = grammar
            let text = c["text"] as! String, expected = c["valid"] as! Bool
            XCTAssertEqual(grammar.matches(text), expected, "\(raw)\n\(text)")
            if expected { valid += 1; XCTAssertNoThrow(try JSONValue.parse(text)) } else { invalid += 1 }
        }
        XCTAssertEqual(grammars.count, 7)
        XCTAssertGreaterThan(valid, 100)
        XCTAssertGreaterThan(invalid, 100)
    }

    func testGBNFGrammars() throws {
        let arithmetic = try Grammar(gbnf: """
            # sums and products of numbers, with parentheses
            root   ::= expr
            expr   ::= term ("+" term)*
            term   ::= factor ("*" factor)*
            factor ::= [0-9]+ | "(" expr ")"
            """)
        for s in ["1", "12+3", "(1+2)*3", "((4))", "1*2*3+4"] { XCTAssertTrue(arithmetic.matches(s), s) }
        for s in ["", "+", "1+", "(1", "1)", "a", "1 + 2"] { XCTAssertFalse(arithmetic.matches(s), s) }
        let counts = try Grammar(gbnf: #"root ::= "a"{2,3} "b"{2} [^x-z]? "c"{1,}"#)
        for s in ["aabbc", "aaabbqccc", "aabb!c"] { XCTAssertTrue(counts.matches(s), s) }
        for s in ["abbc", "aaaabbc", "aabbbbc", "aabbxc", "aabb"] { XCTAssertFalse(counts.matches(s), s) }
        let escapes = try Grammar(gbnf: #"root ::= "\"q\"" [\n\t] "\x41" "\u00e9" . "#)
        XCTAssertTrue(escapes.matches("\"q\"\nAé🙂"))
        XCTAssertFalse(escapes.matches("\"q\" Aé🙂"))
        // Rules may span lines; the next `name ::=` ends the one before.
        let multiline = try Grammar(gbnf: "root ::= a\n  | b\na ::= \"x\"\nb ::=\n  \"y\" \"z\"")
        XCTAssertTrue(multiline.matches("x"))
        XCTAssertTrue(multiline.matches("yz"))
        XCTAssertFalse(multiline.matches("y"))
        for (bad, expected) in [("root ::= missing", "not defined"), ("root ::= root \"a\" | \"b\"", "left-recursive"), ("root ::= x\nx ::= (\"\" | x) \"a\"", "left-recursive"),
                                ("root ::= \"open", "line 1: unterminated string"), ("\n\nroot ::= [a-", "line 3"), ("rot ::= \"a\"", "no rule named 'root'"),
                                ("root ::= \"a\"{5,2}", "repetition"), ("root ::= [z-a]", "backwards"), ("root ::= \"a\"\nroot ::= \"b\"", "defined twice"), ("", "empty")] {
            XCTAssertThrowsError(try Grammar(gbnf: bad), bad) { XCTAssertTrue("\($0)".contains(expected), "\(bad): \($0)") }
        }
    }

    /// A token may end inside a character: its bytes wait for the next token, but only when some rule accepts a
    /// character they can still become.
    func testIncompleteCharactersAcrossTokens() throws {
        let g = try Grammar(gbnf: #"root ::= "é" "!" | "a""#)   // é is C3 A9
        let s0 = g.start()
        let half = try XCTUnwrap(g.advance(s0, bytes: [0xC3]))
        XCTAssertFalse(g.isComplete(half))
        XCTAssertNil(g.advance(s0, bytes: [0xC2]), "C2 starts U+0080...U+00BF, which no rule accepts")
        XCTAssertNil(g.advance(s0, bytes: [0xE6]), "a three-byte character")
        let whole = try XCTUnwrap(g.advance(half, bytes: [0xA9]))
        XCTAssertNil(g.advance(half, bytes: [0xA8]))
        XCTAssertTrue(g.isComplete(try XCTUnwrap(g.advance(whole, bytes: Array("!".utf8)))))
        XCTAssertNil(g.advance(s0, bytes: [0xFF]))
        XCTAssertNil(g.advance(s0, bytes: [0xC1]), "C1 only starts overlong forms of ASCII")
        XCTAssertEqual(Grammar.scalarRange(prefix: [0xE0], length: 3), 0x800...0xFFF)
        XCTAssertEqual(Grammar.scalarRange(prefix: [0xF4, 0x8F], length: 4), 0x10F000...0x10FFFF)
        XCTAssertNil(Grammar.scalarRange(prefix: [0xF4, 0x90], length: 4))
        // Where only ASCII may come (a JSON string's opening quote), no multi-byte lead may wait.
        let schema = try Grammar(gbnf: JSONSchemaGrammar.gbnf(schemaText: #"{"type": "object", "properties": {"version": {"type": "string", "maxLength": 8}}, "required": ["version"]}"#))
        let open = try XCTUnwrap(schema.advance(schema.start(), bytes: Array(#"{ "version": "#.utf8)))
        for lead: [UInt8] in [[0xE2], [0xE2, 0x80], [0xC2], [0xF0, 0x9F, 0x99], [0xE0], [0xE0, 0x80], [0xC0], [0xF0, 0x80], [0xF4, 0x90]] { XCTAssertNil(schema.advance(open, bytes: lead), "\(lead)") }
        XCTAssertNotNil(schema.advance(open, bytes: Array("\"\u{201C}".utf8)))
        // A negated class: anything but ASCII letters, so any lead byte of a non-ASCII character may wait.
        let other = try Grammar(gbnf: #"root ::= [^a-zA-Z]"#)
        XCTAssertNotNil(other.advance(other.start(), bytes: [0xF0, 0x9F]))
        XCTAssertTrue(other.matches("🙂"))
        XCTAssertFalse(other.matches("q"))
    }

    func testSchemasThatCannotBeCompiledSayWhy() {
        for (schema, expected) in [("{\"type\": \"strnig\"}", "unknown type 'strnig'"), ("{\"type\": \"string\", \"pattern\": \"^a\"}", "'pattern' is not supported"),
                                   ("{\"properties\": {\"a\": {}}, \"required\": [\"b\"]}", "required names 'b'"), ("not json", "not valid JSON"),
                                   ("{\"type\": \"array\", \"minItems\": 3, \"maxItems\": 1}", "maxItems 1 is less than minItems 3"),
                                   ("{\"$ref\": \"#/$defs/none\"}", "names no definition"), ("{\"enum\": []}", "non-empty"), ("false", "allows no value"),
                                   ("{\"properties\": {\"a\": {\"type\": 3}}}", "at #/properties/a: type must be")] {
            XCTAssertThrowsError(try JSONSchemaGrammar.gbnf(schemaText: schema), schema) { XCTAssertTrue("\($0)".contains(expected), "\(schema): \($0)") }
        }
    }

    /// The real model under a schema: greedy decoding writes JSON that parses, has the required properties with
    /// the right types, and stops at the closing brace ("stop", not "length"); unconstrained, the same prompt does not.
    func testSmolLM2WritesJSONUnderASchema() throws {
        let loaded = try ModelLocator.languageModel("SmolLM2-135M-Instruct")
        let schema = #"{"type": "object", "properties": {"model": {"type": "string", "maxLength": 20}, "release_year": {"type": "integer"}, "features": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3}}, "required": ["model", "release_year", "features"]}"#
        let prompt = try loaded.tokenizer.encode("<|im_start|>user\nDescribe GPT-4 (released by OpenAI in 2023; multimodal, strong reasoning) as JSON.<|im_end|>\n<|im_start|>assistant\n", allowSpecial: true)
        var options = SamplingOptions()
        options.maxTokens = 12
        let free = try Generation.generate(model: loaded.model, tokenizer: loaded.tokenizer, prompt: prompt, options: options)
        XCTAssertThrowsError(try JSONValue.parse(free.text), "the unconstrained answer is not bare JSON: \(free.text)")
        options.constraint = .jsonSchema(schema)
        options.repetitionPenalty = 1.1
        options.maxTokens = 120
        let result = try Generation.generate(model: loaded.model, tokenizer: loaded.tokenizer, prompt: prompt, options: options)
        XCTAssertEqual(result.finishReason, "stop")
        let value = try JSONValue.parse(result.text)
        XCTAssertEqual(value.objectValue?.map(\.0), ["model", "release_year", "features"])
        XCTAssertNotNil(value["model"]?.stringValue)
        XCTAssertLessThanOrEqual(value["model"]!.stringValue!.count, 20)
        XCTAssertEqual(value["release_year"]?.numberValue.map { $0 == $0.rounded() }, true)
        XCTAssertLessThanOrEqual(value["features"]?.arrayValue?.count ?? 99, 3)
        XCTAssertTrue(try Grammar(gbnf: JSONSchemaGrammar.gbnf(schemaText: schema)).matches(result.text))
        // Sampled, not greedy: still JSON that conforms.
        options.temperature = 0.9
        options.seed = 11
        let sampled = try Generation.generate(model: loaded.model, tokenizer: loaded.tokenizer, prompt: prompt, options: options)
        XCTAssertEqual(sampled.finishReason, "stop", sampled.text)
        XCTAssertTrue(try Grammar(gbnf: JSONSchemaGrammar.gbnf(schemaText: schema)).matches(sampled.text), sampled.text)
    }

    func testJSONValueKeepsOrderAndRejectsBadText() throws {
        let v = try JSONValue.parse(#" {"b": 1, "a": [true, null, -2.5e1, "x\u00e9\ud83d\ude42\n"]} "#)
        XCTAssertEqual(v.objectValue?.map(\.0), ["b", "a"])
        XCTAssertEqual(v["a"]?.arrayValue?[2], .number(-25))
        XCTAssertEqual(v["a"]?.arrayValue?[3], .string("xé🙂\n"))
        XCTAssertEqual(try JSONValue.parse(v.description), v)
        for bad in ["", "{", "[1,]", "01", "1.", "\"a", "{\"a\" 1}", "tru", "1 2", "\"\\x\"", "\"\u{1}\"", String(repeating: "[", count: 600)] {
            XCTAssertThrowsError(try JSONValue.parse(bad), bad)
        }
    }
}

/// The new parsers against random and mutated input: JSON text, GBNF text and JSON schemas never trap, hang or
/// overflow; they parse or throw. Deterministic (seeded), so a failure reproduces.
final class GrammarFuzzTests: XCTestCase {
    struct SplitMix { var state: UInt64; mutating func next() -> UInt64 { state &+= 0x9E3779B97F4A7C15; var z = state; z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) &* 0x94D049BB133111EB; return z ^ (z >> 31) } }

    /// `seed` with bytes replaced, inserted, deleted or duplicated.
    static func mutate(_ seed: [UInt8], _ rng: inout SplitMix, alphabet: [UInt8]) -> [UInt8] {
        var b = seed
        for _ in 0...(rng.next() % 4) {
            let op = rng.next() % 4
            let at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
            let byte = rng.next() % 3 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : alphabet[Int(rng.next() % UInt64(alphabet.count))]
            switch op {
            case 0 where !b.isEmpty: b[at] = byte
            case 1: b.insert(byte, at: at)
            case 2 where !b.isEmpty: b.remove(at: at)
            default:
                let end = min(b.count, at + Int(rng.next() % 16))
                b.insert(contentsOf: b[at..<end], at: at)
            }
        }
        return b
    }

    func testParsersSurviveMutatedInput() throws {
        var rng = SplitMix(state: 2026)
        let jsonSeeds = [#"{"a": [1, 2.5e-3, "x\u00e9", true, null], "b": {"c": []}}"#, #"[["deep"]]"#, "\"\\ud83d\\ude42\""]
        let gbnfSeeds = ["root ::= expr\nexpr ::= term (\"+\" term)*\nterm ::= [0-9]+ | \"(\" expr \")\"", #"root ::= "a"{2,5} [^x-z\n]? "\x41" . | b  # c"# + "\nb ::= \"b\"*"]
        let schemaSeeds = [##"{"type": "object", "properties": {"a": {"type": "array", "items": {"enum": [1, "x", null]}, "minItems": 1, "maxItems": 3}, "b": {"anyOf": [{"type": "string", "maxLength": 4}, {"$ref": "#/$defs/n"}]}}, "required": ["a"], "$defs": {"n": {"type": ["integer", "null"]}}}"##]
        let alphabet = Array(#"{}[]()":,.-+*?|#\^$0123456789aeEtfnul"x {}::="#.utf8) + [0x0A, 0x00, 0xC3, 0xA9, 0xE0, 0x80]
        var parsed = 0, grammars = 0, schemas = 0
        for round in 0..<3000 {
            let j = String(decoding: Self.mutate(Array(jsonSeeds[round % jsonSeeds.count].utf8), &rng, alphabet: alphabet), as: UTF8.self)
            if (try? JSONValue.parse(j)) != nil { parsed += 1 }
            let g = String(decoding: Self.mutate(Array(gbnfSeeds[round % gbnfSeeds.count].utf8), &rng, alphabet: alphabet), as: UTF8.self)
            if let grammar = try? Grammar(gbnf: g) {
                grammars += 1
                // A compiled grammar matches random text without trapping, and its stack sets stay bounded.
                var state = grammar.start()
                for _ in 0..<20 {
                    guard let next = grammar.advance(state, bytes: [alphabet[Int(rng.next() % UInt64(alphabet.count))]]) else { break }
                    XCTAssertLessThan(next.stacks.count, 10_000, g)
                    state = next
                }
            }
            let s = String(decoding: Self.mutate(Array(schemaSeeds[0].utf8), &rng, alphabet: alphabet), as: UTF8.self)
            if let text = try? JSONSchemaGrammar.gbnf(schemaText: s) {
                schemas += 1
                XCTAssertNoThrow(try Grammar(gbnf: text), "a schema's grammar always compiles: \(s)")
            }
        }
        // The mutations keep some inputs valid, so both paths are exercised.
        XCTAssertGreaterThan(parsed, 100)
        XCTAssertGreaterThan(grammars, 100)
        XCTAssertGreaterThan(schemas, 30)
        // Pathological shapes: deep nesting, nullable loops, long repetitions.
        XCTAssertThrowsError(try JSONValue.parse(String(repeating: "[", count: 100_000)))
        XCTAssertThrowsError(try Grammar(gbnf: #"root ::= ("a"*)*"#)) { XCTAssertTrue("\($0)".contains("left-recursive"), "\($0)") }
        XCTAssertThrowsError(try Grammar(gbnf: "root ::= " + String(repeating: "(", count: 500) + "\"a\"" + String(repeating: ")", count: 500)))
        let long = try Grammar(gbnf: #"root ::= [a-z]{0,1000} "!""#)
        XCTAssertTrue(long.matches(String(repeating: "q", count: 1000) + "!"))
        XCTAssertFalse(long.matches(String(repeating: "q", count: 1001) + "!"))
        XCTAssertThrowsError(try JSONSchemaGrammar.gbnf(schemaText: String(repeating: #"{"items":"#, count: 600) + "{}" + String(repeating: "}", count: 600)))
    }
}
