@testable import AttendModels
import AttendLM
import AttendTensor
import AttendTokenizers
import Foundation
import XCTest

final class GenerationTests: XCTestCase {
    func llamaCpp() throws -> [String: Any] {
        let url = Bundle.module.url(forResource: "smollm2_llamacpp", withExtension: "json", subdirectory: "Fixtures")!
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    func testByteLevelBPEMatchesLlamaCpp() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: smolLMPath), "run scripts/fetch-assets.sh SmolLM2-135M-Instruct")
        let tokenizer = try ByteLevelBPETokenizer.fromGGUF(GGUFFile(smolLMPath))
        let items = try XCTUnwrap(try llamaCpp()["tokenizer"] as? [[String: Any]])
        XCTAssertEqual(items.count, 12)
        for item in items {
            let text = item["text"] as! String
            let ids = tokenizer.encode(text)
            XCTAssertEqual(ids.map(Int.init), item["ids"] as! [Int], "text: \(text)")
            XCTAssertEqual(tokenizer.decode(ids), text, "round trip")
        }
    }

    /// Prompt ids must equal llama.cpp's. The exact float32 path (checked against numpy in LlamaTests)
    /// answers this prompt correctly and stops at the end of its turn.
    func testChatTemplatePromptIdsMatchLlamaCppAndGreedyStopsAtEndOfTurn() throws {
        let (file, model) = try smolLM()
        model.int8Activations = false
        defer { model.int8Activations = true }
        let tokenizer = try ByteLevelBPETokenizer.fromGGUF(file)
        let template = ChatTemplate(ggufTemplate: file.metadata["tokenizer.chat_template"]?.string)
        let generations = try XCTUnwrap(try llamaCpp()["generations"] as? [[String: Any]])
        XCTAssertEqual(generations.count, 4)
        for g in generations {
            let prompt = tokenizer.encode(template.render([("user", g["prompt"] as! String)]))
            XCTAssertEqual(prompt.map(Int.init), g["prompt_ids"] as! [Int])
        }
        var options = SamplingOptions()
        options.maxTokens = 20
        var streamed = ""
        let prompt = tokenizer.encode(template.render([("user", "What is the capital of France?")]))
        let result = try Generation.generate(model: model, tokenizer: tokenizer, prompt: prompt, options: options) { streamed += $0 }
        XCTAssertEqual(result.text, "The capital of France is Paris.")
        XCTAssertEqual(result.finishReason, "stop", "<|im_end|> ends the turn")
        XCTAssertEqual(streamed, result.text)
        options.stop = [" Paris"]
        XCTAssertEqual(try Generation.generate(model: model, tokenizer: tokenizer, prompt: prompt, options: options).text, "The capital of France is")
        // --ignore-eos (benchmarks time a fixed number of tokens): past <|im_end|> up to the limit.
        options.stop = []
        options.ignoreEOS = true
        options.maxTokens = 12
        let past = try Generation.generate(model: model, tokenizer: tokenizer, prompt: prompt, options: options)
        XCTAssertEqual(past.tokens.count, 12)
        XCTAssertTrue(past.tokens.contains(try XCTUnwrap(tokenizer.eosId)), "the end of the turn was generated and passed")
        XCTAssertTrue(past.text.hasPrefix("The capital of France is Paris."), past.text)
        XCTAssertEqual(past.finishReason, "length")
    }

    /// Penalties as OpenAI and Hugging Face define them, one at a time, where the wrong rule picks another token:
    /// presence once per seen token, frequency per occurrence, repetition dividing positive logits and multiplying
    /// negative ones; and the reported log-probabilities are the log-softmax.
    func testPenaltiesAndLogProbabilities() {
        var g = RandomGenerator(seed: 1)
        let logits: [Float] = [2, 2.9, 0, 0, 3]
        var o = SamplingOptions()
        o.presencePenalty = 0.5          // id 4 seen 3 times: 3 - 0.5 = 2.5 < 2.9 (per occurrence: 1.5, also below)
        o.frequencyPenalty = 0.05        // id 4: 3 - 0.5 - 0.15 = 2.35; swapped rules give 3 - 1.5 - 0.05 = 1.45
        XCTAssertEqual(Generation.pick(logits, context: [], generated: [4, 4, 4], options: o, generator: &g), 1)
        o = SamplingOptions()
        o.presencePenalty = 0.3
        o.frequencyPenalty = 0.05        // id 1 seen 3 times: 2.9 - 0.3 - 0.15 = 2.45 > 2.3 (id 4); swapped: 2.9 - 0.9 - 0.05 = 1.95
        XCTAssertEqual(Generation.pick([2, 2.9, 0, 0, 2.3], context: [], generated: [1, 1, 1], options: o, generator: &g), 1)
        o.presencePenalty = 0.05
        o.frequencyPenalty = 0.3         // 2.9 - 0.05 - 0.9 = 1.95 < 2.3 (id 4); swapped: 2.9 - 0.15 - 0.3 = 2.45 > 2.3
        XCTAssertEqual(Generation.pick([2, 2.9, 0, 0, 2.3], context: [], generated: [1, 1, 1], options: o, generator: &g), 4)
        o = SamplingOptions()
        o.repetitionPenalty = 2          // negative logits of seen tokens are multiplied: -1 -> -2, below id 1's -1.5
        XCTAssertEqual(Generation.pick([-1, -1.5, -3], context: [0], generated: [], options: o, generator: &g), 1)
        // Log-probabilities: logits far from 0 (the max term of the log-sum-exp matters).
        let far: [Float] = [30, 28, 25, 31]
        let entry = TokenLogprob(logits: far, token: 1, top: 2)
        let lse = 31 + Foundation.log(far.reduce(0.0) { $0 + Foundation.exp(Double($1) - 31) })
        XCTAssertEqual(Double(entry.logprob), 28 - lse, accuracy: 1e-5)
        XCTAssertEqual(entry.top.map(\.token), [3, 0])
        XCTAssertEqual(Double(entry.top[0].logprob), 31 - lse, accuracy: 1e-5)
    }

    func testSamplingFilters() {
        let logits: [Float] = [2, 1, 0.5, -1, 3]
        var g = RandomGenerator(seed: 1)
        var o = SamplingOptions()
        XCTAssertEqual(Generation.pick(logits, context: [], generated: [], options: o, generator: &g), 4, "greedy")
        o.temperature = 1
        o.topK = 1
        for _ in 0..<20 { XCTAssertEqual(Generation.pick(logits, context: [], generated: [], options: o, generator: &g), 4) }
        o.topK = nil
        o.minP = 0.3  // keeps tokens with p >= 0.3 p_max: ids 4 (3.0) and 0 (2.0, ratio e^-1 = 0.37)
        let seen = Set((0..<200).map { _ in Generation.pick(logits, context: [], generated: [], options: o, generator: &g) })
        XCTAssertEqual(seen, [4, 0])
        o.minP = nil
        o.topP = 0.5  // id 4 alone has p = 0.61
        XCTAssertEqual(Set((0..<50).map { _ in Generation.pick(logits, context: [], generated: [], options: o, generator: &g) }), [4])
        // Seeded sampling is reproducible.
        o.topP = nil
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        let x = (0..<30).map { _ in Generation.pick(logits, context: [], generated: [], options: o, generator: &a) }
        let y = (0..<30).map { _ in Generation.pick(logits, context: [], generated: [], options: o, generator: &b) }
        XCTAssertEqual(x, y)
        XCTAssertGreaterThan(Set(x).count, 1)
        // Temperature divides the logits: over 4,000 draws each id's frequency follows softmax(logits / T) within
        // 0.03 (at T = 0.25 id 4 has p = 0.98; multiplying instead would give it 0.27).
        for t: Float in [0.25, 4] {
            var q = SamplingOptions()
            q.temperature = t
            var r = RandomGenerator(seed: 3)
            var counts = [Int](repeating: 0, count: logits.count)
            for _ in 0..<4000 { counts[Int(Generation.pick(logits, context: [], generated: [], options: q, generator: &r))] += 1 }
            let e = logits.map { Foundation.exp(Double($0 / t)) }, z = e.reduce(0, +)
            for i in 0..<logits.count { XCTAssertEqual(Double(counts[i]) / 4000, e[i] / z, accuracy: 0.03, "temperature \(t), id \(i)") }
        }
        // Penalties: repetition divides the best logit 3 by 4 (0.75), leaving id 0 (2.0) best;
        // presence and frequency subtract 1 + 0.5 * 2 from id 4 (1.0), again leaving id 0.
        var p = SamplingOptions()
        p.repetitionPenalty = 4
        XCTAssertEqual(Generation.pick(logits, context: [4], generated: [], options: p, generator: &g), 0)
        p = SamplingOptions()
        p.presencePenalty = 1
        p.frequencyPenalty = 0.5
        XCTAssertEqual(Generation.pick(logits, context: [], generated: [4, 4], options: p, generator: &g), 0)
    }

    func testBeamSearch() throws {
        let (file, model) = try smolLM()
        let tokenizer = try ByteLevelBPETokenizer.fromGGUF(file)
        let prompt = tokenizer.encode(ChatTemplate(ggufTemplate: file.metadata["tokenizer.chat_template"]?.string)
            .render([("user", "Name a color.")]))
        var options = SamplingOptions()
        options.maxTokens = 8
        let greedy = try Generation.generate(model: model, tokenizer: tokenizer, prompt: prompt, options: options).tokens
        let one = try Generation.beamSearch(model: model, eosId: tokenizer.eosId, prompt: prompt, beams: 1, maxTokens: 8, lengthPenalty: 0)
        XCTAssertEqual(one.tokens, greedy, "one beam is greedy decoding")
        // With length penalty 0 the score is the total log-probability: more beams can only find better.
        let three = try Generation.beamSearch(model: model, eosId: tokenizer.eosId, prompt: prompt, beams: 3, maxTokens: 8, lengthPenalty: 0)
        XCTAssertGreaterThanOrEqual(three.score, one.score - 1e-4)
        XCTAssertThrowsError(try Generation.beamSearch(model: model, eosId: nil, prompt: prompt, beams: 0, maxTokens: 4))
    }

    /// Beam search wide enough to keep every hypothesis returns what enumerating every sequence finds: the best score
    /// logP / length^lengthPenalty over the sequences that end in EOS (length counting it) and those cut at maxTokens,
    /// for length penalties 0 (raw log-probability, with early stopping), 1 and 2 (which favour longer answers).
    /// The enumeration scores sequences through the training path (no KV cache), the search through the cache.
    func testLLMBeamSearchEqualsExhaustiveEnumeration() throws {
        let (vocabulary, eos, maxTokens) = (5, Int32(4), 3)
        var winners: Set<[Int32]> = []
        for seed: UInt64 in [3, 5] {
            var g = RandomGenerator(seed: seed)
            let model = GPTModel(GPTConfig(vocabSize: vocabulary, contextLength: 16, width: 16, layerCount: 2, headCount: 2), generator: &g)
            // Larger weights make the next-token distributions peaked, so that sequences differ clearly in score.
            for p in model.parameters() { for i in 0..<p.count { p.pointer[i] *= 4 } }
            let prompt: [Int32] = [1, 2]
            // Every continuation: log-probabilities of the next token after each prefix of up to maxTokens - 1 tokens.
            var sequences: [(tokens: [Int32], logProb: Double, finished: Bool)] = []
            func extend(_ prefix: [Int32], _ logProb: Double) {
                let ids = prompt + prefix
                let logits = withNoGrad { model.logits(IntTensor(ids, shape: [1, ids.count])) }.toArray().suffix(vocabulary).map { Double($0) }
                let m = logits.max()!, logZ = m + Foundation.log(logits.reduce(0) { $0 + Foundation.exp($1 - m) })
                for token in 0..<Int32(vocabulary) {
                    let p = logProb + logits[Int(token)] - logZ
                    if token == eos { sequences.append((prefix, p, true)); continue }
                    if prefix.count + 1 == maxTokens { sequences.append((prefix + [token], p, false)) } else { extend(prefix + [token], p) }
                }
            }
            extend([], 0)
            XCTAssertEqual(sequences.count, 1 + 4 + 16 + 64, "EOS after 0, 1 or 2 tokens, or 3 tokens cut at maxTokens")
            for lengthPenalty: Float in [0, 1, 2] {
                let scored = sequences.map { s -> ([Int32], Double) in
                    (s.tokens, s.logProb / Foundation.pow(Double(max(s.tokens.count + (s.finished ? 1 : 0), 1)), Double(lengthPenalty)))
                }.sorted { $0.1 > $1.1 }
                XCTAssertGreaterThan(scored[0].1 - scored[1].1, 1e-3, "seed \(seed): the best sequence is clear of the second")
                let beam = try Generation.beamSearch(model: model, eosId: eos, prompt: prompt, beams: 64, maxTokens: maxTokens,
                                                     lengthPenalty: lengthPenalty)
                XCTAssertEqual(beam.tokens, scored[0].0, "seed \(seed), length penalty \(lengthPenalty)")
                XCTAssertEqual(Double(beam.score), scored[0].1, accuracy: 1e-4, "seed \(seed), length penalty \(lengthPenalty)")
                winners.insert(scored[0].0)
            }
        }
        XCTAssertGreaterThanOrEqual(winners.count, 3, "the length penalty changes which sequence wins: \(winners)")
    }

    func testChatTemplateRendersChatML() {
        let t = ChatTemplate(ggufTemplate: "{{ '<|im_start|>system\nBe brief.<|im_end|>\n' }}")
        XCTAssertEqual(t.defaultSystem, "Be brief.")
        XCTAssertEqual(t.render([("user", "Hi")]), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(t.render([("system", "S"), ("user", "Hi")]), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }
}
