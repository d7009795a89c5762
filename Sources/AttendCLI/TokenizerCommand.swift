import ArgumentParser
import AttendNN
import AttendTensor
import AttendTokenizers
import Foundation

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Train and use byte-level BPE tokenizers.",
                                                    subcommands: [Train.self, Encode.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a byte-level BPE on a text file (each line a text) and write tokenizer.json, vocab.json and merges.txt.")
        @Argument(help: "Training text (UTF-8).") var corpus: String
        @Option(name: .shortAndLong, help: "Output folder.") var output: String
        @Option(name: .customLong("vocab-size")) var vocabularySize = 8000
        @Option(name: .customLong("min-frequency")) var minFrequency = 2
        @Option(name: .customLong("special"), help: "Special tokens (repeatable), numbered first.") var specialTokens: [String] = ["<|endoftext|>"]

        func validate() throws {
            try Require.count(vocabularySize, "--vocab-size", (256 + specialTokens.count)...1_000_000)
            try Require.count(minFrequency, "--min-frequency", 1...Int(Int32.max))
            for s in specialTokens where s.isEmpty { throw ValidationError("--special: an empty special token") }
            try OutputPath.check(output, isNotInput: [corpus])
        }

        func run() throws {
            guard let text = try? String(contentsOfFile: corpus, encoding: .utf8) else { throw AttendError("\(corpus): no such file or not UTF-8") }
            var options = BPETrainingOptions()
            options.vocabularySize = vocabularySize
            options.minFrequency = minFrequency
            options.specialTokens = specialTokens
            let started = Date()
            let tokenizer = try BPETrainer.train(text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init), options: options)
            let seconds = Date().timeIntervalSince(started)
            try tokenizer.save(directory: output)
            print(String(format: "%d tokens (%d merges) in %.2f s; wrote %@/tokenizer.json, vocab.json, merges.txt", tokenizer.tokens.count,
                         tokenizer.merges.count, seconds, output))
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the token ids (and pieces) of a text with a tokenizer.json.")
        @Argument(help: "tokenizer.json, or a folder holding one.") var tokenizer: String
        @Argument(help: "Text to encode.") var text: String

        func run() throws {
            var isDirectory: ObjCBool = false
            let path = FileManager.default.fileExists(atPath: tokenizer, isDirectory: &isDirectory) && isDirectory.boolValue ? tokenizer + "/tokenizer.json" : tokenizer
            let t = try ByteLevelBPETokenizer.load(tokenizerJSON: path)
            let encoded = t.encodeWithOffsets(text)
            let scalars = Array(text.unicodeScalars)
            for e in encoded {
                print("\(e.id)\t\(String(String.UnicodeScalarView(scalars[e.start..<e.end])).debugDescription)\t[\(e.start), \(e.end))")
            }
        }
    }
}
