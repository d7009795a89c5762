import ArgumentParser
import AttendLM
import AttendModels
import AttendSafety
import AttendTensor
import Foundation

/// `attend bench safety`: the safety stage's detector and category classifier on labelled sets
/// (Benchmarks/safety.sh runs it beside the peers).
struct SafetyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safety", abstract: "Precision and recall of the personal-data detector and the policy's category classifier on labelled JSONL sets, and the time per text.")
    @Option(name: .customLong("personal-data"), help: #"Lines of {"text", "spans": [{"kind", "start", "end"}]}, offsets in code points."#) var personalData: String?
    @Option(help: #"Lines of {"text", "labels": [category names]}."#) var categories: String?
    @Option(help: "The policy whose categories are scored (needed with --categories).") var policy: String?
    @Option(help: "Passes over the set for the timing (median).") var repeats = 3
    @Flag(help: "Print each miss and false positive to standard error (for tuning on the dev set).") var errors = false
    @Option(help: "A labelled set (same layout as --categories) to choose each category's threshold on (best F1), before scoring --categories with those thresholds.") var calibrate: String?

    func validate() throws {
        guard personalData != nil || categories != nil else { throw ValidationError("give --personal-data, --categories, or both") }
        if categories != nil, policy == nil { throw ValidationError("--categories needs --policy") }
        guard (1...100).contains(repeats) else { throw ValidationError("--repeats must be in 1...100, got \(repeats)") }
    }

    static func lines(_ path: String) throws -> [(line: Int, value: JSONValue)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("\(path): cannot be read as UTF-8 text") }
        return try text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { i, line in
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            do { return (i + 1, try JSONValue.parse(String(line))) } catch { throw ValidationError("\(path):\(i + 1): \(error)") }
        }
    }

    func row(_ name: String, _ s: DetectionScore) -> String {
        "attend\t\(name)\t\(s.truePositives)\t\(s.falsePositives)\t\(s.falseNegatives)\t\(String(format: "%.3f", s.precision))\t\(String(format: "%.3f", s.recall))"
    }

    func run() throws {
        if let path = personalData {
            var texts: [String] = [], labelled: [[PersonalDataMatch]] = []
            for (line, v) in try Self.lines(path) {
                guard let text = v["text"]?.stringValue, let spans = v["spans"]?.arrayValue else { throw ValidationError("\(path):\(line): needs \"text\" and \"spans\"") }
                let count = text.unicodeScalars.count
                labelled.append(try spans.map { s in
                    guard let k = s["kind"]?.stringValue, let kind = PersonalDataKind(rawValue: k), let a = s["start"]?.numberValue, let b = s["end"]?.numberValue,
                          a >= 0, a < b, b <= Double(count) else { throw ValidationError("\(path):\(line): a span needs a known kind and 0 <= start < end <= \(count)") }
                    return PersonalDataMatch(kind: kind, range: Int(a)..<Int(b))
                })
                texts.append(text)
            }
            let detector = PersonalDataDetector()
            var scores: [PersonalDataKind: DetectionScore] = [:]
            for (text, gold) in zip(texts, labelled) {
                let found = detector.find(in: text)
                DetectionScore.score(found: found, labelled: gold, into: &scores)
                if errors {
                    let u = Array(text.unicodeScalars)
                    func show(_ m: PersonalDataMatch) -> String { String(String.UnicodeScalarView(u[m.range])) }
                    for f in found where !gold.contains(where: { $0.kind == f.kind && $0.range.overlaps(f.range) }) { FileHandle.standardError.write("FP \(f.kind.rawValue): \(show(f))  | \(text)\n".data(using: .utf8)!) }
                    for g in gold where !found.contains(where: { $0.kind == g.kind && $0.range.overlaps(g.range) }) { FileHandle.standardError.write("FN \(g.kind.rawValue): \(show(g))  | \(text)\n".data(using: .utf8)!) }
                }
            }
            for kind in PersonalDataKind.allCases { print(row(kind.rawValue, scores[kind] ?? DetectionScore())) }
            let seconds = medianSeconds(repeats: repeats) { for t in texts { _ = detector.find(in: t) } }
            print("attend\tpersonal-data-ms-per-text\t\(String(format: "%.4f", seconds * 1000 / Double(max(1, texts.count))))")
        }
        if let path = categories, let policyPath = policy {
            let policy = try SafetyPolicy.load(path: policyPath)
            guard !policy.categories.isEmpty else { throw ValidationError("\(policyPath): has no categories") }
            let embedder = try ModelLocator.sentenceEmbedder(policy.embeddingModel)
            let stage = try SafetyStage(policy: policy, embed: { embedder.embed($0, batchSize: 32) })
            func labelled(_ path: String) throws -> [(text: String, labels: Set<String>)] {
                try Self.lines(path).map { line, v in
                    guard let text = v["text"]?.stringValue, let labels = v["labels"]?.arrayValue?.compactMap(\.stringValue) else {
                        throw ValidationError("\(path):\(line): needs \"text\" and \"labels\"")
                    }
                    return (text, Set(labels))
                }
            }
            /// Each text's score for each category (the best similarity of a sentence to an example).
            func scores(_ rows: [(text: String, labels: Set<String>)]) throws -> [[Float]] {
                try rows.map { try stage.categoryScores($0.text).map(\.score) }
            }
            func count(_ rows: [(text: String, labels: Set<String>)], _ scores: [[Float]], category i: Int, threshold: Float) -> DetectionScore {
                var d = DetectionScore()
                for (r, s) in zip(rows, scores) {
                    let truth = r.labels.contains(policy.categories[i].name), flagged = s[i] >= threshold
                    if flagged && truth { d.truePositives += 1 } else if flagged { d.falsePositives += 1 } else if truth { d.falseNegatives += 1 }
                }
                return d
            }
            var thresholds = policy.categories.map(\.threshold)
            if let calibrate {
                let rows = try labelled(calibrate)
                let s = try scores(rows)
                for i in policy.categories.indices {
                    func f1(_ d: DetectionScore) -> Double { d.precision + d.recall == 0 ? 0 : 2 * d.precision * d.recall / (d.precision + d.recall) }
                    thresholds[i] = stride(from: Float(0.2), through: 0.8, by: 0.01).max { f1(count(rows, s, category: i, threshold: $0)) < f1(count(rows, s, category: i, threshold: $1)) }!
                    print("attend-calibrated\t\(policy.categories[i].name)-threshold\t\(String(format: "%.2f", thresholds[i]))")
                }
            }
            let rows = try labelled(path)
            let start = Date()
            let testScores = try scores(rows)
            let seconds = Date().timeIntervalSince(start)
            for (i, c) in policy.categories.enumerated() { print(row(c.name, count(rows, testScores, category: i, threshold: thresholds[i]))) }
            // The curve: precision and recall over thresholds, for choosing one.
            for (i, c) in policy.categories.enumerated() {
                for t in stride(from: Float(0.3), through: 0.7, by: 0.05) {
                    let d = count(rows, testScores, category: i, threshold: t)
                    print("attend-sweep\t\(c.name)@\(String(format: "%.2f", t))\t\(d.truePositives)\t\(d.falsePositives)\t\(d.falseNegatives)\t\(String(format: "%.3f", d.precision))\t\(String(format: "%.3f", d.recall))")
                }
            }
            print("attend\tcategories-ms-per-text\t\(String(format: "%.3f", seconds * 1000 / Double(max(1, rows.count))))")
        }
    }
}
