import Foundation
import Tensor

/// `text_encoder/config.json` fields the CLIP text transformer needs.
public struct CLIPTextConfig: Sendable, Equatable {
    public typealias Activation = CLIPEncoderLayer.Activation

    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var maxPositionEmbeddings: Int
    public var hiddenAct: Activation
    public var layerNormEps: Float

    /// SD1.5's text encoder (CLIP ViT-L/14).
    public static let sd15 = CLIPTextConfig(vocabSize: 49408, hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12,
                                            numAttentionHeads: 12, maxPositionEmbeddings: 77, hiddenAct: .quickGelu,
                                            layerNormEps: 1e-5)

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                maxPositionEmbeddings: Int, hiddenAct: Activation, layerNormEps: Float) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
    }

    /// Reads a transformers `CLIPTextConfig` JSON; absent fields take transformers' defaults
    /// (which are CLIP ViT-B/32's: 512 hidden, 2048 intermediate, 12 layers, 8 heads, quick_gelu, 1e-5).
    public init(path: String) throws {
        try self.init(object: try CLIPTokenizer.readJSONObject(path), origin: path)
    }

    /// The same from a config already parsed (`origin` names it in errors).
    public init(object o: [String: Any], origin path: String) throws {
        func int(_ key: String, _ fallback: Int) throws -> Int {
            guard let v = o[key] else { return fallback }
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i > 0 else {
                throw DiffusionError("config field \"\(key)\" must be a positive integer, got \(v)", file: path)
            }
            return i
        }
        vocabSize = try int("vocab_size", 49408)
        hiddenSize = try int("hidden_size", 512)
        intermediateSize = try int("intermediate_size", 2048)
        numHiddenLayers = try int("num_hidden_layers", 12)
        numAttentionHeads = try int("num_attention_heads", 8)
        maxPositionEmbeddings = try int("max_position_embeddings", 77)
        if let v = o["hidden_act"] {
            guard let s = v as? String, let a = Activation(rawValue: s) else {
                throw DiffusionError("config field \"hidden_act\" \(v) is not supported (quick_gelu, gelu, gelu_new)", file: path)
            }
            hiddenAct = a
        } else {
            hiddenAct = .quickGelu
        }
        if let v = o["layer_norm_eps"] {
            guard let n = v as? NSNumber, n.doubleValue > 0 else {
                throw DiffusionError("config field \"layer_norm_eps\" must be a positive number, got \(v)", file: path)
            }
            layerNormEps = n.floatValue
        } else {
            layerNormEps = 1e-5
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw DiffusionError("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)", file: path)
        }
    }
}

/// The CLIP text transformer of Stable Diffusion (transformers' `CLIPTextModel`): token + position
/// embeddings, pre-LayerNorm layers with causal self-attention and an MLP, final LayerNorm.
/// Weights stay memory-mapped in their stored dtype (F32/F16/BF16) under Hugging Face names
/// (`text_model.embeddings.token_embedding.weight`, …; the unprefixed names transformers 5 writes are
/// accepted too); every tensor is checked for presence and shape when the model is created.
public final class CLIPTextModel: @unchecked Sendable {
    public let config: CLIPTextConfig
    /// The weights' source (for messages).
    public let source: String

    let tokenEmbedding: StoredTensor
    let positionEmbedding: StoredTensor
    let layers: [CLIPEncoderLayer]
    let finalNormWeight, finalNormBias: StoredTensor

    /// Loads the weights from `weights` (a safetensors file or sharded checkpoint).
    public init(config: CLIPTextConfig, weights: any TensorSource) throws {
        self.config = config
        source = weights.name
        let prefix = weights.contains("text_model.embeddings.token_embedding.weight") ? "text_model."
            : weights.contains("embeddings.token_embedding.weight") ? "" : "text_model."
        func get(_ key: String, _ shape: [Int]) throws -> StoredTensor {
            let full = prefix + key
            let t: StoredTensor
            do { t = try weights.stored(full) } catch {
                throw DiffusionError(error.description, file: weights.name)
            }
            guard t.shape == shape else {
                throw DiffusionError("tensor \"\(full)\" has shape \(t.shape), expected \(shape) for this config", file: weights.name)
            }
            guard [.f32, .f16, .bf16].contains(t.dtype) else {
                throw DiffusionError("tensor \"\(full)\" has dtype \(t.dtype.rawValue), expected F32, F16 or BF16", file: weights.name)
            }
            return t
        }
        let h = config.hiddenSize, f = config.intermediateSize
        tokenEmbedding = try get("embeddings.token_embedding.weight", [config.vocabSize, h])
        positionEmbedding = try get("embeddings.position_embedding.weight", [config.maxPositionEmbeddings, h])
        layers = try (0..<config.numHiddenLayers).map {
            try CLIPEncoderLayer(prefix: "encoder.layers.\($0).", hiddenSize: h, intermediateSize: f, get: get)
        }
        finalNormWeight = try get("final_layer_norm.weight", [h])
        finalNormBias = try get("final_layer_norm.bias", [h])
    }

    /// Loads `config.json` and the weights of a `text_encoder/` folder: `model.safetensors`, or
    /// `model.fp16.safetensors` / `model.bf16.safetensors` when only that variant is present, or a sharded
    /// `model.safetensors.index.json`; `weightsFile` names another file in the folder.
    public convenience init(folder: String, weightsFile: String? = nil) throws {
        let url = URL(fileURLWithPath: folder)
        let config = try CLIPTextConfig(path: url.appendingPathComponent("config.json").path)
        let candidates = weightsFile.map { [$0] }
            ?? ["model.safetensors", "model.safetensors.index.json", "model.fp16.safetensors", "model.bf16.safetensors"]
        guard let name = candidates.first(where: {
            FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path)
        }) else {
            throw DiffusionError("no weights: none of \(candidates.joined(separator: ", ")) exists", file: folder)
        }
        let source = try CLIPTextModel.openWeights(url.appendingPathComponent(name).path)
        try self.init(config: config, weights: source)
    }

    /// A safetensors file, or a sharded checkpoint for an `.index.json` path.
    static func openWeights(_ path: String) throws -> any TensorSource {
        do {
            if path.hasSuffix(".index.json") { return try SafeTensorsCheckpoint(path: path) }
            return try SafeTensorsFile(path: path)
        } catch {
            throw DiffusionError(error.description, file: path)
        }
    }

    // MARK: Forward

    /// Runs the text encoder on a batch of id sequences of equal length n ≤ max_position_embeddings
    /// (positions 0..<n, causal attention only, as SD uses it). Returns [batch, n, hidden]:
    /// `final_layer_norm(hidden_states[-(clipSkip + 1)])`, i.e. the last hidden state for
    /// `clipSkip == 0` and the output of layer `layers - clipSkip` for diffusers' `clip_skip`.
    public func callAsFunction(_ batch: [[Int]], clipSkip: Int = 0) throws -> Tensor {
        guard let n = batch.first?.count, n >= 1 else { throw DiffusionError("CLIP text encoder: empty input") }
        guard batch.allSatisfy({ $0.count == n }) else {
            throw DiffusionError("CLIP text encoder: sequences of different lengths \(batch.map(\.count))")
        }
        guard n <= config.maxPositionEmbeddings else {
            throw DiffusionError("CLIP text encoder: sequence length \(n) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        guard (0...config.numHiddenLayers).contains(clipSkip) else {
            throw DiffusionError("CLIP text encoder: clip skip \(clipSkip) outside 0...\(config.numHiddenLayers)")
        }
        for ids in batch {
            if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw DiffusionError("CLIP text encoder: token id \(bad) outside the vocabulary of \(config.vocabSize)")
            }
        }
        var x = try embed(batch, length: n)
        for layer in layers.prefix(config.numHiddenLayers - clipSkip) {
            x = try layer(x, heads: config.numAttentionHeads, activation: config.hiddenAct, eps: config.layerNormEps, causal: true)
        }
        return try Ops.layerNorm(x, weight: finalNormWeight, bias: finalNormBias, eps: config.layerNormEps)
    }

    /// token_embedding[ids] + position_embedding[0..<n] → [batch, n, hidden]; only the used rows are converted.
    func embed(_ batch: [[Int]], length n: Int) throws -> Tensor {
        let h = config.hiddenSize
        return try Tensor(shape: [batch.count, n, h]) { out in
            let o = out.baseAddress!
            for (b, ids) in batch.enumerated() {
                for (t, id) in ids.enumerated() {
                    let row = o + (b * n + t) * h
                    readRow(tokenEmbedding, id, h, into: row)
                    readRow(positionEmbedding, t, h, add: true, into: row)
                }
            }
        }
    }

    /// Row `r` (length `h`) of a stored [rows, h] matrix, written or added as Floats.
    private func readRow(_ t: StoredTensor, _ r: Int, _ h: Int, add: Bool = false, into o: UnsafeMutablePointer<Float>) {
        let base = t.bytes.baseAddress!
        switch t.dtype {
        case .f16, .bf16:
            let p = base + r * h * 2
            let half = t.dtype == .f16
            for i in 0..<h {
                let bits = p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
                let v = half ? FloatConversion.floatFromHalfBits(bits) : FloatConversion.floatFromBFloat16Bits(bits)
                o[i] = add ? o[i] + v : v
            }
        default:  // .f32 (the only other dtype accepted at load)
            let p = base + r * h * 4
            for i in 0..<h {
                let v = Float(bitPattern: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
                o[i] = add ? o[i] + v : v
            }
        }
    }

}
