// PNG and JPEG decoding against Pillow's, resizing against Pillow's, round trips through the encoders, and the
// errors bad files must give (scripts/reference/make_vision_fixtures.py made the fixtures).

import AttendTensor
@testable import AttendVision
import Foundation
import XCTest

func visionFixture(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(name).path
}

final class ImageTests: XCTestCase {
    struct Expected: Decodable {
        let width: Int, height: Int, channels: Int, scale: Float
        let planes: [[Int]]
        var image: Image {
            Image(width: width, height: height, channels: channels, pixels: planes.flatMap { $0.map { Float($0) / scale } })
        }
    }

    lazy var expected: [String: Expected] = {
        try! JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: URL(fileURLWithPath: visionFixture("images_expected.json"))))
    }()

    /// Largest difference in levels (1/255 or 1/65535 steps) between two images of the same size.
    func levels(_ a: Image, _ b: Image, scale: Float = 255) -> Float {
        XCTAssertEqual([a.width, a.height, a.channels], [b.width, b.height, b.channels])
        return zip(a.pixels, b.pixels).map { abs($0 - $1) * scale }.max() ?? .infinity
    }

    func testPNGVariantsDecodeAsPillowDoes() throws {
        for name in ["rgb8.png", "rgba8.png", "grey8.png", "greyalpha8.png", "palette.png", "bilevel.png", "rgb16.png",
                     "grey16-interlaced.png", "rgb8-interlaced.png"] {
            let want = expected[name]!
            let got = try Image.read(visionFixture(name))
            XCTAssertLessThan(levels(got, want.image, scale: want.scale), 0.01, name)  // exact, up to float rounding
        }
    }

    func testJPEGVariantsDecodeAsPillowDoes() throws {
        // Debian's libjpeg-turbo 2.1 and the 3.x in Pillow's wheel share the integer IDCT and upsampling; one level is
        // allowed for a difference between their versions.
        // cmyk.jpg is Adobe's inverted CMYK, as Pillow writes it; the expected values are Pillow's RGB conversion.
        for name in ["baseline.jpg", "progressive.jpg", "grey.jpg", "cmyk.jpg"] {
            let got = try Image.read(visionFixture(name))
            XCTAssertLessThanOrEqual(levels(got, expected[name]!.image), 1.001, name)
        }
        XCTAssertEqual(try Image.read(visionFixture("grey.jpg")).channels, 1)
        XCTAssertEqual(try Image.read(visionFixture("cmyk.jpg")).channels, 3)
    }

    func testResizeIsWithinOneLevelOfPillow() throws {
        let source = try Image.read(visionFixture("chelsea-crop.png"))
        for (w, h, filter) in [(19, 14, Image.Filter.bicubic), (19, 14, .bilinear), (100, 75, .bicubic), (31, 50, .bilinear), (7, 5, .nearest), (48, 13, .bicubic)] {
            let key = "resize-\(w)x\(h)-\(filter.rawValue)"
            let got = source.resized(width: w, height: h, filter: filter)
            let worst = levels(got, expected[key]!.image)
            XCTAssertLessThanOrEqual(worst, 1.001, key)
            // Most samples agree exactly; a one-level difference comes only from Pillow's fixed-point rounding.
            let exact = zip(got.pixels, expected[key]!.image.pixels).filter { abs($0 - $1) * 255 < 0.01 }.count
            XCTAssertGreaterThan(Double(exact) / Double(got.pixels.count), 0.97, key)
        }
    }

    func testEncodersRoundTrip() throws {
        let source = try Image.read(visionFixture("chelsea-crop.png"))
        XCTAssertEqual(try Image.decode(try source.pngData(), source: "png"), source)
        let sixteen = try Image.read(visionFixture("rgb16.png"))
        XCTAssertLessThan(levels(try Image.decode(try sixteen.pngData(bitDepth: 16), source: "png16"), sixteen, scale: 65535), 0.01)
        // JPEG is lossy: quality 95 stays close, quality 10 is smaller and further.
        let high = try source.jpegData(quality: 95), low = try source.jpegData(quality: 10)
        XCTAssertLessThan(low.count, high.count)
        let decoded = try Image.decode(high, source: "jpeg")
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [source.width, source.height, source.channels])
        let meanError = zip(decoded.pixels, source.pixels).map { abs($0 - $1) }.reduce(0, +) / Float(source.pixels.count)
        XCTAssertLessThan(meanError, 0.02)
        XCTAssertTrue(try Image.decode(try source.jpegData(quality: 80, progressive: true), source: "p").pixels.count == source.pixels.count)
        // Geometry: flips are their own inverse, crops take the right pixels.
        XCTAssertEqual(source.flippedHorizontally().flippedHorizontally(), source)
        XCTAssertEqual(source.flippedVertically().flippedVertically(), source)
        XCTAssertEqual(source.flippedHorizontally().pixels[0], source.pixels[source.width - 1])
        let crop = source.cropped(x: 5, y: 3, width: 4, height: 2)
        XCTAssertEqual(crop.pixels[source.width * 0 + 1], source.pixels[3 * source.width + 6])
        XCTAssertEqual(source.centerCropped(width: 46, height: 36), source.cropped(x: 1, y: 0, width: 46, height: 36))
    }

    func testBadFilesGiveErrorsNamingTheFile() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: visionFixture("rgb8.png")))
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: visionFixture("baseline.jpg")))
        for (data, name) in [(good, "rgb8.png"), (jpeg, "baseline.jpg")] {
            for length in 0..<data.count {
                XCTAssertThrowsError(try Image.decode(data.prefix(length), source: "cut-\(name)")) { error in
                    XCTAssertTrue("\(error)".hasPrefix("cut-\(name): "), "\(error)")
                }
            }
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<500 {
                var corrupt = data
                corrupt[Int.random(in: 0..<data.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                _ = try? Image.decode(corrupt, source: name)  // an error or an image, never a crash
            }
        }
        XCTAssertThrowsError(try Image.decode(Data("hello".utf8), source: "notes.txt")) { error in
            XCTAssertEqual("\(error)", "notes.txt: not an image Attend reads (PNG or JPEG), judged by its first bytes")
        }
        XCTAssertThrowsError(try Image.read("/nonexistent/cat.png")) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    /// 100,000 x 100,000 pixels declared in a header of a few bytes: refused before anything is allocated.
    func testHugeDeclaredSizesAreRefusedBeforeAllocating() throws {
        var png = try Data(contentsOf: URL(fileURLWithPath: visionFixture("rgb8.png")))
        // IHDR's width and height sit at bytes 16-23; the CRC no longer matches, so patch it too.
        png.replaceSubrange(16..<24, with: [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0])
        let crc = crc32(png[12..<29])
        png.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 255), UInt8(crc >> 8 & 255), UInt8(crc & 255)])
        XCTAssertThrowsError(try Image.decode(png, source: "bomb.png")) { error in
            XCTAssertTrue("\(error)".contains("declares 100000 x 100000 pixels"), "\(error)")
        }
        var jpeg = try Data(contentsOf: URL(fileURLWithPath: visionFixture("baseline.jpg")))
        // The baseline frame header (FFC0): length (2), precision (1), height (2), width (2).
        let sof = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0xEA, 0x60, 0xEA, 0x60])
        XCTAssertThrowsError(try Image.decode(jpeg, source: "bomb.jpg")) { error in
            XCTAssertTrue("\(error)".contains("declares 60000 x 60000 pixels"), "\(error)")
        }
    }

    func crc32(_ bytes: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }

    func testImageFolderAndCaptions() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("attend-folder-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (cls, files) in [("dog", ["b.png", "a.jpg"]), ("cat", ["c.PNG"]), ("empty", [])] {
            try FileManager.default.createDirectory(atPath: root + "/" + cls, withIntermediateDirectories: true)
            for f in files { try FileManager.default.copyItem(atPath: visionFixture("rgb8.png"), toPath: "\(root)/\(cls)/\(f)") }
        }
        let folder = try ImageFolder(root)
        XCTAssertEqual(folder.classes, ["cat", "dog"])
        XCTAssertEqual(folder.samples.map { ($0.path as NSString).lastPathComponent }, ["c.PNG", "a.jpg", "b.png"])
        XCTAssertEqual(folder.samples.map(\.label), [0, 1, 1])
        try "dog/a.jpg\ta small dog\n\n# comment\ncat/c.PNG\tthe cat\n".write(toFile: root + "/pairs.tsv", atomically: true, encoding: .utf8)
        XCTAssertEqual(try ImageCaptions(root + "/pairs.tsv").pairs.map(\.caption), ["a small dog", "the cat"])
        try "dog/a.jpg\tfine\nmissing.png\tgone\n".write(toFile: root + "/bad.tsv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ImageCaptions(root + "/bad.tsv")) { XCTAssertTrue("\($0)".contains("bad.tsv:2: image 'missing.png' does not exist"), "\($0)") }
        try "dog/a.jpg no tab\n".write(toFile: root + "/bad.tsv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ImageCaptions(root + "/bad.tsv")) { XCTAssertTrue("\($0)".contains("bad.tsv:1: expected"), "\($0)") }
    }

    /// Alpha blending by hand: out = a * picture + (1 - a) * backdrop, inside the backdrop only.
    func testCompositingBlendsByAlphaAndCutsAtTheEdges() {
        // 2 x 2 RGBA: alpha 0, 0.5 / 1, 0.25.
        let stamp = Image(width: 2, height: 2, channels: 4, pixels: [0.9, 0.8, 0.7, 0.6,  0.1, 0.2, 0.3, 0.4,  0.5, 0.5, 0.5, 0.5,  0, 0.5, 1, 0.25])
        let backdrop = Image(width: 3, height: 3, colour: [0.2, 0.4, 0.6])
        XCTAssertEqual(backdrop.pixels, [Float](repeating: 0.2, count: 9) + [Float](repeating: 0.4, count: 9) + [Float](repeating: 0.6, count: 9))
        let whole = stamp.composited(onto: backdrop, x: 1, y: 1)
        XCTAssertEqual(whole.channels, 3)
        let expectedWhole: [[Float]] = [
            [0.2, 0.2, 0.2,  0.2, 0.2, 0.5 * 0.8 + 0.5 * 0.2,  0.2, 0.7, 0.25 * 0.6 + 0.75 * 0.2],
            [0.4, 0.4, 0.4,  0.4, 0.4, 0.5 * 0.2 + 0.5 * 0.4,  0.4, 0.3, 0.25 * 0.4 + 0.75 * 0.4],
            [0.6, 0.6, 0.6,  0.6, 0.6, 0.5 * 0.5 + 0.5 * 0.6,  0.6, 0.5, 0.25 * 0.5 + 0.75 * 0.6]]
        for c in 0..<3 { for i in 0..<9 { XCTAssertEqual(whole.pixels[c * 9 + i], expectedWhole[c][i], accuracy: 1e-6, "channel \(c) pixel \(i)") } }
        // Hanging over the top-left corner: only the stamp's bottom-right pixel lands, at (0, 0).
        let corner = stamp.composited(onto: backdrop, x: -1, y: -1)
        XCTAssertEqual(corner.pixels[0], 0.25 * 0.6 + 0.75 * 0.2, accuracy: 1e-6)
        XCTAssertEqual(Array(corner.pixels[1..<9]), [Float](repeating: 0.2, count: 8))
        // Past the right edge: only the stamp's left column lands, in column 2.
        let edge = stamp.composited(onto: backdrop, x: 2, y: 0)
        XCTAssertEqual(edge.pixels[2], 0.2, accuracy: 1e-6)                  // alpha 0
        XCTAssertEqual(edge.pixels[5], 0.7, accuracy: 1e-6)                  // alpha 1
        XCTAssertEqual(stamp.composited(onto: backdrop, x: 3, y: 0), backdrop, "wholly outside")
        // Grey + alpha, and an opaque picture that covers.
        let grey = Image(width: 1, height: 1, channels: 2, pixels: [1, 0.5])
        XCTAssertEqual(grey.composited(onto: backdrop, x: 0, y: 0).pixels[9], 0.5 + 0.5 * 0.4, accuracy: 1e-6)
        let opaque = Image(width: 1, height: 1, colour: [0, 0, 0])
        XCTAssertEqual(opaque.composited(onto: backdrop, x: 2, y: 2).pixels[8], 0)
    }

    /// Shrinking with alpha resizes premultiplied colours: a transparent red surround does not tint the blue stamp.
    func testShrinkingKeepsTransparentColoursOut() {
        let side = 16, plane = side * side
        var pixels = [Float](repeating: 0, count: 4 * plane)
        for y in 0..<side {
            for x in 0..<side {
                let inside = (4..<12).contains(x) && (4..<12).contains(y)
                pixels[y * side + x] = inside ? 0 : 1              // red where transparent
                pixels[2 * plane + y * side + x] = inside ? 1 : 0  // blue where opaque
                pixels[3 * plane + y * side + x] = inside ? 1 : 0
            }
        }
        let stamp = Image(width: side, height: side, channels: 4, pixels: pixels)
        XCTAssertEqual(stamp.shrunk(toLongerSide: 16), stamp, "already small enough")
        let small = stamp.shrunk(toLongerSide: 5)
        XCTAssertEqual([small.width, small.height, small.channels], [5, 5, 4])
        let smallPlane = 25
        var partlyOpaque = 0
        for i in 0..<smallPlane where small.pixels[3 * smallPlane + i] > 0.05 {
            partlyOpaque += 1
            XCTAssertLessThan(small.pixels[i], 0.01, "red bled into pixel \(i)")
            XCTAssertGreaterThan(small.pixels[2 * smallPlane + i], 0.99, "pixel \(i)")
        }
        XCTAssertGreaterThan(partlyOpaque, 4)
        let wide = Image(width: 40, height: 10, colour: [0.5, 0.5, 0.5]).shrunk(toLongerSide: 20)
        XCTAssertEqual([wide.width, wide.height], [20, 5])
    }

    /// The Gaussian blur against scipy's `ndimage.gaussian_filter` (mode "nearest"), from a blur narrower than a pixel
    /// to one wider than the picture, at two truncations.
    func testGaussianBlurMatchesSciPy() throws {
        struct Case: Decodable { let sigma: Double, truncate: Double, pixels: [Float] }
        struct Fixture: Decodable { let width: Int, height: Int, channels: Int, pixels: [Float], cases: [Case] }
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: visionFixture("gaussian_blur.json"))))
        let picture = Image(width: fixture.width, height: fixture.height, channels: fixture.channels, pixels: fixture.pixels)
        XCTAssertEqual(fixture.cases.count, 4)
        for c in fixture.cases {
            let blurred = picture.gaussianBlurred(sigma: c.sigma, truncate: c.truncate)
            let worst = zip(blurred.pixels, c.pixels).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-5, "sigma \(c.sigma), truncate \(c.truncate)")
        }
        XCTAssertEqual(picture.gaussianBlurred(sigma: 0), picture)
    }
}
