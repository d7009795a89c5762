// Forward values against plain loops (the readable reference) and fused kernels against their composition.

@testable import AttendTensor
import CAttendKernels
import Foundation
import XCTest

func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "lengths differ", file: file, line: line)
    for i in 0..<min(a.count, b.count) where abs(a[i] - b[i]) > tolerance * max(1, abs(b[i])) {
        XCTFail("element \(i): \(a[i]) vs \(b[i]) (tolerance \(tolerance)) \(message)", file: file, line: line)
        return
    }
}

/// C = op(A) op(B) by triple loop, in Double.
func naiveGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float], ldb: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var s: Double = 0
            for p in 0..<k {
                let x = transA ? a[p * lda + i] : a[i * lda + p]
                let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += Double(x) * Double(y)
            }
            c[i * n + j] = Float(s)
        }
    }
    return c
}

final class TensorOpsTests: XCTestCase {
    /// Every micro-kernel this CPU runs (generic always; AVX2 and AVX-512 where present), on odd shapes, all
    /// transposes, one and two threads, and alpha / beta.
    func testOwnGemmMatchesNaiveOnOddShapesAndTransposes() {
        var ran: [String] = []
        for level in SIMDLevel.available {
            SIMDLevel.withLimit(level) {
                ran.append(Gemm.ownKernelName)
                checkOwnGemm()
                testGemmAlphaBeta()
            }
        }
        XCTAssertEqual(ran, Array(["generic", "avx2-fma", "avx512f"].prefix(SIMDLevel.available.count)))
    }

    func checkOwnGemm() {
        for (m, n, k) in [(1, 1, 1), (7, 17, 5), (13, 33, 300), (6, 16, 256), (12, 16, 256), (70, 50, 513), (25, 15, 3)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1
                    let a = Tensor.uniform([(transA ? k : m) * lda], low: -1, high: 1, seed: 1).toArray()
                    let b = Tensor.uniform([(transB ? n : k) * ldb], low: -1, high: 1, seed: 2).toArray()
                    let expected = naiveGemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb)
                    for threads in [1, 2] {
                        var c = [Float](repeating: 7, count: m * n)
                        Gemm.ownSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                                      beta: 0, c: &c, ldc: n, threads: threads)
                        assertClose(c, expected, tolerance: 1e-4, "kernel \(Gemm.ownKernelName), \(m)x\(n)x\(k), transA \(transA), transB \(transB)")
                    }
                }
            }
        }
    }

    func testCurrentBackendMatchesNaiveWithAndWithoutBLAS() {
        defer { BLAS.isEnabled = true }
        for blas in [true, false] {
            BLAS.isEnabled = blas
            for (m, n, k, ta, tb) in [(37, 129, 65, false, false), (64, 3, 200, true, false), (5, 300, 17, false, true)] {
                let lda = ta ? m : k, ldb = tb ? k : n
                let a = Tensor.uniform([m * k], low: -1, high: 1, seed: 5).toArray(), b = Tensor.uniform([k * n], low: -1, high: 1, seed: 6).toArray()
                var c = [Float](repeating: 1, count: m * n)
                Backend.current.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                                      beta: 0, c: &c, ldc: n, threads: 2)
                assertClose(c, naiveGemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb), tolerance: 1e-4)
            }
        }
        var y = [Float](repeating: 0, count: 3)
        Backend.current.exp([0, 1, -2], &y, count: 3)
        assertClose(y, [1, Float(M_E), Float(exp(-2.0))], tolerance: 1e-6)
    }

    func testGemmAlphaBeta() {
        let a = Tensor.uniform([5, 4], seed: 1).toArray(), b = Tensor.uniform([4, 3], seed: 2).toArray()
        var c = [Float](repeating: 1, count: 15)
        Gemm.ownSgemm(transA: false, transB: false, m: 5, n: 3, k: 4, alpha: 2, a: a, lda: 4, b: b, ldb: 3, beta: 0.5, c: &c, ldc: 3)
        let ab = naiveGemm(transA: false, transB: false, m: 5, n: 3, k: 4, a: a, lda: 4, b: b, ldb: 3)
        assertClose(c, ab.map { 2 * $0 + 0.5 }, tolerance: 1e-5)
    }

    func testBlasAndOwnKernelAgreeThroughMatmul() throws {
        try XCTSkipIf(BLAS.loadedPath == nil, "no BLAS library on this machine")
        let a = Tensor.uniform([3, 37, 65], low: -1, high: 1, seed: 3), b = Tensor.uniform([65, 129], low: -1, high: 1, seed: 4)
        BLAS.usedEvenIfSlower = true  // BLAS even where it measured slower than the own kernel
        let withBlas = a.matmul(b).toArray()
        BLAS.usedEvenIfSlower = false
        BLAS.isEnabled = false
        defer { BLAS.isEnabled = true }
        assertClose(a.matmul(b).toArray(), withBlas, tolerance: 1e-4)
    }

    func testBatchedMatmulBroadcastsBatchDims() {
        let a = Tensor.uniform([2, 1, 3, 4], seed: 1), b = Tensor.uniform([3, 4, 5], seed: 2)
        let c = a.matmul(b)
        XCTAssertEqual(c.shape, [2, 3, 3, 5])
        let av = a.toArray(), bv = b.toArray(), cv = c.toArray()
        for i in 0..<2 {
            for j in 0..<3 {
                let expected = naiveGemm(transA: false, transB: false, m: 3, n: 5, k: 4, a: Array(av[(i * 12)..<(i * 12 + 12)]), lda: 4,
                                         b: Array(bv[(j * 20)..<(j * 20 + 20)]), ldb: 5)
                assertClose(Array(cv[((i * 3 + j) * 15)..<((i * 3 + j) * 15 + 15)]), expected, tolerance: 1e-5)
            }
        }
    }

    func testBroadcastingArithmetic() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let b = Tensor([10, 20, 30], shape: [3])
        XCTAssertEqual((a + b).toArray(), [11, 22, 33, 14, 25, 36])
        let col = Tensor([1, 2], shape: [2, 1])
        XCTAssertEqual((a * col).toArray(), [1, 2, 3, 8, 10, 12])
        XCTAssertEqual((a.transposed() - 1).toArray(), [0, 3, 1, 4, 2, 5])
    }

    func testViewsShareStorageAndReadCorrectly() {
        let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let p = x.permute([2, 0, 1])
        XCTAssertEqual(p.shape, [4, 2, 3])
        XCTAssertTrue(p.storage === x.storage)
        XCTAssertEqual(p.contiguous().toArray().prefix(6), [0, 4, 8, 12, 16, 20])
        let s = x.slice(axis: 2, start: 1, length: 2)
        XCTAssertEqual(s.toArray(), [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22])
        XCTAssertEqual(x.slice(axis: 1, 1..<3).slice(axis: 2, start: 0, length: 2, step: 3).toArray(), [4, 7, 8, 11, 16, 19, 20, 23])
        let e = Tensor([1, 2], shape: [2, 1]).expand(to: [2, 3])
        XCTAssertEqual(e.toArray(), [1, 1, 1, 2, 2, 2])
        XCTAssertEqual(x.reshape([6, -1]).shape, [6, 4])
        XCTAssertEqual(Tensor.concat([x, x], axis: 1).shape, [2, 6, 4])
    }

    func testReductionsMatchLoops() {
        let x = Tensor.uniform([3, 4, 5], low: -1, high: 1, seed: 7)
        let v = x.toArray()
        func at(_ i: Int, _ j: Int, _ k: Int) -> Float { v[(i * 4 + j) * 5 + k] }
        let s1 = x.sum(axes: [1]).toArray()
        for i in 0..<3 { for k in 0..<5 { XCTAssertEqual(s1[i * 5 + k], (0..<4).map { at(i, $0, k) }.reduce(0, +), accuracy: 1e-5) } }
        let s0 = x.sum(axes: [0]).toArray()
        for j in 0..<4 { for k in 0..<5 { XCTAssertEqual(s0[j * 5 + k], (0..<3).map { at($0, j, k) }.reduce(0, +), accuracy: 1e-5) } }
        XCTAssertEqual(x.sum().item, v.reduce(0, +), accuracy: 1e-4)
        let m = x.max(axis: 2).toArray()
        for i in 0..<3 { for j in 0..<4 { XCTAssertEqual(m[i * 4 + j], (0..<5).map { at(i, j, $0) }.max()!) } }
        XCTAssertEqual(x.argmax(axis: 2).shape, [3, 4])
    }

    func testFusedSoftmaxMatchesComposition() {
        let x = Tensor.uniform([4, 7], low: -5, high: 5, seed: 3)
        let e = (x - x.max(axis: -1, keepDims: true)).exp()
        let composed = e / e.sum(axes: [-1], keepDims: true)
        assertClose(x.softmax(axis: -1).toArray(), composed.toArray(), tolerance: 1e-6)
        assertClose(x.logSoftmax(axis: -1).toArray(), composed.log().toArray(), tolerance: 1e-5)
        // A fully masked row gives zeros, not NaN.
        let masked = Tensor([-Float.infinity, -.infinity], shape: [1, 2]).softmax()
        XCTAssertEqual(masked.toArray(), [0, 0])
    }

    /// Q4_0 times 8-bit activations through the repacked 8-row kernel (prompts, and one token at a time):
    /// against the definition in Double, sum over blocks of d_w d_x sum((q - 8) q_x), for 1-9 tokens (the 4-token
    /// passes and every tail), on every SIMD level; a matrix whose rows are not a multiple of 8 keeps the one-row kernel.
    func testQ4_0RepackedProductMatchesItsDefinition() { checkRepackedProduct(type: 2) }

    /// Q4_1 the same (decoding steps): sum over blocks of d_w d_x sum(q q_x) + m_w s_x, minimums of both signs.
    func testQ4_1RepackedProductMatchesItsDefinition() { checkRepackedProduct(type: 3) }

    private func checkRepackedProduct(type: UInt32) {
        var g = RandomGenerator(seed: 11)
        let blockBytes = type == 3 ? 20 : 18, nibbles = type == 3 ? 4 : 2
        for (rows, columns) in [(24, 96), (8, 32), (20, 64), (136, 64)] {
            let blocks = columns / 32
            var bytes = [UInt8](repeating: 0, count: rows * blocks * blockBytes)
            var scales = [Double](repeating: 0, count: rows * blocks), minimums = scales
            for r in 0..<rows {
                for b in 0..<blocks {
                    let at = (r * blocks + b) * blockBytes
                    // Scales and minimums of both signs; nibbles 0-15, both ends included.
                    let d = Float16(Float(g.nextUniform() * 0.2 - 0.1)), m = Float16(Float(g.nextUniform() * 0.2 - 0.1))
                    scales[r * blocks + b] = Double(Float(d))
                    withUnsafeBytes(of: d.bitPattern.littleEndian) { bytes[at] = $0[0]; bytes[at + 1] = $0[1] }
                    if type == 3 {
                        minimums[r * blocks + b] = Double(Float(m))
                        withUnsafeBytes(of: m.bitPattern.littleEndian) { bytes[at + 2] = $0[0]; bytes[at + 3] = $0[1] }
                    }
                    for i in 0..<16 { bytes[at + nibbles + i] = UInt8(g.next() % 256) }
                    if b == 0 { bytes[at + nibbles] = 0xF0 }  // weight 0 is the lowest and weight 16 the highest
                }
            }
            bytes.withUnsafeBytes { raw in
                let q = QuantizedMatrix(type: type, rows: rows, columns: columns, bytes: raw.baseAddress!, owner: NSObject())
                XCTAssertEqual(q.prefersInt8Activations, type == 2 && rows % 8 == 0)
                XCTAssertEqual(q.multipliesInRowGroups, rows % 8 == 0)
                let floatTiles = q.matmul(Tensor.uniform([3, columns], low: -1, high: 1, seed: 5)).toArray()
                for tokens in [1, 2, 3, 4, 5, 7, 9] {
                    var x = Tensor.uniform([tokens, columns], low: -1, high: 1, seed: UInt64(tokens))
                    if tokens == 9 { x = x * Tensor(Array(repeating: Float(-3), count: columns), shape: [columns]) }
                    let a = QuantizedActivations(x)
                    var exact = [Float](repeating: 0, count: tokens * rows)
                    for t in 0..<tokens {
                        for r in 0..<rows {
                            var sum = 0.0
                            for b in 0..<blocks {
                                let xb = a.blocks[t * blocks + b]
                                let xq = withUnsafeBytes(of: xb.q) { Array($0.bindMemory(to: Int8.self)) }
                                var dot = 0
                                for i in 0..<16 {
                                    let v = Int(bytes[(r * blocks + b) * blockBytes + nibbles + i])
                                    let offset = type == 3 ? 0 : 8
                                    dot += (v & 15 - offset) * Int(xq[i]) + (v >> 4 - offset) * Int(xq[16 + i])
                                }
                                sum += scales[r * blocks + b] * Double(xb.d) * Double(dot) + minimums[r * blocks + b] * Double(xb.s)
                            }
                            exact[t * rows + r] = Float(sum)
                        }
                    }
                    for level in SIMDLevel.available {
                        SIMDLevel.withLimit(level) {
                            assertClose(q.matmul(a).toArray(), exact, tolerance: 1e-5, "type \(type), \(rows) x \(columns), \(tokens) tokens, \(level)")
                        }
                    }
                }
                // Once repacked, float tiles expand from the repacked copy: the same bytes, so the same values.
                XCTAssertEqual(q.repackedIfMade != nil, rows % 8 == 0)
                XCTAssertEqual(q.matmul(Tensor.uniform([3, columns], low: -1, high: 1, seed: 5)).toArray(), floatTiles, "type \(type), \(rows) rows")
            }
        }
    }

    /// Several matrices times the same 8-bit activations in one pass (a decoding step's query, key and value) equal
    /// each matrix's own product element for element: Q4_0 through the repacked kernel and, with rows not a multiple
    /// of 8, the one-row kernel, Q4_1 and Q8_0, in orders that put the threads' split inside each kind of matrix,
    /// for one token and several, on every SIMD level.
    func testJoinedQuantizedProductsEqualEachProduct() {
        var g = RandomGenerator(seed: 12)
        let columns = 512, blocks = columns / 32
        func matrix(type: UInt32, rows: Int) -> (QuantizedMatrix, UnsafeMutableRawPointer) {
            let blockBytes = type == 2 ? 18 : type == 3 ? 20 : 34
            var bytes = [UInt8](repeating: 0, count: rows * blocks * blockBytes)
            for block in 0..<(rows * blocks) {
                let at = block * blockBytes
                let scales = type == 3 ? [Float(g.nextUniform() * 0.2 - 0.1), Float(g.nextUniform() * 0.2 - 0.1)]
                                       : [Float(g.nextUniform() * 0.2 - 0.1)]
                for (i, value) in scales.enumerated() {
                    withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { bytes[at + 2 * i] = $0[0]; bytes[at + 2 * i + 1] = $0[1] }
                }
                for i in (2 * scales.count)..<blockBytes { bytes[at + i] = UInt8(g.next() % 256) }
            }
            let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            memory.copyMemory(from: bytes, byteCount: bytes.count)
            return (QuantizedMatrix(type: type, rows: rows, columns: columns, bytes: memory, owner: NSObject()), memory)
        }
        let made = [matrix(type: 2, rows: 104), matrix(type: 3, rows: 101), matrix(type: 8, rows: 64), matrix(type: 2, rows: 100),
                    matrix(type: 3, rows: 8)]
        XCTAssertEqual(made.map { $0.0.prefersInt8Activations }, [true, false, false, false, false])
        XCTAssertEqual(made.map { $0.0.multipliesInRowGroups }, [true, false, false, false, true])
        // On 2 threads the split falls inside the Q4_1 matrix of the one-row kernel, the Q4_0 one of the one-row
        // kernel, the same again, the repacked Q4_0, the Q8_0 (5 tokens) and the Q4_1 alone (2 and 5 tokens).
        let orders = [[0, 1, 2, 3, 4], [3, 2], [2, 3, 1], [4, 2, 0, 3], [2, 4], [1]]
        defer { for (_, memory) in made { memory.deallocate() } }
        do {
            for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
                for tokens in [1, 2, 5] {
                    let a = QuantizedActivations(Tensor.uniform([tokens, columns], low: -2, high: 2, seed: UInt64(40 + tokens)))
                    for order in orders {
                        let matrices = order.map { made[$0].0 }
                        let joined = QuantizedMatrix.matmul(matrices, a)
                        XCTAssertEqual(joined.count, matrices.count)
                        for (m, y) in zip(matrices, joined) {
                            XCTAssertEqual(y.shape, [tokens, m.rows])
                            XCTAssertEqual(y.toArray(), m.matmul(a).toArray(), "\(order), \(m.rows) rows of type \(m.type), \(tokens) tokens, \(level)")
                        }
                    }
                }
            } }
        }
    }

    /// Dense convolutions (im2col + GEMM forward, col2im for the input's gradient) against direct loops in Double, on
    /// every SIMD level: widths under, at and over one 8-lane vector and ragged ends, padding on no side, every side
    /// and one side, strides 1 and 2, square and flat kernels, one sample (threaded GEMMs) and several.
    func testDenseConvolutionMatchesDirectLoops() {
        struct Case { let batch, channels, height, width, out, kh, kw, stride: Int; let pad: Conv2dPadding }
        let cases = [Case(batch: 3, channels: 2, height: 6, width: 5, out: 3, kh: 3, kw: 3, stride: 1, pad: .symmetric(1)),
                     Case(batch: 2, channels: 3, height: 9, width: 8, out: 4, kh: 3, kw: 3, stride: 1, pad: .symmetric(1)),
                     Case(batch: 2, channels: 2, height: 7, width: 19, out: 3, kh: 3, kw: 3, stride: 1, pad: .symmetric(2)),
                     Case(batch: 1, channels: 2, height: 5, width: 17, out: 2, kh: 1, kw: 5, stride: 1, pad: .symmetric(0)),
                     Case(batch: 2, channels: 1, height: 8, width: 16, out: 3, kh: 5, kw: 3, stride: 1,
                          pad: .explicit(top: 0, left: 2, bottom: 1, right: 0)),
                     Case(batch: 3, channels: 2, height: 9, width: 13, out: 2, kh: 3, kw: 3, stride: 2, pad: .same),
                     // Outputs of 2 x 2 and 1 x 3: a row of columns is shorter than one vector.
                     Case(batch: 2, channels: 3, height: 2, width: 2, out: 2, kh: 3, kw: 3, stride: 1, pad: .symmetric(1)),
                     Case(batch: 1, channels: 2, height: 1, width: 3, out: 2, kh: 1, kw: 3, stride: 1, pad: .explicit(top: 0, left: 1, bottom: 0, right: 1))]
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            for c in cases {
                let x = Tensor.uniform([c.batch, c.channels, c.height, c.width], low: -1, high: 1, seed: 21, requiresGrad: true)
                let w = Tensor.uniform([c.out, c.channels, c.kh, c.kw], low: -1, high: 1, seed: 22, requiresGrad: true)
                let y = x.conv2d(weight: w, stride: c.stride, padding: c.pad, groups: 1)
                let r = Tensor.uniform(y.shape, low: -1, high: 1, seed: 23)
                (y * r).sum().backward()
                let g = Conv2dGeometry(batch: c.batch, inChannels: c.channels, height: c.height, width: c.width, outChannels: c.out,
                                       kernelHeight: c.kh, kernelWidth: c.kw, stride: c.stride, padding: c.pad)
                let (xs, ws, rs) = (x.toArray().map(Double.init), w.toArray().map(Double.init), r.toArray().map(Double.init))
                var yRef = [Double](repeating: 0, count: y.count), dx = [Double](repeating: 0, count: x.count)
                var dw = [Double](repeating: 0, count: w.count)
                for n in 0..<c.batch { for o in 0..<c.out { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
                    let yi = ((n * c.out + o) * g.outHeight + oy) * g.outWidth + ox
                    for ch in 0..<c.channels { for ki in 0..<c.kh { for kj in 0..<c.kw {
                        let iy = oy * c.stride - g.padTop + ki, ix = ox * c.stride - g.padLeft + kj
                        guard iy >= 0, iy < c.height, ix >= 0, ix < c.width else { continue }
                        let xi = ((n * c.channels + ch) * c.height + iy) * c.width + ix, wi = ((o * c.channels + ch) * c.kh + ki) * c.kw + kj
                        yRef[yi] += xs[xi] * ws[wi]
                        dx[xi] += rs[yi] * ws[wi]
                        dw[wi] += rs[yi] * xs[xi]
                    } } }
                } } } }
                let name = "\(c.batch)x\(c.channels)x\(c.height)x\(c.width) kernel \(c.kh)x\(c.kw) stride \(c.stride) \(c.pad), \(level.name)"
                assertClose(y.toArray(), yRef.map(Float.init), tolerance: 1e-5, "output " + name)
                assertClose(x.grad!.toArray(), dx.map(Float.init), tolerance: 1e-5, "input gradient " + name)
                assertClose(w.grad!.toArray(), dw.map(Float.init), tolerance: 1e-4, "weight gradient " + name)
            }
        } }
    }

    func testVectorExpAccuracy() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            let xs = stride(from: Float(-87), through: 88, by: 0.37).map { $0 }
            var ys = [Float](repeating: 0, count: xs.count)
            attend_vexp(xs, &ys, xs.count)
            for (x, y) in zip(xs, ys) {
                let ref = Foundation.exp(Double(x))
                XCTAssertLessThan(abs(Double(y) - ref) / ref, 1e-6, "exp(\(x)), \(level.name)")
            }
        } }
    }

    func testVectorGELUMatchesTheLibmComposition() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            let x = Tensor((0..<4001).map { Float($0 - 2000) / 200 }, shape: [4001])  // -10 ... 10
            let fast = x.gelu().toArray()
            let reference = Kernels.unary(x, GELUF.self).toArray()
            for i in 0..<x.count { XCTAssertEqual(fast[i], reference[i], accuracy: 2e-6 * max(1, abs(x.toArray()[i]))) }
        } }
    }

    func testVectorGELUGradientMatchesTheLibmComposition() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            let x = Tensor((0..<4001).map { Float($0 - 2000) / 200 }, shape: [4001])   // -10 ... 10, both signs, 0
            let g = Tensor.uniform([4001], low: -1, high: 1, seed: 3)
            let fast = Tensor.geluBackward(g, x).toArray(), reference = Kernels.binary(g, x, GELUGrad.self).toArray()
            for i in 0..<x.count { XCTAssertEqual(fast[i], reference[i], accuracy: 2e-6, "x = \(x.toArray()[i])") }
            // A strided gradient takes the composed path.
            let strided = Tensor.uniform([4001, 2], low: -1, high: 1, seed: 4).transposed(0, 1), x2 = Tensor.stack([x, x])
            XCTAssertFalse(strided.isContiguous)
            XCTAssertEqual(Tensor.geluBackward(strided, x2).toArray(), Kernels.binary(strided, x2, GELUGrad.self).toArray())
        } }
    }

    func testVectorTanhGELUAndGradientMatchLibm() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            let x = Tensor((0..<4001).map { Float($0 - 2000) / 200 }, shape: [4001])
            let g = Tensor.uniform([4001], low: -1, high: 1, seed: 2)
            let fast = x.gelu(approximate: true).toArray(), reference = Kernels.unary(x, GELUTanhF.self).toArray()
            let fastGrad = Tensor.geluTanhBackward(g, x).toArray(), referenceGrad = Kernels.binary(g, x, GELUTanhGrad.self).toArray()
            for i in 0..<x.count {
                XCTAssertEqual(fast[i], reference[i], accuracy: 2e-6 * max(1, abs(x.toArray()[i])))
                XCTAssertEqual(fastGrad[i], referenceGrad[i], accuracy: 2e-6)
            }
        } }
    }

    /// The AdamW / Adam-with-L2 step and the word2vec update at every SIMD level against the same update in double
    /// precision, on lengths around the 8-lane width (body and tail), gradients of both signs.
    func testAdamAndWord2VecKernelsAtEveryLevel() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            for n in [1, 7, 8, 9, 23] {
                for decoupled: Int32 in [0, 1] {
                    var p = Tensor.uniform([n], low: -1, high: 1, seed: UInt64(n)).toArray()
                    let g = Tensor.uniform([n], low: -1, high: 1, seed: UInt64(n + 50)).toArray()
                    var m = Tensor.uniform([n], low: -0.1, high: 0.1, seed: 3).toArray()
                    var v = Tensor.uniform([n], low: 0, high: 0.1, seed: 4).toArray()
                    let (lr, b1, b2, eps, wd, stepSize, invC2): (Double, Double, Double, Double, Double, Double, Double) =
                        (0.01, 0.9, 0.999, 1e-8, 0.1, 0.02, 1 / 0.002)
                    var expected = [Double]()
                    for i in 0..<n {
                        var (pi, gi) = (Double(p[i]), Double(g[i]))
                        if decoupled == 1 { pi -= lr * wd * pi } else { gi += wd * pi }
                        let mi = b1 * Double(m[i]) + (1 - b1) * gi, vi = b2 * Double(v[i]) + (1 - b2) * gi * gi
                        expected.append(pi - stepSize * mi / ((vi * invC2).squareRoot() + eps))
                    }
                    attend_adam_step(&p, g, &m, &v, n, Float(lr), Float(b1), Float(b2), Float(eps), Float(wd), decoupled,
                                     Float(stepSize), Float(invC2))
                    for i in 0..<n { XCTAssertEqual(Double(p[i]), expected[i], accuracy: 1e-6, "adam n \(n) decoupled \(decoupled) \(level.name)") }
                }
                // word2vec: two output rows, labels 1 and 0, scores inside the sigmoid table.
                attend_w2v_prepare()
                let input = Tensor.uniform([n], low: -0.5, high: 0.5, seed: 5).toArray()
                var out = Tensor.uniform([3 * n], low: -0.5, high: 0.5, seed: 6).toArray()
                var grad = [Float](repeating: 0, count: n)
                let rows: [Int32] = [2, 0], labels: [Float] = [1, 0], alpha = 0.05
                var expectedOut = out.map(Double.init), expectedGrad = [Double](repeating: 0, count: n)
                for (row, label) in zip(rows, labels) {
                    let o = Int(row) * n
                    let f = (0..<n).reduce(0.0) { $0 + Double(input[$1]) * expectedOut[o + $1] }
                    // The original tool's sigmoid table: 1,000 entries over [-6, 6], indexed by (f + 6) * (1000 / 6 / 2) in
                    // integer arithmetic (83, not 83.3), as Attend and word2vec.c both do.
                    let entry = Foundation.exp((Double(Int((f + 6) * 83)) / 1000 * 2 - 1) * 6)
                    let scale = (Double(label) - entry / (entry + 1)) * alpha
                    for d in 0..<n { expectedGrad[d] += scale * expectedOut[o + d] }
                    for d in 0..<n { expectedOut[o + d] += scale * Double(input[d]) }
                }
                attend_w2v_update(input, &grad, &out, rows, labels, 2, n, Float(alpha), 0)
                // A float score on the other side of a table step than the double one moves the scale by 3e-3 * alpha.
                for d in 0..<n { XCTAssertEqual(Double(grad[d]), expectedGrad[d], accuracy: 1e-4, "w2v grad n \(n) \(level.name)") }
                for i in 0..<3 * n { XCTAssertEqual(Double(out[i]), expectedOut[i], accuracy: 1e-4, "w2v out n \(n) \(level.name)") }
                // Scores beyond the table (|f| > 6): negative sampling pushes with label - 1 above and label below,
                // as word2vec.c does; hierarchical softmax (skip_outside_table) leaves the row alone.
                let big = [Float](repeating: 1, count: n), rowPlus = [Float](repeating: 7 / Float(n), count: n)
                for (row, label) in [(rowPlus, Float(0)), (rowPlus, 1), (rowPlus.map { -$0 }, 0), (rowPlus.map { -$0 }, 1)] {
                    for skip: Int32 in [0, 1] {
                        var o = row, gradient = [Float](repeating: 0, count: n)
                        attend_w2v_update(big, &gradient, &o, [0], [label], 1, n, Float(alpha), skip)
                        let f = row.reduce(0, +)
                        let scale = skip == 1 ? 0 : Float(alpha) * (f > 6 ? label - 1 : label)
                        for d in 0..<n {
                            XCTAssertEqual(gradient[d], scale * row[d], accuracy: 1e-6, "saturated f \(f) label \(label) skip \(skip) \(level.name)")
                            XCTAssertEqual(o[d], row[d] + scale, accuracy: 1e-6, "saturated f \(f) label \(label) skip \(skip) \(level.name)")
                        }
                    }
                }
            }
        } }
        attend_w2v_prepare()
    }

    /// Small, and large enough (rows x width >= 65,536) that the weight and bias gradients are summed from several
    /// threads' parts.
    /// Int8 linear layers against an exact integer reference, on every SIMD path: odd row counts (the 6-row
    /// micro-tile's last rows), inputs not a multiple of 4 (padding), outputs not a multiple of 16 (masked stores),
    /// with and without bias, a zero row, an outlier row and both signs. The sums are integers, so the paths agree
    /// bit for bit; against float32 the error stays within the quantization steps.
    func testInt8LinearMatchesIntegerReferenceAtEveryLevel() {
        func quantize(_ v: ArraySlice<Float>) -> (q: [Int], scale: Float) {
            let amax = v.map { abs($0) }.max() ?? 0
            let inverse: Float = amax != 0 ? 127 / amax : 0
            return (v.map { Int(($0 * inverse).rounded(.toNearestOrEven)) }, amax / 127)
        }
        var cases = 0
        for (rows, k, n) in [(1, 1, 1), (5, 3, 15), (6, 4, 16), (7, 33, 17), (13, 384, 65), (50, 130, 130), (97, 64, 40)] {
            let x = Tensor.uniform([rows, k], low: -2, high: 2, seed: UInt64(rows * 1000 + k))
            if rows > 2 {
                for p in 0..<k { x.pointer[k + p] = 0 }   // row 1: all zero (scale 0)
                x.pointer[2 * k] = 40                      // row 2: one outlier
            }
            let w = Tensor.uniform([n, k], low: -0.5, high: 0.5, seed: UInt64(n * 7 + k))
            let bias = Tensor.uniform([n], low: -1, high: 1, seed: UInt64(n))
            let xs = x.toArray(), ws = w.toArray(), bs = bias.toArray()
            let qw = (0..<n).map { quantize(ws[($0 * k)..<($0 * k + k)]) }
            let qx = (0..<rows).map { quantize(xs[($0 * k)..<($0 * k + k)]) }
            for withBias in [false, true] {
                var expected = [Float](), float32 = [Float]()
                for i in 0..<rows {
                    for j in 0..<n {
                        let dot = (0..<k).reduce(0) { $0 + qx[i].q[$1] * qw[j].q[$1] }
                        // One rounding, as the kernel's fused multiply-add: bias + dot * (sx * sw).
                        expected.append((withBias ? bs[j] : 0).addingProduct(Float(dot), qx[i].scale * qw[j].scale))
                        float32.append((0..<k).reduce(Float(0)) { $0 + xs[i * k + $1] * ws[j * k + $1] } + (withBias ? bs[j] : 0))
                    }
                }
                let matrix = Int8Matrix(w)
                for level in SIMDLevel.available {
                    let got = SIMDLevel.withLimit(level) { matrix.apply(x, bias: withBias ? bias : nil).toArray() }
                    XCTAssertEqual(got.count, expected.count)
                    for e in 0..<min(got.count, expected.count) {
                        XCTAssertEqual(got[e], expected[e], "rows \(rows) k \(k) n \(n) bias \(withBias) \(level.name) element \(e)")
                        // Each factor is off by at most half its step, and |x| <= 127 sx, |w| <= 127 sw.
                        let i = e / n, j = e % n
                        let bound = Float(k) * qx[i].scale * qw[j].scale * 128 + 1e-4
                        XCTAssertEqual(got[e], float32[e], accuracy: bound, "int8 against float32, rows \(rows) k \(k) n \(n)")
                    }
                    cases += 1
                }
                if let vnni = SIMDLevel.available.last.map({ l in SIMDLevel.withLimit(l) { matrix.apply(x, bias: withBias ? bias : nil).toArray() } }) {
                    let portable = SIMDLevel.withLimit(.portable) { matrix.apply(x, bias: withBias ? bias : nil).toArray() }
                    XCTAssertEqual(vnni, portable, "the fastest path and the portable one differ (rows \(rows) k \(k) n \(n))")
                }
            }
        }
        XCTAssertGreaterThanOrEqual(cases, 14)
    }

    func testFusedLayerNormMatchesItsComposition() {
        for (shape, tolerance) in [([5, 7, 16], Float(1e-4)), ([64, 4, 384], 2e-3)] {
            let width = shape[2]
            let x = Tensor.uniform(shape, low: -3, high: 3, seed: 4, requiresGrad: true)
            let w = Tensor.uniform([width], low: 0.5, high: 1.5, seed: 5, requiresGrad: true)
            let b = Tensor.uniform([width], low: -1, high: 1, seed: 6, requiresGrad: true)
            let r = Tensor.uniform(shape, low: -1, high: 1, seed: 7)
            let fused = x.layerNorm(weight: w, bias: b, eps: 1e-5)
            (fused * r).sum().backward()
            let (gx, gw, gb) = (x.grad!.toArray(), w.grad!.toArray(), b.grad!.toArray())
            x.zeroGrad(); w.zeroGrad(); b.zeroGrad()
            let centered = x - x.mean(axes: [-1], keepDims: true)
            let composed = centered * ((centered * centered).mean(axes: [-1], keepDims: true) + 1e-5).rsqrt() * w + b
            (composed * r).sum().backward()
            assertClose(fused.toArray(), composed.toArray(), tolerance: 1e-5)
            assertClose(gx, x.grad!.toArray(), tolerance: 1e-4)
            assertClose(gw, w.grad!.toArray(), tolerance: tolerance)
            assertClose(gb, b.grad!.toArray(), tolerance: tolerance)
        }
    }

    func testSeededRandomIsReproducible() {
        XCTAssertEqual(Tensor.randn([10], seed: 42).toArray(), Tensor.randn([10], seed: 42).toArray())
        XCTAssertNotEqual(Tensor.randn([10], seed: 42).toArray(), Tensor.randn([10], seed: 43).toArray())
        let u = Tensor.randn([10_000], seed: 1)
        XCTAssertEqual(u.mean().item, 0, accuracy: 0.05)
        XCTAssertEqual(u.variance(axes: [0]).item, 1, accuracy: 0.05)
    }

    func testNoGradModeRecordsNothing() {
        let w = Tensor.ones([2], requiresGrad: true)
        let y = withNoGrad { w * 2 }
        XCTAssertFalse(y.requiresGrad)
        let z = w * 2
        XCTAssertTrue(z.requiresGrad)
    }

    func testGradientsAccumulateAcrossBackwardCalls() {
        let w = Tensor([1, 2], shape: [2], requiresGrad: true)
        (w * 3).sum().backward()
        (w * 3).sum().backward()
        XCTAssertEqual(w.grad!.toArray(), [6, 6])
        w.zeroGrad()
        XCTAssertNil(w.grad)
    }

    /// A leaf keeps a gradient the backward pass computed instead of copying it, unless another leaf or the caller
    /// holds the same memory: each case below shares a storage (the sum's gradient goes to both sides of an
    /// addition; a reshape passes a view on; the caller's seed), and writing into one leaf's gradient, as clipping and
    /// optimizers do, must leave the others and the seed alone.
    func testLeafGradientsOwnTheirMemory() {
        let a = Tensor.randn([3, 4], seed: 1, requiresGrad: true), b = Tensor.randn([3, 4], seed: 2, requiresGrad: true)
        let seed = Tensor.ones([3, 4])
        (a + b).backward(seed)
        a.grad!.pointer[0] = 42
        b.grad!.pointer[1] = 43
        XCTAssertEqual(b.grad!.toArray(), [1, 43] + [Float](repeating: 1, count: 10))
        XCTAssertEqual(seed.toArray(), [Float](repeating: 1, count: 12))

        let c = Tensor.randn([12], seed: 3, requiresGrad: true), d = Tensor.randn([3, 4], seed: 4, requiresGrad: true)
        (c.reshape([3, 4]) + d).sum().backward()
        c.grad!.pointer[0] = 42
        XCTAssertEqual(d.grad!.toArray(), [Float](repeating: 1, count: 12))
        XCTAssertEqual(c.grad!.shape, [12])

        // A product's weight gradient is a fresh tensor: kept, and still right after a second backward adds to it.
        let w = Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true), x = Tensor([1, 0, 0, 1], shape: [2, 2])
        x.matmul(w).sum().backward()
        x.matmul(w).sum().backward()
        XCTAssertEqual(w.grad!.toArray(), [2, 2, 2, 2])
    }

    func testLargeElementwiseOpsUseAllThreadsCorrectly() {
        let n = 1 << 20
        let a = Tensor.uniform([n / 1024, 1024], seed: 1), b = Tensor.uniform([1024], seed: 2)
        let c = (a + b).toArray(), av = a.toArray(), bv = b.toArray()
        for i in stride(from: 0, to: n, by: 4099) { XCTAssertEqual(c[i], av[i] + bv[i % 1024]) }
        XCTAssertEqual(a.sum(axes: [0]).toArray()[5], (0..<(n / 1024)).map { av[$0 * 1024 + 5] }.reduce(0, +), accuracy: 1e-2)
    }
}
