@testable import AttendModels
import AttendLM
import AttendTensor
import AttendTokenizers
import Foundation
import XCTest

/// What `--model X` means is decided in one place; what it cannot resolve names every try.
final class ModelLocatorTests: XCTestCase {
    let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    func temporaryFolder(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("attend-locator-\(name)-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func testUnresolvableNamesListEveryTry() throws {
        XCTAssertThrowsError(try ModelLocator.locate("no-such-model", kind: .languageModel)) {
            let m = "\($0)"
            XCTAssertTrue(m.contains("language model 'no-such-model' not found"), m)
            XCTAssertTrue(m.contains("path 'no-such-model': no such file or folder"), m)
            XCTAssertTrue(m.contains("SmolLM2-135M-Instruct"), "the short names are listed: \(m)")
            XCTAssertTrue(m.contains("not of the form org/name"), m)
        }
        // A hub id with '..' never reaches the network or the cache.
        XCTAssertFalse(ModelLocator.isHubRepoId("org/../../x"))
        XCTAssertFalse(ModelLocator.isHubRepoId("../x"))
        XCTAssertFalse(ModelLocator.isHubRepoId("org/.."))
        XCTAssertTrue(ModelLocator.isHubRepoId("HuggingFaceTB/SmolLM2-135M"))
        XCTAssertThrowsError(try HubClient(endpoint: "http://127.0.0.1:9", cacheRoot: "/nonexistent").download(repo: "org/../x", files: HubClient.modelFiles)) {
            XCTAssertTrue("\($0)".contains("is not a hub repo id"), "\($0)")
        }
        // A hub id that is neither cached nor downloadable (offline) says so among the tries.
        setenv("HF_HUB_OFFLINE", "1", 1)
        defer { unsetenv("HF_HUB_OFFLINE") }
        let hub = HubClient(endpoint: "http://127.0.0.1:9", cacheRoot: try temporaryFolder("hub").path)
        XCTAssertThrowsError(try ModelLocator.locate("org/absent", kind: .sentenceEmbedder, hub: hub)) {
            XCTAssertTrue("\($0)".contains("hub repo 'org/absent'") && "\($0)".contains("HF_HUB_OFFLINE"), "\($0)")
            XCTAssertTrue("\($0)".contains("all-MiniLM-L6-v2"), "the embedding short names are listed: \($0)")
        }
    }

    /// A copy of a tiny checkpoint fixture with a byte-level BPE tokenizer beside it, as a model folder has.
    func folderWithTokenizer(_ fixture: String, vocabulary: Int) throws -> String {
        let folder = try temporaryFolder(fixture)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent(fixture + "/" + f), to: folder.appendingPathComponent(f))
        }
        try ByteLevelBPETokenizer(tokens: (0..<vocabulary).map { "t\($0)" }, merges: [], specialTokenIds: []).save(directory: folder.path)
        return folder.path
    }

    func testFoldersLoadAsTypedLanguageModels() throws {
        let gpt = try ModelLocator.languageModel(try folderWithTokenizer("tiny-gpt2", vocabulary: 64))
        XCTAssertTrue(gpt.model is GPTModel)
        let opt = try ModelLocator.languageModel(try folderWithTokenizer("tiny-opt", vocabulary: 64))
        XCTAssertEqual((opt.model as? GPTModel)?.config.positionOffset, 2)
        let llama = try ModelLocator.languageModel(try folderWithTokenizer("tiny-llama", vocabulary: 64))
        XCTAssertTrue(llama.model is LlamaModel)
        XCTAssertEqual(llama.model.layerCount, 2)
        // Every family runs through the same engine.
        for loaded in [gpt, opt, llama] {
            var o = SamplingOptions()
            o.maxTokens = 3
            XCTAssertEqual(try Generation.generate(model: loaded.model, tokenizer: loaded.tokenizer, prompt: [1, 2], options: o).tokens.count, 3)
        }
        // A tokenizer larger than the model's vocabulary is refused by name.
        XCTAssertThrowsError(try ModelLocator.languageModel(try folderWithTokenizer("tiny-llama", vocabulary: 65))) {
            XCTAssertTrue("\($0)".contains("65 tokens, more than the model's vocabulary of 64"), "\($0)")
        }
        let folder = try temporaryFolder("notmodel")
        XCTAssertThrowsError(try ModelLocator.languageModel(folder.path)) { XCTAssertTrue("\($0)".contains("no config.json"), "\($0)") }
    }

    func testShortNameFindsTheFetchedGGUF() throws {
        let path = try ModelLocator.locate("SmolLM2-135M-Instruct", kind: .languageModel)
        XCTAssertTrue(path.hasSuffix("SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"), path)
        XCTAssertEqual(try ModelLocator.locate("all-MiniLM-L6-v2", kind: .sentenceEmbedder), ModelLocator.assetRoot + "/all-MiniLM-L6-v2")
        // The same short name is not a model of the other kind.
        XCTAssertThrowsError(try ModelLocator.locate("SmolLM2-135M-Instruct", kind: .sentenceEmbedder))
    }

    /// A config that disagrees with the tensors names the tensor, its shape in the file and the shape the config gives.
    func testConfigDisagreeingWithTensorsNamesBoth() throws {
        let folder = try temporaryFolder("mismatch")
        let source = fixtures.appendingPathComponent("tiny-llama")
        try FileManager.default.copyItem(at: source.appendingPathComponent("model.safetensors"), to: folder.appendingPathComponent("model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as! [String: Any]
        config["intermediate_size"] = 40
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try LlamaModel.load(huggingFace: folder.path)) {
            let m = "\($0)"
            XCTAssertTrue(m.contains("model.layers.0.mlp.gate_proj.weight") && m.contains("[48, 32]") && m.contains("[40, 32]"), m)
        }
        config["intermediate_size"] = 48
        config["num_attention_heads"] = 12.5
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try LlamaModel.load(huggingFace: folder.path)) {
            XCTAssertTrue("\($0)".contains("key 'num_attention_heads': expected Int"), "\($0)")
        }
        config["num_attention_heads"] = 0
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try LlamaModel.load(huggingFace: folder.path)) {
            XCTAssertTrue("\($0)".contains("num_attention_heads is 0"), "\($0)")
        }
    }
}
