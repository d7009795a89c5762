import ArgumentParser
import AttendDatasets
import AttendModels
import AttendPlots
import AttendTensor
import Foundation

struct Seq2SeqCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seq2seq",
        abstract: "Train an encoder-decoder Transformer to turn human-written dates into ISO dates; report exact match. With --tasks, T5's text-to-text multitask training.")
    @Option var steps = 3000
    @Option(name: .customLong("train-size")) var trainSize = 20_000
    @Option(name: .customLong("test-size")) var testSize = 2000
    @Option(name: .customLong("batch-size")) var batchSize = 64
    @Option(name: .customLong("lr")) var learningRate: Float = 2e-3
    @Option var seed: UInt64 = 1
    @Option(help: "transformer, gru-attention or gru (no attention).") var model: Architecture = .transformer
    @Option(help: "Also decode the held-out set by beam search with this many beams (1: greedy only).") var beams = 1
    @Option(name: .customLong("attention-map"), help: "Write the cross-attention map of one example as PNG (rows: output characters, columns: input characters).")
    var attentionMap: String?
    @Option(name: .customLong("loss-curve"), help: "Write the training loss (every 250 steps) as a PNG.") var lossCurve: String?
    @Option(help: "T5-style multitask: comma-separated tasks from date, number, reverse, each source announced by its prefix (\"date to iso: \", \"number to words: \", \"reverse: \"); one model, one loss.")
    var tasks: String?
    @Flag(help: "With --tasks: also train one model per task, each for steps / (number of tasks), the same total steps, and compare.") var separate = false
    @Option(help: "Model width (multitask).") var width = 64
    @Option(help: "Encoder and decoder layers each (multitask).") var layers = 2

    func validate() throws {
        try Require.count(steps, "--steps", 1...Require.stepLimit)
        try Require.count(trainSize, "--train-size", 1...10_000_000)
        try Require.count(testSize, "--test-size", 1...10_000_000)
        try Require.count(batchSize, "--batch-size", 1...65_536)
        try Require.learningRate(learningRate, "--lr")
        try Require.count(beams, "--beams", 1...64)
        try Require.count(width, "--width", 8...4_096)
        guard width % 4 == 0 else { throw ValidationError("--width must be a multiple of 4, got \(width)") }
        try Require.count(layers, "--layers", 1...64)
        if separate && tasks == nil { throw ValidationError("--separate needs --tasks") }
    }

    static let taskNames: [String: TextTask] = ["date": .dateToISO, "number": .numberToWords, "reverse": .reverseWords]

    func runMultitask(_ list: String) throws {
        let chosen = try list.split(separator: ",").map { name -> TextTask in
            guard let t = Seq2SeqCommand.taskNames[name.trimmingCharacters(in: .whitespaces)] else {
                throw ValidationError("--tasks: '\(name)' is not a task (date, number, reverse)")
            }
            return t
        }
        guard Set(chosen).count == chosen.count else { throw ValidationError("--tasks: a task is listed twice") }
        var config = Seq2SeqConfig()
        (config.width, config.encoderLayers, config.decoderLayers, config.maxLength) = (width, layers, layers, 72)
        func log(_ step: Int, _ loss: Float) { print(String(format: "step %d: loss %.4f", step, loss)) }
        let multi = try Seq2SeqTraining.multitask(tasks: chosen, config: config, steps: steps, trainPerTask: trainSize, testPerTask: testSize,
                                                  batchSize: batchSize, learningRate: learningRate, seed: seed, onLog: log)
        print("one model for \(chosen.count) tasks (\(multi.parameters) parameters), \(steps) steps, \(String(format: "%.1f", multi.seconds)) s of training")
        var single: [TextTask: Double] = [:]
        if separate {
            for task in chosen {
                let r = try Seq2SeqTraining.multitask(tasks: [task], config: config, steps: max(1, steps / chosen.count), trainPerTask: trainSize,
                                                      testPerTask: testSize, batchSize: batchSize, learningRate: learningRate, seed: seed, onLog: { _, _ in })
                single[task] = r.exactMatch[task]
            }
        }
        print("exact match on \(testSize) held-out pairs per task:")
        for task in chosen {
            let name = task.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
            let line = "  \(name) multitask " + String(format: "%6.2f%%", 100 * multi.exactMatch[task]!)
            print(line + (single[task].map { String(format: " | one model per task (%d steps) %6.2f%%", max(1, steps / chosen.count), 100 * $0) } ?? ""))
        }
    }

    enum Architecture: String, ExpressibleByArgument { case transformer, gruAttention = "gru-attention", gru }

    func run() throws {
        if let tasks { return try runMultitask(tasks) }
        let train = HumanDates.pairs(count: trainSize, seed: seed)
        let test = HumanDates.pairs(count: testSize, seed: seed &+ 1_000_003)
        let vocabulary = Seq2SeqVocabulary(texts: train.flatMap { [$0.source, $0.target] })
        var g = RandomGenerator(seed: seed)
        var curve: [(x: Double, y: Double)] = []
        func log(_ step: Int, _ loss: Float) {
            print(String(format: "step %d: loss %.4f", step, loss))
            curve.append((Double(step), Double(loss)))
            if let lossCurve { try? LineChart(series: [.init(points: curve, color: (31, 119, 180))]).render().writePNG(to: lossCurve) }
        }
        if self.model != .transformer {
            let rnn = GRUSeq2Seq(sourceVocabulary: vocabulary.count, targetVocabulary: vocabulary.count, attention: self.model == .gruAttention, generator: &g)
            print("\(self.model.rawValue): \(rnn.parameterCount) parameters; \(train.count) training and \(test.count) held-out pairs")
            let r = try Seq2SeqTraining.runGRU(model: rnn, vocabulary: vocabulary, train: train.map { ($0.source, $0.target) },
                                               test: test.map { ($0.source, $0.target) }, steps: steps, batchSize: batchSize, seed: seed, onLog: log)
            for e in r.examples { print("  \(e.source) -> \(e.predicted) (expected \(e.target))") }
            print(String(format: "exact match on held-out dates: %.2f%% (training %.1f s)", 100 * r.exactMatch, r.seconds))
            try reportBeams(rnn, vocabulary: vocabulary, test: test, greedy: r.exactMatch)
            return
        }
        let model = Seq2SeqTransformer(sourceVocabulary: vocabulary.count, targetVocabulary: vocabulary.count, config: Seq2SeqConfig(), generator: &g)
        print("\(model.parameterCount) parameters; \(train.count) training and \(test.count) held-out pairs; e.g. \"\(train[0].source)\" -> \(train[0].target)")
        let report = try Seq2SeqTraining.run(model: model, vocabulary: vocabulary, train: train.map { ($0.source, $0.target) },
                                             test: test.map { ($0.source, $0.target) }, steps: steps, batchSize: batchSize,
                                             learningRate: learningRate, seed: seed, onLog: log)
        for e in report.examples { print("  \(e.source) -> \(e.predicted) (expected \(e.target))") }
        print(String(format: "exact match on held-out dates: %.2f%% (training %.1f s)", 100 * report.exactMatch, report.seconds))
        try reportBeams(model, vocabulary: vocabulary, test: test, greedy: report.exactMatch)
        if let attentionMap {
            let source = test[0].source
            let (weights, predicted) = try Seq2SeqTraining.crossAttention(model: model, vocabulary: vocabulary, source: source)
            try Heatmap.render(weights, cell: 20, rowLabels: predicted.map { String($0) }, columnLabels: source.map { String($0) },
                               title: "cross-attention, last decoder layer").writePNG(to: attentionMap)
            print("cross-attention of \"\(source)\" -> \(predicted) written to \(attentionMap) (rows: output, columns: input)")
        }
    }

    func reportBeams(_ model: Seq2SeqModel, vocabulary: Seq2SeqVocabulary, test: [(source: String, target: String)], greedy: Double) throws {
        guard beams > 1 else { return }
        let started = Date()
        let (accuracy, _) = try Seq2SeqDecoding.exactMatch(model, vocabulary: vocabulary, test: test.map { ($0.source, $0.target) },
                                                           beams: beams, maxLength: 12)
        print(String(format: "exact match with %d beams: %.2f%% (greedy %.2f%%; decoding %.1f s)", beams, 100 * accuracy, 100 * greedy,
                     Date().timeIntervalSince(started)))
    }
}
