// Image data sets: a folder with one sub-folder per class (the layout torchvision's ImageFolder reads), and a list
// of (image, caption) pairs from a TSV file. Both only list files; images are decoded when a batch asks for them.

import AttendTensor
import Foundation

/// A folder of class sub-folders: `root/cat/1.jpg`, `root/dog/2.png`. Classes are the sub-folder names sorted,
/// indexed from 0; samples are sorted by path within each class.
///
/// ```swift
/// let data = try ImageFolder("photos/")
/// print(data.classes)                   // ["cat", "dog"]
/// let (image, label) = try data.sample(0)
/// ```
public struct ImageFolder {
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]
    public let root: String
    public let classes: [String]
    public let samples: [(path: String, label: Int)]

    public init(_ root: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw AttendError("\(root): not a folder (an image folder holds one sub-folder of images per class)")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix(".") }.sorted()
        var classes: [String] = [], samples: [(String, Int)] = []
        for name in names {
            let folder = (root as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let files = (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? [])
                .filter { ImageFolder.extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            guard !files.isEmpty else { continue }
            for file in files { samples.append(((folder as NSString).appendingPathComponent(file), classes.count)) }
            classes.append(name)
        }
        guard !classes.isEmpty else { throw AttendError("\(root): no class sub-folder holds a .png, .jpg or .jpeg image") }
        self.root = root
        self.classes = classes
        self.samples = samples
    }

    public var count: Int { samples.count }

    public func sample(_ i: Int) throws -> (image: Image, label: Int) {
        (try Image.read(samples[i].path), samples[i].label)
    }
}

/// Image-caption pairs from a TSV file, one `path<TAB>caption` per line; relative paths are relative to the file.
/// Blank lines and lines starting with `#` are skipped. Errors name the file and line.
public struct ImageCaptions {
    public let pairs: [(path: String, caption: String)]

    public init(_ tsvPath: String, checkFiles: Bool = true) throws {
        guard let text = try? String(contentsOfFile: tsvPath, encoding: .utf8) else {
            throw AttendError("\(tsvPath): cannot read as UTF-8 text")
        }
        let base = (tsvPath as NSString).deletingLastPathComponent
        var pairs: [(String, String)] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let row = line.hasSuffix("\r") ? line.dropLast() : line
            if row.trimmingCharacters(in: .whitespaces).isEmpty || row.hasPrefix("#") { continue }
            let columns = row.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            guard columns.count == 2, !columns[0].isEmpty, !columns[1].trimmingCharacters(in: .whitespaces).isEmpty else {
                throw AttendError("\(tsvPath):\(n + 1): expected 'image path<TAB>caption'")
            }
            let path = columns[0].hasPrefix("/") ? String(columns[0]) : (base as NSString).appendingPathComponent(String(columns[0]))
            if checkFiles && !FileManager.default.fileExists(atPath: path) {
                throw AttendError("\(tsvPath):\(n + 1): image '\(columns[0])' does not exist (looked for \(path))")
            }
            pairs.append((path, String(columns[1])))
        }
        guard !pairs.isEmpty else { throw AttendError("\(tsvPath): no image-caption pairs") }
        self.pairs = pairs
    }
}
