// Mini-batch training of an image classifier with Adam, evaluated on a held-out set after each epoch.

import AttendDatasets
import AttendNN
import AttendTensor
import Foundation

/// How an image classifier is trained: epochs, batch, AdamW with cosine decay to zero, and the shuffling seed.
///
/// ```swift
/// var config = ClassifierTrainingConfig(epochs: 10, batchSize: 128, learningRate: 1e-3)
/// config.showProgress = false
/// ```
public struct ClassifierTrainingConfig: Codable {
    public var epochs = 5
    public var batchSize = 128
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0
    public var seed: UInt64 = 0
    public var showProgress = true

    public init(epochs: Int = 5, batchSize: Int = 128, learningRate: Float = 1e-3, weightDecay: Float = 0, seed: UInt64 = 0) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.seed = seed
    }
}

public struct EpochReport: Codable {
    public var epoch: Int
    public var trainLoss: Float
    public var testAccuracy: Float
    public var seconds: Double
}

/// Mini-batch training of an image classifier, with test accuracy after each epoch.
///
/// ```swift
/// let train = try ImageDataset.fashionMNIST(train: true), test = try ImageDataset.fashionMNIST(train: false)
/// var g = RandomGenerator(seed: 0)
/// let model = CNNClassifier(classCount: 10, generator: &g)
/// let reports = try ClassifierTraining.run(model: model, train: train, test: test, config: ClassifierTrainingConfig(epochs: 5))
/// print(reports.last!.testAccuracy, ClassifierTraining.accuracy(model: model, dataset: test))
/// ```
public enum ClassifierTraining {
    /// Trains `model` on `train`, reporting test accuracy after each epoch through `onEpoch`. With a `share` of
    /// data-parallel training, every process draws the same shuffled batches and trains on its rows of each; the
    /// gradients and the loss are averaged weighted by rows (the last batch of an epoch may not split evenly), so the
    /// run follows the single process's. `onStep` gets each step's loss (over every process's rows).
    public static func run(model: Module & UnaryLayer, train: ImageDataset, test: ImageDataset,
                           config: ClassifierTrainingConfig, share: DataParallelShare = .single, onStep: @escaping (Float) -> Void = { _ in },
                           onEpoch: (EpochReport) -> Void = { _ in }) throws -> [EpochReport] {
        let optimizer = AdamW(parameters: model.namedParameters(), learningRate: config.learningRate, weightDecay: config.weightDecay)
        var reports: [EpochReport] = []
        // Cosine decay to zero over the whole run: the last epochs average out minibatch noise.
        let stepsPerEpoch = (train.count + config.batchSize - 1) / config.batchSize
        let total = config.epochs * stepsPerEpoch
        let schedule = WarmupCosineSchedule(peak: config.learningRate, minimum: 0, warmupSteps: 0, totalSteps: total)
        let trainer = Trainer(model: model, optimizer: optimizer, config: TrainerConfig(steps: total, evaluationInterval: stepsPerEpoch),
                              schedule: schedule.callAsFunction)
        let bar = config.showProgress ? ProgressBar(total: total, label: "train \(config.epochs) epochs", unit: "step") : nil
        var batches: [[Int]] = []
        var lossSum: Double = 0, seen = 0
        var started = Date()
        guard config.epochs >= 1, config.batchSize >= 1, train.count > 0 else {
            throw AttendError("classifier training needs at least one epoch, a batch size of at least 1 and some training images")
        }
        // Rows of this process in the current step (0 when a short last batch has fewer rows than processes: it then
        // computes a loss on one row and weighs it 0), and rows of the whole step.
        var localRows = 0, stepRows = 0
        if share.count > 1 {
            trainer.gradientHook = { try share.averageGradients($0, weight: Double(localRows)) }
        }
        trainer.lossHook = { loss in
            let mean = try share.averageLoss(loss, weight: Double(localRows))
            lossSum += Double(mean) * Double(stepRows)
            seen += stepRows
            onStep(mean)
            return mean
        }
        try trainer.run(progress: bar, rateUnit: "img", loss: { step, _ in
            if step % stepsPerEpoch == 0 {  // a new epoch: a new shuffle
                batches = Array(ShuffledBatches(count: train.count, batchSize: config.batchSize, seed: config.seed, epoch: step / stepsPerEpoch + 1))
                (lossSum, seen, started) = (0, 0, Date())
            }
            let batch = batches[step % stepsPerEpoch]
            let mine = share.rows(of: batch.count)
            (localRows, stepRows) = (mine.count, batch.count)
            let indices = mine.isEmpty ? [batch[0]] : Array(batch[mine])
            let (x, y) = train.batch(indices)
            let loss = Loss.crossEntropy(logits: model(x), targets: y)
            return TrainingLoss(loss, items: batch.count)
        }, evaluate: { step in
            let seconds = Date().timeIntervalSince(started)  // training time of the epoch, before the test pass
            let report = EpochReport(epoch: step / stepsPerEpoch, trainLoss: Float(lossSum / Double(seen)),
                                     testAccuracy: accuracy(model: model, dataset: test), seconds: seconds)
            reports.append(report)
            onEpoch(report)
        })
        return reports
    }

    /// Fraction of `dataset` that `model` classifies correctly (evaluation mode, no gradients).
    public static func accuracy(model: Module & UnaryLayer, dataset: ImageDataset, batchSize: Int = 1000) -> Float {
        model.eval()
        defer { model.train() }
        var correct = 0
        withNoGrad {
            for indices in sequentialBatches(count: dataset.count, batchSize: batchSize) {
                let (x, y) = dataset.batch(indices)
                let predicted = model(x).argmax(axis: -1)
                correct += zip(predicted.data, y.data).filter { $0 == $1 }.count
            }
        }
        return Float(correct) / Float(dataset.count)
    }
}
