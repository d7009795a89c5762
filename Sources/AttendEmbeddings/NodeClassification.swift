// Node classification, the standard test of graph embeddings (DeepWalk's protocol): one-vs-rest logistic
// regression on the node vectors, trained on a random fraction of labelled nodes and scored on the rest by
// Micro-F1 and Macro-F1. For multi-label nodes each test node gets as many labels as it truly has.

import AttendNN
import AttendTensor
import Foundation

public struct NodeLabels {
    /// Labels of each node, by node name.
    public let labels: [String: [String]]
    public let classes: [String]

    public init(labels: [String: [String]]) {
        self.labels = labels
        classes = Array(Set(labels.values.flatMap { $0 })).sorted()
    }

    /// Reads "node label [label ...]" lines (a node may also repeat over several lines); '#' comments.
    public static func load(_ path: String) throws -> NodeLabels {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw AttendError(FileManager.default.fileExists(atPath: path) ? "\(path): not UTF-8 text" : "\(path): no such file")
        }
        var labels: [String: [String]] = [:]
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            guard fields.count >= 2 else { throw AttendError("\(path):\(n + 1): expected 'node label [label ...]'") }
            labels[String(fields[0]), default: []].append(contentsOf: fields.dropFirst().map(String.init))
        }
        guard !labels.isEmpty else { throw AttendError("\(path): no labels") }
        return NodeLabels(labels: labels)
    }
}

public struct NodeClassificationResult: Codable {
    public var trainingRatio: Double
    public var microF1: Double
    public var macroF1: Double
    public var testNodes: Int
}

/// DeepWalk's test of node vectors: one-vs-rest logistic regression on part of the labelled nodes, Micro- and
/// Macro-F1 on the rest.
///
/// ```swift
/// let labels = try NodeLabels.load("karate.labels")
/// for r in try NodeClassification.evaluate(vectors: vectors, labels: labels, trainingRatios: [0.1, 0.5]) {
///     print(r.trainingRatio, r.microF1, r.macroF1)
/// }
/// ```
public enum NodeClassification {
    /// Scores `vectors` on `labels` at each training ratio, averaging `repeats` random splits.
    public static func evaluate(vectors: WordVectors, labels: NodeLabels, trainingRatios: [Double] = [0.1, 0.5, 0.9],
                                repeats: Int = 5, seed: UInt64 = 1) throws -> [NodeClassificationResult] {
        let nodes = labels.labels.keys.sorted().compactMap { name in vectors.index(of: name).map { (name, $0) } }
        guard nodes.count >= 2 else { throw AttendError("node classification: fewer than 2 labelled nodes have vectors") }
        let classIndex = Dictionary(uniqueKeysWithValues: labels.classes.enumerated().map { ($1, $0) })
        let d = vectors.dimension
        let features = Tensor(shape: [nodes.count, d])
        for (row, (_, i)) in nodes.enumerated() {
            (features.pointer + row * d).update(from: vectors.unitVectors.pointer + i * d, count: d)
        }
        let truth = nodes.map { Set(labels.labels[$0.0]!.map { classIndex[$0]! }) }
        var g = RandomGenerator(seed: seed)
        return trainingRatios.map { ratio in
            var micro = 0.0, macro = 0.0, testCount = 0
            for _ in 0..<repeats {
                var order = Array(0..<nodes.count)
                order.shuffle(using: &g)
                let cut = min(max(1, Int(Double(nodes.count) * ratio)), nodes.count - 1)
                let (train, test) = (Array(order[..<cut]), Array(order[cut...]))
                let scores = oneVsRest(features: features, truth: truth, classes: labels.classes.count, train: train, test: test)
                let predicted = test.enumerated().map { (k, node) -> Set<Int> in
                    let row = scores[k]
                    let top = row.indices.sorted { row[$0] > row[$1] }
                    return Set(top.prefix(max(1, truth[node].count)))
                }
                let (mi, ma) = f1(truth: test.map { truth[$0] }, predicted: predicted, classes: labels.classes.count)
                micro += mi
                macro += ma
                testCount = test.count
            }
            return NodeClassificationResult(trainingRatio: ratio, microF1: micro / Double(repeats), macroF1: macro / Double(repeats), testNodes: testCount)
        }
    }

    /// Independent logistic regressions, one per class (multi-label binary cross-entropy), full-batch Adam
    /// with L2 regularization. Returns class scores for the test rows.
    static func oneVsRest(features: Tensor, truth: [Set<Int>], classes: Int, train: [Int], test: [Int]) -> [[Float]] {
        let d = features.shape[1]
        let x = withNoGrad { features.indexSelect(IntTensor(train.map { Int32($0) }, shape: [train.count])) }
        let y = Tensor(shape: [train.count, classes])
        for (r, node) in train.enumerated() { for c in truth[node] { y.pointer[r * classes + c] = 1 } }
        let w = Tensor.zeros([d, classes], requiresGrad: true), b = Tensor.zeros([classes], requiresGrad: true)
        let optimizer = Adam(parameters: [("w", w), ("b", b)], learningRate: 0.05)
        for _ in 0..<300 {
            w.zeroGrad(); b.zeroGrad()
            let loss = Loss.binaryCrossEntropy(logits: x.matmul(w) + b, targets: y) * Float(classes) + (w * w).sum() * (1e-3 / Float(train.count))
            loss.backward()
            optimizer.update()
        }
        let xt = withNoGrad { features.indexSelect(IntTensor(test.map { Int32($0) }, shape: [test.count])) }
        let s = withNoGrad { xt.matmul(w) + b }.toArray()
        return (0..<test.count).map { Array(s[($0 * classes)..<(($0 + 1) * classes)]) }
    }

    /// Micro-F1 (pooled over all decisions) and Macro-F1 (mean over classes that occur or are predicted).
    public static func f1(truth: [Set<Int>], predicted: [Set<Int>], classes: Int) -> (micro: Double, macro: Double) {
        var tp = [Int](repeating: 0, count: classes), fp = tp, fn = tp
        for (t, p) in zip(truth, predicted) {
            for c in p { if t.contains(c) { tp[c] += 1 } else { fp[c] += 1 } }
            for c in t where !p.contains(c) { fn[c] += 1 }
        }
        func score(_ tp: Int, _ fp: Int, _ fn: Int) -> Double { tp == 0 ? 0 : 2 * Double(tp) / Double(2 * tp + fp + fn) }
        let present = (0..<classes).filter { tp[$0] + fp[$0] + fn[$0] > 0 }
        let micro = score(tp.reduce(0, +), fp.reduce(0, +), fn.reduce(0, +))
        let macro = present.isEmpty ? 0 : present.map { score(tp[$0], fp[$0], fn[$0]) }.reduce(0, +) / Double(present.count)
        return (micro, macro)
    }
}
