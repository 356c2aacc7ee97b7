import Foundation
import Imaging
import Tensor
import Testing
@testable import Prompter

/// Fixtures from tools/prompter/make_vision_fixtures.py (transformers 5.23, slow PIL CLIPImageProcessor).
private enum VisionFixtures {
    static func file(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: fixturePath(name))
    }
    static let reference = Result { try file("vision/reference.safetensors") }
    static func ref(_ key: String) throws -> Tensor { try reference.get().tensor(key) }

    static func image(_ name: String) throws -> Image {
        try ImageFile.read(contentsOf: URL(fileURLWithPath: fixturePath("vision/images/\(name).png"))).image
    }

    static func tower(_ folder: String, layerCount: Int? = nil) throws -> CLIPVisionTower {
        let dir = fixturePath("vision/\(folder)")
        return try CLIPVisionTower(config: CLIPVisionConfig(path: dir + "/config.json"),
                                   weights: VisionEncoder.openWeights(folder: dir), layerCount: layerCount)
    }
}

/// max |a - b| and max |b| over two tensors of the same shape.
private func compare(_ a: Tensor, _ b: Tensor) -> (diff: Float, scale: Float) {
    precondition(a.shape == b.shape, "shapes \(a.shape) vs \(b.shape)")
    var d: Float = 0, s: Float = 0
    let x = a.scalars, y = b.scalars
    for i in 0..<x.count { d = max(d, abs(x[i] - y[i])); s = max(s, abs(y[i])) }
    return (d, s)
}

/// A TensorSource that renames keys (old prefix → new prefix) and hides keys, to check layouts and errors.
private final class RenamedSource: TensorSource, @unchecked Sendable {
    let base: any TensorSource
    let map: [String: String]  // new key → base key
    let name: String
    let keys: [String]
    init(_ base: any TensorSource, name: String, rename: (String) -> String?) {
        self.base = base
        self.name = name
        var m: [String: String] = [:]
        for k in base.keys { if let n = rename(k) { m[n] = k } }
        map = m
        keys = m.keys.sorted()
    }
    func contains(_ key: String) -> Bool { map[key] != nil }
    func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor {
        guard let k = map[key] else { throw .missingKey(key: key, file: name, suggestions: []) }
        return try base.stored(k)
    }
}

@Suite struct VisionTests {
    // MARK: Preprocessing

    /// Pixel values equal transformers' slow CLIPImageProcessor (PIL): the 8-bit resampling is Pillow's
    /// fixed-point arithmetic, so values agree to float32 rounding (≤ 1e-6 after normalisation).
    @Test(arguments: [
        ("rgb45x30", LLaVAAspectMode.squash, "rgb45x30_squash"),
        ("rgb45x30", .pad, "rgb45x30_pad"),
        ("rgb45x30", .none, "rgb45x30_none"),
        ("rgb100x70", .squash, "rgb100x70_squash"),
        ("rgb100x70", .none, "rgb100x70_none"),
        ("gray40x52", .squash, "gray40x52_squash"),
    ] as [(String, LLaVAAspectMode, String)])
    func preprocessingMatchesCLIPImageProcessor(image: String, mode: LLaVAAspectMode, key: String) throws {
        let pre = try LLaVAImagePreprocessor(path: fixturePath("vision/clip/preprocessor_config.json"), mode: mode)
        #expect(pre.resize == .shortestEdge(56) && pre.crop == .init(height: 56, width: 56) && pre.resample == .bicubic)
        let px = try pre.pixelValues(VisionFixtures.image(image))
        let ref = try VisionFixtures.ref("pixels." + key)
        #expect(px.shape == [3, 56, 56])
        let (d, _) = compare(px, ref)
        #expect(d <= 1e-6, "max abs diff \(d)")
    }

    /// Pillow's 8-bit resampling, bit for bit. Expected bytes printed by Pillow 13 (the fixture venv):
    /// `Image.frombytes("L", size, data).resize(newSize, filter).tobytes()`.
    @Test func pillowResampleMatchesPillow() {
        let row = Bitmap8(width: 4, height: 1, channels: 1, bytes: [0, 255, 0, 255])
        #expect(PillowResample.resize(row, width: 3, height: 1, filter: .lanczos).bytes == [91, 128, 164])
        #expect(PillowResample.resize(row, width: 7, height: 1, filter: .bicubic).bytes == [0, 87, 251, 128, 4, 168, 255])
        let im = Bitmap8(width: 2, height: 3, channels: 1, bytes: [0, 255, 10, 200, 90, 30])
        // Mixed up/down scaling: horizontal pass first as in Pillow ≤ 9 (LLaVA's era); Pillow 13 runs the
        // vertical pass first here and gives [0, 22, 124, 226, 255, 59, 65, 74, 83, 89]. These bytes come from
        // the script's reference arithmetic in horizontal-first order (checked equal to Pillow 13 wherever
        // Pillow 13 itself goes horizontal first).
        #expect(PillowResample.resize(im, width: 5, height: 2, filter: .lanczos).bytes == [0, 20, 123, 226, 255, 67, 65, 74, 83, 93])
        #expect(PillowResample.resize(im, width: 1, height: 5, filter: .bilinear).bytes == [128, 119, 105, 78, 60])
        #expect(PillowResample.resize(im, width: 3, height: 4, filter: .hamming).bytes == [0, 128, 255, 8, 110, 213, 29, 94, 160, 90, 60, 30])
        // 3x2 -> 2x5: Pillow 13 goes horizontal first; the other order would give [0, 67, 20, 65, 123, 74, 226, 83, 255, 93].
        let im2 = Bitmap8(width: 3, height: 2, channels: 1, bytes: [0, 10, 90, 255, 200, 30])
        #expect(PillowResample.resize(im2, width: 2, height: 5, filter: .lanczos).bytes == Self.pillow3x2to2x5)
        #expect(PillowResample.resize(im, width: 4, height: 4, filter: .box).bytes
                == [0, 0, 255, 255, 10, 10, 200, 200, 10, 10, 200, 200, 90, 90, 30, 30])
    }

    /// Pillow 13: `Image.frombytes("L", (3, 2), bytes([0, 10, 90, 255, 200, 30])).resize((2, 5), LANCZOS)`.
    static let pillow3x2to2x5: [UInt8] = [0, 59, 22, 65, 124, 74, 226, 83, 255, 89]

    @Test func preprocessorConfigErrorsNameFileAndKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vision-pre-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("preprocessor_config.json").path
        try #"{"size": {"longest": 3}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let e = #expect(throws: PrompterError.self) { try LLaVAImagePreprocessor(path: path) }
        #expect(e?.source == path && e?.message.contains("\"size\"") == true)
        try #"{"resample": 9}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let e2 = #expect(throws: PrompterError.self) { try LLaVAImagePreprocessor(path: path) }
        #expect(e2?.message.contains("\"resample\"") == true)
        // The old integer form of size/crop_size (openai/clip-vit-large-patch14-336 before 2023).
        try #"{"size": 336, "crop_size": 336}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let p = try LLaVAImagePreprocessor(path: path)
        #expect(p.resize == .shortestEdge(336) && p.crop == .init(height: 336, width: 336))
    }

    // MARK: Config

    @Test func configReadsBothForms() throws {
        let a = try CLIPVisionConfig(path: fixturePath("vision/clip/config.json"))
        let b = try CLIPVisionConfig(path: fixturePath("vision/clipmodel-bf16/config.json"))
        let expected = CLIPVisionConfig(hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 3, numAttentionHeads: 4,
                                        imageSize: 56, patchSize: 14, hiddenAct: .quickGelu, layerNormEps: 1e-5, numChannels: 3)
        #expect(a == expected)
        #expect(b == expected)
        #expect(a.numPatches == 16)
        #expect(CLIPVisionConfig.vitL14_336.numPatches == 576)
        let hf = try CLIPVisionConfig(path: fixturePath("llava/hf/config.json"))
        #expect(hf == expected)
    }

    @Test func configMissingKeyNamesFileAndKey() throws {
        let e = #expect(throws: PrompterError.self) {
            try CLIPVisionConfig(object: ["vision_config": ["hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                                            "num_attention_heads": 4, "image_size": 56]], origin: "x/config.json")
        }
        #expect(e?.source == "x/config.json")
        #expect(e?.message.contains("\"vision_config.patch_size\" is missing") == true)
        let e2 = #expect(throws: PrompterError.self) {
            try CLIPVisionConfig(object: ["hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                          "image_size": 56, "patch_size": 14, "hidden_act": "relu"], origin: "y.json")
        }
        #expect(e2?.message.contains("hidden_act") == true)
        let e3 = #expect(throws: PrompterError.self) {
            try LLaVAVisionSettings(object: ["mm_vision_tower": "t", "hidden_size": 64, "mm_projector_type": "mlp2x_gelu"], origin: "z.json")
        }
        #expect(e3?.source == "z.json" && e3?.message.contains("mm_vision_select_layer") == true)
    }

    @Test func settingsOfBothLayouts() throws {
        let ll = try LLaVAVisionSettings(path: fixturePath("llava/llava/config.json"))
        #expect(ll.visionTower == "openai/clip-vit-tiny-patch14-56" && ll.visionHiddenSize == 32 && ll.llmHiddenSize == 64)
        #expect(ll.selectLayer == -2 && ll.selectFeature == .patch && ll.projector == .mlpGelu(depth: 2))
        #expect(ll.imageAspectRatio == "resizesquare" && ll.towerConfig == nil)
        let hf = try LLaVAVisionSettings(path: fixturePath("llava/hf/config.json"))
        #expect(hf.llmHiddenSize == 64 && hf.selectLayer == -2 && hf.selectFeature == .patch && hf.towerConfig?.hiddenSize == 32)
    }

    @Test func projectorTypesParseAsLLaVA() throws {
        #expect(try MultimodalProjector.Kind("linear") == .linear)
        #expect(try MultimodalProjector.Kind("mlp2x_gelu") == .mlpGelu(depth: 2))
        #expect(try MultimodalProjector.Kind("mlp12x_gelu") == .mlpGelu(depth: 12))
        #expect(try MultimodalProjector.Kind("identity") == .identity)
        for bad in ["mlpx_gelu", "mlp2x_relu", "mlp-1x_gelu", "qformer", ""] {
            #expect(throws: PrompterError.self) { try MultimodalProjector.Kind(bad) }
        }
    }

    // MARK: Tower

    /// Features equal transformers' `hidden_states[select_layer]` to ≤ 1e-4 × max|ref| (float32 both sides;
    /// in practice about 1e-6).
    @Test(arguments: ["rgb45x30_squash", "rgb100x70_squash", "gray40x52_squash"])
    func towerPatchFeatures(key: String) throws {
        let tower = try VisionFixtures.tower("clip", layerCount: 2)
        let f = try tower.features(VisionFixtures.ref("pixels." + key))
        let (d, s) = compare(f, try VisionFixtures.ref("features.\(key).patch"))
        #expect(f.shape == [16, 32])
        #expect(d <= 1e-4 * s, "max abs diff \(d), max |ref| \(s)")
    }

    @Test func towerClsPatchAndLastLayer() throws {
        let tower = try VisionFixtures.tower("clip")
        #expect(tower.prefix == "")  // transformers 5 CLIPVisionModel: no vision_model. prefix
        let px = try VisionFixtures.ref("pixels.rgb45x30_squash")
        let cls = try tower.features(px, selectLayer: -2, selectFeature: .clsPatch)
        var (d, s) = compare(cls, try VisionFixtures.ref("features.rgb45x30_squash.cls_patch"))
        #expect(cls.shape == [17, 32] && d <= 1e-4 * s, "cls_patch diff \(d)")
        let last = try tower.features(px, selectLayer: -1)
        (d, s) = compare(last, try VisionFixtures.ref("features.rgb45x30_squash.last"))
        #expect(d <= 1e-4 * s, "last layer diff \(d)")
        // Selecting layer 3 of 3 (= -1) from a tower loaded with 2 layers is refused.
        let short = try VisionFixtures.tower("clip", layerCount: 2)
        #expect(throws: PrompterError.self) { try short.features(px, selectLayer: -1) }
        #expect(throws: PrompterError.self) { try tower.features(px, selectLayer: -5) }
    }

    @Test func towerFromCLIPModelInBF16() throws {
        let tower = try VisionFixtures.tower("clipmodel-bf16")
        #expect(tower.prefix == "vision_model.")
        let f = try tower.features(VisionFixtures.ref("pixels.rgb45x30_squash"))
        let (d, s) = compare(f, try VisionFixtures.ref("features.rgb45x30_squash.bf16"))
        #expect(d <= 1e-4 * s, "max abs diff \(d), max |ref| \(s)")
    }

    @Test func towerFindsEveryKnownPrefix() throws {
        let base = try VisionEncoder.openWeights(folder: fixturePath("vision/clip"))
        let px = try VisionFixtures.ref("pixels.rgb45x30_squash")
        let config = try CLIPVisionConfig(path: fixturePath("vision/clip/config.json"))
        let reference = try CLIPVisionTower(config: config, weights: base).features(px)
        for prefix in CLIPVisionTower.knownPrefixes {
            let src = RenamedSource(base, name: "renamed(\(prefix))") { prefix + $0 }
            let t = try CLIPVisionTower(config: config, weights: src)
            #expect(t.prefix == prefix)
            #expect(try t.features(px).scalars == reference.scalars)
        }
    }

    @Test func towerErrors() throws {
        let base = try VisionEncoder.openWeights(folder: fixturePath("vision/clip"))
        let config = try CLIPVisionConfig(path: fixturePath("vision/clip/config.json"))
        // No tower at all: the message lists the keys looked for.
        let none = RenamedSource(base, name: "weird.safetensors") { "something.else." + $0 }
        let e = #expect(throws: PrompterError.self) { try CLIPVisionTower(config: config, weights: none) }
        #expect(e?.source == "weird.safetensors")
        #expect(e?.message.contains("\"model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight\"") == true)
        #expect(e?.message.contains("\"vision_model.embeddings.patch_embedding.weight\"") == true)
        // A missing tensor is named with its full key and the file.
        let holed = RenamedSource(base, name: "holed.safetensors") { $0 == "encoder.layers.1.mlp.fc2.bias" ? nil : "vision_model." + $0 }
        let e2 = #expect(throws: PrompterError.self) { try CLIPVisionTower(config: config, weights: holed) }
        #expect(e2?.source == "holed.safetensors")
        #expect(e2?.message.contains("\"vision_model.encoder.layers.1.mlp.fc2.bias\" is missing") == true)
        // Loading only the needed layers skips the hole in the last one.
        let holedLast = RenamedSource(base, name: "h2") { $0.hasPrefix("encoder.layers.2.") ? nil : $0 }
        #expect(throws: Never.self) { try CLIPVisionTower(config: config, weights: holedLast, layerCount: 2) }
        // A config that does not fit the weights: the shape error names the tensor.
        var wrong = config
        wrong.intermediateSize = 80
        let e3 = #expect(throws: PrompterError.self) { try CLIPVisionTower(config: wrong, weights: base) }
        #expect(e3?.message.contains("\"encoder.layers.0.mlp.fc1.weight\" has shape [64, 32], expected [80, 32]") == true)
    }

    // MARK: Projector

    /// Projector outputs equal torch's to ≤ 1e-5 × max|ref| (GELU with erf as torch computes it).
    @Test(arguments: [("linear", "linear."), ("mlp2x_gelu", "mlp2x."), ("mlp3x_gelu", "mlp3x.")] as [(String, String)])
    func projectorMatchesTorch(type: String, prefix: String) throws {
        let w = try VisionFixtures.file("vision/projectors.safetensors")
        let p = try MultimodalProjector(kind: .init(type), weights: w, inputSize: 32, outputSize: 48, keyPrefix: prefix)
        let out = try p(VisionFixtures.ref("features.rgb45x30_squash.patch"))
        let (d, s) = compare(out, try VisionFixtures.ref("projector." + type))
        #expect(out.shape == [16, 48])
        #expect(d <= 1e-5 * s, "max abs diff \(d), max |ref| \(s)")
    }

    @Test func projectorErrors() throws {
        let w = try VisionFixtures.file("vision/projectors.safetensors")
        let e = #expect(throws: PrompterError.self) { try MultimodalProjector(kind: .mlpGelu(depth: 2), weights: w) }
        #expect(e?.source == w.path)
        #expect(e?.message.contains("\"model.mm_projector.0.weight\"") == true)
        #expect(e?.message.contains("\"model.multi_modal_projector.linear_1.weight\"") == true)
        let e2 = #expect(throws: PrompterError.self) {
            try MultimodalProjector(kind: .mlpGelu(depth: 2), weights: w, inputSize: 32, outputSize: 64, keyPrefix: "mlp2x.")
        }
        #expect(e2?.message.contains("hidden size is 64") == true)
    }

    // MARK: Full encoder, both checkpoint layouts

    /// Both layouts of the tiny LLaVA give the same image embeddings, equal to the HF model's
    /// `get_image_features` (F16 weights, F32 compute) to ≤ 1e-4 × max|ref|.
    @Test func encoderOnBothLayoutsMatchesHF() throws {
        // The LLaVA layout's mm_vision_tower is a made-up hub name: the tower configuration is given.
        let towerConfig = try CLIPVisionConfig(path: fixturePath("vision/clip/config.json"))
        let llava = try VisionEncoder(folder: fixturePath("llava/llava"), towerConfig: towerConfig)
        let hf = try VisionEncoder(folder: fixturePath("llava/hf"))
        #expect(llava.tower.prefix == "model.vision_tower.vision_tower.vision_model.")
        #expect(hf.tower.prefix == "vision_tower.")
        #expect(llava.preprocessor.mode == .squash && llava.tokensPerImage == 16)
        let image = try VisionFixtures.image("rgb45x30")
        let ref = try SafeTensorsFile(path: fixturePath("llava/reference.safetensors"))
        let px = try llava.preprocessor.pixelValues(image)
        let refPixels = try ref.tensor("pixel_values")
        #expect(compare(px, refPixels).diff <= 1e-6)
        let a = try llava.encode(image), b = try hf.encode(image)
        #expect(a.shape == [16, 64])
        #expect(a.scalars == b.scalars)
        let (d, s) = compare(a, try ref.tensor("image_features"))
        #expect(d <= 1e-4 * s, "max abs diff \(d), max |ref| \(s)")
    }

    @Test func encoderTakesTheTowerFromACLIPFolder() throws {
        // The LLaVA checkpoint without its bundled tower: needs a CLIP folder.
        let full = try VisionEncoder.openWeights(folder: fixturePath("llava/llava"))
        let noTower = RenamedSource(full, name: "llava-no-tower.safetensors") { $0.contains("vision_tower") ? nil : $0 }
        let settings = try LLaVAVisionSettings(path: fixturePath("llava/llava/config.json"))
        let e = #expect(throws: PrompterError.self) {
            try VisionEncoder(settings: settings, weights: noTower, modelFolder: fixturePath("llava/llava"))
        }
        #expect(e?.source == "llava-no-tower.safetensors")
        #expect(e?.message.contains("configuration is unknown") == true && e?.message.contains("openai/clip-vit-tiny-patch14-56") == true)
        // Configuration known (given), weights absent, no CLIP folder: the error lists the keys looked for.
        var configured = settings
        configured.towerConfig = try CLIPVisionConfig(path: fixturePath("vision/clip/config.json"))
        let e1 = #expect(throws: PrompterError.self) { try VisionEncoder(settings: configured, weights: noTower) }
        #expect(e1?.source == "llava-no-tower.safetensors")
        #expect(e1?.message.contains("holds no vision tower") == true)
        #expect(e1?.message.contains("\"model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight\"") == true)
        #expect(e1?.message.contains("pass the CLIP vision tower's folder") == true)

        // Explicit CLIP folder: the same tower weights as bundled, but F32 where the checkpoint holds them
        // rounded to F16, so the features agree only to F16 weight rounding (≤ 1e-3 × max|ref|).
        let enc = try VisionEncoder(settings: settings, weights: noTower, modelFolder: fixturePath("llava/llava"),
                                    clipFolder: fixturePath("vision/clip"))
        #expect(enc.towerSource.hasSuffix("vision/clip/model.safetensors"))
        let image = try VisionFixtures.image("rgb45x30")
        let bundled = try VisionEncoder(folder: fixturePath("llava/llava"),
                                        towerConfig: CLIPVisionConfig(path: fixturePath("vision/clip/config.json")))
        let (d, s) = compare(try enc.encode(image), try bundled.encode(image))
        #expect(d <= 1e-3 * s && d > 0, "max abs diff \(d), max |ref| \(s)")

        // mm_vision_tower naming an existing local folder is used as the CLIP folder.
        var local = settings
        local.visionTower = fixturePath("vision/clip")
        let enc2 = try VisionEncoder(settings: local, weights: noTower)
        #expect(try enc2.encode(image).scalars == (try enc.encode(image)).scalars)

        // A CLIP folder that does not exist.
        let e2 = #expect(throws: PrompterError.self) {
            try VisionEncoder(settings: settings, weights: noTower, clipFolder: "/nonexistent/clip")
        }
        #expect(e2?.source == "/nonexistent/clip")
    }

    @Test func encoderUsesKnownTowerConfigByName() throws {
        // A bundled tower whose mm_vision_tower is a known hub name takes the built-in config: the tiny
        // fixture's weights then do not fit ViT-L/14-336, and the error names the tensor and shapes.
        var settings = try LLaVAVisionSettings(path: fixturePath("llava/llava/config.json"))
        settings.visionTower = "openai/clip-vit-large-patch14-336"
        settings.visionHiddenSize = nil
        let w = try VisionEncoder.openWeights(folder: fixturePath("llava/llava"))
        let e = #expect(throws: PrompterError.self) { try VisionEncoder(settings: settings, weights: w) }
        #expect(e?.message.contains("model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight") == true)
        #expect(e?.message.contains("expected [1024, 3, 14, 14]") == true)
    }
}
