// CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision") and LiT
// (Zhai et al. 2022, "LiT: Zero-Shot Transfer with Locked-image Text Tuning"): an image tower and a text tower,
// each followed by a linear projection into one shared space, rows L2-normalized, similarities scaled by a learned
// inverse temperature and trained with the symmetric InfoNCE loss (`Loss.clip`). No pretrained CLIP weights exist on
// these machines, so the towers are the pretrained encoders Attend already runs (EfficientNet-Lite0 for images,
// all-MiniLM-L6-v2 for text, both locked) or towers trained from scratch: a small Vision Transformer over the
// picture's patches and a small text Transformer over CLIP's BPE.
//
// A locked tower's features never change, so they are computed once (and cached on disk by the caller, see
// `CLIPFeatureCache`) and only the projections, the temperature and any unlocked tower are trained.

import AttendNN
import AttendTensor
import AttendTokenizers
import AttendVision
import Foundation

/// The shape of a CLIP model; stored as JSON in its checkpoint's metadata under `clip_config`.
public struct CLIPConfig: Codable, Equatable {
    public enum ImageTower: String, Codable, CaseIterable {
        /// The ImageNet-pretrained CNN (pooled 1280-d features), locked.
        case efficientNetLite0 = "efficientnet-lite0"
        /// A small Vision Transformer over the picture's patches, trained from scratch with the projections.
        case vit
    }
    public enum TextTower: String, Codable, CaseIterable {
        /// The pretrained sentence encoder (mean-pooled, unit-length 384-d sentence embeddings), locked.
        case miniLM = "all-MiniLM-L6-v2"
        /// A small pre-norm Transformer over CLIP's BPE, trained from scratch with the projections.
        case transformer
    }

    public var imageTower: ImageTower = .efficientNetLite0
    public var textTower: TextTower = .miniLM
    /// Side of the square the image tower sees (the shorter side resized to it, then the centre square).
    public var imageSize = 96
    /// Width of the shared space.
    public var embeddingDimension = 256
    /// 0: a linear image projection; otherwise a two-layer MLP (GELU) with this hidden width.
    public var imageProjectionHidden = 0
    /// The from-scratch text tower: width, layers, heads, tokens per caption.
    public var textWidth = 128
    public var textLayers = 2
    public var textHeads = 4
    public var contextLength = 32
    /// The from-scratch tower's vocabulary: the CLIP BPE ids seen in its training captions (any other id reads as
    /// one unknown token: a tower trained from scratch knows no word it never saw).
    public var vocabulary: [Int32] = []
    /// The from-scratch image tower: side of its square patches, width, layers, heads.
    public var patchSize = 4
    public var visionWidth = 128
    public var visionLayers = 4
    public var visionHeads = 4
    /// The inverse temperature a new model starts at (the paper's 1 / 0.07).
    public var initialLogitScale: Float = 1 / 0.07
    /// Fine-tune the pretrained image tower with the rest instead of locking it: the model then carries its own copy
    /// of the tower's weights (BatchNorms stay folded, their statistics frozen).
    public var unlockImageTower = false
    /// Fine-tune the pretrained MiniLM text tower with the rest (the model then carries its weights, 87 MiB).
    public var unlockTextTower = false

    public init(imageTower: ImageTower = .efficientNetLite0, textTower: TextTower = .miniLM) {
        self.imageTower = imageTower
        self.textTower = textTower
    }

    public var imageFeatureDimension: Int { imageTower == .vit ? visionWidth : 1280 }
    /// Patches along each side of the picture (the from-scratch image tower).
    public var patchGrid: Int { imageSize / patchSize }
    /// Whether the image tower is trained (so its inputs, not its features, are what training draws batches from).
    public var trainsImageTower: Bool { imageTower == .vit || unlockImageTower }
    public var textFeatureDimension: Int { textTower == .miniLM ? 384 : textWidth }

    /// The largest inverse temperature training may reach (the paper clamps at 100).
    public static let maximumLogitScale: Float = 100

    /// Throws naming `source` and the field for a value the model cannot be built with.
    public func validate(source: String) throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw AttendError("\(source): \(message)") } }
        if imageTower == .vit {
            try check((1...64).contains(patchSize), "patch_size must be 1...64, got \(patchSize)")
            try check((4...1024).contains(imageSize) && imageSize % patchSize == 0,
                      "image_size must be 4...1024 and a multiple of patch_size \(patchSize), got \(imageSize)")
            try check(patchGrid * patchGrid <= 4096, "image_size / patch_size must give at most 4,096 patches, got \(patchGrid * patchGrid)")
            try check((8...2048).contains(visionWidth), "vision_width must be 8...2048, got \(visionWidth)")
            try check((1...24).contains(visionLayers), "vision_layers must be 1...24, got \(visionLayers)")
            try check((1...64).contains(visionHeads) && visionWidth % visionHeads == 0, "vision_heads must divide vision_width \(visionWidth), got \(visionHeads)")
            try check(!unlockImageTower, "unlock_image_tower is for the pretrained efficientnet-lite0 tower (vit always trains)")
        } else {
            try check((32...1024).contains(imageSize), "image_size must be 32...1024, got \(imageSize)")
        }
        try check((2...4096).contains(embeddingDimension), "embedding_dimension must be 2...4096, got \(embeddingDimension)")
        try check((0...8192).contains(imageProjectionHidden), "image_projection_hidden must be 0...8192, got \(imageProjectionHidden)")
        try check(initialLogitScale.isFinite && initialLogitScale >= 1 && initialLogitScale <= CLIPConfig.maximumLogitScale,
                  "initial_logit_scale must be 1...100, got \(initialLogitScale)")
        try check(!unlockTextTower || textTower == .miniLM, "unlock_text_tower is for the pretrained all-MiniLM-L6-v2 tower (transformer always trains)")
        if textTower == .transformer {
            try check((8...2048).contains(textWidth), "text_width must be 8...2048, got \(textWidth)")
            try check((1...24).contains(textLayers), "text_layers must be 1...24, got \(textLayers)")
            try check((1...64).contains(textHeads) && textWidth % textHeads == 0, "text_heads must divide text_width \(textWidth), got \(textHeads)")
            try check((4...512).contains(contextLength), "context_length must be 4...512, got \(contextLength)")
            try check(!vocabulary.isEmpty && vocabulary.count <= 1 << 20, "vocabulary must hold 1...1048576 token ids, got \(vocabulary.count)")
            try check(vocabulary.allSatisfy { $0 >= 0 }, "vocabulary holds a negative token id")
        }
    }

    enum CodingKeys: String, CodingKey {
        case imageTower = "image_tower", textTower = "text_tower", imageSize = "image_size", embeddingDimension = "embedding_dimension"
        case imageProjectionHidden = "image_projection_hidden", textWidth = "text_width", textLayers = "text_layers", textHeads = "text_heads"
        case contextLength = "context_length", vocabulary, initialLogitScale = "initial_logit_scale"
        case patchSize = "patch_size", visionWidth = "vision_width", visionLayers = "vision_layers", visionHeads = "vision_heads"
        case unlockImageTower = "unlock_image_tower", unlockTextTower = "unlock_text_tower"
    }

    // Written by hand so that checkpoints from before the from-scratch image tower (no vision keys) still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageTower = try c.decode(ImageTower.self, forKey: .imageTower)
        textTower = try c.decode(TextTower.self, forKey: .textTower)
        imageSize = try c.decode(Int.self, forKey: .imageSize)
        embeddingDimension = try c.decode(Int.self, forKey: .embeddingDimension)
        imageProjectionHidden = try c.decode(Int.self, forKey: .imageProjectionHidden)
        textWidth = try c.decode(Int.self, forKey: .textWidth)
        textLayers = try c.decode(Int.self, forKey: .textLayers)
        textHeads = try c.decode(Int.self, forKey: .textHeads)
        contextLength = try c.decode(Int.self, forKey: .contextLength)
        vocabulary = try c.decode([Int32].self, forKey: .vocabulary)
        initialLogitScale = try c.decode(Float.self, forKey: .initialLogitScale)
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? patchSize
        visionWidth = try c.decodeIfPresent(Int.self, forKey: .visionWidth) ?? visionWidth
        visionLayers = try c.decodeIfPresent(Int.self, forKey: .visionLayers) ?? visionLayers
        visionHeads = try c.decodeIfPresent(Int.self, forKey: .visionHeads) ?? visionHeads
        unlockImageTower = try c.decodeIfPresent(Bool.self, forKey: .unlockImageTower) ?? false
        unlockTextTower = try c.decodeIfPresent(Bool.self, forKey: .unlockTextTower) ?? false
    }
}

/// The image tower trained from scratch: a Vision Transformer (Dosovitskiy et al. 2021) laid out as CLIP's
/// (open_clip's `VisionTransformer`): the picture cut into `patchSize` squares, each flattened (channel, row, column)
/// and embedded by one matrix (the stride-`patchSize` convolution without bias), a learned class embedding in front,
/// learned position embeddings, a layer norm before the blocks, pre-norm Transformer blocks, and the class position's
/// state through a final layer norm as the picture's features.
public final class CLIPVisionTransformer: Module {
    public let patchEmbedding: Linear
    public let classEmbedding: Tensor
    public let positionEmbedding: Tensor
    public let preNorm: LayerNorm
    public let layers: [TransformerEncoderBlock]
    public let finalNorm: LayerNorm
    let patchSize: Int

    public init(_ config: CLIPConfig, generator: inout RandomGenerator) {
        let w = config.visionWidth, p = config.patchSize
        patchEmbedding = Linear(3 * p * p, w, bias: false, generator: &generator)
        // open_clip's initialization: both embeddings normal with standard deviation width^-1/2.
        let scale = 1 / Float(w).squareRoot()
        classEmbedding = Tensor.randn([w], std: scale, generator: &generator, requiresGrad: true)
        positionEmbedding = Tensor.randn([config.patchGrid * config.patchGrid + 1, w], std: scale, generator: &generator, requiresGrad: true)
        preNorm = LayerNorm(w)
        let block = TransformerBlockConfig(dimension: w, headCount: config.visionHeads, preNorm: true)
        layers = (0..<config.visionLayers).map { _ in TransformerEncoderBlock(block, generator: &generator) }
        finalNorm = LayerNorm(w)
        patchSize = p
    }

    /// Pictures [B, 3, S, S] as rows of flattened patches [B, (S/p)^2, 3 p^2], patches in reading order.
    public static func patches(_ x: Tensor, patchSize p: Int) -> Tensor {
        let (b, c, s) = (x.shape[0], x.shape[1], x.shape[2])
        let g = s / p
        return x.reshape([b, c, g, p, g, p]).permute([0, 2, 4, 1, 3, 5]).contiguous().reshape([b, g * g, c * p * p])
    }

    /// Every position's state after the final norm [B, 1 + patches, width]: the class position, then the patches.
    public func states(_ x: Tensor) -> Tensor {
        var h = embedded(x)
        for layer in layers { h = layer(h) }
        return finalNorm(h)
    }

    /// The input of the first layer [B, 1 + patches, width]: class and patch embeddings, positions added, normalized.
    func embedded(_ x: Tensor) -> Tensor {
        let b = x.shape[0], w = classEmbedding.shape[0]
        let tokens = patchEmbedding(CLIPVisionTransformer.patches(x, patchSize: patchSize))
        let h = Tensor.concat([classEmbedding.reshape([1, 1, w]).expand(to: [b, 1, w]), tokens], axis: 1)
        return preNorm(h + positionEmbedding.reshape([1, positionEmbedding.shape[0], w]))
    }

    /// The pictures' features [B, width]: the class position's final state, as `states(x)` gives it. The last layer
    /// runs for the class position alone (keys and values from every position), since nothing else reads it.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = embedded(x)
        for layer in layers.dropLast() { h = layer(h) }
        if let last = layers.last { h = last.firstPositions(1, of: h) } else { h = h.slice(axis: 1, start: 0, length: 1) }
        return finalNorm(h).reshape([x.shape[0], h.shape[2]])
    }
}

/// The text tower trained from scratch: token and position embeddings, pre-norm Transformer blocks, a final layer
/// norm and the mean over the caption's tokens.
public final class CLIPTextTransformer: Module {
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding
    public let layers: [TransformerEncoderBlock]
    public let finalNorm: LayerNorm
    /// CLIP BPE id -> row of `tokenEmbedding` (0 is padding, 1 the unknown token).
    let rows: [Int32: Int32]
    let contextLength: Int

    public init(_ config: CLIPConfig, generator: inout RandomGenerator) {
        tokenEmbedding = Embedding(config.vocabulary.count + 2, config.textWidth, generator: &generator)
        positionEmbedding = Embedding(config.contextLength, config.textWidth, generator: &generator)
        let block = TransformerBlockConfig(dimension: config.textWidth, headCount: config.textHeads, preNorm: true)
        layers = (0..<config.textLayers).map { _ in TransformerEncoderBlock(block, generator: &generator) }
        finalNorm = LayerNorm(config.textWidth)
        var rows: [Int32: Int32] = [:]
        for (i, id) in config.vocabulary.enumerated() where rows[id] == nil { rows[id] = Int32(i + 2) }
        self.rows = rows
        contextLength = config.contextLength
    }

    /// Rows of the token table for `bpe` ids, cut to the context length (at least one token, the unknown one, for
    /// an empty caption).
    public func tokenRows(_ bpe: [Int32]) -> [Int32] {
        let ids = bpe.prefix(contextLength).map { rows[$0] ?? 1 }
        return ids.isEmpty ? [1] : ids
    }

    /// Features [B, width] of captions already turned into rows by `tokenRows`.
    public func callAsFunction(_ captions: [[Int32]]) -> Tensor {
        let lengths = captions.map(\.count)
        let t = lengths.max() ?? 1
        let ids = IntTensor.padded(captions, with: 0)
        let positions = IntTensor((0..<t).map { Int32($0) }, shape: [t])
        var h = tokenEmbedding(ids) + positionEmbedding(positions).reshape([1, t, -1])
        let mask = Attention.paddingMask(lengths: lengths, maxLength: t)
        // The lengths let training use the fused attention op (the mask alone composes it from primitives).
        for layer in layers { h = layer(h, mask: mask, keyLengths: lengths) }
        h = finalNorm(h)
        let b = captions.count
        let keep = Tensor(shape: [b, t, 1])
        for (r, n) in lengths.enumerated() { for k in 0..<n { keep.pointer[r * t + k] = 1 } }
        return (h * keep).sum(axes: [1]) / Tensor(lengths.map { Float($0) }, shape: [b, 1])
    }
}

/// The pretrained encoders a CLIP model stands on, loaded once and shared (they are not part of its checkpoint).
/// A model whose image tower is trained from scratch needs no `imageEncoder`.
public final class CLIPTowers {
    public let imageEncoder: EfficientNet?
    public let textEncoder: SentenceEmbedder?
    public let tokenizer: CLIPTokenizer?

    public init(imageEncoder: EfficientNet?, textEncoder: SentenceEmbedder?, tokenizer: CLIPTokenizer?) {
        self.imageEncoder = imageEncoder
        self.textEncoder = textEncoder
        self.tokenizer = tokenizer
    }

    /// Loads what `config` needs: EfficientNet-Lite0 from `efficientNet` (a torch.save file; not for a from-scratch
    /// image tower), MiniLM from the sentence-transformers folder `miniLM` or CLIP's BPE from `clipMerges`
    /// (bpe_simple_vocab_16e6.txt.gz).
    public static func load(for config: CLIPConfig, efficientNet: String, miniLM: String, clipMerges: String) throws -> CLIPTowers {
        let image = config.imageTower == .efficientNetLite0 ? try EfficientNet.load(efficientNet) : nil
        switch config.textTower {
        case .miniLM: return CLIPTowers(imageEncoder: image, textEncoder: try SentenceEmbedder.load(directory: miniLM), tokenizer: nil)
        case .transformer: return CLIPTowers(imageEncoder: image, textEncoder: nil, tokenizer: try CLIPTokenizer(mergesFile: clipMerges))
        }
    }
}

/// A CLIP model: projections, temperature and any from-scratch tower (the image ViT, the text Transformer), beside
/// the locked pretrained towers.
///
/// ```swift
/// let config = CLIPConfig(imageTower: .efficientNetLite0, textTower: .miniLM)
/// let towers = try CLIPTowers.load(for: config, efficientNet: lite0Path, miniLM: miniLMFolder, clipMerges: mergesPath)
/// let clip = try CLIP.load("models/clip.safetensors", towers: towers)
/// let images = clip.embedImages(try [Image.read("boot.jpg")])                 // [1, 256], unit rows
/// let p = clip.zeroShot(images, classes: [["a photo of a boot"], ["a photo of a bag"]])   // [1, 2] probabilities
/// ```
public final class CLIP: Module {
    public let config: CLIPConfig
    public let imageProjection: Linear
    public let imageProjectionOut: Linear?
    public let textProjection: Linear
    /// log of the inverse temperature, trained; clamped to [0, log 100] before each step.
    public let logitScale: Tensor
    public let textTransformer: CLIPTextTransformer?
    public let visionTransformer: CLIPVisionTransformer?
    /// The pretrained image tower's own trainable copy, when the config unlocks it (saved with the model).
    public let unlockedImageTower: EfficientNet?
    /// The pretrained text tower's own trainable copy, when the config unlocks it; its encoder is saved with the model.
    public let unlockedTextTower: SentenceEmbedder?
    public let unlockedTextEncoder: BERTModel?
    /// The locked pretrained towers (not saved with the model).
    public let towers: CLIPTowers

    public init(_ config: CLIPConfig, towers: CLIPTowers, seed: UInt64 = 0xC11F) {
        precondition(config.textTower == .transformer ? towers.tokenizer != nil : towers.textEncoder != nil,
                     "CLIP: the towers do not provide the \(config.textTower.rawValue) text tower")
        precondition(config.imageTower == .vit || towers.imageEncoder != nil, "CLIP: the towers do not provide the \(config.imageTower.rawValue) image tower")
        self.config = config
        self.towers = towers
        var generator = RandomGenerator(seed: seed)
        let d = config.embeddingDimension
        if config.imageProjectionHidden > 0 {
            imageProjection = Linear(config.imageFeatureDimension, config.imageProjectionHidden, generator: &generator)
            imageProjectionOut = Linear(config.imageProjectionHidden, d, bias: false, generator: &generator)
        } else {
            imageProjection = Linear(config.imageFeatureDimension, d, bias: false, generator: &generator)
            imageProjectionOut = nil
        }
        textProjection = Linear(config.textFeatureDimension, d, bias: false, generator: &generator)
        logitScale = Tensor([Foundation.log(config.initialLogitScale)], shape: [1], requiresGrad: true)
        textTransformer = config.textTower == .transformer ? CLIPTextTransformer(config, generator: &generator) : nil
        visionTransformer = config.imageTower == .vit ? CLIPVisionTransformer(config, generator: &generator) : nil
        unlockedImageTower = config.unlockImageTower ? towers.imageEncoder!.trainableCopy() : nil
        unlockedTextTower = config.unlockTextTower ? towers.textEncoder!.trainableCopy() : nil
        unlockedTextEncoder = unlockedTextTower?.model
    }

    /// The inverse temperature now (exp of the learned log, clamped as in training).
    public var scale: Float { Swift.min(Foundation.exp(logitScale.item), CLIPConfig.maximumLogitScale) }

    /// Clamps the learned log scale to [0, log 100], as open_clip does after each optimizer step.
    public func clampLogitScale() {
        logitScale.pointer[0] = Swift.min(Swift.max(logitScale.pointer[0], 0), Foundation.log(CLIPConfig.maximumLogitScale))
    }

    // MARK: Towers

    /// What the image tower takes for `image`: RGB, the shorter side resized to `imageSize` (bicubic), the centre
    /// square, normalized as EfficientNet-Lite was trained (or, for the from-scratch ViT, with OpenAI CLIP's mean and
    /// standard deviation): [3, S, S]. The whole picture stays in view (no 0.875 crop), since a garment or an object
    /// often touches the edges.
    public func imageInput(_ image: Image) -> Tensor {
        let (mean, std) = towers.imageEncoder.map { ($0.config.mean, $0.config.std) } ?? (CLIP.pixelMean, CLIP.pixelStd)
        return image.classifierInput(size: config.imageSize, mean: mean, std: std, cropFraction: 1)
    }

    /// OpenAI CLIP's per-channel pixel mean and standard deviation (what the from-scratch image tower's inputs use).
    public static let pixelMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let pixelStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    /// The image tower's features [N, imageFeatureDimension] for inputs [N, 3, S, S] from `imageInput`: the locked
    /// CNN's pooled features (no gradient), or a trained tower's (the from-scratch ViT, the unlocked CNN; with
    /// gradient when training).
    public func imageFeatures(_ inputs: Tensor) -> Tensor {
        if let vit = visionTransformer { return vit(inputs) }
        if let unlocked = unlockedImageTower { return unlocked.pooledFeatures(inputs) }
        return withNoGrad { towers.imageEncoder!.pooledFeatures(inputs) }
    }

    /// The text tower's features [N, textFeatureDimension]: locked MiniLM sentence embeddings (no gradient), or a
    /// trained tower's (the from-scratch Transformer, the unlocked MiniLM; with gradient when training).
    public func textFeatures(_ texts: [String]) -> Tensor {
        if let transformer = textTransformer, let tokenizer = towers.tokenizer {
            return transformer(texts.map { transformer.tokenRows(tokenizer.encode($0)) })
        }
        if let unlocked = unlockedTextTower { return unlocked.embedForTraining(texts) }
        return towers.textEncoder!.embed(texts)
    }

    // MARK: Projections

    /// Unit-length embeddings [N, D] from image features [N, 1280].
    public func projectImageFeatures(_ features: Tensor) -> Tensor {
        let h = imageProjection(features)
        return Loss.normalize(imageProjectionOut.map { $0(h.gelu()) } ?? h)
    }

    /// Unit-length embeddings [N, D] from text features.
    public func projectTextFeatures(_ features: Tensor) -> Tensor { Loss.normalize(textProjection(features)) }

    /// The symmetric contrastive loss of a batch of pairs (row i of each is a pair).
    public func loss(imageFeatures: Tensor, textFeatures: Tensor) -> Tensor {
        Loss.clip(imageEmbeddings: projectImageFeatures(imageFeatures), textEmbeddings: projectTextFeatures(textFeatures),
                  logitScale: logitScale.exp())
    }

    // MARK: Inference

    /// Unit-length image embeddings [N, D] of pictures, `batchSize` at a time.
    public func embedImages(_ images: [Image], batchSize: Int = 32) -> Tensor {
        withNoGrad {
            var parts: [Tensor] = []
            for start in stride(from: 0, to: images.count, by: batchSize) {
                let batch = images[start..<Swift.min(images.count, start + batchSize)]
                let x = Tensor.stack(batch.map { imageInput($0) }, axis: 0)
                parts.append(projectImageFeatures(imageFeatures(x)))
            }
            return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
        }
    }

    /// Unit-length text embeddings [N, D].
    public func embedTexts(_ texts: [String]) -> Tensor {
        withNoGrad { projectTextFeatures(textFeatures(texts)) }
    }

    /// One embedding per class from its prompts (a prompt ensemble, as in the paper): the mean of the prompts'
    /// unit embeddings, normalized again. [C, D].
    public func classEmbeddings(_ prompts: [[String]]) -> Tensor {
        withNoGrad {
            let flat = prompts.flatMap { $0 }
            let e = embedTexts(flat)
            let d = config.embeddingDimension
            let out = Tensor(shape: [prompts.count, d])
            var row = 0
            for (c, group) in prompts.enumerated() {
                for _ in group {
                    for k in 0..<d { out.pointer[c * d + k] += e.pointer[row * d + k] }
                    row += 1
                }
            }
            return Loss.normalize(out)
        }
    }

    /// Zero-shot class probabilities [N, C]: softmax over classes of the scaled cosine similarities between image
    /// embeddings [N, D] and the classes' prompt ensembles.
    public func zeroShot(_ imageEmbeddings: Tensor, classes prompts: [[String]]) -> Tensor {
        withNoGrad {
            (imageEmbeddings.matmul(classEmbeddings(prompts).transposed(0, 1)) * scale).softmax(axis: -1)
        }
    }

    // MARK: Explanations

    /// How well each cell of the image tower's last feature map matches `text` (a unit embedding [D] or [1, D]):
    /// the cell's features go through the image projection like pooled ones (pooling is the mean over cells, so with
    /// a linear projection the picture's embedding is the mean of the cells' before normalization). [h, w] cosines.
    /// For the from-scratch ViT the cells are the patches' final states, projected as the class position's is
    /// (MaskCLIP's reading, Zhou et al. 2022: those states were never trained against text, so the map is rougher).
    public func regionSimilarities(_ image: Image, text: Tensor) -> Tensor {
        withNoGrad {
            let input = imageInput(image).reshape([1, 3, config.imageSize, config.imageSize])
            if let vit = visionTransformer {
                let g = config.patchGrid, states = vit.states(input)
                let cells = states.slice(axis: 1, start: 1, length: g * g).reshape([g * g, config.visionWidth]).contiguous()
                return projectImageFeatures(cells).matmul(text.reshape([-1, 1])).reshape([g, g])
            }
            let map = (unlockedImageTower ?? towers.imageEncoder!).featureMap(input)
            let (c, h, w) = (map.shape[1], map.shape[2], map.shape[3])
            let cells = map.reshape([c, h * w]).transposed(0, 1).contiguous()          // [h*w, 1280]
            let similarity = projectImageFeatures(cells).matmul(text.reshape([-1, 1]))   // [h*w, 1]
            return similarity.reshape([h, w])
        }
    }

    /// The picture as the tower saw it (the centre square, `side` pixels) beside the same picture tinted by `heat`
    /// [h, w] (min to max: no tint to full red), the map resized bilinearly: what `attend clip classify --explain` writes.
    public func explanationImage(_ image: Image, heat: Tensor, side: Int = 256) -> Image {
        let square = image.rgb().resized(shorterSide: side).centerCropped(width: side, height: side)
        let values = heat.toArray()
        let low = values.min() ?? 0, high = values.max() ?? 1
        let scaled = values.map { high > low ? ($0 - low) / (high - low) : 0 }
        let map = Image(width: heat.shape[1], height: heat.shape[0], channels: 1, pixels: scaled)
            .resized(width: side, height: side, filter: .bilinear, roundToLevels: false)
        let plane = side * side
        var out = [Float](repeating: 1, count: 3 * side * (2 * side + 8))
        let width = 2 * side + 8
        for y in 0..<side {
            for x in 0..<side {
                let t = Swift.min(Swift.max(map.pixels[y * side + x], 0), 1)
                for c in 0..<3 {
                    let v = square.pixels[c * plane + y * side + x]
                    out[c * side * width + y * width + x] = v
                    let tint: Float = c == 0 ? 1 : 0
                    out[c * side * width + y * width + side + 8 + x] = 0.35 * v + 0.65 * (t * tint + (1 - t) * v * 0.6)
                }
            }
        }
        return Image(width: width, height: side, channels: 3, pixels: out)
    }

    // MARK: Files

    /// Saves the trained parts (use this, not `save(to:)`, which leaves out the config) (projections, temperature, the from-scratch text tower) with the config.
    public func saveModel(to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["clip_config"] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(namedTensors(), metadata: meta, to: path)
    }

    /// The config stored in a CLIP checkpoint, and its tensors.
    public static func read(_ path: String) throws -> (config: CLIPConfig, file: Safetensors.File) {
        let file = try Safetensors.read(path)
        let config = try file.config(CLIPConfig.self, key: "clip_config", source: path, writer: "attend clip train")
        try config.validate(source: path + " (clip_config)")
        return (config, file)
    }

    /// Loads a checkpoint written by `saveModel` over `towers`; the towers must be the ones its config names.
    public static func load(_ path: String, towers: CLIPTowers) throws -> CLIP {
        let (config, file) = try read(path)
        if config.textTower == .transformer ? towers.tokenizer == nil : towers.textEncoder == nil {
            throw AttendError("\(path): the model's text tower is \(config.textTower.rawValue), but the towers given do not provide it")
        }
        if config.imageTower == .efficientNetLite0 && towers.imageEncoder == nil {
            throw AttendError("\(path): the model's image tower is \(config.imageTower.rawValue), but the towers given do not provide it")
        }
        // The tensors the config implies, checked before anything of that size is allocated.
        let d = config.embeddingDimension, h = config.imageProjectionHidden
        try file.requireTensor("imageProjection.weight", shape: [h > 0 ? h : d, config.imageFeatureDimension], source: path)
        if h > 0 { try file.requireTensor("imageProjectionOut.weight", shape: [d, h], source: path) }
        try file.requireTensor("textProjection.weight", shape: [d, config.textFeatureDimension], source: path)
        if config.textTower == .transformer {
            let w = config.textWidth
            try file.requireTensor("textTransformer.tokenEmbedding.weight", shape: [config.vocabulary.count + 2, w], source: path)
            try file.requireTensor("textTransformer.positionEmbedding.weight", shape: [config.contextLength, w], source: path)
            for l in 0..<config.textLayers {
                try file.requireTensor("textTransformer.layers.\(l).feedForward.up.weight", shape: [4 * w, w], source: path)
            }
        }
        if config.unlockImageTower, let tower = towers.imageEncoder {
            try file.requireTensor("unlockedImageTower.head.weight", shape: tower.head.weight.shape, source: path)
        }
        if config.unlockTextTower, let tower = towers.textEncoder {
            let name = "embeddings.wordEmbeddings.weight"
            try file.requireTensor("unlockedTextEncoder." + name, shape: tower.model.namedTensors().first { $0.name == name }!.tensor.shape, source: path)
        }
        if config.imageTower == .vit {
            let (w, p, g) = (config.visionWidth, config.patchSize, config.patchGrid)
            try file.requireTensor("visionTransformer.patchEmbedding.weight", shape: [w, 3 * p * p], source: path)
            try file.requireTensor("visionTransformer.positionEmbedding", shape: [g * g + 1, w], source: path)
            for l in 0..<config.visionLayers {
                try file.requireTensor("visionTransformer.layers.\(l).feedForward.up.weight", shape: [4 * w, w], source: path)
            }
        }
        let clip = CLIP(config, towers: towers)
        try clip.load(file.tensors, source: path)
        return clip
    }
}

/// Locked-tower features stored on disk, so a second run over the same images skips the image tower.
///
/// ```swift
/// let cache = CLIPFeatureCache(directory: ".cache/clip-features")
/// let features = try cache.features(key: "fashion-mnist train 96px") { computeFeatures() }
/// ```
public struct CLIPFeatureCache {
    public let directory: String?

    public init(directory: String?) { self.directory = directory }

    /// The tensor stored under `key`, or `compute()`'s result, stored for next time. Nil directory: no cache.
    public func features(key: String, compute: () throws -> Tensor) throws -> Tensor {
        guard let directory else { return try compute() }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        let path = directory + "/" + String(format: "%016llx", hash) + ".safetensors"
        if let file = try? Safetensors.read(path), file.metadata["key"] == key, let t = file.tensors["features"] { return t }
        let t = try compute()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Safetensors.write([(name: "features", tensor: t)], metadata: ["key": key], to: path)
        return t
    }
}
