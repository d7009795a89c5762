// The safety stage: what may go into a model and what may come out of it, configured by a policy file. Personal data
// and secrets are found by `PersonalDataDetector` and redacted, blocked or let through per kind; user-defined
// categories (a description and examples each) are scored by embedding similarity: a passage's score for a category
// is the highest cosine similarity between any of its sentences and any of the category's examples (the
// description counts as one), flagged at the category's threshold unless a counter-example is closer. A streamed
// answer goes through `SafetyFilter`, which holds text back until it has been checked.

import AttendLM
import AttendTensor
import Foundation

/// What the stage does with what it finds.
public enum SafetyAction: String, Sendable, CaseIterable {
    /// Let it through (and report it in a moderation).
    case allow
    /// Let it through, reported as flagged.
    case flag
    /// Replace it with a placeholder such as `[EMAIL]` (personal data only).
    case redact
    /// Stop: an input is refused, an answer ends with finish reason `content_filter`.
    case block
}

/// A category of text the policy watches for.
public struct SafetyCategory: Sendable {
    public var name: String
    public var description: String
    public var examples: [String]
    /// Texts close to the examples that are not in the category; a sentence nearer to one of them is not flagged.
    public var counterExamples: [String]
    /// Cosine similarity at which a sentence is in the category.
    public var threshold: Float
    public var action: SafetyAction

    public init(name: String, description: String, examples: [String], counterExamples: [String] = [], threshold: Float = 0.5, action: SafetyAction = .block) {
        (self.name, self.description, self.examples, self.counterExamples, self.threshold, self.action) = (name, description, examples, counterExamples, threshold, action)
    }
}

/// A policy file: which personal data to redact or block, the categories, and where the stage applies.
///
/// ```json
/// {
///   "personal_data": {"email": "redact", "phone": "redact", "payment_card": "block", "iban": "redact", "secret": "block"},
///   "categories": [{"name": "violence", "description": "Threats or instructions to hurt people.",
///                   "examples": ["I will hurt you."], "threshold": 0.55, "action": "block"}],
///   "apply_to": ["input", "output"],
///   "hold_back": 48,
///   "embedding_model": "all-MiniLM-L6-v2"
/// }
/// ```
public struct SafetyPolicy: Sendable {
    public var personalData: [PersonalDataKind: SafetyAction]
    public var categories: [SafetyCategory]
    public var checkInput: Bool
    public var checkOutput: Bool
    /// How many characters of a streamed answer are held back at least before release (a span of personal data
    /// printed with spaces, such as an IBAN in groups, is shorter than this).
    public var holdBack: Int
    public var embeddingModel: String

    /// Every kind of personal data redacted, no categories, both directions.
    public init(personalData: [PersonalDataKind: SafetyAction] = Dictionary(uniqueKeysWithValues: PersonalDataKind.allCases.map { ($0, .redact) }),
                categories: [SafetyCategory] = [], checkInput: Bool = true, checkOutput: Bool = true, holdBack: Int = 48,
                embeddingModel: String = "all-MiniLM-L6-v2") {
        (self.personalData, self.categories, self.checkInput, self.checkOutput, self.holdBack, self.embeddingModel) =
            (personalData, categories, checkInput, checkOutput, holdBack, embeddingModel)
    }

    public static func load(path: String) throws -> SafetyPolicy {
        guard let data = FileManager.default.contents(atPath: path) else { throw AttendError("\(path): cannot read the safety policy") }
        guard let text = String(data: data, encoding: .utf8) else { throw AttendError("\(path): the safety policy is not UTF-8 text") }
        return try parse(text, source: path)
    }

    /// Parses a policy; every key and value is checked, and errors name the file and the key.
    public static func parse(_ text: String, source: String = "policy") throws -> SafetyPolicy {
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch { throw AttendError("\(source): not JSON: \(error)") }
        guard let members = root.objectValue else { throw AttendError("\(source): the policy must be a JSON object") }
        func fail(_ key: String, _ expected: String) -> AttendError { AttendError("\(source): '\(key)' \(expected)") }
        func action(_ v: JSONValue, _ key: String, allowed: [SafetyAction]) throws -> SafetyAction {
            guard let s = v.stringValue, let a = SafetyAction(rawValue: s), allowed.contains(a) else {
                throw fail(key, "must be one of \(allowed.map(\.rawValue).joined(separator: ", ")), got \(v)")
            }
            return a
        }
        var policy = SafetyPolicy()
        for (key, value) in members {
            switch key {
            case "personal_data":
                if value.stringValue != nil {
                    let a = try action(value, key, allowed: SafetyAction.allCases)
                    for k in PersonalDataKind.allCases { policy.personalData[k] = a }
                } else if let kinds = value.objectValue {
                    for (name, v) in kinds {
                        guard let kind = PersonalDataKind(rawValue: name) else {
                            throw fail("personal_data.\(name)", "is not a kind of personal data (\(PersonalDataKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                        }
                        policy.personalData[kind] = try action(v, "personal_data.\(name)", allowed: SafetyAction.allCases)
                    }
                } else { throw fail(key, "must be an action or an object of kind: action") }
            case "categories":
                guard let list = value.arrayValue else { throw fail(key, "must be an array of categories") }
                policy.categories = try list.enumerated().map { i, v in try category(v, at: "categories[\(i)]", fail: fail, action: action) }
                var seen = Set<String>()
                for c in policy.categories where !seen.insert(c.name).inserted { throw fail("categories", "names '\(c.name)' twice") }
            case "apply_to":
                guard let list = value.arrayValue?.compactMap(\.stringValue), list.count == value.arrayValue?.count, !list.isEmpty,
                      list.allSatisfy({ $0 == "input" || $0 == "output" }) else { throw fail(key, "must be a non-empty array of \"input\" and \"output\"") }
                (policy.checkInput, policy.checkOutput) = (list.contains("input"), list.contains("output"))
            case "hold_back":
                guard let n = value.numberValue, n == n.rounded(), (8...4096).contains(n) else { throw fail(key, "must be an integer in 8...4096, got \(value)") }
                policy.holdBack = Int(n)
            case "embedding_model":
                guard let s = value.stringValue, !s.isEmpty else { throw fail(key, "must be a model name or path") }
                policy.embeddingModel = s
            default:
                throw fail(key, "is not a policy key (personal_data, categories, apply_to, hold_back, embedding_model)")
            }
        }
        return policy
    }

    static func category(_ v: JSONValue, at path: String, fail: (String, String) -> AttendError,
                         action: (JSONValue, String, [SafetyAction]) throws -> SafetyAction) throws -> SafetyCategory {
        guard let members = v.objectValue else { throw fail(path, "must be an object") }
        var c = SafetyCategory(name: "", description: "", examples: [])
        func strings(_ v: JSONValue, _ key: String) throws -> [String] {
            guard let a = v.arrayValue, let s = Optional(a.compactMap(\.stringValue)), s.count == a.count, s.allSatisfy({ !$0.isEmpty }) else {
                throw fail("\(path).\(key)", "must be an array of non-empty strings")
            }
            return s
        }
        for (key, value) in members {
            switch key {
            case "name":
                guard let s = value.stringValue, !s.isEmpty, s.count <= 64,
                      s.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "_-/ ".unicodeScalars.contains($0) }) else {
                    throw fail("\(path).name", "must be 1 to 64 letters, digits, spaces, '_', '-' or '/'")
                }
                c.name = s
            case "description":
                guard let s = value.stringValue, !s.isEmpty else { throw fail("\(path).description", "must be a non-empty string") }
                c.description = s
            case "examples": c.examples = try strings(value, key)
            case "counter_examples": c.counterExamples = try strings(value, key)
            case "threshold":
                guard let t = value.numberValue, t > 0, t < 1 else { throw fail("\(path).threshold", "must be a number between 0 and 1 (a cosine similarity), got \(value)") }
                c.threshold = Float(t)
            case "action": c.action = try action(value, "\(path).action", [.flag, .block])
            default: throw fail("\(path).\(key)", "is not a category key (name, description, examples, counter_examples, threshold, action)")
            }
        }
        guard !c.name.isEmpty else { throw fail("\(path).name", "is required") }
        guard !c.description.isEmpty || !c.examples.isEmpty else { throw fail("\(path)", "needs a description or examples") }
        return c
    }
}

/// Why the stage stopped a text.
public struct SafetyViolation: Error, Equatable, Sendable, CustomStringConvertible {
    /// `personal_data/<kind>` or `category/<name>`.
    public var reason: String
    public var score: Float
    public var description: String { "blocked by the safety policy: \(reason)" }
}

/// What the stage found in one text.
public struct SafetyReport: Sendable {
    public var personalData: [PersonalDataMatch]
    /// Every category's score, in the policy's order.
    public var categoryScores: [(name: String, score: Float, flagged: Bool)]
    /// The text with every span whose action is `redact` replaced.
    public var redacted: String
    /// The first thing found whose action is `block`.
    public var violation: SafetyViolation?
    /// Whether anything was found that is not allowed (flagged, redacted or blocked).
    public var flagged: Bool
}

/// The stage: a policy with its category examples embedded once.
///
/// ```swift
/// let policy = try SafetyPolicy.load(path: "policy.json")
/// let stage = try SafetyStage(policy: policy, embed: { embedder.embed($0) })
/// let report = try stage.check("Write to jane@example.com")   // report.redacted == "Write to [EMAIL]"
/// ```
public final class SafetyStage: @unchecked Sendable {
    public let policy: SafetyPolicy
    let detector: PersonalDataDetector
    let embed: (([String]) throws -> Tensor)?
    /// Unit vectors of each category's examples (with its description) and counter-examples.
    let examples: [[Float]], counterExamples: [[Float]]
    let dimension: Int

    /// `embed` turns texts into unit vectors [count, dimension]; it is needed only when the policy has categories.
    public init(policy: SafetyPolicy, embed: (([String]) throws -> Tensor)?) throws {
        self.policy = policy
        detector = PersonalDataDetector(kinds: Set(policy.personalData.keys))
        self.embed = embed
        guard !policy.categories.isEmpty else { (examples, counterExamples, dimension) = ([], [], 0); return }
        guard let embed else { throw AttendError("the safety policy has categories, which need an embedding model") }
        var ex: [[Float]] = [], counter: [[Float]] = []
        var d = 0
        for c in policy.categories {
            let texts = (c.description.isEmpty ? [] : [c.description]) + c.examples
            let v = try Self.unitRows(embed(texts)), n = try Self.unitRows(c.counterExamples.isEmpty ? Tensor(shape: [0, 1]) : embed(c.counterExamples))
            d = texts.isEmpty ? d : v.count / texts.count
            ex.append(v); counter.append(n)
        }
        (examples, counterExamples, dimension) = (ex, counter, d)
    }

    static func unitRows(_ t: Tensor) throws -> [Float] {
        guard t.shape.count == 2 else { throw AttendError("the embedding model returned shape \(t.shape), not [count, dimension]") }
        var v = t.toArray()
        let d = t.shape[1]
        for r in 0..<t.shape[0] {
            var norm: Float = 0
            for j in 0..<d { norm += v[r * d + j] * v[r * d + j] }
            let scale = norm > 0 ? 1 / norm.squareRoot() : 0
            for j in 0..<d { v[r * d + j] *= scale }
        }
        return v
    }

    /// Sentences of a text, for scoring: split after `.`, `!`, `?` followed by a space, and at line breaks.
    static func sentences(_ text: String) -> [String] {
        var out: [String] = [], current = ""
        let scalars = Array(text.unicodeScalars)
        for (i, u) in scalars.enumerated() {
            if u == "\n" { out.append(current); current = ""; continue }
            current.unicodeScalars.append(u)
            if ".!?".unicodeScalars.contains(u), i + 1 < scalars.count, scalars[i + 1] == " " || scalars[i + 1] == "\n" { out.append(current); current = "" }
        }
        out.append(current)
        return out.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Scores of each category for `text`: the best similarity of any sentence to any example.
    public func categoryScores(_ text: String) throws -> [(name: String, score: Float, flagged: Bool)] {
        guard !policy.categories.isEmpty, let embed else { return [] }
        let parts = Self.sentences(text)
        guard !parts.isEmpty else { return policy.categories.map { ($0.name, 0, false) } }
        let v = try Self.unitRows(embed(parts))
        let d = dimension
        func best(_ rows: [Float]) -> [Float] {   // per sentence, the highest similarity to any row
            (0..<parts.count).map { s in
                var top: Float = -1
                for r in 0..<(rows.count / max(d, 1)) {
                    var dot: Float = 0
                    for j in 0..<d { dot += v[s * d + j] * rows[r * d + j] }
                    top = max(top, dot)
                }
                return top
            }
        }
        return policy.categories.enumerated().map { i, c in
            let pos = best(examples[i]), neg = best(counterExamples[i])
            var score: Float = 0, flagged = false
            for s in parts.indices {
                score = max(score, pos[s])
                if pos[s] >= c.threshold && pos[s] > neg[s] { flagged = true }
            }
            return (c.name, max(0, score), flagged)
        }
    }

    /// Checks a whole text (an input, or an answer that is not streamed).
    public func check(_ text: String) throws -> SafetyReport {
        let scalars = Array(text.unicodeScalars)
        let found = detector.find(scalars: scalars.map(\.value))
        var violation: SafetyViolation? = nil
        var flagged = false
        for m in found {
            let a = policy.personalData[m.kind] ?? .allow
            if a != .allow { flagged = true }
            if a == .block, violation == nil { violation = SafetyViolation(reason: "personal_data/\(m.kind.rawValue)", score: 1) }
        }
        let redacted = PersonalDataDetector.replace(scalars, found.filter { policy.personalData[$0.kind] == .redact })
        let scores = try categoryScores(redacted)
        for (i, s) in scores.enumerated() where s.flagged {
            flagged = true
            if policy.categories[i].action == .block, violation == nil { violation = SafetyViolation(reason: "category/\(s.name)", score: s.score) }
        }
        return SafetyReport(personalData: found, categoryScores: scores, redacted: redacted, violation: violation, flagged: flagged)
    }
}

/// Checks a streamed answer before any of it leaves: text is held back until it has been checked. Without categories,
/// the last `holdBack` characters (and any word they cut) wait, so that a span of personal data is whole when it is
/// checked; with categories, text waits until its sentence is complete. A PEM key that has begun waits for its end.
///
/// ```swift
/// let filter = SafetyFilter(stage: stage)
/// for piece in pieces { let r = try filter.feed(piece); print(r.text, terminator: ""); if r.stopped { break } }
/// print(try filter.finish().text)
/// ```
public final class SafetyFilter {
    public let stage: SafetyStage
    private var pending: [Unicode.Scalar] = []
    /// The end of what was released, kept as context for the next check (a `password:` released, its value pending).
    private var releasedTail: [Unicode.Scalar] = []
    public private(set) var violation: SafetyViolation?
    /// Categories flagged (not blocked) so far.
    public private(set) var flaggedCategories: [String] = []
    public private(set) var redactions = 0

    public init(stage: SafetyStage) { self.stage = stage }

    public var stopped: Bool { violation != nil }

    /// Takes the next piece of the answer; returns what may be released now.
    public func feed(_ piece: String) throws -> (text: String, stopped: Bool) {
        guard !stopped else { return ("", true) }
        pending.append(contentsOf: piece.unicodeScalars)
        return try release(upTo: cut())
    }

    /// The answer has ended: checks and releases the rest.
    public func finish() throws -> (text: String, stopped: Bool) {
        guard !stopped else { return ("", true) }
        return try release(upTo: pending.count)
    }

    /// How much of the pending text may be checked and released now.
    private func cut() -> Int {
        var end: Int
        if stage.policy.categories.isEmpty {
            end = pending.count - stage.policy.holdBack
            while end > 0, !pending[end - 1].properties.isWhitespace { end -= 1 }
        } else {
            // After the last sentence end; a run with no sentence end is released in pieces of 512 at a word break.
            end = 0
            for i in pending.indices.dropLast() where ".!?".unicodeScalars.contains(pending[i]) && (pending[i + 1] == " " || pending[i + 1] == "\n") { end = i + 1 }
            if let nl = pending.lastIndex(of: "\n"), nl + 1 > end { end = nl + 1 }
            if end == 0, pending.count > 512 + stage.policy.holdBack {
                end = pending.count - stage.policy.holdBack
                while end > 0, !pending[end - 1].properties.isWhitespace { end -= 1 }
            }
        }
        // A private key that has begun is held whole.
        let begin = Array("-----BEGIN ".unicodeScalars)
        if pending.count >= begin.count {
            for i in 0...(pending.count - begin.count) where pending[i] == "-" && Array(pending[i..<(i + begin.count)]) == begin {
                let rest = String(String.UnicodeScalarView(pending[(i + begin.count)...]))
                if let e = rest.range(of: "-----END "), rest[e.upperBound...].contains("-----") { continue }
                end = min(end, i)
            }
        }
        return max(0, end)
    }

    private func release(upTo requested: Int) throws -> (text: String, stopped: Bool) {
        var end = requested
        guard end > 0 else { return ("", false) }
        let context = releasedTail + pending
        let offset = releasedTail.count
        let found = stage.detector.find(scalars: context.map(\.value)).filter { $0.range.upperBound > offset }
        // A span that reaches past the cut waits whole (unless the text has ended).
        for m in found where m.range.lowerBound - offset < end && m.range.upperBound - offset > end { end = max(0, m.range.lowerBound - offset) }
        var out = String.UnicodeScalarView()
        var at = 0
        for m in found where m.range.lowerBound - offset < end {
            let start = max(0, m.range.lowerBound - offset), stop = m.range.upperBound - offset
            switch stage.policy.personalData[m.kind] ?? .allow {
            case .allow, .flag: continue
            case .block:
                out.append(contentsOf: pending[at..<start])
                violation = SafetyViolation(reason: "personal_data/\(m.kind.rawValue)", score: 1)
                pending.removeAll()
                return (String(out), true)
            case .redact:
                out.append(contentsOf: pending[at..<start])
                out.append(contentsOf: m.kind.placeholder.unicodeScalars)
                redactions += 1
                at = stop
            }
        }
        if at < end { out.append(contentsOf: pending[at..<end]) }
        let text = String(out)
        for (i, s) in try stage.categoryScores(text).enumerated() where s.flagged {
            if stage.policy.categories[i].action == .block {
                violation = SafetyViolation(reason: "category/\(s.name)", score: s.score)
                pending.removeAll()
                return ("", true)
            }
            if !flaggedCategories.contains(s.name) { flaggedCategories.append(s.name) }
        }
        releasedTail = Array((releasedTail + pending[0..<end]).suffix(64))
        pending.removeFirst(end)
        return (text, false)
    }
}
