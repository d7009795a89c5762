import AttendModels
@testable import AttendNN
import AttendTensor
import Foundation
import XCTest

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attend-tests-\(ProcessInfo.processInfo.processIdentifier)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

final class ModuleAndCheckpointTests: XCTestCase {
    func testParametersAreDiscoveredWithDottedNames() {
        var g = RandomGenerator(seed: 0)
        let mlp = MLPClassifier(inputSize: 4, hiddenSizes: [3], classCount: 2, generator: &g)
        XCTAssertEqual(mlp.namedParameters().map(\.name),
                       ["layers.layers.1.weight", "layers.layers.1.bias", "layers.layers.3.weight", "layers.layers.3.bias"])
        XCTAssertEqual(mlp.parameterCount, 4 * 3 + 3 + 3 * 2 + 2)
        let attention = MultiHeadAttention(dimension: 4, headCount: 2, bias: false, generator: &g)
        XCTAssertEqual(attention.namedParameters().map(\.name), ["query.weight", "key.weight", "value.weight", "output.weight"])
    }

    func testTrainAndEvalModesReachEverySubmodule() {
        var g = RandomGenerator(seed: 0)
        let block = TransformerEncoderBlock(TransformerBlockConfig(dimension: 4, headCount: 2, dropout: 0.5), generator: &g)
        block.eval()
        XCTAssertFalse(block.dropout.isTraining)
        XCTAssertFalse(block.feedForward.dropout.isTraining)
        let x = Tensor.randn([1, 3, 4], seed: 1)
        XCTAssertEqual(block(x).toArray(), block(x).toArray(), "no dropout in eval mode")
        block.train()
        XCTAssertTrue(block.feedForward.dropout.isTraining)
    }

    /// Each Dropout of a model draws its own masks (they all started from one seed before, so a block's attention and
    /// feed-forward outputs, and every layer, lost the same positions), and giving them streams leaves the weights as
    /// they were. Shown to fail with the block's Dropout built from the same state and salt as the feed-forward's.
    func testEveryDropoutOfAModelDrawsItsOwnMasks() {
        var g1 = RandomGenerator(seed: 5), g2 = RandomGenerator(seed: 5)
        let config = TransformerBlockConfig(dimension: 8, headCount: 2, dropout: 0.5)
        let blocks = (0..<2).map { _ in TransformerEncoderBlock(config, generator: &g1) }
        var plain = config
        plain.dropout = 0
        let reference = (0..<2).map { _ in TransformerEncoderBlock(plain, generator: &g2) }
        XCTAssertEqual(blocks[1].attention.query.weight.toArray(), reference[1].attention.query.weight.toArray(), "weights unchanged")
        XCTAssertEqual(blocks[1].feedForward.down.weight.toArray(), reference[1].feedForward.down.weight.toArray())
        XCTAssertEqual(g1.next(), g2.next(), "the generator advances as without dropout")
        let x = Tensor.ones([64])
        let masks = [blocks[0].dropout, blocks[0].feedForward.dropout, blocks[1].dropout, blocks[1].feedForward.dropout].map { $0(x).toArray() }
        for i in masks.indices { for j in masks.indices where j > i { XCTAssertNotEqual(masks[i], masks[j], "Dropouts \(i) and \(j) dropped the same positions") } }
        for m in masks { XCTAssertTrue(m.allSatisfy { $0 == 0 || $0 == 2 }) }
    }

    func testSafetensorsRoundTripKeepsNamesShapesValuesAndMetadata() throws {
        let path = temporaryPath("roundtrip.safetensors")
        let a = Tensor.randn([2, 3], seed: 1), b = Tensor.randn([5], seed: 2), scalar = Tensor(3)
        try Safetensors.write([("layer.weight", a), ("layer.bias", b), ("scale", scalar)], metadata: ["note": "hi"], to: path)
        let file = try Safetensors.read(path)
        XCTAssertEqual(file.names, ["layer.weight", "layer.bias", "scale"])
        XCTAssertEqual(file.tensors["layer.weight"]!.toArray(), a.toArray())
        XCTAssertEqual(file.tensors["layer.bias"]!.shape, [5])
        XCTAssertEqual(file.tensors["scale"]!.shape, [])
        XCTAssertEqual(file.metadata["note"], "hi")
        // The data section starts 8-byte aligned, as the format asks.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual((8 + headerLength) % 8, 0)
    }

    func testReadsHalfAndBFloat16() throws {
        // F16 1.5 = 0x3E00, -2 = 0xC000; BF16 1.5 = 0x3FC0, -2 = 0xC000.
        func file(_ dtype: String, _ words: [UInt16]) -> Data {
            let header = "{\"x\":{\"dtype\":\"\(dtype)\",\"shape\":[2],\"data_offsets\":[0,4]}}".data(using: .utf8)!
            var d = Data()
            var n = UInt64(header.count)
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(header)
            for var w in words { withUnsafeBytes(of: &w) { d.append(contentsOf: $0) } }
            return d
        }
        XCTAssertEqual(try Safetensors.parse(file("F16", [0x3E00, 0xC000]), source: "f16").tensors["x"]!.toArray(), [1.5, -2])
        XCTAssertEqual(try Safetensors.parse(file("BF16", [0x3FC0, 0xC000]), source: "bf16").tensors["x"]!.toArray(), [1.5, -2])
        XCTAssertEqual(HalfFloat.toFloat(0x0001), Float(5.9604645e-8))
    }

    func testMalformedSafetensorsGiveErrorsNamingFileAndTensor() throws {
        let path = temporaryPath("bad.safetensors")
        try Safetensors.write([("w", Tensor.randn([4, 4], seed: 1))], to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))

        func message(_ data: Data) -> String {
            do { _ = try Safetensors.parse(data, source: "bad.safetensors"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(good.prefix(good.count - 10)).contains("'w'"), message(good.prefix(good.count - 10)))
        XCTAssertTrue(message(good.prefix(good.count - 10)).contains("truncated"))
        XCTAssertTrue(message(good.prefix(5)).contains("bad.safetensors"))
        var wrongDtype = good
        let range = wrongDtype.range(of: "F32".data(using: .utf8)!)!
        wrongDtype.replaceSubrange(range, with: "C64".data(using: .utf8)!)
        XCTAssertTrue(message(wrongDtype).contains("dtype C64"), message(wrongDtype))
        var badJSON = good
        badJSON[8] = UInt8(ascii: "[")
        XCTAssertTrue(message(badJSON).contains("JSON"))
        // A shape whose product overflows (2^64 elements) is an error, not a trap; so is one whose bytes overflow.
        for shape in [[1 << 32, 1 << 32], [1 << 61, 1 << 1], [1 << 62]] {
            let header = try JSONSerialization.data(withJSONObject: ["w": ["dtype": "F64", "shape": shape, "data_offsets": [0, 0]] as [String: Any]])
            var file = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) }
            file.append(header)
            XCTAssertTrue(message(file).contains("more than 2^63"), "\(shape): \(message(file))")
        }
        XCTAssertThrowsError(try Safetensors.read(temporaryPath("does-not-exist.safetensors"))) { e in
            XCTAssertTrue("\(e)".contains("no such file"))
        }
    }

    func testLoadingReportsMissingTensorsAndShapeMismatches() throws {
        var g = RandomGenerator(seed: 0)
        let model = Linear(3, 2, generator: &g)
        XCTAssertThrowsError(try model.load(["weight": Tensor.zeros([2, 3])], source: "ckpt")) { e in
            XCTAssertTrue("\(e)".contains("'bias' is missing"), "\(e)")
        }
        XCTAssertThrowsError(try model.load(["weight": Tensor.zeros([3, 2]), "bias": Tensor.zeros([2])], source: "ckpt")) { e in
            XCTAssertTrue("\(e)".contains("'weight' has shape [3, 2], the model expects [2, 3]"), "\(e)")
        }
    }

    func testFailedSaveLeavesThePreviousCheckpointIntact() throws {
        let path = temporaryPath("keep.safetensors")
        try Safetensors.write([("w", Tensor.ones([3]))], to: path)
        // A duplicate name makes encoding fail before anything is written.
        XCTAssertThrowsError(try Safetensors.write([("w", Tensor.zeros([3])), ("w", Tensor.zeros([3]))], to: path))
        XCTAssertEqual(try Safetensors.read(path).tensors["w"]!.toArray(), [1, 1, 1])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path)
            .filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    /// Trains a small model a few steps; returns its flattened parameters.
    func trainSteps(_ model: Module & UnaryLayer, _ optimizer: Optimizer, steps: Range<Int>) -> [Float] {
        for step in steps {
            let x = Tensor.randn([8, 4], seed: UInt64(step))
            let y = IntTensor((0..<8).map { Int32(($0 + step) % 3) }, shape: [8])
            model.zeroGrad()
            Loss.crossEntropy(logits: model(x), targets: y).backward()
            clipGradientNorm(model.parameters(), maxNorm: 1)
            optimizer.update()
        }
        return model.parameters().flatMap { $0.toArray() }
    }

    func testTrainingCheckpointResumesExactly() throws {
        let path = temporaryPath("train.safetensors")
        var g = RandomGenerator(seed: 3)
        let model = MLPClassifier(inputSize: 4, hiddenSizes: [5], classCount: 3, generator: &g)
        let optimizer = AdamW(parameters: model.namedParameters(), learningRate: 1e-2)
        _ = trainSteps(model, optimizer, steps: 0..<3)
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, to: path)
        let uninterrupted = trainSteps(model, optimizer, steps: 3..<6)

        var g2 = RandomGenerator(seed: 99)
        let resumedModel = MLPClassifier(inputSize: 4, hiddenSizes: [5], classCount: 3, generator: &g2)
        let resumedOptimizer = AdamW(parameters: resumedModel.namedParameters(), learningRate: 1e-2)
        try TrainingCheckpoint.load(model: resumedModel, optimizer: resumedOptimizer, from: path)
        XCTAssertEqual(resumedOptimizer.step, 3)
        XCTAssertEqual(trainSteps(resumedModel, resumedOptimizer, steps: 3..<6), uninterrupted)
    }

    func testOptimizersTakeTheTextbookStep() {
        // One step from p = 1 with gradient g = 0.5.
        func step(_ make: ([(name: String, tensor: Tensor)]) -> Optimizer, steps: Int = 1) -> Float {
            let p = Tensor([1], shape: [1], requiresGrad: true)
            let opt = make([("p", p)])
            for _ in 0..<steps {
                p.zeroGrad()
                (p * 0.5).sum().backward()
                opt.update()
            }
            return p.item
        }
        XCTAssertEqual(step { SGD(parameters: $0, learningRate: 0.1) }, 1 - 0.05, accuracy: 1e-7)
        // Momentum 0.9: v1 = 0.5, v2 = 0.95; p = 1 - 0.1 * (0.5 + 0.95).
        XCTAssertEqual(step({ SGD(parameters: $0, learningRate: 0.1, momentum: 0.9) }, steps: 2), 1 - 0.145, accuracy: 1e-6)
        // Adam's first step moves by lr * g / (|g| + eps) = lr.
        XCTAssertEqual(step { Adam(parameters: $0, learningRate: 0.01) }, 0.99, accuracy: 1e-6)
        // AdamW also decays the weight: p * (1 - lr * wd) - lr.
        XCTAssertEqual(step { AdamW(parameters: $0, learningRate: 0.01, weightDecay: 0.1) }, 1 * (1 - 0.001) - 0.01, accuracy: 1e-6)
        // Adam with L2 weight decay adds wd * p to the gradient. With a gradient of -0.05 at p = 1, decay 0.1 turns
        // it to +0.05: the first step goes down (0.99) where plain Adam goes up (1.01). The second step, worked by
        // hand with the default betas: g = -0.05 + 0.1 * 0.99 = 0.049, m^ = 0.0494737, v^ = 0.00245048, p = 0.9800058.
        func l2Steps(_ decay: Float, _ steps: Int) -> Float {
            let p = Tensor([1], shape: [1], requiresGrad: true)
            let opt = Adam(parameters: [("p", p)], learningRate: 0.01, weightDecay: decay)
            for _ in 0..<steps { p.zeroGrad(); (p * -0.05).sum().backward(); opt.update() }
            return p.item
        }
        XCTAssertEqual(l2Steps(0, 1), 1.01, accuracy: 1e-6)
        XCTAssertEqual(l2Steps(0.1, 1), 0.99, accuracy: 1e-6)
        XCTAssertEqual(l2Steps(0.1, 2), 0.9800058, accuracy: 1e-6)
        // The vector paths (8 or more elements, AVX2 on x86) on every element, with a gradient of 0.5 everywhere:
        // AdamW's first step p (1 - lr wd) - lr, and SGD's L2 decay p - lr (g + wd p).
        let start = (0..<19).map { Float($0) / 4 - 2 }
        func vectorStep(_ make: ([(name: String, tensor: Tensor)]) -> Optimizer) -> [Float] {
            let p = Tensor(start, shape: [start.count], requiresGrad: true)
            let opt = make([("p", p)])
            (p * 0.5).sum().backward()
            opt.update()
            return p.toArray()
        }
        let adamW = vectorStep { AdamW(parameters: $0, learningRate: 0.01, weightDecay: 0.1) }
        XCTAssertEqual(adamW.count, start.count)
        for (a, p) in zip(adamW, start) {
            XCTAssertEqual(a, p * (1 - 0.001) - 0.01, accuracy: 1e-6, "AdamW at \(p)")
        }
        let sgd = vectorStep { SGD(parameters: $0, learningRate: 0.1, weightDecay: 0.1) }
        XCTAssertEqual(sgd.count, start.count)
        for (a, p) in zip(sgd, start) {
            XCTAssertEqual(a, p - 0.1 * (0.5 + 0.1 * p), accuracy: 1e-6, "SGD with decay at \(p)")
        }
    }

    /// Parameters named in decayExempt get no weight decay: with a zero gradient, AdamW leaves them where they are and
    /// shrinks the others by 1 - lr wd.
    func testDecayExemptParametersAreNotDecayed() {
        let weight = Tensor([2, -2], shape: [2], requiresGrad: true), bias = Tensor([2, -2], shape: [2], requiresGrad: true)
        let opt = Adam(parameters: [("w", weight), ("b", bias)], learningRate: 0.1, weightDecay: 0.5, decoupledWeightDecay: true)
        opt.decayExempt = ["b"]
        ((weight + bias) * 0).sum().backward()
        opt.update()
        XCTAssertEqual(weight.toArray(), [2 * 0.95, -2 * 0.95])
        XCTAssertEqual(bias.toArray(), [2, -2])
    }

    /// The linear schedule is Hugging Face's get_linear_schedule_with_warmup after the warmup: (total - step) /
    /// (total - warmup) of the peak, zero at the total.
    func testWarmupLinearSchedule() {
        let s = WarmupLinearSchedule(peak: 3e-4, warmupSteps: 100, totalSteps: 1000)
        XCTAssertEqual(s(0), 3e-6, accuracy: 1e-12)
        XCTAssertEqual(s(99), 3e-4, accuracy: 1e-12)
        XCTAssertEqual(s(100), 3e-4, accuracy: 1e-12)
        XCTAssertEqual(s(550), 1.5e-4, accuracy: 1e-12)
        XCTAssertEqual(s(999), 3e-4 / 900, accuracy: 1e-12)
        XCTAssertEqual(s(1000), 0)
        XCTAssertEqual(s(1200), 0)
    }

    func testWarmupCosineScheduleAndClipping() {
        let s = WarmupCosineSchedule(peak: 1, minimum: 0.1, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(s(0), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s(9), 1, accuracy: 1e-6)
        XCTAssertEqual(s(60), 0.55, accuracy: 1e-6)
        XCTAssertEqual(s(110), 0.1, accuracy: 1e-6)
        let p = Tensor([0, 0], shape: [2], requiresGrad: true)
        (p * Tensor([3, 4], shape: [2])).sum().backward()
        XCTAssertEqual(clipGradientNorm([p], maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(p.grad!.toArray()[0], 0.6, accuracy: 1e-5)
    }

    func testLossesAgainstClosedForms() {
        let x = Tensor([0.5, -1, 2], shape: [3]), y = Tensor([1, 0, 1], shape: [3])
        let bce = zip(x.toArray(), y.toArray()).map { (l, t) -> Float in
            let p = 1 / (1 + exp(-l))
            return -(t * log(p) + (1 - t) * log(1 - p))
        }.reduce(0, +) / 3
        XCTAssertEqual(Loss.binaryCrossEntropy(logits: x, targets: y).item, bce, accuracy: 1e-6)
        XCTAssertEqual(Loss.meanSquaredError(x, y).item, (0.25 + 1 + 1) / 3, accuracy: 1e-6)
        XCTAssertEqual(Loss.cosineSimilarity(Tensor([1, 0], shape: [2]), Tensor([1, 1], shape: [2])).item, Float(0.5).squareRoot(), accuracy: 1e-6)
        // InfoNCE is small when pairs match and large when they are shuffled.
        let a = Tensor.randn([4, 8], seed: 1)
        let matched = Loss.infoNCE(a, a, temperature: 0.1).item
        let shuffled = Loss.infoNCE(a, a.indexSelect(IntTensor([1, 2, 3, 0], shape: [4])), temperature: 0.1).item
        XCTAssertLessThan(matched, 0.1)
        XCTAssertGreaterThan(shuffled, 2)
    }

    func testAttentionMasksAndWeights() {
        let q = Tensor.randn([1, 1, 3, 4], seed: 1), k = Tensor.randn([1, 1, 3, 4], seed: 2), v = Tensor.randn([1, 1, 3, 4], seed: 3)
        let (_, w) = Attention.scaledDotProduct(query: q, key: k, value: v, causal: true)
        let weights = w.toArray()
        XCTAssertEqual(weights[1], 0); XCTAssertEqual(weights[2], 0); XCTAssertEqual(weights[5], 0)
        XCTAssertEqual(weights[0], 1, accuracy: 1e-6)
        for row in 0..<3 { XCTAssertEqual(weights[(row * 3)..<(row * 3 + 3)].reduce(0, +), 1, accuracy: 1e-6) }
        let padding = Attention.paddingMask(lengths: [2], maxLength: 3)
        let (_, pw) = Attention.scaledDotProduct(query: q, key: k, value: v, mask: padding)
        XCTAssertEqual(pw.toArray()[2], 0)
        // With a KV cache the causal mask aligns the last query with the last key.
        XCTAssertEqual(Attention.causalMask(queries: 1, keys: 4).toArray(), [0, 0, 0, 0])
    }

    func testTinyClassifierLearnsASeparableProblem() {
        var g = RandomGenerator(seed: 0)
        let model = MLPClassifier(inputSize: 2, hiddenSizes: [16], classCount: 2, generator: &g)
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 0.05)
        let x = Tensor.uniform([64, 2], low: -1, high: 1, seed: 5)
        let labels = IntTensor(stride(from: 0, to: 128, by: 2).map { i in x.toArray()[i] * x.toArray()[i + 1] > 0 ? 1 : 0 }, shape: [64])
        var loss: Float = 0
        for _ in 0..<300 {
            model.zeroGrad()
            let l = Loss.crossEntropy(logits: model(x), targets: labels)
            l.backward()
            optimizer.update()
            loss = l.item
        }
        XCTAssertLessThan(loss, 0.15, "XOR-like quadrants are learned")
    }
}
