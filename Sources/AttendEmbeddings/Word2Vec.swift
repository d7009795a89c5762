// word2vec (Mikolov et al., 2013, "Efficient Estimation of Word Representations in Vector Space" and
// "Distributed Representations of Words and Phrases"): skip-gram ("look at the centre, guess around") and
// CBOW ("look around, guess the centre"), trained with negative sampling and/or hierarchical softmax,
// frequent-word subsampling and a linearly decaying learning rate. Threads update shared weights without
// locks (Hogwild), each over its own part of the data, as the original tool and gensim do.

import AttendNN
import AttendTensor
import CAttendKernels
import Foundation

/// word2vec's settings: architecture, vector size, window, negative sampling or hierarchical softmax,
/// subsampling, epochs and threads.
///
/// ```swift
/// var config = Word2VecConfig()
/// config.architecture = .cbow
/// config.dimension = 300
/// config.threads = 1   // Hogwild threads race on the weights; one thread makes a run repeatable
/// ```
public struct Word2VecConfig: Codable, Equatable {
    public enum Architecture: String, Codable { case skipGram = "skipgram", cbow }

    public var architecture: Architecture = .skipGram
    public var dimension = 100
    /// Maximum distance between the centre and a context word (the effective window is drawn in 1...window).
    public var window = 5
    /// Negative samples per positive pair (0 turns negative sampling off).
    public var negative = 5
    public var hierarchicalSoftmax = false
    /// Subsampling threshold for frequent words (0 turns it off).
    public var sample: Double = 1e-3
    public var minCount = 5
    public var maxVocabulary: Int?
    /// Starting learning rate; nil means 0.025 for skip-gram and 0.05 for CBOW (the original defaults).
    public var learningRate: Float?
    public var minLearningRate: Float = 1e-4
    public var epochs = 5
    public var threads = Parallel.threads
    public var seed: UInt64 = 1
    /// Longer lines are cut into sentences of this many words (gensim's limit).
    public var maxSentenceLength = 10_000

    public init() {}

    public var startLearningRate: Float { learningRate ?? (architecture == .skipGram ? 0.025 : 0.05) }
}

/// Anything that yields sentences of word ids: a corpus file, or random walks on a graph.
public protocol SentenceSource {
    /// Ids that one epoch yields in all (sets the learning-rate schedule and progress).
    var wordsPerEpoch: Int64 { get }
    /// Calls `body` with each sentence of partition `part` (of `parts`) for `epoch`. The buffer is reused.
    func forEachSentence(part: Int, of parts: Int, epoch: Int, _ body: (UnsafeBufferPointer<Int32>) -> Void)
}

/// The lines of a corpus file as sentences of vocabulary ids (unknown words are dropped).
public struct CorpusSentences: SentenceSource {
    public let file: MappedFile
    public let vocabulary: Vocabulary
    public let maxSentenceLength: Int

    public init(file: MappedFile, vocabulary: Vocabulary, maxSentenceLength: Int = 10_000) {
        self.file = file
        self.vocabulary = vocabulary
        self.maxSentenceLength = maxSentenceLength
    }

    public var wordsPerEpoch: Int64 { vocabulary.totalCount }

    public func forEachSentence(part: Int, of parts: Int, epoch: Int, _ body: (UnsafeBufferPointer<Int32>) -> Void) {
        let range = file.lineAlignedRanges(parts)[part]
        let buffer = UnsafeMutablePointer<Int32>.allocate(capacity: maxSentenceLength)
        defer { buffer.deallocate() }
        var n = 0
        let bytes = file.bytes
        let cap = maxSentenceLength
        forEachToken(bytes, range, { start, length in
            let id = vocabulary.index(bytes + start, length)
            guard id >= 0 else { return }
            buffer[n] = id
            n += 1
            if n == cap {
                body(UnsafeBufferPointer(start: buffer, count: n))
                n = 0
            }
        }, endOfLine: {
            if n > 0 { body(UnsafeBufferPointer(start: buffer, count: n)) }
            n = 0
        })
        if n > 0 { body(UnsafeBufferPointer(start: buffer, count: n)) }
    }
}

/// What a training run did.
public struct Word2VecTrainingSummary: Codable {
    public var epochs: Int
    /// Ids read from the source (before subsampling), over all epochs.
    public var wordsProcessed: Int64
    /// Ids kept after subsampling and trained on.
    public var wordsTrained: Int64
    public var seconds: Double
    /// Seconds spent merging the processes' copies (training over several processes).
    public var averagingSeconds: Double = 0
    public var wordsPerSecond: Double { Double(wordsProcessed) / max(seconds, 1e-9) }
}

/// How word2vec trains over several processes: which process this is, how many there are, how often an epoch their
/// copies are merged, and the sum that merges them (`sum(values, count)` replaces `count` floats by their sum over
/// the processes, e.g. an MPI all-reduce).
public struct Word2VecProcesses {
    public var process: Int
    public var processes: Int
    public var roundsPerEpoch: Int
    public var sum: (UnsafeMutablePointer<Float>, Int) throws -> Void

    public init(process: Int, processes: Int, roundsPerEpoch: Int, sum: @escaping (UnsafeMutablePointer<Float>, Int) throws -> Void) {
        self.process = process
        self.processes = processes
        self.roundsPerEpoch = roundsPerEpoch
        self.sum = sum
    }
}

/// A word2vec model: its vocabulary and weight matrices, trained on any `SentenceSource` (a corpus, graph walks).
///
/// ```swift
/// let (model, summary) = try Word2Vec.train(corpus: "text8", config: Word2VecConfig())
/// print(summary.wordsPerSecond)
/// try model.vectors.save(to: "text8.bin", format: .binary)
/// try model.saveState(to: "text8.safetensors")   // Word2Vec.loadState(from:) continues training from it
/// ```
public final class Word2Vec {
    public let config: Word2VecConfig
    public let vocabulary: Vocabulary
    /// Word vectors ("syn0"), [V, D]: the embeddings.
    public let input: Tensor
    /// Output vectors for negative sampling ("syn1neg"), [V, D].
    public let outputNegative: Tensor?
    /// Output vectors of the Huffman tree's inner nodes ("syn1"), [V - 1, D].
    public let outputHierarchical: Tensor?
    /// Huffman paths: word w's inner nodes are hsRows[hsOffsets[w]..<hsOffsets[w+1]], labels 1 - code bit.
    let hsRows: [Int32]
    let hsLabels: [Float]
    let hsOffsets: [Int]
    /// Word w is kept with probability keep[w] / 2^32 (subsampling).
    let keep: [UInt32]
    let negativeTable: AliasTable

    /// A new model with the original tool's initialization: input uniform in +-0.5/D, outputs zero.
    public init(config: Word2VecConfig, vocabulary: Vocabulary) {
        precondition(config.dimension > 0 && config.window > 0, "word2vec: dimension and window must be positive")
        precondition(config.negative > 0 || config.hierarchicalSoftmax, "word2vec: enable negative sampling or hierarchical softmax")
        self.config = config
        self.vocabulary = vocabulary
        let (v, d) = (vocabulary.count, config.dimension)
        var g = RandomGenerator(seed: config.seed)
        input = Tensor.uniform([v, d], low: -0.5 / Float(d), high: 0.5 / Float(d), generator: &g)
        outputNegative = config.negative > 0 ? Tensor.zeros([v, d]) : nil
        outputHierarchical = config.hierarchicalSoftmax ? Tensor.zeros([max(v - 1, 1), d]) : nil
        (hsRows, hsLabels, hsOffsets) = config.hierarchicalSoftmax ? Word2Vec.huffmanPaths(vocabulary.counts) : ([], [], [])
        let total = Double(vocabulary.totalCount)
        keep = vocabulary.counts.map { c in
            guard config.sample > 0 else { return UInt32.max }
            let threshold = config.sample * total
            let p = ((Double(c) / threshold).squareRoot() + 1) * threshold / Double(c)
            return p >= 1 ? UInt32.max : UInt32(p * 4_294_967_296.0)
        }
        negativeTable = AliasTable(weights: vocabulary.counts.map { Foundation.pow(Double($0), 0.75) })
        attend_w2v_prepare()
    }

    /// Builds the vocabulary from `corpus` and trains on it.
    public static func train(corpus path: String, config: Word2VecConfig, progress: Bool = true) throws -> (Word2Vec, Word2VecTrainingSummary) {
        let file = try MappedFile(path)
        let vocabulary = try Vocabulary.build(corpus: file, minCount: config.minCount, maxSize: config.maxVocabulary)
        let model = Word2Vec(config: config, vocabulary: vocabulary)
        let summary = model.train(CorpusSentences(file: file, vocabulary: vocabulary, maxSentenceLength: config.maxSentenceLength),
                                  progress: progress)
        return (model, summary)
    }

    /// Trains for `epochs` (default: the config's) passes over `source`.
    @discardableResult
    public func train(_ source: SentenceSource, epochs: Int? = nil, progress: Bool = true) -> Word2VecTrainingSummary {
        let epochs = epochs ?? config.epochs
        let threads = max(1, config.threads)
        let perThread = max(1, Double(source.wordsPerEpoch) * Double(epochs) / Double(threads))
        let bar = progress ? ProgressBar(total: Int(source.wordsPerEpoch) * epochs, label: "word2vec", unit: "words") : nil
        let started = Date()
        var processed = [Int64](repeating: 0, count: threads)
        var trained = [Int64](repeating: 0, count: threads)
        processed.withUnsafeMutableBufferPointer { processedCounts in
            trained.withUnsafeMutableBufferPointer { trainedCounts in
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    var worker = Worker(model: self, seed: config.seed &+ UInt64(t) &* 0x9E37_79B9_7F4A_7C15)
                    defer { worker.release() }
                    var done: Int64 = 0, kept: Int64 = 0, reported: Int64 = 0
                    for epoch in 0..<epochs {
                        source.forEachSentence(part: t, of: threads, epoch: epoch) { sentence in
                            let progress = Double(done) / perThread
                            let alpha = max(config.minLearningRate, config.startLearningRate * Float(1 - progress))
                            kept += Int64(worker.train(sentence, alpha: alpha))
                            done += Int64(sentence.count)
                            if t == 0, let bar, done - reported > 100_000 {
                                bar.advance(Int(done - reported) * threads, status: String(format: "lr %.5f", alpha))
                                reported = done
                            }
                        }
                    }
                    processedCounts[t] = done
                    trainedCounts[t] = kept
                }
            }
        }
        if let bar { bar.advance(max(0, bar.total - bar.done)) }
        return Word2VecTrainingSummary(epochs: epochs, wordsProcessed: processed.reduce(0, +), wordsTrained: trained.reduce(0, +),
                                       seconds: Date().timeIntervalSince(started))
    }

    /// Trains over several processes: each trains its own copy with its own threads on its slices of the corpus, and
    /// `processes.roundsPerEpoch` times an epoch the copies are merged by adding up every process's change since the
    /// last merge, so every process ends with the same vectors and every update counts in full, as if the processes
    /// were more Hogwild threads on one copy (averaging the copies instead would halve each update: measured, it
    /// loses accuracy the more often it merges). In round r of an epoch, thread t of process p reads slice
    /// `(r n + p) T + t` of `R n T`.
    ///
    /// ```swift
    /// // under mpirun, with an MPIWorld `world` (AttendDistributed):
    /// let ranks = Word2VecProcesses(process: world.rank, processes: world.size, roundsPerEpoch: 10) { values, count in
    ///     try world.allReduceSum(values, count: count)
    /// }
    /// let summary = try model.train(sentences, processes: ranks)
    /// ```
    @discardableResult
    public func train(_ source: SentenceSource, processes ranks: Word2VecProcesses, epochs: Int? = nil, progress: Bool = true) throws -> Word2VecTrainingSummary {
        let epochs = epochs ?? config.epochs
        let threads = max(1, config.threads)
        let (process, processes, rounds) = (ranks.process, ranks.processes, ranks.roundsPerEpoch)
        guard processes >= 1, (0..<processes).contains(process), rounds >= 1 else {
            throw AttendError("word2vec over processes: process \(process) of \(processes), \(rounds) rounds an epoch")
        }
        // Every thread of every round finds its slice among all of them: keep their number sane.
        guard rounds <= 1 << 20, processes <= 1 << 20, rounds * processes * threads <= 1 << 20 else {
            throw AttendError("word2vec over processes: \(rounds) rounds x \(processes) processes x \(threads) threads is more than 2^20 slices of the corpus")
        }
        let parts = rounds * processes * threads
        // Each thread's share of the whole run, for the learning rate's decay (the same on every process).
        let perThread = max(1, Double(source.wordsPerEpoch) * Double(epochs) / Double(threads * processes))
        let bar = progress ? ProgressBar(total: Int(source.wordsPerEpoch) * epochs, label: "word2vec", unit: "words") : nil
        let started = Date()
        var processed = [Int64](repeating: 0, count: threads), trained = [Int64](repeating: 0, count: threads)
        var workers = (0..<threads).map { t in Worker(model: self, seed: config.seed &+ UInt64(process * threads + t) &* 0x9E37_79B9_7F4A_7C15) }
        defer { for i in workers.indices { workers[i].release() } }
        var averagingSeconds = 0.0
        let matrices = [input, outputNegative, outputHierarchical].compactMap { $0 }
        // Each matrix as of the last merge: a process's change is its matrix minus this.
        let merged = matrices.map { $0.copy() }
        for epoch in 0..<epochs {
            for round in 0..<rounds {
                let before = processed.reduce(0, +)
                workers.withUnsafeMutableBufferPointer { w in
                    processed.withUnsafeMutableBufferPointer { done in
                        trained.withUnsafeMutableBufferPointer { kept in
                            DispatchQueue.concurrentPerform(iterations: threads) { t in
                                source.forEachSentence(part: (round * processes + process) * threads + t, of: parts, epoch: epoch) { sentence in
                                    let progress = Double(done[t]) / perThread
                                    let alpha = max(config.minLearningRate, config.startLearningRate * Float(1 - progress))
                                    kept[t] += Int64(w[t].train(sentence, alpha: alpha))
                                    done[t] += Int64(sentence.count)
                                }
                            }
                        }
                    }
                }
                let t0 = Date()
                for (m, base) in zip(matrices, merged) {
                    let (w, b, count) = (m.pointer, base.pointer, m.count)
                    for i in 0..<count { w[i] -= b[i] }
                    try ranks.sum(w, count)
                    for i in 0..<count { w[i] += b[i]; b[i] = w[i] }
                }
                averagingSeconds += Date().timeIntervalSince(t0)
                bar?.advance(Int(processed.reduce(0, +) - before) * processes, status: "round \(round + 1) of \(rounds), epoch \(epoch + 1)")
            }
        }
        if let bar { bar.advance(max(0, bar.total - bar.done)) }
        var summary = Word2VecTrainingSummary(epochs: epochs, wordsProcessed: processed.reduce(0, +), wordsTrained: trained.reduce(0, +),
                                              seconds: Date().timeIntervalSince(started))
        summary.averagingSeconds = averagingSeconds
        return summary
    }

    /// The trained word vectors with their words.
    public var vectors: WordVectors { WordVectors(words: vocabulary.words, vectors: input.copy()) }

    /// Huffman coding over word counts (sorted descending), as in the original tool: for each word, the
    /// inner nodes on its path (row ids into the output matrix) and 1 - code bit as the label.
    static func huffmanPaths(_ counts: [Int64]) -> ([Int32], [Float], [Int]) {
        let v = counts.count
        guard v > 1 else { return ([], [], [0, 0]) }
        var count = counts + [Int64](repeating: Int64.max / 4, count: v)
        var binary = [UInt8](repeating: 0, count: 2 * v)
        var parent = [Int](repeating: 0, count: 2 * v)
        var pos1 = v - 1, pos2 = v
        for a in 0..<(v - 1) {
            var mins = [0, 0]
            for k in 0..<2 {
                if pos1 >= 0 && count[pos1] < count[pos2] { mins[k] = pos1; pos1 -= 1 } else { mins[k] = pos2; pos2 += 1 }
            }
            count[v + a] = count[mins[0]] + count[mins[1]]
            parent[mins[0]] = v + a
            parent[mins[1]] = v + a
            binary[mins[1]] = 1
        }
        var rows: [Int32] = [], labels: [Float] = [], offsets = [0]
        for w in 0..<v {
            var codes: [UInt8] = [], points: [Int32] = []
            var b = w
            while b != 2 * v - 2 {
                codes.append(binary[b])
                b = parent[b]
                points.append(Int32(b - v))
            }
            // Root first, as the original stores them.
            rows.append(contentsOf: points.reversed())
            labels.append(contentsOf: codes.reversed().map { 1 - Float($0) })
            offsets.append(rows.count)
        }
        return (rows, labels, offsets)
    }
}

/// A thread-owned copy of an array, so the hot loop reads raw memory (no retain/release or bounds checks).
struct OwnedBuffer<T> {
    let pointer: UnsafeMutablePointer<T>
    init(_ array: [T]) {
        pointer = .allocate(capacity: max(array.count, 1))
        array.withUnsafeBufferPointer { if let base = $0.baseAddress { pointer.initialize(from: base, count: array.count) } }
    }
    @inline(__always) subscript(i: Int) -> T { pointer[i] }
    func release() { pointer.deallocate() }
}

/// One thread's scratch space, random state and private copies of the sampling tables.
struct Worker {
    let model: Word2Vec
    let d: Int
    let window: Int
    let negative: Int
    let skipGram: Bool
    var random: UInt64
    let sentence: UnsafeMutablePointer<Int32>
    let neu1: UnsafeMutablePointer<Float>
    let neu1e: UnsafeMutablePointer<Float>
    let rows: UnsafeMutablePointer<Int32>
    let labels: UnsafeMutablePointer<Float>
    let keep: OwnedBuffer<UInt32>
    let aliasProbability: OwnedBuffer<Float>
    let alias: OwnedBuffer<Int32>
    let hsRows: OwnedBuffer<Int32>
    let hsLabels: OwnedBuffer<Float>
    let hsOffsets: OwnedBuffer<Int>
    let syn0: UnsafeMutablePointer<Float>
    let syn1: UnsafeMutablePointer<Float>?
    let syn1neg: UnsafeMutablePointer<Float>?
    let vocabularySize: Int

    init(model: Word2Vec, seed: UInt64) {
        self.model = model
        d = model.config.dimension
        window = model.config.window
        negative = model.config.negative
        skipGram = model.config.architecture == .skipGram
        random = seed
        sentence = .allocate(capacity: model.config.maxSentenceLength)
        neu1 = .allocate(capacity: d)
        neu1e = .allocate(capacity: d)
        rows = .allocate(capacity: negative + 1)
        labels = .allocate(capacity: negative + 1)
        labels[0] = 1
        for k in 0..<negative { labels[k + 1] = 0 }
        keep = OwnedBuffer(model.keep)
        aliasProbability = OwnedBuffer(model.negativeTable.probability)
        alias = OwnedBuffer(model.negativeTable.alias)
        hsRows = OwnedBuffer(model.hsRows)
        hsLabels = OwnedBuffer(model.hsLabels)
        hsOffsets = OwnedBuffer(model.hsOffsets)
        syn0 = model.input.pointer
        syn1 = model.outputHierarchical?.pointer
        syn1neg = model.outputNegative?.pointer
        vocabularySize = model.vocabulary.count
    }

    func release() {
        sentence.deallocate(); neu1.deallocate(); neu1e.deallocate(); rows.deallocate(); labels.deallocate()
        keep.release(); aliasProbability.release(); alias.release(); hsRows.release(); hsLabels.release(); hsOffsets.release()
    }

    /// The original tool's linear congruential generator: fast and good enough for sampling.
    @inline(__always) mutating func next() -> UInt64 {
        random = random &* 25_214_903_917 &+ 11
        return random
    }

    /// Trains on one sentence; returns the words kept after subsampling.
    mutating func train(_ ids: UnsafeBufferPointer<Int32>, alpha: Float) -> Int {
        var n = 0
        for id in ids {
            let k = keep[Int(id)]
            if k == UInt32.max || UInt32(truncatingIfNeeded: next() >> 16) < k {
                sentence[n] = id
                n += 1
            }
        }
        for pos in 0..<n {
            let word = Int(sentence[pos])
            let b = Int(next() >> 16) % window
            let lo = max(0, pos - window + b), hi = min(n - 1, pos + window - b)
            if skipGram {
                for c in lo...hi where c != pos {
                    let l1 = syn0 + Int(sentence[c]) * d
                    neu1e.update(repeating: 0, count: d)
                    learn(input: l1, word: word, alpha: alpha)
                    attend_saxpy(d, 1, neu1e, l1)
                }
            } else {
                neu1.update(repeating: 0, count: d)
                var cw = 0
                for c in lo...hi where c != pos {
                    attend_saxpy(d, 1, syn0 + Int(sentence[c]) * d, neu1)
                    cw += 1
                }
                guard cw > 0 else { continue }
                let inv = 1 / Float(cw)
                for i in 0..<d { neu1[i] *= inv }
                neu1e.update(repeating: 0, count: d)
                learn(input: neu1, word: word, alpha: alpha)
                for c in lo...hi where c != pos { attend_saxpy(d, 1, neu1e, syn0 + Int(sentence[c]) * d) }
            }
        }
        return n
    }

    /// Predicts `word` from `input`, accumulating the input's gradient step in neu1e.
    @inline(__always) mutating func learn(input: UnsafeMutablePointer<Float>, word: Int, alpha: Float) {
        if let syn1 {
            let (s, e) = (hsOffsets[word], hsOffsets[word + 1])
            attend_w2v_update(input, neu1e, syn1, hsRows.pointer + s, hsLabels.pointer + s, e - s, d, alpha, 1)
        }
        if let syn1neg {
            rows[0] = Int32(word)
            var count = 1
            for _ in 0..<negative {
                // Alias sampling from unigram^0.75 with two 24-bit uniforms taken from one draw.
                let r = next()
                let i = min((Int(r >> 40) * vocabularySize) >> 24, vocabularySize - 1)
                let u = Float((r >> 16) & 0xFF_FFFF) * (1.0 / 16_777_216.0)
                let target = u < aliasProbability[i] ? i : Int(alias[i])
                if target == word { continue }
                rows[count] = Int32(target)
                count += 1
            }
            attend_w2v_update(input, neu1e, syn1neg, rows, labels, count, d, alpha, 0)
        }
    }
}
