import Foundation
import Tensor
import Testing
@testable import Diffusion

@Suite struct VAETests {
    let cases: SafeTensorsFile

    init() throws { cases = try Fixture.file("vae/cases.safetensors") }

    @Test func float32EncodeMomentsSampleAndDecode() throws {
        let vae = try Fixture.vae("vae/vae_f32.safetensors")
        #expect(vae.config.scalingFactor == 0.18215)
        let dist = try vae.encode(try cases.tensor("enc.image"))
        expectClose(dist.moments, try cases.tensor("enc.moments"), "vae f32 encode moments")
        var g = TorchGenerator(seed: 1234)
        expectClose(try dist.sample(generator: &g), try cases.tensor("enc.sample"), "vae f32 latent_dist.sample(generator)")
        expectClose(try vae.decode(try cases.tensor("dec.latent")), try cases.tensor("dec.image"), "vae f32 decode batch 2")
    }

    @Test func float16Weights() throws {
        let vae = try Fixture.vae("vae/vae_f16.safetensors")
        expectClose(try vae.encode(try cases.tensor("enc.image")).moments, try cases.tensor("f16.enc.moments"), "vae f16 encode")
        expectClose(try vae.decode(try cases.tensor("dec.latent")), try cases.tensor("f16.dec.image"), "vae f16 decode")
        #expect(vae.workspace.convertedElements > 0)
    }

    @Test func meanAndClampedLogvar() throws {
        let vae = try Fixture.vae("vae/vae_f32.safetensors")
        let d = try vae.encode(try cases.tensor("enc.image"))
        let m = d.moments.scalars, c = d.mean.count
        #expect(d.mean.shape == [1, 4, 8, 6] && d.logvar.shape == [1, 4, 8, 6])
        #expect(d.mean.scalars == Array(m[0..<c]))
        #expect(d.logvar.scalars == m[c..<(2 * c)].map { min(max($0, -30), 20) })
    }

    /// Old diffusers VAE files name the mid attention `query/key/value/proj_attn` (and LDM-era
    /// exports store them as 1×1 convolutions); both load as diffusers does.
    @Test func legacyAttentionNamesAndConvShapedWeights() throws {
        let src = try Fixture.file("vae/vae_f16.safetensors")
        let legacy = ["to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"]
        var w = SafeTensorsWriter()
        for k in src.keys {
            let t = try src.stored(k)
            var name = k, shape = t.shape
            for (new, old) in legacy where k.contains("attentions.0.\(new).") {
                name = k.replacingOccurrences(of: "attentions.0.\(new).", with: "attentions.0.\(old).")
                if shape.count == 2 { shape += [1, 1] }
            }
            try w.add(name, dtype: t.dtype, shape: shape, bytes: Array(t.bytes))
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("vae-legacy-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try w.write(to: tmp)
        #expect(try SafeTensorsFile(path: tmp).contains("decoder.mid_block.attentions.0.proj_attn.weight"))
        let old = try AutoencoderKL(config: try Fixture.config("vae/config.json"), weights: try SafeTensorsFile(path: tmp))
        let new = try Fixture.vae("vae/vae_f16.safetensors")
        let z = try cases.tensor("dec.latent")
        #expect(try old.decode(z).scalars == (try new.decode(z)).scalars)
    }

    @Test func errorsNameFileKeyAndField() throws {
        var cfg = try Fixture.config("vae/config.json").values
        cfg["block_out_channels"] = [8, 16, 32]
        do {
            _ = try AutoencoderKL(config: ModelConfig(values: cfg, origin: "vae.json"), weights: try Fixture.file("vae/vae_f32.safetensors"))
            Issue.record("wrong config accepted")
        } catch let e as DiffusionError {
            #expect(e.description.contains("vae_f32.safetensors") && e.description.contains("shape"), "\(e)")
        }
        cfg["up_block_types"] = ["UpDecoderBlock2D"]
        #expect(throws: DiffusionError.self) { try VAEConfig(ModelConfig(values: cfg, origin: "vae.json")) }
        let vae = try Fixture.vae("vae/vae_f32.safetensors")
        #expect(throws: DiffusionError.self) { try vae.decode(try Tensor(zeros: [1, 3, 8, 8])) }
        #expect(throws: DiffusionError.self) { try vae.encode(try Tensor(zeros: [1, 4, 8, 8])) }
    }
}
