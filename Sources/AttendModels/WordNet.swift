// WordNet 3.0's noun hierarchy (Debian's wordnet-base, /usr/share/wordnet/data.noun), read for one purpose: the
// ImageNet-1k classes are WordNet noun synsets (n02124075 is line 02124075 of data.noun), so their hypernyms name the
// kinds a user types ("a dog", "a bird", "a vehicle") for the 1,000 specific classes ("a Great Dane").
//
// data.noun's format (wndb(5WN)): a licence header whose lines start with two spaces, then one synset per line:
// `offset lex_filenum ss_type w_cnt word lex_id ... p_cnt [ptr_symbol offset pos source/target]... | gloss`, w_cnt in
// hexadecimal and p_cnt in decimal.

import AttendTensor
import Foundation

/// WordNet's noun synsets: each one's words and its hypernyms (`@`, and `@i` for instances), by offset.
///
/// ```swift
/// let nouns = try WordNetNouns.load(path: "/usr/share/wordnet/data.noun")
/// nouns.words[2124075]                     // ["Egyptian_cat"]
/// nouns.ancestors(of: 2124075).contains(2121808)   // domestic_cat: true
/// ```
public struct WordNetNouns {
    /// Words of each synset, by offset (WordNet's spelling: underscores for spaces).
    public let words: [Int: [String]]
    /// The synsets one step more general, by offset.
    public let hypernyms: [Int: [Int]]

    public static func load(path: String) throws -> WordNetNouns {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AttendError("\(path): cannot read (Debian's wordnet-base installs /usr/share/wordnet/data.noun)")
        }
        return try parse(data, file: path)
    }

    /// Reads data.noun's bytes; `file` names them in errors, with the line.
    public static func parse(_ data: Data, file: String) throws -> WordNetNouns {
        // Decoded with replacement: the fields read are ASCII; a few glosses are not, and glosses are skipped.
        let text = String(decoding: data, as: UTF8.self)
        var words: [Int: [String]] = [:], hypernyms: [Int: [Int]] = [:]
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty || line.hasPrefix("  ") { continue }   // the licence header
            func fail(_ what: String) -> AttendError { AttendError("\(file):\(lineNumber): \(what)") }
            let body = line.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let fields = body.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4, fields[0].count == 8, let offset = Int(fields[0]), offset >= 0 else {
                throw fail("expected a synset line 'offset lex_filenum ss_type w_cnt ...' with an 8-digit offset")
            }
            guard fields[2] == "n" else { throw fail("synset type '\(fields[2])', expected n (a noun)") }
            guard let wordCount = Int(fields[3], radix: 16), wordCount >= 1 else {
                throw fail("word count '\(fields[3])', expected a positive hexadecimal number")
            }
            // Counts are compared with the fields there are before any arithmetic: a claimed count near Int.max
            // would overflow 4 + 2 * count.
            guard wordCount <= (fields.count - 5) / 2 else { throw fail("\(wordCount) words claimed, the line has fewer") }
            let pointerField = 4 + 2 * wordCount
            guard let pointerCount = Int(fields[pointerField]), pointerCount >= 0 else {
                throw fail("pointer count '\(fields[pointerField])', expected a decimal number")
            }
            guard pointerCount <= (fields.count - pointerField - 1) / 4 else { throw fail("\(pointerCount) pointers claimed, the line has fewer") }
            guard words[offset] == nil else { throw fail("synset \(fields[0]) appears twice") }
            words[offset] = (0..<wordCount).map { String(fields[4 + 2 * $0]) }
            var up: [Int] = []
            for p in 0..<pointerCount {
                let at = pointerField + 1 + 4 * p
                guard fields[at] == "@" || fields[at] == "@i" else { continue }
                guard fields[at + 1].count == 8, let target = Int(fields[at + 1]), fields[at + 2] == "n" else {
                    throw fail("hypernym pointer '\(fields[at]) \(fields[at + 1]) \(fields[at + 2])', expected an 8-digit noun offset")
                }
                up.append(target)
            }
            hypernyms[offset] = up
        }
        guard !words.isEmpty else { throw AttendError("\(file): no synset lines (is it WordNet's data.noun?)") }
        return WordNetNouns(words: words, hypernyms: hypernyms)
    }

    /// Every synset above `offset` (not itself); pointers to synsets the file lacks are left out, cycles end.
    public func ancestors(of offset: Int) -> Set<Int> {
        var seen: Set<Int> = []
        var stack = hypernyms[offset] ?? []
        while let next = stack.popLast() {
            guard words[next] != nil, seen.insert(next).inserted else { continue }
            stack += hypernyms[next] ?? []
        }
        return seen
    }
}

/// General kinds of the ImageNet-1k classes, from WordNet: every hypernym of at least `minimumClasses` classes and at
/// most `maximumClasses` (so "entity", "object" and "artifact" drop out), named by its first word; kinds that share a
/// name (two senses of "food") are one kind.
///
/// ```swift
/// let kinds = try ImageNetKinds(labels: labels, nouns: try WordNetNouns.load(path: "/usr/share/wordnet/data.noun"))
/// kinds.names.contains("dog")   // true; kinds.classes[i] lists its classes' indices
/// ```
public struct ImageNetKinds {
    /// Each kind's name ("dog", "musical instrument"), sorted.
    public let names: [String]
    /// Each kind's ImageNet class indices, ascending.
    public let classes: [[Int]]

    public init(labels: ImageNetLabels, nouns: WordNetNouns, minimumClasses: Int = 2, maximumClasses: Int = 500) throws {
        guard minimumClasses >= 1, maximumClasses >= minimumClasses else {
            throw AttendError("ImageNetKinds: class counts must satisfy 1 <= minimum <= maximum, got \(minimumClasses) and \(maximumClasses)")
        }
        var members: [Int: [Int]] = [:]
        for (index, synset) in labels.synsets.enumerated() {
            guard synset.count == 9, synset.first == "n", let offset = Int(synset.dropFirst()), nouns.words[offset] != nil else {
                throw AttendError("ImageNet class \(index) (\(synset)) is not a noun synset of the WordNet file")
            }
            for a in nouns.ancestors(of: offset) { members[a, default: []].append(index) }
        }
        var byName: [String: Set<Int>] = [:]
        for (offset, list) in members where list.count >= minimumClasses && list.count <= maximumClasses {
            let name = nouns.words[offset]![0].replacingOccurrences(of: "_", with: " ")
            byName[name, default: []].formUnion(list)
        }
        names = byName.keys.sorted()
        classes = names.map { byName[$0]!.sorted() }
    }

    /// The [classes, kinds] 0/1 matrix: row c has a 1 in each kind class c belongs to.
    public func membership(classCount: Int = 1000) -> Tensor {
        let m = Tensor(shape: [classCount, names.count])
        for (k, list) in classes.enumerated() { for c in list where c < classCount { m.pointer[c * names.count + k] = 1 } }
        return m
    }
}
