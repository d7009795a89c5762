@testable import AttendPlots
import AttendTensor
import XCTest

final class FontTests: XCTestCase {
    func testEveryGlyphIsFiveBySevenAndDistinct() {
        XCTAssertEqual(PixelFont.glyphs.count, 95, "U+0020 ... U+007E")
        for (i, g) in PixelFont.glyphs.enumerated() {
            let rows = g.split(separator: "/")
            XCTAssertEqual(rows.count, 7, "glyph \(i + 32)")
            XCTAssertTrue(rows.allSatisfy { $0.count == 5 && $0.allSatisfy { $0 == "#" || $0 == "." } }, "glyph \(i + 32)")
        }
        XCTAssertEqual(Set(PixelFont.rows).count, 95, "no two characters look the same")
    }

    func testDrawnTextHasTheGlyphPixels() {
        var image = RGBImage(width: 20, height: 9)
        PixelFont.draw("T", x: 1, y: 1, on: &image)
        func ink(_ x: Int, _ y: Int) -> Bool { image.pixels[3 * (y * image.width + x)] == 0 }
        XCTAssertTrue((1...5).allSatisfy { ink($0, 1) }, "T's bar")
        XCTAssertTrue((1...7).allSatisfy { ink(3, $0) }, "T's stem")
        XCTAssertFalse(ink(1, 4))
        XCTAssertEqual(PixelFont.width("abc", scale: 2), 34)
    }

    func testLabelledHeatmapMakesRoomForLabels() {
        let m = Tensor([0, 1, 0.5, 0.25, 1, 0], shape: [2, 3])
        let plain = Heatmap.render(m, cell: 10)
        XCTAssertEqual(plain.width, 31)
        XCTAssertEqual(plain.height, 21)
        let labelled = Heatmap.render(m, cell: 10, rowLabels: ["out", "x"], columnLabels: ["a", "bb", "ccc"])
        XCTAssertEqual(labelled.width, 31 + PixelFont.width("out") + 8)
        XCTAssertEqual(labelled.height, 21 + PixelFont.width("ccc") + 8)
    }
}
