import Foundation
import Tensor

/// Which tokens of the selected hidden state LLaVA keeps (`mm_vision_select_feature`).
public enum VisionSelectFeature: String, Sendable, CaseIterable {
    /// Drop the class token (LLaVA's default; HF Llava's "default" strategy).
    case patch
    /// Keep the class token first (HF Llava's "full" strategy).
    case clsPatch = "cls_patch"
}

/// The CLIP ViT image encoder as LLaVA uses it (transformers' `CLIPVisionModel`): a patch-embedding
/// convolution without bias, a class embedding, position embeddings, `pre_layrnorm`, then
/// pre-LayerNorm encoder layers (bidirectional self-attention with biased q/k/v/out projections, MLP
/// fc1 → activation → fc2). LLaVA reads `hidden_states[select_layer]` — for the default -2 the output
/// of the penultimate layer, before `post_layernorm`, which is therefore never applied here; only the
/// layers up to the selected one are run. Weights stay memory-mapped in their stored dtype (F32, F16, BF16).
public final class CLIPVisionTower: @unchecked Sendable {
    public let config: CLIPVisionConfig
    /// The key prefix of the tower's tensors in `source` (e.g. `vision_model.`).
    public let prefix: String
    /// The weights' source name (for messages).
    public let source: String

    let patchWeight: StoredTensor
    let classEmbedding: Tensor
    let positionEmbedding: Tensor
    let preNormWeight, preNormBias: StoredTensor
    let layers: [CLIPEncoderLayer]

    /// Key prefixes under which checkpoints store a CLIP vision tower, tried in this order:
    /// LLaVA bundled (`model.vision_tower.vision_tower.vision_model.`), HF Llava up to transformers 4.51
    /// (`vision_tower.vision_model.`), 4.52+ (`model.vision_tower.vision_model.`), as transformers 5
    /// saves HF Llava (`vision_tower.`, `model.vision_tower.`), a CLIP folder (`vision_model.` —
    /// CLIPModel, or CLIPVisionModel before transformers 5) and transformers 5 `CLIPVisionModel` (no prefix).
    public static let knownPrefixes = [
        "model.vision_tower.vision_tower.vision_model.",
        "vision_tower.vision_model.",
        "model.vision_tower.vision_model.",
        "vision_tower.",
        "model.vision_tower.",
        "vision_model.",
        "",
    ]

    /// The tensor whose presence identifies a prefix.
    static let probeKey = "embeddings.patch_embedding.weight"

    /// The first of `knownPrefixes` under which `weights` holds a tower, or nil.
    public static func findPrefix(in weights: any TensorSource) -> String? {
        knownPrefixes.first { weights.contains($0 + probeKey) }
    }

    /// Loads the tower from `weights`. `prefix` nil = found with `findPrefix` (an error lists the keys
    /// looked for when none is there). Every tensor the selected layers need is checked for presence,
    /// shape and dtype; layers from `layerCount` on are not loaded (nil = all).
    public init(config: CLIPVisionConfig, weights: any TensorSource, prefix: String? = nil, layerCount: Int? = nil) throws {
        self.config = config
        source = weights.name
        guard let p = prefix ?? Self.findPrefix(in: weights) else {
            throw PrompterError("no CLIP vision tower in these weights: looked for "
                                + Self.knownPrefixes.map { "\"\($0)\(Self.probeKey)\"" }.joined(separator: ", "),
                                source: weights.name)
        }
        self.prefix = p
        func get(_ key: String, _ shape: [Int]) throws -> StoredTensor {
            let full = p + key
            guard weights.contains(full) else {
                throw PrompterError("CLIP vision tower tensor \"\(full)\" is missing", source: weights.name)
            }
            let t: StoredTensor
            do { t = try weights.stored(full) } catch {
                throw PrompterError(error.description, source: weights.name)
            }
            guard t.shape == shape else {
                throw PrompterError("tensor \"\(full)\" has shape \(t.shape), expected \(shape) for this config", source: weights.name)
            }
            guard [.f32, .f16, .bf16].contains(t.dtype) else {
                throw PrompterError("tensor \"\(full)\" has dtype \(t.dtype.rawValue), expected F32, F16 or BF16", source: weights.name)
            }
            return t
        }
        let h = config.hiddenSize, f = config.intermediateSize, ps = config.patchSize
        patchWeight = try get("embeddings.patch_embedding.weight", [h, config.numChannels, ps, ps])
        classEmbedding = try get("embeddings.class_embedding", [h]).tensor()
        positionEmbedding = try get("embeddings.position_embedding.weight", [config.numPatches + 1, h]).tensor()
        preNormWeight = try get("pre_layrnorm.weight", [h])
        preNormBias = try get("pre_layrnorm.bias", [h])
        let count = min(layerCount ?? config.numHiddenLayers, config.numHiddenLayers)
        var layers: [CLIPEncoderLayer] = []
        for i in 0..<max(0, count) {
            let q = "encoder.layers.\(i)."
            layers.append(try CLIPEncoderLayer(prefix: q, hiddenSize: h, intermediateSize: f, get: get))
        }
        self.layers = layers
    }

    /// The `hidden_states` index for a LLaVA `select_layer` (negative counts from the end: -1 = last layer's
    /// output, -2 = penultimate); `hidden_states[0]` is the embedding output after `pre_layrnorm`.
    public func hiddenStateIndex(selectLayer: Int) throws -> Int {
        let n = config.numHiddenLayers
        let i = selectLayer < 0 ? n + 1 + selectLayer : selectLayer
        guard (0...n).contains(i) else {
            throw PrompterError("vision select layer \(selectLayer) is outside -\(n + 1)...\(n) for a \(n)-layer tower", source: source)
        }
        guard i <= layers.count else {
            throw PrompterError("vision select layer \(selectLayer) needs \(i) layers but only \(layers.count) were loaded", source: source)
        }
        return i
    }

    /// `hidden_states[selectLayer]` of CLIP for one image's pixel values [C, S, S] (S = image_size):
    /// [numPatches, hidden] for `.patch`, [1 + numPatches, hidden] (class token first) for `.clsPatch`.
    public func features(_ pixels: Tensor, selectLayer: Int = -2, selectFeature: VisionSelectFeature = .patch) throws -> Tensor {
        let s = config.imageSize, c = config.numChannels
        guard pixels.shape == [c, s, s] else {
            throw PrompterError("CLIP vision tower: pixel values must be [\(c), \(s), \(s)], got \(pixels.shape)", source: source)
        }
        let stop = try hiddenStateIndex(selectLayer: selectLayer)
        var x = try embed(pixels)
        for layer in layers.prefix(stop) {
            x = try layer(x, heads: config.numAttentionHeads, activation: config.hiddenAct, eps: config.layerNormEps, causal: false)
        }
        let n = config.numPatches, h = config.hiddenSize
        switch selectFeature {
        case .clsPatch: return try x.reshaped([n + 1, h])
        case .patch: return try x.reshaped([n + 1, h]).slice(first: 1..<(n + 1))
        }
    }

    /// Patch embedding + class token + positions, then `pre_layrnorm` → [1, 1 + numPatches, hidden].
    func embed(_ pixels: Tensor) throws -> Tensor {
        let h = config.hiddenSize, n = config.numPatches, ps = config.patchSize
        let conv = try Ops.conv2d(try pixels.reshaped([1, config.numChannels, config.imageSize, config.imageSize]),
                                  weight: patchWeight, stride: (ps, ps))  // [1, h, g, g]
        var x = try Tensor(zeros: [1, n + 1, h])
        conv.withUnsafeBufferPointer { cv in
            classEmbedding.withUnsafeBufferPointer { ce in
                positionEmbedding.withUnsafeBufferPointer { pe in
                    x.withUnsafeMutableBufferPointer { o in
                        for j in 0..<h { o[j] = ce[j] + pe[j] }
                        for t in 0..<n {
                            let row = (t + 1) * h
                            for j in 0..<h { o[row + j] = cv[j * n + t] + pe[row + j] }
                        }
                    }
                }
            }
        }
        return try Ops.layerNorm(x, weight: preNormWeight, bias: preNormBias, eps: config.layerNormEps)
    }

}
