@testable import AttendEmbeddings
import AttendTensor
import Foundation
import XCTest

func tempFile(_ name: String, _ contents: String? = nil, bytes: [UInt8]? = nil) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-w2v-\(ProcessInfo.processInfo.processIdentifier)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    if let contents { FileManager.default.createFile(atPath: path, contents: contents.data(using: .utf8)) }
    if let bytes { FileManager.default.createFile(atPath: path, contents: Data(bytes)) }
    return path
}

func fixturePath(_ name: String) -> String {
    Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")!.path
}

/// A corpus with two disjoint topics: words co-occur only within their topic.
func topicCorpus(lines: Int, seed: UInt64) -> String {
    let topics = [["cat", "dog", "horse", "cow", "sheep", "goat"], ["red", "blue", "green", "yellow", "purple", "orange"]]
    var g = RandomGenerator(seed: seed)
    return (0..<lines).map { _ in
        let t = topics[Int(g.next() % 2)]
        return (0..<8).map { _ in t[Int(g.next() % UInt64(t.count))] }.joined(separator: " ")
    }.joined(separator: "\n")
}

final class Word2VecTests: XCTestCase {
    func testVocabularyCountsSortsAndFilters() throws {
        let path = tempFile("vocab.txt", "b a b c\nb a\n\nd")
        let v = try Vocabulary.build(corpus: try MappedFile(path), minCount: 2)
        XCTAssertEqual(v.words, ["b", "a"])
        XCTAssertEqual(v.counts, [3, 2])
        XCTAssertEqual(v.index(of: "a"), 1)
        XCTAssertNil(v.index(of: "c"))
        let all = try Vocabulary.build(corpus: try MappedFile(path), minCount: 1, maxSize: 3)
        XCTAssertEqual(all.words, ["b", "a", "c"], "ties keep first-seen order; max size keeps the most frequent")
    }

    func testBadCorporaGiveClearErrors() {
        XCTAssertThrowsError(try Vocabulary.build(corpus: try MappedFile(tempFile("empty.txt", "  \n\n")), minCount: 1)) {
            XCTAssertTrue("\($0)".contains("empty"), "\($0)")
        }
        let bad = tempFile("latin1.txt", bytes: Array("good words\nmore good\ncaf".utf8) + [0xE9] + Array(" ok\n".utf8))
        XCTAssertThrowsError(try Vocabulary.build(corpus: try MappedFile(bad), minCount: 1)) {
            XCTAssertTrue("\($0)".contains("latin1.txt:3"), "\($0)")
            XCTAssertTrue("\($0)".contains("UTF-8"))
        }
        XCTAssertThrowsError(try MappedFile("/nonexistent/corpus.txt")) { XCTAssertTrue("\($0)".contains("/nonexistent/corpus.txt")) }
        XCTAssertThrowsError(try Vocabulary.build(corpus: try MappedFile(tempFile("rare.txt", "a b c")), minCount: 5)) {
            XCTAssertTrue("\($0)".contains("min-count"), "\($0)")
        }
    }

    func testHuffmanCodesArePrefixFreeAndShortForFrequentWords() {
        let counts: [Int64] = [50, 20, 10, 10, 5, 3, 1, 1]
        let (rows, labels, offsets) = Word2Vec.huffmanPaths(counts)
        let codes = (0..<counts.count).map { w in labels[offsets[w]..<offsets[w + 1]].map { $0 == 1 ? "0" : "1" }.joined() }
        for i in codes.indices { for j in codes.indices where i != j { XCTAssertFalse(codes[j].hasPrefix(codes[i]), "\(codes)") } }
        XCTAssertLessThanOrEqual(codes[0].count, codes[7].count)
        // Kraft equality for a full binary tree: sum 2^-len = 1; optimal cost matches the Huffman bound.
        XCTAssertEqual(codes.map { pow(0.5, Double($0.count)) }.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertTrue(rows.allSatisfy { $0 >= 0 && $0 < Int32(counts.count - 1) })
        // The optimal total code length, from Python heapq Huffman merging: 217.
        XCTAssertEqual(zip(counts, codes).map { Int($0) * $1.count }.reduce(0, +), 217)
    }

    func testAliasTableSamplesTheDistribution() {
        let weights: [Double] = [1, 2, 3, 4]
        let table = AliasTable(weights: weights)
        var g = RandomGenerator(seed: 1)
        var hits = [0, 0, 0, 0]
        for _ in 0..<100_000 { hits[table.sample(g.nextUniform(), g.nextUniform())] += 1 }
        for i in 0..<4 { XCTAssertEqual(Double(hits[i]) / 100_000, weights[i] / 10, accuracy: 0.01) }
    }

    func testSkipGramAndCBOWLearnTopicsAndSingleThreadRunsAreReproducible() throws {
        let path = tempFile("topics.txt", topicCorpus(lines: 2000, seed: 7))
        for architecture in [Word2VecConfig.Architecture.skipGram, .cbow] {
            for hs in [false, true] {
                var config = Word2VecConfig()
                config.architecture = architecture
                config.hierarchicalSoftmax = hs
                config.negative = hs ? 0 : 5
                config.dimension = 20
                config.epochs = 3
                config.threads = 1
                config.sample = 0
                let (model, summary) = try Word2Vec.train(corpus: path, config: config, progress: false)
                XCTAssertEqual(summary.wordsProcessed, 3 * 2000 * 8)
                let wv = model.vectors
                let within = try wv.similarity("cat", "dog"), across = try wv.similarity("cat", "blue")
                XCTAssertGreaterThan(within, across + 0.3, "\(architecture) hs=\(hs): within \(within), across \(across)")
                let again = try Word2Vec.train(corpus: path, config: config, progress: false).0
                XCTAssertEqual(again.input.toArray(), model.input.toArray(), "one thread with a seed is reproducible")
            }
        }
    }

    func testHogwildThreadsTrainToo() throws {
        let path = tempFile("topics2.txt", topicCorpus(lines: 4000, seed: 8))
        var config = Word2VecConfig()
        config.dimension = 20
        config.threads = 2
        config.epochs = 2
        let (model, summary) = try Word2Vec.train(corpus: path, config: config, progress: false)
        XCTAssertEqual(summary.wordsProcessed, 2 * 4000 * 8)
        XCTAssertGreaterThan(try model.vectors.similarity("red", "green"), try model.vectors.similarity("red", "sheep") + 0.3)
    }

    /// Training over processes cuts each epoch into rounds of slices and merges the processes' changes after each.
    /// With one process the merge adds nothing, so the rounds must read every sentence once, in the plain run's order,
    /// with the plain run's learning rates: the vectors equal the plain run's up to the rounding of the merge
    /// (w - base + base). A slice read twice or skipped, or a schedule that restarts each round, breaks this.
    func testTrainingInRoundsWithOneProcessFollowsThePlainRun() throws {
        let path = tempFile("topics-rounds.txt", topicCorpus(lines: 1200, seed: 10))
        var config = Word2VecConfig()
        config.dimension = 12
        config.threads = 1
        config.epochs = 2
        config.sample = 0
        let file = try MappedFile(path)
        let vocabulary = try Vocabulary.build(corpus: file, minCount: 1, maxSize: nil)
        let plain = Word2Vec(config: config, vocabulary: vocabulary), rounds = Word2Vec(config: config, vocabulary: vocabulary)
        let plainSummary = plain.train(CorpusSentences(file: file, vocabulary: vocabulary), progress: false)
        var merges = 0
        let summary = try rounds.train(CorpusSentences(file: file, vocabulary: vocabulary),
                                       processes: Word2VecProcesses(process: 0, processes: 1, roundsPerEpoch: 5) { _, _ in merges += 1 },
                                       progress: false)
        XCTAssertEqual(summary.wordsProcessed, plainSummary.wordsProcessed)
        XCTAssertEqual(merges, 2 * 5 * 2, "each of 5 rounds in 2 epochs merges both matrices")
        let (a, b) = (rounds.input.toArray(), plain.input.toArray())
        let worst = zip(a, b).map { abs($0 - $1) }.max()!, scale = b.map(abs).max()!
        XCTAssertLessThan(worst, 1e-4 * scale, "rounds drift from the plain run by \(worst) (largest value \(scale))")
        XCTAssertThrowsError(try rounds.train(CorpusSentences(file: file, vocabulary: vocabulary),
                                              processes: Word2VecProcesses(process: 2, processes: 2, roundsPerEpoch: 1) { _, _ in }, progress: false))
        // Rounds whose slices every thread would look up afresh, beyond any use: refused before training.
        XCTAssertThrowsError(try rounds.train(CorpusSentences(file: file, vocabulary: vocabulary),
                                              processes: Word2VecProcesses(process: 0, processes: 1, roundsPerEpoch: 1 << 21) { _, _ in },
                                              progress: false)) { XCTAssert("\($0)".contains("slices of the corpus"), "\($0)") }
    }

    func testFormatsRoundTripAndStateResumes() throws {
        let path = tempFile("topics3.txt", topicCorpus(lines: 300, seed: 9))
        var config = Word2VecConfig()
        config.dimension = 8
        config.threads = 1
        config.epochs = 1
        let (model, _) = try Word2Vec.train(corpus: path, config: config, progress: false)
        for format in [WordVectors.Format.text, .binary] {
            let out = tempFile("vectors.\(format.rawValue)")
            try model.vectors.save(to: out, format: format)
            let back = try WordVectors.load(from: out)
            XCTAssertEqual(back.words, model.vocabulary.words)
            let tolerance: Float = format == .binary ? 0 : 1e-6
            XCTAssertEqual(back.vectors.shape, model.input.shape)
            for (a, b) in zip(back.vectors.toArray(), model.input.toArray()) { XCTAssertEqual(a, b, accuracy: tolerance) }
        }
        let state = tempFile("state.safetensors")
        try model.saveState(to: state)
        let resumed = try Word2Vec.loadState(from: state)
        XCTAssertEqual(resumed.input.toArray(), model.input.toArray())
        XCTAssertEqual(resumed.outputNegative!.toArray(), model.outputNegative!.toArray())
        XCTAssertEqual(resumed.config, model.config)
        // Training continues from the saved weights with the same schedule and seed.
        let file = try MappedFile(path)
        model.train(CorpusSentences(file: file, vocabulary: model.vocabulary), epochs: 1, progress: false)
        resumed.train(CorpusSentences(file: file, vocabulary: resumed.vocabulary), epochs: 1, progress: false)
        XCTAssertEqual(resumed.input.toArray(), model.input.toArray())
    }

    func testBadVectorFilesGiveClearErrors() {
        func message(_ text: String) -> String {
            do { _ = try WordVectors.load(from: tempFile("bad.vec", text)); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message("hello\n").contains(":1: expected a header"), message("hello\n"))
        XCTAssertTrue(message("2 3\na 1 2 3\nb 1 2\n").contains(":3: expected a word and 3 numbers"), message("2 3\na 1 2 3\nb 1 2\n"))
        XCTAssertTrue(message("1 2\na 1 x\n").contains("'x' is not a number"))
        // A header claiming more vectors than the bytes after it can hold is refused before anything is allocated.
        XCTAssertTrue(message("3 2\na 1 2\n").contains("the header claims 3 vectors of dimension 2"), message("3 2\na 1 2\n"))
        let truncated = tempFile("trunc.bin", bytes: Array("2 4\nab ".utf8) + [UInt8](repeating: 0, count: 10))
        XCTAssertThrowsError(try WordVectors.load(from: truncated, format: .binary)) { XCTAssertTrue("\($0)".contains("the header claims 2 vectors of dimension 4"), "\($0)") }
        XCTAssertThrowsError(try WordVectors.load(from: "/nonexistent.vec"))
    }

    /// Subsampling keeps word w with word2vec.c's probability (sqrt(f / (s T)) + 1) (s T) / f, f its count and T the
    /// corpus size, capped at 1; and negatives are drawn from unigram^0.75 (the alias table's distribution, summed
    /// exactly over its cells).
    func testSubsamplingAndNegativeDistributionAreWord2Vecs() throws {
        let counts: [Int64] = [50_000, 5_000, 400, 30, 3]
        let vocabulary = try Vocabulary(words: ["a", "b", "c", "d", "e"], counts: counts)
        var config = Word2VecConfig()
        config.sample = 1e-3
        config.dimension = 4
        let model = Word2Vec(config: config, vocabulary: vocabulary)
        let threshold = 1e-3 * Double(counts.reduce(0, +))
        for (w, c) in counts.enumerated() {
            let p = min(1, ((Double(c) / threshold).squareRoot() + 1) * threshold / Double(c))
            XCTAssertEqual(Double(model.keep[w]) / 4_294_967_296, p, accuracy: 1e-6, "word \(w)")
        }
        XCTAssertLessThan(model.keep[0], UInt32.max / 2, "the most frequent word is dropped more often than kept")
        let table = model.negativeTable, n = counts.count
        var drawn = [Double](repeating: 0, count: n)
        for i in 0..<n {
            drawn[i] += Double(table.probability[i]) / Double(n)
            drawn[Int(table.alias[i])] += (1 - Double(table.probability[i])) / Double(n)
        }
        let weights = counts.map { Foundation.pow(Double($0), 0.75) }, total = weights.reduce(0, +)
        for i in 0..<n { XCTAssertEqual(drawn[i], weights[i] / total, accuracy: 1e-6, "word \(i)") }
    }

    func testAnalogiesOnHandMadeVectors() throws {
        // Gender along one axis, royalty along another: king - man + woman = queen exactly.
        let words = ["man", "woman", "king", "queen", "apple"]
        let m = Tensor([1, 0, 0.1, -1, 0, 0.1, 1, 1, 0.1, -1, 1, 0.1, 0, 0, 1], shape: [5, 3])
        let wv = WordVectors(words: words, vectors: m)
        XCTAssertEqual(try wv.analogy("man", "king", "woman", k: 1).first?.word, "queen")
        XCTAssertEqual(try wv.analogy("man", "king", "woman", k: 1, method: .mul).first?.word, "queen")
        XCTAssertThrowsError(try wv.analogy("man", "king", "princess")) { XCTAssertTrue("\($0)".contains("'princess' is not in the vocabulary")) }
        let questions = tempFile("questions.txt", ": royalty\nman king woman queen\nMAN KING WOMAN QUEEN\nman king woman unicorn\n: fruit\nking queen man woman\n")
        let r = try wv.evaluateAnalogies(path: questions)
        XCTAssertEqual(r.sections.map(\.name), ["royalty", "fruit"])
        XCTAssertEqual(r.sections[0].correct, 2)
        XCTAssertEqual(r.sections[0].total, 2)
        XCTAssertEqual(r.skipped, 1)
        XCTAssertEqual(r.total, 3)
    }

    func testSpearmanMatchesScipyOnTies() {
        // scipy.stats.spearmanr([1, 2, 2, 3, 5], [2, 1, 3, 3, 4]).statistic == 0.7631578947368421
        XCTAssertEqual(spearman([1, 2, 2, 3, 5], [2, 1, 3, 3, 4]), 0.7631578947368421, accuracy: 1e-12)
    }

    func testReadsGensimVectorsAndAgreesWithGensimQueries() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturePath("gensim_expected.json")))) as! [String: Any]
        let binary = try WordVectors.load(from: fixturePath("gensim_vectors.bin"))
        let text = try WordVectors.load(from: fixturePath("gensim_vectors.txt"))
        XCTAssertEqual(binary.count, expected["count"] as? Int)
        XCTAssertEqual(binary.dimension, expected["dimension"] as? Int)
        XCTAssertEqual(binary.words, text.words)
        XCTAssertEqual(text.vectors.shape, binary.vectors.shape)
        for (a, b) in zip(binary.vectors.toArray(), text.vectors.toArray()) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        let nearest = expected["nearest"] as! [String: [[Any]]]
        XCTAssertEqual(nearest.count, 4)
        for (query, list) in nearest {
            let ours = try binary.nearest(to: query, k: 5)
            XCTAssertEqual(ours.map(\.word), list.map { $0[0] as! String }, query)
            for (o, e) in zip(ours, list) { XCTAssertEqual(Double(o.similarity), e[1] as! Double, accuracy: 1e-5) }
        }
        let pairs = expected["similarity"] as! [[Any]]
        XCTAssertEqual(pairs.count, 3)
        for pair in pairs {
            XCTAssertEqual(Double(try binary.similarity(pair[0] as! String, pair[1] as! String)), pair[2] as! Double, accuracy: 1e-5)
        }
        let add = try binary.analogy("said", "police", "government", k: 3)
        XCTAssertEqual(add.map(\.word), (expected["analogy_add"] as! [[Any]]).map { $0[0] as! String })
        let mul = try binary.analogy("said", "police", "government", k: 3, method: .mul)
        XCTAssertEqual(mul.map(\.word), (expected["analogy_mul"] as! [[Any]]).map { $0[0] as! String })
    }

    /// The analogy evaluator gives gensim's evaluate_word_analogies counts, section by section, on gensim's vectors
    /// with the answers restricted to the first 300 words, upper- and mixed-case questions, an unknown word and words
    /// past the restriction (make_word2vec_fixtures.py writes the questions and gensim's counts).
    func testAnalogyEvaluationMatchesGensim() throws {
        let expected = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturePath("gensim_analogies.json")))) as? [String: Any])
        let restrict = try XCTUnwrap(expected["restrict_vocab"] as? Int)
        let sections = try XCTUnwrap(expected["sections"] as? [[Any]])
        XCTAssertEqual(sections.count, 4, "three sections and gensim's total")
        let vectors = try WordVectors.load(from: fixturePath("gensim_vectors.bin"))
        let ours = try vectors.evaluateAnalogies(path: fixturePath("gensim_analogies.txt"), restrictTo: restrict)
        XCTAssertEqual(ours.sections.map(\.name), sections.dropLast().map { $0[0] as? String })
        for (section, theirs) in zip(ours.sections, sections) {
            XCTAssertEqual([section.correct, section.total], [theirs[1] as? Int, theirs[2] as? Int], section.name)
        }
        XCTAssertEqual([ours.correct, ours.total], [sections[3][1] as? Int, sections[3][2] as? Int], "total")
        XCTAssertEqual(ours.accuracy, try XCTUnwrap(expected["accuracy"] as? Double), accuracy: 1e-12)
        XCTAssertEqual(ours.skipped, 3, "the unknown word and the two words past the restriction")
        XCTAssertGreaterThan(ours.correct, 0)
    }

    func testWordSimilarityEvaluationMatchesGensim() throws {
        let wordsim = FileManager.default.currentDirectoryPath + "/.cache/assets/gensim-test-data/wordsim353.tsv"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: wordsim), "run scripts/fetch-assets.sh gensim-test-data")
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturePath("gensim_expected.json")))) as! [String: Any]
        let r = try WordVectors.load(from: fixturePath("gensim_vectors.bin")).evaluateSimilarity(path: wordsim)
        XCTAssertEqual(r.spearman, expected["wordsim353_spearman"] as! Double, accuracy: 1e-4)
    }
}
