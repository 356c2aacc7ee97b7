import Foundation
import Testing
import Tensor
@testable import Prompter

/// What tools/prompter/make_llm_fixtures.py recorded with transformers (f32 math on the stored weights).
private struct LLMExpected: Decodable {
    var prompt: [Int]
    var generation_prompt: [Int]
    var greedy: [Int]
    var turn1_prompt: [Int]
    var turn1_reply: [Int]
    var turn2_prompt: [Int]
    var turn2_reply: [Int]
}

private let llmFixtures = ["qwen2-bf16-tied-sharded", "llama-gqa-f32", "llama3-rope-bias-bf16", "mistral-sliding-f32",
                           "qwen2-sliding-f32"]

private func llmFolder(_ name: String) -> String { fixturePath("llm/\(name)") }

private func expected(_ name: String) throws -> LLMExpected {
    try JSONDecoder().decode(LLMExpected.self, from: Data(contentsOf: URL(fileURLWithPath: llmFolder(name) + "/expected.json")))
}

private func referenceLogits(_ name: String) throws -> Tensor {
    try SafeTensorsFile(path: llmFolder(name) + "/expected.safetensors").tensor("logits")
}

/// max |a - b| and max |b| over two equally shaped tensors.
private func maxDiff(_ a: Tensor, _ b: Tensor) -> (diff: Float, scale: Float) {
    precondition(a.shape == b.shape, "shapes \(a.shape) and \(b.shape)")
    var d: Float = 0, s: Float = 0
    for (x, y) in zip(a.scalars, b.scalars) { d = max(d, abs(x - y)); s = max(s, abs(y)) }
    return (d, s)
}

private func configError(_ json: String, file: String = "/models/m/config.json") -> PrompterError? {
    do { _ = try LLMConfig(json: Array(json.utf8), source: file); return nil } catch { return error as? PrompterError }
}

private func tempDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmtests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Writes the tensors of `source` under new names (`rename` returns nil to drop one) into one safetensors file.
private func rewrite(_ source: any TensorSource, to path: String, rename: (String) -> String?) throws {
    var w = SafeTensorsWriter()
    for key in source.keys {
        guard let newKey = rename(key) else { continue }
        let t = try source.stored(key)
        try w.add(newKey, dtype: t.dtype, shape: t.shape, bytes: Array(t.bytes))
    }
    try w.write(to: path)
}

@Suite struct LLMTests {
    // MARK: Config

    @Test func parsesFixtureConfigs() throws {
        let q = try LLMConfig(folder: llmFolder("qwen2-bf16-tied-sharded"))
        #expect(q.architecture == .qwen2 && q.qkvBias && !q.outputBias && q.tieWordEmbeddings)
        #expect(q.ropeTheta == 1_000_000 && q.ropeScaling == nil && q.headDim == 8 && q.numKeyValueHeads == 2)
        #expect(q.dtype == "bfloat16" && q.rmsNormEps == 1e-6 && q.vocabSize == 128)
        let l = try LLMConfig(folder: llmFolder("llama-gqa-f32"))
        #expect(l.architecture == .llama && !l.qkvBias && l.headDim == 16 && l.numKeyValueHeads == 1 && l.ropeTheta == 50_000)
        let l3 = try LLMConfig(folder: llmFolder("llama3-rope-bias-bf16"))
        #expect(l3.ropeScaling == .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192))
        #expect(l3.qkvBias && l3.outputBias && l3.mlpBias && l3.eosTokenIds == [2] && l3.bosTokenId == 1)
    }

    @Test func parsesTransformers4AndLLaVAConfigs() throws {
        let llava = """
        {"model_type": "llava_llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 100, "rms_norm_eps": 1e-5, "rope_theta": 20000.0,
         "rope_scaling": {"type": "linear", "factor": 2.0}, "torch_dtype": "float16", "eos_token_id": [2, 7],
         "mm_projector_type": "mlp2x_gelu", "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": 1024}
        """
        let c = try LLMConfig(json: Array(llava.utf8), source: "config.json")
        #expect(c.architecture == .llama && c.ropeTheta == 20000 && c.ropeScaling == .linear(factor: 2))
        #expect(c.numKeyValueHeads == 4 && c.headDim == 16 && c.dtype == "float16" && c.eosTokenIds == [2, 7])
        #expect(c.rmsNormEps == 1e-5 && !c.tieWordEmbeddings && c.maxPositionEmbeddings == 2048)

        let qwen = """
        {"model_type": "llava_Qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
         "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "rope_theta": 1000000.0,
         "sliding_window": 32768, "use_sliding_window": false, "tie_word_embeddings": true, "rope_scaling": null}
        """
        let q = try LLMConfig(json: Array(qwen.utf8), source: "config.json")
        #expect(q.architecture == .qwen2 && q.qkvBias && q.headDim == 64 && q.slidingWindow == nil && q.tieWordEmbeddings)

        // HF llava layout, text_config saved as a diff against LlamaConfig's defaults.
        let hf = """
        {"model_type": "llava", "text_config": {"model_type": "llama", "max_position_embeddings": 4096,
         "rms_norm_eps": 1e-05, "vocab_size": 32064}, "vision_config": {"model_type": "clip_vision_model"}, "tie_word_embeddings": false}
        """
        let h = try LLMConfig(json: Array(hf.utf8), source: "config.json")
        #expect(h.hiddenSize == 4096 && h.intermediateSize == 11008 && h.numHiddenLayers == 32 && h.vocabSize == 32064)
        #expect(h.numKeyValueHeads == 32 && h.headDim == 128 && h.maxPositionEmbeddings == 4096)
        let m = try LLMConfig(json: Array(#"{"model_type": "llava", "text_config": {"model_type": "mistral"}}"#.utf8), source: "c")
        #expect(m.architecture == .mistral && m.numKeyValueHeads == 8 && m.intermediateSize == 14336)
    }

    @Test func configErrorsNameFileAndKey() throws {
        let missing = configError(#"{"model_type": "llama", "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10}"#)
        #expect(missing?.source == "/models/m/config.json")
        #expect(missing?.message.contains("missing key \"hidden_size\"") == true)

        let rope = configError("""
        {"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
         "vocab_size": 10, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}
        """)
        #expect(rope?.message.contains("unsupported rope scaling type \"yarn\"") == true)
        #expect(rope?.message.contains("rope_scaling.rope_type") == true)
        let rope5 = configError("""
        {"model_type": "qwen2", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
         "vocab_size": 10, "rope_parameters": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}}
        """)
        #expect(rope5?.message.contains("\"dynamic\" at key \"rope_parameters.rope_type\"") == true)
        let llama3 = configError("""
        {"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
         "vocab_size": 10, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}}
        """)
        #expect(llama3?.message.contains("missing key \"rope_scaling.original_max_position_embeddings\"") == true)

        let bad = configError(#"{"model_type": "llama", "hidden_size": 8,"#, file: "/x/config.json")
        #expect(bad?.source == "/x/config.json" && bad?.message.hasPrefix("not valid JSON") == true)

        let type = configError(#"{"model_type": "gpt2"}"#)
        #expect(type?.message.contains("unsupported model_type \"gpt2\"") == true)
        let textConfig = configError(#"{"model_type": "llava", "text_config": {"model_type": "llama", "hidden_size": "big"}}"#)
        #expect(textConfig?.message.contains("key \"text_config.hidden_size\" is not an integer") == true)
        let gqa = configError(#"{"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10}"#)
        #expect(gqa?.message.contains("not a multiple of \"num_key_value_heads\"") == true)

        let dir = try tempDir()
        try Data("{\"model_type\": ".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        do { _ = try CausalLM.load(folder: dir); Issue.record("loaded a model with broken config.json") } catch let e as PrompterError {
            #expect(e.source == dir + "/config.json" && e.message.hasPrefix("not valid JSON"))
        }
    }

    /// Which layers attend through a sliding window, as transformers 5 resolves `sliding_window`,
    /// `use_sliding_window`, `max_window_layers` and `layer_types`.
    @Test func slidingWindowLayers() throws {
        #expect(try LLMConfig(folder: llmFolder("mistral-sliding-f32")).layerWindows == [4, 4])
        #expect(try LLMConfig(folder: llmFolder("qwen2-sliding-f32")).layerWindows == [nil, 5, 5])
        #expect(try LLMConfig(folder: llmFolder("llama-gqa-f32")).layerWindows == [nil, nil])
        func parse(_ extra: String, type: String = "qwen2") throws -> LLMConfig {
            try LLMConfig(json: Array(#"{"model_type": "\#(type)", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "vocab_size": 128\#(extra)}"#.utf8),
                          source: "config.json")
        }
        // LLMGA's Qwen2 configs: a window recorded but use_sliding_window false, so full attention.
        let llmga = try parse(#", "sliding_window": 4096, "use_sliding_window": false, "max_window_layers": 28"#)
        #expect(llmga.slidingWindow == nil && llmga.layerWindows == [nil, nil, nil, nil])
        #expect(try parse(#", "sliding_window": 8, "use_sliding_window": true, "max_window_layers": 2"#).layerWindows == [nil, nil, 8, 8])
        #expect(try parse(#", "sliding_window": 8, "use_sliding_window": true"#).layerWindows == [nil, nil, nil, nil])
        #expect(try parse(#", "sliding_window": 8"#, type: "mistral").layerWindows == [8, 8, 8, 8])
        #expect(try parse(#", "sliding_window": null"#, type: "mistral").layerWindows == [nil, nil, nil, nil])
        #expect(throws: PrompterError.self) { try parse(#", "sliding_window": 8, "use_sliding_window": true, "layer_types": ["full_attention"]"#) }
        #expect(throws: PrompterError.self) { try parse(#", "sliding_window": 0"#, type: "mistral") }
    }

    /// The window fixtures really exercise the window: the same weights with full attention give other logits.
    @Test func theWindowChangesTheFixtureLogits() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = llmFolder("mistral-sliding-f32")
        let config = try String(contentsOfFile: src + "/config.json", encoding: .utf8)
            .replacingOccurrences(of: #""sliding_window": 4"#, with: #""sliding_window": null"#)
        #expect(config.contains(#""sliding_window": null"#))
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: src + "/model.safetensors", toPath: dir + "/model.safetensors")
        let full = try CausalLM.load(folder: dir)
        let e = try expected("mistral-sliding-f32")
        let (d, s) = maxDiff(try full.forward(ids: e.prompt, cache: full.makeCache(), allLogits: true), try referenceLogits("mistral-sliding-f32"))
        #expect(d > 0.05 * s, "full attention should differ from the windowed reference: \(d) vs \(s)")
    }

    // MARK: Parity with transformers

    /// Logits of every prompt position against transformers' float32 forward of the same stored weights.
    /// Tolerance: max |ours − ref| ≤ 1e-4 · max |ref| (both compute in f32; only summation order differs).
    @Test(arguments: llmFixtures) func logitsMatchTransformers(_ name: String) throws {
        let model = try CausalLM.load(folder: llmFolder(name))
        let e = try expected(name)
        let ref = try referenceLogits(name)
        let logits = try model.forward(ids: e.prompt, cache: model.makeCache(), allLogits: true)
        let (d, s) = maxDiff(logits, ref)
        #expect(d <= 1e-4 * s, "\(name): max abs diff \(d), max |ref| \(s)")
        // The default returns the last position only.
        let last = try model.forward(ids: e.prompt, cache: model.makeCache())
        #expect(last.shape == [1, model.config.vocabSize])
        let (d2, _) = maxDiff(last, try ref.slice(first: e.prompt.count - 1..<e.prompt.count))
        #expect(d2 <= 1e-4 * s)
    }

    /// Greedy decoding (temperature 0) of 32 tokens equals transformers' `generate(do_sample=False)` exactly.
    @Test(arguments: llmFixtures) func greedyGenerationMatchesTransformers(_ name: String) throws {
        let model = try CausalLM.load(folder: llmFolder(name))
        let e = try expected(name)
        let r = try model.generate(ids: e.generation_prompt, cache: model.makeCache(capacity: 8),
                                   options: GenerationOptions(temperature: 0, maxNewTokens: 32))
        #expect(r.ids == e.greedy)
        #expect(r.stopReason == .maxNewTokens && r.text == "")
    }

    /// A second turn continues the first turn's KV cache and equals transformers generating from the whole history.
    @Test(arguments: llmFixtures) func secondTurnReusesTheCache(_ name: String) throws {
        let model = try CausalLM.load(folder: llmFolder(name))
        let e = try expected(name)
        let cache = model.makeCache(capacity: 4)
        let options = GenerationOptions(temperature: 0, maxNewTokens: 8)
        let first = try model.generate(ids: e.turn1_prompt, cache: cache, options: options)
        #expect(first.ids == e.turn1_reply)
        #expect(cache.count == e.turn1_prompt.count + 7)
        let second = try model.generate(ids: [first.ids.last!] + e.turn2_prompt, cache: cache, options: options)
        #expect(second.ids == e.turn2_reply)
        #expect(cache.capacity >= cache.count && cache.count == e.turn1_prompt.count + 8 + e.turn2_prompt.count + 7)
    }

    /// Feeding the prompt in pieces through the cache (1- and 2-token GEMV steps, 3+-token sgemm steps, a cache
    /// that has to grow) gives the logits of one full pass: max diff ≤ 1e-5 · max |logit|.
    @Test(arguments: llmFixtures) func cachedStepsEqualFullRecompute(_ name: String) throws {
        let model = try CausalLM.load(folder: llmFolder(name))
        let e = try expected(name)
        let full = try model.forward(ids: e.prompt, cache: model.makeCache(), allLogits: true)
        let cache = model.makeCache(capacity: 1)
        var rows: [Float] = []
        var at = 0
        for piece in [1, 3, 2, 1, 3] {
            let out = try model.forward(ids: Array(e.prompt[at..<at + piece]), cache: cache, allLogits: true)
            rows += out.scalars
            at += piece
        }
        #expect(at == e.prompt.count && cache.count == at && cache.capacity == 16)
        let (d, s) = maxDiff(try Tensor(shape: full.shape, scalars: rows), full)
        #expect(d <= 1e-5 * s, "\(name): max abs diff \(d)")
        try cache.truncate(to: 4)
        let again = try model.forward(ids: Array(e.prompt[4...]), cache: cache, allLogits: true)
        let (d2, _) = maxDiff(again, try Tensor(shape: [6, full.shape[1]], scalars: Array(full.scalars[(4 * full.shape[1])...])))
        #expect(d2 <= 1e-5 * s)
        #expect(throws: PrompterError.self) { try cache.truncate(to: 11) }
    }

    // MARK: Weight layouts and errors

    /// The same decoder under the HF Llava key layouts (transformers 5 `model.language_model.` and the older
    /// `language_model.model.`), with the config under `text_config`, gives the same logits.
    @Test func loadsHFLlavaLayouts() throws {
        for (name, layout) in [("qwen2-bf16-tied-sharded", LLMKeyLayout.hfLlava), ("llama-gqa-f32", .hfLlavaLegacy)] {
            let plain = try CausalLM.load(folder: llmFolder(name))
            let dir = try tempDir()
            try rewrite(plain.weights, to: dir + "/model.safetensors") { key in
                if key == "lm_head.weight" { return layout.lmHeadKey }
                return key.hasPrefix("model.") ? layout.decoderPrefix + key.dropFirst(6) : nil
            }
            let text = try String(contentsOfFile: llmFolder(name) + "/config.json", encoding: .utf8)
            try Data("{\"model_type\": \"llava\", \"image_token_index\": 32000, \"text_config\": \(text)}".utf8)
                .write(to: URL(fileURLWithPath: dir + "/config.json"))
            let model = try CausalLM.load(folder: dir)
            #expect(model.layout == layout)
            let e = try expected(name)
            let a = try model.forward(ids: e.prompt, cache: model.makeCache(), allLogits: true)
            let b = try plain.forward(ids: e.prompt, cache: plain.makeCache(), allLogits: true)
            #expect(a.scalars == b.scalars)
        }
    }

    @Test func missingWeightNamesKeyAndFile() throws {
        let plain = try CausalLM.load(folder: llmFolder("llama-gqa-f32"))
        let dir = try tempDir()
        try FileManager.default.copyItem(atPath: llmFolder("llama-gqa-f32") + "/config.json", toPath: dir + "/config.json")
        try rewrite(plain.weights, to: dir + "/model.safetensors") { $0 == "model.layers.1.mlp.down_proj.weight" ? nil : $0 }
        do {
            _ = try CausalLM.load(folder: dir)
            Issue.record("loaded a checkpoint without model.layers.1.mlp.down_proj.weight")
        } catch let e as PrompterError {
            #expect(e.message.contains("missing tensor \"model.layers.1.mlp.down_proj.weight\""))
            #expect(e.source == dir + "/model.safetensors")
        }
        // Untied model without lm_head.weight.
        try rewrite(plain.weights, to: dir + "/model.safetensors") { $0 == "lm_head.weight" ? nil : $0 }
        #expect(throws: PrompterError.self) { try CausalLM.load(folder: dir) }
        // No embedding under any known layout.
        try rewrite(plain.weights, to: dir + "/model.safetensors") { "decoder." + $0 }
        do { _ = try CausalLM.load(folder: dir); Issue.record("loaded unknown layout") } catch let e as PrompterError {
            #expect(e.message.contains("model.embed_tokens.weight") && e.source == dir + "/model.safetensors")
        }
        #expect(throws: PrompterError.self) { try plain.embed([5, 128]) }
    }

    /// GEMV on f32, f16 and bf16 weights (odd sizes: vector body, scalar tail, a partial 4-row group) against a
    /// Double reference of the widened weights: relative error ≤ 1e-5.
    @Test func gemvMatchesReference() throws {
        var rng = SplitMix64(seed: 7)
        for (rows, cols) in [(7, 37), (130, 64), (5, 16), (1000, 40)] {
            let values = (0..<rows * cols).map { _ in Float(rng.nextUnit() * 2 - 1) }
            let x = (0..<cols).map { _ in Float(rng.nextUnit() * 2 - 1) }
            let bias = (0..<rows).map { _ in Float(rng.nextUnit()) }
            for dtype in [DType.f32, .f16, .bf16] {
                var w = SafeTensorsWriter()
                try w.add("w", shape: [rows, cols], floats: values, as: dtype)
                let stored = try StoredTensor(key: "w", dtype: dtype, shape: [rows, cols],
                                              bytes: Array(w.serialized().suffix(rows * cols * dtype.byteSize)))
                let widened = try stored.floats()
                var y = [Float](repeating: .nan, count: rows)
                try x.withUnsafeBufferPointer { xp in
                    try bias.withUnsafeBufferPointer { bp in
                        try y.withUnsafeMutableBufferPointer { yp in
                            try GEMV.multiply(weight: stored, x: xp.baseAddress!, bias: bp.baseAddress!, y: yp.baseAddress!)
                        }
                    }
                }
                for r in 0..<rows {
                    var ref = Double(bias[r]), mag = abs(Double(bias[r]))
                    for c in 0..<cols { ref += Double(widened[r * cols + c]) * Double(x[c]); mag += abs(Double(widened[r * cols + c]) * Double(x[c])) }
                    #expect(abs(Double(y[r]) - ref) <= 1e-5 * mag, "\(dtype) \(rows)×\(cols) row \(r)")
                }
            }
        }
    }

    // MARK: Sampling

    @Test func samplerBehaviour() throws {
        let logits: [Float] = [0.1, 2.5, -1, 2.5, 0.7]
        var greedy = try TokenSampler(options: GenerationOptions(temperature: 0, seed: 1))
        #expect(greedy.sample(logits) == 1)   // the first of equal maxima, like argmax

        // Same seed, same draws; a different seed gives a different sequence on a flat distribution.
        let flat = [Float](repeating: 0, count: 1000)
        func draws(_ seed: UInt64) throws -> [Int] {
            var s = try TokenSampler(options: GenerationOptions(temperature: 1, seed: seed))
            return (0..<20).map { _ in s.sample(flat) }
        }
        #expect(try draws(42) == draws(42))
        #expect(try draws(42) != draws(43))
        #expect(Set(try draws(42)).count > 10)

        // Probabilities 0.5, 0.3, 0.15, 0.05 (logits = log p): top-p keeps the nucleus as TopPLogitsWarper does.
        let probs: [Double] = [0.15, 0.5, 0.05, 0.3]
        let l = probs.map { Float(Foundation.log($0)) }
        func kept(_ p: Float) throws -> [Int] {
            try TokenSampler(options: GenerationOptions(temperature: 1, topP: p)).candidates(l).map(\.token)
        }
        #expect(try kept(0.45) == [1])
        #expect(try kept(0.7) == [1, 3])
        #expect(try kept(0.81) == [1, 3, 0])
        #expect(try kept(1) == [1, 3, 0, 2])
        let c = try TokenSampler(options: GenerationOptions(temperature: 1, topP: 0.7)).candidates(l)
        #expect(abs(c[0].probability - 0.625) < 1e-6 && abs(c[1].probability - 0.375) < 1e-6)
        // Draws stay in the nucleus, with frequencies near 0.625 / 0.375.
        var s = try TokenSampler(options: GenerationOptions(temperature: 1, topP: 0.7, seed: 3))
        let d = (0..<4000).map { _ in s.sample(l) }
        #expect(Set(d) == [1, 3])
        #expect(abs(Double(d.filter { $0 == 1 }.count) / 4000 - 0.625) < 0.03)
        // Temperature sharpens: at 0.25 the top token's probability is 0.5^4 / Σ p^4.
        let t = try TokenSampler(options: GenerationOptions(temperature: 0.25)).candidates(l)
        #expect(abs(t[0].probability - 0.0625 / probs.map { $0 * $0 * $0 * $0 }.reduce(0, +)) < 1e-6)
        #expect(throws: PrompterError.self) { try TokenSampler(options: GenerationOptions(topP: 0)) }
    }

    // MARK: Generation control

    @Test func stopsOnStopStringsAndTokens() throws {
        let name = "qwen2-bf16-tied-sharded"
        let model = try CausalLM.load(folder: llmFolder(name))
        let e = try expected(name)
        let tok = try loadFixtureTokenizer("qwen2").tokenizer
        let options = GenerationOptions(temperature: 0, maxNewTokens: 32)
        let full = try model.generate(ids: e.generation_prompt, cache: model.makeCache(), options: options, tokenizer: tok)
        #expect(full.ids == e.greedy && full.text == tok.decode(e.greedy))
        // Stop at the first occurrence of a two-character piece of the reply.
        let text = Array(full.text)
        let stop = String(text[10..<12])
        let cutAt = full.text.range(of: stop)!.lowerBound
        let r = try model.generate(ids: e.generation_prompt, cache: model.makeCache(), options: options,
                                   stopStrings: ["<|im_end|>", stop], tokenizer: tok)
        #expect(r.stopReason == .stopString(stop))
        #expect(r.text == String(full.text[..<cutAt]))
        #expect(r.ids.count < 32 && Array(e.greedy.prefix(r.ids.count)) == r.ids)
        #expect(tok.decode(r.ids).contains(stop) && !tok.decode(Array(r.ids.dropLast())).contains(stop))

        let stopId = e.greedy[5]
        let first = e.greedy.firstIndex(of: stopId)!
        let s = try model.generate(ids: e.generation_prompt, cache: model.makeCache(), options: options,
                                   stopTokenIds: [stopId], tokenizer: tok)
        #expect(s.stopReason == .stopToken(stopId) && s.ids == Array(e.greedy[...first]))
        #expect(s.text == tok.decode(Array(e.greedy[..<first])))
        #expect(throws: PrompterError.self) {
            try model.generate(ids: e.generation_prompt, cache: model.makeCache(), options: options, stopStrings: ["x"])
        }
    }

    @Test func progressReportsAndCancels() throws {
        struct Cancelled: Error {}
        let name = "llama-gqa-f32"
        let model = try CausalLM.load(folder: llmFolder(name))
        let e = try expected(name)
        let options = GenerationOptions(temperature: 0.8, seed: 9, maxNewTokens: 10)
        var seen: [Int] = []
        let r = try model.generate(ids: e.generation_prompt, cache: model.makeCache(), options: options) { p in
            seen.append(p.tokens)
            #expect(p.maxTokens == 10)
        }
        #expect(seen == Array(1...10) && r.ids.count == 10)
        // Sampling with a seed is reproducible.
        let again = try model.generate(ids: e.generation_prompt, cache: model.makeCache(), options: options)
        #expect(again.ids == r.ids)

        var calls = 0
        let cache = model.makeCache()
        #expect(throws: Cancelled.self) {
            try model.generate(ids: e.generation_prompt, cache: cache, options: options) { _ in
                calls += 1
                if calls == 3 { throw Cancelled() }
            }
        }
        #expect(calls == 3 && cache.count == e.generation_prompt.count + 2)
    }
}
