// The 1,000 ImageNet-1k class names in class-index order, from timm's data files (imagenet_synsets.txt lists the
// WordNet ids in index order; imagenet_synset_to_lemma.txt names each id).

import AttendTensor
import Foundation

/// ImageNet-1k class names by index.
///
/// ```swift
/// let labels = try ImageNetLabels.load(folder: ".cache/assets/imagenet-labels")
/// labels.names[285]   // "Egyptian cat"
/// ```
public struct ImageNetLabels {
    public let synsets: [String]
    public let names: [String]

    public static func load(folder: String) throws -> ImageNetLabels {
        let synsetPath = (folder as NSString).appendingPathComponent("imagenet_synsets.txt")
        let lemmaPath = (folder as NSString).appendingPathComponent("imagenet_synset_to_lemma.txt")
        guard let synsetText = try? String(contentsOfFile: synsetPath, encoding: .utf8) else {
            throw AttendError("\(synsetPath): cannot read (run scripts/fetch-assets.sh imagenet-labels)")
        }
        guard let lemmaText = try? String(contentsOfFile: lemmaPath, encoding: .utf8) else {
            throw AttendError("\(lemmaPath): cannot read (run scripts/fetch-assets.sh imagenet-labels)")
        }
        let synsets = synsetText.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard synsets.count == 1000 else { throw AttendError("\(synsetPath): \(synsets.count) synsets, ImageNet-1k has 1000") }
        var lemmas: [String: String] = [:]
        for (n, line) in lemmaText.split(whereSeparator: \.isNewline).enumerated() {
            let parts = line.split(separator: "\t", maxSplits: 1)
            guard parts.count == 2 else { throw AttendError("\(lemmaPath):\(n + 1): expected 'synset<TAB>names'") }
            lemmas[String(parts[0])] = String(parts[1])
        }
        let names = try synsets.map { s -> String in
            guard let l = lemmas[s] else { throw AttendError("\(lemmaPath): no name for \(s)") }
            return l
        }
        return ImageNetLabels(synsets: synsets, names: names)
    }
}
