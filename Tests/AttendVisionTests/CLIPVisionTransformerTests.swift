// CLIP's from-scratch image tower: the Vision Transformer against open_clip's own `VisionTransformer` (forward and
// every gradient; scripts/reference/make_clip_vit_fixtures.py made the fixture in float64), and a whole CLIP trained
// from scratch (ViT + text Transformer) on real Fashion-MNIST: it learns, saves, loads and refuses bad shapes.

import AttendDatasets
import AttendModels
import AttendNN
import AttendTensor
import AttendTokenizers
import AttendTestSupport
import AttendVision
import Foundation
import XCTest

final class CLIPVisionTransformerTests: XCTestCase {

    /// Patches are cut in reading order and flattened (channel, row, column), as the stride-p convolution reads them.
    func testPatchesAreTheConvolutionsWindows() {
        let x = Tensor((0..<(2 * 3 * 4 * 4)).map { Float($0) }, shape: [2, 3, 4, 4])
        let p = CLIPVisionTransformer.patches(x, patchSize: 2)
        XCTAssertEqual(p.shape, [2, 4, 12])
        let v = p.toArray()
        // Picture 0, patch 1 (top right): channel 0 rows 0-1, columns 2-3, then channels 1 and 2.
        XCTAssertEqual(Array(v[12..<24]), [2, 3, 6, 7, 18, 19, 22, 23, 34, 35, 38, 39])
        // Picture 1, patch 2 (bottom left), channel 0.
        XCTAssertEqual(Array(v[(4 + 2) * 12..<(4 + 2) * 12 + 4]), [56, 57, 60, 61])
    }

    /// The tower's pooled features, its patch states and the gradients of every parameter and of the pictures equal
    /// open_clip's `VisionTransformer` to 1e-4. Shown to fail with the layer norm before the blocks left out (features
    /// off by 0.87) and with each patch's pixels read column by column (0.84).
    func testMatchesOpenCLIPVisionTransformer() throws {
        let f = try Safetensors.read(visionFixture("clip_vit.safetensors"))
        var config = CLIPConfig(imageTower: .vit, textTower: .transformer)
        config.imageSize = Int(f.metadata["image_size"]!)!
        config.patchSize = Int(f.metadata["patch_size"]!)!
        config.visionWidth = Int(f.metadata["width"]!)!
        config.visionHeads = Int(f.metadata["heads"]!)!
        config.visionLayers = Int(f.metadata["layers"]!)!
        var g = RandomGenerator(seed: 1)
        let vit = CLIPVisionTransformer(config, generator: &g)
        var params: [String: Tensor] = [:]
        for (name, t) in f.tensors where name.hasPrefix("param.") { params[String(name.dropFirst(6))] = t }
        try vit.load(params, source: "fixture")
        XCTAssertEqual(Set(vit.namedParameters().map(\.name)), Set(params.keys), "parameter names cover open_clip's")
        let x = f.tensors["input"]!.copy()
        x.requiresGrad = true
        let features = vit(x)
        assertClose(features, f.tensors["features"]!, "features")
        let g2 = config.patchGrid * config.patchGrid
        assertClose(withNoGrad { vit.states(x) }.slice(axis: 1, start: 1, length: g2).contiguous(), f.tensors["tokens"]!, "patch states")
        (features * f.tensors["loss_weights"]!).sum().backward()
        assertClose(x.grad!, f.tensors["grad.input"]!, "grad input")
        for (name, p) in vit.namedParameters() { assertClose(p.grad!, f.tensors["grad." + name]!, "grad \(name)") }
    }

    func testConfigRefusesPatchesThatDoNotTile() {
        var config = CLIPConfig(imageTower: .vit, textTower: .transformer)
        config.vocabulary = [1, 2]
        config.imageSize = 30
        config.patchSize = 7
        XCTAssertThrowsError(try config.validate(source: "x.safetensors")) {
            XCTAssertTrue("\($0)".contains("x.safetensors: image_size must be 4...1024 and a multiple of patch_size 7, got 30"), "\($0)")
        }
        config.imageSize = 28
        config.visionHeads = 3
        XCTAssertThrowsError(try config.validate(source: "x")) { XCTAssertTrue("\($0)".contains("vision_heads must divide vision_width 128"), "\($0)") }
        config.visionHeads = 4
        XCTAssertNoThrow(try config.validate(source: "x"))
        XCTAssertEqual(config.imageFeatureDimension, 128)
    }

    /// A whole CLIP from scratch on 300 real Fashion-MNIST pictures: the loss falls well below where it starts, the
    /// image tower's parameters get gradients, the file round-trips (same embeddings), a checkpoint whose ViT
    /// tensors disagree with its config is refused, and the region map has the patch grid's shape.
    func testWholeCLIPFromScratchTrains() throws {
        let fashion: ImageDataset
        do { fashion = try ImageDataset.fashionMNIST(train: true) } catch {
            if ProcessInfo.processInfo.environment["CI"] != nil { throw error }
            throw XCTSkip("\(error)")
        }
        let train = CaptionedImages.fashionMNIST(fashion, limit: 300)
        var config = CLIPConfig(imageTower: .vit, textTower: .transformer)
        config.imageSize = 28
        config.patchSize = 7
        config.visionWidth = 32
        config.visionLayers = 2
        config.visionHeads = 2
        config.embeddingDimension = 32
        config.textWidth = 32
        config.textLayers = 1
        // No EfficientNet file is needed (or read) for a from-scratch image tower.
        let towers = try CLIPTowers.load(for: config, efficientNet: "/nonexistent.pth", miniLM: "/nonexistent",
                                         clipMerges: try requireAsset("clip-bpe/bpe_simple_vocab_16e6.txt.gz", fetch: "clip-bpe"))
        XCTAssertNil(towers.imageEncoder)
        config.vocabulary = Array(Set(train.captions.flatMap { $0.flatMap { towers.tokenizer!.encode($0) } })).sorted()
        try config.validate(source: "test")
        let clip = CLIP(config, towers: towers)
        let rows = try clip.imageFeatures(of: train, cache: CLIPFeatureCache(directory: "/nonexistent-cache"))
        XCTAssertEqual(rows.shape, [300, 3 * 28 * 28], "a trained tower's rows are its inputs, never cached")
        var training = CLIPTrainingConfig()
        training.steps = 80
        training.batchSize = 32
        training.warmupSteps = 5
        training.learningRate = 3e-3
        let trainer = try clip.train(on: train, imageFeatures: rows, config: training)
        XCTAssertLessThan(trainer.recentLoss(10), trainer.lossHistory[0].loss - 0.5, "\(trainer.lossHistory.map(\.loss))")
        XCTAssertNotNil(clip.visionTransformer!.patchEmbedding.weight.grad, "the image tower was trained")
        XCTAssertNotNil(clip.visionTransformer!.classEmbedding.grad)

        let pictures = try (0..<3).map { try train.image($0) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("clip-vit-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try clip.saveModel(to: path)
        let loaded = try CLIP.load(path, towers: towers)
        XCTAssertEqual(loaded.config, config)
        assertClose(loaded.embedImages(pictures), clip.embedImages(pictures), tolerance: 1e-6, "embeddings after a round trip")
        assertClose(clip.embedImageRows(rows.slice(axis: 0, start: 0, length: 3)), clip.embedImages(pictures), tolerance: 1e-5,
                    "rows embed as the pictures do")
        XCTAssertEqual(clip.regionSimilarities(pictures[0], text: clip.embedTexts(["a photo of a shirt"])).shape, [4, 4])

        var finer = config
        finer.patchSize = 4
        try Safetensors.write(clip.namedTensors(), metadata: ["clip_config": String(decoding: try JSONEncoder().encode(finer), as: UTF8.self)], to: path)
        XCTAssertThrowsError(try CLIP.load(path, towers: towers)) {
            XCTAssertTrue("\($0)".contains("visionTransformer.patchEmbedding.weight' has shape [32, 147], the config implies [32, 48]"), "\($0)")
        }
    }
}
