// Image quality: multi-scale structural similarity (Wang, Simoncelli & Bovik 2003), as pytorch-msssim and
// TensorFlow compute it: an 11-tap Gaussian window (sigma 1.5) applied without padding, five scales halved by 2x2
// averaging, the contrast-structure terms of the first four and the full SSIM of the last, weighted by
// (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), per channel and averaged; odd sides padded before halving.

import Foundation

public enum ImageQuality {
    static let weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]

    /// MS-SSIM of two images of the same size (each side at least 161 pixels), on 0-255 values; 1 is identical.
    ///
    /// ```swift
    /// let score = ImageQuality.msssim(try Image.read("decoded.png"), try Image.read("original.png"))
    /// ```
    public static func msssim(_ a: Image, _ b: Image) -> Double {
        precondition(a.width == b.width && a.height == b.height && a.channels == b.channels, "msssim: images differ in size")
        precondition(min(a.width, a.height) > 160, "msssim needs sides over 160 pixels (five scales and an 11-pixel window)")
        let plane = a.width * a.height
        var total = 0.0
        for c in 0..<a.channels {
            var x = a.pixels[(c * plane)..<((c + 1) * plane)].map { Double($0) * 255 }
            var y = b.pixels[(c * plane)..<((c + 1) * plane)].map { Double($0) * 255 }
            var (w, h) = (a.width, a.height)
            var score = 1.0
            for level in 0..<5 {
                let (ssim, cs) = ssimTerms(x, y, w, h)
                score *= pow(max(level == 4 ? ssim : cs, 0), weights[level])
                if level < 4 {
                    let (nx, nw, nh) = downsample(x, w, h)
                    y = downsample(y, w, h).0
                    (x, w, h) = (nx, nw, nh)
                }
            }
            total += score
        }
        return total / Double(a.channels)
    }

    /// 2x2 average pooling as pytorch-msssim does it: an odd side is padded by one zero on both ends
    /// (`avg_pool2d(padding=size % 2)`, zeros counted in the average).
    static func downsample(_ v: [Double], _ w: Int, _ h: Int) -> ([Double], Int, Int) {
        let (px, py) = (w % 2, h % 2)
        let (ow, oh) = ((w + 2 * px - 2) / 2 + 1, (h + 2 * py - 2) / 2 + 1)
        var out = [Double](repeating: 0, count: ow * oh)
        for y in 0..<oh {
            for x in 0..<ow {
                var s = 0.0
                for iy in (2 * y - py)...(2 * y - py + 1) where iy >= 0 && iy < h {
                    for ix in (2 * x - px)...(2 * x - px + 1) where ix >= 0 && ix < w { s += v[iy * w + ix] }
                }
                out[y * ow + x] = s / 4
            }
        }
        return (out, ow, oh)
    }

    static let window: [Double] = {
        let g = (0..<11).map { exp(-pow(Double($0 - 5), 2) / (2 * 1.5 * 1.5)) }
        let s = g.reduce(0, +)
        return g.map { $0 / s }
    }()

    /// Gaussian filtering without padding ("valid"): rows then columns.
    static func blur(_ v: [Double], _ w: Int, _ h: Int) -> [Double] {
        let (ow, oh) = (w - 10, h - 10)
        var rows = [Double](repeating: 0, count: ow * h)
        for y in 0..<h {
            for x in 0..<ow {
                var s = 0.0
                for k in 0..<11 { s += window[k] * v[y * w + x + k] }
                rows[y * ow + x] = s
            }
        }
        var out = [Double](repeating: 0, count: ow * oh)
        for y in 0..<oh {
            for x in 0..<ow {
                var s = 0.0
                for k in 0..<11 { s += window[k] * rows[(y + k) * ow + x] }
                out[y * ow + x] = s
            }
        }
        return out
    }

    /// Mean SSIM and mean contrast-structure term over the valid window positions.
    static func ssimTerms(_ x: [Double], _ y: [Double], _ w: Int, _ h: Int) -> (Double, Double) {
        let c1 = (0.01 * 255.0) * (0.01 * 255.0), c2 = (0.03 * 255.0) * (0.03 * 255.0)
        let mx = blur(x, w, h), my = blur(y, w, h)
        let xx: [Double] = x.map { $0 * $0 }, yy: [Double] = y.map { $0 * $0 }
        let xy: [Double] = zip(x, y).map { $0.0 * $0.1 }
        let sxx = blur(xx, w, h), syy = blur(yy, w, h), sxy = blur(xy, w, h)
        var (ssim, cs) = (0.0, 0.0)
        for i in 0..<mx.count {
            let (vx, vy, cov) = (sxx[i] - mx[i] * mx[i], syy[i] - my[i] * my[i], sxy[i] - mx[i] * my[i])
            let c = (2 * cov + c2) / (vx + vy + c2)
            cs += c
            ssim += (2 * mx[i] * my[i] + c1) / (mx[i] * mx[i] + my[i] * my[i] + c1) * c
        }
        return (ssim / Double(mx.count), cs / Double(mx.count))
    }
}
