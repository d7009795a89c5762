import ArgumentParser
import AttendEmbeddings
import AttendTensor
import Foundation

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph", abstract: "Graph embeddings: DeepWalk and node2vec random walks fed to skip-gram.",
        subcommands: [Walk.self, Embed.self, Evaluate.self])

    struct GraphOptions: ParsableArguments {
        @Argument(help: "Edge list: 'source target [weight]' per line.") var edges: String
        @Flag(help: "Edges are directed.") var directed = false
        @Option(name: .customLong("walks-per-node"), help: "Walks started from every node (per epoch).") var walksPerNode = 10
        @Option(name: .customLong("walk-length"), help: "Nodes per walk.") var walkLength = 40
        @Option(help: "node2vec return parameter (1 with q = 1 is DeepWalk).") var p: Double = 1
        @Option(help: "node2vec in-out parameter.") var q: Double = 1
        @Option(help: "Random seed.") var seed: UInt64 = 1

        var walkConfig: WalkConfig {
            var c = WalkConfig()
            c.walksPerNode = walksPerNode
            c.walkLength = walkLength
            c.p = p
            c.q = q
            c.seed = seed
            return c
        }

        func validate() throws {
            try Require.count(walksPerNode, "--walks-per-node", 1...100_000)
            try Require.count(walkLength, "--walk-length", 2...100_000)
            try Require.number(p, "--p", 0...1e6, aboveLower: true)
            try Require.number(q, "--q", 0...1e6, aboveLower: true)
        }
    }

    struct Walk: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write random walks as sentences of node names (one walk per line).")
        @OptionGroup var graphOptions: GraphOptions
        @Option(name: .shortAndLong, help: "Output file.") var output: String

        func validate() throws { try OutputPath.check(output, isNotInput: [graphOptions.edges]) }

        func run() throws {
            let graph = try Graph.load(edgeList: graphOptions.edges, directed: graphOptions.directed)
            let walks = RandomWalks(graph: graph, config: graphOptions.walkConfig, nodeToWord: (0..<graph.nodeCount).map { Int32($0) })
            var text = ""
            walks.forEachSentence(part: 0, of: 1, epoch: 0) { walk in
                text += walk.map { graph.names[Int($0)] }.joined(separator: " ") + "\n"
            }
            try AtomicFile.write(Data(text.utf8), to: output)
            print("wrote \(graph.nodeCount * graphOptions.walksPerNode) walks to \(output)")
        }
    }

    struct Embed: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train node vectors (DeepWalk, or node2vec with --p/--q).")
        @OptionGroup var graphOptions: GraphOptions
        @Option(name: .shortAndLong, help: "Output vector file (word2vec format, node names as words).") var output: String
        @Option(help: "binary or text.") var format: WordVectors.Format = .binary
        @Option(help: "Vector size.") var dimension = 128
        @Option(help: "Skip-gram window.") var window = 5
        @Option(help: "Negative samples (0 = off).") var negative = 5
        @Flag(name: .customLong("hs"), help: "Hierarchical softmax (DeepWalk's original choice).") var hierarchicalSoftmax = false
        @Option(help: "Epochs (each sees fresh walks).") var epochs = 1
        @Option(help: "Worker threads.") var threads = Parallel.threads

        func validate() throws {
            try Require.skipGram(dimension: dimension, window: window, negative: negative, hierarchicalSoftmax: hierarchicalSoftmax,
                                 epochs: epochs, threads: threads)
            try OutputPath.check(output, isNotInput: [graphOptions.edges])
        }

        func run() throws {
            let started = Date()
            let graph = try Graph.load(edgeList: graphOptions.edges, directed: graphOptions.directed)
            print("graph: \(graph.nodeCount) nodes, \(graph.edgeCount) edges\(graph.isWeighted ? ", weighted" : "")")
            var config = Word2VecConfig()
            config.dimension = dimension
            config.window = window
            config.negative = negative
            config.hierarchicalSoftmax = hierarchicalSoftmax
            config.epochs = epochs
            config.threads = threads
            config.seed = graphOptions.seed
            config.sample = 0
            let (vectors, summary) = GraphEmbedding.train(graph: graph, walks: graphOptions.walkConfig, word2vec: config)
            try vectors.save(to: output, format: format)
            print(String(format: "trained on %lld walk steps in %.2f s (%.0f steps/s); total %.2f s; wrote %@",
                         summary.wordsProcessed, summary.seconds, summary.wordsPerSecond, Date().timeIntervalSince(started), output))
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Node classification: one-vs-rest logistic regression, Micro/Macro-F1.")
        @Argument(help: "Node vector file.") var vectors: String
        @Option(help: "Labels: 'node label [label ...]' per line.") var labels: String
        @Option(name: .customLong("ratios"), parsing: .upToNextOption, help: "Training fractions.") var ratios: [Double] = [0.1, 0.5, 0.9]
        @Option(help: "Random splits averaged per ratio.") var repeats = 5

        func validate() throws {
            try Require.count(repeats, "--repeats", 1...10_000)
            for r in ratios { try Require.number(r, "--ratios", 0...1, aboveLower: true) }
            for r in ratios where r == 1 { throw ValidationError("--ratios must be below 1 (some nodes are needed for testing), got \(r)") }
        }

        func run() throws {
            let result = try NodeClassification.evaluate(vectors: WordVectors.load(from: vectors), labels: NodeLabels.load(labels),
                                                         trainingRatios: ratios, repeats: repeats)
            print("train ratio   Micro-F1   Macro-F1   test nodes")
            for r in result { print(String(format: "%11.2f %10.4f %10.4f %12d", r.trainingRatio, r.microF1, r.macroF1, r.testNodes)) }
        }
    }
}
