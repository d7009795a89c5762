// Replays every input fuzzing ever found (Regressions/TARGET/FILE, written by scripts/fuzz.sh) through the same
// targets the fuzzer drives, without sanitizers: a parser that traps again on one of them fails this test. Also checks
// that valid files of every target parse, so a target that stopped reaching its parser would be noticed.

import AttendFuzzing
import Foundation
import XCTest

final class FuzzRegressionTests: XCTestCase {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let regressions = here.appendingPathComponent("Regressions")
    static let tests = here.deletingLastPathComponent()

    /// Target folders in Regressions/ (files beside them, such as README.md, are not inputs).
    func regressionFolders() throws -> [URL] {
        let entries = try FileManager.default.contentsOfDirectory(at: Self.regressions, includingPropertiesForKeys: [.isDirectoryKey])
        return try entries.filter { try $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory == true }.sorted { $0.path < $1.path }
    }

    func testRegressionFoldersNameKnownTargets() throws {
        for folder in try regressionFolders() {
            XCTAssertTrue(FuzzTargets.names.contains(folder.lastPathComponent),
                          "Regressions/\(folder.lastPathComponent) names no fuzz target (targets: \(FuzzTargets.names.joined(separator: ", ")))")
        }
    }

    func testEveryRegressionInputIsAnswered() throws {
        var replayed = 0
        for folder in try regressionFolders() where FuzzTargets.names.contains(folder.lastPathComponent) {
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
            for file in files {
                // A trap here ends the test process; the file's name in the log says which input it was. An error is
                // the right answer (printed, so the log shows what each input is refused with).
                let data = try Data(contentsOf: folder.appendingPathComponent(file))
                do {
                    try FuzzTargets.check(folder.lastPathComponent, data)
                    print("Regressions/\(folder.lastPathComponent)/\(file): accepted")
                } catch {
                    print("Regressions/\(folder.lastPathComponent)/\(file): \(String("\(error)".prefix(300)))")
                }
                replayed += 1
            }
        }
        print("replayed \(replayed) inputs fuzzing found")
        // Counted apart from the replay: every file under Regressions/*/ (hidden files aside) was replayed.
        var stored = 0
        for folder in try regressionFolders() {
            let entries = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: [.isRegularFileKey])
            stored += try entries.filter { try !$0.lastPathComponent.hasPrefix(".") && $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true }.count
        }
        XCTAssertGreaterThan(replayed, 0)
        XCTAssertEqual(replayed, stored, "inputs replayed against files under Regressions/*/")
    }

    /// One valid input per target, from the committed fixtures or written here: each must parse without an error.
    static let seeds: [(target: String, data: () throws -> Data)] = [
        ("safetensors", { try fixture("AttendNNTests/Fixtures/ops.safetensors") }),
        ("gguf", { try fixture("AttendModelsTests/Fixtures/tiny_types.gguf") }),
        ("torch", { try fixture("AttendTensorTests/Fixtures/torch/state-zip.pt") }),
        ("torch", { try fixture("AttendTensorTests/Fixtures/torch/state-legacy.pt") }),
        ("zip", { try fixture("AttendTensorTests/Fixtures/torch/state-zip.pt") }),
        ("tokenizer-json", { try fixture("AttendTokenizersTests/Fixtures/bpe_trained_tokenizer.json") }),
        ("vocab-txt", { Data("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo\nworld\n,\n!\n".utf8) }),
        ("merges-txt", { Data("#version: 0.2\nH e\nl l\nHe ll\nHell o\n\u{120} w\no r\n".utf8) }),
        ("tiktoken", { Data("IQ== 0\nIg== 1\nSGVsbG8= 2\nIHdvcmxk 3\n".utf8) }),
        ("word2vec-text", { try fixture("AttendEmbeddingsTests/Fixtures/gensim_vectors.txt") }),
        ("word2vec-binary", { try fixture("AttendEmbeddingsTests/Fixtures/gensim_vectors.bin") }),
        ("edge-list", { try fixture("AttendEmbeddingsTests/Fixtures/karate.edges") }),
        ("node-labels", { try fixture("AttendEmbeddingsTests/Fixtures/karate.labels") }),
        ("wordnet-nouns", { Data("  1 This software and database is being provided\n00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04431553 n 0000 | that which exists\n02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 001 @ 00001740 n 0000 | a member of the genus Canis\n02109047 05 n 02 Great_Dane 0 Dane 0 002 @ 02084071 n 0000 @i 00001740 n 0000 | very large powerful smooth-coated breed\n".utf8) }),
        ("idx", { Data([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2] + [1, 2, 3, 4]) }),
        ("png", { try fixture("AttendVisionTests/Fixtures/palette.png") }),
        ("png", { try fixture("AttendVisionTests/Fixtures/grey16-interlaced.png") }),
        ("jpeg", { try fixture("AttendVisionTests/Fixtures/progressive.jpg") }),
        ("openai-request", { Data(#"{"model": "m", "messages": [{"role": "user", "content": "Hi"}], "prompt": "Hi", "input": "Hi", "answer": "A", "max_tokens": 8}"#.utf8) }),
        ("model-config", { try fixture("AttendModelsTests/Fixtures/tiny-llama/config.json") }),
    ]

    static func fixture(_ path: String) throws -> Data { try Data(contentsOf: tests.appendingPathComponent(path)) }

    func testValidInputsParse() throws {
        XCTAssertEqual(Set(Self.seeds.map(\.target)), Set(FuzzTargets.names), "every fuzz target has a valid input here")
        for (target, data) in Self.seeds {
            let bytes = try data()
            if target == "model-config" {
                // One file is one config type; the target tries them all, so only the first error would say which failed.
                FuzzTargets.run(target, bytes)
                continue
            }
            XCTAssertNoThrow(try FuzzTargets.check(target, bytes), "\(target): a valid input was refused")
        }
    }

    func testUnknownTargetIsAnError() {
        XCTAssertThrowsError(try FuzzTargets.check("no-such-parser", Data()))
    }
}
