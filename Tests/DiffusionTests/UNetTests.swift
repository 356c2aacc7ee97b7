import Foundation
import Tensor
import Testing
@testable import Diffusion

/// Records (and optionally edits) attention probabilities, like a prompt-to-prompt controller.
final class RecordingHook: AttentionHook {
    var wanted: (AttentionSite) -> Bool
    var edit: ((inout Tensor, AttentionSite) -> Void)?
    var seen: [AttentionSite] = []
    var recorded: [String: Tensor] = [:]

    init(wanted: @escaping (AttentionSite) -> Bool, edit: ((inout Tensor, AttentionSite) -> Void)? = nil) {
        self.wanted = wanted
        self.edit = edit
    }

    func wantsProbabilities(at site: AttentionSite) -> Bool { wanted(site) }

    func process(_ probabilities: inout Tensor, at site: AttentionSite) throws {
        seen.append(site)
        recorded[site.name] = probabilities
        edit?(&probabilities, site)
    }
}

@Suite struct UNetTests {
    let cases: SafeTensorsFile

    init() throws { cases = try Fixture.file("unet/cases.safetensors") }

    func run(_ unet: UNet2DConditionModel, _ p: String, hook: (any AttentionHook)? = nil,
             residuals: Bool = false) throws -> Tensor {
        var down: [Tensor]? = nil, mid: Tensor? = nil
        if residuals {
            down = try (0..<unet.skipChannels.count).map { try cases.tensor("cn.down.\($0)") }
            mid = try cases.tensor("cn.mid")
        }
        return try unet(sample: try cases.tensor("\(p).sample"), timesteps: try cases.tensor("\(p).timesteps").scalars,
                        encoderHiddenStates: try cases.tensor("\(p).context"), downResiduals: down, midResidual: mid,
                        attentionHook: hook)
    }

    @Test func float32BatchOfTwoWithTwoTimesteps() throws {
        let unet = try Fixture.unet("unet/unet_f32.safetensors")
        expectClose(try run(unet, "a"), try cases.tensor("a.out"), "unet f32 batch 2")
        #expect(unet.workspace.convertedElements == 0) // F32 weights are used in place
    }

    @Test func controlNetResidualsAreAddedToSkipsAndMid() throws {
        let unet = try Fixture.unet("unet/unet_f32.safetensors")
        #expect(unet.skipChannels == [16, 16, 16, 16, 32, 32])
        let out = try run(unet, "a", residuals: true)
        expectClose(out, try cases.tensor("cn.out"), "unet f32 + ControlNet residuals")
        // The residuals matter: the plain output is far from the ControlNet one.
        #expect(maxError(out, try cases.tensor("a.out")).err > 1e-2)
    }

    @Test func oddLatentSizeUpsamplesToTheSkipSize() throws {
        let unet = try Fixture.unet("unet/unet_f32.safetensors")
        expectClose(try run(unet, "odd"), try cases.tensor("odd.out"), "unet f32 9×7 latent")
    }

    @Test func attentionHookSeesTorchsProbabilities() throws {
        let unet = try Fixture.unet("unet/unet_f32.safetensors")
        let names = unet.attentionSites.map(\.name)
        #expect(names == [
            "down_blocks.0.attentions.0.transformer_blocks.0.attn1", "down_blocks.0.attentions.0.transformer_blocks.0.attn2",
            "down_blocks.0.attentions.1.transformer_blocks.0.attn1", "down_blocks.0.attentions.1.transformer_blocks.0.attn2",
            "mid_block.attentions.0.transformer_blocks.0.attn1", "mid_block.attentions.0.transformer_blocks.0.attn2",
            "up_blocks.1.attentions.0.transformer_blocks.0.attn1", "up_blocks.1.attentions.0.transformer_blocks.0.attn2",
            "up_blocks.1.attentions.1.transformer_blocks.0.attn1", "up_blocks.1.attentions.1.transformer_blocks.0.attn2",
            "up_blocks.1.attentions.2.transformer_blocks.0.attn1", "up_blocks.1.attentions.2.transformer_blocks.0.attn2",
        ])
        #expect(unet.attentionSites.map(\.index) == Array(0..<12))
        let hook = RecordingHook(wanted: { _ in true })
        let out = try run(unet, "a", hook: hook)
        // Materialised probabilities give the same result as the fused path.
        expectClose(out, try cases.tensor("a.out"), "unet f32 with every probability materialised")
        #expect(hook.seen.map(\.index) == Array(0..<12))
        #expect(hook.seen.map(\.place) == [.down, .down, .down, .down, .mid, .mid] + Array(repeating: .up, count: 6))
        #expect(hook.seen.map(\.isCross) == Array(repeating: [false, true], count: 6).flatMap { $0 })
        let mid = hook.seen[4]
        #expect(mid.heads == 2 && mid.height == 8 && mid.width == 6)
        expectClose(hook.recorded["mid_block.attentions.0.transformer_blocks.0.attn1"]!, try cases.tensor("probe.mid.attn1"),
                    "mid self-attention probabilities")
        expectClose(hook.recorded["up_blocks.1.attentions.2.transformer_blocks.0.attn2"]!, try cases.tensor("probe.up1.a2.attn2"),
                    "up cross-attention probabilities")
    }

    @Test func attentionHookCanReplaceProbabilities() throws {
        let unet = try Fixture.unet("unet/unet_f32.safetensors")
        // Like prompt-to-prompt: batch row 1 takes row 0's cross-attention maps; self-attention untouched.
        let hook = RecordingHook(wanted: { $0.isCross }) { p, _ in
            p.withUnsafeMutableBufferPointer { b in
                let half = b.count / 2
                for i in 0..<half { b[half + i] = b[i] }
            }
        }
        let out = try run(unet, "a", hook: hook)
        #expect(hook.seen.count == 6 && hook.seen.allSatisfy(\.isCross))
        expectClose(out, try cases.tensor("p2p.out"), "unet f32 with edited cross-attention")
        #expect(maxError(out, try cases.tensor("a.out")).err > 1e-3)
    }

    @Test func float16WeightsStayF16AndMatchTorchWithRoundedWeights() throws {
        let unet = try Fixture.unet("unet/unet_f16.safetensors")
        #expect(unet.convIn.weight.dtype == .f16)
        let out = try run(unet, "a")
        expectClose(out, try cases.tensor("f16.out"), "unet f16 weights")
        #expect(unet.workspace.convertedElements > 200_000)
        print("unet f16: converted \(unet.workspace.convertedElements) weight elements in \(unet.workspace.conversionSeconds) s")
    }

    @Test func nineChannelInpaintingVariantWithOtherConfigKnobs() throws {
        let unet = try Fixture.unet("unet/nine/unet9_f16.safetensors", config: "unet/nine/config.json")
        #expect(unet.config.inChannels == 9 && unet.config.useLinearProjection && unet.config.transformerLayers == [2, 2])
        #expect(unet.config.heads == [2, 4] && !unet.config.flipSinToCos && unet.config.freqShift == 1)
        #expect(unet.attentionSites.count == (1 * 2 + 2 + 2 * 2) * 2)
        expectClose(try run(unet, "nine"), try cases.tensor("nine.out"), "unet 9-channel f16")
    }

    @Test func singleFileLDMCheckpointGivesTheSameOutputs() throws {
        let ckpt = try LDMCheckpoint(source: try Fixture.file("unet/ldm/tiny_sd.safetensors"))
        #expect(ckpt.kind == .sd15)
        let fromLDM = try UNet2DConditionModel(config: try Fixture.config("unet/config.json"), weights: ckpt.unet)
        let fromFolder = try Fixture.unet("unet/unet_f16.safetensors")
        let a = try run(fromLDM, "a"), b = try run(fromFolder, "a")
        #expect(a.scalars == b.scalars) // same bytes, same code: bit-identical
        expectClose(a, try cases.tensor("f16.out"), "unet from LDM single file")
        let vae = try AutoencoderKL(config: try Fixture.config("vae/config.json"), weights: ckpt.vae)
        let vcases = try Fixture.file("vae/cases.safetensors")
        let ref = try Fixture.vae("vae/vae_f16.safetensors")
        #expect(try vae.decode(try vcases.tensor("dec.latent")).scalars == (try ref.decode(try vcases.tensor("dec.latent"))).scalars)
        #expect(try vae.encode(try vcases.tensor("enc.image")).moments.scalars == (try ref.encode(try vcases.tensor("enc.image"))).moments.scalars)
    }

    @Test func weightProblemsNameTheFileAndKey() throws {
        let path = Fixture.path("unet/unet_f32.safetensors")
        let full = try Fixture.file("unet/unet_f32.safetensors")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("unet-bad-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        // Missing key.
        var w = SafeTensorsWriter()
        for k in full.keys where k != "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight" {
            let t = try full.stored(k)
            try w.add(k, dtype: t.dtype, shape: t.shape, bytes: Array(t.bytes))
        }
        try w.write(to: tmp)
        do {
            _ = try UNet2DConditionModel(config: try Fixture.config("unet/config.json"), weights: try SafeTensorsFile(path: tmp))
            Issue.record("missing key accepted")
        } catch let e as DiffusionError {
            #expect(e.description.contains(tmp) && e.description.contains("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"), "\(e)")
        }
        // Wrong shape: a config whose cross_attention_dim disagrees with the weights.
        var cfg = try Fixture.config("unet/config.json").values
        cfg["cross_attention_dim"] = 24
        do {
            _ = try UNet2DConditionModel(config: ModelConfig(values: cfg, origin: "cfg.json"), weights: full)
            Issue.record("wrong shape accepted")
        } catch let e as DiffusionError {
            #expect(e.description.contains(path) && e.description.contains("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight") && e.description.contains("has shape [16, 16], expected [16, 24]"), "\(e)")
        }
        // Unsupported config values name the field.
        cfg = try Fixture.config("unet/config.json").values
        cfg["down_block_types"] = ["CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"]
        #expect(throws: DiffusionError.self) { try UNet2DConditionModel(config: ModelConfig(values: cfg, origin: "cfg.json"), weights: full) }
        do { _ = try UNetConfig(ModelConfig(values: cfg, origin: "cfg.json")) } catch let e as DiffusionError {
            #expect(e.description.contains("cfg.json") && e.description.contains("down_block_types") && e.description.contains("SimpleCrossAttnDownBlock2D"))
        }
    }

    @Test func badInputsAreErrorsNotCrashes() throws {
        let unet = try Fixture.unet("unet/unet_f32.safetensors")
        let s = try cases.tensor("a.sample"), c = try cases.tensor("a.context")
        #expect(throws: DiffusionError.self) { try unet(sample: try Tensor(zeros: [2, 3, 16, 12]), timesteps: [1], encoderHiddenStates: c) }
        #expect(throws: DiffusionError.self) { try unet(sample: s, timesteps: [1], encoderHiddenStates: try Tensor(zeros: [2, 7, 8])) }
        #expect(throws: DiffusionError.self) { try unet(sample: s, timesteps: [1, 2, 3], encoderHiddenStates: c) }
        #expect(throws: DiffusionError.self) { try unet(sample: s, timesteps: [1], encoderHiddenStates: c, downResiduals: [s]) }
        let down = try (0..<6).map { try cases.tensor("cn.down.\($0)") }
        #expect(throws: DiffusionError.self) {
            try unet(sample: s, timesteps: [1], encoderHiddenStates: c, downResiduals: Array(down.dropLast()), midResidual: try cases.tensor("cn.mid"))
        }
        #expect(throws: DiffusionError.self) {
            try unet(sample: s, timesteps: [1], encoderHiddenStates: c, downResiduals: down, midResidual: s)
        }
    }

    @Test func fusedAttentionOverSeveralQueryTilesMatchesOpsAttention() throws {
        // 8192 keys → 128 query rows per tile; 300 queries → tiles of 128, 128, 44.
        var g = TorchGenerator(seed: 7)
        let q = try g.randn([2, 300, 16]), k = try g.randn([2, 8192, 16]), v = try g.randn([2, 8192, 16])
        #expect(FusedAttention.tileFloats / 8192 == 128)
        let ref = try Ops.attention(query: q, key: k, value: v, heads: 2, scale: 0.3)
        expectClose(try FusedAttention.run(q: q, k: k, v: v, heads: 2, scale: 0.3), ref, rel: 1e-5, "fused attention, 3 query tiles")
    }

    @Test func timestepEmbeddingMatchesTheSpecCheckValues() throws {
        // diffusers 0.42 `models/embeddings.py` get_timestep_embedding at t = 981, 320 channels → emb[0..2], emb[160..162]
        // (torch, 5 digits). The float32
        // argument t·freq near 926 has an ulp of 6e-5, and torch's vectorised exp/sin/cos may round differently by
        // one ulp, hence 1e-4.
        let e = try UNet2DConditionModel.timestepEmbedding([981], dim: 320, flipSinToCos: true, freqShift: 0).scalars
        let want: [(Int, Float)] = [(0, 0.67996), (1, -0.79843), (2, 0.57806), (160, 0.73325), (161, 0.60209), (162, 0.81599)]
        for (i, v) in want { #expect(abs(e[i] - v) < 1e-4, "emb[\(i)] = \(e[i]), want \(v)") }
    }
}

/// A source with no tensors (for config-only checks).
struct EmptySource: TensorSource {
    var name: String { "empty" }
    var keys: [String] { [] }
    func contains(_ key: String) -> Bool { false }
    func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor { throw .missingKey(key: key, file: name, suggestions: []) }
}
