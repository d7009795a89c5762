// Image-caption pairs for CLIP: from a TSV of (image path, caption), or built here from Fashion-MNIST and
// scikit-learn's digits with captions that name the class (with synonyms), what kind of thing it is, and what is
// visible (how dark the garment is).

import AttendDatasets
import AttendTensor
import AttendVision
import Foundation

/// Pictures with the captions each may be paired with, and their class where one is known.
///
/// ```swift
/// let train = CaptionedImages.fashionMNIST(try ImageDataset.fashionMNIST(train: true), excluding: [9])
/// print(train.captions[0])       // ["a photo of a dark ankle boot", "a dark ankle boot", ...]
/// ```
public struct CaptionedImages {
    /// Names the source the pictures come from (a data set's split, a caption file's pictures), so locked-tower
    /// features can be cached under it and shared by every subset of that source.
    public var identity: String
    /// The source's picture at a source index, decoded on demand.
    public var image: (Int) throws -> Image
    /// Per picture, the captions it may be paired with (one is drawn per training step).
    public var captions: [[String]]
    /// Per picture, its class index into `classNames` (nil without classes).
    public var labels: [Int]?
    public var classNames: [String]?
    /// Per picture, its index in the source.
    public var sourceIndices: [Int]
    /// Pictures in the source.
    public var sourceCount: Int

    public var count: Int { captions.count }

    public init(identity: String, image: @escaping (Int) throws -> Image, captions: [[String]], labels: [Int]? = nil,
                classNames: [String]? = nil, sourceIndices: [Int]? = nil, sourceCount: Int? = nil) {
        self.identity = identity
        self.image = image
        self.captions = captions
        self.labels = labels
        self.classNames = classNames
        self.sourceIndices = sourceIndices ?? Array(captions.indices)
        self.sourceCount = sourceCount ?? captions.count
    }

    /// The first `n` pictures (all of them when there are fewer).
    public func prefix(_ n: Int) -> CaptionedImages {
        var out = self
        out.captions = Array(captions.prefix(n))
        out.labels = labels.map { Array($0.prefix(n)) }
        out.sourceIndices = Array(sourceIndices.prefix(n))
        return out
    }

    /// Pairs from a caption file (`ImageCaptions`: path TAB caption per line); pictures that appear on several lines
    /// keep all their captions.
    public static func tsv(_ path: String) throws -> CaptionedImages {
        let file = try ImageCaptions(path)
        var order: [String] = []
        var captions: [String: [String]] = [:]
        for (image, caption) in file.pairs {
            if captions[image] == nil { order.append(image) }
            captions[image, default: []].append(caption)
        }
        var identity = "tsv"
        for p in order {
            let attributes = try? FileManager.default.attributesOfItem(atPath: p)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let time = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            identity += "|\(p):\(size):\(time)"
        }
        return CaptionedImages(identity: identity, image: { try Image.read(order[$0]) }, captions: order.map { captions[$0]! })
    }

    /// Pictures of a labelled data set (Fashion-MNIST, digits) captioned by `captioner`, leaving out the classes in
    /// `excluding` (held out, to test zero-shot recognition of classes never captioned in training), at most `limit`.
    public static func labelled(_ data: ImageDataset, captioner: ClassCaptions, split: String = "", excluding: Set<Int> = [],
                                limit: Int? = nil) -> CaptionedImages {
        let height = data.images.shape[2], width = data.images.shape[3], plane = height * width
        var kept: [Int] = []
        for i in 0..<data.count where !excluding.contains(Int(data.labels.data[i])) {
            kept.append(i)
            if let limit, kept.count >= limit { break }
        }
        let pixels = data.images.contiguous()
        let picture = { (i: Int) in Image(width: width, height: height, channels: 1,
                                          pixels: Array(UnsafeBufferPointer(start: pixels.pointer + i * plane, count: plane))) }
        let captions = kept.map { captioner.captions(pixels: picture($0).pixels, label: Int(data.labels.data[$0])) }
        return CaptionedImages(identity: "\(captioner.name) \(split) \(data.count)", image: picture, captions: captions,
                               labels: kept.map { Int(data.labels.data[$0]) }, classNames: captioner.names.map { $0[0] },
                               sourceIndices: kept, sourceCount: data.count)
    }

    /// Fashion-MNIST captioned by `ClassCaptions.fashionMNIST`.
    public static func fashionMNIST(_ data: ImageDataset, split: String = "", excluding: Set<Int> = [], limit: Int? = nil) -> CaptionedImages {
        labelled(data, captioner: .fashionMNIST, split: split, excluding: excluding, limit: limit)
    }
}

/// How the pictures of a labelled data set are captioned: the class by one of its everyday names, what kind of thing
/// it is, and (Fashion-MNIST) the garment's shade when it is clear, in several phrasings; and the prompts zero-shot
/// classification uses.
///
/// Fashion-MNIST stores inverted intensities (the white background is 0), so a high mean over the garment's pixels
/// means a dark garment: a mean of at least 0.7 over pixels above 0.05 reads "dark", below 0.45 "light" (about the top
/// and bottom fifth of the training set), otherwise the shade is not named.
public struct ClassCaptions {
    public var name: String
    /// Everyday names per class, the first being the one zero-shot prompts use.
    public var names: [[String]]
    /// What kind of thing each class is (one more caption per name says it, so what classes share is learned too).
    public var kinds: [String]
    /// Caption patterns; `{}` is the (shaded) name with its article.
    public var templates: [String]
    /// Prompt templates for zero-shot classification (an ensemble; `{}` is the class name with its article).
    public var promptTemplates: [String]
    /// Whether to name the shade (Fashion-MNIST's garments).
    public var namesShade: Bool

    public static let fashionMNIST = ClassCaptions(
        name: "fashion-mnist",
        names: [["t-shirt", "top", "tee shirt"], ["pair of trousers", "pair of pants", "pair of jeans"], ["pullover", "sweater", "jumper"],
                ["dress", "summer dress"], ["coat", "jacket"], ["sandal", "strappy sandal"], ["shirt", "button-up shirt", "blouse"],
                ["sneaker", "running shoe", "trainer shoe"], ["bag", "handbag", "purse"], ["ankle boot", "short boot"]],
        kinds: ["top", "clothing for the legs", "top", "piece of clothing", "top", "shoe", "top", "shoe", "accessory", "shoe"],
        templates: ["a photo of {}", "{}", "a product photo of {}", "a black and white photo of {}", "a small picture of {}"],
        promptTemplates: ["a photo of {}", "{}", "a black and white photo of {}"], namesShade: true)

    /// scikit-learn's 8 x 8 handwritten digits.
    public static let digits = ClassCaptions(
        name: "digits",
        names: [["zero", "0"], ["one", "1"], ["two", "2"], ["three", "3"], ["four", "4"], ["five", "5"], ["six", "6"], ["seven", "7"],
                ["eight", "8"], ["nine", "9"]].map { ["digit " + $0[0], "number " + $0[0], "handwritten " + $0[1]] },
        kinds: Array(repeating: "handwritten digit", count: 10),
        templates: ["a photo of {}", "{}", "a blurry scan of {}", "a tiny picture of {}"],
        promptTemplates: ["a photo of {}", "{}", "a blurry scan of {}"], namesShade: false)

    /// "a" or "an" before `phrase`.
    public static func withArticle(_ phrase: String) -> String {
        (phrase.first.map { "aeiou".contains($0) } == true ? "an " : "a ") + phrase
    }

    /// The shade word for a Fashion-MNIST garment's pixels (values in [0, 1]), or nil.
    public static func shade(pixels: [Float]) -> String? {
        var sum: Float = 0, n = 0
        for v in pixels where v > 0.05 { sum += v; n += 1 }
        guard n > 0 else { return nil }
        let mean = sum / Float(n)
        return mean >= 0.7 ? "dark" : mean < 0.45 ? "light" : nil
    }

    /// Every caption the picture may be paired with.
    public func captions(pixels: [Float], label: Int) -> [String] {
        let shade = namesShade ? ClassCaptions.shade(pixels: pixels) : nil
        var out: [String] = []
        for name in names[label] {
            let phrase = ClassCaptions.withArticle(shade.map { "\($0) \(name)" } ?? name)
            for t in templates { out.append(t.replacingOccurrences(of: "{}", with: phrase)) }
            out.append("\(phrase), a kind of \(kinds[label])")
        }
        return out
    }

    /// Prompts per class for zero-shot classification.
    public var classPrompts: [[String]] { prompts(templates: promptTemplates) }

    /// Prompts per class from other templates (`{}` is the class name with its article).
    public func prompts(templates: [String]) -> [[String]] {
        names.map { n in templates.map { $0.replacingOccurrences(of: "{}", with: ClassCaptions.withArticle(n[0])) } }
    }
}

extension CaptionedImages {
    /// Square crops of photos for distillation from the ImageNet classifier (`CLIPTeacher`): `cropsPerPhoto` per photo,
    /// each a random square of 25-100% of the shorter side at a random place, flipped half the time, drawn from `seed`
    /// (the same crops every run, so their features cache). Photos are shrunk to a 384-pixel shorter side once, on
    /// loading; their captions are empty (the teacher's probabilities stand for them).
    public static func photoCrops(_ paths: [String], cropsPerPhoto: Int, seed: UInt64 = 7) throws -> CaptionedImages {
        guard cropsPerPhoto >= 1 else { throw AttendError("crops per photo must be at least 1, got \(cropsPerPhoto)") }
        guard !paths.isEmpty else { throw AttendError("no photos to crop") }
        var photos: [Image] = []
        var identity = "photo crops \(cropsPerPhoto) seed \(seed)"
        for path in paths {
            let image = try Image.read(path)
            try image.requireAspectRatio(atMost: 8, source: path)
            photos.append(image.rgb().resized(shorterSide: 384))
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            identity += "|\(path):\((attributes?[.size] as? NSNumber)?.intValue ?? -1)"
        }
        let count = photos.count * cropsPerPhoto
        let crop = { (i: Int) -> Image in
            let photo = photos[i / cropsPerPhoto]
            var generator = RandomGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(i))
            let shorter = min(photo.width, photo.height)
            let side = max(8, Int(Float(shorter) * (0.25 + 0.75 * generator.nextUniform())))
            let x = Int(generator.next() % UInt64(photo.width - side + 1)), y = Int(generator.next() % UInt64(photo.height - side + 1))
            let square = photo.cropped(x: x, y: y, width: side, height: side)
            return generator.next() % 2 == 0 ? square : square.flippedHorizontally()
        }
        return CaptionedImages(identity: identity, image: crop, captions: Array(repeating: [""], count: count))
    }
}
