import AttendModels
import AttendNN
import AttendTensor
import Foundation
import XCTest

/// The one training loop: the same steps as writing the loop by hand, gradient accumulation equal to one large
/// batch, a gradient hook that really decides what the optimizer applies, and the evaluation / checkpoint cadence.
final class TrainerTests: XCTestCase {
    let x = Tensor.randn([8, 4], seed: 1)
    let y = IntTensor([0, 1, 2, 0, 1, 2, 0, 1], shape: [8])

    func model(seed: UInt64 = 3) -> MLPClassifier {
        var g = RandomGenerator(seed: seed)
        return MLPClassifier(inputSize: 4, hiddenSizes: [5], classCount: 3, generator: &g)
    }

    func rows(_ range: Range<Int>) -> (Tensor, IntTensor) {
        (x.slice(axis: 0, start: range.lowerBound, length: range.count).contiguous(), IntTensor(Array(y.data[range]), shape: [range.count]))
    }

    func testTrainerTakesTheStepsOfAHandWrittenLoop() throws {
        let schedule = WarmupCosineSchedule(peak: 0.5, warmupSteps: 2, totalSteps: 6)
        // SGD without clipping sees the gradient's scale (so a wrong accumulation scale shows); AdamW with clipping
        // checks the clipping path.
        let optimizers: [(String, ([(name: String, tensor: Tensor)]) -> Optimizer, Float)] = [
            ("SGD", { SGD(parameters: $0, learningRate: 0.5) }, 0), ("AdamW", { AdamW(parameters: $0, learningRate: 1e-2) }, 0.5),
        ]
        for (name, make, clip) in optimizers {
            // By hand.
            let a = model()
            let optA = make(a.namedParameters())
            for step in 0..<6 {
                a.zeroGrad()
                Loss.crossEntropy(logits: a(x), targets: y).backward()
                if clip > 0 { clipGradientNorm(a.parameters(), maxNorm: clip) }
                optA.learningRate = schedule(step)
                optA.update()
            }
            // Through the trainer, with the whole batch in two micro-batches of four (the same mean loss).
            let b = model()
            let trainer = Trainer(model: b, optimizer: make(b.namedParameters()),
                                  config: TrainerConfig(steps: 6, gradientAccumulation: 2, gradientClip: clip), schedule: schedule.callAsFunction)
            try trainer.run { _, micro in
                let (xs, ys) = self.rows((micro * 4)..<(micro * 4 + 4))
                return TrainingLoss(Loss.crossEntropy(logits: b(xs), targets: ys), items: 4)
            }
            XCTAssertNotEqual(a.parameters()[0].toArray(), model().parameters()[0].toArray(), "\(name): training moved the weights")
            XCTAssertEqual(a.parameters().count, b.parameters().count, name)
            for (p, q) in zip(a.parameters(), b.parameters()) {
                XCTAssertEqual(p.shape, q.shape, name)
                for (u, v) in zip(p.toArray(), q.toArray()) { XCTAssertEqual(u, v, accuracy: 1e-6, name) }
            }
            XCTAssertEqual(trainer.lossHistory.map(\.step), Array(1...6))
            XCTAssertEqual(trainer.step, 6)
        }
    }

    func testGradientHookDecidesWhatTheOptimizerApplies() throws {
        let m = model()
        let before = m.parameters().flatMap { $0.toArray() }
        var calls = 0
        let trainer = Trainer(model: m, optimizer: SGD(parameters: m.namedParameters(), learningRate: 0.1),
                              config: TrainerConfig(steps: 3), schedule: { _ in 0.1 })
        trainer.gradientHook = { parameters in
            calls += 1
            XCTAssertEqual(parameters.count, m.namedParameters().count)
            // Every gradient is complete here; zeroing it means no update at all.
            for (_, t) in parameters { t.grad = Tensor.zeros(t.shape) }
        }
        try trainer.run { _, _ in TrainingLoss(Loss.crossEntropy(logits: m(self.x), targets: self.y), items: 8) }
        XCTAssertEqual(calls, 3)
        XCTAssertEqual(m.parameters().flatMap { $0.toArray() }, before, "zeroed gradients leave the weights as they were")
    }

    func testEvaluationAndCheckpointCadenceAndResume() throws {
        let m = model()
        var evaluated: [Int] = [], saved: [Int] = []
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("attend-trainer-\(ProcessInfo.processInfo.processIdentifier).safetensors").path
        let trainer = Trainer(model: m, optimizer: AdamW(parameters: m.namedParameters(), learningRate: 1e-2),
                              config: TrainerConfig(steps: 7, evaluationInterval: 3, checkpointInterval: 2), schedule: { _ in 1e-2 })
        try trainer.run(loss: { _, _ in TrainingLoss(Loss.crossEntropy(logits: m(self.x), targets: self.y), items: 8) },
                        evaluate: { step in
                            evaluated.append(step)
                            XCTAssertFalse(GradMode.isEnabled, "evaluation records no gradients")
                            XCTAssertFalse(m.isTraining, "evaluation runs in evaluation mode")
                        },
                        checkpoint: { step in
                            saved.append(step)
                            if step == 4 { try trainer.save(to: path) }
                        })
        XCTAssertEqual(evaluated, [3, 6, 7])
        XCTAssertEqual(saved, [2, 4, 6, 7])
        // Resuming at step 4 and training to 7 gives the same weights as the uninterrupted run.
        let r = model(seed: 42)
        let resumed = Trainer(model: r, optimizer: AdamW(parameters: r.namedParameters(), learningRate: 1e-2),
                              config: TrainerConfig(steps: 7), schedule: { _ in 1e-2 })
        try resumed.resume(from: path)
        XCTAssertEqual(resumed.step, 4)
        try resumed.run { _, _ in TrainingLoss(Loss.crossEntropy(logits: r(self.x), targets: self.y), items: 8) }
        XCTAssertEqual(r.parameters().flatMap { $0.toArray() }, m.parameters().flatMap { $0.toArray() })
    }

    func testBadConfigsAreNamed() {
        let m = model()
        for (config, text) in [(TrainerConfig(steps: 1, gradientAccumulation: 0), "accumulation"),
                               (TrainerConfig(steps: 1, gradientClip: .nan), "clip"),
                               (TrainerConfig(steps: 1, evaluationInterval: 0), "evaluation interval")] {
            let t = Trainer(model: m, optimizer: SGD(parameters: m.namedParameters(), learningRate: 0.1), config: config, schedule: { _ in 0.1 })
            XCTAssertThrowsError(try t.run { _, _ in TrainingLoss(Loss.crossEntropy(logits: m(self.x), targets: self.y), items: 8) }) {
                XCTAssertTrue("\($0)".contains(text), "\($0)")
            }
        }
    }
}
