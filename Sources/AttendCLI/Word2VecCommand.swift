import ArgumentParser
import AttendEmbeddings
import AttendTensor
import Foundation

struct Word2VecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "word2vec", abstract: "Train and query word vectors (skip-gram / CBOW).",
        subcommands: [Train.self, Similar.self, Analogy.self, Evaluate.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train word vectors on a whitespace-tokenized text file (one sentence per line).")

        @Argument(help: "Corpus file.") var corpus: String
        @Option(name: .shortAndLong, help: "Output vector file.") var output: String
        @Option(help: "Output format: binary or text.") var format: WordVectors.Format = .binary
        @Option(help: "Also save the full model (to continue training) as safetensors.") var saveModel: String?
        @Option(help: "Continue training this saved model (its vocabulary and settings) instead of starting anew.") var resume: String?
        @Flag(help: "CBOW instead of skip-gram.") var cbow = false
        @Option(help: "Vector size.") var dimension = 100
        @Option(help: "Maximum context distance.") var window = 5
        @Option(help: "Negative samples (0 = off).") var negative = 5
        @Flag(name: .customLong("hs"), help: "Hierarchical softmax.") var hierarchicalSoftmax = false
        @Option(help: "Subsampling threshold (0 = off).") var sample: Double = 1e-3
        @Option(name: .customLong("min-count"), help: "Ignore words rarer than this.") var minCount = 5
        @Option(name: .customLong("max-vocab"), help: "Keep at most this many words.") var maxVocabulary: Int?
        @Option(name: .customLong("alpha"), help: "Starting learning rate (default 0.025 skip-gram, 0.05 CBOW).") var learningRate: Float?
        @Option(help: "Passes over the corpus.") var epochs = 5
        @Option(help: "Worker threads.") var threads = Parallel.threads
        @Option(help: "Random seed (one thread gives reproducible results).") var seed: UInt64 = 1
        @Option(help: "Under mpirun: times an epoch the processes' updates are merged (each trains its own copy on its slices between).") var rounds = 10
        @Flag(help: "Join an MPI job started without a launcher's environment (mpirun and srun are detected without this).") var distributed = false

        func validate() throws {
            // Each round cuts the corpus into rounds x processes x threads slices, found afresh by every thread.
            try Require.count(rounds, "--rounds", 1...1_000)
            try Require.skipGram(dimension: dimension, window: window, negative: negative, hierarchicalSoftmax: hierarchicalSoftmax,
                                 epochs: epochs, threads: threads)
            try Require.number(sample, "--sample", 0...1)
            try Require.count(minCount, "--min-count", 0...Int(Int32.max))
            try Require.count(maxVocabulary, "--max-vocab", 1...Require.sizeLimit)
            try Require.learningRate(learningRate, "--alpha")
            try OutputPath.check(output, isNotInput: [corpus] + (resume.map { [$0] } ?? []))
            if let saveModel { try OutputPath.check(saveModel, isNotInput: [corpus, output] + (resume.map { [$0] } ?? [])) }
        }

        func run() throws {
            var config = Word2VecConfig()
            config.architecture = cbow ? .cbow : .skipGram
            config.dimension = dimension
            config.window = window
            config.negative = negative
            config.hierarchicalSoftmax = hierarchicalSoftmax
            config.sample = sample
            config.minCount = minCount
            config.maxVocabulary = maxVocabulary
            config.learningRate = learningRate
            config.epochs = epochs
            config.threads = threads
            config.seed = seed
            let started = Date()
            let file = try MappedFile(corpus)
            let model: Word2Vec
            if let resume {
                model = try Word2Vec.loadState(from: resume)
            } else {
                let vocabulary = try Vocabulary.build(corpus: file, minCount: minCount, maxSize: maxVocabulary)
                model = Word2Vec(config: config, vocabulary: vocabulary)
            }
            let vocabSeconds = Date().timeIntervalSince(started)
            let parallel = try DataParallelRun.start(distributed: distributed)
            func say(_ line: String) { if parallel.isRoot { print(line) } }
            say(String(format: "vocabulary: %d words, %lld tokens (%.2f s)", model.vocabulary.count, model.vocabulary.totalCount, vocabSeconds))
            let sentences = CorpusSentences(file: file, vocabulary: model.vocabulary, maxSentenceLength: model.config.maxSentenceLength)
            var summary: Word2VecTrainingSummary
            if parallel.size > 1 {
                // Every rank built the same vocabulary and initial vectors from the same file and seed; a resumed model
                // is read by each. The averaging keeps them equal.
                try parallel.requireSameStart(settings: "\(model.config) \(model.vocabulary.count) \(rounds)", dataBytes: file.count)
                say("\(parallel.size) processes (MPI) with \(model.config.threads) threads each; their updates are merged \(rounds) times an epoch")
                summary = try model.train(sentences, processes: Word2VecProcesses(process: parallel.rank, processes: parallel.size, roundsPerEpoch: rounds) {
                    try parallel.sumInPlace($0, count: $1)
                }, epochs: epochs, progress: parallel.isRoot)
                let totals = try parallel.sum([Double(summary.wordsProcessed), Double(summary.wordsTrained)])
                (summary.wordsProcessed, summary.wordsTrained) = (Int64(totals[0]), Int64(totals[1]))
                summary.seconds = try parallel.maximum(summary.seconds)
                let same = try parallel.identical(model.input.pointer, count: model.input.count)
                say("data-parallel over \(parallel.size) ranks: vectors bit-identical on every rank: \(same ? "yes" : "NO")")
                guard same else { throw AttendError("rank \(parallel.rank): the word vectors differ between ranks after training") }
            } else {
                summary = model.train(sentences, epochs: epochs)
            }
            say(String(format: "trained %d epochs on %lld words in %.2f s: %.0f words/s (%lld kept after subsampling)",
                       summary.epochs, summary.wordsProcessed, summary.seconds, summary.wordsPerSecond, summary.wordsTrained)
                + (parallel.size > 1 ? String(format: "; merging %.2f s", summary.averagingSeconds) : ""))
            try parallel.finish()
            guard parallel.isRoot else { return }
            // The vectors and the model are renamed into place together, so a killed run never pairs new vectors with an old model.
            try AtomicFile.write([(model.vectors.encoded(format: format), output)] + (saveModel.map { [(try model.stateData(), $0)] } ?? []))
            print("wrote \(output)" + (saveModel.map { " and \($0)" } ?? ""))
        }
    }

    struct Similar: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Nearest neighbours of a word by cosine similarity.")
        @Argument(help: "Vector file (text or binary).") var vectors: String
        @Argument(help: "Query words.") var words: [String]
        @Option(name: .short, help: "Neighbours to show.") var k = 10

        func validate() throws { try Require.count(k, "-k", 1...100_000) }

        func run() throws {
            let wv = try WordVectors.load(from: vectors)
            for word in words {
                let neighbours = try wv.nearest(to: word, k: k)
                print("\(word):")
                for (w, s) in neighbours { print(String(format: "  %-20@ %.4f", w as NSString, s)) }
            }
        }
    }

    struct Analogy: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "a is to b as c is to ? (e.g. man king woman -> queen).")
        @Argument(help: "Vector file.") var vectors: String
        @Argument var a: String
        @Argument var b: String
        @Argument var c: String
        @Option(help: "3cosadd or 3cosmul.") var method: WordVectors.AnalogyMethod = .add
        @Option(name: .short, help: "Answers to show.") var k = 5

        func validate() throws { try Require.count(k, "-k", 1...100_000) }

        func run() throws {
            let wv = try WordVectors.load(from: vectors)
            for (w, s) in try wv.analogy(a, b, c, k: k, method: method) { print(String(format: "%-20@ %.4f", w as NSString, s)) }
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Analogy accuracy (questions-words.txt) and word-similarity Spearman correlation.")
        @Argument(help: "Vector file.") var vectors: String
        @Option(help: "Analogy file in questions-words.txt format.") var analogies: String?
        @Option(parsing: .upToNextOption, help: "Word-pair similarity files (WordSim-353, SimLex-999).") var similarity: [String] = []
        @Option(help: "Search answers among (and require questions within) the most frequent N words.") var restrict = 30_000
        @Option(help: "3cosadd or 3cosmul.") var method: WordVectors.AnalogyMethod = .add

        func validate() throws { try Require.count(restrict, "--restrict", 1...Int.max) }

        func run() throws {
            let wv = try WordVectors.load(from: vectors)
            if let analogies {
                let r = try wv.evaluateAnalogies(path: analogies, method: method, restrictTo: restrict)
                for s in r.sections { print(String(format: "  %-30@ %6.2f%%  (%d/%d)", s.name as NSString, 100 * s.accuracy, s.correct, s.total)) }
                print(String(format: "analogy accuracy: %.2f%% (%d/%d, %d skipped as out of vocabulary)", 100 * r.accuracy, r.correct, r.total, r.skipped))
            }
            for path in similarity {
                let r = try wv.evaluateSimilarity(path: path)
                print(String(format: "%@: Spearman %.4f (%d pairs, %d skipped)", (path as NSString).lastPathComponent, r.spearman, r.pairs, r.skipped))
            }
        }
    }
}

extension WordVectors.Format: ExpressibleByArgument {}
extension WordVectors.AnalogyMethod: ExpressibleByArgument {}
