// 2-D convolution by im2col + GEMM, and pooling / upsampling for images in NCHW layout.

import CAttendKernels
import Foundation

/// Sizes of one conv2d call, fixed at forward time and reused by the backward pass. Padding may differ per side
/// (TensorFlow's "SAME" pads one more at the bottom and right when the total is odd); `groups` splits the channels
/// into independent convolutions (groups == inChannels == outChannels is a depthwise convolution).
public struct Conv2dGeometry {
    public let batch: Int, inChannels: Int, height: Int, width: Int
    public let outChannels: Int, kernelHeight: Int, kernelWidth: Int
    public let stride: Int
    public let padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public let groups: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernelHeight: Int, kernelWidth: Int,
                stride: Int, padding: Conv2dPadding, groups: Int = 1) {
        (self.batch, self.inChannels, self.height, self.width) = (batch, inChannels, height, width)
        (self.outChannels, self.kernelHeight, self.kernelWidth, self.stride, self.groups) = (outChannels, kernelHeight, kernelWidth, stride, groups)
        let (t, l, b, r) = padding.amounts(height: height, width: width, kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride)
        (padTop, padLeft, padBottom, padRight) = (t, l, b, r)
    }

    public var outHeight: Int { (height + padTop + padBottom - kernelHeight) / stride + 1 }
    public var outWidth: Int { (width + padLeft + padRight - kernelWidth) / stride + 1 }
    /// Input channels one output channel sees.
    var groupChannels: Int { inChannels / groups }
    var groupOutChannels: Int { outChannels / groups }
    var patchSize: Int { groupChannels * kernelHeight * kernelWidth }
    var outPixels: Int { outHeight * outWidth }
    var isDepthwise: Bool { groups > 1 && groups == inChannels && outChannels == inChannels }
    /// A 1 x 1, stride-1, unpadded convolution reads its input as the GEMM's right-hand matrix as it is.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
    }
}

/// How a convolution pads its input.
public enum Conv2dPadding: Equatable {
    /// The same number of zeros on every side.
    case symmetric(Int)
    /// TensorFlow's "SAME": the output is ceil(input / stride), the total padding split with the extra zero at the
    /// bottom and right (what EfficientNet's and MobileNet's TensorFlow weights were trained with).
    case same
    /// Explicit amounts.
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    func amounts(height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int) -> (Int, Int, Int, Int) {
        switch self {
        case .symmetric(let p): return (p, p, p, p)
        case .explicit(let t, let l, let b, let r): return (t, l, b, r)
        case .same:
            func split(_ size: Int, _ k: Int) -> (Int, Int) {
                let out = (size + stride - 1) / stride
                let total = Swift.max((out - 1) * stride + k - size, 0)
                return (total / 2, total - total / 2)
            }
            let (t, b) = split(height, kernelHeight), (l, r) = split(width, kernelWidth)
            return (t, l, b, r)
        }
    }
}

enum Convolution {
    /// Unfolds `channels` planes of one image into columns [channels*KH*KW, OH*OW] (zero outside the padded border),
    /// row r at cols + r * ld.
    static func im2col(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, _ cols: UnsafeMutablePointer<Float>, channels: Int, ld: Int? = nil) {
        attend_im2col(x, channels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.stride, g.padTop, g.padLeft,
                      g.outHeight, g.outWidth, cols, ld ?? g.outPixels)
    }

    /// Folds columns back into `channels` planes, adding overlapping contributions (adjoint of im2col).
    static func col2im(_ cols: UnsafePointer<Float>, _ g: Conv2dGeometry, _ x: UnsafeMutablePointer<Float>, channels: Int, ld: Int? = nil) {
        attend_col2im(cols, ld ?? g.outPixels, channels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.stride, g.padTop,
                      g.padLeft, g.outHeight, g.outWidth, x)
    }

    /// Runs `body(sampleRange, columnsBuffer, threadIndex, gemmThreads)` over the batch. With at least as many samples
    /// as threads each thread takes whole samples (one-thread GEMMs); with fewer, samples run one after another and
    /// each GEMM uses every thread, so a single image still uses all cores.
    static func perSample(_ g: Conv2dGeometry, _ body: (Range<Int>, UnsafeMutablePointer<Float>, Int, Int) -> Void) {
        let needsColumns = !g.isPointwise
        let columns = needsColumns ? g.patchSize * g.outPixels : 1
        if g.batch < Parallel.threads {
            let cols = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            defer { cols.deallocate() }
            body(0..<g.batch, cols, 0, Parallel.threads)
            return
        }
        let parts = Swift.min(Parallel.threads, g.batch)
        Parallel.forChunks(parts) { p in
            let lo = g.batch * p / parts, hi = g.batch * (p + 1) / parts
            let cols = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            defer { cols.deallocate() }
            body(lo..<hi, cols, p, 1)
        }
    }

    /// Parts the backward pass accumulates weight gradients into (one per thread that takes whole samples).
    static func backwardParts(_ g: Conv2dGeometry) -> Int { g.batch < Parallel.threads ? 1 : Swift.min(Parallel.threads, g.batch) }

    static func forward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ g: Conv2dGeometry) -> Tensor {
        let xc = x.contiguous(), wc = w.contiguous()
        let out = Tensor(contiguousStorage: TensorStorage(count: g.batch * g.outChannels * g.outPixels, zeroed: false),
                         shape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        let xp = xc.pointer, wp = wc.pointer, op = out.pointer
        let bias = b?.contiguous()
        if g.isDepthwise {
            let bp = bias.map { UnsafePointer($0.pointer) }
            Parallel.forRanges(g.inChannels, costPerItem: g.batch * g.outPixels * g.kernelHeight * g.kernelWidth) { channels in
                attend_depthwise_forward(xp, wp, bp, op, g.batch, g.inChannels, channels.lowerBound, channels.upperBound, g.height, g.width,
                                         g.kernelHeight, g.kernelWidth, g.stride, g.padTop, g.padLeft, g.outHeight, g.outWidth)
            }
            return out
        }
        let (cg, og) = (g.groupChannels, g.groupOutChannels)
        perSample(g) { samples, cols, _, threads in
            for n in samples {
                for group in 0..<g.groups {
                    let input = xp + (n * g.inChannels + group * cg) * g.height * g.width
                    let b: UnsafePointer<Float>
                    if g.isPointwise { b = UnsafePointer(input) } else { im2col(input, g, cols, channels: cg); b = UnsafePointer(cols) }
                    let o = op + (n * g.outChannels + group * og) * g.outPixels
                    Gemm.sgemm(transA: false, transB: false, m: og, n: g.outPixels, k: g.patchSize, alpha: 1,
                               a: wp + group * og * g.patchSize, lda: g.patchSize, b: b, ldb: g.outPixels, beta: 0, c: o,
                               ldc: g.outPixels, threads: threads)
                }
                if let bp = bias?.pointer {
                    let o = op + n * g.outChannels * g.outPixels
                    for oc in 0..<g.outChannels {
                        let v = bp[oc], row = o + oc * g.outPixels
                        for i in 0..<g.outPixels { row[i] += v }
                    }
                }
            }
        }
        return out
    }

    static func backward(_ gradOut: Tensor, input x: Tensor, weight w: Tensor, geometry g: Conv2dGeometry,
                         needInput: Bool, needWeight: Bool = true) -> (Tensor?, Tensor?, Tensor) {
        let go = gradOut.contiguous(), xc = x.contiguous(), wc = w.contiguous()
        let dx = needInput ? Tensor.zeros(x.shape) : nil
        let gp = go.pointer, xp = xc.pointer, wp = wc.pointer, dxp = dx?.pointer
        // The bias gradient sums each output plane straight from the gradient (sum(axes: [0, 2, 3]) would first copy it
        // into a permuted layout).
        let db = Tensor.zeros([g.outChannels])
        let dbp = db.pointer
        for n in 0..<g.batch {
            for oc in 0..<g.outChannels {
                let plane = gp + (n * g.outChannels + oc) * g.outPixels
                var lanes = SIMD8<Float>(), i = 0
                while i + 8 <= g.outPixels {
                    lanes += UnsafeRawPointer(plane + i).loadUnaligned(as: SIMD8<Float>.self)
                    i += 8
                }
                var s = lanes.sum()
                while i < g.outPixels { s += plane[i]; i += 1 }
                dbp[oc] += s
            }
        }
        if g.isDepthwise {
            // A frozen filter (style transfer, a locked tower) needs no dW: the kernel skips it on a null pointer.
            let dw = needWeight ? Tensor.zeros(w.shape) : nil
            let dwp = dw?.pointer
            Parallel.forRanges(g.inChannels, costPerItem: g.batch * g.outPixels * g.kernelHeight * g.kernelWidth * 2) { channels in
                attend_depthwise_backward(xp, wp, gp, dxp, dwp, g.batch, g.inChannels, channels.lowerBound, channels.upperBound,
                                          g.height, g.width, g.kernelHeight, g.kernelWidth, g.stride, g.padTop, g.padLeft,
                                          g.outHeight, g.outWidth)
            }
            return (dx, dw, db)
        }
        let parts = backwardParts(g)
        let dwParts = Tensor.zeros(needWeight ? [parts, g.outChannels, g.patchSize] : [1])
        let dwp = dwParts.pointer
        let (cg, og) = (g.groupChannels, g.groupOutChannels)
        perSample(g) { samples, cols, p, threads in
            let dcols = UnsafeMutablePointer<Float>.allocate(capacity: g.patchSize * g.outPixels)
            defer { dcols.deallocate() }
            for n in samples {
                for group in 0..<g.groups {
                    let gn = gp + (n * g.outChannels + group * og) * g.outPixels
                    let input = xp + (n * g.inChannels + group * cg) * g.height * g.width
                    if needWeight {
                        let b: UnsafePointer<Float>
                        if g.isPointwise { b = UnsafePointer(input) } else { im2col(input, g, cols, channels: cg); b = UnsafePointer(cols) }
                        // dW_group += dOut [og, P] x cols^T [P, cg*KK]
                        Gemm.sgemm(transA: false, transB: true, m: og, n: g.patchSize, k: g.outPixels, alpha: 1,
                                   a: gn, lda: g.outPixels, b: b, ldb: g.outPixels, beta: 1,
                                   c: dwp + p * g.outChannels * g.patchSize + group * og * g.patchSize, ldc: g.patchSize, threads: threads)
                    }
                    if let dxp {
                        // dcols = W_group^T [cg*KK, og] x dOut [og, P], folded back into the image.
                        let target = dxp + (n * g.inChannels + group * cg) * g.height * g.width
                        if g.isPointwise {
                            Gemm.sgemm(transA: true, transB: false, m: g.patchSize, n: g.outPixels, k: og, alpha: 1,
                                       a: wp + group * og * g.patchSize, lda: g.patchSize, b: gn, ldb: g.outPixels, beta: 1,
                                       c: target, ldc: g.outPixels, threads: threads)
                        } else {
                            Gemm.sgemm(transA: true, transB: false, m: g.patchSize, n: g.outPixels, k: og, alpha: 1,
                                       a: wp + group * og * g.patchSize, lda: g.patchSize, b: gn, ldb: g.outPixels, beta: 0,
                                       c: dcols, ldc: g.outPixels, threads: threads)
                            col2im(dcols, g, target, channels: cg)
                        }
                    }
                }
            }
        }
        let dw = needWeight ? dwParts.sum(axes: [0]).reshape(w.shape) : nil
        return (dx, dw, db)
    }
}

enum Pooling {
    static func maxPoolBackward(_ g: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        let dx = Tensor.zeros(inputShape)
        let gc = g.contiguous()
        let planeIn = inputShape[2] * inputShape[3], planeOut = g.shape[2] * g.shape[3]
        let dp = dx.pointer, gp = gc.pointer
        argmax.withUnsafeBufferPointer { am in
            Parallel.forRanges(inputShape[0] * inputShape[1], costPerItem: planeIn) { planes in
                for plane in planes {
                    for i in 0..<planeOut {
                        dp[plane * planeIn + Int(am[plane * planeOut + i])] += gp[plane * planeOut + i]
                    }
                }
            }
        }
        return dx
    }

    static func avgPoolBackward(_ g: Tensor, inputShape: [Int], kernel k: Int, stride s: Int) -> Tensor {
        let dx = Tensor.zeros(inputShape)
        let gc = g.contiguous()
        let (h, w, oh, ow) = (inputShape[2], inputShape[3], g.shape[2], g.shape[3])
        let dp = dx.pointer, gp = gc.pointer
        let scale = 1 / Float(k * k)
        for plane in 0..<(inputShape[0] * inputShape[1]) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let v = gp[(plane * oh + oy) * ow + ox] * scale
                    for ki in 0..<k {
                        for kj in 0..<k { dp[(plane * h + oy * s + ki) * w + ox * s + kj] += v }
                    }
                }
            }
        }
        return dx
    }

    static func upsampleNearestBackward(_ g: Tensor, scale: Int) -> Tensor {
        let (n, c, h, w) = (g.shape[0], g.shape[1], g.shape[2], g.shape[3])
        return g.reshape([n, c, h / scale, scale, w / scale, scale]).sum(axes: [3, 5])
    }
}

extension Tensor {
    /// 2-D convolution. Input [N, C, H, W], weight [O, C / groups, KH, KW], bias [O]; output [N, O, OH, OW].
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
        conv2d(weight: weight, bias: bias, stride: stride, padding: .symmetric(padding), groups: 1)
    }

    /// 2-D convolution with any padding and groups (groups == C == O is depthwise).
    ///
    /// ```swift
    /// let x = Tensor.randn([1, 32, 112, 112], seed: 0)
    /// let depthwise = Tensor.randn([32, 1, 3, 3], seed: 1)
    /// let y = x.conv2d(weight: depthwise, stride: 2, padding: .same, groups: 32)   // [1, 32, 56, 56]
    /// ```
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int, padding: Conv2dPadding, groups: Int) -> Tensor {
        precondition(rank == 4 && weight.rank == 4, "conv2d needs input [N, C, H, W] and weight [O, C/groups, KH, KW], got \(shape) and \(weight.shape)")
        precondition(stride >= 1 && groups >= 1, "conv2d: stride \(stride) and groups \(groups) must be at least 1")
        precondition(shape[1] % groups == 0 && weight.shape[0] % groups == 0,
                     "conv2d: \(groups) groups must divide the input's \(shape[1]) and the output's \(weight.shape[0]) channels")
        precondition(shape[1] / groups == weight.shape[1], "conv2d: input has \(shape[1]) channels in \(groups) groups, weight \(weight.shape) expects \(weight.shape[1]) per group")
        let g = Conv2dGeometry(batch: shape[0], inChannels: shape[1], height: shape[2], width: shape[3],
                               outChannels: weight.shape[0], kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
                               stride: stride, padding: padding, groups: groups)
        precondition(g.padTop >= 0 && g.padLeft >= 0 && g.padBottom >= 0 && g.padRight >= 0, "conv2d: negative padding \(padding)")
        precondition(g.height + g.padTop + g.padBottom >= g.kernelHeight && g.width + g.padLeft + g.padRight >= g.kernelWidth,
                     "conv2d: kernel \(weight.shape) does not fit input \(shape) with padding \(padding)")
        if let bias { precondition(bias.shape == [g.outChannels], "conv2d: bias shape \(bias.shape) should be [\(g.outChannels)]") }
        let out = Convolution.forward(self, weight, bias, g)
        return out.recording(.conv2d(g), inputs: bias.map { [self, weight, $0] } ?? [self, weight])
    }

    /// Max pooling over k x k windows (stride defaults to k), no padding.
    public func maxPool2d(kernel k: Int, stride: Int? = nil) -> Tensor {
        let s = stride ?? k
        precondition(rank == 4, "maxPool2d needs [N, C, H, W], got \(shape)")
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1)
        let xc = contiguous()
        let out = Tensor(contiguousStorage: TensorStorage(count: n * c * oh * ow, zeroed: false), shape: [n, c, oh, ow])
        var argmax = [Int32](repeating: 0, count: out.count)
        let xp = xc.pointer, op = out.pointer
        argmax.withUnsafeMutableBufferPointer { am in
            let amp = am.baseAddress!
            Parallel.forRanges(n * c, costPerItem: h * w) { planes in
                for plane in planes {
                    let src = xp + plane * h * w
                    if k == 2 && s == 2 {
                        // The common case: a C kernel, vectorized (the branches on the data cost more than the work).
                        attend_maxpool2x2(xp, plane, plane + 1, h, w, op, amp)
                        continue
                    }
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var best = -Float.infinity, bi = 0
                            for ki in 0..<k {
                                for kj in 0..<k {
                                    let i = (oy * s + ki) * w + ox * s + kj
                                    if src[i] > best { best = src[i]; bi = i }
                                }
                            }
                            op[(plane * oh + oy) * ow + ox] = best
                            amp[(plane * oh + oy) * ow + ox] = Int32(bi)
                        }
                    }
                }
            }
        }
        return out.recording(.maxPool2d(argmax: argmax), inputs: [self])
    }

    /// Average pooling over k x k windows (stride defaults to k), no padding.
    public func avgPool2d(kernel k: Int, stride: Int? = nil) -> Tensor {
        let s = stride ?? k
        precondition(rank == 4, "avgPool2d needs [N, C, H, W], got \(shape)")
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1)
        let xc = contiguous()
        let out = Tensor(shape: [n, c, oh, ow])
        let xp = xc.pointer, op = out.pointer
        let scale = 1 / Float(k * k)
        for plane in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc: Float = 0
                    for ki in 0..<k { for kj in 0..<k { acc += xp[(plane * h + oy * s + ki) * w + ox * s + kj] } }
                    op[(plane * oh + oy) * ow + ox] = acc * scale
                }
            }
        }
        return out.recording(.avgPool2d(kernel: k, stride: s), inputs: [self])
    }

    /// Nearest-neighbour upsampling by an integer factor.
    public func upsampleNearest2d(scale: Int) -> Tensor {
        precondition(rank == 4 && scale >= 1, "upsampleNearest2d needs [N, C, H, W] and scale >= 1, got \(shape), \(scale)")
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let up = withNoGrad {
            reshape([n, c, h, 1, w, 1]).expand(to: [n, c, h, scale, w, scale]).contiguous().reshape([n, c, h * scale, w * scale])
        }
        return up.recording(.upsampleNearest2d(scale: scale), inputs: [self])
    }
}
