// A multimodal language model in the manner of LLaVA (Liu et al. 2023, "Visual Instruction Tuning"): the cells of
// a pretrained image encoder's last feature map (EfficientNet-Lite0), each sent through a trained two-layer MLP
// projector into the language model's embedding space (SmolLM2's), stand in the chat prompt where the image
// placeholder is. The language model stays frozen; the projector learns from captions, the loss on the caption's
// tokens only, its gradient reaching the projector back through every layer of the language model.

import AttendLM
import AttendNN
import AttendTensor
import AttendTokenizers
import AttendVision
import Foundation

/// The shape of a vision-language model; stored as JSON in its projector file's metadata under `vlm_config`.
public struct VisionLanguageConfig: Codable, Equatable {
    /// Side of the square the image encoder sees; its last feature map then has (side / 32)^2 cells.
    public var imageSize = 96
    /// Image features per cell (EfficientNet-Lite0's head).
    public var imageFeatures = 1280
    /// Hidden width of the projector.
    public var projectorHidden = 512
    /// Set when the projector also says in words what the image encoder's ImageNet classifier sees in each cell, or
    /// with `wholePictureSize` in the whole picture (`ClassifierWords`), the classifier's logits scaled by this sharpness.
    public var classifierWords: Float?
    /// Set when each picture also gives one more cell: the image encoder's pooled features of the whole picture seen
    /// at this side (as the ImageNet classifier was trained to see it, centre crop 87.5%). A 3 x 3 grid at 96 pixels
    /// is too coarse for the classifier to name a photo; the whole picture at 224 is what it names best.
    public var wholePictureSize: Int?
    /// Set when the whole picture's words are the classifier's most likely class name, token by token (what the
    /// language model reads when the name is typed), rather than one vector, the probability-weighted mean of the
    /// names' vectors, each the mean of its tokens': for a name of several tokens that mean is a vector the language
    /// model reads as no word ("tripod" came out as "a **dod** is a type of **tod**"). Needs `classifierWords` and
    /// `wholePictureSize`.
    public var classifierTopName = false
    /// The language model's embedding width (576 for SmolLM2-135M).
    public var languageWidth = 576
    /// The system message of every prompt.
    public var system = "You describe pictures."
    /// The user's message when none is given; `<image>` marks where the picture goes.
    public var defaultPrompt = "<image>\nWhat is in the picture?"

    public init() {}

    /// Vectors the language model reads per picture: one per grid cell; with the whole picture, one more for it and,
    /// with the classifier's words, one more for its words (with `classifierTopName`, as many as the name has tokens;
    /// this counts one).
    public var imageTokens: Int {
        let grid = (imageSize / 32) * (imageSize / 32)
        guard wholePictureSize != nil else { return grid }
        return grid + (classifierWords == nil ? 1 : 2)
    }

    public func validate(source: String) throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw AttendError("\(source): \(message)") } }
        try check((32...1024).contains(imageSize) && imageSize % 32 == 0, "image_size must be a multiple of 32 in 32...1024, got \(imageSize)")
        try check(imageFeatures == 1280, "image_features must be 1280 (EfficientNet-Lite0), got \(imageFeatures)")
        try check((1...16384).contains(projectorHidden), "projector_hidden must be 1...16384, got \(projectorHidden)")
        try check((1...16384).contains(languageWidth), "language_width must be 1...16384, got \(languageWidth)")
        if let wholePictureSize {
            try check((32...1024).contains(wholePictureSize), "whole_picture_size must be 32...1024, got \(wholePictureSize)")
        }
        if let classifierWords {
            try check(classifierWords.isFinite && classifierWords > 0 && classifierWords <= 100, "classifier_words must be in (0, 100], got \(classifierWords)")
        }
        if classifierTopName {
            try check(classifierWords != nil && wholePictureSize != nil, "classifier_top_name needs classifier_words and whole_picture_size")
        }
        try check(defaultPrompt.components(separatedBy: VisionLanguageModel.placeholder).count == 2,
                  "default_prompt must hold \(VisionLanguageModel.placeholder) once")
    }

    /// Throws, naming the first setting that differs, unless `other` builds the same projector (grid, whole
    /// picture, hidden width, classifier's words and sharpness, language width): what training on from a saved
    /// projector needs.
    public func requireSameProjector(as other: VisionLanguageConfig, source: String) throws {
        func describe(_ v: (some CustomStringConvertible)?) -> String { v.map { "\($0)" } ?? "none" }
        let pairs: [(String, String, String, String)] = [
            ("image_size", "\(imageSize)", "\(other.imageSize)", "--image-size"),
            ("whole_picture_size", describe(wholePictureSize), describe(other.wholePictureSize), "--whole-picture-size"),
            ("projector_hidden", "\(projectorHidden)", "\(other.projectorHidden)", "--projector-hidden"),
            ("classifier_words", describe(classifierWords), describe(other.classifierWords), "--classifier-words and --sharpness"),
            ("classifier_top_name", "\(classifierTopName)", "\(other.classifierTopName)", "--top-class-name"),
            ("language_width", "\(languageWidth)", "\(other.languageWidth)", "--language-model"),
        ]
        for (key, mine, theirs, option) in pairs where mine != theirs {
            throw AttendError("\(source): its \(key) is \(mine) but the options ask for \(theirs); give \(option) as the projector was trained")
        }
    }

    enum CodingKeys: String, CodingKey {
        case imageSize = "image_size", imageFeatures = "image_features", projectorHidden = "projector_hidden"
        case classifierWords = "classifier_words", wholePictureSize = "whole_picture_size", classifierTopName = "classifier_top_name"
        case languageWidth = "language_width", system, defaultPrompt = "default_prompt"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageSize = try c.decode(Int.self, forKey: .imageSize)
        imageFeatures = try c.decode(Int.self, forKey: .imageFeatures)
        projectorHidden = try c.decode(Int.self, forKey: .projectorHidden)
        classifierWords = try c.decodeIfPresent(Float.self, forKey: .classifierWords)   // absent from older files
        wholePictureSize = try c.decodeIfPresent(Int.self, forKey: .wholePictureSize)
        classifierTopName = try c.decodeIfPresent(Bool.self, forKey: .classifierTopName) ?? false   // absent from older files
        languageWidth = try c.decode(Int.self, forKey: .languageWidth)
        system = try c.decode(String.self, forKey: .system)
        defaultPrompt = try c.decode(String.self, forKey: .defaultPrompt)
    }
}

/// The trained part: image feature cells [N, 1280] -> the language model's embeddings [N, width] (Linear, GELU,
/// Linear), as LLaVA-1.5's projector; plus, when the model has them, the classifier's words: added to each cell's
/// vector, or, for a picture whose last cell is the whole picture, as one more vector of their own after the cells.
public final class ImageProjector: Module, UnaryLayer {
    public let input: Linear
    public let output: Linear
    /// What the classifier sees, in words (frozen, and not among the module's tensors: it is rebuilt from the image
    /// encoder and the language model, not stored).
    public internal(set) var words: ClassifierWords?
    /// Whether the last cell is the whole picture, whose words then stand alone: added to a trained vector, the
    /// words are what training overrides; alone, the language model reads them as it reads the class's name.
    let wordsOfWholePicture: Bool

    public init(_ config: VisionLanguageConfig, seed: UInt64 = 0x11A7A) {
        var generator = RandomGenerator(seed: seed)
        input = Linear(config.imageFeatures, config.projectorHidden, generator: &generator)
        output = Linear(config.projectorHidden, config.languageWidth, generator: &generator)
        wordsOfWholePicture = config.wholePictureSize != nil
    }

    /// One picture's cells [cells, 1280] -> [tokens, width].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let mlp = output(input(x).gelu())
        guard let words else { return mlp }
        guard wordsOfWholePicture else { return mlp + words(x) }
        return Tensor.concat([mlp, words(x.slice(axis: 0, start: x.shape[0] - 1, length: 1))], axis: 0)
    }
}

/// A cell of image features said in the language model's words: the ImageNet classifier's probabilities for the
/// cell (logits scaled by a sharpness) weighting the embeddings of the 1,000 class names (each the mean of its
/// tokens' embeddings). The language model reads such a vector much as it reads the name itself, so a projector
/// that adds it names the classifier's 1,000 everyday classes before it has seen a caption; the trained MLP beside
/// it learns what the captions add. With `topName`, each cell is said instead as its most likely class's name, the
/// name's tokens' embeddings one after another: exactly what the language model reads when the name is typed, where
/// a mean of several tokens is no word. Nothing here trains.
public final class ClassifierWords {
    /// [1000, 1280] and [1000]: the classifier, scaled.
    let weight: Tensor
    let bias: Tensor
    /// [1000, width]: each class name's embedding (empty with `topName`, which does not read it).
    let names: Tensor
    /// Each class name's tokens' embeddings [tokens, width] (only with `topName`).
    let nameTokens: [Tensor]
    /// Whether a cell is said as its most likely class's name, token by token.
    public let topName: Bool

    /// - Parameter labels: the classifier's class names (the first of each comma-separated list is embedded).
    public init(classifier: Linear, sharpness: Float, labels: ImageNetLabels, language: LoadedLanguageModel, topName: Bool = false) throws {
        let classes = classifier.weight.shape[0], width = language.model.embeddingWidth
        guard labels.names.count == classes else { throw AttendError("the classifier has \(classes) classes, the labels name \(labels.names.count)") }
        weight = withNoGrad { classifier.weight * sharpness }.contiguous()
        bias = withNoGrad { (classifier.bias ?? Tensor.zeros([classes])) * sharpness }.contiguous()
        var rows = [Float](repeating: 0, count: topName ? 0 : classes * width)
        var nameTokens: [Tensor] = []
        for (c, names) in labels.names.enumerated() {
            let name = String(names.split(separator: ",").first ?? "").trimmingCharacters(in: .whitespaces)
            let ids = language.tokenizer.encode(" " + name)
            guard !ids.isEmpty else { throw AttendError("class \(c) ('\(names)') has an empty name") }
            let embedded = withNoGrad { language.model.embed(IntTensor(ids, shape: [ids.count])) }.contiguous()
            if topName { nameTokens.append(embedded); continue }
            let vectors = embedded.toArray()
            for t in 0..<ids.count { for k in 0..<width { rows[c * width + k] += vectors[t * width + k] / Float(ids.count) } }
        }
        names = Tensor(rows, shape: [topName ? 0 : classes, width])
        self.nameTokens = nameTokens
        self.topName = topName
    }

    /// Cells [N, 1280] -> [N, width]; with `topName`, [the tokens of the N cells' most likely names, width].
    public func callAsFunction(_ cells: Tensor) -> Tensor {
        let logits = cells.matmul(weight.transposed(0, 1)) + bias
        guard topName else { return logits.softmax(axis: -1).matmul(names) }
        return Tensor.concat(topClasses(logits: logits).map { nameTokens[$0] }, axis: 0)
    }

    /// The most likely class of each row of logits [N, classes] (the first of equals).
    func topClasses(logits: Tensor) -> [Int] {
        let classes = logits.shape[1], values = withNoGrad { logits.contiguous() }.toArray()
        return (0..<logits.shape[0]).map { row in
            var best = 0
            for c in 1..<classes where values[row * classes + c] > values[row * classes + best] { best = c }
            return best
        }
    }
}

/// One picture's caption example, tokenized around the image placeholder: the prompt before it, the prompt after
/// it, and the answer (trained).
public struct VisionLanguageExample {
    public var before: [Int32]
    public var after: [Int32]
    public var answer: [Int32]
}

/// A multimodal language model: image encoder -> projector -> language model.
///
/// ```swift
/// let loaded = try ModelLocator.languageModel("SmolLM2-135M-Instruct")
/// let vlm = try VisionLanguageModel.load("models/vlm.safetensors", imageEncoder: try EfficientNet.load(lite0Path),
///                                        language: loaded, labels: { try ImageNetLabels.load(folder: labelsFolder) })
/// print(try vlm.describe(try Image.read("chelsea.png")).text)  // "A tiger cat." (scikit-image's photos)
/// print(try vlm.describe(try Image.read("coffee.png")).text)   // "A coffee shop."
/// ```
public final class VisionLanguageModel {
    /// Marks where the picture goes in a prompt.
    public static let placeholder = "<image>"

    public let config: VisionLanguageConfig
    public let projector: ImageProjector
    public let imageEncoder: EfficientNet
    public let language: LoadedLanguageModel
    public let template: ChatTemplate

    public init(config: VisionLanguageConfig, imageEncoder: EfficientNet, language: LoadedLanguageModel, seed: UInt64 = 0x11A7A) throws {
        guard config.languageWidth == language.model.embeddingWidth else {
            throw AttendError("the projector makes \(config.languageWidth)-wide vectors, but \(language.source) embeds tokens in \(language.model.embeddingWidth)")
        }
        self.config = config
        projector = ImageProjector(config, seed: seed)
        self.imageEncoder = imageEncoder
        self.language = language
        template = ChatTemplate(ggufTemplate: language.chatTemplate)
    }

    // MARK: Pictures

    /// The image encoder's last feature map as cells [cells, 1280] (row-major over the grid), for `image` resized by
    /// its shorter side and centre-cropped to `imageSize`; then, with `wholePictureSize`, the pooled features of the
    /// whole picture at that side as one more cell.
    public func imageCells(_ image: Image) -> Tensor {
        withNoGrad {
            let net = imageEncoder.config
            let x = image.classifierInput(size: config.imageSize, mean: net.mean, std: net.std, cropFraction: 1)
            let map = imageEncoder.featureMap(x.reshape([1, 3, config.imageSize, config.imageSize]))
            let grid = map.reshape([map.shape[1], -1]).transposed(0, 1)
            guard let side = config.wholePictureSize else { return grid.contiguous() }
            let whole = image.classifierInput(size: side, mean: net.mean, std: net.std)
            return Tensor.concat([grid, imageEncoder.pooledFeatures(whole.reshape([1, 3, side, side]))], axis: 0).contiguous()
        }
    }

    // MARK: Prompts

    /// The prompt around the image for a user message holding `placeholder` once, and the answer's tokens (with the
    /// end of turn) when there is one.
    public func example(prompt: String? = nil, answer: String? = nil) throws -> VisionLanguageExample {
        let user = prompt ?? config.defaultPrompt
        let parts = user.components(separatedBy: VisionLanguageModel.placeholder)
        guard parts.count == 2 else {
            throw AttendError("the prompt must hold \(VisionLanguageModel.placeholder) once, where the picture goes; got '\(user)'")
        }
        let rendered = template.render([("system", config.system), ("user", user)])
        let pieces = rendered.components(separatedBy: VisionLanguageModel.placeholder)
        let tokenizer = language.tokenizer
        var before = tokenizer.encode(pieces[0])
        if let bos = tokenizer.bosId, language.addBos { before.insert(bos, at: 0) }
        let answerIds = answer.map { tokenizer.encode($0 + "<|im_end|>") } ?? []
        return VisionLanguageExample(before: before, after: tokenizer.encode(pieces[1]), answer: answerIds)
    }

    /// What the language model reads for a rendered chat holding the placeholder once (in its first user message),
    /// the picture's projected cells in its place.
    public func chatInput(rendered: String, cells: Tensor) throws -> LMInput {
        let pieces = rendered.components(separatedBy: VisionLanguageModel.placeholder)
        guard pieces.count == 2 else { throw AttendError("a chat with a picture must hold \(VisionLanguageModel.placeholder) once, got \(pieces.count - 1)") }
        var before = language.tokenizer.encode(pieces[0])
        if let bos = language.tokenizer.bosId, language.addBos { before.insert(bos, at: 0) }
        return withNoGrad { LMInput(segments: [.tokens(before), .embeddings(projector(cells)), .tokens(language.tokenizer.encode(pieces[1]))]) }
    }

    /// What the language model reads for `cells` under `example` (the answer's tokens included when it has them).
    public func input(cells: Tensor, example: VisionLanguageExample) -> LMInput {
        LMInput(segments: [.tokens(example.before), .embeddings(projector(cells)), .tokens(example.after + example.answer)])
    }

    // MARK: Training

    /// The mean cross-entropy of the answers' tokens for a batch of (cells, example), differentiable in the projector
    /// only: the language model's own weights are not parameters here. Sequences are right-padded (the model is
    /// causal, so padding after a sequence changes nothing in it) and only answer positions go through the output
    /// projection.
    public func loss(_ batch: [(cells: Tensor, example: VisionLanguageExample)]) -> Tensor {
        guard let model = language.model as? LlamaModel else { preconditionFailure("VisionLanguageModel trains on Llama-family models") }
        let rows = batch.map { model.inputEmbeddings(input(cells: $0.cells, example: $0.example)) }
        let width = rows.map { $0.shape[0] }.max() ?? 1
        let padded = rows.map { r -> Tensor in
            r.shape[0] == width ? r : Tensor.concat([r, Tensor(shape: [width - r.shape[0], config.languageWidth])], axis: 0)
        }
        let x = Tensor.stack(padded, axis: 0)
        var positions: [Int32] = [], targets: [Int32] = []
        for (b, item) in batch.enumerated() {
            let e = item.example
            let start = rows[b].shape[0] - e.answer.count   // the first answer token's position
            for (k, token) in e.answer.enumerated() {
                positions.append(Int32(b * width + start + k - 1))            // predicted from the position before it
                targets.append(token)
            }
        }
        let hidden = model.finalHiddenStates(inputEmbeddings: x).reshape([-1, config.languageWidth])
        let logits = model.vocabularyLogits(hidden.indexSelect(IntTensor(positions, shape: [positions.count])))
        return Loss.crossEntropy(logits: logits, targets: IntTensor(targets, shape: [targets.count]))
    }

    // MARK: Describing

    /// The language model's answer about `image` (greedy by default).
    public func describe(_ image: Image, prompt: String? = nil, options: SamplingOptions? = nil,
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        try describe(cells: imageCells(image), prompt: prompt, options: options, onText: onText)
    }

    /// The answer for already computed image cells.
    public func describe(cells: Tensor, prompt: String? = nil, options: SamplingOptions? = nil,
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        var sampling = options ?? SamplingOptions()
        if options == nil { sampling.maxTokens = 48 }
        let prompt = try example(prompt: prompt)
        let input = withNoGrad { self.input(cells: cells, example: prompt) }
        return try Generation.generate(model: language.model, tokenizer: language.tokenizer, input: input, options: sampling, onText: onText)
    }

    /// A model whose projector also says in words what the image encoder's classifier sees in each cell
    /// (`ClassifierWords`, logits scaled by `sharpness`), its MLP's last layer starting at zero: before any training
    /// the projector's output is the classifier's words alone, and training teaches the MLP what the captions add.
    ///
    /// ```swift
    /// let vlm = try VisionLanguageModel.withClassifierWords(imageEncoder: lite0, language: smol,
    ///                                                       labels: try ImageNetLabels.load(folder: labelsFolder))
    /// print(try vlm.describe(try Image.read("chelsea.png")).text)      // names a cat before any training
    /// ```
    public static func withClassifierWords(config base: VisionLanguageConfig = VisionLanguageConfig(), imageEncoder: EfficientNet,
                                           language: LoadedLanguageModel, labels: ImageNetLabels, sharpness: Float = 1,
                                           seed: UInt64 = 0x11A7A) throws -> VisionLanguageModel {
        var config = base
        config.classifierWords = sharpness
        try config.validate(source: "the projector")
        let vlm = try VisionLanguageModel(config: config, imageEncoder: imageEncoder, language: language, seed: seed)
        try vlm.attachClassifierWords(labels: labels)
        vlm.projector.output.weight.assign(Tensor.zeros(vlm.projector.output.weight.shape))
        if let bias = vlm.projector.output.bias { bias.assign(Tensor.zeros(bias.shape)) }
        return vlm
    }

    /// Builds the projector's words from the encoder's classifier and the language model's embeddings, when the
    /// config asks for them.
    func attachClassifierWords(labels: ImageNetLabels?) throws {
        guard let sharpness = config.classifierWords else { return }
        guard let labels else { throw AttendError("this projector says the ImageNet classifier's classes in words: it needs the class names (scripts/fetch-assets.sh imagenet-labels)") }
        projector.words = try ClassifierWords(classifier: imageEncoder.classifier, sharpness: sharpness, labels: labels, language: language,
                                              topName: config.classifierTopName)
    }

    // MARK: Files

    public func save(to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["vlm_config"] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(projector.namedTensors(), metadata: meta, to: path)
    }

    /// Loads a projector written by `save` over the image encoder and language model it was trained with (and,
    /// for a projector with the classifier's words, the classifier's class names). `classifierTopName`, when given,
    /// says the words that way whatever the file says: the words are not trained, so a projector may be trained on
    /// with them said the other way.
    public static func load(_ path: String, imageEncoder: EfficientNet, language: LoadedLanguageModel,
                            labels: (() throws -> ImageNetLabels)? = nil, classifierTopName: Bool? = nil) throws -> VisionLanguageModel {
        let file = try Safetensors.read(path)
        var config = try file.config(VisionLanguageConfig.self, key: "vlm_config", source: path, writer: "attend vlm train")
        if let classifierTopName {
            guard !classifierTopName || (config.classifierWords != nil && config.wholePictureSize != nil) else {
                throw AttendError("\(path): its words cannot be said as the top class name: it was trained without classifier_words or whole_picture_size")
            }
            config.classifierTopName = classifierTopName
        }
        try config.validate(source: path + " (vlm_config)")
        try file.requireTensor("input.weight", shape: [config.projectorHidden, config.imageFeatures], source: path)
        try file.requireTensor("output.weight", shape: [config.languageWidth, config.projectorHidden], source: path)
        let vlm = try VisionLanguageModel(config: config, imageEncoder: imageEncoder, language: language)
        try vlm.projector.load(file.tensors, source: path)
        if vlm.config.classifierWords != nil { try vlm.attachClassifierWords(labels: try labels?()) }
        return vlm
    }
}
