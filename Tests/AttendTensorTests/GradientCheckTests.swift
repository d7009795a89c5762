// Finite-difference checks of every derivative rule in Autodiff.swift, each on contiguous, transposed
// and broadcast inputs. Central differences in float32 with step 1e-2; tolerance 2e-2 relative + 2e-3.

import AttendTensor
import CAttendKernels
import XCTest

/// How a test leaf reaches the op: as it is, as a transposed view, or broadcast from a smaller shape.
enum Layout: CaseIterable { case contiguous, transposed, broadcast }

/// A leaf of `shape` as seen through `layout`: returns the leaf (what gets gradients) and the view.
func leaf(_ shape: [Int], _ layout: Layout, seed: UInt64, low: Float = -1, high: Float = 1) -> (Tensor, (Tensor) -> Tensor) {
    switch layout {
    case .contiguous:
        return (Tensor.uniform(shape, low: low, high: high, seed: seed, requiresGrad: true), { $0 })
    case .transposed:
        var s = shape
        if s.count >= 2 { s.swapAt(s.count - 1, s.count - 2) }
        return (Tensor.uniform(s, low: low, high: high, seed: seed, requiresGrad: true), { s.count >= 2 ? $0.transposed(-1, -2) : $0 })
    case .broadcast:
        var s = shape
        s[0] = 1
        return (Tensor.uniform(s, low: low, high: high, seed: seed, requiresGrad: true), { $0.expand(to: shape) })
    }
}

/// Checks analytic gradients of sum(f(inputs) * w) against central differences for every input element.
func checkGradients(_ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line, _ f: @escaping ([Tensor]) -> Tensor) {
    let out = f(inputs)
    let weights = Tensor.uniform(out.shape, low: 0.5, high: 1.5, seed: 99)
    let loss = { (xs: [Tensor]) -> Float in withNoGrad { (f(xs) * weights).sum().item } }
    for x in inputs { x.zeroGrad() }
    (out * weights).sum().backward()
    let h: Float = 1e-2
    for (k, x) in inputs.enumerated() {
        guard let grad = x.grad else { XCTFail("input \(k) got no gradient", file: file, line: line); continue }
        let g = grad.toArray()
        let p = x.pointer
        for i in 0..<x.count {
            let saved = p[i]
            p[i] = saved + h
            let up = loss(inputs)
            p[i] = saved - h
            let down = loss(inputs)
            p[i] = saved
            let numeric = (up - down) / (2 * h)
            let tolerance = 2e-3 + 2e-2 * Swift.max(Swift.abs(numeric), Swift.abs(g[i]))
            if Swift.abs(numeric - g[i]) > tolerance {
                XCTFail("input \(k) element \(i): analytic \(g[i]) vs numeric \(numeric)", file: file, line: line)
                return
            }
        }
    }
}

final class GradientCheckTests: XCTestCase {
    func checkUnary(_ name: String, low: Float = -1, high: Float = 1, _ op: @escaping (Tensor) -> Tensor) {
        for layout in Layout.allCases {
            let (x, view) = leaf([3, 4], layout, seed: 1, low: low, high: high)
            checkGradients([x]) { op(view($0[0])) }
        }
    }

    func checkBinary(_ op: @escaping (Tensor, Tensor) -> Tensor, bLow: Float = -1) {
        for la in Layout.allCases {
            for lb in Layout.allCases {
                let (a, va) = leaf([3, 4], la, seed: 1)
                let (b, vb) = leaf([3, 4], lb, seed: 2, low: bLow)
                checkGradients([a, b]) { op(va($0[0]), vb($0[1])) }
            }
        }
        // Rank broadcasting: a row vector against a matrix.
        let a = Tensor.uniform([2, 3, 4], low: -1, high: 1, seed: 3, requiresGrad: true)
        let b = Tensor.uniform([4], low: bLow, high: 1, seed: 4, requiresGrad: true)
        checkGradients([a, b]) { op($0[0], $0[1]) }
    }

    func testArithmetic() {
        checkBinary(+)
        checkBinary(-)
        checkBinary(*)
        checkBinary(/, bLow: 0.5)
        checkUnary("neg") { -$0 }
        checkUnary("scalar") { 2 * $0 + 1 - $0 / 4 }
    }

    func testUnaryFunctions() {
        checkUnary("exp") { $0.exp() }
        checkUnary("log", low: 0.2, high: 2) { $0.log() }
        checkUnary("sqrt", low: 0.2, high: 2) { $0.sqrt() }
        checkUnary("rsqrt", low: 0.2, high: 2) { $0.rsqrt() }
        checkUnary("tanh") { $0.tanh() }
        checkUnary("sigmoid") { $0.sigmoid() }
        checkUnary("silu") { $0.silu() }
        checkUnary("gelu") { $0.gelu() }
        checkUnary("gelu-tanh") { $0.gelu(approximate: true) }
        checkUnary("pow") { $0.pow(3) }
        checkUnary("square") { $0.square() }
        // Kinked functions: inputs of both signs, kept at least 0.1 from 0 so the step (1e-2) never crosses the kink.
        let signs = Tensor([1, -1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1], shape: [3, 4])
        checkUnary("relu", low: 0.1, high: 1) { ($0 * signs).relu() }
        checkUnary("abs", low: 0.1, high: 1) { ($0 * signs).abs() }
        // At the kink itself PyTorch's convention: relu'(0) = 0 and abs'(0) = sign(0) = 0.
        for f in [{ (x: Tensor) in x.relu() }, { (x: Tensor) in x.abs() }] {
            let x = Tensor([0, 0.5, -0.5], shape: [3], requiresGrad: true)
            f(x).sum().backward()
            XCTAssertEqual(x.grad?.toArray().first, 0, "derivative at the kink")
        }
        let x = Tensor([0.5, -0.5], shape: [2], requiresGrad: true)
        x.relu().sum().backward()
        XCTAssertEqual(x.grad?.toArray(), [1, 0])
        let y = Tensor([0.5, -0.5], shape: [2], requiresGrad: true)
        y.abs().sum().backward()
        XCTAssertEqual(y.grad?.toArray(), [1, -1])
    }

    func testReductions() {
        checkUnary("sum all") { $0.sum() }
        checkUnary("sum rows") { $0.sum(axes: [1]) }
        checkUnary("sum cols keep") { $0.sum(axes: [0], keepDims: true) }
        checkUnary("mean") { $0.mean(axes: [-1]) }
        checkUnary("variance") { $0.variance(axes: [1]) }
        checkUnary("max rows") { $0.max(axis: 1) }
        checkUnary("max cols") { $0.max(axis: 0, keepDims: true) }
        for layout in Layout.allCases {
            let (x, view) = leaf([2, 3, 4], layout, seed: 5)
            checkGradients([x]) { view($0[0]).sum(axes: [0, 2]) }
            checkGradients([x]) { view($0[0]).sum(axes: [1], keepDims: true) }
        }
    }

    func testSoftmaxFamily() {
        checkUnary("softmax") { $0.softmax(axis: -1) }
        checkUnary("softmax axis 0") { $0.softmax(axis: 0) }
        checkUnary("logSoftmax") { $0.logSoftmax(axis: -1) }
        checkUnary("logSoftmax axis 0") { $0.logSoftmax(axis: 0) }
    }

    func testShapeOps() {
        checkUnary("reshape") { $0.reshape([2, 6]) * Tensor.arange(6) }
        checkUnary("permute") { $0.permute([1, 0]).contiguous() * Tensor.arange(3) }
        // Three-axis cycles, where a permutation and its inverse differ (a swap is its own inverse).
        let cube = Tensor.uniform([2, 3, 4], low: -1, high: 1, seed: 6, requiresGrad: true)
        checkGradients([cube]) { $0[0].permute([1, 2, 0]).contiguous() * Tensor.arange(2) }
        checkGradients([cube]) { $0[0].permute([2, 0, 1]).contiguous() * Tensor.arange(3) }
        checkUnary("slice") { $0.slice(axis: 1, start: 1, length: 2) }
        checkUnary("slice step") { $0.slice(axis: 1, start: 0, length: 2, step: 2) }
        checkUnary("unsqueeze expand") { $0.unsqueeze(0).expand(to: [2, 3, 4]) * Tensor.arange(4) }
        // Concat and stack with each input contiguous, transposed or broadcast, on both axes.
        for la in Layout.allCases {
            for lb in Layout.allCases {
                let (a, va) = leaf([2, 3], la, seed: 1), (b, vb) = leaf([2, 2], lb, seed: 2)
                checkGradients([a, b]) { Tensor.concat([va($0[0]), vb($0[1])], axis: 1) * Tensor.arange(5) }
                let (c, vc) = leaf([3, 3], lb, seed: 3)
                checkGradients([a, c]) { Tensor.concat([va($0[0]), vc($0[1])], axis: 0) * Tensor.arange(3) }
            }
            let (a, va) = leaf([2, 3], la, seed: 4)
            checkGradients([a]) { Tensor.stack([va($0[0]), va($0[0]) * 2], axis: 0) }
        }
    }

    func testMatmul() {
        for la in Layout.allCases {
            for lb in [Layout.contiguous, .transposed] {
                let (a, va) = leaf([3, 4], la, seed: 1)
                let (b, vb) = leaf([4, 5], lb, seed: 2)
                checkGradients([a, b]) { va($0[0]).matmul(vb($0[1])) }
            }
        }
        // Batched with broadcast batch dims, and a 3-D input times a matrix (the folded path).
        let a = Tensor.uniform([2, 1, 3, 4], low: -1, high: 1, seed: 3, requiresGrad: true)
        let b = Tensor.uniform([3, 4, 2], low: -1, high: 1, seed: 4, requiresGrad: true)
        checkGradients([a, b]) { $0[0].matmul($0[1]) }
        checkGradients([b, a]) { $0[0].transposed(-1, -2).matmul($0[1].transposed(-1, -2)) }   // [3,2,4] x [2,1,4,3]
        // The right-hand operand broadcast: a matrix against a batch, and a batch of one expanded (a stride-0 view).
        let batch = Tensor.uniform([3, 2, 4], low: -1, high: 1, seed: 7, requiresGrad: true)
        let right = Tensor.uniform([4, 5], low: -1, high: 1, seed: 8, requiresGrad: true)
        checkGradients([batch, right]) { $0[0].matmul($0[1]) }
        let one = Tensor.uniform([1, 4, 5], low: -1, high: 1, seed: 9, requiresGrad: true)
        checkGradients([batch, one]) { $0[0].matmul($0[1].expand(to: [3, 4, 5])) }
        checkGradients([batch, one]) { $0[0].matmul($0[1].transposed(-1, -2).expand(to: [3, 5, 4]).transposed(-1, -2)) }
        let x = Tensor.uniform([2, 3, 4], low: -1, high: 1, seed: 5, requiresGrad: true)
        let w = Tensor.uniform([5, 4], low: -1, high: 1, seed: 6, requiresGrad: true)
        checkGradients([x, w]) { $0[0].matmul($0[1].transposed(0, 1)) }
    }

    /// Index-select (repeated rows), gather on both axes, masked fill and where, each input contiguous, transposed
    /// or broadcast.
    func testIndexingAndMasking() {
        let mask = Tensor([1, 0, 0, 1], shape: [4])
        for layout in Layout.allCases {
            let (table, vt) = leaf([5, 3], layout, seed: 1)
            checkGradients([table]) { vt($0[0]).indexSelect(IntTensor([1, 4, 1, 0], shape: [2, 2])) }
            let (x, vx) = leaf([3, 4], layout, seed: 2)
            checkGradients([x]) { vx($0[0]).gather(axis: 1, indices: IntTensor([0, 3, 2, 2, 1, 1], shape: [3, 2])) }
            checkGradients([x]) { vx($0[0]).gather(axis: 0, indices: IntTensor([2, 0, 1, 1], shape: [1, 4])) }
            checkGradients([x]) { vx($0[0]).maskedFill(mask, -3) }
            for other in Layout.allCases {
                let (y, vy) = leaf([3, 4], other, seed: 3)
                checkGradients([x, y]) { Tensor.where(mask, vx($0[0]), vy($0[1])) }
            }
        }
    }

    /// Rotary pairs: the op against its definition (each pair rotated by its angle), and its gradient, over a
    /// batch of two so the batch offset of the tables is covered.
    func testRotaryPairs() {
        let (t, h, d) = (3, 2, 4)
        var cos2 = [Float](), sin2 = [Float]()
        for p in 0..<t {
            for i in 0..<d / 2 {
                let angle = Float(p + 1) * Float(i + 1) * 0.7
                cos2 += [cos(angle), cos(angle)]
                sin2 += [-sin(angle), sin(angle)]
            }
        }
        let x = Tensor.uniform([2, t, h, d], low: -1, high: 1, seed: 7, requiresGrad: true)
        let y = x.rotaryPairs(cos2: cos2, sin2: sin2).toArray(), xs = x.toArray()
        for b in 0..<2 { for p in 0..<t { for k in 0..<h { for i in 0..<d / 2 {
            let base = ((b * t + p) * h + k) * d + 2 * i
            let angle = Float(p + 1) * Float(i + 1) * 0.7
            XCTAssertEqual(y[base], xs[base] * cos(angle) - xs[base + 1] * sin(angle), accuracy: 1e-5)
            XCTAssertEqual(y[base + 1], xs[base] * sin(angle) + xs[base + 1] * cos(angle), accuracy: 1e-5)
        } } } }
        for layout in Layout.allCases {
            let (leafX, view) = leaf([2, t, h, d], layout, seed: 8)
            checkGradients([leafX]) { view($0[0]).rotaryPairs(cos2: cos2, sin2: sin2) * Tensor.arange(d) }
        }
    }

    /// Causal softmax equals masking above the diagonal with -infinity and a softmax, for square scores and for
    /// fewer queries than keys (the queries are the last positions); its gradient checks out.
    func testCausalSoftmax() {
        for (tq, tk) in [(4, 4), (2, 5), (1, 3)] {
            let x = Tensor.uniform([2, tq, tk], low: -3, high: 3, seed: UInt64(tq * 10 + tk), requiresGrad: true)
            var mask = [Float](repeating: 0, count: tq * tk)
            for i in 0..<tq { for j in 0..<tk where j > i + tk - tq { mask[i * tk + j] = 1 } }
            let reference = x.maskedFill(Tensor(mask, shape: [tq, tk]), -.infinity).softmax(axis: -1).toArray()
            let y = x.causalSoftmax()
            XCTAssertEqual(y.shape, x.shape)
            XCTAssertEqual(reference.count, x.count)
            for (a, b) in zip(y.toArray(), reference) { XCTAssertEqual(a, b, accuracy: 1e-6) }
            for layout in Layout.allCases {
                let (leafX, view) = leaf([2, tq, tk], layout, seed: UInt64(tq * 10 + tk), low: -3, high: 3)
                checkGradients([leafX]) { view($0[0]).causalSoftmax() * Tensor.arange(tk) }
            }
        }
    }

    /// SwiGLU equals silu(gate) * up on both signs and large magnitudes; gradients in both inputs.
    func testSwiGLU() {
        let a = Tensor([-12, -3, -0.5, 0, 0.5, 3, 12, 1.5], shape: [2, 4], requiresGrad: true)
        let b = Tensor.uniform([2, 4], low: -2, high: 2, seed: 9, requiresGrad: true)
        let swiglu = Tensor.swiglu(gate: a, up: b)
        XCTAssertEqual(swiglu.shape, a.shape)
        for (x, y) in zip(swiglu.toArray(), (a.silu() * b).toArray()) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        for la in Layout.allCases {
            for lb in Layout.allCases {
                let (a2, va) = leaf([3, 5], la, seed: 10, low: -4, high: 4), (b2, vb) = leaf([3, 5], lb, seed: 11, low: -2, high: 2)
                checkGradients([a2, b2]) { Tensor.swiglu(gate: va($0[0]), up: vb($0[1])) }
            }
        }
    }

    func testFusedLayerNormGradients() {
        for layout in Layout.allCases {
            let (x, view) = leaf([3, 4], layout, seed: 1)
            // The weight and bias through the same layout (broadcast: one value expanded to the width).
            let (w, vw) = leaf([4], layout, seed: 2, low: 0.5, high: 1.5), (b, vb) = leaf([4], layout, seed: 3)
            checkGradients([x, w, b]) { view($0[0]).layerNorm(weight: vw($0[1]), bias: vb($0[2]), eps: 1e-5) }
            checkGradients([x, w]) { view($0[0]).layerNorm(weight: vw($0[1]), bias: nil, eps: 1e-5) }
            checkGradients([x, w]) { view($0[0]).rmsNorm(weight: vw($0[1]), eps: 1e-5) }
        }
        // rmsNorm equals its composition (the formula Llama and T5 state).
        let x = Tensor.uniform([5, 7], low: -2, high: 2, seed: 4)
        let w = Tensor.uniform([7], low: -1.5, high: 1.5, seed: 5)
        let composed = x * ((x * x).mean(axes: [-1], keepDims: true) + 1e-6).rsqrt() * w
        let fused = x.rmsNorm(weight: w, eps: 1e-6)
        XCTAssertEqual(fused.shape, x.shape)
        XCTAssertEqual(composed.shape, x.shape)
        for (a, b) in zip(fused.toArray(), composed.toArray()) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    /// The fused softmax cross-entropy: its gradient by central differences and its value against a Double
    /// computation, on every SIMD level, for rows wider than the kernels' 32-, 16- and 8-lane loops with a ragged end,
    /// a dropped row (weight 0), unequal row weights, label smoothing on and off, and logits up to +-90 (the
    /// log-sum-exp must subtract the row's maximum).
    func testSoftmaxCrossEntropy() {
        let targets: [Int32] = [0, 44, 17, 3], weights: [Float] = [1, 0, 0.5, 2]
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            for epsilon: Float in [0, 0.2] {
                let x = Tensor.uniform([4, 45], low: -3, high: 3, seed: 7, requiresGrad: true)
                checkGradients([x]) { $0[0].softmaxCrossEntropy(targets: targets, weights: weights, labelSmoothing: epsilon, scale: 0.7) }
                for spread: Float in [1, 30] {
                    let values = x.toArray().map { $0 * spread }
                    var expected = 0.0
                    for r in 0..<4 {
                        let row = values[(r * 45)..<(r * 45 + 45)].map(Double.init), m = row.max()!
                        let lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
                        let term = lse - Double(1 - epsilon) * row[Int(targets[r])] - Double(epsilon) * row.reduce(0, +) / 45
                        expected += Double(weights[r]) * term
                    }
                    let got = Tensor(values, shape: [4, 45]).softmaxCrossEntropy(targets: targets, weights: weights, labelSmoothing: epsilon, scale: 0.7)
                    XCTAssertEqual(Double(got.item), 0.7 * expected, accuracy: 1e-5 * Swift.max(1, abs(expected)), "spread \(spread), epsilon \(epsilon), \(level.name)")
                }
            }
        } }
    }

    /// Convolution (input and weight each contiguous, transposed in H and W, or broadcast over the batch / output
    /// channels), pooling and upsampling on the same three layouts.
    func testConvolutionAndPooling() {
        for lx in Layout.allCases {
            for lw in Layout.allCases {
                let (x, vx) = leaf([2, 2, 5, 5], lx, seed: 1), (w, vw) = leaf([3, 2, 3, 3], lw, seed: 2)
                let (b, vb) = leaf([3], lw, seed: 3)
                checkGradients([x, w, b]) { vx($0[0]).conv2d(weight: vw($0[1]), bias: vb($0[2]), stride: 1, padding: 1) }
                checkGradients([x, w]) { vx($0[0]).conv2d(weight: vw($0[1]), stride: 2, padding: 0) }
            }
        }
        // Distinct values keep max pooling away from ties; the transposed and broadcast views keep them distinct
        // within each window.
        let values = (0..<32).map { Float(($0 * 7) % 32) / 10 }
        let img = Tensor(values, shape: [1, 2, 4, 4], requiresGrad: true)
        let transposedImage = Tensor(values, shape: [1, 2, 4, 4], requiresGrad: true)
        let broadcastImage = Tensor(Array(values[0..<16]) + Array(values[0..<16]).map { $0 + 0.05 }, shape: [2, 1, 4, 4], requiresGrad: true)
        let views: [(Tensor, (Tensor) -> Tensor)] = [(img, { $0 }), (transposedImage, { $0.transposed(-1, -2) }),
                                                     (broadcastImage, { $0.expand(to: [2, 3, 4, 4]) })]
        for (leafImage, view) in views {
            checkGradients([leafImage]) { view($0[0]).maxPool2d(kernel: 2) }
            checkGradients([leafImage]) { view($0[0]).maxPool2d(kernel: 2, stride: 1) }
            checkGradients([leafImage]) { view($0[0]).avgPool2d(kernel: 2) }
            checkGradients([leafImage]) { view($0[0]).upsampleNearest2d(scale: 2) }
        }
        // Ties: the gradient goes to the first maximum of each window (row-major), as PyTorch routes it.
        let tied = Tensor([1, 1, 0, 2, 1, 1, 2, 2], shape: [1, 1, 2, 4], requiresGrad: true)
        tied.maxPool2d(kernel: 2).sum().backward()
        XCTAssertEqual(tied.grad?.toArray(), [1, 0, 0, 1, 0, 0, 0, 0])
    }

    /// 2 x 2 max pooling on planes wide enough for the vector path (8 outputs at a time) with a ragged end, odd heights
    /// and widths, many ties and both signs: the output, and the gradient routed to the first maximum of each window,
    /// equal direct loops at every SIMD level. Pooling before or after a ReLU gives the same values and gradients
    /// (the CNN classifier pools first).
    func testMaxPoolingMatchesDirectLoopsAndCommutesWithReLU() {
        let (n, c, h, w) = (2, 3, 7, 37)
        let (oh, ow) = (h / 2, w / 2)
        var generator = RandomGenerator(seed: 12)
        let values = (0..<(n * c * h * w)).map { _ in Float(Int(generator.nextUniform() * 7) - 3) }  // -3 ... 3
        let weights = Tensor.uniform([n, c, oh, ow], low: 0.5, high: 1.5, seed: 13)
        var expected = [Float](repeating: 0, count: n * c * oh * ow), expectedGrad = [Float](repeating: 0, count: values.count)
        let wp = weights.toArray()
        for plane in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = -Float.infinity, at = 0
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let i = plane * h * w + (2 * oy + dy) * w + 2 * ox + dx
                        if values[i] > best { best = values[i]; at = i }
                    }
                    let o = (plane * oh + oy) * ow + ox
                    expected[o] = best
                    expectedGrad[at] += wp[o]
                }
            }
        }
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            let x = Tensor(values, shape: [n, c, h, w], requiresGrad: true)
            let y = x.maxPool2d(kernel: 2)
            XCTAssertEqual(y.toArray(), expected, "level \(level)")
            (y * weights).sum().backward()
            XCTAssertEqual(x.grad?.toArray(), expectedGrad, "level \(level)")
            var results: [[Float]] = []
            for poolFirst in [true, false] {
                let z = Tensor(values, shape: [n, c, h, w], requiresGrad: true)
                let out = poolFirst ? z.maxPool2d(kernel: 2).relu() : z.relu().maxPool2d(kernel: 2)
                (out * weights).sum().backward()
                results.append(out.toArray() + z.grad!.toArray())
            }
            XCTAssertEqual(results[0], results[1], "level \(level)")
        } }
    }

    /// Depthwise, grouped and pointwise convolutions with TensorFlow "SAME" padding (asymmetric at stride 2 on even
    /// sizes), in the single-sample path (GEMMs threaded) and the per-sample path, on the AVX2 and portable kernels.
    func testGroupedDepthwiseAndSameConvolutions() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            for batch in [1, 3] {
                let x = Tensor.uniform([batch, 4, 6, 5], low: -1, high: 1, seed: 11, requiresGrad: true)
                let dw3 = Tensor.uniform([4, 1, 3, 3], low: -1, high: 1, seed: 12, requiresGrad: true)
                let dw5 = Tensor.uniform([4, 1, 5, 5], low: -1, high: 1, seed: 13, requiresGrad: true)
                let bias = Tensor.uniform([4], low: -1, high: 1, seed: 14, requiresGrad: true)
                checkGradients([x, dw3, bias]) { $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: .same, groups: 4) }
                checkGradients([x, dw5]) { $0[0].conv2d(weight: $0[1], stride: 1, padding: .same, groups: 4) }
                checkGradients([x, dw3]) { $0[0].conv2d(weight: $0[1], stride: 1, padding: .explicit(top: 0, left: 2, bottom: 1, right: 0), groups: 4) }
                let grouped = Tensor.uniform([6, 2, 3, 3], low: -1, high: 1, seed: 15, requiresGrad: true)
                checkGradients([x, grouped]) { $0[0].conv2d(weight: $0[1], stride: 2, padding: .same, groups: 2) }
                let pointwise = Tensor.uniform([3, 4, 1, 1], low: -1, high: 1, seed: 16, requiresGrad: true)
                checkGradients([x, pointwise]) { $0[0].conv2d(weight: $0[1], stride: 1, padding: .symmetric(0), groups: 1) }
            }
        } }
        // Rows wider than one 8-lane block (21 outputs wide at stride 1, 11 at stride 2: whole blocks and a ragged end),
        // kernels 3 and 5, asymmetric padding, a bias and none: every level gives the portable loops' values, forward
        // and backward (the weight gradient sums 2 x 9 x 21 products, so its bound is 1e-4).
        let wide = Tensor.uniform([2, 3, 9, 21], low: -1, high: 1, seed: 21)
        let cases: [(Int, Int, Conv2dPadding, Bool)] = [(3, 1, .same, true), (5, 2, .same, false),
                                                        (3, 2, .explicit(top: 0, left: 2, bottom: 1, right: 0), true), (5, 1, .symmetric(0), true)]
        for (k, stride, padding, withBias) in cases {
            let weight = Tensor.uniform([3, 1, k, k], low: -1, high: 1, seed: UInt64(22 + k), requiresGrad: true)
            let bias = withBias ? Tensor.uniform([3], low: -1, high: 1, seed: 30) : nil
            let input = wide.detached()
            input.requiresGrad = true
            // The output, and the input's and weight's gradients under a weighting of the outputs.
            func run(_ level: SIMDLevel) -> [[Float]] {
                SIMDLevel.withLimit(level) {
                    input.zeroGrad()
                    weight.zeroGrad()
                    let y = input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, groups: 3)
                    (y * Tensor.uniform(y.shape, low: -1, high: 1, seed: 31)).sum().backward()
                    return [y.toArray(), input.grad!.toArray(), weight.grad!.toArray()]
                }
            }
            // A frozen filter (no weight gradient asked for, as style transfer runs) gives the input the same gradient.
            func frozenInputGradient(_ level: SIMDLevel) -> [Float] {
                SIMDLevel.withLimit(level) {
                    input.zeroGrad()
                    let y = input.conv2d(weight: weight.detached(), bias: bias, stride: stride, padding: padding, groups: 3)
                    (y * Tensor.uniform(y.shape, low: -1, high: 1, seed: 31)).sum().backward()
                    return input.grad!.toArray()
                }
            }
            let expected = run(.portable)
            for level in SIMDLevel.available {
                let frozen = frozenInputGradient(level)
                XCTAssertLessThan(zip(frozen, expected[1]).map { abs($0 - $1) }.max()!, 1e-4, "frozen filter, kernel \(k), level \(level)")
                for (name, (got, want)) in zip(["output", "input gradient", "weight gradient"], zip(run(level), expected)) {
                    XCTAssertEqual(got.count, want.count)
                    let worst = zip(got, want).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(worst, 1e-4, "\(name), kernel \(k), stride \(stride), \(padding), level \(level)")
                }
            }
        }
        // The input, depthwise weight and bias transposed (H and W swapped) or broadcast over the batch / channels.
        for layout in [Layout.transposed, .broadcast] {
            let (x, vx) = leaf([3, 4, 6, 5], layout, seed: 17), (dw, vw) = leaf([4, 1, 3, 3], layout, seed: 18)
            let (bias, vb) = leaf([4], layout, seed: 19)
            checkGradients([x, dw, bias]) { vx($0[0]).conv2d(weight: vw($0[1]), bias: vb($0[2]), stride: 2, padding: .same, groups: 4) }
            let (grouped, vg) = leaf([6, 2, 3, 3], layout, seed: 20)
            checkGradients([x, grouped]) { vx($0[0]).conv2d(weight: vg($0[1]), stride: 1, padding: .same, groups: 2) }
        }
        // SAME keeps ceil(size / stride) and pads the extra zero at the bottom and right.
        let g = Conv2dGeometry(batch: 1, inChannels: 1, height: 224, width: 7, outChannels: 1, kernelHeight: 3, kernelWidth: 5,
                               stride: 2, padding: .same)
        XCTAssertEqual([g.outHeight, g.outWidth, g.padTop, g.padBottom, g.padLeft, g.padRight], [112, 4, 0, 1, 2, 2])
    }

    /// ReLU6 on both sides of both kinks (0 and 6), away from the kinks themselves.
    func testReLU6() {
        let values: [Float] = [-2, -0.5, 0.3, 1, 3, 5.7, 6.3, 9, -0.2, 2, 4, 7]
        let x = Tensor(values, shape: [3, 4], requiresGrad: true)
        checkGradients([x]) { $0[0].relu6() * $0[0] }
        // Through a transposed view and a broadcast row, the same values.
        let transposed = Tensor(values, shape: [4, 3], requiresGrad: true), row = Tensor(Array(values[4..<8]), shape: [1, 4], requiresGrad: true)
        checkGradients([transposed]) { $0[0].transposed(0, 1).relu6() }
        checkGradients([row]) { $0[0].expand(to: [3, 4]).relu6() }
        XCTAssertEqual(Tensor(values, shape: [12]).relu6().toArray(), values.map { min(max($0, 0), 6) })
        let y = Tensor([-1, 0.5, 5.5, 6.5], shape: [4], requiresGrad: true)
        y.relu6().sum().backward()
        XCTAssertEqual(y.grad!.toArray(), [0, 1, 1, 0])
    }

    /// Self-attention composed from primitives, the way the fused op is checked: [B, H, T, T] scores, a mask that
    /// blocks keys past each row (causal) and past each sequence's length, softmax, then the values.
    func composedSelfAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, causal: Bool, lengths: [Int]?) -> Tensor {
        let (b, t, h, hs) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (qh, kh, vh) = (q.permute([0, 2, 1, 3]), k.permute([0, 2, 1, 3]), v.permute([0, 2, 1, 3]))
        var mask = [Float](repeating: 0, count: b * t * t)
        for s in 0..<b {
            for i in 0..<t {
                for j in 0..<t where (causal && j > i) || j >= (lengths?[s] ?? t) { mask[(s * t + i) * t + j] = 1 }
            }
        }
        let scores = (qh * (1 / Float(hs).squareRoot())).matmul(kh.transposed(-2, -1)).maskedFill(Tensor(mask, shape: [b, 1, t, t]), -.infinity)
        return scores.softmax(axis: -1).matmul(vh).permute([0, 2, 1, 3]).contiguous().reshape([b, t, h * hs])
    }

    /// The fused self-attention (`Tensor.selfAttention`) equals the composition to 1e-5, output and all three
    /// gradients, causal or not, with and without padded sequences, at lengths that end inside a kernel block of 64
    /// rows (1, 7, 70, 130) and head sizes that are and are not multiples of 8; gradients also by finite differences.
    func testFusedSelfAttention() {
        defer { attend_set_simd_limit(-1) }
        for level in 0...attend_simd_cpu_level() {  // the GEMM's kernels at every SIMD level this CPU has
        attend_set_simd_limit(level)
        for (t, h, hs) in [(1, 2, 8), (7, 3, 5), (70, 2, 16), (130, 1, 8)] {
            for causal in [true, false] {
                for lengths in [nil, [t, Swift.max(1, t / 2 + 1)]] as [[Int]?] {
                    let q = Tensor.randn([2, t, h, hs], seed: 1, requiresGrad: true), k = Tensor.randn([2, t, h, hs], seed: 2, requiresGrad: true)
                    let v = Tensor.randn([2, t, h, hs], seed: 3, requiresGrad: true)
                    let weights = Tensor.uniform([2, t, h * hs], low: -1, high: 1, seed: 4)
                    var results: [[[Float]]] = []
                    for fused in [true, false] {
                        for x in [q, k, v] { x.zeroGrad() }
                        let y = fused ? Tensor.selfAttention(query: q, key: k, value: v, causal: causal, keyLengths: lengths)
                                      : composedSelfAttention(q, k, v, causal: causal, lengths: lengths)
                        XCTAssertEqual(y.shape, [2, t, h * hs])
                        (y * weights).sum().backward()
                        results.append([y.toArray()] + [q, k, v].map { $0.grad!.toArray() })
                    }
                    for (name, (a, b)) in zip(["output", "dq", "dk", "dv"], zip(results[0], results[1])) {
                        let worst = zip(a, b).map { Swift.abs($0 - $1) }.max() ?? 0
                        XCTAssertLessThan(worst, 1e-5, "\(name), T \(t), H \(h), hs \(hs), causal \(causal), lengths \(lengths ?? []), SIMD \(level)")
                    }
                }
            }
        }
        }
        for causal in [true, false] {
            for layout in Layout.allCases {
                let (q, vq) = leaf([2, 5, 2, 3], layout, seed: 5, low: -2, high: 2), (k, vk) = leaf([2, 5, 2, 3], layout, seed: 6, low: -2, high: 2)
                let (v, vv) = leaf([2, 5, 2, 3], layout, seed: 7)
                checkGradients([q, k, v]) { Tensor.selfAttention(query: vq($0[0]), key: vk($0[1]), value: vv($0[2]), causal: causal, keyLengths: [5, 3]) }
            }
        }
    }

    /// The packed self-attention (queries, keys and values side by side in one [B, T, 3C] projection, as
    /// `MultiHeadAttention` trains) equals the op over three tensors, output and gradient, to 1e-6: the gradient's
    /// three column blocks are dq, dk and dv. Also by finite differences.
    func testPackedSelfAttention() {
        for (t, h, hs) in [(1, 2, 8), (7, 3, 5), (70, 2, 16)] {
            for causal in [true, false] {
                for lengths in [nil, [t, Swift.max(1, t / 2 + 1)]] as [[Int]?] {
                    let c = h * hs
                    let qkv = Tensor.randn([2, t, 3 * c], seed: 11, requiresGrad: true)
                    let weights = Tensor.uniform([2, t, c], low: -1, high: 1, seed: 12)
                    let packed = Tensor.selfAttention(packed: qkv, heads: h, causal: causal, keyLengths: lengths)
                    (packed * weights).sum().backward()
                    let parts = (0..<3).map { qkv.detached().slice(axis: 2, start: $0 * c, length: c).contiguous().reshape([2, t, h, hs]) }
                    for p in parts { p.requiresGrad = true }
                    let separate = Tensor.selfAttention(query: parts[0], key: parts[1], value: parts[2], causal: causal, keyLengths: lengths)
                    (separate * weights).sum().backward()
                    let joined = Tensor.concat(parts.map { $0.grad!.reshape([2, t, c]) }, axis: 2)
                    let context = "T \(t), H \(h), hs \(hs), causal \(causal), lengths \(lengths ?? [])"
                    XCTAssertEqual(packed.shape, [2, t, c])
                    XCTAssertLessThan(zip(packed.toArray(), separate.toArray()).map { Swift.abs($0 - $1) }.max()!, 1e-6, "output, \(context)")
                    XCTAssertLessThan(zip(qkv.grad!.toArray(), joined.toArray()).map { Swift.abs($0 - $1) }.max()!, 1e-6, "gradient, \(context)")
                }
            }
        }
        for causal in [true, false] {
            let qkv = Tensor.uniform([2, 5, 18], low: -2, high: 2, seed: 13, requiresGrad: true)
            checkGradients([qkv]) { Tensor.selfAttention(packed: $0[0], heads: 2, causal: causal, keyLengths: [5, 3]) }
        }
    }
}
