import ArgumentParser
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import AttendVision
import Foundation

struct StyleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "style",
        abstract: "Neural style transfer: repaint a photo in the style of one or more images.",
        subcommands: [StyleTransferCommand.self, StyleTrainCommand.self],
        defaultSubcommand: StyleTransferCommand.self)
}

struct StyleTransferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Repaint CONTENT in the style of one or more STYLE images (Gatys, or --fast: AdaIN and a trained decoder).",
        discussion: """
            By default the output's pixels are optimized so its EfficientNet-Lite0 features match the content image's and \
            the Gram matrices of its features match the style images' (mixed by --mix weights: the lecture's aH1 + bH2). \
            With --fast, the encoder encodes the photo and each style image, the photo's features take on each style's \
            per-channel statistics (adaptive instance normalization), the results are mixed by --mix weights and blended \
            with the photo's own by --alpha, and the decoder from attend style train renders the mix in one pass. Prints \
            the content and style losses of the content image, the style image and the result.
            """)
    @Argument(help: "The content image (PNG or JPEG).") var content: String
    @Argument(help: "One or more style images.") var styles: [String]
    @Option(name: .shortAndLong, help: "Output image (.png or .jpg).") var output: String
    @Option(parsing: .upToNextOption, help: "Mixing weights of the style images (positive; default equal).") var mix: [Float] = []
    @Option(help: "The shorter side of the output, in pixels (32-1024).") var size = 256
    @Option(help: "Optimization steps (1-10000; not used with --fast).") var steps = 200
    @Option(name: .customLong("content-weight"), help: "Weight of the content loss (finite, >= 0).") var contentWeight: Float = 1
    @Option(name: .customLong("style-weight"), help: "Weight of the style loss (finite, >= 0).") var styleWeight: Float = 1000
    @Option(name: .customLong("learning-rate"), help: "Adam's step on the pixels (finite, > 0; not used with --fast).") var learningRate: Float = 0.02
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint.") var model: String?
    @Flag(help: "Render in one pass through a trained decoder (AdaIN) instead of optimizing the pixels.") var fast = false
    @Option(help: "The decoder for --fast (from attend style train).") var decoder = "models/style-decoder.safetensors"
    @Option(help: "With --fast: how much of the style to apply, 0 (none) to 1 (all).") var alpha: Float = 1

    func validate() throws {
        guard !styles.isEmpty else { throw ValidationError("give at least one style image") }
        guard mix.isEmpty || mix.count == styles.count else { throw ValidationError("--mix needs one weight per style image (\(styles.count)), got \(mix.count)") }
        guard mix.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw ValidationError("--mix weights must be positive and finite") }
        guard (32...1024).contains(size) else { throw ValidationError("--size must be 32...1024, got \(size)") }
        guard (1...10_000).contains(steps) else { throw ValidationError("--steps must be 1...10000, got \(steps)") }
        for (name, v) in [("--content-weight", contentWeight), ("--style-weight", styleWeight)] where !(v.isFinite && v >= 0) {
            throw ValidationError("\(name) must be finite and at least 0, got \(v)")
        }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--learning-rate must be finite and positive") }
        guard alpha.isFinite && (0...1).contains(alpha) else { throw ValidationError("--alpha must be in 0...1, got \(alpha)") }
        let ext = (output as NSString).pathExtension.lowercased()
        guard ["png", "jpg", "jpeg"].contains(ext) else { throw ValidationError("--output must end in .png, .jpg or .jpeg") }
    }

    func run() throws {
        try OutputPath.check(output, isNotInput: [content] + styles)
        let net = try EfficientNet.load(model ?? ImageAssets.efficientNetLite0)
        let original = try Image.read(content)
        try original.requireAspectRatio(atMost: 8, source: content)
        let contentImage = original.rgb().resized(shorterSide: size)
        let (w, h) = (contentImage.width, contentImage.height)
        // Each style image is scaled to cover the output and centre-cropped to its size.
        let styleImages = try styles.map { path -> Tensor in
            let s = try Image.read(path).rgb()
            try s.requireAspectRatio(atMost: 8, source: path)
            return s.covering(width: w, height: h).tensor()
        }
        var style = NeuralStyle(network: net)
        style.contentWeight = contentWeight
        style.styleWeight = styleWeight
        style.learningRate = learningRate
        let weights = mix.isEmpty ? [Float](repeating: 1, count: styles.count) : mix
        let pairs = Array(zip(styleImages, weights)).map { (image: $0.0, weight: $0.1) }
        let x = contentImage.tensor()
        let targets = style.targets(content: x, styles: pairs)
        let before = style.evaluate(x, targets)
        let result: Tensor, seconds: Double
        if fast {
            let renderer = FastNeuralStyle(measure: style, decoder: try StyleDecoder.load(decoder, encoder: net.config))
            let started = Date()
            result = renderer.render(content: x, styles: pairs, alpha: alpha)
            seconds = Date().timeIntervalSince(started)
        } else {
            let started = Date()
            let bar = ProgressBar(total: steps, label: "style", unit: "step")
            result = style.transfer(content: x, targets: targets, steps: steps) { _, losses in bar.advance(status: "\(losses)") }
            bar.finish()
            seconds = Date().timeIntervalSince(started)
        }
        try Image(tensor: result).write(to: output)
        let after = style.evaluate(result, targets)
        print("content image: \(before)")
        for (path, image) in zip(styles, styleImages) { print("style image \((path as NSString).lastPathComponent): \(style.evaluate(image, targets))") }
        print("result:        \(after)")
        if fast {
            print(String(format: "%d x %d, one pass (alpha %g) in %.2f s; wrote %@", w, h, alpha, seconds, output))
        } else {
            print(String(format: "%d x %d, %d steps in %.1f s (%.2f s/step); wrote %@", w, h, steps, seconds, seconds / Double(steps), output))
        }
    }
}

struct StyleTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the decoder of attend style transfer --fast on random patches of photos and of style images.",
        discussion: """
            Each step renders a batch of photo patches, each in the style of a random style patch, and lowers \
            content-weight * content loss + style-weight * style loss + identity-weight * identity loss. The style loss is \
            the Gram-matrix loss attend style transfer prints; the content loss is AdaIN's (the result's block-4 features \
            against the mixed features the decoder was given); the identity loss is the pixel MSE of each photo rendered \
            from its own, unmixed features.
            """)
    @Argument(help: "Photos or folders of photos (PNG or JPEG) to cut content patches from.") var photos: [String]
    @Option(parsing: .upToNextOption, help: "Style images or folders of them.") var styles: [String]
    @Option(name: .shortAndLong, help: "The decoder to write (.safetensors).") var output: String
    @Option(help: "Training steps (1-1000000).") var steps = 2000
    @Option(name: .customLong("batch-size"), help: "Patches per step (1-256).") var batchSize = 8
    @Option(help: "Patch side in pixels (a multiple of 8, 32-512).") var patch = 128
    @Option(help: "Photos are shrunk to this shorter side first (64-8192).") var side = 384
    @Option(name: .customLong("style-side"), help: "Style images are shrunk to this shorter side first (64-8192).") var styleSide = 256
    @Option(name: .customLong("content-weight"), help: "Weight of the content loss (finite, >= 0).") var contentWeight: Float = 1
    @Option(name: .customLong("style-weight"), help: "Weight of the style loss (finite, >= 0).") var styleWeight: Float = 1
    @Option(name: .customLong("identity-weight"), help: "Weight of the pixel loss of each photo rendered in its own style (finite, >= 0).") var identityWeight: Float = 3000
    @Option(name: .customLong("learning-rate"), help: "Adam's learning rate (finite, > 0).") var learningRate: Float = 1e-3
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint (the encoder).") var model: String?
    @Option(name: .customLong("loss-curve"), help: "Write the content and style loss curves as a PNG.") var lossCurve: String?

    func validate() throws {
        guard !styles.isEmpty else { throw ValidationError("give at least one style image with --styles") }
        guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1...1000000, got \(steps)") }
        guard (1...256).contains(batchSize) else { throw ValidationError("--batch-size must be 1...256, got \(batchSize)") }
        guard (32...512).contains(patch) && patch % 8 == 0 else { throw ValidationError("--patch must be a multiple of 8 in 32...512, got \(patch)") }
        guard (64...8192).contains(side) else { throw ValidationError("--side must be 64...8192, got \(side)") }
        guard (64...8192).contains(styleSide) else { throw ValidationError("--style-side must be 64...8192, got \(styleSide)") }
        for (name, v) in [("--content-weight", contentWeight), ("--style-weight", styleWeight), ("--identity-weight", identityWeight)] where !(v.isFinite && v >= 0) {
            throw ValidationError("\(name) must be finite and at least 0, got \(v)")
        }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--learning-rate must be finite and positive") }
        guard output.hasSuffix(".safetensors") else { throw ValidationError("--output must end in .safetensors") }
        if let lossCurve, !lossCurve.lowercased().hasSuffix(".png") { throw ValidationError("--loss-curve must end in .png") }
    }

    func run() throws {
        try OutputPath.check(output, isNotInput: photos + styles)
        if let lossCurve { try OutputPath.check(lossCurve, isNotInput: photos + styles) }
        let net = try EfficientNet.load(model ?? ImageAssets.efficientNetLite0)
        let contentImages = try loadTrainingPhotos(photos, side: side).filter { $0.shape[1] >= patch && $0.shape[2] >= patch }
        let styleImages = try loadTrainingPhotos(styles, side: styleSide).filter { $0.shape[1] >= patch && $0.shape[2] >= patch }
        guard !contentImages.isEmpty else { throw AttendError("no photo is at least \(patch) x \(patch) pixels after shrinking to --side \(side)") }
        guard !styleImages.isEmpty else { throw AttendError("no style image is at least \(patch) x \(patch) pixels after shrinking to --style-side \(styleSide)") }
        var measure = NeuralStyle(network: net)
        measure.contentWeight = contentWeight
        measure.styleWeight = styleWeight
        let decoder = StyleDecoder(seed: seed)
        try StyleDecoderConfig().validate(against: net.config, source: model ?? ImageAssets.efficientNetLite0)
        decoder.train()
        var fast = FastNeuralStyle(measure: measure, decoder: decoder)
        fast.identityWeight = identityWeight
        var generator = RandomGenerator(seed: seed &+ 1)
        let optimizer = Adam(parameters: decoder.namedParameters(), learningRate: learningRate)
        let schedule = WarmupCosineSchedule(peak: learningRate, minimum: learningRate / 10, warmupSteps: min(100, steps / 10), totalSteps: steps)
        let bar = ProgressBar(total: steps, label: "train", unit: "step")
        var curve: [(step: Int, content: Float, style: Float)] = []
        var recent: [(Float, Float)] = []
        for step in 1...steps {
            let content = LearnedImageCodec.patches(from: contentImages, count: batchSize, size: patch, generator: &generator)
            let style = LearnedImageCodec.patches(from: styleImages, count: batchSize, size: patch, generator: &generator)
            let (loss, c, s) = fast.trainingLoss(content: content, style: style)
            decoder.zeroGrad()
            loss.backward()
            optimizer.learningRate = schedule(step)
            optimizer.update()
            recent.append((c, s))
            if recent.count == 20 || step == steps {
                let n = Float(recent.count)
                curve.append((step, recent.map(\.0).reduce(0, +) / n, recent.map(\.1).reduce(0, +) / n))
                recent.removeAll()
            }
            if let last = curve.last { bar.advance(status: String(format: "content %.2f  style %.2f", last.content, last.style)) } else { bar.advance() }
            if step % 500 == 0 || step == steps { try decoder.save(output) }
        }
        bar.finish()
        if let lossCurve {
            try LineChart(series: [.init(points: curve.map { (Double($0.step), Double($0.content)) }, color: (31, 119, 180)),
                                   .init(points: curve.map { (Double($0.step), Double($0.style)) }, color: (214, 39, 40))]).render().writePNG(to: lossCurve)
        }
        print(String(format: "content loss (AdaIN's) %.2f, style loss %.2f on training patches (last 20 steps); wrote %@", curve.last!.content, curve.last!.style, output))
    }
}
