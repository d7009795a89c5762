import ArgumentParser
import AttendModels
import AttendNN
import AttendTensor
import AttendVision
import Foundation

struct StyleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "style",
        abstract: "Neural style transfer (Gatys): repaint CONTENT in the style of one or more STYLE images.",
        discussion: """
            The output's pixels are optimized so its EfficientNet-Lite0 features match the content image's and the Gram \
            matrices of its features match the style images' (mixed by --mix weights: the lecture's aH1 + bH2). Prints \
            the content and style losses of the content image, the style image and the result.
            """)
    @Argument(help: "The content image (PNG or JPEG).") var content: String
    @Argument(help: "One or more style images.") var styles: [String]
    @Option(name: .shortAndLong, help: "Output image (.png or .jpg).") var output: String
    @Option(parsing: .upToNextOption, help: "Mixing weights of the style images (positive; default equal).") var mix: [Float] = []
    @Option(help: "The shorter side of the output, in pixels (32-1024).") var size = 256
    @Option(help: "Optimization steps (1-10000).") var steps = 200
    @Option(name: .customLong("content-weight"), help: "Weight of the content loss (finite, >= 0).") var contentWeight: Float = 1
    @Option(name: .customLong("style-weight"), help: "Weight of the style loss (finite, >= 0).") var styleWeight: Float = 1000
    @Option(name: .customLong("learning-rate"), help: "Adam's step on the pixels (finite, > 0).") var learningRate: Float = 0.02
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint.") var model: String?

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
            let scale = max(Double(w) / Double(s.width), Double(h) / Double(s.height))
            let covered = s.resized(width: max(w, Int((Double(s.width) * scale).rounded(.up))), height: max(h, Int((Double(s.height) * scale).rounded(.up))))
            return covered.centerCropped(width: w, height: h).tensor()
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
        let started = Date()
        let bar = ProgressBar(total: steps, label: "style", unit: "step")
        let result = style.transfer(content: x, targets: targets, steps: steps) { _, losses in bar.advance(status: "\(losses)") }
        bar.finish()
        let seconds = Date().timeIntervalSince(started)
        try Image(tensor: result).write(to: output)
        let after = style.evaluate(result, targets)
        print("content image: \(before)")
        for (path, image) in zip(styles, styleImages) { print("style image \((path as NSString).lastPathComponent): \(style.evaluate(image, targets))") }
        print("result:        \(after)")
        print(String(format: "%d x %d, %d steps in %.1f s (%.2f s/step); wrote %@", w, h, steps, seconds, seconds / Double(steps), output))
    }
}
