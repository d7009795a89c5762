// Documents as text with structure: plain text, Markdown and HTML become a title and sections (a heading, the
// anchor that links to it, the section's text), so chunks can say where they came from and citations can link
// to the section (`page.html#anchor`).

import AttendTensor
import Foundation

/// A section of a document: its heading (empty before the first one), the anchor a link can point to, its text.
public struct DocumentSection: Equatable, Sendable {
    public var heading: String
    public var anchor: String?
    public var text: String
    public init(heading: String, anchor: String? = nil, text: String) { (self.heading, self.anchor, self.text) = (heading, anchor, text) }
}

/// A document read from a file, before chunking.
public struct SourceDocument: Sendable {
    public enum Format: String, Sendable { case text, markdown, html }
    public var source: String
    public var format: Format
    public var title: String
    public var sections: [DocumentSection]

    /// All of the text, sections separated by blank lines.
    public var text: String { sections.map { $0.heading.isEmpty ? $0.text : $0.heading + "\n" + $0.text }.joined(separator: "\n\n") }

    /// The format a path's extension names, or nil for files that are not documents.
    public static func format(ofPath path: String) -> Format? {
        switch (path as NSString).pathExtension.lowercased() {
        case "html", "htm", "xhtml": return .html
        case "md", "markdown": return .markdown
        case "txt", "text", "rst": return .text
        default: return nil
        }
    }

    /// Parses `bytes` as the given format. Refuses bytes that are not UTF-8 text (a NUL byte, invalid sequences).
    public static func parse(_ bytes: Data, source: String, format: Format) throws -> SourceDocument {
        if bytes.contains(0) { throw AttendError("\(source): not a text file (it contains NUL bytes)") }
        guard let text = String(data: bytes, encoding: .utf8) else { throw AttendError("\(source): not UTF-8 text") }
        let fallbackTitle = ((source as NSString).lastPathComponent as NSString).deletingPathExtension
        switch format {
        case .text:
            return SourceDocument(source: source, format: .text, title: fallbackTitle, sections: [DocumentSection(heading: "", text: normalizeSpace(text))])
        case .markdown:
            var doc = MarkdownText.parse(text)
            doc.source = source
            if doc.title.isEmpty { doc.title = fallbackTitle }
            return doc
        case .html:
            var doc = try HTMLText.parse(text, source: source)
            doc.source = source
            if doc.title.isEmpty { doc.title = fallbackTitle }
            return doc
        }
    }

    /// Reads and parses a file by its extension.
    public static func read(path: String) throws -> SourceDocument {
        guard let format = format(ofPath: path) else { throw AttendError("\(path): not a document (expected .html, .htm, .md, .markdown or .txt)") }
        guard let bytes = FileManager.default.contents(atPath: path) else { throw AttendError("\(path): cannot be read") }
        return try parse(bytes, source: path, format: format)
    }

    /// Collapses runs of spaces and tabs, keeps paragraph breaks (at most one blank line).
    static func normalizeSpace(_ text: String) -> String {
        var lines: [String] = []
        var blank = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\u{00A0}" }).joined(separator: " ")
            if line.isEmpty { blank = !lines.isEmpty; continue }
            if blank { lines.append("") }
            blank = false
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// Markdown to sections: ATX headings (`#` ... `######`) start sections; the first level-1 heading is the title.
/// Anchors are GitHub's slugs of the heading text.
enum MarkdownText {
    static func parse(_ text: String) -> SourceDocument {
        var sections: [DocumentSection] = []
        var title = "", heading = "", anchor: String? = nil
        var body: [Substring] = []
        var fenced = false
        func flush() {
            let t = SourceDocument.normalizeSpace(body.joined(separator: "\n"))
            if !t.isEmpty || !heading.isEmpty { sections.append(DocumentSection(heading: heading, anchor: anchor, text: t)) }
            body = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") || line.hasPrefix("~~~") { fenced.toggle() }
            let hashes = line.prefix { $0 == "#" }.count
            if !fenced, (1...6).contains(hashes), line.dropFirst(hashes).first == " " {
                flush()
                heading = line.dropFirst(hashes).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "#")).trimmingCharacters(in: .whitespaces)
                anchor = slug(heading)
                if hashes == 1 && title.isEmpty { title = heading }
            } else {
                body.append(line)
            }
        }
        flush()
        return SourceDocument(source: "", format: .markdown, title: title, sections: sections)
    }

    static func slug(_ heading: String) -> String {
        String(heading.lowercased().compactMap { c -> Character? in
            if c.isLetter || c.isNumber || c == "-" || c == "_" { return c }
            return c == " " ? "-" : nil
        })
    }
}

/// HTML to sections, leniently, as browsers read it: tags are dropped, block elements break lines, `<pre>` keeps
/// its spacing, entities are decoded; `<script>`, `<style>`, `<nav>` and DocBook's navigation bars (classes
/// `navheader`, `navfooter`) are skipped; `<h1>`-`<h6>` start sections, anchored by the heading's id or the id of
/// the element opened just before it (DocBook puts the id on the section `<div>`).
enum HTMLText {
    static let skipped: Set<String> = ["script", "style", "nav", "noscript", "template", "svg"]
    static let skippedClasses = ["navheader", "navfooter"]
    static let blocks: Set<String> = ["p", "div", "br", "li", "ul", "ol", "tr", "table", "pre", "dt", "dd", "dl", "blockquote", "section",
                                      "article", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "td", "th", "caption", "figure", "body", "html"]

    static func parse(_ html: String, source: String) throws -> SourceDocument {
        let s = Array(html.utf8)
        var i = 0
        var sections: [DocumentSection] = []
        var title = "", heading = "", anchor: String? = nil
        var text: [UInt8] = []
        var headingText: [UInt8]? = nil      // collecting a heading's text
        var titleText: [UInt8]? = nil
        var skipTag: String? = nil, skipDepth = 0
        var preDepth = 0
        var pendingID: String? = nil
        var headingTag = ""

        func flush() {
            let t = SourceDocument.normalizeSpace(decode(text))
            if !t.isEmpty || !heading.isEmpty { sections.append(DocumentSection(heading: heading, anchor: anchor, text: t)) }
            text = []
        }
        func emit(_ bytes: ArraySlice<UInt8>) {
            if titleText != nil { titleText! += bytes; return }
            if headingText != nil { headingText! += bytes; return }
            if preDepth > 0 { text += bytes; return }
            for b in bytes { text.append(b == 10 || b == 13 || b == 9 ? 32 : b) }
        }

        while i < s.count {
            if s[i] != UInt8(ascii: "<") {
                var j = i
                while j < s.count && s[j] != UInt8(ascii: "<") { j += 1 }
                if skipTag == nil { emit(s[i..<j]) }
                i = j
                continue
            }
            // Comments, doctype, CDATA.
            if s[i...].starts(with: Array("<!--".utf8)) {
                guard let end = find(s, Array("-->".utf8), from: i + 4) else { throw AttendError("\(source): unterminated HTML comment") }
                i = end + 3
                continue
            }
            guard let close = s[i...].firstIndex(of: UInt8(ascii: ">")) else {
                throw AttendError("\(source): HTML does not parse: a tag opened at byte \(i) is never closed")
            }
            let tag = Tag(s[(i + 1)..<close])
            i = close + 1
            guard let name = tag.name else { continue }
            if let skipping = skipTag {
                if name == skipping { skipDepth += tag.closing ? -1 : (tag.selfClosing ? 0 : 1) }
                if skipDepth == 0 { skipTag = nil }
                continue
            }
            if !tag.closing {
                if let id = tag.attribute("id") ?? (name == "a" ? tag.attribute("name") : nil) { pendingID = id }
                let cls = tag.attribute("class") ?? ""
                if name == "script" || name == "style" {
                    // Raw text: a "<" inside is not a tag, so jump straight to the end tag.
                    guard let end = find(s, Array("</\(name)".utf8), from: i, caseInsensitive: true) else {
                        throw AttendError("\(source): HTML does not parse: <\(name)> is never closed")
                    }
                    i = s[end...].firstIndex(of: UInt8(ascii: ">")).map { $0 + 1 } ?? s.count
                    continue
                }
                if skipped.contains(name) || skippedClasses.contains(where: { cls.split(separator: " ").contains(Substring($0)) }) {
                    if !tag.selfClosing { skipTag = name; skipDepth = 1 }
                    continue
                }
            }
            switch name {
            case "title":
                if tag.closing { if let t = titleText { title = SourceDocument.normalizeSpace(decode(t)) }; titleText = nil }
                else { titleText = [] }
            case "h1", "h2", "h3", "h4", "h5", "h6":
                if !tag.closing {
                    flush()
                    headingText = []
                    headingTag = name
                    anchor = tag.attribute("id") ?? pendingID
                } else if name == headingTag, let h = headingText {
                    heading = SourceDocument.normalizeSpace(decode(h)).replacingOccurrences(of: "\n", with: " ")
                    headingText = nil
                    if title.isEmpty && name == "h1" { title = heading }
                }
            case "pre":
                preDepth = max(0, preDepth + (tag.closing ? -1 : 1))
                text.append(10)
            default:
                if blocks.contains(name) { if headingText == nil { text.append(10) } }
                else if name == "td" || name == "th" { text.append(32) }
            }
        }
        flush()
        return SourceDocument(source: source, format: .html, title: title, sections: sections)
    }

    static func find(_ s: [UInt8], _ pattern: [UInt8], from start: Int, caseInsensitive: Bool = false) -> Int? {
        guard s.count >= pattern.count else { return nil }
        func lower(_ b: UInt8) -> UInt8 { caseInsensitive && b >= 65 && b <= 90 ? b + 32 : b }
        var i = start
        while i + pattern.count <= s.count {
            if lower(s[i]) == pattern[0] && s[i..<(i + pattern.count)].map(lower).elementsEqual(pattern) { return i }
            i += 1
        }
        return nil
    }

    /// A tag's name (lowercased; nil for `<!DOCTYPE>` and the like), whether it closes, and its attributes.
    struct Tag {
        var name: String?
        var closing = false
        var selfClosing = false
        let body: ArraySlice<UInt8>

        init(_ body: ArraySlice<UInt8>) {
            self.body = body
            var i = body.startIndex
            if i < body.endIndex && body[i] == UInt8(ascii: "/") { closing = true; i += 1 }
            let start = i
            while i < body.endIndex, isNameByte(body[i]) { i += 1 }
            if i > start { name = String(decoding: body[start..<i], as: UTF8.self).lowercased() }
            selfClosing = body.last == UInt8(ascii: "/")
        }

        static func isNameByte(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 45 }
        func isNameByte(_ b: UInt8) -> Bool { Tag.isNameByte(b) }

        /// The value of an attribute (quoted with ' or ", or bare), entities decoded.
        func attribute(_ wanted: String) -> String? {
            let s = Array(body)
            var i = 0
            while i < s.count && s[i] != 32 && s[i] != 9 && s[i] != 10 && s[i] != 13 { i += 1 }   // skip the name
            while i < s.count {
                while i < s.count && (s[i] == 32 || s[i] == 9 || s[i] == 10 || s[i] == 13 || s[i] == UInt8(ascii: "/")) { i += 1 }
                let start = i
                while i < s.count && s[i] != UInt8(ascii: "=") && s[i] != 32 && s[i] != 9 && s[i] != 10 && s[i] != 13 { i += 1 }
                let key = String(decoding: s[start..<i], as: UTF8.self).lowercased()
                var value = ""
                while i < s.count && (s[i] == 32 || s[i] == 9) { i += 1 }
                if i < s.count && s[i] == UInt8(ascii: "=") {
                    i += 1
                    while i < s.count && (s[i] == 32 || s[i] == 9) { i += 1 }
                    if i < s.count && (s[i] == 34 || s[i] == 39) {
                        let q = s[i]; i += 1
                        let v0 = i
                        while i < s.count && s[i] != q { i += 1 }
                        value = String(decoding: s[v0..<i], as: UTF8.self)
                        i += 1
                    } else {
                        let v0 = i
                        while i < s.count && s[i] != 32 && s[i] != 9 && s[i] != 10 { i += 1 }
                        value = String(decoding: s[v0..<i], as: UTF8.self)
                    }
                }
                if key == wanted { return HTMLText.decode(Array(value.utf8)) }
                if i == start { i += 1 }
            }
            return nil
        }
    }

    static let entities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "copy": "©", "reg": "®", "trade": "™",
        "mdash": "—", "ndash": "–", "hellip": "…", "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”", "laquo": "«",
        "raquo": "»", "times": "×", "divide": "÷", "deg": "°", "plusmn": "±", "micro": "µ", "para": "¶", "sect": "§",
        "middot": "·", "bull": "•", "larr": "←", "rarr": "→", "uarr": "↑", "darr": "↓", "le": "≤", "ge": "≥", "ne": "≠",
        "eacute": "é", "egrave": "è", "aacute": "á", "agrave": "à", "ouml": "ö", "uuml": "ü", "auml": "ä", "szlig": "ß",
    ]

    /// UTF-8 bytes with character references (`&amp;`, `&#233;`, `&#xE9;`) decoded; unknown ones kept as written.
    static func decode(_ bytes: [UInt8]) -> String {
        guard bytes.contains(UInt8(ascii: "&")) else { return String(decoding: bytes, as: UTF8.self) }
        var out = ""
        var i = 0
        var run = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "&"), let semi = bytes[(i + 1)..<min(bytes.count, i + 12)].firstIndex(of: UInt8(ascii: ";")) {
                let name = String(decoding: bytes[(i + 1)..<semi], as: UTF8.self)
                var replacement: String? = nil
                if name.hasPrefix("#x") || name.hasPrefix("#X"), let v = UInt32(name.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) { replacement = String(Character(u)) }
                else if name.hasPrefix("#"), let v = UInt32(name.dropFirst()), let u = Unicode.Scalar(v) { replacement = String(Character(u)) }
                else { replacement = entities[name] }
                if let replacement {
                    out += String(decoding: bytes[run..<i], as: UTF8.self) + replacement
                    i = semi + 1
                    run = i
                    continue
                }
            }
            i += 1
        }
        out += String(decoding: bytes[run..<bytes.count], as: UTF8.self)
        return out
    }
}
