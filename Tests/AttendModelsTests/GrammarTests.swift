@testable import AttendLM
import AttendModels
import AttendTokenizers
import AttendTensor
import XCTest

final class GrammarTests: XCTestCase {
    func testDebug() throws {
        let schema = try String(contentsOfFile: "/tmp/model.json", encoding: .utf8)
        let loaded = try ModelLocator.languageModel("SmolLM2-135M-Instruct")
        var o = SamplingOptions()
        o.maxTokens = 60
        o.constraint = .jsonSchema(schema)
        let prompt = try loaded.tokenizer.encode("<|im_start|>user\nDescribe GPT-4 (released by OpenAI in 2023; multimodal, strong reasoning) as JSON.<|im_end|>\n<|im_start|>assistant\n", allowSpecial: true)
        let g = try o.constraint!.compile()
        var c = GrammarConstraint(grammar: g, tokenizer: loaded.tokenizer)
        do {
        _ = try Generation.decode(model: loaded.model, input: LMInput(prompt), options: o, eosId: nil, constraint: c) { id in
            print(id, loaded.tokenizer.decode([id]).debugDescription, c.allows(id), c.state.stacks.count)
            c.accept(id)
            return true
        }
        } catch { print(error); print(c.state) }
    }
}
