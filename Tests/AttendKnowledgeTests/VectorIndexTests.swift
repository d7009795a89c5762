import AttendKnowledge
import AttendTensor
import CAttendKernels
import XCTest

/// Random vectors from a fixed seed (uniform in [-1, 1)), optionally normalized.
func randomVectors(_ n: Int, _ d: Int, seed: UInt64, unit: Bool = false) -> [[Float]] {
    var g = RandomGenerator(seed: seed)
    return (0..<n).map { _ in
        var v = (0..<d).map { _ in g.nextUniform() * 2 - 1 }
        if unit { let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot(); v = v.map { $0 / norm } }
        return v
    }
}

/// The k nearest labels by a double-precision brute force over all vectors: the independent ground truth.
func bruteForce(_ vectors: [[Float]], _ q: [Float], k: Int, metric: DistanceMetric, skip: Set<Int> = []) -> [Int] {
    let scored = vectors.enumerated().filter { !skip.contains($0.offset) }.map { (i, v) -> (Int, Double) in
        let d = metric == .euclidean ? zip(v, q).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
                                     : 1 - zip(v, q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        return (i, d)
    }
    return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(k).map(\.0)
}

final class VectorIndexTests: XCTestCase {
    override func tearDown() { attend_set_simd_limit(-1) }

    /// Every distance kernel (scalar, AVX2, AVX-512 where the CPU has them) against a double-precision loop, over
    /// lengths that exercise the 32-, 16- and 8-wide bodies, the masked tail and the scalar tail.
    func testDistanceKernelsMatchDoublePrecision() {
        let best = Int(attend_simd_level())
        let cpu = Int(attend_simd_cpu_level())
        #if arch(x86_64)
        XCTAssertGreaterThanOrEqual(cpu, 1, "x86-64 machines Attend runs on have AVX2")
        #endif
        for level in 0...best {
            attend_set_simd_limit(Int32(level))
            for n in [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 64, 100, 384, 785] {
                let v = randomVectors(2, n, seed: UInt64(n))
                let (a, b) = (v[0], v[1])
                let l2 = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
                let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                XCTAssertEqual(Double(attend_vector_distance(ATTEND_METRIC_L2, a, b, n)), l2, accuracy: 1e-5 * max(1, l2), "L2 level \(level) n \(n)")
                XCTAssertEqual(Double(attend_vector_distance(ATTEND_METRIC_INNER_PRODUCT, a, b, n)), 1 - dot, accuracy: 1e-5 * max(1, abs(dot)), "IP level \(level) n \(n)")
            }
        }
    }

    func testExactIndexMatchesBruteForce() {
        for metric in [DistanceMetric.euclidean, .cosine] {
            let data = randomVectors(500, 24, seed: 1, unit: metric == .cosine)
            var index = ExactIndex(dimension: 24, metric: metric)
            for (i, v) in data.enumerated() { index.add(v, label: Int64(i)) }
            for q in randomVectors(20, 24, seed: 2, unit: metric == .cosine) {
                XCTAssertEqual(index.search(q, k: 10).map { Int($0.label) }, bruteForce(data, q, k: 10, metric: metric))
                // A filter keeps only what it allows, still nearest first.
                let even = index.search(q, k: 5) { $0 % 2 == 0 }.map { Int($0.label) }
                XCTAssertEqual(even, bruteForce(data, q, k: 5, metric: metric, skip: Set(stride(from: 1, to: 500, by: 2))))
            }
        }
    }

    /// HNSW finds most of the true neighbours (recall@10 against brute force), more with a wider beam; deleted
    /// vectors never come back; a filter is obeyed.
    func testHNSWRecallDeletionAndFilter() throws {
        // 24 dimensions take the kernels' 16-wide step and a masked tail; 100 their 32-wide steps as well.
        for (metric, d) in [(DistanceMetric.euclidean, 24), (.cosine, 24), (.euclidean, 100), (.cosine, 100)] {
            let n = 2000
            let data = randomVectors(n, d, seed: 3, unit: metric == .cosine)
            let index = try HNSWIndex(dimension: d, metric: metric, m: 12, efConstruction: 100)
            for (i, v) in data.enumerated() { try index.add(v, label: Int64(i)) }
            let queries = randomVectors(60, d, seed: 4, unit: metric == .cosine)
            func recall(ef: Int, truth: [Set<Int>]) -> Double {
                var found = 0
                for (q, t) in zip(queries, truth) { found += index.search(q, k: 10, ef: ef).filter { t.contains(Int($0.label)) }.count }
                return Double(found) / Double(queries.count * 10)
            }
            let truth = queries.map { Set(bruteForce(data, $0, k: 10, metric: metric)) }
            let low = recall(ef: 10, truth: truth), high = recall(ef: 200, truth: truth)
            XCTAssertGreaterThan(high, 0.97, "\(metric) recall@10 at ef 200")
            XCTAssertGreaterThanOrEqual(high, low, "\(metric): a wider beam must not lose neighbours")
            // Nearest first, with the exact distances.
            let hits = index.search(queries[0], k: 10, ef: 100)
            XCTAssertEqual(hits.map(\.distance), hits.map(\.distance).sorted())
            // The search computes four neighbours' distances at once; each equals the one-row kernel's bit for bit.
            XCTAssertEqual(hits.count, 10)
            for hit in hits {
                XCTAssertEqual(hit.distance, attend_vector_distance(metric == .euclidean ? ATTEND_METRIC_L2 : ATTEND_METRIC_INNER_PRODUCT, queries[0], data[Int(hit.label)], d),
                               "\(metric) d \(d) label \(hit.label)")
            }

            let removed = Set(stride(from: 0, to: n, by: 3))
            for i in removed { XCTAssertTrue(index.remove(Int64(i))) }
            XCTAssertFalse(index.remove(0), "removing twice")
            XCTAssertEqual(index.count, n - removed.count)
            for q in queries { XCTAssertTrue(index.search(q, k: 10, ef: 50).allSatisfy { !removed.contains(Int($0.label)) }) }
            let liveTruth = queries.map { Set(bruteForce(data, $0, k: 10, metric: metric, skip: removed)) }
            XCTAssertGreaterThan(recall(ef: 200, truth: liveTruth), 0.95, "\(metric) recall after deleting a third")

            let allowed = Set((0..<Int64(n)).filter { $0 % 10 == 1 })
            for q in queries.prefix(10) {
                let got = index.search(q, k: 5, ef: 50, allowed: allowed)
                XCTAssertEqual(got.count, 5)
                XCTAssertTrue(got.allSatisfy { allowed.contains($0.label) })
            }
        }
    }

    /// The graph's links round-trip through bytes: the loaded index answers exactly as the original.
    func testHNSWLinksRoundTripAndCorruptBytesAreRefused() throws {
        let data = randomVectors(1500, 16, seed: 5)
        let index = try HNSWIndex(dimension: 16, metric: .euclidean, m: 8, efConstruction: 64)
        for (i, v) in data.enumerated() { try index.add(v, label: Int64(i * 7)) }
        index.remove(14)
        let bytes = index.serializedLinks()
        let loaded = try bytes.withUnsafeBytes { raw in try HNSWIndex.load(links: raw) { $0 % 7 == 0 && $0 / 7 < 1500 ? data[Int($0 / 7)] : nil } }
        XCTAssertEqual(loaded.count, index.count)
        XCTAssertFalse(loaded.contains(14))
        for q in randomVectors(30, 16, seed: 6) { XCTAssertEqual(loaded.search(q, k: 8, ef: 40), index.search(q, k: 8, ef: 40)) }

        func refuses(_ b: [UInt8], _ why: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try b.withUnsafeBytes { raw in try HNSWIndex.load(links: raw) { $0 % 7 == 0 && $0 / 7 < 1500 ? data[Int($0 / 7)] : nil } },
                                 why, file: file, line: line) { error in XCTAssertTrue("\(error)".contains("HNSW graph"), "\(error)", file: file, line: line) }
        }
        refuses(Array(bytes.prefix(40)), "truncated header")
        refuses(Array(bytes.dropLast(3)), "truncated node")
        refuses(bytes + [0], "trailing byte")
        var magic = bytes; magic[0] ^= 1; refuses(magic, "bad magic")
        // A node count of 2^40 in a small blob is refused before any allocation.
        var huge = bytes; withUnsafeBytes(of: Int64(1) << 40) { huge.replaceSubrange(40..<48, with: $0) }; refuses(huge, "count larger than the data")
        // A neighbour index past the end.
        var link = bytes
        let firstLinks = 64 + 8 + 1 + 4   // node 0's neighbour count
        XCTAssertGreaterThan(link[firstLinks], 0)
        withUnsafeBytes(of: Int32(1_000_000)) { link.replaceSubrange((firstLinks + 4)..<(firstLinks + 8), with: $0) }
        refuses(link, "neighbour out of range")
        // An unknown label.
        XCTAssertThrowsError(try bytes.withUnsafeBytes { raw in try HNSWIndex.load(links: raw) { $0 == 70 ? nil : data[Int($0 / 7)] } })
    }
}
