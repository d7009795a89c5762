// Heatmaps (attention maps) as PNG: one square cell per matrix entry, white (0) to dark blue (maximum),
// optionally with labels (tokens) along the rows and columns in the built-in pixel font.

import AttendTensor

/// Matrices (attention maps) as images: one cell per entry, white at 0 to dark blue at the maximum.
///
/// ```swift
/// let image = Heatmap.render(weights, cell: 20, rowLabels: ["a", "b"], columnLabels: ["x", "y", "z"])   // weights [2, 3]
/// try image.writePNG(to: "attention.png")
/// ```
public enum Heatmap {
    /// `matrix` [rows, cols] scaled by its maximum; `cell` pixels per entry, with a 1-pixel grid.
    /// `rowLabels` are written left of the rows, `columnLabels` above the columns (bottom to top), and
    /// `title` above everything. Labels longer than `maxLabel` characters are cut with "~".
    public static func render(_ matrix: Tensor, cell: Int = 16, rowLabels: [String]? = nil, columnLabels: [String]? = nil,
                              title: String? = nil, maxLabel: Int = 16) -> RGBImage {
        precondition(matrix.rank == 2, "Heatmap needs a matrix, got shape \(matrix.shape)")
        let (rows, cols) = (matrix.shape[0], matrix.shape[1])
        precondition(rowLabels == nil || rowLabels!.count == rows, "Heatmap: \(rowLabels!.count) row labels for \(rows) rows")
        precondition(columnLabels == nil || columnLabels!.count == cols, "Heatmap: \(columnLabels!.count) column labels for \(cols) columns")
        func cut(_ s: String) -> String { s.count > maxLabel ? String(s.prefix(maxLabel - 1)) + "~" : s }
        let rowText = rowLabels?.map(cut), colText = columnLabels?.map(cut)
        // The font is drawn at 1x for cells under 18 pixels, else 2x; a cell must fit one line of text.
        let scale = cell >= 18 ? 2 : 1
        let pad = 4
        let left = rowText.map { ($0.map { PixelFont.width($0, scale: scale) }.max() ?? 0) + 2 * pad } ?? 0
        let titleHeight = title == nil ? 0 : PixelFont.glyphHeight * scale + 2 * pad
        let top = titleHeight + (colText.map { ($0.map { PixelFont.width($0, scale: scale) }.max() ?? 0) + 2 * pad } ?? 0)
        let values = matrix.toArray()
        let peak = max(values.max() ?? 1, 1e-12)
        let titleWidth = title.map { PixelFont.width($0, scale: scale) + 2 * pad } ?? 0
        var image = RGBImage(width: max(left + cols * cell + 1, titleWidth), height: top + rows * cell + 1)
        for y in top..<image.height { for x in left...(left + cols * cell) { image.set(x, y, (200, 200, 200)) } }
        for r in 0..<rows {
            for c in 0..<cols {
                let t = Double(max(0, values[r * cols + c]) / peak)
                let color = (UInt8(255 - t * 247), UInt8(255 - t * 207), UInt8(255 - t * 148))
                for y in 1..<cell { for x in 1..<cell { image.set(left + c * cell + x, top + r * cell + y, color) } }
            }
        }
        let textHeight = PixelFont.glyphHeight * scale
        if let title { PixelFont.draw(title, x: pad, y: pad, scale: scale, on: &image) }
        if let rowText {
            for (r, label) in rowText.enumerated() {
                PixelFont.draw(label, x: left - pad - PixelFont.width(label, scale: scale), y: top + r * cell + (cell - textHeight) / 2 + 1,
                               scale: scale, on: &image)
            }
        }
        if let colText {
            for (c, label) in colText.enumerated() {
                PixelFont.drawVertical(label, x: left + c * cell + (cell - textHeight) / 2 + 1, y: top - pad, scale: scale, on: &image)
            }
        }
        return image
    }
}
