import Foundation
import Tensor

/// Where a decoder's tensors sit in a checkpoint: `<decoderPrefix>embed_tokens.weight`,
/// `<decoderPrefix>layers.N.…`, `<decoderPrefix>norm.weight`, and the output projection `lmHeadKey`.
public struct LLMKeyLayout: Sendable, Equatable, Hashable {
    public var decoderPrefix: String
    public var lmHeadKey: String

    public init(decoderPrefix: String, lmHeadKey: String) {
        self.decoderPrefix = decoderPrefix
        self.lmHeadKey = lmHeadKey
    }

    /// transformers' *ForCausalLM and LLaVA's `llava_llama`/`llava_mistral`/`llava_qwen2` checkpoints.
    public static let plain = LLMKeyLayout(decoderPrefix: "model.", lmHeadKey: "lm_head.weight")
    /// HF `LlavaForConditionalGeneration` as transformers ≥ 4.52/5 saves it.
    public static let hfLlava = LLMKeyLayout(decoderPrefix: "model.language_model.", lmHeadKey: "lm_head.weight")
    /// HF `LlavaForConditionalGeneration` as older transformers saved it.
    public static let hfLlavaLegacy = LLMKeyLayout(decoderPrefix: "language_model.model.", lmHeadKey: "language_model.lm_head.weight")

    /// The first of `plain`, `hfLlava`, `hfLlavaLegacy` whose `embed_tokens.weight` exists in `source`.
    public static func detect(in source: any TensorSource) throws -> LLMKeyLayout {
        for layout in [plain, hfLlava, hfLlavaLegacy] where source.contains(layout.decoderPrefix + "embed_tokens.weight") {
            return layout
        }
        throw PrompterError("no decoder embedding found: none of \"model.embed_tokens.weight\", \"model.language_model.embed_tokens.weight\", \"language_model.model.embed_tokens.weight\"", source: source.name)
    }
}

/// A Llama-architecture causal decoder (Llama/Vicuna, Mistral, Qwen2): RMSNorm, rotary embeddings (rotate_half),
/// grouped-query attention, SwiGLU MLP; Qwen2's q/k/v biases and Llama's optional attention/MLP biases.
///
/// Weights stay in their stored dtype (bf16/f16/f32), memory-mapped by the `TensorSource`; only norm weights and
/// biases are converted to f32 at load. All arithmetic is f32. Single-token decoding reads the weights directly
/// with `GEMV.multiply`; prompts go through sgemm on converted weight tiles (`GEMV.linear`).
///
/// Inputs are embeddings, so that LLaVA can splice image features between token embeddings: `embed(_:)` gives
/// token embeddings, `forward(embeddings:cache:allLogits:)` runs them and appends to the cache.
public final class CausalLM: Sendable {
    public let config: LLMConfig
    public let layout: LLMKeyLayout
    /// The checkpoint the weights are mapped from.
    public let weights: any TensorSource

    struct Layer: Sendable {
        var inputNorm: [Float], postNorm: [Float]
        var q: StoredTensor, k: StoredTensor, v: StoredTensor, o: StoredTensor
        var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?, oBias: [Float]?
        var gate: StoredTensor, up: StoredTensor, down: StoredTensor
        var gateBias: [Float]?, upBias: [Float]?, downBias: [Float]?
    }

    let layers: [Layer]
    let embedTokens: StoredTensor
    let finalNorm: [Float]
    let lmHead: StoredTensor
    let invFreq: [Float]

    /// Loads the decoder of `config` from `weights`; `layout` nil detects it (`LLMKeyLayout.detect`).
    /// When the output projection is absent and `tie_word_embeddings` is true, the embedding matrix is used.
    /// Throws `PrompterError` naming the checkpoint and key of a missing tensor or one of the wrong shape or dtype.
    public init(config: LLMConfig, weights: any TensorSource, layout: LLMKeyLayout? = nil) throws {
        self.config = config
        self.weights = weights
        let layout = try layout ?? LLMKeyLayout.detect(in: weights)
        self.layout = layout
        let c = config
        func tensor(_ key: String, _ shape: [Int]) throws -> StoredTensor {
            let t: StoredTensor
            do { t = try weights.stored(key) } catch {
                if case let .missingKey(key, file, suggestions) = error {
                    let hint = suggestions.isEmpty ? "" : " (similar: \(suggestions.prefix(3).joined(separator: ", ")))"
                    throw PrompterError("missing tensor \"\(key)\"\(hint)", source: file)
                }
                throw PrompterError("\(error)", source: weights.name)
            }
            guard t.shape == shape else {
                throw PrompterError("tensor \"\(key)\" has shape \(t.shape), expected \(shape) from config.json", source: t.source)
            }
            guard t.dtype == .f32 || t.dtype == .f16 || t.dtype == .bf16 else {
                throw PrompterError("tensor \"\(key)\" has dtype \(t.dtype.rawValue); expected F32, F16 or BF16", source: t.source)
            }
            return t
        }
        func vector(_ key: String, _ n: Int) throws -> [Float] {
            let t = try tensor(key, [n])
            do { return try t.floats() } catch { throw PrompterError("\(error)", source: t.source) }
        }
        func bias(_ key: String, _ n: Int, _ present: Bool) throws -> [Float]? {
            present ? try vector(key, n) : nil
        }
        let p = layout.decoderPrefix
        let h = c.hiddenSize, qOut = c.numAttentionHeads * c.headDim, kvOut = c.numKeyValueHeads * c.headDim
        var layers: [Layer] = []
        for i in 0..<c.numHiddenLayers {
            let l = "\(p)layers.\(i)."
            layers.append(Layer(
                inputNorm: try vector(l + "input_layernorm.weight", h),
                postNorm: try vector(l + "post_attention_layernorm.weight", h),
                q: try tensor(l + "self_attn.q_proj.weight", [qOut, h]),
                k: try tensor(l + "self_attn.k_proj.weight", [kvOut, h]),
                v: try tensor(l + "self_attn.v_proj.weight", [kvOut, h]),
                o: try tensor(l + "self_attn.o_proj.weight", [h, qOut]),
                qBias: try bias(l + "self_attn.q_proj.bias", qOut, c.qkvBias),
                kBias: try bias(l + "self_attn.k_proj.bias", kvOut, c.qkvBias),
                vBias: try bias(l + "self_attn.v_proj.bias", kvOut, c.qkvBias),
                oBias: try bias(l + "self_attn.o_proj.bias", h, c.outputBias),
                gate: try tensor(l + "mlp.gate_proj.weight", [c.intermediateSize, h]),
                up: try tensor(l + "mlp.up_proj.weight", [c.intermediateSize, h]),
                down: try tensor(l + "mlp.down_proj.weight", [h, c.intermediateSize]),
                gateBias: try bias(l + "mlp.gate_proj.bias", c.intermediateSize, c.mlpBias),
                upBias: try bias(l + "mlp.up_proj.bias", c.intermediateSize, c.mlpBias),
                downBias: try bias(l + "mlp.down_proj.bias", h, c.mlpBias)))
        }
        self.layers = layers
        embedTokens = try tensor(p + "embed_tokens.weight", [c.vocabSize, h])
        finalNorm = try vector(p + "norm.weight", h)
        if weights.contains(layout.lmHeadKey) || !c.tieWordEmbeddings {
            lmHead = try tensor(layout.lmHeadKey, [c.vocabSize, h])
        } else {
            lmHead = embedTokens
        }
        invFreq = c.ropeInverseFrequencies()
    }

    /// Loads `config.json` and the weights of a model folder: `model.safetensors.index.json` (sharded) when present,
    /// else `model.safetensors`. `layout` nil detects the key layout.
    public static func load(folder: String, layout: LLMKeyLayout? = nil) throws -> CausalLM {
        let config = try LLMConfig(folder: folder)
        let dir = URL(fileURLWithPath: folder)
        let index = dir.appendingPathComponent("model.safetensors.index.json").path
        let single = dir.appendingPathComponent("model.safetensors").path
        let path: String
        if FileManager.default.fileExists(atPath: index) {
            path = index
        } else if FileManager.default.fileExists(atPath: single) {
            path = single
        } else {
            throw PrompterError("no model.safetensors.index.json or model.safetensors", source: folder)
        }
        let source: SafeTensorsCheckpoint
        do { source = try SafeTensorsCheckpoint(path: path) } catch { throw PrompterError("\(error)", source: path) }
        return try CausalLM(config: config, weights: source, layout: layout)
    }

    /// A cache for this model with room for `capacity` positions.
    public func makeCache(capacity: Int = 1024) -> KVCache {
        KVCache(layers: config.numHiddenLayers, kvHeads: config.numKeyValueHeads, headDim: config.headDim, capacity: capacity)
    }

    /// Token embeddings, [ids.count, hiddenSize]. Throws for an id outside the vocabulary (such as LLaVA's -200
    /// image placeholder, which the caller replaces with image features).
    public func embed(_ ids: [Int]) throws -> Tensor {
        let h = config.hiddenSize
        for id in ids where id < 0 || id >= config.vocabSize {
            throw PrompterError("token id \(id) is outside the vocabulary of \(config.vocabSize)", source: embedTokens.source)
        }
        var out = try Tensor(zeros: [ids.count, h])
        try out.withUnsafeMutableBufferPointer { o in
            for (i, id) in ids.enumerated() { try LLMKernels.copyRow(embedTokens, row: id, into: o.baseAddress! + i * h) }
        }
        return out
    }

    /// Runs `embeddings` ([n, hiddenSize], n ≥ 1) at positions `cache.count ..< cache.count + n`, appending their keys
    /// and values to `cache`. Returns logits [1, vocabSize] of the last position, or [n, vocabSize] for every position
    /// when `allLogits`.
    public func forward(embeddings: Tensor, cache: KVCache, allLogits: Bool = false) throws -> Tensor {
        let c = config
        let h = c.hiddenSize
        guard embeddings.rank == 2, embeddings.shape[1] == h, embeddings.shape[0] >= 1 else {
            throw PrompterError("forward: embeddings have shape \(embeddings.shape), expected [n, \(h)] with n ≥ 1")
        }
        guard cache.layers == c.numHiddenLayers, cache.kvHeads == c.numKeyValueHeads, cache.headDim == c.headDim else {
            throw PrompterError("forward: the KV cache (\(cache.layers) layers, \(cache.kvHeads) kv heads of \(cache.headDim)) does not fit this model")
        }
        let n = embeddings.shape[0]
        let past = cache.count
        cache.reserve(past + n)
        let qOut = c.numAttentionHeads * c.headDim, kvOut = c.numKeyValueHeads * c.headDim, inter = c.intermediateSize
        // One scratch allocation per call: x, normed, q, k, v, attention output, gate, up.
        let sizes = [n * h, n * h, n * qOut, n * kvOut, n * kvOut, n * qOut, n * inter, n * inter]
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: sizes.reduce(0, +))
        defer { scratch.deallocate() }
        var ptrs: [UnsafeMutablePointer<Float>] = []
        var off = 0
        for s in sizes { ptrs.append(scratch + off); off += s }
        let (x, hn, q, k, v, att, gate, up) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7])
        embeddings.withUnsafeBufferPointer { x.update(from: $0.baseAddress!, count: n * h) }
        let scale = 1 / Float(c.headDim).squareRoot()
        let stride = cache.headStride, hd = c.headDim

        for (li, layer) in layers.enumerated() {
            LLMKernels.rmsNorm(x, n: n, dim: h, weight: layer.inputNorm, eps: c.rmsNormEps, out: hn)
            try linear(hn, n, layer.q, layer.qBias, q)
            try linear(hn, n, layer.k, layer.kBias, k)
            try linear(hn, n, layer.v, layer.vBias, v)
            invFreq.withUnsafeBufferPointer { f in
                LLMKernels.rope(q, n: n, heads: c.numAttentionHeads, headDim: hd, startPosition: past, invFreq: f.baseAddress!)
                LLMKernels.rope(k, n: n, heads: c.numKeyValueHeads, headDim: hd, startPosition: past, invFreq: f.baseAddress!)
            }
            let keys = cache.keys[li], values = cache.values[li]
            for i in 0..<n {
                for g in 0..<c.numKeyValueHeads {
                    (keys + g * stride + (past + i) * hd).update(from: k + (i * c.numKeyValueHeads + g) * hd, count: hd)
                    (values + g * stride + (past + i) * hd).update(from: v + (i * c.numKeyValueHeads + g) * hd, count: hd)
                }
            }
            LLMKernels.cachedAttention(q: q, n: n, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: hd,
                                       keys: keys, values: values, kvHeadStride: stride, past: past, scale: scale,
                                       window: c.layerWindows[li], out: att)
            try linear(att, n, layer.o, layer.oBias, hn)
            add(hn, into: x, count: n * h)
            LLMKernels.rmsNorm(x, n: n, dim: h, weight: layer.postNorm, eps: c.rmsNormEps, out: hn)
            try linear(hn, n, layer.gate, layer.gateBias, gate)
            try linear(hn, n, layer.up, layer.upBias, up)
            LLMKernels.swiGLU(gate: gate, into: up, count: n * inter)
            try linear(up, n, layer.down, layer.downBias, hn)
            add(hn, into: x, count: n * h)
        }
        cache.advance(by: n)

        let rows = allLogits ? n : 1
        let first = x + (n - rows) * h
        LLMKernels.rmsNorm(first, n: rows, dim: h, weight: finalNorm, eps: c.rmsNormEps, out: hn)
        var logits = try Tensor(zeros: [rows, c.vocabSize])
        try logits.withUnsafeMutableBufferPointer { o in
            try linear(hn, rows, lmHead, nil, o.baseAddress!)
        }
        return logits
    }

    /// `forward(embeddings: embed(ids), …)`.
    public func forward(ids: [Int], cache: KVCache, allLogits: Bool = false) throws -> Tensor {
        try forward(embeddings: try embed(ids), cache: cache, allLogits: allLogits)
    }

    private func linear(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ w: StoredTensor, _ bias: [Float]?,
                        _ out: UnsafeMutablePointer<Float>) throws {
        if let bias {
            try bias.withUnsafeBufferPointer { b in
                try GEMV.linear(x: x, n: n, weight: w, bias: b.baseAddress!, out: out)
            }
        } else {
            try GEMV.linear(x: x, n: n, weight: w, out: out)
        }
    }

    private func add(_ src: UnsafeMutablePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] += src[i] }
    }
}
