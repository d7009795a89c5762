// 2-D convolution by im2col + GEMM, and pooling / upsampling for images in NCHW layout.

import CAttendKernels
import Foundation

/// Sizes of one conv2d call, fixed at forward time and reused by the backward pass.
public struct Conv2dGeometry {
    public let batch: Int, inChannels: Int, height: Int, width: Int
    public let outChannels: Int, kernelHeight: Int, kernelWidth: Int
    public let stride: Int, padding: Int
    public var outHeight: Int { (height + 2 * padding - kernelHeight) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernelWidth) / stride + 1 }
    var patchSize: Int { inChannels * kernelHeight * kernelWidth }
    var outPixels: Int { outHeight * outWidth }
}

enum Convolution {
    /// Unfolds one image [C, H, W] into columns [C*KH*KW, OH*OW] (zero outside the padded border).
    static func im2col(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, _ cols: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        var row = 0
        for c in 0..<g.inChannels {
            let plane = x + c * g.height * g.width
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let dst = cols + row * oh * ow
                    for oy in 0..<oh {
                        let iy = oy * g.stride - g.padding + ki
                        let line = dst + oy * ow
                        if iy < 0 || iy >= g.height {
                            line.update(repeating: 0, count: ow)
                            continue
                        }
                        let src = plane + iy * g.width
                        let (lo, hi) = validColumns(g, kj)
                        if lo > 0 { line.update(repeating: 0, count: lo) }
                        if hi < ow { (line + hi).update(repeating: 0, count: ow - hi) }
                        if g.stride == 1 {
                            if hi > lo { (line + lo).update(from: src + lo - g.padding + kj, count: hi - lo) }
                        } else {
                            for ox in lo..<hi { line[ox] = src[ox * g.stride - g.padding + kj] }
                        }
                    }
                    row += 1
                }
            }
        }
    }

    /// Output columns ox whose input column ox * stride - padding + kj lies inside the image.
    @inline(__always)
    static func validColumns(_ g: Conv2dGeometry, _ kj: Int) -> (Int, Int) {
        let first = g.padding - kj  // smallest ox * stride that is in range
        let lo = first <= 0 ? 0 : (first + g.stride - 1) / g.stride
        let last = g.width - 1 + g.padding - kj  // largest ox * stride in range
        let hi = last < 0 ? 0 : Swift.min(g.outWidth, last / g.stride + 1)
        return (Swift.min(lo, hi), hi)
    }

    /// Folds columns back into an image, adding overlapping contributions (adjoint of im2col).
    static func col2im(_ cols: UnsafePointer<Float>, _ g: Conv2dGeometry, _ x: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        var row = 0
        for c in 0..<g.inChannels {
            let plane = x + c * g.height * g.width
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let src = cols + row * oh * ow
                    for oy in 0..<oh {
                        let iy = oy * g.stride - g.padding + ki
                        if iy < 0 || iy >= g.height { continue }
                        let dst = plane + iy * g.width
                        let (lo, hi) = validColumns(g, kj)
                        let line = src + oy * ow
                        for ox in lo..<hi { dst[ox * g.stride - g.padding + kj] += line[ox] }
                    }
                    row += 1
                }
            }
        }
    }

    /// Runs `body(sampleRange, columnsBuffer, threadIndex)` over the batch, one scratch buffer per thread.
    static func perSample(_ g: Conv2dGeometry, _ body: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void) {
        let parts = Swift.min(Parallel.threads, g.batch)
        Parallel.forChunks(parts) { p in
            let lo = g.batch * p / parts, hi = g.batch * (p + 1) / parts
            let cols = UnsafeMutablePointer<Float>.allocate(capacity: g.patchSize * g.outPixels)
            defer { cols.deallocate() }
            body(lo..<hi, cols, p)
        }
    }

    static func forward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ g: Conv2dGeometry) -> Tensor {
        let xc = x.contiguous(), wc = w.contiguous()
        let out = Tensor(contiguousStorage: TensorStorage(count: g.batch * g.outChannels * g.outPixels, zeroed: false),
                         shape: [g.batch, g.outChannels, g.outHeight, g.outWidth])
        let xp = xc.pointer, wp = wc.pointer, op = out.pointer
        let bias = b?.contiguous()
        perSample(g) { samples, cols, _ in
            for n in samples {
                im2col(xp + n * g.inChannels * g.height * g.width, g, cols)
                let o = op + n * g.outChannels * g.outPixels
                Gemm.sgemm(transA: false, transB: false, m: g.outChannels, n: g.outPixels, k: g.patchSize, alpha: 1,
                              a: wp, lda: g.patchSize, b: cols, ldb: g.outPixels, beta: 0, c: o, ldc: g.outPixels, threads: 1)
                if let bp = bias?.pointer {
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
                         needInput: Bool) -> (Tensor?, Tensor, Tensor) {
        let go = gradOut.contiguous(), xc = x.contiguous(), wc = w.contiguous()
        let dx = needInput ? Tensor.zeros(x.shape) : nil
        let parts = Swift.min(Parallel.threads, g.batch)
        let dwParts = Tensor.zeros([parts, g.outChannels, g.patchSize])
        let gp = go.pointer, xp = xc.pointer, wp = wc.pointer, dxp = dx?.pointer, dwp = dwParts.pointer
        perSample(g) { samples, cols, p in
            let dcols = UnsafeMutablePointer<Float>.allocate(capacity: g.patchSize * g.outPixels)
            defer { dcols.deallocate() }
            for n in samples {
                let gn = gp + n * g.outChannels * g.outPixels
                im2col(xp + n * g.inChannels * g.height * g.width, g, cols)
                // dW += dOut_n [O, P] x cols^T [P, CKK]
                Gemm.sgemm(transA: false, transB: true, m: g.outChannels, n: g.patchSize, k: g.outPixels, alpha: 1,
                              a: gn, lda: g.outPixels, b: cols, ldb: g.outPixels, beta: 1,
                              c: dwp + p * g.outChannels * g.patchSize, ldc: g.patchSize, threads: 1)
                if let dxp {
                    // dcols = W^T [CKK, O] x dOut_n [O, P], folded back into the image.
                    Gemm.sgemm(transA: true, transB: false, m: g.patchSize, n: g.outPixels, k: g.outChannels, alpha: 1,
                                  a: wp, lda: g.patchSize, b: gn, ldb: g.outPixels, beta: 0, c: dcols, ldc: g.outPixels, threads: 1)
                    col2im(dcols, g, dxp + n * g.inChannels * g.height * g.width)
                }
            }
        }
        let dw = dwParts.sum(axes: [0]).reshape(w.shape)
        let db = go.sum(axes: [0, 2, 3])
        return (dx, dw, db)
    }
}

enum Pooling {
    static func maxPoolBackward(_ g: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        let dx = Tensor.zeros(inputShape)
        let gc = g.contiguous()
        let planeIn = inputShape[2] * inputShape[3], planeOut = g.shape[2] * g.shape[3]
        let dp = dx.pointer, gp = gc.pointer
        for plane in 0..<(inputShape[0] * inputShape[1]) {
            for i in 0..<planeOut {
                dp[plane * planeIn + Int(argmax[plane * planeOut + i])] += gp[plane * planeOut + i]
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
    /// 2-D convolution. Input [N, C, H, W], weight [O, C, KH, KW], bias [O]; output [N, O, OH, OW].
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
        precondition(rank == 4 && weight.rank == 4, "conv2d needs input [N, C, H, W] and weight [O, C, KH, KW], got \(shape) and \(weight.shape)")
        precondition(shape[1] == weight.shape[1], "conv2d: input has \(shape[1]) channels, weight \(weight.shape) expects \(weight.shape[1])")
        let g = Conv2dGeometry(batch: shape[0], inChannels: shape[1], height: shape[2], width: shape[3],
                               outChannels: weight.shape[0], kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
                               stride: stride, padding: padding)
        precondition(g.outHeight > 0 && g.outWidth > 0, "conv2d: kernel \(weight.shape) does not fit input \(shape) with padding \(padding)")
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
                        // The common case, unrolled: four candidates per output.
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                let i0 = 2 * oy * w + 2 * ox
                                var best = src[i0], bi = i0
                                if src[i0 + 1] > best { best = src[i0 + 1]; bi = i0 + 1 }
                                if src[i0 + w] > best { best = src[i0 + w]; bi = i0 + w }
                                if src[i0 + w + 1] > best { best = src[i0 + w + 1]; bi = i0 + w + 1 }
                                op[(plane * oh + oy) * ow + ox] = best
                                amp[(plane * oh + oy) * ow + ox] = Int32(bi)
                            }
                        }
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
