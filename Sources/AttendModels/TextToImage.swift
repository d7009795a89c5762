// Multimodal output, the lectures' "task adapter" that turns the shared representation back into a picture: a
// decoder from a CLIP text embedding to a small grey picture, trained on captioned pictures (Fashion-MNIST, digits)
// to rebuild each picture from its caption's embedding. What it draws for a prompt is the picture its captions taught
// (a blurred typical example of the class), and the CLIP image tower scores whether it shows what was asked for.

import AttendNN
import AttendTensor
import AttendVision
import Foundation

/// The shape of a text-to-image decoder; stored as JSON in its file's metadata under `draw_config`.
public struct TextToImageConfig: Codable, Equatable {
    /// Width of the CLIP embeddings it reads.
    public var embeddingDimension = 256
    public var hidden = 512
    /// Side of the square grey picture it draws.
    public var side = 28

    public init() {}

    public func validate(source: String) throws {
        guard (2...4096).contains(embeddingDimension) else { throw AttendError("\(source): embedding_dimension must be 2...4096, got \(embeddingDimension)") }
        guard (1...16384).contains(hidden) else { throw AttendError("\(source): hidden must be 1...16384, got \(hidden)") }
        guard (4...256).contains(side) else { throw AttendError("\(source): side must be 4...256, got \(side)") }
    }

    enum CodingKeys: String, CodingKey { case embeddingDimension = "embedding_dimension", hidden, side }
}

/// CLIP text embedding [N, D] -> picture [N, side * side] in [0, 1] (Linear, GELU, Linear, sigmoid).
///
/// ```swift
/// let decoder = try TextToImageDecoder.load("models/draw-fashion.safetensors")
/// let picture = decoder.draw(clip.embedTexts(["a photo of an ankle boot"]))[0]     // an Image, 28 x 28 grey
/// try picture.resized(width: 112, height: 112).write(to: "boot.png")
/// ```
public final class TextToImageDecoder: Module {
    public let config: TextToImageConfig
    public let hidden: Linear
    public let output: Linear

    public init(_ config: TextToImageConfig, seed: UInt64 = 0xD4A7) {
        self.config = config
        var generator = RandomGenerator(seed: seed)
        hidden = Linear(config.embeddingDimension, config.hidden, generator: &generator)
        output = Linear(config.hidden, config.side * config.side, generator: &generator)
    }

    /// Pixels [N, side * side] in [0, 1] for embeddings [N, D].
    public func callAsFunction(_ embeddings: Tensor) -> Tensor { output(hidden(embeddings).gelu()).sigmoid() }

    /// Pictures for embeddings [N, D].
    public func draw(_ embeddings: Tensor) -> [Image] {
        let pixels = withNoGrad { self(embeddings) }.toArray()
        let plane = config.side * config.side
        return (0..<embeddings.shape[0]).map {
            Image(width: config.side, height: config.side, channels: 1, pixels: Array(pixels[($0 * plane)..<(($0 + 1) * plane)]))
        }
    }

    /// Trains on pictures (grey, `side` x `side`, [N, side * side] in [0, 1]) each paired with its caption's
    /// embedding [N, D] (`captionOf[i]` indexes rows of `captionEmbeddings`): binary cross-entropy per pixel.
    @discardableResult
    public func train(pictures: Tensor, captionEmbeddings: Tensor, captionOf: [[Int]], steps: Int, batchSize: Int = 128,
                      learningRate: Float = 2e-3, seed: UInt64 = 1, progress: ProgressBar? = nil) throws -> Trainer {
        let n = pictures.shape[0], plane = config.side * config.side
        guard n >= 1, pictures.shape == [n, plane], captionOf.count == n, captionOf.allSatisfy({ !$0.isEmpty }) else {
            throw AttendError("the decoder trains on pictures [N, \(plane)] with at least one caption each, got \(pictures.shape) and \(captionOf.count) caption lists")
        }
        guard captionEmbeddings.rank == 2, captionEmbeddings.shape[1] == config.embeddingDimension else {
            throw AttendError("caption embeddings must be [M, \(config.embeddingDimension)], got \(captionEmbeddings.shape)")
        }
        let m = captionEmbeddings.shape[0]
        guard captionOf.allSatisfy({ $0.allSatisfy { (0..<m).contains($0) } }) else {
            throw AttendError("a caption index is not a row of the \(m) caption embeddings")
        }
        guard (1...1_000_000).contains(steps), (1...65_536).contains(batchSize) else { throw AttendError("steps must be 1...1000000 and the batch 1...65536") }
        let optimizer = Adam(parameters: namedParameters(), learningRate: learningRate)
        let schedule = WarmupCosineSchedule(peak: learningRate, minimum: learningRate / 10, warmupSteps: min(50, steps / 10), totalSteps: steps)
        let trainer = Trainer(model: self, optimizer: optimizer, config: TrainerConfig(steps: steps), schedule: { schedule($0) })
        try trainer.run(progress: progress, rateUnit: "pictures") { step, _ in
            var generator = RandomGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(step))
            let rows = (0..<batchSize).map { _ in Int(generator.next() % UInt64(n)) }
            let captions = rows.map { Int32(captionOf[$0][Int(generator.next() % UInt64(captionOf[$0].count))]) }
            let x = captionEmbeddings.indexSelect(IntTensor(captions, shape: [batchSize]))
            let y = pictures.indexSelect(IntTensor(rows.map { Int32($0) }, shape: [batchSize]))
            let logits = output(hidden(x).gelu())
            return TrainingLoss(Loss.binaryCrossEntropy(logits: logits, targets: y), items: batchSize)
        }
        return trainer
    }

    public func saveModel(to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["draw_config"] = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(namedTensors(), metadata: meta, to: path)
    }

    public static func load(_ path: String) throws -> TextToImageDecoder {
        let file = try Safetensors.read(path)
        let config = try file.config(TextToImageConfig.self, key: "draw_config", source: path, writer: "attend draw train")
        try config.validate(source: path + " (draw_config)")
        try file.requireTensor("hidden.weight", shape: [config.hidden, config.embeddingDimension], source: path)
        try file.requireTensor("output.weight", shape: [config.side * config.side, config.hidden], source: path)
        let decoder = TextToImageDecoder(config)
        try decoder.load(file.tensors, source: path)
        return decoder
    }
}
