// Constrained decoding: a context-free grammar (llama.cpp's GBNF notation) that the generated text must follow, so
// that what a model writes always parses. The grammar compiles to rules of alternatives of sequences; a matcher keeps
// every way the text so far can continue (a set of stacks of rule positions, as llama.cpp does) and advances them by
// Unicode scalars, holding a token's incomplete UTF-8 tail until the next token completes it. The generation engine
// asks the matcher which tokens may come next, for every caller (CLI, server, extraction). JSON schemas compile to
// grammars (JSONSchemaGrammar.swift).

import AttendTensor
import AttendTokenizers
import Foundation

/// A compiled grammar.
///
/// ```swift
/// let g = try Grammar(gbnf: #"root ::= "yes" | "no""#)
/// var state = g.start()
/// state = g.advance(state, bytes: Array("ye".utf8))!   // still alive
/// g.advance(state, bytes: Array("x".utf8))              // nil: no rule allows "yex"
/// ```
public final class Grammar: @unchecked Sendable {
    enum Element: Hashable {
        /// One Unicode scalar in any of the ranges (or in none of them, when negated).
        case chars([ClosedRange<UInt32>], negated: Bool)
        case rule(Int)
    }
    /// rules[r][alternative] is a sequence of elements.
    private(set) var rules: [[[Element]]] = []
    private(set) var names: [String] = []
    let root: Int

    /// A rule position: rule, alternative, index of the next element, packed in 64 bits.
    struct Position: Hashable {
        var bits: UInt64
        init(_ rule: Int, _ alternative: Int, _ index: Int) { bits = UInt64(rule) << 40 | UInt64(alternative) << 20 | UInt64(index) }
        var rule: Int { Int(bits >> 40) }
        var alternative: Int { Int((bits >> 20) & 0xFFFFF) }
        var index: Int { Int(bits & 0xFFFFF) }
        func next() -> Position { var p = self; p.bits += 1; return p }
    }

    /// Where a match stands: the stacks that may continue (an empty stack means the text so far is complete) and
    /// the bytes of a character not yet complete.
    public struct State: Hashable {
        var stacks: [[Position]]
        var pending: [UInt8] = []
    }

    /// Compiles GBNF text: `name ::= alternatives` rules, with "literals", [character classes] (ranges, `^`
    /// negation), `.` (any character), rule names, ( groups ), `|`, and the repetitions `*`, `+`, `?`, `{m}`,
    /// `{m,}`, `{m,n}`; `#` starts a comment. The grammar starts at `root`.
    public init(gbnf: String, root rootName: String = "root") throws {
        var parser = GBNFParser(text: Array(gbnf.unicodeScalars))
        try parser.parse()
        guard let r = parser.ids[rootName], parser.defined.contains(r) else { throw AttendError("grammar: no rule named '\(rootName)'") }
        for (name, id) in parser.ids where !parser.defined.contains(id) { throw AttendError("grammar: rule '\(name)' is used but not defined") }
        rules = parser.rules
        names = parser.names
        root = r
        try checkLeftRecursion()
    }

    /// A rule that can reach itself before reading any character would expand forever.
    private func checkLeftRecursion() throws {
        var nullable = [Bool](repeating: false, count: rules.count)
        var changed = true
        while changed {
            changed = false
            for (r, alternatives) in rules.enumerated() where !nullable[r] {
                if alternatives.contains(where: { $0.allSatisfy { if case .rule(let s) = $0 { return nullable[s] }; return false } }) { nullable[r] = true; changed = true }
            }
        }
        // firsts[r]: rules that can start r.
        for start in rules.indices {
            var seen = Set<Int>(), work = [start]
            while let r = work.popLast() {
                for sequence in rules[r] {
                    for element in sequence {
                        guard case .rule(let s) = element else { break }
                        if s == start { throw AttendError("grammar: rule '\(names[start])' is left-recursive (it can reach itself before reading a character)") }
                        if seen.insert(s).inserted { work.append(s) }
                        if !nullable[s] { break }
                    }
                }
            }
        }
    }

    public func start() -> State {
        var out = Set<[Position]>()
        for a in rules[root].indices { expand([Position(root, a, 0)], into: &out) }
        return State(stacks: Array(out))
    }

    /// Moves every stack to the point where it expects a character (or to empty, complete).
    private func expand(_ stack: [Position], into out: inout Set<[Position]>) {
        var s = stack
        while let top = s.last {
            let sequence = rules[top.rule][top.alternative]
            if top.index == sequence.count { s.removeLast(); continue }
            switch sequence[top.index] {
            case .chars:
                out.insert(s)
                return
            case .rule(let r):
                // The caller goes on after the reference; when nothing follows, it is done (so repetition
                // does not grow the stack).
                s[s.count - 1] = top.next()
                if s[s.count - 1].index == sequence.count { s.removeLast() }
                for a in rules[r].indices { expand(s + [Position(r, a, 0)], into: &out) }
                return
            }
        }
        out.insert([])
    }

    private func advance(_ stacks: [[Position]], scalar: UInt32) -> [[Position]] {
        var out = Set<[Position]>()
        for stack in stacks {
            guard let top = stack.last, case .chars(let ranges, let negated) = rules[top.rule][top.alternative][top.index] else { continue }
            var inside = false
            for range in ranges where range.contains(scalar) { inside = true; break }
            guard inside != negated else { continue }
            var s = stack
            s[s.count - 1] = top.next()
            expand(s, into: &out)
        }
        return Array(out)
    }

    /// The state after `bytes` (UTF-8, possibly ending inside a character), or nil when the grammar forbids them.
    public func advance(_ state: State, bytes: [UInt8]) -> State? {
        var stacks = state.stacks
        var buffer = state.pending + bytes
        var i = 0
        while i < buffer.count {
            let lead = buffer[i]
            let length = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
            guard length > 0 else { return nil }
            if i + length > buffer.count {
                // An incomplete character: its bytes so far must be continuation bytes; the next token completes it.
                // Some stack must accept a character these bytes can still become.
                guard buffer[(i + 1)...].allSatisfy({ $0 >> 6 == 0b10 }) else { return nil }
                buffer = Array(buffer[i...])
                guard let range = Grammar.scalarRange(prefix: buffer, length: length) else { return nil }
                return stacks.contains(where: { acceptsSome(range, stack: $0) }) ? State(stacks: stacks, pending: buffer) : nil
            }
            guard let scalar = String(validating: buffer[i..<(i + length)], as: UTF8.self)?.unicodeScalars.first?.value else { return nil }
            stacks = advance(stacks, scalar: scalar)
            if stacks.isEmpty { return nil }
            i += length
        }
        return State(stacks: stacks, pending: [])
    }

    /// The scalars a UTF-8 sequence of `length` bytes that starts with `prefix` can encode (nil when none: an
    /// overlong start such as E0 80, or past U+10FFFF). Surrogates are left to the full decode to refuse.
    static func scalarRange(prefix: [UInt8], length: Int) -> ClosedRange<UInt32>? {
        let leadBits: UInt8 = length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07
        var low = UInt32(prefix[0] & leadBits)
        for b in prefix.dropFirst() { low = low << 6 | UInt32(b & 0x3F) }
        let missing = 6 * (length - prefix.count)
        low <<= UInt32(missing)
        let high = low | ((1 << UInt32(missing)) - 1)
        let smallest: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
        guard high >= smallest, low <= 0x10FFFF else { return nil }
        return max(low, smallest)...min(high, 0x10FFFF)
    }

    /// Whether the stack's next element accepts some scalar in `range`.
    private func acceptsSome(_ range: ClosedRange<UInt32>, stack: [Position]) -> Bool {
        guard let top = stack.last, case .chars(let ranges, let negated) = rules[top.rule][top.alternative][top.index] else { return false }
        if !negated { return ranges.contains { $0.overlaps(range) } }
        // Negated: some scalar of `range` lies outside every listed range.
        var next = range.lowerBound
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where r.upperBound >= next {
            if r.lowerBound > next { return true }
            if r.upperBound >= range.upperBound { return false }
            next = r.upperBound + 1
        }
        return next <= range.upperBound
    }

    /// Whether the text so far is a complete sentence of the grammar.
    public func isComplete(_ state: State) -> Bool { state.pending.isEmpty && state.stacks.contains { $0.isEmpty } }
    /// Whether any character may follow.
    public func canContinue(_ state: State) -> Bool { state.stacks.contains { !$0.isEmpty } }

    /// Whether `text` is a complete sentence of the grammar.
    public func matches(_ text: String) -> Bool { advance(start(), bytes: Array(text.utf8)).map(isComplete) ?? false }
}

/// What a generation must produce: text in a grammar, or JSON that a schema describes.
public enum OutputConstraint: Equatable, Codable, Sendable {
    case grammar(String)
    case jsonSchema(String)

    public func compile() throws -> Grammar {
        switch self {
        case .grammar(let text): return try Grammar(gbnf: text)
        case .jsonSchema(let text): return try Grammar(gbnf: try JSONSchemaGrammar.gbnf(schemaText: text))
        }
    }
}

/// Which tokens may come next under a grammar, for the decoding loop: every token's bytes read once, special
/// tokens never allowed inside the text, the end-of-sequence token only when the text is complete.
public struct GrammarConstraint {
    public let grammar: Grammar
    public private(set) var state: Grammar.State
    /// The bytes accepted so far.
    public private(set) var text: [UInt8] = []
    let tokenBytes: [[UInt8]]
    let eosId: Int32?

    public init(grammar: Grammar, tokenizer: any TextTokenizer) {
        self.init(grammar: grammar, tokenBytes: GrammarConstraint.tokenBytes(of: tokenizer), eosId: tokenizer.eosId)
    }

    /// With the vocabulary's bytes read once (`tokenBytes(of:)`), for callers that constrain many generations.
    public init(grammar: Grammar, tokenBytes: [[UInt8]], eosId: Int32?) {
        self.grammar = grammar
        state = grammar.start()
        self.eosId = eosId
        self.tokenBytes = tokenBytes
    }

    /// Every token's bytes; special tokens get none (they are never allowed inside the text).
    public static func tokenBytes(of tokenizer: any TextTokenizer) -> [[UInt8]] {
        (0..<tokenizer.vocabularyCount).map { id in tokenizer.isSpecial(Int32(id)) ? [] : tokenizer.bytes([Int32(id)]) }
    }

    public var isComplete: Bool { grammar.isComplete(state) }
    public var canContinue: Bool { grammar.canContinue(state) }

    /// The state after `token`, or nil when it is not allowed.
    func after(_ token: Int) -> Grammar.State? {
        guard token < tokenBytes.count, !tokenBytes[token].isEmpty else { return nil }
        return grammar.advance(state, bytes: tokenBytes[token])
    }

    public func allows(_ token: Int32) -> Bool {
        if token == eosId { return isComplete }
        return after(Int(token)) != nil
    }

    public mutating func accept(_ token: Int32) {
        guard token != eosId, let next = after(Int(token)) else { return }
        state = next
        text += tokenBytes[Int(token)]
    }
}

/// GBNF text to rules. Anonymous rules (groups, repetitions) get names like `root_3`.
struct GBNFParser {
    let text: [Unicode.Scalar]
    var at = 0
    var rules: [[[Grammar.Element]]] = []
    var names: [String] = []
    var ids: [String: Int] = [:]
    var defined = Set<Int>()
    var line: Int { text[..<min(at, text.count)].filter { $0 == "\n" }.count + 1 }

    func error(_ what: String) -> AttendError { AttendError("grammar, line \(line): \(what)") }

    mutating func id(_ name: String) -> Int {
        if let i = ids[name] { return i }
        ids[name] = rules.count
        names.append(name)
        rules.append([])
        return rules.count - 1
    }

    mutating func anonymous(_ base: String, _ alternatives: [[Grammar.Element]]) -> Int {
        let i = id("\(base)_\(rules.count)")
        rules[i] = alternatives
        defined.insert(i)
        return i
    }

    /// Skips spaces and comments; newlines too (a rule ends where the next `name ::=` begins).
    mutating func skip() {
        while at < text.count {
            if text[at] == "#" { while at < text.count && text[at] != "\n" { at += 1 }; continue }
            guard text[at].properties.isWhitespace else { return }
            at += 1
        }
    }

    static func isNameScalar(_ c: Unicode.Scalar) -> Bool { (c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c))) || c == "-" || c == "_" }

    mutating func name() -> String? {
        let start = at
        while at < text.count && GBNFParser.isNameScalar(text[at]) { at += 1 }
        return at > start ? String(String.UnicodeScalarView(text[start..<at])) : nil
    }

    /// Whether a `name ::=` starts here (the end of the rule being read).
    func ruleStartsHere() -> Bool {
        var i = at
        while i < text.count && GBNFParser.isNameScalar(text[i]) { i += 1 }
        guard i > at else { return false }
        while i < text.count && (text[i] == " " || text[i] == "\t" || text[i] == "\n" || text[i] == "\r") { i += 1 }
        return i + 2 < text.count && text[i] == ":" && text[i + 1] == ":" && text[i + 2] == "="
    }

    mutating func parse() throws {
        skip()
        guard at < text.count else { throw error("the grammar is empty") }
        while at < text.count {
            guard let n = name() else { throw error("expected a rule name, found '\(text[at])'") }
            skip()
            guard at + 2 < text.count, text[at] == ":", text[at + 1] == ":", text[at + 2] == "=" else { throw error("expected ::= after '\(n)'") }
            at += 3
            let r = id(n)
            guard !defined.contains(r) else { throw error("rule '\(n)' is defined twice") }
            defined.insert(r)
            rules[r] = try alternatives(base: n, depth: 0)
            skip()
        }
    }

    mutating func alternatives(base: String, depth: Int) throws -> [[Grammar.Element]] {
        guard depth < 100 else { throw error("groups nested more than 100 deep") }
        var out = [try sequence(base: base, depth: depth)]
        while true {
            skip()
            guard at < text.count, text[at] == "|" else { return out }
            at += 1
            out.append(try sequence(base: base, depth: depth))
        }
    }

    mutating func sequence(base: String, depth: Int) throws -> [Grammar.Element] {
        var out: [Grammar.Element] = []
        while true {
            skip()
            guard at < text.count, text[at] != "|", text[at] != ")" else { return out }
            if depth == 0 && ruleStartsHere() { return out }
            var item: [Grammar.Element]
            let c = text[at]
            if c == "\"" {
                at += 1
                item = []
                while true {
                    guard at < text.count else { throw error("unterminated string literal") }
                    if text[at] == "\"" { at += 1; break }
                    let s = try character()
                    item.append(.chars([s...s], negated: false))
                }
            } else if c == "[" {
                at += 1
                var negated = false
                if at < text.count && text[at] == "^" { negated = true; at += 1 }
                var ranges: [ClosedRange<UInt32>] = []
                while true {
                    guard at < text.count else { throw error("unterminated character class") }
                    if text[at] == "]" { at += 1; break }
                    let low = try character()
                    if at + 1 < text.count && text[at] == "-" && text[at + 1] != "]" {
                        at += 1
                        let high = try character()
                        guard low <= high else { throw error("range \(low)-\(high) runs backwards") }
                        ranges.append(low...high)
                    } else {
                        ranges.append(low...low)
                    }
                }
                item = [.chars(ranges, negated: negated)]
            } else if c == "." {
                at += 1
                item = [.chars([], negated: true)]
            } else if c == "(" {
                at += 1
                let inner = try alternatives(base: base, depth: depth + 1)
                skip()
                guard at < text.count, text[at] == ")" else { throw error("expected )") }
                at += 1
                item = [.rule(anonymous(base, inner))]
            } else if let n = name() {
                item = [.rule(id(n))]
            } else {
                throw error("unexpected '\(c)'")
            }
            // Repetition applies to the item as one unit.
            if at < text.count, "*+?{".unicodeScalars.contains(text[at]) {
                let unit: Grammar.Element = item.count == 1 ? item[0] : .rule(anonymous(base, [item]))
                let (low, high) = try repetition()
                item = repeated(unit, low: low, high: high, base: base)
            }
            out += item
        }
    }

    mutating func repetition() throws -> (Int, Int?) {
        let c = text[at]
        at += 1
        switch c {
        case "*": return (0, nil)
        case "+": return (1, nil)
        case "?": return (0, 1)
        default:
            func number() -> Int? {
                let start = at
                while at < text.count && ("0"..."9").contains(text[at]) { at += 1 }
                return at > start ? Int(String(String.UnicodeScalarView(text[start..<at]))) : nil
            }
            guard let low = number(), low <= 1000 else { throw error("expected a count of at most 1000 after {") }
            var high: Int? = low
            if at < text.count && text[at] == "," {
                at += 1
                high = number()
                if let h = high, h < low || h > 1000 { throw error("repetition {\(low),\(h)} must have \(low) <= max <= 1000") }
            }
            guard at < text.count, text[at] == "}" else { throw error("expected } to close the repetition") }
            at += 1
            return (low, high)
        }
    }

    /// x{low,high} as rules: low copies, then either x* (no upper bound) or (high - low) nested optionals.
    mutating func repeated(_ unit: Grammar.Element, low: Int, high: Int?, base: String) -> [Grammar.Element] {
        var out = [Grammar.Element](repeating: unit, count: low)
        if let high {
            guard high > low else { return out }
            var tail: Grammar.Element? = nil
            for _ in low..<high { tail = .rule(anonymous(base, [[unit] + (tail.map { [$0] } ?? []), []])) }
            out.append(tail!)
        } else {
            let star = id("\(base)_\(rules.count)")
            defined.insert(star)
            rules[star] = [[unit, .rule(star)], []]
            out.append(.rule(star))
        }
        return out
    }

    /// One character of a literal or a class, escapes resolved.
    mutating func character() throws -> UInt32 {
        let c = text[at]
        at += 1
        guard c == "\\" else { return c.value }
        guard at < text.count else { throw error("a lone \\ at the end") }
        let e = text[at]
        at += 1
        switch e {
        case "n": return 10
        case "r": return 13
        case "t": return 9
        case "x", "u", "U":
            let digits = e == "x" ? 2 : e == "u" ? 4 : 8
            guard at + digits <= text.count, let v = UInt32(String(String.UnicodeScalarView(text[at..<(at + digits)])), radix: 16), Unicode.Scalar(v) != nil else {
                throw error("expected \(digits) hex digits after \\\(e)")
            }
            at += digits
            return v
        default: return e.value
        }
    }
}
