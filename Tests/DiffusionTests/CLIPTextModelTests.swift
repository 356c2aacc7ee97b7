import Foundation
import Testing
import Tensor
@testable import Diffusion

@Suite struct CLIPTextModelTests {

    static func prompts() throws -> [[String: Any]] {
        try #require(try CLIPFixtures.json("expected.json")["prompts"] as? [[String: Any]])
    }

    @Test func configIsRead() throws {
        let c = try CLIPFixtures.f32().config
        #expect(c == CLIPTextConfig(vocabSize: 914, hiddenSize: 32, intermediateSize: 37, numHiddenLayers: 3,
                                    numAttentionHeads: 4, maxPositionEmbeddings: 77, hiddenAct: .quickGelu, layerNormEps: 1e-5))
        let g = try CLIPFixtures.bf16().config
        #expect(g.hiddenAct == .gelu && g.layerNormEps == 1e-6 && g.numHiddenLayers == 2)
    }

    /// last_hidden_state and clip_skip=1 for F32, F16 (unprefixed keys) and BF16 (gelu) weights.
    @Test func matchesTransformers() throws {
        var worst: Float = 0
        let small = try CLIPFixtures.smallTokenizer()
        let models = [("f32", try CLIPFixtures.f32()), ("f16", try CLIPFixtures.f16()), ("bf16gelu", try CLIPFixtures.bf16())]
        for (i, p) in try Self.prompts().enumerated() {
            let ids = CLIPFixtures.ints(p["ids"])
            #expect(small.encodePadded(p["text"] as! String) == ids)
            for (tag, model) in models {
                worst = max(worst, try expectClose(model([ids]), "p\(i).\(tag).last"))
                worst = max(worst, try expectClose(model([ids], clipSkip: 1), "p\(i).\(tag).skip1"))
            }
            worst = max(worst, try expectClose(models[0].1([CLIPFixtures.ints(p["unpadded_ids"])]), "p\(i).f32.unpadded"))
        }
        print("CLIPTextModel: worst max-abs error / max|ref| = \(worst)")
    }

    @Test func batchRowsAreIndependent() throws {
        let ps = try Self.prompts()
        let a = CLIPFixtures.ints(ps[0]["ids"]), b = CLIPFixtures.ints(ps[2]["ids"])
        let model = try CLIPFixtures.f32()
        let both = try model([a, b])
        #expect(both.shape == [2, 77, 32])
        let single = try model([b])
        #expect(try both.slice(first: 1..<2).scalars == single.scalars)
    }

    @Test func rejectsBadInput() throws {
        let model = try CLIPFixtures.f32()
        #expect(throws: DiffusionError.self) { try model([[1, 2], [3]]) }
        #expect(throws: DiffusionError.self) { try model([Array(repeating: 1, count: 78)]) }
        #expect(throws: DiffusionError.self) { try model([[914]]) }
        #expect(throws: DiffusionError.self) { try model([[1]], clipSkip: 4) }
        #expect(throws: DiffusionError.self) { try model([]) }
    }

    /// A missing or mis-shaped tensor is reported with the file and the key.
    @Test func weightErrorsNameFileAndKey() throws {
        let source = try SafeTensorsFile(path: CLIPFixtures.path("text_encoder/model.safetensors"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-te-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(dropping drop: String?, reshaping reshape: String?) throws -> String {
            var w = SafeTensorsWriter()
            for key in source.keys where key != drop {
                let t = try source.tensor(key)
                try w.add(key, shape: key == reshape ? [t.count] : t.shape, floats: t.scalars, as: .f16)
            }
            let path = dir.appendingPathComponent("w\(UUID().uuidString).safetensors").path
            try w.write(to: path)
            return path
        }
        let config = try CLIPFixtures.f32().config
        let missing = try write(dropping: "text_model.encoder.layers.2.mlp.fc1.bias", reshaping: nil)
        #expect {
            try CLIPTextModel(config: config, weights: SafeTensorsFile(path: missing))
        } throws: { e in
            let d = e as! DiffusionError
            return d.file == missing && d.message.contains("text_model.encoder.layers.2.mlp.fc1.bias")
        }
        let misshaped = try write(dropping: nil, reshaping: "text_model.encoder.layers.0.self_attn.k_proj.weight")
        #expect {
            try CLIPTextModel(config: config, weights: SafeTensorsFile(path: misshaped))
        } throws: { e in
            let d = e as! DiffusionError
            return d.file == misshaped && d.message.contains("\"text_model.encoder.layers.0.self_attn.k_proj.weight\" has shape [1024], expected [32, 32]")
        }
        var wrongConfig = config
        wrongConfig.intermediateSize = 40
        #expect {
            try CLIPTextModel(config: wrongConfig, weights: source)
        } throws: { ($0 as! DiffusionError).message.contains("mlp.fc1.weight\" has shape [37, 32], expected [40, 32]") }
        // Weights that load through a conversion give the same result as the F32 file.
        let f16 = try CLIPTextModel(config: config, weights: SafeTensorsFile(path: try write(dropping: nil, reshaping: nil)))
        let ids = CLIPFixtures.ints(try Self.prompts()[0]["ids"])
        try expectClose(f16([ids]), "p0.f16.last")
    }

    @Test func configErrorsNameFileAndField() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("config.json").path
        try #"{"hidden_act": "relu"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try CLIPTextConfig(path: path) } throws: { ($0 as! DiffusionError).file == path && "\($0)".contains("hidden_act") }
        try #"{"hidden_size": 30, "num_attention_heads": 4}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try CLIPTextConfig(path: path) } throws: { "\($0)".contains("not divisible") }
        try #"{"num_hidden_layers": -1}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try CLIPTextConfig(path: path) } throws: { "\($0)".contains("num_hidden_layers") }
        #expect { try CLIPTextModel(folder: dir.path + "/none") } throws: { "\($0)".contains("config.json") }
    }
}
