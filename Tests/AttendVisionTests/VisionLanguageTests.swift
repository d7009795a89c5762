// The multimodal LM: prompts split around the picture, the loss on the answer only with its gradient reaching the
// projector through a (tiny, random) Llama checked by central differences, training that lowers it, description
// scoring that reads class names whole; and the shipped projector over the real SmolLM2 naming the classes of
// Fashion-MNIST test pictures.

import AttendDatasets
import AttendLM
import AttendModels
import AttendNN
import AttendTensor
import AttendVision
import Foundation
import XCTest

final class VisionLanguageTests: XCTestCase {
    static var smolLM: LoadedLanguageModel?
    static var encoder: EfficientNet?

    func parts() throws -> (EfficientNet, LoadedLanguageModel) {
        if VisionLanguageTests.encoder == nil {
            VisionLanguageTests.encoder = try EfficientNet.load(try requireAsset("efficientnet-lite0/efficientnet-lite0-57934424.pth", fetch: "efficientnet-lite0"))
            let gguf = try requireAsset("SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf", fetch: "SmolLM2-135M-Instruct")
            VisionLanguageTests.smolLM = try ModelLocator.languageModel(gguf, int8Activations: false)
        }
        return (VisionLanguageTests.encoder!, VisionLanguageTests.smolLM!)
    }

    /// SmolLM2's tokenizer and template over a tiny random Llama (width 16, 2 layers): fast enough for gradients.
    func tinyModel(_ config: inout VisionLanguageConfig) throws -> VisionLanguageModel {
        let (encoder, smol) = try parts()
        var generator = RandomGenerator(seed: 3)
        let llama = LlamaModel(LlamaConfig(vocabSize: 49152, hiddenSize: 16, intermediateSize: 32, layerCount: 2, headCount: 2, kvHeadCount: 1,
                                           ropeTheta: 10000, rmsNormEps: 1e-5, contextLength: 256), generator: &generator)
        // Small token embeddings (as trained models have): the logits then leave room for the picture to matter.
        llama.embedding.weight.assign(withNoGrad { llama.embedding.weight * 0.05 })
        let language = LoadedLanguageModel(model: llama, tokenizer: smol.tokenizer, chatTemplate: smol.chatTemplate, addBos: false, source: "tiny")
        config.languageWidth = 16
        config.projectorHidden = 8
        return try VisionLanguageModel(config: config, imageEncoder: encoder, language: language)
    }

    func testClassNamesAreReadWhole() {
        let c = ClassCaptions.fashionMNIST
        XCTAssertEqual(c.classesNamed(in: "A dark T-shirt."), [0])          // not also "shirt"
        XCTAssertEqual(c.classesNamed(in: "This is an ankle boot."), [9])   // not also "boot" twice
        XCTAssertEqual(c.classesNamed(in: "a sneaker, and a bag"), [7, 8])
        XCTAssertEqual(c.classesNamed(in: "a shoe"), [])
        XCTAssertEqual(c.classesNamed(in: "shirts"), [])                    // whole words only
        XCTAssertEqual(c.classesNamed(in: "A light button-up shirt."), [6])
        XCTAssertEqual(c.answers(pixels: [0.9], label: 9)[0], "A dark ankle boot.")
        XCTAssertEqual(ClassCaptions.digits.classesNamed(in: "A photo of a handwritten 7."), [7])
    }

    func testPromptsSplitAroundThePicture() throws {
        var config = VisionLanguageConfig()
        let vlm = try tinyModel(&config)
        let e = try vlm.example(answer: "A bag.")
        let tokenizer = vlm.language.tokenizer
        XCTAssertTrue(tokenizer.decode(e.before).hasSuffix("<|im_start|>user\n"))
        XCTAssertTrue(tokenizer.decode(e.after).hasPrefix("\nWhat is in the picture?<|im_end|>"))
        XCTAssertTrue(tokenizer.decode(e.after).hasSuffix("<|im_start|>assistant\n"))
        XCTAssertEqual(tokenizer.decode(e.answer), "A bag.<|im_end|>")
        let input = vlm.input(cells: Tensor(shape: [9, 1280]), example: e)
        XCTAssertEqual(input.count, e.before.count + 9 + e.after.count + e.answer.count)
        for bad in ["no picture here", "<image> and <image>"] {
            XCTAssertThrowsError(try vlm.example(prompt: bad)) { XCTAssertTrue("\($0)".contains("<image> once"), "\($0)") }
        }
        XCTAssertThrowsError(try vlm.chatInput(rendered: "no image", cells: Tensor(shape: [9, 1280])))

        // The loss is the cross-entropy of each answer token predicted from the position before it, by the full logits.
        let cells = Tensor.uniform([9, 1280], low: 0, high: 2, seed: 5)
        let model = vlm.language.model as! LlamaModel
        let all = withNoGrad { model.logits(inputEmbeddings: model.inputEmbeddings(vlm.input(cells: cells, example: e)).reshape([1, input.count, -1])) }
        let start = e.before.count + 9 + e.after.count
        let logp = all.reshape([input.count, -1]).logSoftmax(axis: -1)
        var expected: Float = 0
        for (k, token) in e.answer.enumerated() { expected -= logp.toArray()[(start + k - 1) * 49152 + Int(token)] }
        XCTAssertEqual(withNoGrad { vlm.loss([(cells: cells, example: e)]).item }, expected / Float(e.answer.count), accuracy: 1e-4)
    }

    /// d(loss)/d(projector) by central differences, through every layer of the tiny Llama; only answer tokens count
    /// (changing the prompt after the answer's last token changes nothing).
    func testProjectorGradientMatchesFiniteDifferences() throws {
        var config = VisionLanguageConfig()
        let vlm = try tinyModel(&config)
        let cells = [Tensor.uniform([9, 1280], low: 0, high: 2, seed: 1), Tensor.uniform([9, 1280], low: 0, high: 2, seed: 2)]
        let batch = [(cells: cells[0], example: try vlm.example(answer: "A dark coat.")), (cells: cells[1], example: try vlm.example(answer: "A bag."))]
        vlm.projector.zeroGrad()
        vlm.loss(batch).backward()
        let h: Float = 1e-2
        for parameter in [vlm.projector.output.bias!, vlm.projector.input.weight] {
            let g = parameter.grad!.toArray()
            for i in [0, 3, 7] {
                let saved = parameter.pointer[i]
                parameter.pointer[i] = saved + h
                let up = withNoGrad { vlm.loss(batch).item }
                parameter.pointer[i] = saved - h
                let down = withNoGrad { vlm.loss(batch).item }
                parameter.pointer[i] = saved
                let numeric = (up - down) / (2 * h)
                XCTAssertEqual(g[i], numeric, accuracy: 1e-3 + 2e-2 * abs(numeric), "element \(i)")
            }
        }
        // Sequences of different lengths padded together give each one's own loss.
        let alone = withNoGrad { vlm.loss([batch[1]]).item }
        XCTAssertNotEqual(alone, withNoGrad { vlm.loss(batch).item })
        let tokens = Float(batch[0].example.answer.count + batch[1].example.answer.count)
        let each = withNoGrad { vlm.loss([batch[0]]).item * Float(batch[0].example.answer.count) + alone * Float(batch[1].example.answer.count) }
        XCTAssertEqual(withNoGrad { vlm.loss(batch).item }, each / tokens, accuracy: 1e-4)
    }

    func testTrainingLowersTheLossAndRoundTrips() throws {
        var config = VisionLanguageConfig()
        let vlm = try tinyModel(&config)
        let cells = (0..<4).map { Tensor.uniform([9, 1280], low: 0, high: 2, seed: UInt64($0)) }
        let answers = [["A coat."], ["A bag."], ["A sandal."], ["A dress."]]
        var training = VisionLanguageTrainingConfig()
        training.steps = 60
        training.batchSize = 4
        training.warmupSteps = 5
        training.learningRate = 1e-2
        let all = try zip(cells, answers).map { (cells: $0.0, example: try vlm.example(answer: $0.1[0])) }
        let before = withNoGrad { vlm.loss(all).item }
        try vlm.train(on: cells, answers: answers, config: training)
        let after = withNoGrad { vlm.loss(all).item }
        XCTAssertLessThan(after, before - 0.1, "the answers' loss over the four pictures")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try vlm.save(to: path)
        let loaded = try VisionLanguageModel.load(path, imageEncoder: vlm.imageEncoder, language: vlm.language)
        XCTAssertEqual(loaded.projector(cells[0]).toArray(), vlm.projector(cells[0]).toArray())
        XCTAssertThrowsError(try VisionLanguageModel.load(path, imageEncoder: vlm.imageEncoder, language: try parts().1)) {
            XCTAssertTrue("\($0)".contains("embeds tokens in 576"), "\($0)")
        }
        XCTAssertThrowsError(try vlm.train(on: cells, answers: [["x"]], config: training))
        // A projector file whose config is out of range, or not a projector at all: errors naming the file and key.
        var bad = vlm.config
        bad.imageSize = 100
        try Safetensors.write(vlm.projector.namedTensors(), metadata: ["vlm_config": String(decoding: try JSONEncoder().encode(bad), as: UTF8.self)], to: path)
        XCTAssertThrowsError(try VisionLanguageModel.load(path, imageEncoder: vlm.imageEncoder, language: vlm.language)) {
            XCTAssertTrue("\($0)".contains("(vlm_config): image_size must be a multiple of 32"), "\($0)")
        }
        bad = vlm.config
        bad.projectorHidden = 16384
        try Safetensors.write(vlm.projector.namedTensors(), metadata: ["vlm_config": String(decoding: try JSONEncoder().encode(bad), as: UTF8.self)], to: path)
        XCTAssertThrowsError(try VisionLanguageModel.load(path, imageEncoder: vlm.imageEncoder, language: vlm.language)) {
            XCTAssertTrue("\($0)".contains("'input.weight' has shape [8, 1280], the config implies [16384, 1280]"), "\($0)")
        }
        try Safetensors.write(vlm.projector.namedTensors(), to: path)
        XCTAssertThrowsError(try VisionLanguageModel.load(path, imageEncoder: vlm.imageEncoder, language: vlm.language)) {
            XCTAssertTrue("\($0)".contains("vlm_config' is missing"), "\($0)")
        }
    }

    /// Everyday examples from the ImageNet classifier: crops it names confidently, and one prototype picture per class.
    func testClassifierExamples() throws {
        var config = VisionLanguageConfig()
        let vlm = try tinyModel(&config)
        let crops = try CaptionedImages.photoCrops([try requireAsset("scikit-image-data/coffee.png", fetch: "scikit-image-data")], cropsPerPhoto: 3)
        let labels = try ImageNetLabels.load(folder: try requireAsset("imagenet-labels", fetch: "imagenet-labels"))
        let all = try vlm.classifierExamples(crops: crops, labels: labels, minimumConfidence: 0)
        XCTAssertEqual(all.cells.count, 3 + 1000)
        XCTAssertEqual(all.answers[3 + 281], ["A tabby.", "This is a tabby.", "A photo of a tabby."])
        let prototype = all.cells[3 + 281].toArray()
        XCTAssertEqual(Array(prototype[0..<1280]), Array(prototype[1280 * 8..<1280 * 9]), "every cell of a prototype picture is the same")
        let none = try vlm.classifierExamples(crops: crops, labels: labels, minimumConfidence: 1.01, prototypes: false)
        XCTAssertTrue(none.cells.isEmpty, "no crop is named with more than certainty")
    }

    /// The committed projector over the real SmolLM2 names the class of Fashion-MNIST test pictures it never saw.
    func testShippedProjectorDescribesFashionMNIST() throws {
        let (encoder, smol) = try parts()
        let path = FileManager.default.currentDirectoryPath + "/models/vlm-fashion.safetensors"
        let vlm = try VisionLanguageModel.load(path, imageEncoder: encoder, language: smol)
        let test: ImageDataset
        do { test = try ImageDataset.fashionMNIST(train: false) } catch {
            if ProcessInfo.processInfo.environment["CI"] != nil { throw error }
            throw XCTSkip("\(error)")
        }
        let data = CaptionedImages.fashionMNIST(test, limit: 10)
        let pictures = try data.sourceIndices.map { try data.image($0) }
        let score = try vlm.scoreDescriptions(pictures, labels: data.labels!, captioner: .fashionMNIST, maxTokens: 12)
        XCTAssertGreaterThanOrEqual(score.accuracy, 0.7, "\(score.samples)")
        let blind = try vlm.scoreDescriptions(Array(pictures.prefix(5)), labels: Array(data.labels!.prefix(5)), captioner: .fashionMNIST,
                                              maxTokens: 12, withoutImage: true)
        XCTAssertLessThan(blind.accuracy, score.accuracy, "without the picture: \(blind.samples)")
    }
}
