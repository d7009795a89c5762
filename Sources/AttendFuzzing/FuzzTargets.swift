// Fuzz targets: one entry per file parser, each feeding bytes to the parser's public entry point the way a user's
// file reaches it. A thrown error is the correct answer to a bad file; only a trap, a sanitizer report, a hang or an
// allocation the file's size does not justify is a bug. The libFuzzer driver (Fuzz/, built with
// `--sanitize fuzzer --sanitize address`) and the replay test (Tests/AttendFuzzingTests) both call `run`.

import AttendDatasets
import AttendEmbeddings
import AttendLM
import AttendModels
import AttendNN
import AttendServer
import AttendTensor
import AttendTokenizers
import AttendVision
import Foundation

/// The parsers Attend fuzzes, by name, and one call that feeds them bytes.
///
/// ```swift
/// for name in FuzzTargets.names { FuzzTargets.run(name, Data("junk".utf8)) }   // thrown errors are swallowed
/// try FuzzTargets.check("safetensors", try Data(contentsOf: url))            // errors propagate
/// ```
public enum FuzzTargets {
    public static let names: [String] = [
        "safetensors", "gguf", "torch", "zip", "tokenizer-json", "vocab-txt", "merges-txt", "tiktoken",
        "word2vec-text", "word2vec-binary", "edge-list", "node-labels", "wordnet-nouns", "idx", "png", "jpeg", "openai-request", "model-config",
    ]

    /// What each target reads (for the docs and `--help` of the driver).
    public static let descriptions: [String: String] = [
        "safetensors": "Safetensors.parse (AttendTensor)",
        "gguf": "GGUFFile(path), every tensor dequantized, quantizedMatrix, LlamaConfig.fromGGUF, ByteLevelBPETokenizer.fromGGUF + encode",
        "torch": "TorchCheckpoint.parse: ZIP (torch >= 1.6) and legacy pickle checkpoints, the safe unpickler",
        "zip": "ZipArchive(data) and ZipArchive.read of every entry (stored, deflated, Zip64)",
        "tokenizer-json": "ByteLevelBPETokenizer.load(tokenizerJSON:) + encode/decode",
        "vocab-txt": "WordPieceTokenizer.load(directory:) (vocab.txt) + encode/decode",
        "merges-txt": "ByteLevelBPETokenizer.load(vocabJSON:mergesText:) (fixed vocab.json) and CLIPTokenizer(merges:) + encode",
        "tiktoken": "ByteLevelBPETokenizer.fromTiktoken(path:specialTokens:) + encode",
        "word2vec-text": "WordVectors.load(from:format: .text) and format detection",
        "word2vec-binary": "WordVectors.load(from:format: .binary)",
        "edge-list": "Graph.load(edgeList:directed:) both ways",
        "node-labels": "NodeLabels.load",
        "wordnet-nouns": "WordNetNouns.parse (WordNet's data.noun) and ancestors(of:) every synset",
        "idx": "IDX.readUInt8 through GzipFile.read (plain or gzip-compressed)",
        "png": "Image.decode (libpng through CAttendImageCodecs)",
        "jpeg": "Image.decode (libjpeg through CAttendImageCodecs)",
        "openai-request": "OpenAIRequests.check for every endpoint (request body JSON, sampling options, JSON-schema constraints)",
        "model-config": "ConfigDecoding.decode + validate for BERT, GPT, OPT, Llama, CLIP, VisionLanguage, TextToImage and LoRA configs",
    ]

    /// Feeds `data` to the parser `name`; errors the parser throws are the expected answer and are dropped.
    public static func run(_ name: String, _ data: Data) {
        precondition(names.contains(name), "FuzzTargets: no target '\(name)' (targets: \(names.joined(separator: ", ")))")
        _ = try? check(name, data)
    }

    /// Feeds `data` to the parser `name` and lets its error through (a valid seed must not throw).
    public static func check(_ name: String, _ data: Data) throws {
        let sample = "Hello, world! It's 2024 \u{2014} na\u{EF}ve caf\u{E9} \u{6771}\u{4EAC} 3.14 <|endoftext|><|im_start|>user\n[CLS] don't  \t x\r\n\u{1F600}"
        switch name {
        case "safetensors":
            _ = try Safetensors.parse(data, source: "fuzz.safetensors")
        case "gguf":
            let file = try GGUFFile(try write(data, "model.gguf"))
            for tensor in file.tensorNames {
                _ = try file.tensor(tensor)
                _ = try file.quantizedMatrix(tensor)
            }
            _ = try? LlamaConfig.fromGGUF(file)
            if let tokenizer = try? ByteLevelBPETokenizer.fromGGUF(file) {
                _ = tokenizer.decode(tokenizer.encode(sample, allowSpecial: true))
            }
        case "torch":
            _ = try TorchCheckpoint.parse(data, source: "fuzz.pt")
        case "zip":
            let zip = try ZipArchive(data, source: "fuzz.zip")
            for entry in zip.entries { _ = try? zip.read(entry) }
        case "tokenizer-json":
            let tokenizer = try ByteLevelBPETokenizer.load(tokenizerJSON: try write(data, "tokenizer.json"))
            let ids = tokenizer.encode(sample, allowSpecial: true)
            _ = tokenizer.decode(ids)
            _ = tokenizer.encodeWithOffsets(sample, allowSpecial: false)
        case "vocab-txt":
            let path = try write(data, "vocab.txt")
            let tokenizer = try WordPieceTokenizer.load(directory: (path as NSString).deletingLastPathComponent)
            _ = tokenizer.decode(tokenizer.encode(sample, maxLength: 64))
            _ = tokenizer.encodeWithOffsets(sample, maxLength: 64)
        case "merges-txt":
            let vocab = try fixedVocabJSON()
            let path = try write(data, "merges.txt")
            // CLIP's tokenizer over the same merges (its file reader wants all 48,894 lines; the first 1,000 here keep
            // the target fast, since building its table costs more per merge than BPE parsing does).
            if let lines = String(data: data, encoding: .utf8)?.split(separator: "\n").prefix(1000).map(String.init).filter({ $0.split(separator: " ").count == 2 }),
               let clip = try? CLIPTokenizer(merges: lines) {
                _ = clip.decode(clip.modelInput(sample))
            }
            let tokenizer = try ByteLevelBPETokenizer.load(vocabJSON: vocab, mergesText: path)
            _ = tokenizer.decode(tokenizer.encode(sample, allowSpecial: true))
        case "tiktoken":
            let tokenizer = try ByteLevelBPETokenizer.fromTiktoken(path: try write(data, "ranks.tiktoken"), specialTokens: ["<|endoftext|>": 50256])
            _ = tokenizer.decode(tokenizer.encode(sample, allowSpecial: true))
        case "word2vec-text":
            let path = try write(data, "vectors.txt")
            _ = try? WordVectors.load(from: path)
            let vectors = try WordVectors.load(from: path, format: .text)
            if let first = vectors.words.first { _ = try vectors.nearest(to: first, k: 3) }
        case "word2vec-binary":
            let vectors = try WordVectors.load(from: try write(data, "vectors.bin"), format: .binary)
            if let first = vectors.words.first { _ = try vectors.nearest(to: first, k: 3) }
        case "edge-list":
            let path = try write(data, "graph.edges")
            let graph = try Graph.load(edgeList: path)
            _ = (0..<graph.nodeCount).reduce(0) { $0 + graph.degree($1) }
            _ = try Graph.load(edgeList: path, directed: true)
        case "node-labels":
            _ = try NodeLabels.load(try write(data, "nodes.labels")).classes
        case "wordnet-nouns":
            let nouns = try WordNetNouns.parse(data, file: "fuzz-data.noun")
            _ = nouns.words.keys.reduce(0) { $0 + nouns.ancestors(of: $1).count }
        case "idx":
            _ = try IDX.readUInt8(try write(data, "data-idx-ubyte"))
        case "png", "jpeg":
            _ = try Image.decode(data, source: "fuzz.\(name)").rgb()
        case "openai-request":
            var first: Error?
            for endpoint in OpenAIRequests.endpoints {
                do { try OpenAIRequests.check(body: data, endpoint: endpoint, contextLength: 2048, promptTokens: 16) } catch { first = first ?? error }
            }
            if let first { throw first }
        case "model-config":
            try modelConfigs(data)
        default:
            throw AttendError("FuzzTargets: no target '\(name)'")
        }
    }

    /// Every config type a model folder or checkpoint carries, decoded from the same bytes and validated; the first
    /// error is rethrown after all were tried.
    static func modelConfigs(_ data: Data) throws {
        var first: Error?
        func attempt(_ body: () throws -> Void) { do { try body() } catch { first = first ?? error } }
        attempt { try JSONDecoder().decode(BERTConfig.self, from: data).validate() }
        attempt { try ConfigDecoding.decode(GPTConfig.self, from: data, source: "config.json", kind: "a GPT-2 config").validate() }
        attempt {
            let opt = try ConfigDecoding.decode(OPTConfig.self, from: data, source: "config.json", kind: "an OPT config")
            var config = GPTConfig(vocabSize: opt.vocabSize, contextLength: opt.maxPositions, width: opt.hiddenSize,
                                   layerCount: opt.layerCount, headCount: opt.headCount)
            config.feedForwardSize = opt.ffnDim
            try config.validate()
        }
        attempt { try ConfigDecoding.decode(LlamaConfig.self, from: data, source: "config.json").validate(source: "config.json") }
        attempt { try ConfigDecoding.decode(CLIPConfig.self, from: data, source: "clip_config").validate(source: "clip_config") }
        attempt { try ConfigDecoding.decode(VisionLanguageConfig.self, from: data, source: "vlm_config").validate(source: "vlm_config") }
        attempt { try ConfigDecoding.decode(TextToImageConfig.self, from: data, source: "draw_config").validate(source: "draw_config") }
        attempt { try ConfigDecoding.decode(LoRAConfig.self, from: data, source: "adapter_config.json").validate(source: "adapter_config.json") }
        if let first { throw first }
    }

    // MARK: Files

    /// This process's scratch folder: parsers that read a path get the bytes in a file here (one path per name,
    /// rewritten for every input).
    static let directory: String = {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("attend-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: FuzzTargets.directory) }
        return dir
    }()

    /// Writes `data` to `name` in the scratch folder in place (open, write, close: FileManager's atomic write with its
    /// temporary file and rename would cost more than most parsers take).
    static func write(_ data: Data, _ name: String) throws -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw AttendError("\(path): cannot write the fuzz input (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        let written = data.withUnsafeBytes { raw -> Bool in
            var at = 0
            while at < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + at, raw.count - at)
                if n <= 0 { return false }
                at += n
            }
            return true
        }
        guard written else { throw AttendError("\(path): cannot write the fuzz input") }
        return path
    }

    /// A GPT-2-style vocab.json for the merges target: the 256 byte symbols, a few merged tokens and <|endoftext|>.
    static func fixedVocabJSON() throws -> String {
        let path = (directory as NSString).appendingPathComponent("vocab.json")
        if FileManager.default.fileExists(atPath: path) { return path }
        let printable = Array(33...126) + Array(161...172) + Array(174...255)
        var symbols = printable.map { String(UnicodeScalar(UInt8($0))) }
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            symbols.append(String(UnicodeScalar(UInt32(256 + n))!))
            n += 1
        }
        var vocab: [String: Int] = [:]
        for (i, s) in symbols.enumerated() { vocab[s] = i }
        for t in ["\u{120}t", "he", "\u{120}the", "in", "er", "\u{120}w", "or", "ld", "\u{120}world", "He", "ll", "llo", "Hello"] where vocab[t] == nil {
            vocab[t] = vocab.count
        }
        vocab["<|endoftext|>"] = vocab.count
        try JSONSerialization.data(withJSONObject: vocab, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }
}
