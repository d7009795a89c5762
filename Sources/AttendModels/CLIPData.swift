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

    /// The same pictures with the same captions, each blurred by a Gaussian (`Image.gaussianBlurred`) whose standard
    /// deviation is drawn per picture, uniformly from `sigmas` (the same for the same seed and source index). Soft
    /// copies teach a model that a blurred garment (a drawing, an enlarged thumbnail) is still that garment.
    ///
    /// ```swift
    /// let soft = CaptionedImages.fashionMNIST(train, limit: 2500).blurred(sigmas: 0.5...2)
    /// ```
    public func blurred(sigmas: ClosedRange<Double>, seed: UInt64 = 11) -> CaptionedImages {
        precondition(sigmas.lowerBound >= 0 && sigmas.upperBound.isFinite, "blurred: sigmas \(sigmas)")
        var out = self
        let source = image
        out.identity = identity + " blurred \(sigmas.lowerBound)-\(sigmas.upperBound) seed \(seed)"
        out.image = { i in
            var generator = RandomGenerator(seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            let sigma = sigmas.lowerBound + Double(generator.nextUniform()) * (sigmas.upperBound - sigmas.lowerBound)
            return try source(i).gaussianBlurred(sigma: sigma)
        }
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

    /// Classes known only by their names (each class's list of names, the first the main one), to score
    /// descriptions by (`classesNamed(in:)`): no kinds, captions or prompts of their own.
    ///
    /// ```swift
    /// let everyday = ClassCaptions.named([["cat", "kitten"], ["coin", "coins"]], name: "photos")
    /// everyday.classesNamed(in: "A black cat.")     // [0]
    /// ```
    public static func named(_ names: [[String]], name: String) -> ClassCaptions {
        ClassCaptions(name: name, names: names, kinds: names.map { _ in "" }, templates: ["{}"], promptTemplates: ["a photo of {}"], namesShade: false)
    }

    /// Pictures and the class each should be named by, from a TSV of image path TAB the class's names separated by
    /// '|' (`Benchmarks/data/everyday-photos.tsv`): the paths, each picture's class index, and the classes (one per
    /// distinct names column, case aside), at most `limit` pictures.
    public static func namedPictures(_ tsvPath: String, limit: Int? = nil) throws -> (paths: [String], labels: [Int], classes: ClassCaptions) {
        let pairs = try ImageCaptions(tsvPath).pairs.prefix(limit ?? Int.max)
        var keys: [String] = [], labels: [Int] = []
        for pair in pairs {
            let key = pair.caption.trimmingCharacters(in: .whitespaces).lowercased()
            if let k = keys.firstIndex(of: key) { labels.append(k) } else { labels.append(keys.count); keys.append(key) }
        }
        let names = try keys.map { key -> [String] in
            let list = key.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard list.allSatisfy({ !$0.isEmpty }) else { throw AttendError("\(tsvPath): the class '\(key)' has an empty name between its '|'s") }
            return list
        }
        return (pairs.map(\.path), labels, named(names, name: tsvPath))
    }

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

extension CaptionedImages {
    /// The most bytes a caption file may hold.
    public static let maxCaptionFileBytes = 1 << 20

    /// Pictures captioned by text files beside them: every PNG or JPEG under `paths` (folders are searched
    /// recursively) that has a `.txt` of the same name. The caption is the first sentence of the file's first
    /// non-empty line: Tux Paint's stamps (Debian's `tuxpaint-stamps-default`, about 800 drawings and photos of
    /// animals, food, vehicles, household things...) are laid out so, the English description first and one
    /// `lang.utf8=` line per translation after it. Pictures without a caption file are left out.
    ///
    /// Each picture gives `variants` pictures, so that the model learns the thing rather than its backdrop: the first
    /// is the picture on white, with a margin; each other one is laid at a random size (55-95% of the square's side)
    /// and place on a random backdrop (white, a random colour, or a random square of one of `backgrounds`), flipped
    /// half the time. Transparent parts show the backdrop. The draws follow `seed`, so every run sees the same pictures.
    ///
    /// ```swift
    /// let stamps = try CaptionedImages.captionFiles(["/usr/share/tuxpaint/stamps"], variants: 4)
    /// print(stamps.captions[0])    // ["A frog."]
    /// ```
    public static func captionFiles(_ paths: [String], variants: Int = 1, backgrounds: [Image] = [], seed: UInt64 = 11) throws -> CaptionedImages {
        guard (1...1000).contains(variants) else { throw AttendError("variants per picture must be 1...1000, got \(variants)") }
        var found: [(image: String, caption: String)] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw AttendError("\(path): no such file or folder") }
            var files: [String] = [path]
            if isDirectory.boolValue {
                guard let walker = FileManager.default.enumerator(atPath: path) else { throw AttendError("\(path): cannot list the folder") }
                files = walker.compactMap { $0 as? String }.sorted().map { (path as NSString).appendingPathComponent($0) }
            }
            for file in files where ["png", "jpg", "jpeg"].contains((file as NSString).pathExtension.lowercased()) {
                let captionFile = (file as NSString).deletingPathExtension + ".txt"
                guard FileManager.default.fileExists(atPath: captionFile) else { continue }
                found.append((file, try caption(fromFile: captionFile)))
            }
        }
        guard !found.isEmpty else {
            throw AttendError("no .png, .jpg or .jpeg picture with a caption file (the same name ending in .txt) in \(paths.joined(separator: ", "))")
        }
        var identity = "caption files \(variants) variants seed \(seed) \(backgrounds.count) backgrounds"
        for (file, _) in found {
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            identity += "|\(file):\((attributes?[.size] as? NSNumber)?.intValue ?? -1)"
        }
        // Pictures are decoded when asked for; the variants of one picture come one after another, so the last
        // decoded picture is kept.
        let recent = RecentPicture()
        let picture = { (i: Int) throws -> Image in
            let k = i / variants, variant = i % variants
            let stamp = try recent.picture(k) {
                let image = try Image.read(found[k].image)
                try image.requireAspectRatio(atMost: 8, source: found[k].image)
                return image.shrunk(toLongerSide: 512)
            }
            var generator = RandomGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(i))
            let fill: Float = variant == 0 ? 0.85 : 0.55 + 0.4 * generator.nextUniform()
            let side = max(8, Int((Float(max(stamp.width, stamp.height)) / fill).rounded()))
            let backdrop: Image
            let kind = variant == 0 ? 0 : Int(generator.next() % UInt64(backgrounds.isEmpty ? 3 : 4))
            switch kind {
            case 0, 1: backdrop = Image(width: side, height: side, colour: [1, 1, 1])
            case 2: backdrop = Image(width: side, height: side, colour: (0..<3).map { _ in generator.nextUniform() })
            default:
                let photo = backgrounds[Int(generator.next() % UInt64(backgrounds.count))]
                let shorter = min(photo.width, photo.height)
                let crop = max(8, Int(Float(shorter) * (0.3 + 0.7 * generator.nextUniform())))
                let x = Int(generator.next() % UInt64(photo.width - crop + 1)), y = Int(generator.next() % UInt64(photo.height - crop + 1))
                backdrop = photo.cropped(x: x, y: y, width: crop, height: crop).resized(width: side, height: side)
            }
            let (freeX, freeY) = (side - stamp.width, side - stamp.height)
            let x = variant == 0 ? freeX / 2 : Int(generator.next() % UInt64(freeX + 1))
            let y = variant == 0 ? freeY / 2 : Int(generator.next() % UInt64(freeY + 1))
            let laid = stamp.composited(onto: backdrop, x: x, y: y)
            return variant > 0 && generator.next() % 2 == 0 ? laid.flippedHorizontally() : laid
        }
        return CaptionedImages(identity: identity, image: picture,
                               captions: found.flatMap { Array(repeating: [$0.caption], count: variants) })
    }

    /// The caption in a caption file: the first sentence of its first non-empty line.
    public static func caption(fromFile path: String) throws -> String {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxCaptionFileBytes else { throw AttendError("\(path): a caption file of \(size) bytes; at most \(maxCaptionFileBytes) expected") }
        guard let text = String(data: try Data(contentsOf: URL(fileURLWithPath: path)), encoding: .utf8) else {
            throw AttendError("\(path): the caption file is not UTF-8 text")
        }
        guard let line = text.split(whereSeparator: \.isNewline).lazy
            .map({ $0.trimmingCharacters(in: .whitespaces) }).first(where: { !$0.isEmpty }) else {
            throw AttendError("\(path): the caption file is empty; its first line should say what the picture shows")
        }
        // The first sentence: up to the first '.', '!' or '?' followed by a space.
        var end = line.endIndex
        var i = line.startIndex
        while i < line.endIndex {
            let next = line.index(after: i)
            if ".!?".contains(line[i]), next < line.endIndex, line[next] == " " { end = next; break }
            i = next
        }
        return String(line[..<end])
    }
}

/// The picture decoded last, shared by the calls of one caption-file source.
private final class RecentPicture: @unchecked Sendable {
    private let lock = NSLock()
    private var index = -1
    private var image: Image?

    func picture(_ k: Int, decode: () throws -> Image) throws -> Image {
        lock.lock()
        defer { lock.unlock() }
        if index == k, let image { return image }
        let decoded = try decode()
        (index, image) = (k, decoded)
        return decoded
    }
}
