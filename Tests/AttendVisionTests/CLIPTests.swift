// CLIP over the real towers (EfficientNet-Lite0, all-MiniLM-L6-v2, CLIP's BPE) and real Fashion-MNIST: the caption
// rules, training that learns (zero-shot accuracy far above chance after a short run), the shipped model's accuracy,
// files that round-trip and refuse what they cannot load.

import AttendDatasets
import AttendModels
import AttendNN
import AttendTensor
import AttendTestSupport
import AttendTokenizers
import AttendVision
import Foundation
import XCTest

final class CLIPTests: XCTestCase {
    static var cachedTowers: [CLIPConfig.TextTower: CLIPTowers] = [:]

    func towers(_ text: CLIPConfig.TextTower) throws -> CLIPTowers {
        if let t = CLIPTests.cachedTowers[text] { return t }
        let config = CLIPConfig(imageTower: .efficientNetLite0, textTower: text)
        let t = try CLIPTowers.load(for: config,
                                    efficientNet: try requireAsset("efficientnet-lite0/efficientnet-lite0-57934424.pth", fetch: "efficientnet-lite0"),
                                    miniLM: try requireAsset("all-MiniLM-L6-v2", fetch: "all-MiniLM-L6-v2"),
                                    clipMerges: try requireAsset("clip-bpe/bpe_simple_vocab_16e6.txt.gz", fetch: "clip-bpe"))
        CLIPTests.cachedTowers[text] = t
        return t
    }

    func fashion(train: Bool) throws -> ImageDataset {
        do { return try ImageDataset.fashionMNIST(train: train) } catch {
            if ProcessInfo.processInfo.environment["CI"] != nil { throw error }
            throw XCTSkip("\(error)")
        }
    }

    func testCaptionsNameTheClassAndTheShade() {
        XCTAssertEqual(ClassCaptions.shade(pixels: [0, 0, 0.8, 0.75]), "dark")   // inverted: high = dark
        XCTAssertEqual(ClassCaptions.shade(pixels: [0, 0.3, 0.4]), "light")
        XCTAssertNil(ClassCaptions.shade(pixels: [0, 0.5, 0.6]))
        XCTAssertNil(ClassCaptions.shade(pixels: [0, 0.01]))                       // nothing drawn
        XCTAssertEqual(ClassCaptions.shade(pixels: [0.7]), "dark")                 // the boundaries
        XCTAssertNil(ClassCaptions.shade(pixels: [0.45]))
        let boot = ClassCaptions.fashionMNIST.captions(pixels: [0.9, 0.8], label: 9)
        XCTAssertEqual(boot.first, "a photo of a dark ankle boot")
        XCTAssertTrue(boot.contains("a dark short boot, a kind of shoe"))
        XCTAssertEqual(ClassCaptions.fashionMNIST.captions(pixels: [0.5], label: 4)[1], "a coat")
        XCTAssertEqual(ClassCaptions.withArticle("ankle boot"), "an ankle boot")
        XCTAssertEqual(ClassCaptions.fashionMNIST.classPrompts[9][0], "a photo of an ankle boot")
    }

    func testExcludedClassesAreLeftOut() throws {
        let data = CaptionedImages.fashionMNIST(try fashion(train: false), excluding: [9, 3], limit: 300)
        XCTAssertEqual(data.count, 300)
        XCTAssertFalse(data.labels!.contains(9))
        XCTAssertFalse(data.labels!.contains(3))
        XCTAssertTrue(data.captions.allSatisfy { !$0.joined().contains("boot") && !$0.joined().contains("dress") })
    }

    /// Blurred copies keep the captions, labels and sources; each picture is blurred by a sigma from the range (one
    /// fixed sigma gives exactly `gaussianBlurred`'s picture), the same for the same seed and another for another.
    func testBlurredCopiesKeepCaptionsAndBlurEachPicture() throws {
        let data = CaptionedImages.fashionMNIST(try fashion(train: false), limit: 20)
        let fixed = data.blurred(sigmas: 1.2...1.2)
        XCTAssertEqual(fixed.captions, data.captions)
        XCTAssertEqual(fixed.labels, data.labels)
        XCTAssertEqual(fixed.sourceIndices, data.sourceIndices)
        XCTAssertNotEqual(fixed.identity, data.identity, "cached features must not be shared with the sharp pictures")
        for i in [0, 19] {
            let index = data.sourceIndices[i]
            XCTAssertEqual(try fixed.image(index), try data.image(index).gaussianBlurred(sigma: 1.2))
        }
        let ranged = data.blurred(sigmas: 0.5...2), again = data.blurred(sigmas: 0.5...2), other = data.blurred(sigmas: 0.5...2, seed: 12)
        let index = data.sourceIndices[3]
        XCTAssertEqual(try ranged.image(index), try again.image(index))
        XCTAssertNotEqual(try ranged.image(index), try other.image(index))
        let sharp = try data.image(index)
        XCTAssertNotEqual(try ranged.image(index), sharp)
        XCTAssertEqual(try ranged.image(index).pixels.reduce(0, +), sharp.pixels.reduce(0, +), accuracy: 0.05 * sharp.pixels.reduce(0, +),
                       "a blur moves ink, it does not make or lose much of it")
    }

    /// A short run over locked towers learns: zero-shot accuracy on unseen test pictures far above chance (10%), and
    /// the loss falls. Breaking the loss's targets or the projections' gradients fails this.
    func testShortTrainingLearnsZeroShotFashionMNIST() throws {
        var config = CLIPConfig(imageTower: .efficientNetLite0, textTower: .miniLM)
        config.imageSize = 32
        config.embeddingDimension = 64
        let clip = CLIP(config, towers: try towers(.miniLM))
        let train = CaptionedImages.fashionMNIST(try fashion(train: true), limit: 300)
        let test = CaptionedImages.fashionMNIST(try fashion(train: false), limit: 200)
        let cache = CLIPFeatureCache(directory: nil)
        let trainFeatures = try clip.imageFeatures(of: train, cache: cache), testFeatures = try clip.imageFeatures(of: test, cache: cache)
        let before = try clip.evaluate(on: test, imageFeatures: testFeatures, prompts: ClassCaptions.fashionMNIST.classPrompts, pairs: 100)
        var training = CLIPTrainingConfig()
        training.steps = 150
        training.batchSize = 64
        training.warmupSteps = 10
        let trainer = try clip.train(on: train, imageFeatures: trainFeatures, config: training)
        let after = try clip.evaluate(on: test, imageFeatures: testFeatures, prompts: ClassCaptions.fashionMNIST.classPrompts, pairs: 100)
        XCTAssertLessThan(trainer.recentLoss(10), trainer.lossHistory[0].loss - 0.5, "the loss falls")
        XCTAssertGreaterThan(after.accuracy, 0.5, "zero-shot accuracy after training (before: \(before.accuracy))")
        XCTAssertGreaterThan(after.imageToText[1], before.imageToText[1])   // recall@5 improves
    }

    /// The learned log scale is clamped to [0, log 100] as open_clip clamps it.
    func testLogitScaleIsClamped() throws {
        let clip = CLIP(CLIPConfig(), towers: try towers(.miniLM))
        XCTAssertEqual(clip.scale, 1 / 0.07, accuracy: 1e-3)
        clip.logitScale.pointer[0] = Foundation.log(1000)
        clip.clampLogitScale()
        XCTAssertEqual(Foundation.exp(clip.logitScale.item), 100, accuracy: 1e-3)
        clip.logitScale.pointer[0] = -2
        clip.clampLogitScale()
        XCTAssertEqual(clip.logitScale.item, 0)
    }

    /// The from-scratch text tower (CLIP's BPE, a vocabulary of the training captions' tokens) trains too.
    func testFromScratchTextTowerTrains() throws {
        let towers = try towers(.transformer)
        let train = CaptionedImages.fashionMNIST(try fashion(train: true), limit: 200)
        var config = CLIPConfig(imageTower: .efficientNetLite0, textTower: .transformer)
        config.imageSize = 32
        config.embeddingDimension = 32
        config.textWidth = 32
        config.textLayers = 1
        config.vocabulary = Array(Set(train.captions.flatMap { $0.flatMap { towers.tokenizer!.encode($0) } })).sorted()
        try config.validate(source: "test")
        let clip = CLIP(config, towers: towers)
        let transformer = clip.textTransformer!
        XCTAssertEqual(transformer.tokenRows(towers.tokenizer!.encode("zeppelin")), [1], "an unseen word is the unknown token")
        XCTAssertEqual(transformer.tokenRows([]), [1])
        XCTAssertTrue(transformer.tokenRows(towers.tokenizer!.encode("a dark coat")).allSatisfy { $0 >= 2 })
        let features = try clip.imageFeatures(of: train, cache: CLIPFeatureCache(directory: nil))
        var training = CLIPTrainingConfig()
        training.steps = 60
        training.batchSize = 32
        training.warmupSteps = 5
        training.learningRate = 3e-3
        let trainer = try clip.train(on: train, imageFeatures: features, config: training)
        XCTAssertLessThan(trainer.recentLoss(10), trainer.lossHistory[0].loss - 0.3)
        XCTAssertNotNil(transformer.tokenEmbedding.weight.grad, "the text tower was trained")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("clip-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var big = config
        big.vocabulary = (0..<40_000).map { Int32($0) }
        try Safetensors.write(clip.namedTensors(), metadata: ["clip_config": String(decoding: try JSONEncoder().encode(big), as: UTF8.self)], to: path)
        XCTAssertThrowsError(try CLIP.load(path, towers: towers)) {
            XCTAssertTrue("\($0)".contains("tokenEmbedding.weight' has shape [\(config.vocabulary.count + 2), 32], the config implies [40002, 32]"), "\($0)")
        }
        try clip.saveModel(to: path)
        XCTAssertEqual(try CLIP.load(path, towers: towers).textFeatures(["a dark coat"]).toArray(), clip.textFeatures(["a dark coat"]).toArray())
    }

    /// Unlocking the pretrained image tower trains the model's own copy of it (the towers others share are left as
    /// they were), the loss falls, the copy round-trips through the file, and a file that lacks it is refused.
    func testUnlockedImageTowerTrainsItsOwnCopy() throws {
        let towers = try towers(.miniLM)
        let train = CaptionedImages.fashionMNIST(try fashion(train: true), limit: 96)
        var config = CLIPConfig(imageTower: .efficientNetLite0, textTower: .miniLM)
        config.imageSize = 32
        config.embeddingDimension = 32
        config.unlockImageTower = true
        try config.validate(source: "test")
        let clip = CLIP(config, towers: towers)
        let shared = towers.imageEncoder!.head.weight.toArray()
        let rows = try clip.imageFeatures(of: train, cache: CLIPFeatureCache(directory: nil))
        XCTAssertEqual(rows.shape, [96, 3 * 32 * 32])
        var training = CLIPTrainingConfig()
        training.steps = 25
        training.batchSize = 32
        training.warmupSteps = 2
        training.learningRate = 1e-3
        let trainer = try clip.train(on: train, imageFeatures: rows, config: training)
        XCTAssertLessThan(trainer.recentLoss(5), trainer.lossHistory[0].loss - 0.3, "\(trainer.lossHistory.map(\.loss))")
        let tuned = clip.unlockedImageTower!
        XCTAssertNotNil(tuned.stem.weight.grad, "the gradient reaches the first convolution")
        XCTAssertNotEqual(tuned.head.weight.toArray(), shared, "the copy trained")
        XCTAssertEqual(towers.imageEncoder!.head.weight.toArray(), shared, "the shared tower is untouched")

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("clip-unlocked-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try clip.saveModel(to: path)
        let pictures = try (0..<2).map { try train.image($0) }
        let loaded = try CLIP.load(path, towers: towers)
        assertClose(loaded.embedImages(pictures), clip.embedImages(pictures), tolerance: 1e-6, "embeddings after a round trip")
        let x = rows.slice(axis: 0, start: 0, length: 2).reshape([2, 3, 32, 32])
        let own = withNoGrad { loaded.imageFeatures(x) }.toArray(), base = withNoGrad { towers.imageEncoder!.pooledFeatures(x) }.toArray()
        XCTAssertGreaterThan(zip(own, base).map { abs($0 - $1) }.max()!, 1e-3, "the loaded model uses its own tower")
        try Safetensors.write(clip.namedTensors().filter { !$0.name.hasPrefix("unlockedImageTower.") },
                              metadata: ["clip_config": String(decoding: try JSONEncoder().encode(config), as: UTF8.self)], to: path)
        XCTAssertThrowsError(try CLIP.load(path, towers: towers)) {
            XCTAssertTrue("\($0)".contains("unlockedImageTower.head.weight"), "\($0)")
        }
    }

    /// Unlocking the pretrained text tower trains the model's own copy of MiniLM (the shared one is left as it was)
    /// through the pooled, normalized sentence embeddings; the copy round-trips through the file.
    func testUnlockedTextTowerTrainsItsOwnCopy() throws {
        let towers = try towers(.miniLM)
        let train = CaptionedImages.fashionMNIST(try fashion(train: true), limit: 64)
        var config = CLIPConfig(imageTower: .efficientNetLite0, textTower: .miniLM)
        config.imageSize = 32
        config.embeddingDimension = 32
        config.unlockTextTower = true
        try config.validate(source: "test")
        let clip = CLIP(config, towers: towers)
        let shared = towers.textEncoder!.embed(["a photo of a dark coat"]).toArray()
        let before = withNoGrad { clip.textFeatures(["a photo of a dark coat"]) }.toArray()
        XCTAssertEqual(zip(before, shared).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-5, "the copy starts as the shared tower")
        let rows = try clip.imageFeatures(of: train, cache: CLIPFeatureCache(directory: nil))
        var training = CLIPTrainingConfig()
        training.steps = 12
        training.batchSize = 16
        training.warmupSteps = 1
        training.learningRate = 1e-3
        let trainer = try clip.train(on: train, imageFeatures: rows, config: training)
        XCTAssertLessThan(trainer.recentLoss(3), trainer.lossHistory[0].loss, "\(trainer.lossHistory.map(\.loss))")
        let first = clip.unlockedTextEncoder!.embeddings.wordEmbeddings.weight
        XCTAssertNotNil(first.grad, "the gradient reaches the word embeddings")
        let after = withNoGrad { clip.textFeatures(["a photo of a dark coat"]) }
        XCTAssertGreaterThan(zip(after.toArray(), before).map { abs($0 - $1) }.max()!, 1e-4, "the copy trained")
        XCTAssertEqual(towers.textEncoder!.embed(["a photo of a dark coat"]).toArray(), shared, "the shared tower is untouched")

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("clip-unlocked-text-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try clip.saveModel(to: path)
        let loaded = try CLIP.load(path, towers: towers)
        assertClose(loaded.embedTexts(["a photo of a dark coat", "a bag"]), clip.embedTexts(["a photo of a dark coat", "a bag"]),
                    tolerance: 1e-6, "text embeddings after a round trip")
    }

    /// The committed model (models/clip.safetensors) classifies unseen Fashion-MNIST test pictures by prompts
    /// alone, and a picture's best-matching region map has the feature map's shape.
    func testShippedModelZeroShotAccuracy() throws {
        let clip = try CLIP.load(FileManager.default.currentDirectoryPath + "/models/clip.safetensors", towers: try towers(.miniLM))
        let test = CaptionedImages.fashionMNIST(try fashion(train: false), limit: 300)
        let features = try clip.imageFeatures(of: test, cache: CLIPFeatureCache(directory: nil))
        let result = try clip.evaluate(on: test, imageFeatures: features, prompts: ClassCaptions.fashionMNIST.classPrompts, pairs: 100)
        XCTAssertGreaterThan(result.accuracy, 0.8, "\(result.classes.map { "\($0.name) \($0.accuracy)" })")
        let boot = try test.image(test.labels!.firstIndex(of: 9)!)
        let p = clip.zeroShot(clip.embedImages([boot]), classes: ClassCaptions.fashionMNIST.classPrompts).toArray()
        XCTAssertEqual(p.indices.max { p[$0] < p[$1] }, 9)
        XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-4)
        let map = clip.regionSimilarities(boot, text: clip.classEmbeddings([ClassCaptions.fashionMNIST.classPrompts[9]]))
        XCTAssertEqual(map.shape, [3, 3])
        let picture = clip.explanationImage(boot, heat: map, side: 64)
        XCTAssertEqual([picture.width, picture.height, picture.channels], [136, 64, 3])
    }

    /// The shipped model answers for everyday photos it never saw (scikit-image's), among ten everyday labels.
    func testShippedModelNamesEverydayPhotos() throws {
        let clip = try CLIP.load(FileManager.default.currentDirectoryPath + "/models/clip.safetensors", towers: try towers(.miniLM))
        let labels = ["cat", "cup of coffee", "astronaut", "rocket", "motorcycle", "horse", "camera", "clock", "coins", "moon"]
        let expected = ["chelsea.png": "cat", "coffee.png": "cup of coffee", "rocket.jpg": "rocket", "motorcycle_left.png": "motorcycle",
                        "camera.png": "camera", "clock_motion.png": "clock"]
        let files = expected.keys.sorted()
        let pictures = try files.map { try Image.read(try requireAsset("scikit-image-data/" + $0, fetch: "scikit-image-data")) }
        let p = clip.zeroShot(clip.embedImages(pictures), classes: labels.map { ["a photo of a \($0)"] }).toArray()
        var answers: [String: String] = [:]
        for (r, file) in files.enumerated() { answers[file] = labels[(0..<labels.count).max { p[r * labels.count + $0] < p[r * labels.count + $1] }!] }
        let right = files.filter { answers[$0] == expected[$0] }.count
        XCTAssertGreaterThanOrEqual(right, 5, "\(answers)")

        // General words, as a user types them: the cat is a cat, not the food that broad kinds taught from wallpaper
        // crops made the nearest prompt to real photos (docs/BENCHMARKS.md, "General words for everyday things").
        let general = ["cat", "dog", "car", "bird", "person", "food"]
        let cat = clip.zeroShot(clip.embedImages([pictures[files.firstIndex(of: "chelsea.png")!]]), classes: general.map { ["a photo of a \($0)"] }).toArray()
        XCTAssertEqual(general[cat.indices.max { cat[$0] < cat[$1] }!], "cat", "\(zip(general, cat).map { "\($0) \($1)" })")
    }

    func testClassPrototypesAndTheDistillationLoss() throws {
        let clip = CLIP(CLIPConfig(), towers: try towers(.miniLM))
        let classifier = clip.towers.imageEncoder!.classifier
        let crops = Tensor.uniform([4, 1280], low: 0, high: 1, seed: 2)
        let prototypes = CLIPTeacher.prototypes(classifier, meanNormOf: crops)
        XCTAssertEqual(prototypes.shape, [1000, 1280])
        XCTAssertGreaterThanOrEqual(prototypes.toArray().min()!, 0)
        func norm(_ t: Tensor, row: Int) -> Float {
            let values = t.toArray()
            var s: Float = 0
            for k in 0..<1280 { s += values[row * 1280 + k] * values[row * 1280 + k] }
            return s.squareRoot()
        }
        let meanNorm: Float = (0..<4).map { norm(crops, row: $0) }.reduce(0, +) / 4
        XCTAssertEqual(norm(prototypes, row: 7), meanNorm, accuracy: 1e-2)
        let logits = withNoGrad { classifier(prototypes) }.toArray()
        let own = (0..<1000).filter { c in (0..<1000).max { logits[c * 1000 + $0] < logits[c * 1000 + $1] } == c }.count
        XCTAssertGreaterThan(own, 950, "the classifier takes most prototypes for their own class")

        // The loss is the cross-entropy of the teacher's probabilities against the scaled similarities' softmax.
        var teacher = try CLIPTeacher(clip: clip, crops: CaptionedImages(identity: "t", image: { _ in Image(width: 8, height: 8, channels: 3, pixels: .init(repeating: 0.5, count: 192)) },
                                                                          captions: [[""], [""]]),
                                      labels: try ImageNetLabels.load(folder: try requireAsset("imagenet-labels", fetch: "imagenet-labels")),
                                      cache: CLIPFeatureCache(directory: nil), classPrototypes: false)
        XCTAssertEqual(teacher.prompts[281], "a photo of a tabby")
        XCTAssertEqual(teacher.probabilities.shape, [2, 1000])
        teacher.prompts = Array(teacher.prompts.prefix(3))
        teacher.probabilities = Tensor([0.2, 0.5, 0.3, 1, 0, 0], shape: [2, 3])
        let promptFeatures = clip.textFeatures(teacher.prompts)
        let loss = withNoGrad { clip.distillationLoss(teacher, rows: [0, 1], promptFeatures: promptFeatures).item }
        let s = withNoGrad { clip.projectImageFeatures(teacher.imageFeatures).matmul(clip.projectTextFeatures(promptFeatures).transposed(0, 1)) }.toArray()
        var expected: Float = 0
        for r in 0..<2 {
            let z = (0..<3).map { s[r * 3 + $0] * clip.scale }
            let lse = Foundation.log(z.map { Foundation.exp($0) }.reduce(0, +))
            for c in 0..<3 { expected -= teacher.probabilities.toArray()[r * 3 + c] * (z[c] - lse) }
        }
        XCTAssertEqual(loss, expected / 2, accuracy: 1e-4)
    }

    /// WordNet's data.noun: words and hypernyms (`@` and `@i`, other pointers skipped), ancestors through cycles, and
    /// each malformed line refused with the file and line.
    func testWordNetNounsParseAndRefuseBadLines() throws {
        let good = """
          1 This software and database is being provided to you, the LICENSEE, by
          2 Princeton University under the following license.
        00000001 03 n 01 entity 0 000 | that which exists
        00000002 05 n 02 dog 0 domestic_dog 0 002 @ 00000001 n 0000 ~ 00000003 n 0000 | a dog
        00000003 05 n 01 Great_Dane 0 001 @i 00000002 n 0000 | a big dog
        00000005 05 n 01 loop_a 0 001 @ 00000006 n 0000 | x
        00000006 05 n 01 loop_b 0 002 @ 00000005 n 0000 @ 00000009 n 0000 | y

        """
        let nouns = try WordNetNouns.parse(Data(good.utf8), file: "data.noun")
        XCTAssertEqual(nouns.words[2], ["dog", "domestic_dog"])
        XCTAssertEqual(nouns.hypernyms[2], [1], "the ~ (hyponym) pointer is not a hypernym")
        XCTAssertEqual(nouns.hypernyms[3], [2], "@i (instance of) is a hypernym")
        XCTAssertEqual(nouns.ancestors(of: 3), [1, 2])
        XCTAssertEqual(nouns.ancestors(of: 1), [])
        XCTAssertEqual(nouns.ancestors(of: 5), [5, 6], "a cycle ends; 00000009, absent from the file, is left out")
        let lines = good.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (bad, message) in [
            ("0000002 03 n 01 dog 0 000 | x", "data.noun:4: expected a synset line"),
            ("00000002 03 v 01 run 0 000 | x", "data.noun:4: synset type 'v', expected n"),
            ("00000002 03 n zz dog 0 000 | x", "data.noun:4: word count 'zz'"),
            ("00000002 03 n 03 dog 0 000 | x", "data.noun:4: 3 words claimed, the line has fewer"),
            ("00000002 03 n 01 dog 0 x | x", "data.noun:4: pointer count 'x'"),
            ("00000002 03 n 01 dog 0 002 @ 00000001 n 0000 | x", "data.noun:4: 2 pointers claimed, the line has fewer"),
            ("00000002 03 n 01 dog 0 001 @ 0001 n 0000 | x", "data.noun:4: hypernym pointer '@ 0001 n', expected an 8-digit noun offset"),
            ("00000001 03 n 01 entity 0 000 | x", "data.noun:4: synset 00000001 appears twice"),
            ("00000002 03 n 7fffffffffffffff dog 0 000 | x", "data.noun:4: 9223372036854775807 words claimed, the line has fewer"),
            ("00000002 03 n 01 dog 0 9223372036854775807 | x", "data.noun:4: 9223372036854775807 pointers claimed, the line has fewer"),
        ] {
            var edited = lines
            edited[3] = bad
            XCTAssertThrowsError(try WordNetNouns.parse(Data(edited.joined(separator: "\n").utf8), file: "data.noun"), bad) {
                XCTAssertTrue("\($0)".contains(message), "\($0)")
            }
        }
        XCTAssertThrowsError(try WordNetNouns.parse(Data("  1 licence only\n".utf8), file: "data.noun")) {
            XCTAssertTrue("\($0)".contains("data.noun: no synset lines"), "\($0)")
        }
        XCTAssertThrowsError(try WordNetNouns.load(path: "/nonexistent/data.noun")) {
            XCTAssertTrue("\($0)".contains("/nonexistent/data.noun: cannot read"), "\($0)")
        }
    }

    /// The general kinds of the ImageNet classes from the real WordNet, the teacher's kind probabilities (each kind the
    /// sum of its classes', rows divided by their sums), and the distillation loss with kinds: the classes' loss plus
    /// kindWeight times the same loss over the kinds.
    func testImageNetKindsAndTheirDistillation() throws {
        let path = "/usr/share/wordnet/data.noun"
        guard FileManager.default.fileExists(atPath: path) else { return XCTFail("\(path) is missing: scripts/setup.sh installs wordnet-base") }
        let labels = try ImageNetLabels.load(folder: try requireAsset("imagenet-labels", fetch: "imagenet-labels"))
        let kinds = try ImageNetKinds(labels: labels, nouns: try WordNetNouns.load(path: path))
        func members(_ name: String) -> [Int] { kinds.names.firstIndex(of: name).map { kinds.classes[$0] } ?? [] }
        XCTAssertEqual(members("dog").count, 118)
        XCTAssertTrue(members("dog").contains(246), "the Great Dane is a dog")
        XCTAssertEqual(members("domestic cat"), [281, 282, 283, 284, 285])
        XCTAssertEqual(members("animal").count, 398)
        XCTAssertEqual(members("bird").count, 59)
        XCTAssertTrue(members("bird").contains(7), "the cock is a bird")
        XCTAssertEqual(members("entity"), [], "kinds of more than 500 classes are left out")
        XCTAssertEqual(members("tabby"), [], "a kind has at least two classes")
        XCTAssertEqual(kinds.names, kinds.names.sorted())
        XCTAssertEqual(kinds.names.count, 456)
        let membership = kinds.membership().toArray()
        let dog = kinds.names.firstIndex(of: "dog")!
        XCTAssertEqual(membership[246 * kinds.names.count + dog], 1)
        XCTAssertEqual(membership[281 * kinds.names.count + dog], 0)
        XCTAssertThrowsError(try ImageNetKinds(labels: labels, nouns: try WordNetNouns.parse(Data("00000001 03 n 01 entity 0 000 | x\n".utf8), file: "tiny.noun"))) {
            XCTAssertTrue("\($0)".contains("ImageNet class 0 (n01440764) is not a noun synset of the WordNet file"), "\($0)")
        }

        let clip = CLIP(CLIPConfig(), towers: try towers(.miniLM))
        let crops = CaptionedImages(identity: "k", image: { i in Image(width: 8, height: 8, channels: 3, pixels: .init(repeating: Float(i) * 0.4 + 0.1, count: 192)) },
                                    captions: [[""], [""]])
        XCTAssertThrowsError(try CLIPTeacher(clip: clip, crops: crops, labels: labels, cache: CLIPFeatureCache(directory: nil), classPrototypes: false, kinds: kinds)) {
            XCTAssertTrue("\($0)".contains("they need classPrototypes"), "\($0)")
        }
        var teacher = try CLIPTeacher(clip: clip, crops: crops, labels: labels, cache: CLIPFeatureCache(directory: nil), kinds: kinds)
        XCTAssertEqual(teacher.kindPrompts[dog], "a photo of a dog")
        XCTAssertEqual(teacher.kindProbabilities?.shape, [1002, kinds.names.count])
        let p = teacher.probabilities.toArray(), q = teacher.kindProbabilities!.toArray()
        // The two crops' rows carry no kind target; the prototypes' rows (2...) are their kinds' shares.
        for r in [0, 1, 2, 2 + 246, 2 + 281, 1001] {
            let mass = kinds.classes.map { list in list.reduce(Double(0)) { $0 + Double(p[r * 1000 + $1]) } }
            let total = mass.reduce(0, +)
            XCTAssertGreaterThan(total, 0)
            for k in 0..<kinds.names.count {
                XCTAssertEqual(Double(q[r * kinds.names.count + k]), r < 2 ? 0 : mass[k] / total, accuracy: 1e-5, "row \(r), kind \(kinds.names[k])")
            }
        }
        XCTAssertGreaterThan(q[(2 + 246) * kinds.names.count + dog], 0.02, "the Great Dane's prototype is a dog")

        // The loss on hand-made targets: 3 classes and 2 kinds.
        teacher.prompts = Array(teacher.prompts.prefix(3))
        teacher.probabilities = Tensor([0.2, 0.5, 0.3, 1, 0, 0], shape: [2, 3])
        teacher.kindPrompts = ["a photo of a dog", "a photo of a vehicle"]
        teacher.kindProbabilities = Tensor([0.7, 0.3, 0, 1], shape: [2, 2])
        let promptFeatures = clip.textFeatures(teacher.prompts), kindFeatures = clip.textFeatures(teacher.kindPrompts)
        func crossEntropy(_ targets: [Float], _ features: Tensor, rows: [Int]) -> Float {
            let n = features.shape[0]
            let s = withNoGrad { clip.projectImageFeatures(teacher.imageFeatures).matmul(clip.projectTextFeatures(features).transposed(0, 1)) }.toArray()
            var total: Float = 0
            for r in rows {
                let z = (0..<n).map { s[r * n + $0] * clip.scale }
                let lse = Foundation.log(z.map { Foundation.exp($0) }.reduce(0, +))
                for c in 0..<n { total -= targets[r * n + c] * (z[c] - lse) }
            }
            return total / Float(rows.count)
        }
        let expected = crossEntropy(teacher.probabilities.toArray(), promptFeatures, rows: [0, 1, 1])
            + teacher.kindWeight * crossEntropy(teacher.kindProbabilities!.toArray(), kindFeatures, rows: [0, 1, 1])
        let loss = withNoGrad { clip.distillationLoss(teacher, rows: [0, 1, 1], promptFeatures: promptFeatures, kindPromptFeatures: kindFeatures).item }
        XCTAssertEqual(teacher.kindWeight, 0.5)
        XCTAssertEqual(loss, expected, accuracy: 1e-4)
        let classesOnly = withNoGrad { clip.distillationLoss(teacher, rows: [0, 1, 1], promptFeatures: promptFeatures).item }
        XCTAssertEqual(classesOnly, crossEntropy(teacher.probabilities.toArray(), promptFeatures, rows: [0, 1, 1]), accuracy: 1e-4)
        XCTAssertGreaterThan(abs(loss - classesOnly), 1e-3, "the kinds' loss counts")
    }

    /// The text-to-image decoder learns to draw each caption's picture (two captions, two patterns), round-trips, and
    /// refuses a file of another kind or a config out of range.
    func testTextToImageDecoderLearnsAndRoundTrips() throws {
        var config = TextToImageConfig()
        config.embeddingDimension = 4
        config.hidden = 16
        config.side = 4
        let decoder = TextToImageDecoder(config)
        let left: [Float] = (0..<16).map { $0 % 4 < 2 ? 1 : 0 }, top: [Float] = (0..<16).map { $0 < 8 ? 1 : 0 }
        let pictures = Tensor(left + top + left, shape: [3, 16])
        let embeddings = Loss.normalize(Tensor([1, 0, 0, 0, 0, 1, 0, 0], shape: [2, 4]))
        try decoder.train(pictures: pictures, captionEmbeddings: embeddings, captionOf: [[0], [1], [0]], steps: 300, batchSize: 8, learningRate: 3e-2)
        let drawn = decoder.draw(embeddings)
        XCTAssertEqual(drawn.count, 2)
        for (picture, target) in zip(drawn, [left, top]) {
            XCTAssertEqual(picture.pixels.count, target.count)
            XCTAssertLessThan(zip(picture.pixels, target).map { abs($0 - $1) }.max()!, 0.2, "\(picture.pixels)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("draw-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try decoder.saveModel(to: dir + "/d.safetensors")
        XCTAssertEqual(try TextToImageDecoder.load(dir + "/d.safetensors").draw(embeddings)[1].pixels, drawn[1].pixels)
        var bad = config
        bad.side = 2
        try Safetensors.write(decoder.namedTensors(), metadata: ["draw_config": String(decoding: try JSONEncoder().encode(bad), as: UTF8.self)], to: dir + "/bad.safetensors")
        XCTAssertThrowsError(try TextToImageDecoder.load(dir + "/bad.safetensors")) { XCTAssertTrue("\($0)".contains("side must be 4...256, got 2"), "\($0)") }
        bad = config
        bad.hidden = 16384
        try Safetensors.write(decoder.namedTensors(), metadata: ["draw_config": String(decoding: try JSONEncoder().encode(bad), as: UTF8.self)], to: dir + "/big.safetensors")
        XCTAssertThrowsError(try TextToImageDecoder.load(dir + "/big.safetensors")) {
            XCTAssertTrue("\($0)".contains("'hidden.weight' has shape [16, 4], the config implies [16384, 4]"), "\($0)")
        }
        XCTAssertThrowsError(try decoder.train(pictures: pictures, captionEmbeddings: embeddings, captionOf: [[0], [2], [0]], steps: 1)) {
            XCTAssertTrue("\($0)".contains("not a row of the 2 caption embeddings"), "\($0)")
        }
        XCTAssertThrowsError(try TextToImageDecoder.load(FileManager.default.currentDirectoryPath + "/models/clip.safetensors")) {
            XCTAssertTrue("\($0)".contains("draw_config' is missing"), "\($0)")
        }
        XCTAssertThrowsError(try decoder.train(pictures: pictures, captionEmbeddings: embeddings, captionOf: [[0]], steps: 1))
    }

    func testCheckpointRoundTripsAndRefusesMismatchedTowers() throws {
        var config = CLIPConfig(imageTower: .efficientNetLite0, textTower: .miniLM)
        config.embeddingDimension = 16
        config.imageProjectionHidden = 8
        let clip = CLIP(config, towers: try towers(.miniLM), seed: 5)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.safetensors"
        try clip.saveModel(to: path)
        let loaded = try CLIP.load(path, towers: try towers(.miniLM))
        XCTAssertEqual(loaded.config, config)
        XCTAssertEqual(loaded.embedTexts(["a red bag"]).toArray(), clip.embedTexts(["a red bag"]).toArray())
        XCTAssertThrowsError(try CLIP.load(path, towers: try towers(.transformer))) {
            XCTAssertTrue("\($0)".contains("text tower is all-MiniLM-L6-v2"), "\($0)")
        }
        // Not a CLIP file; a config with a bad value: errors that name the file and the key.
        try Safetensors.write([(name: "x", tensor: Tensor([1], shape: [1]))], to: dir + "/other.safetensors")
        XCTAssertThrowsError(try CLIP.load(dir + "/other.safetensors", towers: try towers(.miniLM))) {
            XCTAssertTrue("\($0)".contains("clip_config' is missing"), "\($0)")
        }
        var bad = config
        bad.imageSize = 4
        try Safetensors.write(clip.namedTensors(), metadata: ["clip_config": String(decoding: try JSONEncoder().encode(bad), as: UTF8.self)], to: dir + "/bad.safetensors")
        XCTAssertThrowsError(try CLIP.load(dir + "/bad.safetensors", towers: try towers(.miniLM))) {
            XCTAssertTrue("\($0)".contains("image_size must be 32...1024, got 4"), "\($0)")
        }
        // A config claiming a wider space (or, below, a bigger text vocabulary) than the file's tensors: refused before
        // the model is built.
        var wide = config
        wide.embeddingDimension = 4096
        try Safetensors.write(clip.namedTensors(), metadata: ["clip_config": String(decoding: try JSONEncoder().encode(wide), as: UTF8.self)], to: dir + "/wide.safetensors")
        XCTAssertThrowsError(try CLIP.load(dir + "/wide.safetensors", towers: try towers(.miniLM))) {
            XCTAssertTrue("\($0)".contains("imageProjectionOut.weight' has shape [16, 8], the config implies [4096, 8]"), "\($0)")
        }
        try Safetensors.write(clip.namedTensors(), metadata: ["clip_config": "{\"image_tower\": \"vit\"}"], to: dir + "/unknown.safetensors")
        XCTAssertThrowsError(try CLIP.load(dir + "/unknown.safetensors", towers: try towers(.miniLM))) {
            XCTAssertTrue("\($0)".contains("unknown.safetensors (clip_config)"), "\($0)")
        }
    }

    func testTrainingRefusesBadSettings() throws {
        let clip = CLIP(CLIPConfig(), towers: try towers(.miniLM))
        let one = CaptionedImages(identity: "one", image: { _ in Image(width: 1, height: 1, channels: 1, pixels: [0]) }, captions: [["x"]])
        XCTAssertThrowsError(try clip.train(on: one, imageFeatures: Tensor(shape: [1, 1280]), config: CLIPTrainingConfig())) {
            XCTAssertTrue("\($0)".contains("at least 2 captioned pictures"), "\($0)")
        }
        var training = CLIPTrainingConfig()
        training.batchSize = 1
        XCTAssertThrowsError(try training.validate())
        training = CLIPTrainingConfig()
        training.learningRate = .nan
        XCTAssertThrowsError(try training.validate())
    }
}
