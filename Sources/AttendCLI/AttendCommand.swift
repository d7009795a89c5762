// The `attend` command: a root that only wires subcommands; each subcommand parses options and calls
// library code.

import ArgumentParser
import Foundation

@main
struct AttendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attend",
        abstract: "Representation learning and Transformers in Swift.",
        subcommands: [MNISTCommand.self, ClassifyCommand.self, CLIPCommand.self, DrawCommand.self, DescribeCommand.self, VLMCommand.self, StyleCommand.self, CompressionCommand.self, Word2VecCommand.self, GraphCommand.self, EmbedCommand.self, SimilarityCommand.self, IndexCommand.self, SearchCommand.self, AskCommand.self, GenerateCommand.self, ChatCommand.self, GPTCommand.self, LoRACommand.self, BERTCommand.self, Seq2SeqCommand.self, TokenizerCommand.self, BenchCommand.self, InfoCommand.self] + serverCommands)

    /// `attend serve`, when this attend was built with the Server trait (the default).
    static var serverCommands: [ParsableCommand.Type] {
        #if Server
        return [ServeCommand.self]
        #else
        return []
        #endif
    }

    /// The argument parser's own loop, with one addition: `ATTEND_VALIDATE_ONLY=1` stops once the arguments are parsed
    /// and validated. `scripts/test-cli-options.py` sets it for the commands that need no input file, which would
    /// otherwise start their whole job for every value it tries.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if ProcessInfo.processInfo.environment["ATTEND_VALIDATE_ONLY"] == "1" { return }
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}

