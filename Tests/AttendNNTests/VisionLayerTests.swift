// Grouped, depthwise and pointwise convolutions with TensorFlow "SAME" padding, and BatchNorm2d in training and
// evaluation, against PyTorch (scripts/reference/make_vision_fixtures.py; float64 there, stored as float32).
// Tolerance 1e-4 absolute on outputs and gradients.

import AttendNN
import AttendTensor
import AttendTestSupport
import Foundation
import XCTest

final class VisionLayerTests: XCTestCase {
    func testGroupedAndDepthwiseSameConvolutionsMatchPyTorch() throws {
        let f = try fixture("vision_layers")
        for (name, stride, groups) in [("depthwise3_s2", 2, 6), ("depthwise5_s1", 1, 6), ("grouped3_s2", 2, 3), ("pointwise", 1, 1)] {
            let x = f.tensors["input"]!.copy(), w = f.tensors["\(name).weight"]!.copy(), b = f.tensors["\(name).bias"]!.copy()
            for t in [x, w, b] { t.requiresGrad = true }
            let y = x.conv2d(weight: w, bias: b, stride: stride, padding: .same, groups: groups)
            assertClose(y, f.tensors["\(name).output"]!, name)
            (y * f.tensors["\(name).loss_weights"]!).sum().backward()
            assertClose(x.grad!, f.tensors["\(name).grad_input"]!, "\(name) input gradient")
            assertClose(w.grad!, f.tensors["\(name).grad_weight"]!, "\(name) weight gradient")
            assertClose(b.grad!, f.tensors["\(name).grad_bias"]!, "\(name) bias gradient")
        }
    }

    func testBatchNormTrainingEvaluationAndFoldingMatchPyTorch() throws {
        let f = try fixture("vision_layers")
        let bn = BatchNorm2d(6, eps: 1e-3, momentum: 0.1)
        bn.weight.assign(f.tensors["bn.param.weight"]!)
        bn.bias.assign(f.tensors["bn.param.bias"]!)
        bn.runningMean.assign(f.tensors["bn.running_mean_before"]!)
        bn.runningVar.assign(f.tensors["bn.running_var_before"]!)
        let x = f.tensors["input"]!.copy()
        x.requiresGrad = true
        let y = bn(x)
        assertClose(y, f.tensors["bn.output"]!, "training output")
        (y * f.tensors["bn.loss_weights"]!).sum().backward()
        assertClose(x.grad!, f.tensors["bn.grad_input"]!, "input gradient")
        assertClose(bn.weight.grad!, f.tensors["bn.grad_weight"]!, "weight gradient")
        assertClose(bn.bias.grad!, f.tensors["bn.grad_bias"]!, "bias gradient")
        assertClose(bn.runningMean, f.tensors["bn.running_mean_after"]!, tolerance: 1e-5, "running mean")
        assertClose(bn.runningVar, f.tensors["bn.running_var_after"]!, tolerance: 1e-5, "running variance (unbiased)")
        bn.eval()
        let evaluated = withNoGrad { bn(x) }
        assertClose(evaluated, f.tensors["bn.eval_output"]!, "evaluation output")
        // Folding into the convolution before it gives the same as convolution then normalization.
        let w = f.tensors["grouped3_s2.weight"]!, b = f.tensors["grouped3_s2.bias"]!
        let bn9 = BatchNorm2d(9, eps: 1e-3)
        bn9.weight.assign(Tensor.uniform([9], low: 0.5, high: 1.5, seed: 3))
        bn9.bias.assign(Tensor.uniform([9], low: -1, high: 1, seed: 4))
        bn9.runningMean.assign(Tensor.uniform([9], low: -1, high: 1, seed: 5))
        bn9.runningVar.assign(Tensor.uniform([9], low: 0.2, high: 2, seed: 6))
        bn9.eval()
        let (fw, fb) = bn9.folded(convolutionWeight: w, bias: b)
        withNoGrad {
            let separate = bn9(x.conv2d(weight: w, bias: b, stride: 2, padding: .same, groups: 3))
            assertClose(x.conv2d(weight: fw, bias: fb, stride: 2, padding: .same, groups: 3), separate, tolerance: 1e-5, "folded")
        }
    }
}
