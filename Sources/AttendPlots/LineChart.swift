// Line charts (loss curves) as PNG: axes, series in distinct colours, and min/max tick values drawn with a
// built-in 3x5 pixel digit font (no font files needed).

import Foundation

/// A line chart (loss curves) drawn into an `RGBImage`: axes, one colour per series, min and max ticks.
///
/// ```swift
/// let chart = LineChart(series: [
///     .init(points: history.map { (Double($0.iteration), Double($0.trainLoss)) }, color: (31, 119, 180)),
///     .init(points: history.map { (Double($0.iteration), Double($0.validationLoss)) }, color: (255, 127, 14)),
/// ])
/// try chart.render().writePNG(to: "loss.png")
/// ```
public struct LineChart {
    public struct Series {
        public var points: [(x: Double, y: Double)]
        public var color: (UInt8, UInt8, UInt8)
        public init(points: [(x: Double, y: Double)], color: (UInt8, UInt8, UInt8)) {
            self.points = points
            self.color = color
        }
    }

    public var series: [Series] = []
    public var width = 640
    public var height = 400

    public init(series: [Series] = []) { self.series = series }

    /// 3x5 glyphs for digits and '.', one row per 3-bit number (high bit = left column).
    static let glyphs: [Character: [UInt8]] = [
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7], "4": [5, 5, 7, 1, 1],
        "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
        ".": [0, 0, 0, 0, 2], "-": [0, 0, 7, 0, 0],
    ]

    static func drawText(_ s: String, x: Int, y: Int, scale: Int = 2, on image: inout RGBImage) {
        for (k, ch) in s.enumerated() {
            guard let rows = glyphs[ch] else { continue }
            for (r, bits) in rows.enumerated() {
                for c in 0..<3 where bits & (4 >> UInt8(c)) != 0 {
                    for dy in 0..<scale { for dx in 0..<scale { image.set(x + (4 * k + c) * scale + dx, y + r * scale + dy, (0, 0, 0)) } }
                }
            }
        }
    }

    /// An x-axis end: whole numbers (steps) as integers, others (bits per pixel) with two decimals, so that a
    /// range of 0.19-1.19 is not labelled 0-1.
    static func axisLabel(_ value: Double) -> String {
        value == value.rounded() && Swift.abs(value) < 1e15 ? String(Int(value)) : String(format: "%.2f", value)
    }

    public func render() -> RGBImage {
        var image = RGBImage(width: width, height: height)
        let (left, right, top, bottom) = (70, 20, 20, 40)
        let all = series.flatMap(\.points)
        guard let minX = all.map(\.x).min(), let maxX = all.map(\.x).max(),
              let minY = all.map(\.y).min(), let maxY = all.map(\.y).max() else { return image }
        let spanX = max(maxX - minX, 1e-9), spanY = max(maxY - minY, 1e-9)
        func px(_ x: Double) -> Int { left + Int((x - minX) / spanX * Double(width - left - right)) }
        func py(_ y: Double) -> Int { height - bottom - Int((y - minY) / spanY * Double(height - top - bottom)) }
        for x in left...(width - right) { image.set(x, height - bottom, (0, 0, 0)) }
        for y in top...(height - bottom) { image.set(left, y, (0, 0, 0)) }
        LineChart.drawText(String(format: "%.3f", maxY), x: 4, y: top - 4, on: &image)
        LineChart.drawText(String(format: "%.3f", minY), x: 4, y: height - bottom - 6, on: &image)
        LineChart.drawText(LineChart.axisLabel(minX), x: left, y: height - bottom + 8, on: &image)
        let maxLabel = LineChart.axisLabel(maxX)
        LineChart.drawText(maxLabel, x: width - right - 8 * maxLabel.count, y: height - bottom + 8, on: &image)
        for s in series {
            for (a, b) in zip(s.points, s.points.dropFirst()) {
                // Bresenham between consecutive points, 2 pixels thick.
                var (x0, y0) = (px(a.x), py(a.y))
                let (x1, y1) = (px(b.x), py(b.y))
                let (dx, dy) = (abs(x1 - x0), -abs(y1 - y0))
                let (sx, sy) = (x0 < x1 ? 1 : -1, y0 < y1 ? 1 : -1)
                var err = dx + dy
                while true {
                    image.set(x0, y0, s.color); image.set(x0, y0 + 1, s.color)
                    if x0 == x1 && y0 == y1 { break }
                    let e2 = 2 * err
                    if e2 >= dy { err += dy; x0 += sx }
                    if e2 <= dx { err += dx; y0 += sy }
                }
            }
        }
        return image
    }
}
