import Foundation
import Imaging
import Tensor

/// The vision settings of a LLaVA-family `config.json`, in either layout:
/// original LLaVA / LLMGA (`mm_vision_tower`, `mm_hidden_size`, `mm_vision_select_layer`,
/// `mm_vision_select_feature`, `mm_projector_type`, `image_aspect_ratio`, `hidden_size`) or
/// HF `LlavaForConditionalGeneration` (`vision_config`, `text_config.hidden_size`, `vision_feature_layer`,
/// `vision_feature_select_strategy`, `projector_hidden_act`).
public struct LLaVAVisionSettings: Sendable, Equatable {
    /// `mm_vision_tower`: a hub name or a local path (nil for HF Llava).
    public var visionTower: String?
    /// `mm_hidden_size`: the tower's hidden size as the projector expects it (nil when absent).
    public var visionHiddenSize: Int?
    /// The language model's hidden size (the projector's output).
    public var llmHiddenSize: Int
    public var selectLayer: Int
    public var selectFeature: VisionSelectFeature
    public var projector: MultimodalProjector.Kind
    /// `image_aspect_ratio` as written (nil when absent).
    public var imageAspectRatio: String?
    /// The tower's configuration when the file carries it (HF Llava's `vision_config`).
    public var towerConfig: CLIPVisionConfig?

    public init(visionTower: String?, visionHiddenSize: Int?, llmHiddenSize: Int, selectLayer: Int = -2,
                selectFeature: VisionSelectFeature = .patch, projector: MultimodalProjector.Kind = .mlpGelu(depth: 2),
                imageAspectRatio: String? = nil, towerConfig: CLIPVisionConfig? = nil) {
        self.visionTower = visionTower
        self.visionHiddenSize = visionHiddenSize
        self.llmHiddenSize = llmHiddenSize
        self.selectLayer = selectLayer
        self.selectFeature = selectFeature
        self.projector = projector
        self.imageAspectRatio = imageAspectRatio
        self.towerConfig = towerConfig
    }

    /// Reads a model folder's `config.json`.
    public init(path: String) throws {
        try self.init(object: try VisionJSON.object(path), origin: path)
    }

    /// The same from a parsed object; `origin` names it in errors. A config with neither LLaVA's
    /// `mm_vision_tower`/`mm_projector_type` nor HF Llava's `vision_config` is not multimodal: that is an error.
    public init(object o: [String: Any], origin: String) throws {
        func fail(_ key: String, _ why: String) -> PrompterError { PrompterError("config field \"\(key)\" \(why)", source: origin) }
        func int(_ d: [String: Any], _ key: String, _ shown: String) throws -> Int? {
            guard let v = d[key] else { return nil }
            guard let n = v as? NSNumber, !(v is Bool), let i = Int(exactly: n.doubleValue) else { throw fail(shown, "must be an integer, got \(v)") }
            return i
        }
        func string(_ key: String) throws -> String? {
            guard let v = o[key], !(v is NSNull) else { return nil }
            guard let s = v as? String else { throw fail(key, "must be a string, got \(v)") }
            return s
        }
        if o["vision_config"] != nil, o["mm_vision_tower"] == nil {
            // HF Llava.
            towerConfig = try CLIPVisionConfig(object: o, origin: origin)
            visionTower = nil
            visionHiddenSize = towerConfig?.hiddenSize
            guard let text = o["text_config"] as? [String: Any] else { throw fail("text_config", "is missing or not an object") }
            guard let h = try int(text, "hidden_size", "text_config.hidden_size"), h > 0 else {
                throw fail("text_config.hidden_size", "is missing (the projector's output size)")
            }
            llmHiddenSize = h
            if let v = o["vision_feature_layer"], v is [Any] {
                throw fail("vision_feature_layer", "lists several layers (\(v)); only one layer is supported")
            }
            selectLayer = try int(o, "vision_feature_layer", "vision_feature_layer") ?? -2
            switch try string("vision_feature_select_strategy") ?? "default" {
            case "default": selectFeature = .patch
            case "full": selectFeature = .clsPatch
            case let s: throw fail("vision_feature_select_strategy", "\"\(s)\" is not supported (default, full)")
            }
            let act = try string("projector_hidden_act") ?? "gelu"
            guard act == "gelu" else { throw fail("projector_hidden_act", "\"\(act)\" is not supported (gelu)") }
            projector = .mlpGelu(depth: 2)
            imageAspectRatio = try string("image_aspect_ratio")
        } else {
            guard o["mm_vision_tower"] != nil || o["mm_projector_type"] != nil || o["mm_hidden_size"] != nil else {
                throw PrompterError("not a multimodal (LLaVA) config: no \"mm_vision_tower\", \"mm_projector_type\" or \"vision_config\"",
                                    source: origin)
            }
            visionTower = try string("mm_vision_tower")
            visionHiddenSize = try int(o, "mm_hidden_size", "mm_hidden_size")
            guard let h = try int(o, "hidden_size", "hidden_size"), h > 0 else {
                throw fail("hidden_size", "is missing (the projector's output size)")
            }
            llmHiddenSize = h
            guard let layer = try int(o, "mm_vision_select_layer", "mm_vision_select_layer") else {
                throw fail("mm_vision_select_layer", "is missing")
            }
            selectLayer = layer
            let feature = try string("mm_vision_select_feature") ?? "patch"
            guard let f = VisionSelectFeature(rawValue: feature) else {
                throw fail("mm_vision_select_feature", "\"\(feature)\" is not supported (patch, cls_patch)")
            }
            selectFeature = f
            do { projector = try MultimodalProjector.Kind(try string("mm_projector_type") ?? "linear") } catch let e as PrompterError {
                throw PrompterError("config field \"mm_projector_type\": " + e.message, source: origin)
            }
            imageAspectRatio = try string("image_aspect_ratio")
            towerConfig = nil
        }
    }
}

/// The vision side of a LLaVA model: preprocessing, CLIP tower and projector. `encode` turns a picture
/// into the embeddings that replace LLaVA's image token (-200): [numPatches, llmHidden] (576 × H for
/// ViT-L/14-336 with `patch` features).
public final class VisionEncoder: @unchecked Sendable {
    public let settings: LLaVAVisionSettings
    public let preprocessor: LLaVAImagePreprocessor
    public let tower: CLIPVisionTower
    public let projector: MultimodalProjector
    /// Where the tower's weights came from (the checkpoint, or a CLIP folder).
    public var towerSource: String { tower.source }

    /// Opens a model folder: `config.json` (LLaVA or HF Llava), the weights (`model.safetensors` or a
    /// sharded `model.safetensors.index.json`, unless `weights` is given), `preprocessor_config.json`.
    /// `towerConfig` replaces the tower configuration the files give or imply (needed for a bundled tower
    /// whose `mm_vision_tower` is neither a local folder nor a known name).
    /// See `init(settings:weights:modelFolder:clipFolder:mode:)` for where the tower comes from.
    public convenience init(folder: String, weights: (any TensorSource)? = nil, clipFolder: String? = nil,
                            towerConfig: CLIPVisionConfig? = nil, mode: LLaVAAspectMode? = nil) throws {
        var settings = try LLaVAVisionSettings(path: (folder as NSString).appendingPathComponent("config.json"))
        if let towerConfig { settings.towerConfig = towerConfig }
        let source = try weights ?? Self.openWeights(folder: folder)
        try self.init(settings: settings, weights: source, modelFolder: folder, clipFolder: clipFolder, mode: mode)
    }

    /// Assembles the encoder.
    /// - The tower's configuration: `settings.towerConfig` (HF Llava's `vision_config`, or set by the caller),
    ///   else the CLIP folder's `config.json`,
    ///   else the built-in one for a known `mm_vision_tower` name (`CLIPVisionConfig.known`).
    /// - The tower's weights: from `clipFolder` when given explicitly; else from `weights` when they hold a
    ///   tower (any of `CLIPVisionTower.knownPrefixes`); else from `mm_vision_tower` when that is an existing
    ///   local folder (as given, or relative to `modelFolder`). Otherwise the error says what was looked for.
    /// - Preprocessing: the CLIP folder's `preprocessor_config.json`, else the model folder's, else CLIP's
    ///   defaults at the tower's image size. `mode` nil = `.pad` when `image_aspect_ratio` is "pad", else
    ///   `.squash` (LLMGA's CLIs squash every picture, whatever the config says).
    public init(settings: LLaVAVisionSettings, weights: any TensorSource, modelFolder: String? = nil,
                clipFolder: String? = nil, mode: LLaVAAspectMode? = nil) throws {
        self.settings = settings
        let fm = FileManager.default
        func isDir(_ p: String) -> Bool {
            var d: ObjCBool = false
            return fm.fileExists(atPath: p, isDirectory: &d) && d.boolValue
        }
        if let clipFolder, !isDir(clipFolder) {
            throw PrompterError("CLIP folder does not exist", source: clipFolder)
        }
        var localTower: String?
        if let name = settings.visionTower {
            if isDir(name) {
                localTower = name
            } else if let modelFolder, isDir((modelFolder as NSString).appendingPathComponent(name)) {
                localTower = (modelFolder as NSString).appendingPathComponent(name)
            }
        }
        let clipDir = clipFolder ?? localTower

        let config: CLIPVisionConfig
        if let c = settings.towerConfig {
            config = c
        } else if let clipDir {
            config = try CLIPVisionConfig(path: (clipDir as NSString).appendingPathComponent("config.json"))
        } else if let name = settings.visionTower, let c = CLIPVisionConfig.known[name] {
            config = c
        } else {
            throw PrompterError("the vision tower's configuration is unknown: mm_vision_tower "
                                + (settings.visionTower.map { "\"\($0)\"" } ?? "(absent)")
                                + " is neither a local folder nor a known tower (\(CLIPVisionConfig.known.keys.sorted().joined(separator: ", "))); pass the CLIP folder",
                                source: weights.name)
        }
        if let mm = settings.visionHiddenSize, mm != config.hiddenSize {
            throw PrompterError("mm_hidden_size \(mm) differs from the vision tower's hidden_size \(config.hiddenSize)", source: weights.name)
        }
        let n = config.numHiddenLayers
        let index = settings.selectLayer < 0 ? n + 1 + settings.selectLayer : settings.selectLayer
        guard (0...n).contains(index) else {
            throw PrompterError("vision select layer \(settings.selectLayer) is outside -\(n + 1)...\(n) for a \(n)-layer tower", source: weights.name)
        }

        let towerWeights: any TensorSource
        if let clipFolder {
            towerWeights = try Self.openWeights(folder: clipFolder)
        } else if CLIPVisionTower.findPrefix(in: weights) != nil {
            towerWeights = weights
        } else if let localTower {
            towerWeights = try Self.openWeights(folder: localTower)
        } else {
            throw PrompterError("the checkpoint holds no vision tower (looked for "
                                + CLIPVisionTower.knownPrefixes.map { "\"\($0)\(CLIPVisionTower.probeKey)\"" }.joined(separator: ", ")
                                + ") and mm_vision_tower " + (settings.visionTower.map { "\"\($0)\"" } ?? "(absent)")
                                + " is not a local folder; pass the CLIP vision tower's folder", source: weights.name)
        }
        tower = try CLIPVisionTower(config: config, weights: towerWeights, layerCount: index)
        let featureSize = config.hiddenSize
        projector = try MultimodalProjector(kind: settings.projector, weights: weights, inputSize: featureSize,
                                            outputSize: settings.llmHiddenSize)

        let aspect = mode ?? (settings.imageAspectRatio == "pad" ? .pad : .squash)
        let candidates = [clipDir, modelFolder].compactMap { $0 }.map { ($0 as NSString).appendingPathComponent("preprocessor_config.json") }
        if let p = candidates.first(where: { fm.fileExists(atPath: $0) }) {
            preprocessor = try LLaVAImagePreprocessor(path: p, mode: aspect)
        } else {
            preprocessor = LLaVAImagePreprocessor(mode: aspect, imageSize: config.imageSize)
        }
        if let c = preprocessor.crop, c.height != config.imageSize || c.width != config.imageSize {
            throw PrompterError("the preprocessor crops to \(c.width)x\(c.height) but the vision tower takes \(config.imageSize)x\(config.imageSize)")
        }
    }

    /// Tokens one image becomes (576 for ViT-L/14-336 with `patch`).
    public var tokensPerImage: Int { tower.config.numPatches + (settings.selectFeature == .clsPatch ? 1 : 0) }

    /// The projected features of a picture: [tokensPerImage, llmHidden].
    public func encode(_ image: Image) throws -> Tensor {
        try encode(pixelValues: preprocessor.pixelValues(image))
    }

    /// The projected features for already preprocessed pixel values [3, S, S].
    public func encode(pixelValues: Tensor) throws -> Tensor {
        let f = try tower.features(pixelValues, selectLayer: settings.selectLayer, selectFeature: settings.selectFeature)
        return try projector(f)
    }

    /// The weights of a folder: `model.safetensors`, else a sharded `model.safetensors.index.json`.
    public static func openWeights(folder: String) throws -> any TensorSource {
        let names = ["model.safetensors", "model.safetensors.index.json"]
        guard let name = names.first(where: { FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0)) }) else {
            throw PrompterError("no weights: none of \(names.joined(separator: ", ")) exists (pytorch .bin files are not read; convert them to safetensors)",
                                source: folder)
        }
        let path = (folder as NSString).appendingPathComponent(name)
        do {
            return name.hasSuffix(".index.json") ? try SafeTensorsCheckpoint(path: path) : try SafeTensorsFile(path: path)
        } catch {
            throw PrompterError(error.description)  // SafeTensorsError already names the file
        }
    }
}
