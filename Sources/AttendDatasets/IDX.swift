// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian magic number whose third byte is
// the element type (0x08 = unsigned byte) and fourth the number of dimensions, the dimensions as
// big-endian UInt32, then the data. Files may be gzip-compressed (read through zlib).

import AttendTensor
import Foundation

/// Reads the IDX arrays of MNIST and Fashion-MNIST, gzip-compressed or not.
///
/// ```swift
/// let (shape, pixels) = try IDX.readUInt8("train-images-idx3-ubyte.gz")   // [60000, 28, 28]
/// let train = try ImageDataset(idxImages: "train-images-idx3-ubyte.gz", idxLabels: "train-labels-idx1-ubyte.gz")
/// ```
public enum IDX {
    /// The whole file, decompressed when it is gzip (zlib reads plain files unchanged).
    static func readBytes(_ path: String) throws -> [UInt8] { try GzipFile.read(path) }

    /// Reads an unsigned-byte IDX array: its dimensions and values.
    public static func readUInt8(_ path: String) throws -> (shape: [Int], values: [UInt8]) {
        let bytes = try readBytes(path)
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw AttendError("\(path): not an IDX file (expected magic 00 00 08 nn, got \(bytes.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")))")
        }
        guard bytes[2] == 0x08 else { throw AttendError("\(path): IDX element type 0x\(String(bytes[2], radix: 16)) is not unsigned byte (0x08)") }
        let rank = Int(bytes[3])
        guard rank >= 1, bytes.count >= 4 + 4 * rank else { throw AttendError("\(path): IDX header is truncated") }
        let shape = (0..<rank).map { d -> Int in
            (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) }
        }
        let start = 4 + 4 * rank
        // The element count with overflow checks: 255 dimensions of up to 2^32 - 1 each overflow any integer.
        var n = shape.contains(0) ? 0 : 1
        for d in shape where n > 0 {
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, product <= bytes.count else {
                throw AttendError("\(path): IDX dimensions \(shape) need more bytes of data than the file's \(bytes.count - start)")
            }
            n = product
        }
        guard bytes.count - start == n else {
            throw AttendError("\(path): IDX dimensions \(shape) need \(n) bytes of data, the file has \(bytes.count - start)")
        }
        return (shape, Array(bytes[start...]))
    }
}

/// An image classification set: images [N, 1, H, W] scaled to [0, 1], labels [N].
public struct ImageDataset {
    public var images: Tensor
    public var labels: IntTensor
    public var count: Int { labels.count }
    public var classCount: Int { Int(labels.data.max() ?? 0) + 1 }

    public init(images: Tensor, labels: IntTensor) {
        precondition(images.shape[0] == labels.count, "ImageDataset: \(images.shape[0]) images but \(labels.count) labels")
        self.images = images
        self.labels = labels
    }

    /// Loads an IDX image file and its label file.
    public init(idxImages: String, idxLabels: String) throws {
        let (shape, pixels) = try IDX.readUInt8(idxImages)
        let (labelShape, labels) = try IDX.readUInt8(idxLabels)
        guard shape.count == 3 else { throw AttendError("\(idxImages): expected 3 dimensions (count, rows, cols), got \(shape)") }
        guard labelShape.count == 1, labelShape[0] == shape[0] else {
            throw AttendError("\(idxLabels): \(labelShape) labels do not match \(shape[0]) images in \(idxImages)")
        }
        let t = Tensor(shape: [shape[0], 1, shape[1], shape[2]])
        let p = t.pointer
        for i in 0..<pixels.count { p[i] = Float(pixels[i]) * (1 / 255) }
        self.init(images: t, labels: IntTensor(labels.map { Int32($0) }, shape: [labels.count]))
    }

    /// Fashion-MNIST's train or test split from a folder holding the four `*-ubyte.gz` files.
    public static func fashionMNIST(directory: String = FashionMNIST.defaultDirectory, train: Bool) throws -> ImageDataset {
        let prefix = train ? "train" : "t10k"
        let dir = URL(fileURLWithPath: directory)
        func file(_ name: String) throws -> String {
            for candidate in [name + ".gz", name] {
                let path = dir.appendingPathComponent(candidate).path
                if FileManager.default.fileExists(atPath: path) { return path }
            }
            throw AttendError("\(dir.appendingPathComponent(name + ".gz").path): no such file (install Debian's dataset-fashion-mnist, or pass --data DIR)")
        }
        return try ImageDataset(idxImages: try file("\(prefix)-images-idx3-ubyte"), idxLabels: try file("\(prefix)-labels-idx1-ubyte"))
    }

    /// Examples at `indices` as a batch (no gradient history).
    public func batch(_ indices: [Int]) -> (images: Tensor, labels: IntTensor) {
        let ids = IntTensor(indices.map { Int32($0) }, shape: [indices.count])
        let x = withNoGrad { images.indexSelect(ids) }
        return (x, IntTensor(indices.map { labels.data[$0] }, shape: [indices.count]))
    }
}

/// Where Fashion-MNIST is installed and its class names; `ImageDataset.fashionMNIST` loads it.
///
/// ```swift
/// let test = try ImageDataset.fashionMNIST(directory: FashionMNIST.defaultDirectory, train: false)
/// print(FashionMNIST.classNames[Int(test.labels.data[0])])   // "Ankle boot"
/// ```
public enum FashionMNIST {
    /// Where Debian's `dataset-fashion-mnist` installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
}

extension ImageDataset {
    /// The examples in `range`, in order.
    public func subset(_ range: Range<Int>) -> ImageDataset {
        let ids = IntTensor(range.map { Int32($0) }, shape: [range.count])
        return ImageDataset(images: withNoGrad { images.indexSelect(ids) },
                            labels: IntTensor(Array(labels.data[range]), shape: [range.count]))
    }
}

/// scikit-learn's handwritten digits (UCI "optdigits" test part): 1,797 pictures of 8 x 8 cells counting 0-16 ink
/// pixels, one CSV line each (64 cells, then the digit), gzip-compressed. `scripts/fetch-assets.sh scikit-learn-data`
/// fetches `digits.csv.gz`.
///
/// ```swift
/// let digits = try Digits.load(".cache/assets/scikit-learn-data/digits.csv.gz")   // images [1797, 1, 8, 8] in [0, 1]
/// ```
public enum Digits {
    public static let classNames = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

    public static func load(_ path: String) throws -> ImageDataset {
        let bytes = path.hasSuffix(".gz") ? try GzipFile.read(path) : Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let text = String(decoding: bytes, as: UTF8.self)
        var pixels: [Float] = [], labels: [Int32] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 65 else { throw AttendError("\(path), line \(number + 1): expected 65 comma-separated values (64 cells and the digit), got \(fields.count)") }
            for (k, field) in fields.enumerated() {
                guard let v = Int(field.trimmingCharacters(in: .whitespaces)), k < 64 ? (0...16).contains(v) : (0...9).contains(v) else {
                    throw AttendError("\(path), line \(number + 1), column \(k + 1): expected \(k < 64 ? "a count 0-16" : "a digit 0-9"), got '\(field)'")
                }
                if k < 64 { pixels.append(Float(v) / 16) } else { labels.append(Int32(v)) }
            }
        }
        guard !labels.isEmpty else { throw AttendError("\(path): no digits") }
        return ImageDataset(images: Tensor(pixels, shape: [labels.count, 1, 8, 8]), labels: IntTensor(labels, shape: [labels.count]))
    }
}
