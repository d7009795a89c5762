// Style transfer's pieces: adaptive instance normalization gives the content the style's per-channel statistics, the
// batched Gram matrix equals each image's, the fast decoder's files are checked against the encoder, mixing weights
// and alpha do what they say, and the committed decoder (models/style-decoder.safetensors) meets the bars on a
// photo it never saw: the style loss at most half the photo's, the content loss below the style image's.

import AttendModels
import AttendNN
import AttendTensor
import AttendTestSupport
import AttendVision
import Foundation
import XCTest

final class StyleTransferTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64, low: Float = -2, high: Float = 3) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return Tensor.uniform(shape, low: low, high: high, generator: &g)
    }

    /// Mean and population standard deviation of each (image, channel) plane.
    func planeStatistics(_ t: Tensor) -> [(mean: Double, std: Double)] {
        let (planes, size) = (t.shape[0] * t.shape[1], t.shape[2] * t.shape[3])
        let v = t.toArray()
        return (0..<planes).map { p in
            let plane = v[(p * size)..<((p + 1) * size)].map(Double.init)
            let mean = plane.reduce(0, +) / Double(size)
            return (mean, (plane.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(size)).squareRoot())
        }
    }

    func testAdaptiveInstanceNormGivesEachPlaneTheStylesStatistics() {
        // Two content images of odd size, one style image broadcast over them, values of both signs.
        let content = random([2, 3, 5, 7], seed: 1), style = random([1, 3, 4, 6], seed: 2, low: -5, high: 1)
        let out = FastNeuralStyle.adaptiveInstanceNorm(content: content, style: style)
        XCTAssertEqual(out.shape, [2, 3, 5, 7])
        let (o, c, s) = (planeStatistics(out), planeStatistics(content), planeStatistics(style))
        for n in 0..<2 {
            for ch in 0..<3 {
                let p = n * 3 + ch
                XCTAssertEqual(o[p].mean, s[ch].mean, accuracy: 1e-4, "mean of image \(n) channel \(ch)")
                XCTAssertEqual(o[p].std, s[ch].std, accuracy: 1e-3, "std of image \(n) channel \(ch)")
            }
        }
        // The layout within each plane is the content's: standardized values agree.
        let (ov, cv) = (out.toArray(), content.toArray())
        for i in stride(from: 0, to: ov.count, by: 13) {
            let p = i / 35
            XCTAssertEqual((Double(ov[i]) - o[p].mean) / o[p].std, (Double(cv[i]) - c[p].mean) / c[p].std, accuracy: 1e-3, "element \(i)")
        }
    }

    func testBatchedGramEqualsEachImagesOwn() {
        let f = random([2, 4, 3, 5], seed: 3)
        let gram = NeuralStyle.gramMatrix(f).toArray()
        let v = f.toArray()
        for n in 0..<2 {
            for i in 0..<4 {
                for j in 0..<4 {
                    var sum: Float = 0
                    for k in 0..<15 { sum += v[(n * 4 + i) * 15 + k] * v[(n * 4 + j) * 15 + k] }
                    XCTAssertEqual(gram[(n * 4 + i) * 4 + j], sum / 60, accuracy: 1e-5, "image \(n) entry \(i),\(j)")
                }
            }
        }
    }

    func tinyDecoder(seed: UInt64 = 7) -> StyleDecoder {
        var config = StyleDecoderConfig()
        config.widths = [8, 8, 6, 4]
        return StyleDecoder(config: config, seed: seed)
    }

    func testDecoderRendersEightTimesTheGridAndItsFileIsCheckedAgainstTheEncoder() throws {
        let decoder = tinyDecoder()
        let features = random([1, 40, 3, 5], seed: 4)
        let image = decoder(features)
        XCTAssertEqual(image.shape, [1, 3, 24, 40])
        XCTAssertTrue(image.toArray().allSatisfy { $0 > 0 && $0 < 1 })

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-style-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/decoder.safetensors"
        try decoder.save(path)
        let loaded = try StyleDecoder.load(path, encoder: EfficientNetConfig())
        XCTAssertEqual(loaded(features).toArray(), image.toArray())

        // An encoder whose block gives other channels, or another stride, is refused, naming the file.
        var wider = EfficientNetConfig()
        wider.stages[2].outChannels = 48
        XCTAssertThrowsError(try StyleDecoder.load(path, encoder: wider)) { error in
            XCTAssertTrue("\(error)".contains("\(path): decoder expects 40 channels at 1/8, block 4 of efficientnet-lite0 gives 48 at 1/8"), "\(error)")
        }
        var strided = EfficientNetConfig()
        strided.stages[2].stride = 1
        XCTAssertThrowsError(try StyleDecoder.load(path, encoder: strided)) { error in
            XCTAssertTrue("\(error)".contains("gives 40 at 1/4"), "\(error)")
        }
        // A safetensors file of something else.
        let other = dir + "/other.safetensors"
        try Safetensors.write([("w", Tensor([1, 2], shape: [2]))], metadata: [:], to: other)
        XCTAssertThrowsError(try StyleDecoder.load(other, encoder: EfficientNetConfig())) { error in
            XCTAssertTrue("\(error)".contains("\(other): not an Attend style decoder"), "\(error)")
        }
    }

    func loadNetwork() throws -> EfficientNet {
        try EfficientNet.load(try requireAsset("efficientnet-lite0/efficientnet-lite0-57934424.pth", fetch: "efficientnet-lite0"))
    }

    func testRenderingMixesStylesByWeightAndAlphaBlendsTowardTheContent() throws {
        let fast = FastNeuralStyle(measure: NeuralStyle(network: try loadNetwork()), decoder: tinyDecoder())
        // A size that is not a multiple of 8: the output is cut back to it.
        let content = random([3, 37, 45], seed: 5, low: 0, high: 1)
        let a = random([3, 40, 40], seed: 6, low: 0, high: 1), b = random([3, 40, 40], seed: 7, low: 0.4, high: 0.6)
        let onlyA = fast.render(content: content, styles: [(a, 1)])
        XCTAssertEqual(onlyA.shape, [3, 37, 45])
        // Weights are normalized, and a style of weight 0 adds nothing.
        assertClose(fast.render(content: content, styles: [(a, 3)]), onlyA, tolerance: 1e-6, "one style at weight 3")
        assertClose(fast.render(content: content, styles: [(a, 1), (b, 0)]), onlyA, tolerance: 1e-6, "a second style at weight 0")
        let onlyB = fast.render(content: content, styles: [(b, 1)])
        let mixed = fast.render(content: content, styles: [(a, 1), (b, 1)])
        XCTAssertGreaterThan(maxDifference(mixed, onlyA), 1e-4)
        XCTAssertGreaterThan(maxDifference(mixed, onlyB), 1e-4)
        // alpha 0 renders the content's own features, whatever the style.
        let own = withNoGrad { fast.decoder(fast.measure.features(batch: content.reshape([1, 3, 37, 45]), at: [4])[0]) }
            .slice(axis: 2, 0..<37).slice(axis: 3, 0..<45).contiguous().reshape([3, 37, 45])
        assertClose(fast.render(content: content, styles: [(a, 1)], alpha: 0), own, tolerance: 1e-6, "alpha 0")
        XCTAssertGreaterThan(maxDifference(fast.render(content: content, styles: [(a, 1)], alpha: 0.5), own), 1e-4)
    }

    func testTrainingStepsLowerTheLoss() throws {
        var fast = FastNeuralStyle(measure: NeuralStyle(network: try loadNetwork()), decoder: tinyDecoder())
        fast.identityWeight = 10
        let content = random([2, 3, 32, 32], seed: 8, low: 0, high: 1), style = random([2, 3, 32, 32], seed: 9, low: 0, high: 1)
        let optimizer = Adam(parameters: fast.decoder.namedParameters(), learningRate: 3e-3)
        var losses: [Float] = []
        for _ in 0..<8 {
            let (loss, _, _) = fast.trainingLoss(content: content, style: style)
            fast.decoder.zeroGrad()
            loss.backward()
            optimizer.update()
            losses.append(loss.item)
        }
        XCTAssertLessThan(losses.last!, losses.first! * 0.9, "\(losses)")
    }

    /// The committed decoder on a photo from outside its training set, in a style it was trained with (MATE's Gulp)
    /// and in one it was not (scikit-image's gravel): the two bars, with the losses `attend style --fast` prints.
    func testCommittedDecoderMeetsTheBarsOnAnUnseenPhoto() throws {
        let net = try loadNetwork()
        let fast = FastNeuralStyle(measure: NeuralStyle(network: net),
                                   decoder: try StyleDecoder.load(FileManager.default.currentDirectoryPath + "/models/style-decoder.safetensors", encoder: net.config))
        let photo = try Image.read(try requireAsset("scikit-image-data/coffee.png", fetch: "scikit-image-data")).rgb().resized(shorterSide: 128)
        let gulp = "/usr/share/backgrounds/mate/abstract/Gulp.png"
        guard FileManager.default.fileExists(atPath: gulp) else { return XCTFail("\(gulp) is missing: scripts/setup.sh installs mate-backgrounds") }
        for styleFile in [gulp, try requireAsset("scikit-image-data/gravel.png", fetch: "scikit-image-data")] {
            let style = try Image.read(styleFile).rgb().covering(width: photo.width, height: photo.height).tensor()
            let content = photo.tensor()
            let targets = fast.measure.targets(content: content, styles: [(style, 1)])
            let result = fast.render(content: content, styles: [(style, 1)])
            let (photoLosses, styleLosses, resultLosses) = (fast.measure.evaluate(content, targets), fast.measure.evaluate(style, targets),
                                                            fast.measure.evaluate(result, targets))
            XCTAssertLessThanOrEqual(resultLosses.style, photoLosses.style / 2, "\(styleFile): photo \(photoLosses), result \(resultLosses)")
            XCTAssertLessThan(resultLosses.content, styleLosses.content, "\(styleFile): style image \(styleLosses), result \(resultLosses)")
        }
    }

    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float { zip(a.toArray(), b.toArray()).map { abs($0 - $1) }.max() ?? 0 }
}
