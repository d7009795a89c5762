import ArgumentParser
import AttendModels
import AttendSafety
import AttendTensor
import Foundation

/// `--safety POLICY`, shared by generate, chat, ask and serve.
struct SafetyOptions: ParsableArguments {
    @Option(help: "A safety policy file (JSON; examples/safety-policy.json): personal data to redact or block and categories to flag or block, in what goes in and what comes out.")
    var safety: String?

    /// The stage, with the policy's embedding model loaded when it has categories.
    func stage() throws -> SafetyStage? {
        guard let safety else { return nil }
        let policy = try SafetyPolicy.load(path: safety)
        let embed: (([String]) throws -> Tensor)? = policy.categories.isEmpty ? nil : try {
            let e = try ModelLocator.sentenceEmbedder(policy.embeddingModel)
            return { e.embed($0, batchSize: 32) }
        }()
        return try SafetyStage(policy: policy, embed: embed)
    }

    /// The input side: a text the policy blocks ends the command with a message; redacted personal data is replaced.
    static func screen(_ text: String, _ stage: SafetyStage?, what: String) throws -> String {
        guard let stage, stage.policy.checkInput else { return text }
        let report = try stage.check(text)
        if let v = report.violation { throw AttendError("the \(what) was refused by the safety policy (\(v.reason))") }
        if report.redacted != text { FileHandle.standardError.write("safety: personal data in the \(what) was redacted before the model saw it\n".data(using: .utf8)!) }
        return report.redacted
    }

    /// The output side: a filter for one answer, when the policy checks answers.
    static func filter(_ stage: SafetyStage?) -> SafetyFilter? {
        stage.flatMap { $0.policy.checkOutput ? SafetyFilter(stage: $0) : nil }
    }
}
