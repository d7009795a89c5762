import ArgumentParser
import AttendModels
import AttendNN
import AttendTensor
import Foundation

/// EfficientNet-Lite0 inference speed over batch sizes and image sizes (Benchmarks/efficientnet.sh prints PyTorch's
/// figure beside it), with the achieved GFLOP/s.
struct EfficientNetBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "efficientnet", abstract: "EfficientNet-Lite0 inference: images/s and GFLOP/s per batch and image size.")
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint.") var model: String?
    @Option(name: .customLong("batch-sizes"), parsing: .upToNextOption, help: "Batch sizes (1-256).") var batchSizes: [Int] = [1, 8, 32]
    @Option(name: .customLong("image-sizes"), parsing: .upToNextOption, help: "Square image sizes (32-1024).") var imageSizes: [Int] = [224]
    @Option(help: "Timed runs per cell (the median is reported; 1-100).") var repeats = 5

    func validate() throws {
        guard !batchSizes.isEmpty, batchSizes.allSatisfy({ (1...256).contains($0) }) else { throw ValidationError("--batch-sizes must be 1...256") }
        guard !imageSizes.isEmpty, imageSizes.allSatisfy({ (32...1024).contains($0) }) else { throw ValidationError("--image-sizes must be 32...1024") }
        guard (1...100).contains(repeats) else { throw ValidationError("--repeats must be 1...100") }
    }

    func run() throws {
        let net = try EfficientNet.load(model ?? ImageAssets.efficientNetLite0)
        print("threads \(Parallel.threads); GEMM kernel \(Gemm.ownKernelName); products on \(Backend.current.name)")
        print(" size batch   images/s   ms/batch   GFLOP/s")
        for size in imageSizes {
            let flops = EfficientNetBench.flops(net, size: size)
            for batch in batchSizes {
                let x = Tensor.uniform([batch, 3, size, size], low: -1, high: 1, seed: 1)
                let seconds = medianSeconds(repeats: repeats) { _ = withNoGrad { net(x) } }
                print(String(format: "%5d %5d %10.1f %10.2f %9.1f", size, batch, Double(batch) / seconds, 1000 * seconds,
                             flops * Double(batch) / seconds / 1e9))
            }
        }
    }

    /// Multiply-adds x 2 of every convolution and the classifier for one size x size image.
    static func flops(_ net: EfficientNet, size: Int) -> Double {
        var h = size, total = 0.0
        func conv(_ c: FoldedConv2d) {
            let (o, cg, k) = (c.weight.shape[0], c.weight.shape[1], c.weight.shape[2])
            h = (h + c.stride - 1) / c.stride
            total += 2 * Double(o * cg * k * k) * Double(h * h)
        }
        conv(net.stem)
        for b in net.blocks { if let e = b.expand { conv(e) }; conv(b.depthwise); conv(b.project) }
        conv(net.head)
        return total + 2 * Double(net.classifier.weight.count)
    }
}

/// One CLIP training step (from-scratch text Transformer, projections, temperature, symmetric loss, AdamW) on cached
/// image features and random captions, over batch sizes and text widths; Benchmarks/clip.sh prints PyTorch's time for
/// the same model beside it.
struct CLIPStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip-step", abstract: "CLIP training steps/s with the from-scratch text tower, per batch size and width.",
        discussion: """
            The image side is cached 1280-d features (a locked tower, the LiT setting) or, with --image-tower vit, a \
            Vision Transformer trained from scratch on 28 x 28 pictures in 7 x 7 patches, as wide and deep as the text tower.
            """)
    @Option(name: .customLong("batch-sizes"), parsing: .upToNextOption, help: "Pairs per step (2-4096).") var batchSizes: [Int] = [64, 256, 1024]
    @Option(parsing: .upToNextOption, help: "Text Transformer widths (heads = width / 32).") var widths: [Int] = [128, 256]
    @Option(help: "Text Transformer layers.") var layers = 2
    @Option(help: "Tokens per caption.") var tokens = 12
    @Option(help: "Timed steps per cell (the median is reported; 1-100).") var repeats = 5
    @Option(name: .customLong("image-tower"), help: "efficientnet-lite0 (cached features) or vit (trained from scratch).") var imageTower: CLIPImageTowerOption = .efficientnet
    @OptionGroup var towers: CLIPTowerOptions

    func validate() throws {
        guard !batchSizes.isEmpty, batchSizes.allSatisfy({ (2...4096).contains($0) }) else { throw ValidationError("--batch-sizes must be 2...4096") }
        guard !widths.isEmpty, widths.allSatisfy({ (32...2048).contains($0) && $0 % 32 == 0 }) else { throw ValidationError("--widths must be multiples of 32 in 32...2048") }
        guard (1...24).contains(layers), (1...64).contains(tokens), (1...100).contains(repeats) else { throw ValidationError("--layers 1...24, --tokens 1...64, --repeats 1...100") }
    }

    func run() throws {
        print("threads \(Parallel.threads); GEMM kernel \(Gemm.ownKernelName); products on \(Backend.current.name)")
        print("width batch    steps/s   ms/step")
        let vocabulary = (0..<1000).map { Int32($0 * 37 + 300) }
        for width in widths {
            var config = CLIPConfig(imageTower: imageTower.tower, textTower: .transformer)
            config.imageSize = 28
            config.patchSize = 7
            config.visionWidth = width
            config.visionHeads = width / 32
            config.visionLayers = layers
            config.textWidth = width
            config.textHeads = width / 32
            config.textLayers = layers
            config.vocabulary = vocabulary
            let clip = CLIP(config, towers: try towers.towers(for: config))
            let optimizer = Adam.decayingMatrices(of: clip, learningRate: 1e-4, beta2: 0.98, weightDecay: 0.1)
            for batch in batchSizes {
                var generator = RandomGenerator(seed: 7)
                let images = imageTower == .vit ? Tensor.uniform([batch, 3, 28, 28], low: -2, high: 2, seed: 3)
                    : Tensor.uniform([batch, config.imageFeatureDimension], low: 0, high: 6, seed: 3)
                let rows = (0..<batch).map { _ in (0..<tokens).map { _ in Int32(2 + generator.next() % 1000) } }
                let seconds = medianSeconds(repeats: repeats) {
                    clip.zeroGrad()
                    // Cached features stand for a locked tower; the ViT runs on its pictures each step.
                    let features = imageTower == .vit ? clip.imageFeatures(images) : images
                    clip.loss(imageFeatures: features, textFeatures: clip.textTransformer!(rows)).backward()
                    optimizer.update()
                }
                print(String(format: "%5d %5d %10.2f %9.2f", width, batch, 1 / seconds, 1000 * seconds))
            }
        }
    }
}
