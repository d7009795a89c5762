// Training the vision-language projector on captioned pictures (the language model frozen), and scoring its
// descriptions: the share that name the picture's class and no other.

import AttendLM
import AttendNN
import AttendTensor
import AttendVision
import Foundation

/// How the projector is trained.
public struct VisionLanguageTrainingConfig: Codable, Equatable {
    public var steps = 300
    public var batchSize = 8
    public var learningRate: Float = 1e-3
    public var warmupSteps = 20
    public var seed: UInt64 = 1

    public init() {}

    public func validate() throws {
        guard (1...1_000_000).contains(steps) else { throw AttendError("steps must be 1...1000000, got \(steps)") }
        guard (1...256).contains(batchSize) else { throw AttendError("batch size must be 1...256, got \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 1 else { throw AttendError("learning rate must be in (0, 1], got \(learningRate)") }
        guard warmupSteps >= 0 else { throw AttendError("warmup steps must be >= 0, got \(warmupSteps)") }
    }
}

extension ClassCaptions {
    /// What the assistant answers about a picture: the class by its first name (with the shade where the captions
    /// name one), in three phrasings. One name per class keeps the answers unambiguous to score.
    public func answers(pixels: [Float], label: Int) -> [String] {
        let shade = namesShade ? ClassCaptions.shade(pixels: pixels) : nil
        let phrase = ClassCaptions.withArticle(shade.map { "\($0) \(names[label][0])" } ?? names[label][0])
        return [phrase.prefix(1).uppercased() + phrase.dropFirst() + ".", "This is \(phrase).", "A photo of \(phrase)."]
    }

    /// The classes whose names `text` mentions, longest names first so that "t-shirt" is not also read as "shirt"
    /// and "ankle boot" not as "boot" (words are matched whole, case aside).
    public func classesNamed(in text: String) -> Set<Int> {
        var rest = " " + text.lowercased().map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : " " } + " "
        var found: Set<Int> = []
        let all = names.enumerated().flatMap { c, list in list.map { (c, " \($0) ") } }.sorted { $0.1.count > $1.1.count }
        for (c, name) in all where rest.contains(name) {
            found.insert(c)
            rest = rest.replacingOccurrences(of: name, with: " | ")
        }
        return found
    }
}

/// How well descriptions name the pictures' classes.
public struct DescriptionScore: Codable {
    /// Pictures described.
    public var count: Int
    /// Share naming the right class and no other.
    public var accuracy: Double
    /// Seconds to encode a picture (image encoder and projector), median.
    public var encodeSeconds: Double
    /// Seconds from the prompt to the first token, median.
    public var firstTokenSeconds: Double
    /// Generated tokens per second after the first, over all descriptions.
    public var tokensPerSecond: Double
    /// Every picture's (label, description) pair, in order.
    public var samples: [[String]]
}

extension VisionLanguageModel {
    /// Image cells [cells, 1280] for every picture in `data`.
    public func cells(of data: CaptionedImages, showProgress: Bool = false) throws -> [Tensor] {
        let bar = showProgress ? ProgressBar(total: data.count, label: "image cells", unit: "image") : nil
        return try data.sourceIndices.map { i in
            defer { bar?.advance() }
            return imageCells(try data.image(i))
        }
    }

    /// Trains the projector on `data`'s pictures (cells from `cells(of:)`) paired with `answers[i]` (one drawn per
    /// step). The language model's float weights are loaded if it was quantized (gradients pass through it).
    @discardableResult
    public func train(on cells: [Tensor], answers: [[String]], config training: VisionLanguageTrainingConfig,
                      prompt: String? = nil, progress: ProgressBar? = nil) throws -> Trainer {
        try training.validate()
        guard !cells.isEmpty, cells.count == answers.count, answers.allSatisfy({ !$0.isEmpty }) else {
            throw AttendError("projector training needs pictures with at least one answer each (\(cells.count) pictures, \(answers.count) answer lists)")
        }
        guard let model = language.model as? LlamaModel else { throw AttendError("\(language.source): the projector trains on Llama-family models only") }
        if model.isQuantized { try model.loadFloatWeights() }
        model.eval()
        for (_, t) in model.namedTensors() { t.requiresGrad = false }   // frozen: only the projector's gradients are made
        let examples = try answers.map { try $0.map { try example(prompt: prompt, answer: $0) } }
        let optimizer = Adam(parameters: projector.namedParameters(), learningRate: training.learningRate, weightDecay: 0, decoupledWeightDecay: true)
        let schedule = WarmupCosineSchedule(peak: training.learningRate, minimum: training.learningRate / 10,
                                            warmupSteps: training.warmupSteps, totalSteps: training.steps)
        let trainer = Trainer(model: projector, optimizer: optimizer, config: TrainerConfig(steps: training.steps), schedule: { schedule($0) })
        try trainer.run(progress: progress, rateUnit: "pictures") { step, _ in
            var generator = RandomGenerator(seed: training.seed &* 0x9E37_79B9 &+ UInt64(step))
            let batch = (0..<training.batchSize).map { _ -> (cells: Tensor, example: VisionLanguageExample) in
                let i = Int(generator.next() % UInt64(cells.count))
                return (cells[i], examples[i][Int(generator.next() % UInt64(examples[i].count))])
            }
            return TrainingLoss(loss(batch), items: batch.count)
        }
        return trainer
    }

    /// Describes each picture (greedy, at most `maxTokens`) and scores whether the description names its class
    /// (`labels[i]` in `captioner`) and no other. With `withoutImage`, the same prompt goes to the language model with
    /// the picture left out (the placeholder removed): the baseline of a model that cannot see.
    public func scoreDescriptions(_ pictures: [Image], labels: [Int], captioner: ClassCaptions, prompt: String? = nil,
                                  maxTokens: Int = 24, withoutImage: Bool = false, progress: ProgressBar? = nil) throws -> DescriptionScore {
        var right = 0, encode: [Double] = [], first: [Double] = [], tokens = 0, generating = 0.0
        var samples: [[String]] = []
        var options = SamplingOptions()
        options.maxTokens = maxTokens
        for (picture, label) in zip(pictures, labels) {
            let result: GenerationResult
            if withoutImage {
                let text = (prompt ?? config.defaultPrompt).replacingOccurrences(of: VisionLanguageModel.placeholder, with: "")
                let ids = language.tokenizer.encode(template.render([("system", config.system), ("user", text)]))
                result = try Generation.generate(model: language.model, tokenizer: language.tokenizer, prompt: ids, options: options)
            } else {
                let t = Date()
                let cells = imageCells(picture)
                _ = withNoGrad { projector(cells) }
                encode.append(Date().timeIntervalSince(t))
                result = try describe(cells: cells, prompt: prompt, options: options)
            }
            first.append(result.promptSeconds)
            tokens += max(result.tokens.count - 1, 0)
            generating += result.generationSeconds
            if captioner.classesNamed(in: result.text) == [label] { right += 1 }
            samples.append([captioner.names[label][0], result.text])
            progress?.advance()
        }
        func median(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.sorted()[v.count / 2] }
        return DescriptionScore(count: pictures.count, accuracy: Double(right) / Double(max(pictures.count, 1)),
                                encodeSeconds: median(encode), firstTokenSeconds: median(first),
                                tokensPerSecond: generating > 0 ? Double(tokens) / generating : .nan, samples: samples)
    }
}

extension VisionLanguageModel {
    /// Everyday pictures for the projector, taught by the ImageNet classifier that heads the image encoder (the
    /// multimodal counterpart of `CLIPTeacher`): each crop the classifier names with at least `minimumConfidence`
    /// becomes a picture answered by that class's first name; and, with `prototypes`, each of the 1,000 classes gets
    /// one picture whose every cell is the class's prototype feature (`CLIPTeacher.prototypes`, scaled to the crops'
    /// mean cell norm), answered the same way. Returns cells and answers to add to `train(on:answers:)`.
    public func classifierExamples(crops: CaptionedImages, labels: ImageNetLabels, minimumConfidence: Float = 0.5,
                                   prototypes: Bool = true, showProgress: Bool = false) throws -> (cells: [Tensor], answers: [[String]]) {
        func answers(_ c: Int) -> [String] {
            let name = String(labels.names[c].split(separator: ",").first ?? "").trimmingCharacters(in: .whitespaces)
            let phrase = ClassCaptions.withArticle(name)
            return [phrase.prefix(1).uppercased() + phrase.dropFirst() + ".", "This is \(phrase).", "A photo of \(phrase)."]
        }
        let cropCells = try cells(of: crops, showProgress: showProgress)
        let classifier = imageEncoder.classifier
        var outCells: [Tensor] = [], outAnswers: [[String]] = []
        for cell in cropCells {
            // The pooled feature the classifier reads: the whole picture's cell when there is one, else the grid's mean.
            let mean = withNoGrad {
                config.wholePictureSize == nil ? cell.mean(axes: [0], keepDims: true) : cell.slice(axis: 0, start: cell.shape[0] - 1, length: 1)
            }
            let p = withNoGrad { classifier(mean).softmax(axis: -1) }.toArray()
            let best = p.indices.max { p[$0] < p[$1] }!
            if p[best] >= minimumConfidence { outCells.append(cell); outAnswers.append(answers(best)) }
        }
        if prototypes, !cropCells.isEmpty {
            let table = CLIPTeacher.prototypes(classifier, meanNormOf: Tensor.concat(cropCells, axis: 0))
            let cellsPerPicture = cropCells[0].shape[0], d = table.shape[1]
            for c in 0..<table.shape[0] {
                let row = table.slice(axis: 0, start: c, length: 1).reshape([1, d])
                outCells.append(Tensor.concat(Array(repeating: row, count: cellsPerPicture), axis: 0))
                outAnswers.append(answers(c))
            }
        }
        return (outCells, outAnswers)
    }
}
