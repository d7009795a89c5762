// Transformer blocks, convolution and losses against PyTorch (scripts/reference/make_nn_fixtures.py made the
// fixtures in float64 and stored them as float32). Tolerance: 1e-4 absolute on outputs and gradients.

@testable import AttendNN
import AttendTensor
import AttendTestSupport
import Foundation
import XCTest

func fixture(_ name: String) throws -> Safetensors.File {
    guard let url = Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures") else {
        throw AttendError("fixture \(name) is missing")
    }
    return try Safetensors.read(url.path)
}

final class ReferenceTests: XCTestCase {
    /// Loads "param.NAME" tensors into the module, runs `forward`, back-propagates sum(output * loss_weights),
    /// and compares output, input gradients and every parameter gradient with the fixture.
    func check(_ module: Module, fixture f: Safetensors.File, inputs: [String], _ forward: ([String: Tensor]) -> Tensor) throws {
        var params: [String: Tensor] = [:]
        for (name, t) in f.tensors where name.hasPrefix("param.") { params[String(name.dropFirst(6))] = t }
        try module.load(params, source: "fixture")
        XCTAssertEqual(Set(module.namedParameters().map(\.name)), Set(params.keys), "parameter names match PyTorch's")
        var xs: [String: Tensor] = [:]
        for name in inputs {
            let t = f.tensors[name]!.copy()
            t.requiresGrad = f.tensors["grad." + name] != nil
            xs[name] = t
        }
        let out = forward(xs)
        assertClose(out, f.tensors["output"]!, "output")
        (out * f.tensors["loss_weights"]!).sum().backward()
        for (name, x) in xs where x.requiresGrad { assertClose(x.grad!, f.tensors["grad." + name]!, "grad \(name)") }
        for (name, p) in module.namedParameters() { assertClose(p.grad!, f.tensors["grad." + name]!, "grad \(name)") }
    }

    func testPostNormEncoderBlockWithPaddingMaskMatchesPyTorch() throws {
        let f = try fixture("encoder_block")
        var g = RandomGenerator(seed: 1)
        let block = TransformerEncoderBlock(TransformerBlockConfig(dimension: 8, headCount: 2, hiddenDimension: 16,
                                                                   activation: .gelu, preNorm: false), generator: &g)
        let mask = f.tensors["mask"]!
        try check(block, fixture: f, inputs: ["input"]) { block($0["input"]!, mask: mask) }
        // The same padding as key lengths ([5, 3]: the mask blocks the last two keys of the second sequence) takes the
        // fused self-attention op instead of the masked composition; PyTorch's values hold for it too.
        let lengths = (0..<mask.shape[0]).map { b in (0..<mask.shape[3]).filter { mask.toArray()[b * mask.shape[3] + $0] == 0 }.count }
        XCTAssertEqual(lengths, [5, 3])
        block.zeroGrad()
        try check(block, fixture: f, inputs: ["input"]) { block($0["input"]!, keyLengths: lengths) }
    }

    /// `firstPositions(n, of:)` (the last layer of a model read at its class token) gives the full block's output at
    /// the first n positions, and the same gradients for the input and every parameter when only those positions are
    /// read, pre-norm and post-norm, with a padding mask and without. The full block is the one checked against
    /// PyTorch above. Shown to fail with the pre-norm queries taken before the norm (output off by 0.016; the ViT
    /// against open_clip, which runs its last layer through this, by 0.079).
    func testFirstPositionsEqualTheFullBlockThere() {
        for preNorm in [true, false] {
            for masked in [false, true] {
                var g = RandomGenerator(seed: 5)
                let block = TransformerEncoderBlock(TransformerBlockConfig(dimension: 8, headCount: 2, hiddenDimension: 16,
                                                                           preNorm: preNorm), generator: &g)
                let x = Tensor.randn([2, 5, 8], generator: &g)
                let weights = Tensor.randn([2, 2, 8], generator: &g)
                let mask = masked ? Attention.paddingMask(lengths: [5, 3], maxLength: 5) : nil
                func run(_ forward: (Tensor) -> Tensor) -> (Tensor, Tensor, [String: Tensor]) {
                    block.zeroGrad()
                    let leaf = x.copy()
                    leaf.requiresGrad = true
                    let out = forward(leaf)
                    (out * weights).sum().backward()
                    return (out.detached(), leaf.grad!, Dictionary(uniqueKeysWithValues: block.namedParameters().map { ($0.name, $0.tensor.grad!.copy()) }))
                }
                let what = "preNorm \(preNorm), masked \(masked)"
                let full = run { block($0, mask: mask).slice(axis: 1, start: 0, length: 2).contiguous() }
                let first = run { block.firstPositions(2, of: $0, mask: mask) }
                assertClose(first.0, full.0, tolerance: 1e-5, "\(what): output")
                assertClose(first.1, full.1, tolerance: 1e-5, "\(what): input gradient")
                for (name, grad) in full.2 { assertClose(first.2[name]!, grad, tolerance: 1e-5, "\(what): gradient of \(name)") }
            }
        }
    }

    func testPreNormDecoderBlockWithCrossAttentionMatchesPyTorch() throws {
        let f = try fixture("decoder_block")
        var g = RandomGenerator(seed: 1)
        let block = TransformerDecoderBlock(TransformerBlockConfig(dimension: 8, headCount: 2, hiddenDimension: 16,
                                                                   activation: .geluTanh, preNorm: true),
                                            encoderDimension: 6, generator: &g)
        try check(block, fixture: f, inputs: ["input", "memory"]) { block($0["input"]!, memory: $0["memory"]!) }
    }

    /// conv2d and max-pool in values and gradients; cross-entropy with label smoothing and ignore-index.
    func testConvolutionPoolingAndCrossEntropyMatchPyTorch() throws {
        let f = try fixture("ops")
        let (x, w, b) = (f.tensors["image"]!, f.tensors["weight"]!, f.tensors["bias"]!)
        // Forward and backward (image, weight and bias gradients of sum(output * weights)) of a strided convolution
        // and of a convolution followed by max-pooling.
        let cases: [(String, (Tensor, Tensor, Tensor) -> Tensor)] = [
            ("conv_stride2_pad1", { $0.conv2d(weight: $1, bias: $2, stride: 2, padding: 1) }),
            ("conv_pad1_maxpool2", { $0.conv2d(weight: $1, bias: $2, padding: 1).maxPool2d(kernel: 2) }),
        ]
        for (name, op) in cases {
            let leaves = [x, w, b].map { t -> Tensor in let c = t.copy(); c.requiresGrad = true; return c }
            let y = op(leaves[0], leaves[1], leaves[2])
            assertClose(y, f.tensors[name]!, "\(name) forward")
            (y * f.tensors["\(name).loss_weights"]!).sum().backward()
            for (leaf, key) in zip(leaves, ["image", "weight", "bias"]) {
                assertClose(leaf.grad!, f.tensors["\(name).grad.\(key)"]!, "\(name) gradient of the \(key)")
            }
        }
        let logits = f.tensors["logits"]!.copy()
        logits.requiresGrad = true
        let targets = IntTensor(f.tensors["targets"]!.toArray().map { Int32($0) }, shape: [6])
        let loss = Loss.crossEntropy(logits: logits, targets: targets, ignoreIndex: -100, labelSmoothing: 0.1)
        XCTAssertEqual(loss.item, f.tensors["cross_entropy_smooth_ignore"]!.item, accuracy: 1e-5)
        loss.backward()
        assertClose(logits.grad!, f.tensors["grad.logits"]!, tolerance: 1e-6, "cross-entropy gradient")
    }
}
