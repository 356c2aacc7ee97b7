import Foundation
import Tensor

/// The fields of a transformers `CLIPVisionConfig` the vision tower needs.
public struct CLIPVisionConfig: Sendable, Equatable {
    /// The MLP activation (`hidden_act`).
    public typealias Activation = CLIPEncoderLayer.Activation

    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var imageSize: Int
    public var patchSize: Int
    public var hiddenAct: Activation
    public var layerNormEps: Float
    public var numChannels: Int

    /// Patches per side (`image_size / patch_size`).
    public var gridSize: Int { imageSize / patchSize }
    /// Patch tokens (without the class token): 576 for ViT-L/14 at 336 px.
    public var numPatches: Int { gridSize * gridSize }

    /// `openai/clip-vit-large-patch14-336`, LLaVA-1.5's and LLMGA's tower.
    public static let vitL14_336 = CLIPVisionConfig(hiddenSize: 1024, intermediateSize: 4096, numHiddenLayers: 24,
                                                    numAttentionHeads: 16, imageSize: 336, patchSize: 14)
    /// `openai/clip-vit-large-patch14` (224 px), the tower of LLMGA's first (v1) checkpoints.
    public static let vitL14 = CLIPVisionConfig(hiddenSize: 1024, intermediateSize: 4096, numHiddenLayers: 24,
                                                numAttentionHeads: 16, imageSize: 224, patchSize: 14)

    /// The configurations of the towers known by hub name (a LLaVA `mm_vision_tower` that is not a local folder).
    public static let known: [String: CLIPVisionConfig] = [
        "openai/clip-vit-large-patch14-336": .vitL14_336,
        "openai/clip-vit-large-patch14": .vitL14,
    ]

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, imageSize: Int,
                patchSize: Int, hiddenAct: Activation = .quickGelu, layerNormEps: Float = 1e-5, numChannels: Int = 3) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
        self.numChannels = numChannels
    }

    /// Reads a `config.json`: a `CLIPVisionModel` config (the fields at top level) or one with a
    /// `vision_config` object (`CLIPModel`, HF `LlavaForConditionalGeneration`). `hidden_size`,
    /// `intermediate_size`, `num_hidden_layers`, `num_attention_heads`, `image_size` and `patch_size` are
    /// required; `hidden_act` (quick_gelu), `layer_norm_eps` (1e-5) and `num_channels` (3) default as in
    /// transformers. Errors name the file and the key.
    public init(path: String) throws {
        try self.init(object: try VisionJSON.object(path), origin: path)
    }

    /// The same from a parsed object; `origin` names it in errors.
    public init(object root: [String: Any], origin: String) throws {
        var o = root
        var where_ = ""
        if let v = root["vision_config"] {
            guard let d = v as? [String: Any] else {
                throw PrompterError("config field \"vision_config\" must be an object", source: origin)
            }
            o = d
            where_ = "vision_config."
        }
        func fail(_ key: String, _ why: String) -> PrompterError {
            PrompterError("config field \"\(where_)\(key)\" \(why)", source: origin)
        }
        func int(_ key: String, default fallback: Int? = nil) throws -> Int {
            guard let v = o[key] else {
                if let fallback { return fallback }
                throw fail(key, "is missing (a CLIP vision config needs it)")
            }
            guard let n = v as? NSNumber, !(v is Bool), let i = Int(exactly: n.doubleValue), i > 0 else {
                throw fail(key, "must be a positive integer, got \(v)")
            }
            return i
        }
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numHiddenLayers = try int("num_hidden_layers")
        numAttentionHeads = try int("num_attention_heads")
        imageSize = try int("image_size")
        patchSize = try int("patch_size")
        numChannels = try int("num_channels", default: 3)
        if let v = o["hidden_act"] {
            guard let s = v as? String, let a = Activation(rawValue: s) else {
                throw fail("hidden_act", "\(v) is not supported (quick_gelu, gelu, gelu_new)")
            }
            hiddenAct = a
        } else {
            hiddenAct = .quickGelu
        }
        if let v = o["layer_norm_eps"] {
            guard let n = v as? NSNumber, n.doubleValue > 0 else { throw fail("layer_norm_eps", "must be a positive number, got \(v)") }
            layerNormEps = n.floatValue
        } else {
            layerNormEps = 1e-5
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw fail("hidden_size", "\(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        guard imageSize % patchSize == 0 else {
            throw fail("image_size", "\(imageSize) is not a multiple of patch_size \(patchSize)")
        }
    }
}
