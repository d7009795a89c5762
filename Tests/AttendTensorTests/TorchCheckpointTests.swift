// torch.save files read without Python, against what PyTorch reads back from the same files
// (scripts/reference/make_torch_fixtures.py): both containers, every storage dtype, views with strides and
// offsets, shared storages, parameters, a nested training checkpoint, and pickles a safe reader must refuse.

import AttendTensor
import Foundation
import XCTest

final class TorchCheckpointTests: XCTestCase {
    func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("torch/\(name)").path
    }

    func expected() throws -> [String: (shape: [Int], values: [Float])] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture("expected.json")))) as! [String: [String: Any]]
        return json.mapValues { (($0["shape"] as! [Int]), ($0["values"] as! [NSNumber]).map { $0.floatValue }) }
    }

    func testBothFormatsGiveWhatPyTorchReads() throws {
        let want = try expected()
        for (file, format) in [("state-zip.pt", "zip"), ("state-legacy.pt", "legacy")] {
            let checkpoint = try TorchCheckpoint.read(fixture(file))
            XCTAssertEqual(checkpoint.format, format)
            XCTAssertEqual(checkpoint.names, ["conv.weight", "conv.bias", "transposed", "sliced", "half", "bfloat", "double", "long",
                                              "int8", "uint8", "bool", "scalar", "empty", "num_batches_tracked"], file)
            XCTAssertEqual(Set(checkpoint.tensors.keys), Set(want.keys))
            for (name, (shape, values)) in want {
                let t = try XCTUnwrap(checkpoint.tensors[name], "\(file): \(name)")
                XCTAssertEqual(t.shape, shape, "\(file): \(name)")
                XCTAssertEqual(t.toArray(), values, "\(file): \(name)")  // exact: every dtype converts to Float32 exactly here
            }
        }
    }

    func testNestedStateDict() throws {
        let checkpoint = try TorchCheckpoint.read(fixture("nested-zip.pt"))
        XCTAssertEqual(checkpoint.names, ["conv.weight", "conv.bias"])
        XCTAssertEqual(checkpoint.tensors["conv.bias"]!.toArray(), try expected()["conv.bias"]!.values)
    }

    func testZeroStrideViewClaimingBillionsIsRefused() throws {
        XCTAssertThrowsError(try TorchCheckpoint.read(fixture("expanded-huge-zip.pt"))) { error in
            XCTAssertTrue("\(error)".contains("tensor 'huge' claims 1073741824 elements from a 1-element storage"), "\(error)")
        }
    }

    func testForbiddenGlobalIsRefused() throws {
        XCTAssertThrowsError(try TorchCheckpoint.read(fixture("evil-zip.pt"))) { error in
            XCTAssertTrue("\(error)".contains("'posix.system' is not allowed"), "\(error)")
        }
    }

    /// Every truncation of both files and a sweep of single-byte corruptions: an error or a result, never a crash.
    func testTruncatedAndCorruptFilesGiveErrors() throws {
        for file in ["state-zip.pt", "state-legacy.pt"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: fixture(file)))
            for length in 0..<data.count {
                XCTAssertThrowsError(try TorchCheckpoint.parse(data.prefix(length), source: file), "\(file) cut at \(length)")
            }
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<3000 {
                var corrupt = data
                let i = Int.random(in: 0..<data.count, using: &generator)
                corrupt[i] = UInt8.random(in: 0...255, using: &generator)
                _ = try? TorchCheckpoint.parse(corrupt, source: file)
            }
        }
        XCTAssertThrowsError(try TorchCheckpoint.parse(Data("not a checkpoint".utf8), source: "x")) { error in
            XCTAssertTrue("\(error)".contains("not a PyTorch checkpoint"), "\(error)")
        }
    }

    /// A legacy storage whose 8-byte count claims far more elements than the file holds is refused before allocating.
    func testClaimedStorageSizeIsCheckedAgainstTheFile() throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: fixture("state-legacy.pt")))
        // Patch each 8-byte window in turn to 2^40; where it is a storage's element count, the reader must say so.
        var refused = false
        for offset in stride(from: data.count - 8, through: 0, by: -1) where !refused {
            let original = data.subdata(in: offset..<(offset + 8))
            var huge = UInt64(1 << 40).littleEndian
            data.replaceSubrange(offset..<(offset + 8), with: Data(bytes: &huge, count: 8))
            do { _ = try TorchCheckpoint.parse(data, source: "legacy") } catch {
                refused = "\(error)".contains("claims 1099511627776 elements")
            }
            data.replaceSubrange(offset..<(offset + 8), with: original)
        }
        XCTAssertTrue(refused)
    }
}

