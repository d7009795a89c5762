// The `attend` command: a root that only wires subcommands; each subcommand parses options and calls
// library code.

import ArgumentParser

@main
struct AttendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attend",
        abstract: "Representation learning and Transformers in Swift.",
        subcommands: [MNISTCommand.self, ClassifyCommand.self, CLIPCommand.self, DrawCommand.self, DescribeCommand.self, VLMCommand.self, StyleCommand.self, CompressionCommand.self, Word2VecCommand.self, GraphCommand.self, EmbedCommand.self, SimilarityCommand.self, IndexCommand.self, SearchCommand.self, AskCommand.self, GenerateCommand.self, ChatCommand.self, GPTCommand.self, LoRACommand.self, BERTCommand.self, Seq2SeqCommand.self, TokenizerCommand.self, BenchCommand.self, InfoCommand.self, ServeCommand.self])
}

