import ArgumentParser
import AttendModels
import AttendTensor
import AttendVision
import Foundation

/// Where the pretrained image classifier and its labels live once `scripts/fetch-assets.sh` has fetched them.
enum ImageAssets {
    static var root: String {
        ProcessInfo.processInfo.environment["ATTEND_ASSETS"] ?? (FileManager.default.currentDirectoryPath + "/.cache/assets")
    }
    static var efficientNetLite0: String { root + "/efficientnet-lite0/efficientnet-lite0-57934424.pth" }
    static var imageNetLabels: String { root + "/imagenet-labels" }
}

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "ImageNet-1k classes of photos with EfficientNet-Lite0 (PNG or JPEG).",
        discussion: "Fetch the model and labels first: scripts/fetch-assets.sh efficientnet-lite0 imagenet-labels")
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint.") var model: String?
    @Option(help: "A folder with imagenet_synsets.txt and imagenet_synset_to_lemma.txt.") var labels: String?
    @Option(help: "Classes to print per image (1-1000).") var top = 5
    @Option(name: .customLong("batch-size"), help: "Images per forward pass (1-256).") var batchSize = 8
    @Flag(help: "One JSON object per image: file, and the classes with index, label and probability.") var json = false
    @Argument(help: "Images (PNG or JPEG).") var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give one or more images") }
        guard (1...1000).contains(top) else { throw ValidationError("--top must be 1...1000, got \(top)") }
        guard (1...256).contains(batchSize) else { throw ValidationError("--batch-size must be 1...256, got \(batchSize)") }
    }

    func run() throws {
        let net = try EfficientNet.load(model ?? ImageAssets.efficientNetLite0)
        let names = try ImageNetLabels.load(folder: labels ?? ImageAssets.imageNetLabels).names
        let size = net.config.imageSize
        var failures = 0
        for start in stride(from: 0, to: images.count, by: batchSize) {
            var batch: [(String, Tensor)] = []
            for path in images[start..<min(start + batchSize, images.count)] {
                do {
                    let image = try Image.read(path)
                    try image.requireAspectRatio(source: path)
                    batch.append((path, image.classifierInput(size: size, mean: net.config.mean, std: net.config.std)))
                } catch {
                    failures += 1
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                }
            }
            guard !batch.isEmpty else { continue }
            let x = Tensor.concat(batch.map { $0.1.reshape([1, 3, size, size]) }, axis: 0)
            let probabilities = withNoGrad { net(x).softmax(axis: -1) }.toArray()
            for (row, (path, _)) in batch.enumerated() {
                let p = probabilities[(row * 1000)..<((row + 1) * 1000)]
                let best = p.indices.sorted { p[$0] > p[$1] }.prefix(top).map { $0 - row * 1000 }
                if json {
                    let classes = best.map { ["index": $0, "label": names[$0], "probability": Double(p[row * 1000 + $0])] as [String: Any] }
                    let data = try JSONSerialization.data(withJSONObject: ["file": path, "classes": classes], options: [.sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print(path)
                    for i in best { print(String(format: "  %6.2f%%  %4d  %@", 100 * p[row * 1000 + i], i, names[i])) }
                }
            }
        }
        if failures > 0 { throw AttendError("\(failures) of \(images.count) images could not be read") }
    }
}
