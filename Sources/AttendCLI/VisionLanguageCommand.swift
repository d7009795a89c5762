import ArgumentParser
import AttendDatasets
import AttendLM
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import AttendVision
import Foundation

/// Where the multimodal model's parts are: the projector file, the image encoder, the language model.
struct VisionLanguageOptions: ParsableArguments {
    @Option(help: "A projector from attend vlm train.") var projector = "models/vlm.safetensors"
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint (the image encoder).") var efficientnet: String?
    @Option(name: .customLong("language-model"), help: "The language model the projector was trained for (GGUF file or short name).") var languageModel = "SmolLM2-135M-Instruct"
    @Option(help: "A folder with imagenet_synsets.txt and imagenet_synset_to_lemma.txt (for a projector that says the classifier's classes in words).") var labels: String?

    func loadParts() throws -> (EfficientNet, LoadedLanguageModel) { try loadVisionLanguageParts(efficientnet: efficientnet, languageModel: languageModel) }

    func load() throws -> VisionLanguageModel {
        let (encoder, language) = try loadParts()
        return try VisionLanguageModel.load(projector, imageEncoder: encoder, language: language,
                                            labels: { try ImageNetLabels.load(folder: labels ?? ImageAssets.imageNetLabels) })
    }
}

/// The image encoder and the language model (its float32 path: the projector's vectors are not 8-bit quantized).
func loadVisionLanguageParts(efficientnet: String?, languageModel: String) throws -> (EfficientNet, LoadedLanguageModel) {
    (try EfficientNet.load(efficientnet ?? ImageAssets.efficientNetLite0), try ModelLocator.languageModel(languageModel, int8Activations: false))
}

func readPicture(_ path: String) throws -> Image {
    let image = try Image.read(path)
    try image.requireAspectRatio(source: path)
    return image
}

struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Describe pictures with the multimodal LM (EfficientNet-Lite0 -> projector -> SmolLM2).",
        discussion: "The prompt holds <image> where the picture goes (default: \"<image>\\nWhat is in the picture?\").")
    @OptionGroup var parts: VisionLanguageOptions
    @Option(help: "The user's message, with <image> where the picture goes.") var prompt: String?
    @Option(name: .customLong("max-tokens"), help: "Tokens to generate at most (1-2048).") var maxTokens = 48
    @Argument(help: "Pictures (PNG or JPEG).") var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give one or more pictures") }
        guard (1...2048).contains(maxTokens) else { throw ValidationError("--max-tokens must be 1...2048, got \(maxTokens)") }
        if let prompt, prompt.components(separatedBy: VisionLanguageModel.placeholder).count != 2 {
            throw ValidationError("--prompt must hold \(VisionLanguageModel.placeholder) once, where the picture goes")
        }
    }

    func run() throws {
        let vlm = try parts.load()
        var options = SamplingOptions()
        options.maxTokens = maxTokens
        var failures = 0
        for path in images {
            do {
                let picture = try readPicture(path)
                if images.count > 1 { print(path + ": ", terminator: "") }
                _ = try vlm.describe(picture, prompt: prompt, options: options) { print($0, terminator: ""); fflush(stdout) }
                print()
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("\(error)\n".utf8))
            }
        }
        if failures > 0 { throw AttendError("\(failures) of \(images.count) pictures could not be described") }
    }
}

struct VLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vlm",
        abstract: "Train and score the multimodal LM's projector (the language model stays frozen).",
        subcommands: [VLMTrainCommand.self, VLMEvaluateCommand.self])
}

struct VLMTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the projector on captioned pictures, the loss on the answer's tokens only.")
    @OptionGroup var data: CLIPDataOptions   // --limit defaults to 5,000 pictures here
    @Option(help: "Optimizer steps.") var steps = 300
    @Option(name: .customLong("batch-size"), help: "Pictures per step (1-256).") var batchSize = 8
    @Option(name: .customLong("learning-rate"), help: "Peak learning rate (AdamW, warmup then cosine).") var learningRate: Float = 1e-3
    @Option(name: .customLong("image-size"), help: "Side the image encoder sees (a multiple of 32; 96 gives 3 x 3 cells).") var imageSize = 96
    @Option(name: .customLong("whole-picture-size"), help: "Also give the whole picture, seen at this side (32-1024; 224 is the classifier's), as one more cell.") var wholePictureSize: Int?
    @Option(name: .customLong("projector-hidden"), help: "Hidden width of the projector.") var projectorHidden = 512
    @Option(help: "Seed of the initialization and the batches.") var seed: UInt64 = 1
    @Option(name: .customLong("loss-curve"), help: "Write the loss curve here (PNG).") var lossCurve: String?
    @Option(help: "Also train on blurred copies of the first N labelled pictures (0-1000000), each by a Gaussian of a random standard deviation from 0.5 pixels to --max-blur: a drawing or an enlarged thumbnail is softer than any data-set picture.") var blurred = 0
    @Option(name: .customLong("max-blur"), help: "With --blurred, the largest standard deviation in pixels (0.5-10; default 2).") var maxBlur: Double?
    @Option(parsing: .upToNextOption, help: "Photos (or folders) whose crops the ImageNet classifier names with confidence, as everyday examples.") var photos: [String] = []
    @Option(name: .customLong("crops-per-photo"), help: "Random square crops per photo (1-100000).") var cropsPerPhoto = 100
    @Option(name: .customLong("min-confidence"), help: "The classifier's probability a crop's answer needs (0-1).") var minConfidence: Float = 0.5
    @Option(parsing: .upToNextOption, help: "Pictures with captions beside them (folders searched for PNG/JPEG files with a .txt of the same name, e.g. Tux Paint's stamps in /usr/share/tuxpaint/stamps); each is answered by its caption.") var captioned: [String] = []
    @Option(help: "Pictures made of each captioned one: on white, then at random sizes and places on random backdrops (1-1000).") var variants = 4
    @Option(parsing: .upToNextOption, help: "Photos (or folders) whose random squares serve as backdrops of the captioned pictures.") var backgrounds: [String] = []
    @Flag(name: .customLong("classifier-words"), help: "Add to the projector the ImageNet classifier's words for each cell (its class probabilities weighting the language model's embeddings of the class names; frozen), the MLP's last layer starting at zero.") var classifierWords = false
    @Option(help: "With --classifier-words, how much the classifier's logits are scaled (0-100].") var sharpness: Float = 1
    @Flag(name: .customLong("top-class-name"), help: "With --classifier-words and --whole-picture-size, give the whole picture's words as the classifier's most likely class name, token by token, rather than one mean vector (a mean of a name's tokens is no word). With --from, the projector is trained on with its words given so.") var topClassName = false
    @Flag(name: .customLong("no-prototypes"), help: "Leave out the one synthetic picture per ImageNet class.") var noPrototypes = false
    @Option(help: "A folder with imagenet_synsets.txt and imagenet_synset_to_lemma.txt.") var labels: String?
    @Option(name: .shortAndLong, help: "Where to write the projector (.safetensors).") var output: String
    @Option(help: "Start from this projector (from attend vlm train) instead of random weights; the projector options must be the ones it was trained with.") var from: String?
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint (the image encoder).") var efficientnet: String?
    @Option(name: .customLong("language-model"), help: "The language model (GGUF file or short name).") var languageModel = "SmolLM2-135M-Instruct"

    func validate() throws {
        guard output.hasSuffix(".safetensors") else { throw ValidationError("--output must end in .safetensors") }
        guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1...1000000, got \(steps)") }
        guard (1...256).contains(batchSize) else { throw ValidationError("--batch-size must be 1...256, got \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 1 else { throw ValidationError("--learning-rate must be in (0, 1], got \(learningRate)") }
        guard (32...1024).contains(imageSize), imageSize % 32 == 0 else { throw ValidationError("--image-size must be a multiple of 32 in 32...1024, got \(imageSize)") }
        if let wholePictureSize, !(32...1024).contains(wholePictureSize) { throw ValidationError("--whole-picture-size must be 32...1024, got \(wholePictureSize)") }
        guard (1...16384).contains(projectorHidden) else { throw ValidationError("--projector-hidden must be 1...16384, got \(projectorHidden)") }
        guard data.labelled != nil else { throw ValidationError("--data must be fashion-mnist or digits (answers are written from the classes)") }
        if let lossCurve, !lossCurve.lowercased().hasSuffix(".png") { throw ValidationError("--loss-curve must end in .png") }
        guard (1...100_000).contains(cropsPerPhoto) else { throw ValidationError("--crops-per-photo must be 1...100000, got \(cropsPerPhoto)") }
        guard minConfidence.isFinite, (0...1).contains(minConfidence) else { throw ValidationError("--min-confidence must be 0...1, got \(minConfidence)") }
        guard sharpness.isFinite, sharpness > 0, sharpness <= 100 else { throw ValidationError("--sharpness must be in (0, 100], got \(sharpness)") }
        if sharpness != 1 && !classifierWords { throw ValidationError("--sharpness scales the classifier's words; give --classifier-words too") }
        if topClassName && (!classifierWords || wholePictureSize == nil) {
            throw ValidationError("--top-class-name says the whole picture's classifier words as a name; give --classifier-words and --whole-picture-size too")
        }
        guard (1...1000).contains(variants) else { throw ValidationError("--variants must be 1...1000, got \(variants)") }
        guard (0...1_000_000).contains(blurred) else { throw ValidationError("--blurred must be 0...1000000, got \(blurred)") }
        if let maxBlur {
            guard maxBlur.isFinite, (0.5...10).contains(maxBlur) else { throw ValidationError("--max-blur must be 0.5...10, got \(maxBlur)") }
            if blurred == 0 { throw ValidationError("--max-blur bounds the blur of --blurred copies; give --blurred too") }
        }
        if !backgrounds.isEmpty && captioned.isEmpty { throw ValidationError("--backgrounds are backdrops for --captioned pictures; give --captioned too") }
    }

    func run() throws {
        try OutputPath.check(output, isNotInput: [efficientnet ?? ImageAssets.efficientNetLite0] + photos + captioned + backgrounds + (from.map { [$0] } ?? []))
        var config = VisionLanguageConfig()
        config.imageSize = imageSize
        config.wholePictureSize = wholePictureSize
        config.projectorHidden = projectorHidden
        if classifierWords { config.classifierWords = sharpness }
        config.classifierTopName = topClassName
        try config.validate(source: "the options")
        var training = VisionLanguageTrainingConfig()
        training.steps = steps
        training.batchSize = batchSize
        training.learningRate = learningRate
        training.seed = seed
        training.warmupSteps = min(20, steps / 10)
        try training.validate()
        let (encoder, language) = try loadVisionLanguageParts(efficientnet: efficientnet, languageModel: languageModel)
        config.languageWidth = language.model.embeddingWidth
        let vlm: VisionLanguageModel
        if let from {
            vlm = try VisionLanguageModel.load(from, imageEncoder: encoder, language: language,
                                               labels: { try ImageNetLabels.load(folder: labels ?? ImageAssets.imageNetLabels) },
                                               classifierTopName: topClassName ? true : nil)
            try vlm.config.requireSameProjector(as: config, source: from)
        } else if classifierWords {
            vlm = try VisionLanguageModel.withClassifierWords(config: config, imageEncoder: encoder, language: language,
                                                              labels: try ImageNetLabels.load(folder: labels ?? ImageAssets.imageNetLabels),
                                                              sharpness: sharpness, seed: seed)
        } else {
            vlm = try VisionLanguageModel(config: config, imageEncoder: encoder, language: language, seed: seed)
        }
        let pictures = try data.load(train: true).prefix(data.limit ?? 5000)
        // Checked before any picture is encoded, not minutes later.
        guard blurred <= pictures.count else { throw AttendError("--blurred \(blurred) is more than the \(pictures.count) pictures (--limit)") }
        let captioner = data.labelled!.captioner
        let cells = try vlm.cells(of: pictures, showProgress: true)
        let answers = try pictures.sourceIndices.indices.map { k in
            captioner.answers(pixels: try pictures.image(pictures.sourceIndices[k]).pixels, label: pictures.labels![k])
        }
        var allCells = cells, allAnswers = answers
        if blurred > 0 {
            let soft = pictures.prefix(blurred).blurred(sigmas: 0.5...(maxBlur ?? 2))
            allCells += try vlm.cells(of: soft, showProgress: true)
            allAnswers += answers.prefix(blurred)
            print("\(blurred) blurred copies (Gaussian, standard deviation 0.5-\(maxBlur ?? 2) pixels)")
        }
        if !photos.isEmpty {
            let files = try photoFiles(photos)
            // Each crop's cells take 45 KiB: at most 20,000 crops (900 MiB).
            guard files.count * cropsPerPhoto <= 20_000 else {
                throw AttendError("--photos: \(files.count) photos x --crops-per-photo \(cropsPerPhoto) is more than 20,000 crops")
            }
            let crops = try CaptionedImages.photoCrops(files, cropsPerPhoto: cropsPerPhoto)
            let extra = try vlm.classifierExamples(crops: crops, labels: try ImageNetLabels.load(folder: labels ?? ImageAssets.imageNetLabels),
                                                   minimumConfidence: minConfidence, prototypes: !noPrototypes, showProgress: true)
            print("\(extra.cells.count) everyday examples (\(noPrototypes ? 0 : 1000) class prototypes, the rest confident crops of \(files.count) photos)")
            allCells += extra.cells
            allAnswers += extra.answers
        }
        if !captioned.isEmpty {
            let backdrops: [Image] = try backgrounds.isEmpty ? [] : photoFiles(backgrounds, option: "--backgrounds").map { path in
                let photo = try Image.read(path)
                try photo.requireAspectRatio(atMost: 8, source: path)
                return photo.rgb().resized(shorterSide: 384)
            }
            let pairs = try CaptionedImages.captionFiles(captioned, variants: variants, backgrounds: backdrops)
            // Each picture's cells take 45 KiB: at most 40,000 pictures (1.8 GiB).
            guard pairs.count <= 40_000 else {
                throw AttendError("--captioned: \(pairs.count / variants) pictures x --variants \(variants) is more than 40,000 pictures")
            }
            allCells += try vlm.cells(of: pairs, showProgress: true)
            allAnswers += pairs.captions
            print("\(pairs.count) captioned pictures (\(pairs.count / variants) files x \(variants) variants)")
        }
        let started = Date()
        let trainer = try vlm.train(on: allCells, answers: allAnswers, config: training, progress: ProgressBar(total: steps, label: "projector", unit: "step"))
        try vlm.save(to: output, metadata: ["steps": String(steps), "language_model": language.source,
                                            "command": CommandLine.arguments.dropFirst().joined(separator: " ")])
        print(String(format: "%d pictures; %d steps in %.1f s; loss %.4f (last 20 steps)", allCells.count, steps,
                     Date().timeIntervalSince(started), trainer.recentLoss(20)))
        print("wrote \(output)")
        if let lossCurve {
            try LineChartFile.write(trainer.lossHistory, to: lossCurve)
            print("wrote \(lossCurve)")
        }
    }
}

struct VLMEvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Describe held-out test pictures: the share naming the right class, beside the same LM without the picture.",
        discussion: "--data fashion-mnist or digits scores their test pictures; a TSV of image path TAB class name (synonyms separated by '|') scores any pictures.")
    @OptionGroup var parts: VisionLanguageOptions
    @OptionGroup var data: CLIPDataOptions   // --limit defaults to the first 200 test pictures here
    @Option(help: "The user's message, with <image> where the picture goes.") var prompt: String?
    @Option(name: .customLong("max-tokens"), help: "Tokens per description.") var maxTokens = 24
    @Flag(name: .customLong("without-image"), help: "Also score the language model given the prompt without the picture.") var withoutImage = false
    @Flag(help: "Print the scores as JSON.") var json = false

    func validate() throws {
        guard (1...512).contains(maxTokens) else { throw ValidationError("--max-tokens must be 1...512, got \(maxTokens)") }
    }

    /// The test pictures, their classes and the classes' names: a labelled data set's test split, or a TSV of
    /// image path TAB the class a description should name (synonyms separated by '|', e.g. "coin|coins").
    func testPictures() throws -> (pictures: [Image], labels: [Int], captioner: ClassCaptions) {
        if let labelled = data.labelled {
            let test = try data.load(train: false).prefix(data.limit ?? 200)
            return (try test.sourceIndices.map { try test.image($0) }, test.labels!, labelled.captioner)
        }
        let named = try ClassCaptions.namedPictures(data.data, limit: data.limit)
        return (try named.paths.map { try readPicture($0) }, named.labels, named.classes)
    }

    func run() throws {
        let vlm = try parts.load()
        let (pictures, labels, captioner) = try testPictures()
        let seeing = try vlm.scoreDescriptions(pictures, labels: labels, captioner: captioner, prompt: prompt, maxTokens: maxTokens,
                                               progress: ProgressBar(total: pictures.count, label: "describe", unit: "picture"))
        let blind = withoutImage ? try vlm.scoreDescriptions(pictures, labels: labels, captioner: captioner, prompt: prompt,
                                                             maxTokens: maxTokens, withoutImage: true) : nil
        if json {
            var object: [String: Any] = ["with_image": try JSONSerialization.jsonObject(with: JSONEncoder().encode(seeing))]
            if let blind { object["without_image"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(blind)) }
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print(String(format: "%d test pictures: %.1f%% of descriptions name the right class (and no other)", seeing.count, 100 * seeing.accuracy))
        if let blind { print(String(format: "the same LM without the picture: %.1f%%", 100 * blind.accuracy)) }
        print(String(format: "encoding a picture %.1f ms; first token %.1f ms; %.1f tokens/s", 1000 * seeing.encodeSeconds,
                     1000 * seeing.firstTokenSeconds, seeing.tokensPerSecond))
        for s in seeing.samples.prefix(20) { print("  [\(s[0])] \(s[1])") }
        if seeing.samples.count > 20 { print("  ... and \(seeing.samples.count - 20) more (--json gives every description)") }
        if let blind { print("  without the picture: \(blind.samples.first?[1] ?? "")") }
    }
}

/// A loss curve as a PNG.
enum LineChartFile {
    static func write(_ history: [(step: Int, loss: Float)], to path: String) throws {
        try LineChart(series: [.init(points: history.map { (Double($0.step), Double($0.loss)) }, color: (31, 119, 180))]).render().writePNG(to: path)
    }
}
