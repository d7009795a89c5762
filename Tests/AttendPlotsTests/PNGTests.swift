@testable import AttendPlots
import Foundation
import XCTest

final class PNGTests: XCTestCase {
    func testPNGStructureAndPixelsRoundTripThroughPython() throws {
        var image = RGBImage(width: 3, height: 2)
        image.set(1, 0, (255, 0, 0))
        image.set(2, 1, (0, 0, 255))
        let data = try image.pngData()
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(String(decoding: data[12..<16], as: UTF8.self), "IHDR")
        XCTAssertEqual(String(decoding: data.suffix(8).prefix(4), as: UTF8.self), "IEND")
        // Decode with Python's zlib (an independent inflater) and check the pixel rows.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("attend-\(ProcessInfo.processInfo.processIdentifier).png").path
        try image.writePNG(to: path)
        let script = """
        import struct, sys, zlib
        d = open(sys.argv[1], 'rb').read(); i = 8; idat = b''
        while i < len(d):
            n, = struct.unpack('>I', d[i:i+4]); t = d[i+4:i+8]; body = d[i+8:i+8+n]
            assert zlib.crc32(t + body) == struct.unpack('>I', d[i+8+n:i+12+n])[0]
            if t == b'IDAT': idat += body
            i += 12 + n
        print(zlib.decompress(idat).hex())
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        p.waitUntilExit()
        let hex = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(hex, "00" + "ffffff" + "ff0000" + "ffffff" + "00" + "ffffff" + "ffffff" + "0000ff")
    }

    /// Steps are labelled as integers, fractional ends (a rate-distortion curve's bits per pixel) with decimals.
    func testAxisLabelsKeepFractions() {
        XCTAssertEqual(LineChart.axisLabel(200), "200")
        XCTAssertEqual(LineChart.axisLabel(0), "0")
        XCTAssertEqual(LineChart.axisLabel(0.19), "0.19")
        XCTAssertEqual(LineChart.axisLabel(1.187), "1.19")
        XCTAssertEqual(LineChart.axisLabel(-2.5), "-2.50")
    }

    func testLossCurveRendersLines() {
        let chart = LineChart(series: [.init(points: [(0, 3), (100, 2), (200, 1.5)], color: (31, 119, 180))])
        let image = chart.render()
        let blue = stride(from: 0, to: image.pixels.count, by: 3).filter { image.pixels[$0] == 31 && image.pixels[$0 + 2] == 180 }.count
        XCTAssertGreaterThan(blue, 500)
    }
}
