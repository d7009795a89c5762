@testable import AttendEmbeddings
import AttendTensor
import Foundation
import XCTest

final class GraphTests: XCTestCase {
    func testEdgeListParsingAndErrors() throws {
        let g = try Graph.load(edgeList: tempFile("g.edges", "# comment\na b\nb c 2.5\n\na b\n"))
        XCTAssertEqual(g.nodeCount, 3)
        XCTAssertEqual(g.edgeCount, 2, "duplicate edges merge")
        XCTAssertTrue(g.isWeighted)
        XCTAssertTrue(g.isNeighbor(1, 0) && g.isNeighbor(0, 1) && !g.isNeighbor(0, 2))
        XCTAssertEqual(try Graph.load(edgeList: tempFile("d.edges", "a b\n"), directed: true).degree(1), 0)
        func message(_ text: String) -> String {
            do { _ = try Graph.load(edgeList: tempFile("bad.edges", text)); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message("a b\nc\n").contains("bad.edges:2: expected 'source target [weight]'"), message("a b\nc\n"))
        XCTAssertTrue(message("a b -1\n").contains("weight '-1' is not a positive number"))
        XCTAssertTrue(message("# nothing\n").contains("no edges"))
        XCTAssertThrowsError(try Graph.load(edgeList: "/nonexistent.edges")) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    func walks(_ g: Graph, _ config: WalkConfig) -> [[Int32]] {
        var out: [[Int32]] = []
        RandomWalks(graph: g, config: config, nodeToWord: (0..<g.nodeCount).map { Int32($0) })
            .forEachSentence(part: 0, of: 1, epoch: 0) { out.append(Array($0)) }
        return out
    }

    func testWalksFollowEdgesAndCoverEveryNode() throws {
        let g = try Graph.load(edgeList: fixturePath("karate.edges"))
        var config = WalkConfig()
        config.walksPerNode = 3
        config.walkLength = 10
        let all = walks(g, config)
        XCTAssertEqual(all.count, 3 * g.nodeCount)
        XCTAssertEqual(Set(all.map { $0[0] }).count, g.nodeCount)
        for w in all {
            XCTAssertEqual(w.count, 10)
            for (a, b) in zip(w, w.dropFirst()) { XCTAssertTrue(g.isNeighbor(Int(a), b)) }
        }
    }

    func testWeightedStepsAndNode2VecReturnBias() throws {
        let star = Graph(edges: [("hub", "heavy", 9), ("hub", "light", 1)])
        var config = WalkConfig()
        config.walksPerNode = 4000
        config.walkLength = 2
        let fromHub = walks(star, config).filter { star.names[Int($0[0])] == "hub" }
        let heavy = Double(fromHub.filter { star.names[Int($0[1])] == "heavy" }.count) / Double(fromHub.count)
        XCTAssertEqual(heavy, 0.9, accuracy: 0.03)

        // On a ring, a low p makes walks step back to where they came from; a high p avoids it.
        let ring = Graph(edges: (0..<20).map { ("\($0)", "\(($0 + 1) % 20)", 1) })
        func returnRate(p: Double) -> Double {
            var c = WalkConfig()
            c.walksPerNode = 50
            c.walkLength = 20
            c.p = p
            var returns = 0, steps = 0
            for w in walks(ring, c) { for i in 2..<w.count { steps += 1; if w[i] == w[i - 2] { returns += 1 } } }
            return Double(returns) / Double(steps)
        }
        // Uniform: 1/2. Accept-probabilities give 1/p : 1/q = 4 : 1 -> 0.8, and 0.25 : 1 -> 0.2.
        XCTAssertEqual(returnRate(p: 1), 0.5, accuracy: 0.03)
        XCTAssertEqual(returnRate(p: 0.25), 0.8, accuracy: 0.03)
        XCTAssertEqual(returnRate(p: 4), 0.2, accuracy: 0.03)
    }

    func testF1MatchesHandComputedSklearnValues() {
        // sklearn: f1_score([0,1,0], [0,0,0], average='micro') = 0.6667, average='macro' = 0.4
        let (micro, macro) = NodeClassification.f1(truth: [[0], [1], [0]], predicted: [[0], [0], [0]], classes: 2)
        XCTAssertEqual(micro, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(macro, 0.4, accuracy: 1e-12)
    }

    func testDeepWalkSeparatesTheKarateClubs() throws {
        let g = try Graph.load(edgeList: fixturePath("karate.edges"))
        var config = Word2VecConfig()
        config.dimension = 16
        config.threads = 1
        config.epochs = 5
        config.sample = 0
        let (vectors, _) = GraphEmbedding.train(graph: g, walks: WalkConfig(), word2vec: config, progress: false)
        XCTAssertEqual(vectors.count, 34)
        let results = try NodeClassification.evaluate(vectors: vectors, labels: NodeLabels.load(fixturePath("karate.labels")),
                                                      trainingRatios: [0.5], repeats: 10)
        XCTAssertGreaterThan(results[0].microF1, 0.8, "the two clubs are recoverable from the structure")
        XCTAssertThrowsError(try NodeLabels.load(tempFile("bad.labels", "node\n"))) { XCTAssertTrue("\($0)".contains("bad.labels:1")) }
    }
}
