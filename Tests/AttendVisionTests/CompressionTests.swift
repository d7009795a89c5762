// The learned codec's parts: the range coder round trip and its rate against the entropy, GDN and the density's
// gradients by finite differences, the pixel shuffle against its definition, and the file format's refusals
// (another model's file, a truncated or corrupt file). Rate-distortion figures are a benchmark (attend ae evaluate).

@testable import AttendModels
import AttendTensor
import AttendTestSupport
import AttendVision
import Foundation
import XCTest

final class CompressionTests: XCTestCase {
    func testRANSRoundTripAndRateNearEntropy() throws {
        var g = RandomGenerator(seed: 7)
        let probabilities: [[Double]] = [[0.7, 0.2, 0.05, 0.05], [0.25, 0.25, 0.25, 0.25], [0.999, 0.001], [1]]
        let tables = probabilities.map { RANS.Table(probabilities: $0) }
        for t in tables { XCTAssertEqual(t.frequencies.reduce(0, +), 1 << 16) }
        var symbols: [(table: Int, symbol: Int)] = []
        var entropy = 0.0
        for _ in 0..<20_000 {
            let t = Int(g.next() % 4)
            let u = Double(g.nextUniform())
            var s = 0, acc = probabilities[t][0]
            while u >= acc && s < probabilities[t].count - 1 { s += 1; acc += probabilities[t][s] }
            symbols.append((t, s))
            entropy -= log2(probabilities[t][s])
        }
        let bytes = RANS.encode(symbols, tables: tables)
        XCTAssertEqual(RANS.decode([UInt8](bytes), tables: symbols.map { tables[$0.table] }), symbols.map(\.symbol))
        XCTAssertLessThan(Double(bytes.count * 8), entropy * 1.01 + 64, "rANS spends about -log2 p bits")
        // Cut or corrupted streams are reported, not decoded into garbage silently.
        XCTAssertNil(RANS.decode([UInt8](bytes.dropLast(3)), tables: symbols.map { tables[$0.table] }))
    }

    func testPixelShuffleAndGradients() {
        let x = Tensor((0..<32).map(Float.init), shape: [1, 8, 2, 2])
        let y = pixelShuffle(x, 2)  // channel c*4 + i*2 + j goes to (2h + i, 2w + j) of channel c
        XCTAssertEqual(y.shape, [1, 2, 4, 4])
        XCTAssertEqual(y.toArray()[0..<8], [0, 4, 1, 5, 8, 12, 9, 13])
        let input = Tensor.uniform([2, 3, 4, 4], low: -1, high: 1, seed: 3, requiresGrad: true)
        for inverse in [false, true] {
            let gdn = GDN(3, inverse: inverse)
            gdn.gammaRoot.assign(Tensor.uniform([3, 3, 1, 1], low: 0.1, high: 0.6, seed: 4))
            checkFiniteDifferences([input, gdn.gammaRoot, gdn.betaRoot]) { _ in gdn(input) }
        }
        let density = FactorizedDensity(channels: 3)
        let latent = Tensor.uniform([2, 3, 2, 2], low: -3, high: 3, seed: 5, requiresGrad: true)
        checkFiniteDifferences([latent, density.matrices[0], density.biases[1], density.factors[0]]) { _ in density.likelihood(latent).log() }
        // The likelihoods of the integers sum to 1 per channel (a distribution), up to the far tails.
        // (Untrained, the density is wide: scale about 10, so the grid reaches far into the tails.)
        let grid = Tensor((-400...400).map(Float.init), shape: [1, 1, 1, 801]).expand(to: [1, 3, 1, 801]).contiguous()
        let p = withNoGrad { density.likelihood(grid) }.toArray()
        for c in 0..<3 { XCTAssertEqual(p[(c * 801)..<((c + 1) * 801)].reduce(0, +), 1, accuracy: 1e-3) }
    }

    /// sum(f(xs) * w) against central differences, in double the tolerance of the core's gradient checks.
    func checkFiniteDifferences(_ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line, _ f: @escaping ([Tensor]) -> Tensor) {
        for x in inputs { x.requiresGrad = true; x.zeroGrad() }
        let out = f(inputs)
        let weights = Tensor.uniform(out.shape, low: 0.5, high: 1.5, seed: 9)
        (out * weights).sum().backward()
        for (k, x) in inputs.enumerated() {
            let g = x.grad!.toArray(), p = x.pointer
            for i in 0..<x.count {
                let saved = p[i]
                p[i] = saved + 1e-2
                let up = withNoGrad { (f(inputs) * weights).sum().item }
                p[i] = saved - 1e-2
                let down = withNoGrad { (f(inputs) * weights).sum().item }
                p[i] = saved
                let numeric = (up - down) / 2e-2
                XCTAssertEqual(g[i], numeric, accuracy: 4e-3 + 4e-2 * max(abs(numeric), abs(g[i])), "input \(k) element \(i)", file: file, line: line)
            }
        }
    }

    func testFilesRoundTripAndRefuseOtherModelsAndDamage() throws {
        let codec = LearnedImageCodec(config: CompressionConfig(channels: 8, latentChannels: 6), seed: 1)
        codec.eval()
        let image = try Image.read(visionFixture("chelsea-crop.png"))  // 48 x 36: padded to 48 x 48 inside
        let bytes = try codec.compress(image.tensor())
        let decoded = try codec.decompress(bytes, source: "a.atic")
        XCTAssertEqual(decoded.shape, [3, 36, 48])
        // Decoding is exact: what the decoder reads is the rounded latent the encoder saw.
        let y = withNoGrad { codec.encode(LearnedImageCodec.padToMultiple(image.tensor(), 16).reshape([1, 3, 48, 48])) }
        let clamped = y.toArray().enumerated().map { i, v -> Float in
            let c = i / 9, (lo, hi) = codec.ranges[c]
            return Float(min(max(Int(v.rounded()), lo), hi))
        }
        let direct = withNoGrad { codec.decode(Tensor(clamped, shape: y.shape)) }
        let cropped = direct.reshape([3, 48, 48]).slice(axis: 1, start: 0, length: 36).contiguous()
        let clampedDirect = cropped.toArray().map { min(max($0, 0), 1) }
        XCTAssertEqual(decoded.toArray(), clampedDirect)

        let other = LearnedImageCodec(config: CompressionConfig(channels: 8, latentChannels: 6), seed: 2)
        XCTAssertThrowsError(try other.decompress(bytes, source: "a.atic")) { XCTAssertTrue("\($0)".contains("a.atic: compressed by another model"), "\($0)") }
        XCTAssertThrowsError(try codec.decompress(bytes.prefix(bytes.count - 2), source: "cut.atic")) {
            XCTAssertTrue("\($0)".contains("cut.atic: the coded latent is truncated or corrupt"), "\($0)")
        }
        XCTAssertThrowsError(try codec.decompress(Data("PNG".utf8), source: "x.png")) { XCTAssertTrue("\($0)".contains("no ATIC header")) }
        var huge = bytes
        huge.replaceSubrange(13..<21, with: [0x88, 0x13, 0, 0, 0x88, 0x13, 0, 0])  // 5,000 x 5,000
        XCTAssertThrowsError(try codec.decompress(huge, source: "huge.atic")) {
            XCTAssertTrue("\($0)".contains("huge.atic: the header declares 5000 x 5000 pixels"), "\($0)")
        }
        var g = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var corrupt = bytes
            let i = Int.random(in: 0..<bytes.count, using: &g)
            corrupt[i] ^= UInt8.random(in: 1...255, using: &g)
            _ = try? codec.decompress(corrupt, source: "corrupt.atic")  // an error or an image, never a crash
        }
        // Saved and loaded, the model keeps its fingerprint, so its files stay readable.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("codec-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try codec.save(path)
        XCTAssertEqual(try LearnedImageCodec.load(path).decompress(bytes, source: "a.atic").toArray(), decoded.toArray())
        XCTAssertTrue(try LearnedImageCodec.load(path).namedTensors().allSatisfy { !$0.1.requiresGrad })
        // A warm start (`attend ae train --from`): the same weights, the new trade-off, every weight trainable and reached
        // by the loss.
        let warm = try LearnedImageCodec.load(path, lambda: 0.05)
        XCTAssertEqual(warm.config.lambda, 0.05)
        XCTAssertEqual(warm.config.channels, 8)
        XCTAssertEqual(warm.fingerprint, codec.fingerprint)
        var noise = RandomGenerator(seed: 3)
        let (loss, _, _) = warm.trainingLoss(LearnedImageCodec.padToMultiple(image.tensor(), 16).reshape([1, 3, 48, 48]), generator: &noise)
        loss.backward()
        for (name, t) in warm.namedParameters() {
            XCTAssertTrue(t.requiresGrad, name)
            XCTAssertTrue(t.grad?.toArray().contains { $0 != 0 } ?? false, "\(name) has no gradient")
        }
    }

    func testMSSSIMAgainstReference() throws {
        // pytorch-msssim's ms_ssim(data_range=255) on the same pair (scripts/reference/make_vision_fixtures.py).
        let expected = try JSONDecoder().decode([String: Double].self, from: Data(contentsOf: URL(fileURLWithPath: visionFixture("msssim_expected.json"))))
        let original = try Image.read(try requireAsset("scikit-image-data/chelsea.png", fetch: "scikit-image-data"))
        for quality in [10, 50] {
            let jpeg = try Image.read(visionFixture("chelsea-q\(quality).jpg"))
            let want = try XCTUnwrap(expected["chelsea-q\(quality)"])
            XCTAssertEqual(ImageQuality.msssim(jpeg, original), want, accuracy: 1e-4, "quality \(quality)")
        }
        XCTAssertEqual(ImageQuality.msssim(original, original), 1, accuracy: 1e-9)
    }
}
