import ArgumentParser
import AttendDatasets
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import AttendVision
import Foundation

struct CompressionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ae",
        abstract: "Learned image compression: train a codec, encode and decode files, compare with JPEG.",
        subcommands: [CompressionTrain.self, CompressionEncode.self, CompressionDecode.self, CompressionEvaluate.self, AutoencoderMNIST.self])
}

/// Photos loaded for training: each shrunk so its shorter side is `side` (shrinking averages away sensor noise and
/// JPEG blocks, and brings the scale near the test photos').
func loadTrainingPhotos(_ paths: [String], side: Int) throws -> [Tensor] {
    var files: [String] = []
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw AttendError("\(path): no such file or folder") }
        if isDirectory.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            files += names.filter { ImageFolder.extensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .map { (path as NSString).appendingPathComponent($0) }
        } else {
            files.append(path)
        }
    }
    guard !files.isEmpty else { throw AttendError("no .png, .jpg or .jpeg photos in \(paths.joined(separator: ", "))") }
    return try files.map { file in
        let image = try Image.read(file).rgb()
        return (min(image.width, image.height) > side ? image.resized(shorterSide: side) : image).tensor()
    }
}

struct CompressionTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a codec on random patches of photos: loss = bits per pixel + lambda * 255^2 * MSE.")
    @Argument(help: "Photos or folders of photos (PNG or JPEG) to cut training patches from.") var photos: [String]
    @Option(name: .shortAndLong, help: "The model file to write (.safetensors).") var output: String
    @Option(help: "Rate-distortion trade-off (larger: more bits, less distortion; finite, > 0).") var lambda: Float = 0.01
    @Option(help: "Training steps (1-1000000).") var steps = 2000
    @Option(name: .customLong("batch-size"), help: "Patches per step (1-256).") var batchSize = 8
    @Option(help: "Patch side in pixels (a multiple of 16, 16-512).") var patch = 64
    @Option(help: "Photos are shrunk to this shorter side first (64-8192).") var side = 512
    @Option(help: "Channels inside the transforms (4-512).") var channels = 64
    @Option(name: .customLong("latent-channels"), help: "Channels of the latent grid (4-512).") var latentChannels = 96
    @Option(name: .customLong("learning-rate"), help: "Adam's learning rate (finite, > 0).") var learningRate: Float = 3e-4
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("loss-curve"), help: "Write the loss, rate and distortion curves as a PNG.") var lossCurve: String?
    @Option(help: "Start from this codec's weights (its channels replace --channels and --latent-channels) and train it for --lambda.")
    var from: String?

    func validate() throws {
        guard lambda.isFinite && lambda > 0 else { throw ValidationError("--lambda must be finite and positive, got \(lambda)") }
        guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1...1000000") }
        guard (1...256).contains(batchSize) else { throw ValidationError("--batch-size must be 1...256") }
        guard (16...512).contains(patch) && patch % 16 == 0 else { throw ValidationError("--patch must be a multiple of 16 in 16...512") }
        guard (64...8192).contains(side) else { throw ValidationError("--side must be 64...8192") }
        guard (4...512).contains(channels) && (4...512).contains(latentChannels) else { throw ValidationError("--channels and --latent-channels must be 4...512") }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--learning-rate must be finite and positive") }
        guard output.hasSuffix(".safetensors") else { throw ValidationError("--output must end in .safetensors") }
    }

    func run() throws {
        try OutputPath.check(output, isNotInput: photos + (from.map { [$0] } ?? []))
        let images = try loadTrainingPhotos(photos, side: side).filter { $0.shape[1] >= patch && $0.shape[2] >= patch }
        guard !images.isEmpty else { throw AttendError("no photo is at least \(patch) x \(patch) pixels after shrinking") }
        let codec = try from.map { try LearnedImageCodec.load($0, lambda: lambda) }
            ?? LearnedImageCodec(config: CompressionConfig(channels: channels, latentChannels: latentChannels, lambda: lambda), seed: seed)
        codec.train()
        var generator = RandomGenerator(seed: seed &+ 1)
        let optimizer = Adam(parameters: codec.namedParameters(), learningRate: learningRate)
        let schedule = WarmupCosineSchedule(peak: learningRate, minimum: learningRate / 10, warmupSteps: min(100, steps / 10), totalSteps: steps)
        let bar = ProgressBar(total: steps, label: "train", unit: "step")
        var curve: [(step: Int, loss: Float, bpp: Float, psnr: Float)] = []
        var recent: [(Float, Float, Float)] = []
        for step in 1...steps {
            let batch = LearnedImageCodec.patches(from: images, count: batchSize, size: patch, generator: &generator)
            let (loss, bpp, mse) = codec.trainingLoss(batch, generator: &generator)
            codec.zeroGrad()
            loss.backward()
            optimizer.learningRate = schedule(step)
            optimizer.update()
            recent.append((loss.item, bpp, 10 * log10(1 / max(mse, 1e-10))))
            if recent.count == 20 || step == steps {
                let n = Float(recent.count)
                curve.append((step, recent.map(\.0).reduce(0, +) / n, recent.map(\.1).reduce(0, +) / n, recent.map(\.2).reduce(0, +) / n))
                recent.removeAll()
            }
            if let last = curve.last { bar.advance(status: String(format: "loss %.3f  %.3f bpp  %.2f dB", last.loss, last.bpp, last.psnr)) } else { bar.advance() }
            if step % 500 == 0 || step == steps { try codec.save(output) }
        }
        if let lossCurve {
            try LineChart(series: [.init(points: curve.map { (Double($0.step), Double($0.loss)) }, color: (31, 119, 180))]).render().writePNG(to: lossCurve)
        }
        print(String(format: "lambda %g: %.3f bpp, %.2f dB PSNR on training patches (last 20 steps, noisy latent); wrote %@", lambda,
                     curve.last!.bpp, curve.last!.psnr, output))
    }
}

struct CompressionEncode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "encode", abstract: "Compress an image to an .atic file.")
    @Argument(help: "The codec (.safetensors from attend ae train).") var model: String
    @Argument(help: "The image (PNG or JPEG).") var image: String
    @Option(name: .shortAndLong, help: "The compressed file to write.") var output: String

    func run() throws {
        try OutputPath.check(output, isNotInput: [model, image])
        let codec = try LearnedImageCodec.load(model)
        let picture = try Image.read(image).rgb()
        let started = Date()
        let bytes = try codec.compress(picture.tensor())
        let seconds = Date().timeIntervalSince(started)
        try AtomicFile.write(bytes, to: output)
        print(String(format: "%d x %d -> %d bytes, %.3f bits per pixel, in %.2f s; wrote %@", picture.width, picture.height, bytes.count,
                     Double(bytes.count * 8) / Double(picture.width * picture.height), seconds, output))
    }
}

struct CompressionDecode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode", abstract: "Decode an .atic file to PNG or JPEG.")
    @Argument(help: "The codec that wrote the file.") var model: String
    @Argument(help: "The compressed file.") var input: String
    @Option(name: .shortAndLong, help: "The image to write (.png or .jpg).") var output: String

    func run() throws {
        try OutputPath.check(output, isNotInput: [model, input])
        let codec = try LearnedImageCodec.load(model)
        guard let data = FileManager.default.contents(atPath: input) else { throw AttendError("\(input): cannot read") }
        let started = Date()
        let x = try codec.decompress(data, source: input)
        let seconds = Date().timeIntervalSince(started)
        try Image(tensor: x).write(to: output)
        print(String(format: "%d x %d in %.2f s; wrote %@", x.shape[2], x.shape[1], seconds, output))
    }
}

/// Peak signal-to-noise ratio in dB of two [3, H, W] images in [0, 1], both as 8-bit images would be.
func psnr(_ a: [Float], _ b: [Float]) -> Double {
    var sum = 0.0
    for (x, y) in zip(a, b) {
        let d = Double((x * 255).rounded() - (y * 255).rounded())
        sum += d * d
    }
    let mse = sum / Double(a.count)
    return mse == 0 ? 100 : 10 * log10(255 * 255 / mse)
}

struct CompressionEvaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Bits per pixel (from the file size), PSNR and MS-SSIM of each codec on held-out photos, beside JPEG at the same rate.")
    @Argument(help: "Codecs (.safetensors), one rate each.") var models: [String]
    @Option(parsing: .upToNextOption, help: "Held-out photos (PNG or JPEG).") var images: [String]
    @Option(name: .customLong("curve"), help: "Write the rate-distortion curves (PSNR against bpp) as a PNG.") var curvePath: String?

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give one or more codecs") }
        guard !images.isEmpty else { throw ValidationError("give --images") }
    }

    func run() throws {
        let pictures = try images.map { path -> Image in
            let picture = try Image.read(path).rgb()
            // MS-SSIM's five scales of an 11-pixel window need sides over 160 pixels.
            guard min(picture.width, picture.height) > 160 else {
                throw AttendError("\(path): \(picture.width) x \(picture.height) pixels; evaluation needs both sides over 160 (MS-SSIM's five scales)")
            }
            return picture
        }
        // JPEG's curve: every quality, rate and distortion averaged over the photos.
        var jpegCurve: [(bpp: Double, psnr: Double, msssim: Double, encode: Double, decode: Double)] = []
        for quality in stride(from: 1, through: 95, by: 1) {
            var (bpp, p, ms, te, td) = (0.0, 0.0, 0.0, 0.0, 0.0)
            for picture in pictures {
                let t0 = Date()
                let data = try picture.jpegData(quality: quality)
                let t1 = Date()
                let back = try Image.decode(data, source: "jpeg")
                td += Date().timeIntervalSince(t1); te += t1.timeIntervalSince(t0)
                bpp += Double(data.count * 8) / Double(picture.width * picture.height)
                p += psnr(back.pixels, picture.pixels)
                ms += ImageQuality.msssim(back, picture)
            }
            let n = Double(pictures.count)
            jpegCurve.append((bpp / n, p / n, ms / n, te / n, td / n))
        }
        func jpegAt(_ bpp: Double) -> (psnr: Double, msssim: Double, encode: Double, decode: Double)? {
            guard let i = jpegCurve.indices.dropLast().first(where: { jpegCurve[$0].bpp <= bpp && jpegCurve[$0 + 1].bpp >= bpp }) else { return nil }
            let (a, b) = (jpegCurve[i], jpegCurve[i + 1])
            let t = (bpp - a.bpp) / max(b.bpp - a.bpp, 1e-12)
            return (a.psnr + t * (b.psnr - a.psnr), a.msssim + t * (b.msssim - a.msssim), a.encode, a.decode)
        }
        print("photos: \(images.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))")
        print("model                         bpp   PSNR dB  MS-SSIM | JPEG PSNR  MS-SSIM  | gain dB | encode ms  decode ms | JPEG enc/dec ms")
        var learned: [(Double, Double)] = []
        for path in models {
            let codec = try LearnedImageCodec.load(path)
            var (bpp, p, ms, te, td) = (0.0, 0.0, 0.0, 0.0, 0.0)
            for picture in pictures {
                let t0 = Date()
                let data = try codec.compress(picture.tensor())
                let t1 = Date()
                let back = try codec.decompress(data, source: path)
                td += Date().timeIntervalSince(t1); te += t1.timeIntervalSince(t0)
                bpp += Double(data.count * 8) / Double(picture.width * picture.height)
                let restored = Image(tensor: back)
                p += psnr(restored.pixels, picture.pixels)
                ms += ImageQuality.msssim(restored, picture)
            }
            let n = Double(pictures.count)
            (bpp, p, ms, te, td) = (bpp / n, p / n, ms / n, te / n, td / n)
            learned.append((bpp, p))
            // Padded here: Foundation on Linux ignores a width given to %@.
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            let name = stem.padding(toLength: max(26, stem.count), withPad: " ", startingAt: 0)
            if let j = jpegAt(bpp) {
                print(String(format: "%@ %6.3f %8.2f %8.4f | %9.2f %8.4f | %+7.2f | %9.0f %10.0f | %6.1f / %.1f", name as NSString, bpp, p, ms,
                             j.psnr, j.msssim, p - j.psnr, 1000 * te, 1000 * td, 1000 * j.encode, 1000 * j.decode))
            } else {
                // Below JPEG's lowest rate: compare with JPEG's cheapest file (quality 1), which spends more bits.
                let low = jpegCurve[0]
                print(String(format: "%@ %6.3f %8.2f %8.4f | below JPEG's lowest rate; JPEG quality 1: %.3f bpp, %.2f dB, MS-SSIM %.4f",
                             name as NSString, bpp, p, ms, low.bpp, low.psnr, low.msssim))
            }
        }
        if let curvePath {
            let chart = LineChart(series: [
                .init(points: jpegCurve.filter { $0.bpp <= 1.2 }.map { ($0.bpp, $0.psnr) }, color: (214, 39, 40)),
                .init(points: learned.sorted { $0.0 < $1.0 }, color: (31, 119, 180)),
            ])
            try chart.render().writePNG(to: curvePath)
            print("wrote \(curvePath) (blue: learned codec, red: JPEG; PSNR in dB against bits per pixel)")
        }
    }
}

struct AutoencoderMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "The plain autoencoder: Fashion-MNIST squeezed to a short code and rebuilt; a PNG of test images above their reconstructions.")
    @Option(help: "Folder with the IDX files.") var data = FashionMNIST.defaultDirectory
    @Option(name: .customLong("code-size"), help: "Length of the code (1-784).") var codeSize = 32
    @Option(help: "Passes over the training set (1-100).") var epochs = 3
    @Option(name: .customLong("batch-size"), help: "Images per step (1-4096).") var batchSize = 128
    @Option(name: .customLong("lr"), help: "Adam's learning rate (finite, > 0).") var learningRate: Float = 1e-3
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("train-limit"), help: "Use only the first N training images (1 or more).") var trainLimit: Int?
    @Option(name: .shortAndLong, help: "The PNG grid of originals (top rows) and reconstructions (bottom rows).") var output = "autoencoder.png"

    func validate() throws {
        guard (1...784).contains(codeSize) else { throw ValidationError("--code-size must be 1...784") }
        guard (1...100).contains(epochs) else { throw ValidationError("--epochs must be 1...100") }
        guard (1...4096).contains(batchSize) else { throw ValidationError("--batch-size must be 1...4096") }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--lr must be finite and positive") }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1") }
        guard output.lowercased().hasSuffix(".png") else { throw ValidationError("--output must end in .png") }
    }

    func run() throws {
        var train = try ImageDataset.fashionMNIST(directory: data, train: true)
        let test = try ImageDataset.fashionMNIST(directory: data, train: false)
        if let trainLimit, trainLimit < train.count { train = train.subset(0..<trainLimit) }
        var g = RandomGenerator(seed: seed)
        let ae = ImageAutoencoder(codeSize: codeSize, generator: &g)
        let steps = epochs * ((train.count + batchSize - 1) / batchSize)
        let bar = ProgressBar(total: steps, label: "autoencoder", unit: "step")
        let started = Date()
        let errors = ae.fit(train: train, test: test, epochs: epochs, batchSize: batchSize, learningRate: learningRate, seed: seed, progress: bar)
        bar.finish()
        for (epoch, e) in errors.enumerated() { print(String(format: "epoch %d: test MSE %.5f (PSNR %.2f dB)", epoch + 1, e, 10 * log10(1 / e))) }
        // 2 rows of originals over 2 rows of reconstructions, 16 test images per row, each pixel drawn 2 x 2.
        let count = 32, columns = 16, scale = 2
        let x = test.images.slice(axis: 0, start: 0, length: count)
        let rebuilt = withNoGrad { ae(x) }
        let (a, b) = (x.toArray(), rebuilt.toArray())
        let cell = 28 * scale + 2
        var grid = Image(width: columns * cell, height: 4 * cell, channels: 1, pixels: [Float](repeating: 1, count: columns * cell * 4 * cell))
        for i in 0..<count {
            for (source, band) in [(a, 0), (b, 2)] {
                let (row, col) = (band + i / columns, i % columns)
                for y in 0..<(28 * scale) {
                    for xx in 0..<(28 * scale) {
                        grid.pixels[(row * cell + 1 + y) * grid.width + col * cell + 1 + xx] = source[i * 784 + (y / scale) * 28 + xx / scale]
                    }
                }
            }
        }
        try grid.write(to: output)
        print(String(format: "%d-number code per 784-pixel image; %.1f s; wrote %@ (top: test images, bottom: rebuilt from their codes)",
                     codeSize, Date().timeIntervalSince(started), output))
    }
}
