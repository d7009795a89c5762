// Byte-level BPE tokenizers in the Hugging Face file formats: `tokenizer.json` (the tokenizers library's
// single file) and GPT-2's `vocab.json` + `merges.txt`. Both are read and written.

import AttendTensor
import Foundation

extension ByteLevelBPETokenizer {
    /// Reads a tokenizer.json whose model is BPE over byte-level symbols (GPT-2, OPT, RoBERTa, SmolLM, ...).
    public static func load(tokenizerJSON path: String) throws -> ByteLevelBPETokenizer {
        guard let data = FileManager.default.contents(atPath: path) else { throw AttendError("\(path): no such file") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AttendError("\(path): does not parse as a JSON object")
        }
        guard let model = root["model"] as? [String: Any], (model["type"] as? String ?? "BPE") == "BPE" else {
            throw AttendError("\(path): key 'model.type' is '\(((root["model"] as? [String: Any])?["type"] as? String) ?? "missing")', expected 'BPE'")
        }
        guard let vocab = model["vocab"] as? [String: Int] else { throw AttendError("\(path): key 'model.vocab' is missing or not a token -> id map") }
        // Merges are "a b" strings (tokenizers < 0.20) or ["a", "b"] pairs (newer).
        var merges: [String] = []
        for (i, m) in ((model["merges"] as? [Any]) ?? []).enumerated() {
            if let s = m as? String { merges.append(s) } else if let p = m as? [String], p.count == 2 { merges.append(p[0] + " " + p[1]) } else {
                throw AttendError("\(path): model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        var added: [(String, Int)] = []
        for t in (root["added_tokens"] as? [[String: Any]]) ?? [] {
            if let content = t["content"] as? String, let id = t["id"] as? Int { added.append((content, id)) }
        }
        let pre = try preTokenizer(of: root["pre_tokenizer"], path: path)
        return try fromVocabulary(vocab, merges: merges, added: added, preTokenizer: pre, source: path)
    }

    /// Reads GPT-2's pair of files: vocab.json (token -> id) and merges.txt (one "a b" per line after an
    /// optional "#version" line). `specialTokens` are matched verbatim; "<|endoftext|>" is one when present.
    public static func load(vocabJSON: String, mergesText: String, specialTokens: [String] = ["<|endoftext|>"]) throws -> ByteLevelBPETokenizer {
        guard let data = FileManager.default.contents(atPath: vocabJSON) else { throw AttendError("\(vocabJSON): no such file") }
        guard let vocab = (try? JSONSerialization.jsonObject(with: data)) as? [String: Int] else {
            throw AttendError("\(vocabJSON): expected a JSON object of token -> id")
        }
        guard let text = try? String(contentsOfFile: mergesText, encoding: .utf8) else { throw AttendError("\(mergesText): no such file or not UTF-8") }
        var merges: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || (n == 0 && line.hasPrefix("#version")) { continue }
            guard line.split(separator: " ").count == 2 else { throw AttendError("\(mergesText):\(n + 1): expected two symbols separated by a space") }
            merges.append(String(line))
        }
        let added = specialTokens.compactMap { t in vocab[t].map { (t, $0) } }
        return try fromVocabulary(vocab, merges: merges, added: added, preTokenizer: .gpt2, source: vocabJSON)
    }

    static func fromVocabulary(_ vocab: [String: Int], merges: [String], added: [(String, Int)], preTokenizer: PreTokenizer,
                               source: String) throws -> ByteLevelBPETokenizer {
        let count = max(vocab.values.max() ?? -1, added.map(\.1).max() ?? -1) + 1
        guard count > 0, count <= 10_000_000 else { throw AttendError("\(source): the vocabulary is empty or its ids are out of range") }
        var tokens = [String](repeating: "", count: count)
        for (t, id) in vocab {
            guard id >= 0 else { throw AttendError("\(source): token '\(t)' has a negative id") }
            tokens[id] = t
        }
        for (t, id) in added {
            guard id >= 0 else { throw AttendError("\(source): added token '\(t)' has a negative id \(id)") }
            tokens[id] = t
        }
        return try ByteLevelBPETokenizer(tokens: tokens, merges: merges, specialTokenIds: added.map { Int32($0.1) }, preTokenizer: preTokenizer,
                                         eosId: added.first { $0.0 == "<|endoftext|>" }.map { Int32($0.1) })
    }

    /// The pre-tokenizers Attend implements, recognised in tokenizer.json: ByteLevel (GPT-2's pattern, no
    /// prefix space), optionally after Digits(individual_digits: true).
    static func preTokenizer(of json: Any?, path: String) throws -> PreTokenizer {
        guard let json = json as? [String: Any] else { return .gpt2 }
        func check(_ p: [String: Any]) throws -> String {
            let type = p["type"] as? String ?? "?"
            switch type {
            case "ByteLevel":
                if p["add_prefix_space"] as? Bool == true { throw AttendError("\(path): ByteLevel add_prefix_space=true is not supported") }
                if p["use_regex"] as? Bool == false { throw AttendError("\(path): ByteLevel use_regex=false is not supported") }
            case "Digits":
                if p["individual_digits"] as? Bool != true { throw AttendError("\(path): Digits without individual_digits is not supported") }
            default:
                throw AttendError("\(path): pre_tokenizer '\(type)' is not supported (ByteLevel, Digits + ByteLevel)")
            }
            return type
        }
        if json["type"] as? String == "Sequence" {
            let types = try ((json["pretokenizers"] as? [[String: Any]]) ?? []).map(check)
            if types == ["Digits", "ByteLevel"] { return .digitsThenGPT2 }
            if types == ["ByteLevel"] { return .gpt2 }
            throw AttendError("\(path): pre_tokenizer sequence \(types) is not supported")
        }
        _ = try check(json)
        return .gpt2
    }

    /// Writes vocab.json, merges.txt and tokenizer.json into `directory` (each written whole, then renamed).
    public func save(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let dir = URL(fileURLWithPath: directory)
        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        let vocabData = try JSONSerialization.data(withJSONObject: vocab, options: [.sortedKeys])
        try AtomicFile.write(vocabData, to: dir.appendingPathComponent("vocab.json").path)
        try AtomicFile.write(Data(("#version: 0.2\n" + merges.map { $0 + "\n" }.joined()).utf8), to: dir.appendingPathComponent("merges.txt").path)
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let pre: [String: Any] = preTokenizer == .gpt2 ? byteLevel
            : ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        let root: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(), "padding": NSNull(), "normalizer": NSNull(), "post_processor": NSNull(),
            "added_tokens": specialTokenIds.map { id -> [String: Any] in
                ["id": Int(id), "content": tokens[Int(id)], "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
            },
            "pre_tokenizer": pre,
            "decoder": byteLevel,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges] as [String: Any],
        ]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys]), to: dir.appendingPathComponent("tokenizer.json").path)
    }
}
