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

    func testDigitsCSVAndItsErrors() throws {
        let row = (0..<64).map { String($0 % 17) }.joined(separator: ",")
        let good = write(Array("\(row),7\n\(row),0\n".utf8), "digits.csv")
        let digits = try Digits.load(good)
        XCTAssertEqual(digits.images.shape, [2, 1, 8, 8])
        XCTAssertEqual(digits.labels.data, [7, 0])
        XCTAssertEqual(digits.images.toArray()[16], 1)        // 16 ink pixels of 16
        XCTAssertEqual(digits.images.toArray()[3], 3 / 16)
        for (text, expected) in [("\(row)\n", "line 1: expected 65"), ("\(row),7\n\(row),10\n", "line 2, column 65: expected a digit 0-9, got '10'"),
                                 ("17,\(row.dropFirst(2)),3\n", "line 1, column 1: expected a count 0-16, got '17'"),
                                 ("\n\n", "no digits"), ("x,\(row.dropFirst(2)),3", "column 1: expected a count 0-16, got 'x'")] {
            XCTAssertThrowsError(try Digits.load(write(Array(text.utf8), "bad-digits.csv"))) {
                XCTAssertTrue("\($0)".contains(expected), "\($0) should say \(expected)")
            }
        }
    }

    func testDigitsFromScikitLearn() throws {
        let path = FileManager.default.currentDirectoryPath + "/.cache/assets/scikit-learn-data/digits.csv.gz"
        guard FileManager.default.fileExists(atPath: path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { return XCTFail("\(path) is missing: scripts/fetch-assets.sh scikit-learn-data") }
            throw XCTSkip("run scripts/fetch-assets.sh scikit-learn-data")
        }
        let digits = try Digits.load(path)
        XCTAssertEqual(digits.count, 1797)
        XCTAssertEqual(Array(digits.labels.data.prefix(10)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(digits.images.toArray()[2], 5 / 16)    // sklearn's first digit begins 0, 0, 5, 13
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

final class TextTaskTests: XCTestCase {
    func testNumberWordsAtEveryBoundary() {
        let expected: [Int: String] = [0: "zero", 7: "seven", 13: "thirteen", 20: "twenty", 21: "twenty-one", 99: "ninety-nine", 100: "one hundred",
                                       101: "one hundred one", 110: "one hundred ten", 999: "nine hundred ninety-nine", 1000: "one thousand",
                                       1001: "one thousand one", 4821: "four thousand eight hundred twenty-one",
                                       20_000: "twenty thousand", 99_999: "ninety-nine thousand nine hundred ninety-nine",
                                       100_000: "one hundred thousand", 512_340: "five hundred twelve thousand three hundred forty"]
        for (n, words) in expected { XCTAssertEqual(TextTask.words(n), words, "\(n)") }
    }

    func testTasksArePrefixedDeterministicAndCorrect() {
        XCTAssertEqual(TextTask.numberToWords.prefixed("12"), "number to words: 12")
        XCTAssertEqual(TextTask.dateToISO.prefixed("5 Mar 98"), "date to iso: 5 Mar 98")
        for task in TextTask.allCases {
            let a = task.pairs(count: 50, seed: 3), b = task.pairs(count: 50, seed: 3)
            XCTAssertEqual(a.map(\.source), b.map(\.source), "\(task) is deterministic")
            XCTAssertNotEqual(a.map(\.source), task.pairs(count: 50, seed: 4).map(\.source), "\(task) depends on the seed")
        }
        for p in TextTask.reverseWords.pairs(count: 20, seed: 1) {
            XCTAssertEqual(p.target.split(separator: " ").reversed().joined(separator: " "), p.source)
            XCTAssertTrue((3...7).contains(p.source.split(separator: " ").count))
        }
        for p in TextTask.numberToWords.pairs(count: 40, seed: 1) { XCTAssertEqual(TextTask.words(Int(p.source)!), p.target) }
        // Every digit count occurs.
        XCTAssertEqual(Set(TextTask.numberToWords.pairs(count: 200, seed: 2).map { min($0.source.count, 5) }), [1, 2, 3, 4, 5])
    }
}
