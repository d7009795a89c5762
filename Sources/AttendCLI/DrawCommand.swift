import ArgumentParser
import AttendDatasets
import AttendModels
import AttendNN
import AttendTensor
import AttendVision
import Foundation

struct DrawCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "draw",
        abstract: "Draw a picture from text: a CLIP text embedding through a decoder trained on Fashion-MNIST and digits.",
        subcommands: [DrawPictureCommand.self, DrawTrainCommand.self, DrawEvaluateCommand.self],
        defaultSubcommand: DrawPictureCommand.self)
}

/// The CLIP model whose text embeddings the decoder reads, and the decoder.
struct DrawModelOptions: ParsableArguments {
    @Option(help: "The CLIP model whose text embeddings the decoder reads.") var clip = "models/clip.safetensors"
    @Option(help: "The decoder (from attend draw train).") var decoder = "models/draw.safetensors"
    @OptionGroup var towers: CLIPTowerOptions
}

struct DrawPictureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "picture", abstract: "Draw what a text describes (PNG).")
    @OptionGroup var models: DrawModelOptions
    @Option(help: "Side of the written picture in pixels (the decoder draws 28 x 28; 4-1024).") var size = 112
    @Option(name: .shortAndLong, help: "Where to write the picture (.png).") var output: String
    @Argument(help: "What to draw, e.g. \"an ankle boot\".") var text: String

    func validate() throws {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("give a non-empty text") }
        guard (4...1024).contains(size) else { throw ValidationError("--size must be 4...1024, got \(size)") }
        guard output.lowercased().hasSuffix(".png") else { throw ValidationError("--output must end in .png") }
    }

    func run() throws {
        try OutputPath.check(output, isNotInput: [models.clip, models.decoder])
        let clip = try models.towers.load(models.clip)
        let decoder = try TextToImageDecoder.load(models.decoder)
        guard decoder.config.embeddingDimension == clip.config.embeddingDimension else {
            throw AttendError("\(models.decoder) reads \(decoder.config.embeddingDimension)-wide embeddings, \(models.clip) makes \(clip.config.embeddingDimension)")
        }
        try decoder.draw(clip.embedTexts([text]))[0].resized(width: size, height: size, filter: .bilinear).write(to: output)
        print("wrote \(output)")
    }
}

/// Fashion-MNIST and digits (enlarged to 28 x 28) with their captions, as pictures [N, 784] and caption lists.
func drawingData(fashionDirectory: String, digitsFile: String, fashionLimit: Int, train: Bool) throws -> [(CaptionedImages, ClassCaptions)] {
    var sets: [(CaptionedImages, ClassCaptions)] = []
    let fashion = try ImageDataset.fashionMNIST(directory: fashionDirectory, train: train)
    sets.append((CaptionedImages.fashionMNIST(fashion, limit: fashionLimit), .fashionMNIST))
    let (digits, _) = try LabelledData.digits.load(fashionDirectory: fashionDirectory, digitsFile: digitsFile, train: train)
    sets.append((CaptionedImages.labelled(digits, captioner: .digits), .digits))
    return sets
}

struct DrawTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train the decoder: each picture rebuilt from its caption's CLIP text embedding.")
    @OptionGroup var models: DrawModelOptions
    @Option(name: .customLong("fashion-mnist"), help: "Folder with Fashion-MNIST's IDX files.") var fashionDirectory = FashionMNIST.defaultDirectory
    @Option(name: .customLong("digits"), help: "scikit-learn's digits.csv.gz.") var digitsFile = ImageAssets.root + "/scikit-learn-data/digits.csv.gz"
    @Option(help: "Fashion-MNIST training pictures to use.") var limit = 20000
    @Option(help: "Optimizer steps.") var steps = 2000
    @Option(name: .customLong("batch-size"), help: "Pictures per step (1-65536).") var batchSize = 128
    @Option(name: .customLong("learning-rate"), help: "Peak learning rate.") var learningRate: Float = 2e-3
    @Option(name: .shortAndLong, help: "Where to write the decoder (.safetensors).") var output: String

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1, got \(limit)") }
        guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1...1000000, got \(steps)") }
        guard (1...65_536).contains(batchSize) else { throw ValidationError("--batch-size must be 1...65536, got \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 1 else { throw ValidationError("--learning-rate must be in (0, 1], got \(learningRate)") }
        guard output.hasSuffix(".safetensors") else { throw ValidationError("--output must end in .safetensors") }
    }

    func run() throws {
        try OutputPath.check(output, isNotInput: [models.clip])
        let clip = try models.towers.load(models.clip)
        var config = TextToImageConfig()
        config.embeddingDimension = clip.config.embeddingDimension
        let decoder = TextToImageDecoder(config)
        var pixels: [Float] = [], captionOf: [[Int]] = [], captions: [String] = [], index: [String: Int] = [:]
        for (set, _) in try drawingData(fashionDirectory: fashionDirectory, digitsFile: digitsFile, fashionLimit: limit, train: true) {
            for (k, source) in set.sourceIndices.enumerated() {
                var picture = try set.image(source)
                if picture.width != config.side { picture = picture.resized(width: config.side, height: config.side, filter: .bilinear, roundToLevels: false) }
                pixels += picture.pixels
                captionOf.append(set.captions[k].map { c in index[c] ?? { index[c] = captions.count; captions.append(c); return captions.count - 1 }() })
            }
        }
        let n = captionOf.count
        let embeddings = clip.embedTexts(captions)
        let started = Date()
        let trainer = try decoder.train(pictures: Tensor(pixels, shape: [n, config.side * config.side]), captionEmbeddings: embeddings,
                                        captionOf: captionOf, steps: steps, batchSize: batchSize, learningRate: learningRate,
                                        progress: ProgressBar(total: steps, label: "decoder", unit: "step"))
        try decoder.saveModel(to: output, metadata: ["clip": models.clip, "command": CommandLine.arguments.dropFirst().joined(separator: " ")])
        print(String(format: "%d pictures, %d captions; %d steps in %.1f s; loss %.4f (last 20 steps)", n, captions.count, steps,
                     Date().timeIntervalSince(started), trainer.recentLoss(20)))
        print("wrote \(output)")
    }
}

struct DrawEvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Draw every class from its prompts and ask CLIP's image tower what each drawing shows; a gallery PNG.")
    @OptionGroup var models: DrawModelOptions
    @Option(help: "Write the drawings, a row per data set, here (.png).") var gallery: String?
    @Option(help: "The CLIP model that judges the Fashion-MNIST drawings (default: --clip).") var judge: String?
    @Option(name: .customLong("digits-judge"), help: "The CLIP model that judges the digit drawings (default: --clip); one fine-tuned on digits knows them.") var digitsJudge: String?

    func validate() throws {
        if let gallery, !gallery.lowercased().hasSuffix(".png") { throw ValidationError("--gallery must end in .png") }
    }

    func run() throws {
        if let gallery { try OutputPath.check(gallery, isNotInput: [models.clip, models.decoder]) }
        let clip = try models.towers.load(models.clip)
        let decoder = try TextToImageDecoder.load(models.decoder)
        var rows: [[Image]] = []
        for captioner in [ClassCaptions.fashionMNIST, ClassCaptions.digits] {
            let judgePath = (captioner.name == "digits" ? digitsJudge : judge) ?? models.clip
            let judging = judgePath == models.clip ? clip : try models.towers.load(judgePath)
            let prompts = captioner.classPrompts
            let classes = judging.classEmbeddings(prompts)
            var right = 0, total = 0, row: [Image] = []
            for (c, group) in prompts.enumerated() {
                let drawings = decoder.draw(clip.embedTexts(group))
                row.append(drawings[0])
                let p = withNoGrad { judging.embedImages(drawings).matmul(classes.transposed(0, 1)) }.toArray()
                let k = prompts.count
                for d in 0..<drawings.count {
                    if (0..<k).max(by: { p[d * k + $0] < p[d * k + $1] }) == c { right += 1 }
                    total += 1
                }
            }
            rows.append(row)
            print(String(format: "%@: %d of %d drawings (%d classes x %d prompts) are classified by CLIP (%@) as the class asked for (%.1f%%)",
                         captioner.name, right, total, prompts.count, prompts[0].count, judgePath, 100 * Double(right) / Double(total)))
        }
        if let gallery {
            let cell = 56, columns = rows.map(\.count).max() ?? 1
            var pixels = [Float](repeating: 1, count: 3 * rows.count * cell * columns * cell)
            let width = columns * cell, height = rows.count * cell
            for (r, row) in rows.enumerated() {
                for (c, picture) in row.enumerated() {
                    let big = picture.resized(width: cell - 4, height: cell - 4, filter: .bilinear)
                    for y in 0..<(cell - 4) { for x in 0..<(cell - 4) { for ch in 0..<3 {
                        pixels[ch * width * height + (r * cell + 2 + y) * width + c * cell + 2 + x] = big.pixels[y * (cell - 4) + x]
                    } } }
                }
            }
            try Image(width: width, height: height, channels: 3, pixels: pixels).write(to: gallery)
            print("wrote \(gallery)")
        }
    }
}
