@testable import AttendDatasets
import AttendTensor
import Foundation
import XCTest

final class DatasetTests: XCTestCase {
    func write(_ bytes: [UInt8], _ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("attend-idx-\(ProcessInfo.processInfo.processIdentifier)-\(name)").path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func testReadsIDXImagesAndLabels() throws {
        let images = write([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 51, 102, 1, 2, 3, 4], "images")
        let labels = write([0, 0, 8, 1, 0, 0, 0, 2, 7, 3], "labels")
        let set = try ImageDataset(idxImages: images, idxLabels: labels)
        XCTAssertEqual(set.images.shape, [2, 1, 2, 2])
        XCTAssertEqual(set.images.toArray()[1], 1)
        XCTAssertEqual(set.images.toArray()[2], 0.2, accuracy: 1e-6)
        XCTAssertEqual(set.labels.data, [7, 3])
        let (x, y) = set.batch([1])
        XCTAssertEqual(x.shape, [1, 1, 2, 2])
        XCTAssertEqual(y.data, [3])
    }

    func testBadIDXFilesGiveClearErrors() {
        let truncated = write([0, 0, 8, 1, 0, 0, 0, 5, 1, 2], "truncated")
        XCTAssertThrowsError(try IDX.readUInt8(truncated)) { XCTAssertTrue("\($0)".contains("need 5 bytes"), "\($0)") }
        let notIDX = write(Array("hello world".utf8), "text")
        XCTAssertThrowsError(try IDX.readUInt8(notIDX)) { XCTAssertTrue("\($0)".contains("not an IDX file"), "\($0)") }
        let ints = write([0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 1], "int32")
        XCTAssertThrowsError(try IDX.readUInt8(ints)) { XCTAssertTrue("\($0)".contains("not unsigned byte"), "\($0)") }
        XCTAssertThrowsError(try IDX.readUInt8("/nonexistent/file.gz")) { XCTAssertTrue("\($0)".contains("no such file")) }
        XCTAssertThrowsError(try ImageDataset.fashionMNIST(directory: "/nonexistent", train: true)) {
            XCTAssertTrue("\($0)".contains("dataset-fashion-mnist"), "\($0)")
        }
    }

    func testFashionMNISTFromDebianPackage() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory + "/t10k-labels-idx1-ubyte.gz"),
                          "Debian's dataset-fashion-mnist is not installed")
        let test = try ImageDataset.fashionMNIST(train: false)
        XCTAssertEqual(test.images.shape, [10_000, 1, 28, 28])
        XCTAssertEqual(test.classCount, 10)
        // The test split is balanced: 1,000 images per class.
        XCTAssertEqual(Dictionary(grouping: test.labels.data, by: { $0 }).mapValues(\.count).values.sorted(), [Int](repeating: 1000, count: 10))
    }

    func testShuffledBatchesAreSeededAndCoverEveryExample() {
        let a = Array(ShuffledBatches(count: 10, batchSize: 3, seed: 1, epoch: 0))
        XCTAssertEqual(a, Array(ShuffledBatches(count: 10, batchSize: 3, seed: 1, epoch: 0)))
        XCTAssertNotEqual(a, Array(ShuffledBatches(count: 10, batchSize: 3, seed: 1, epoch: 1)))
        XCTAssertEqual(a.map(\.count), [3, 3, 3, 1])
        XCTAssertEqual(a.flatMap { $0 }.sorted(), Array(0..<10))
        XCTAssertEqual(Array(ShuffledBatches(count: 10, batchSize: 3, seed: 1, epoch: 0, dropLast: true)).count, 3)
    }
}
