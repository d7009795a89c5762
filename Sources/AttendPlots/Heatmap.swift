// Heatmaps (attention maps) as PNG: one square cell per matrix entry, white (0) to dark blue (maximum).

import AttendTensor

public enum Heatmap {
    /// `matrix` [rows, cols] scaled by its maximum; `cell` pixels per entry, with a 1-pixel grid.
    public static func render(_ matrix: Tensor, cell: Int = 16) -> RGBImage {
        precondition(matrix.rank == 2, "Heatmap needs a matrix, got shape \(matrix.shape)")
        let (rows, cols) = (matrix.shape[0], matrix.shape[1])
        let values = matrix.toArray()
        let top = max(values.max() ?? 1, 1e-12)
        var image = RGBImage(width: cols * cell + 1, height: rows * cell + 1, background: (200, 200, 200))
        for r in 0..<rows {
            for c in 0..<cols {
                let t = Double(max(0, values[r * cols + c]) / top)
                let color = (UInt8(255 - t * 247), UInt8(255 - t * 207), UInt8(255 - t * 148))
                for y in 1..<cell { for x in 1..<cell { image.set(c * cell + x, r * cell + y, color) } }
            }
        }
        return image
    }
}
