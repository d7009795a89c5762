import ArgumentParser
import AttendDatasets
import AttendModels
import AttendNN
import AttendTensor
import Foundation

struct MNISTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "Train an image classifier on Fashion-MNIST (IDX files) and report test accuracy.")

    enum Architecture: String, ExpressibleByArgument { case mlp, cnn }

    @Option(help: "Network: mlp or cnn.") var model: Architecture = .mlp
    @Option(help: "Folder with the IDX files (train-images-idx3-ubyte.gz, ...).") var data = FashionMNIST.defaultDirectory
    @Option(help: "Passes over the training set (default: 10 for mlp, 5 for cnn).") var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Examples per update.") var batchSize = 128
    @Option(name: .customLong("lr"), help: "AdamW learning rate.") var learningRate: Float = 1e-3
    @Option(help: "Random seed for initialization and shuffling.") var seed: UInt64 = 0
    @Option(name: .customLong("train-limit"), help: "Use only the first N training images (quick runs).") var trainLimit: Int?
    @Option(help: "Write the trained weights to this safetensors file.") var save: String?
    @Option(name: .customLong("loss-log"), help: "Write each step's training loss, one per line.") var lossLog: String?
    @Flag(help: "Join an MPI job started without a launcher's environment (mpirun and srun are detected without this).") var distributed = false

    func validate() throws {
        try Require.count(epochs, "--epochs", 1...10_000)
        try Require.count(batchSize, "--batch-size", 1...60_000)
        try Require.learningRate(learningRate, "--lr")
        try Require.count(trainLimit, "--train-limit", 1...Int.max)
        if let save { try OutputPath.check(save, isNotInput: [data]) }
        if let lossLog { try OutputPath.check(lossLog, isNotInput: [data] + (save.map { [$0] } ?? [])) }
    }

    func run() throws {
        var train = try ImageDataset.fashionMNIST(directory: data, train: true)
        let test = try ImageDataset.fashionMNIST(directory: data, train: false)
        if let limit = trainLimit, limit < train.count { train = train.subset(0..<limit) }
        var generator = RandomGenerator(seed: seed)
        let (h, w) = (train.images.shape[2], train.images.shape[3])
        let network: Module & UnaryLayer = model == .mlp
            ? MLPClassifier(inputSize: h * w, classCount: 10, generator: &generator)
            : CNNClassifier(height: h, width: w, classCount: 10, generator: &generator)
        let parallel = try DataParallelRun.start(distributed: distributed)
        func say(_ line: String) { if parallel.isRoot { print(line) } }
        say("model: \(model.rawValue), \(network.parameterCount) parameters; train \(train.count), test \(test.count); threads \(Parallel.threads); BLAS \(BLAS.loadedPath ?? "none")"
            + (parallel.size > 1 ? "; \(parallel.size) processes (MPI), each on its share of every batch" : ""))
        var config = ClassifierTrainingConfig(epochs: epochs ?? (model == .mlp ? 10 : 5), batchSize: batchSize, learningRate: learningRate, seed: seed)
        try parallel.requireSameStart(settings: "\(model) \(config)", dataBytes: train.count * train.images.shape.dropFirst().reduce(1, *))
        config.showProgress = parallel.isRoot
        try parallel.synchronize(network, step: 0)
        let started = Date()
        var losses: [Float] = []
        let reports = try ClassifierTraining.run(model: network, train: train, test: test, config: config, share: parallel.share,
                                                 onStep: { losses.append($0) }) { r in
            say(String(format: "epoch %d: train loss %.4f, test accuracy %.2f%%, %.2f s", r.epoch, r.trainLoss, 100 * r.testAccuracy, r.seconds))
        }
        try parallel.finish(network, trainingSeconds: Date().timeIntervalSince(started))
        guard parallel.isRoot else { return }
        if let lossLog { try AtomicFile.write(Data(losses.map { "\($0)\n" }.joined().utf8), to: lossLog) }
        if let save {
            try network.save(to: save, metadata: ["model": model.rawValue, "dataset": "fashion-mnist"])
            print("saved \(save)")
        }
        let times = reports.map(\.seconds).sorted()
        print(String(format: "final test accuracy: %.2f%% (median epoch time %.2f s)", 100 * reports.last!.testAccuracy, times[times.count / 2]))
    }
}
