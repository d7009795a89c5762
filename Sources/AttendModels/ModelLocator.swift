// The one place that decides what `--model X` means: a file, a folder, a Hugging Face hub repo id (the local
// hub cache, else a download), or a short name for a model that scripts/fetch-assets.sh installs. It returns
// a typed, loaded model; whatever it cannot resolve is reported with every place it looked.

import AttendLM
import AttendTensor
import AttendTokenizers
import Foundation

/// A language model ready to generate: the network, its tokenizer, its chat template and whether it wants a
/// BOS token, from a Hugging Face folder (Llama, Mistral, GPT-2 or OPT) or a GGUF file.
public struct LoadedLanguageModel {
    public var model: any LanguageModel
    public var tokenizer: ByteLevelBPETokenizer
    public var chatTemplate: String?
    public var addBos: Bool
    /// The file or folder it was loaded from.
    public var source: String

    public init(model: any LanguageModel, tokenizer: ByteLevelBPETokenizer, chatTemplate: String?, addBos: Bool, source: String) {
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.addBos = addBos
        self.source = source
    }

    /// Prompt ids for `text`: wrapped in the chat template as a user message when `chat`, else with the BOS
    /// token the model asks for.
    public func promptIds(_ text: String, chat: Bool) -> [Int32] {
        if chat { return tokenizer.encode(ChatTemplate(ggufTemplate: chatTemplate).render([("user", text)])) }
        var ids = tokenizer.encode(text)
        if let bos = tokenizer.bosId, addBos { ids.insert(bos, at: 0) }
        return ids
    }
}

/// Finds and loads models by what a user types.
///
/// ```swift
/// let chat = try ModelLocator.languageModel("SmolLM2-135M-Instruct")      // short name -> the fetched GGUF
/// let gpt2 = try ModelLocator.languageModel("exports/gpt2-austen")        // a folder
/// let hub = try ModelLocator.languageModel("HuggingFaceTB/SmolLM2-135M")  // hub cache, else a download
/// let embedder = try ModelLocator.sentenceEmbedder("all-MiniLM-L6-v2")
/// ```
public enum ModelLocator {
    public enum Kind: String {
        case languageModel = "language model"
        case sentenceEmbedder = "sentence embedding model"
    }

    /// Short names of the models that scripts/fetch-assets.sh fetches by package name: the asset folder and the
    /// file inside it to load (nil: the folder itself).
    public static let shortNames: [Kind: [String: (asset: String, file: String?)]] = [
        .languageModel: ["SmolLM2-135M-Instruct": ("SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")],
        .sentenceEmbedder: ["all-MiniLM-L6-v2": ("all-MiniLM-L6-v2", nil), "sentence-transformers/all-MiniLM-L6-v2": ("all-MiniLM-L6-v2", nil)],
    ]

    /// Where fetched assets live: $ATTEND_ASSETS, else .cache/assets under the current directory.
    public static var assetRoot: String {
        ProcessInfo.processInfo.environment["ATTEND_ASSETS"] ?? FileManager.default.currentDirectoryPath + "/.cache/assets"
    }

    /// A hub repo id: `org/name`, each part made of letters, digits, '-', '_' and '.', and neither "." nor "..".
    public static func isHubRepoId(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0.allSatisfy(allowed.contains) }
    }

    /// The file or folder `spec` names, for a model of `kind`. Tries, in order: an existing path; a short name
    /// (in the asset cache); a hub repo id (the local hub cache, else a download). Throws listing each try.
    public static func locate(_ spec: String, kind: Kind, hub: HubClient = HubClient()) throws -> String {
        var tried: [String] = []
        if FileManager.default.fileExists(atPath: spec) { return spec }
        tried.append("path '\(spec)': no such file or folder")
        let names = shortNames[kind] ?? [:]
        if let entry = names[spec] {
            let folder = assetRoot + "/" + entry.asset
            let path = entry.file.map { folder + "/" + $0 } ?? folder
            if FileManager.default.fileExists(atPath: entry.file == nil ? folder + "/config.json" : path) { return path }
            tried.append("short name '\(spec)': not in \(assetRoot) (run scripts/fetch-assets.sh \(entry.asset))")
        } else {
            tried.append("short names (\(names.keys.sorted().joined(separator: ", "))): '\(spec)' is none of them")
        }
        if isHubRepoId(spec) {
            if let cached = hub.cachedSnapshot(repo: spec) { return cached }
            do { return try hub.download(repo: spec, files: HubClient.modelFiles) } catch let e as AttendError {
                tried.append("hub repo '\(spec)': \(e.message)")
            }
        } else {
            tried.append("hub repo id: '\(spec)' is not of the form org/name")
        }
        throw AttendError("\(kind.rawValue) '\(spec)' not found; tried\n  - " + tried.joined(separator: "\n  - "))
    }

    /// Loads the language model `spec` names (GGUF file, Hugging Face folder, hub id or short name).
    /// `int8Activations` off gives exact float32 decoding on quantized GGUF weights.
    public static func languageModel(_ spec: String, int8Activations: Bool = true) throws -> LoadedLanguageModel {
        let path = try locate(spec, kind: .languageModel)
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        return isDirectory.boolValue ? try languageModel(folder: path) : try languageModel(gguf: path, int8Activations: int8Activations)
    }

    /// What a Hugging Face config.json says its family is.
    struct ModelType: Decodable {
        var modelType: String?
        enum CodingKeys: String, CodingKey { case modelType = "model_type" }
    }

    /// What tokenizer_config.json adds: the chat template and whether to prepend BOS.
    struct TokenizerConfig: Decodable {
        var chatTemplate: String?
        var addBosToken: Bool?
        enum CodingKeys: String, CodingKey { case chatTemplate = "chat_template", addBosToken = "add_bos_token" }
    }

    /// A Hugging Face folder: config.json (its model_type picks the family), model.safetensors, tokenizer.json or
    /// vocab.json + merges.txt, and optionally tokenizer_config.json (chat_template, add_bos_token).
    public static func languageModel(folder path: String) throws -> LoadedLanguageModel {
        let configPath = path + "/config.json"
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw AttendError("\(path): not a model folder (no config.json)")
        }
        let modelType = try ConfigDecoding.decode(ModelType.self, from: configData, source: configPath).modelType ?? "llama"
        let model: any LanguageModel
        switch modelType {
        case "gpt2": model = try GPTModel.loadHuggingFace(directory: path)
        case "opt": model = try GPTModel.loadOPT(directory: path)
        case "llama", "mistral": model = try LlamaModel.load(huggingFace: path)
        default: throw AttendError("\(configPath): model_type '\(modelType)' is not supported (llama, mistral, gpt2, opt)")
        }
        let tokenizer = FileManager.default.fileExists(atPath: path + "/tokenizer.json")
            ? try ByteLevelBPETokenizer.load(tokenizerJSON: path + "/tokenizer.json")
            : try ByteLevelBPETokenizer.load(vocabJSON: path + "/vocab.json", mergesText: path + "/merges.txt")
        guard tokenizer.tokens.count <= model.vocabularySize else {
            throw AttendError("\(path): the tokenizer has \(tokenizer.tokens.count) tokens, more than the model's vocabulary of \(model.vocabularySize)")
        }
        var extra = TokenizerConfig()
        if let data = FileManager.default.contents(atPath: path + "/tokenizer_config.json") {
            extra = try ConfigDecoding.decode(TokenizerConfig.self, from: data, source: path + "/tokenizer_config.json")
        }
        return LoadedLanguageModel(model: model, tokenizer: tokenizer, chatTemplate: extra.chatTemplate, addBos: extra.addBosToken ?? false, source: path)
    }

    /// A Llama-architecture GGUF file, with the tokenizer and chat template in its metadata.
    public static func languageModel(gguf path: String, int8Activations: Bool = true) throws -> LoadedLanguageModel {
        let file = try GGUFFile(path)
        let model = try LlamaModel.load(gguf: file)
        model.int8Activations = int8Activations
        let tokenizer = try ByteLevelBPETokenizer.fromGGUF(file)
        guard tokenizer.tokens.count <= model.vocabularySize else {
            throw AttendError("\(path): the tokenizer has \(tokenizer.tokens.count) tokens, more than the model's vocabulary of \(model.vocabularySize)")
        }
        return LoadedLanguageModel(model: model, tokenizer: tokenizer, chatTemplate: file.metadata["tokenizer.chat_template"]?.string,
                                   addBos: file.metadata["tokenizer.ggml.add_bos_token"] == .bool(true), source: path)
    }

    /// Loads the sentence-transformers model `spec` names (folder, hub id or short name).
    public static func sentenceEmbedder(_ spec: String) throws -> SentenceEmbedder {
        let path = try locate(spec, kind: .sentenceEmbedder)
        return try SentenceEmbedder.load(directory: path)
    }
}
