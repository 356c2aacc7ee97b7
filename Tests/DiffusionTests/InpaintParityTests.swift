import Foundation
import Tensor
import Testing
@testable import Diffusion

/// diffusers' StableDiffusionInpaintPipeline against `StableDiffusionSampler.inpaint` on the tiny models of
/// tools/diffusion/make_inpaint_fixture.py: a 9-channel inpainting UNet and a plain 4-channel UNet (the
/// latent-blending path), strength 1 and below, CFG on and off, batch 1 and 2. Same tolerances as
/// PipelineParityTests: latents within 1e-4 of their largest magnitude, images PSNR ≥ 40 dB.
@Suite struct InpaintParityTests {
    struct Case: Decodable {
        var name: String
        var model: String
        var prompt: String
        var negative: String
        var sampler: String
        var seed: UInt64
        var steps: Int
        var cfg: Float
        var batch: Int
        var strength: Double
    }

    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static let dir = fixtures.appendingPathComponent("inpaint")
    static let cases: Result<[Case], Error> = Result {
        try JSONDecoder().decode([Case].self, from: try Data(contentsOf: dir.appendingPathComponent("cases.json")))
    }
    static let inpaintModels: Result<StableDiffusionModels, Error> = Result {
        try StableDiffusionModels(files: try PipelineFiles.open(folder: dir.appendingPathComponent("model").path))
    }
    static let plainModels: Result<StableDiffusionModels, Error> = Result {
        try StableDiffusionModels(files: try PipelineFiles.open(folder: fixtures.appendingPathComponent("pipeline/model").path))
    }
    var expected: SafeTensorsFile { get throws { try SafeTensorsFile(path: Self.dir.appendingPathComponent("expected.safetensors").path) } }

    /// The fixture's image [H, W, 3] and mask [H, W] (uint8 / 255) as the sampler takes them.
    func inputs() throws -> (image: Tensor, mask: Tensor) {
        let e = try expected
        let rgb = try e.tensor("image"), m = try e.tensor("mask")
        let h = rgb.shape[0], w = rgb.shape[1]
        let image = try Tensor(shape: [1, 3, h, w]) { dst in
            rgb.withUnsafeBufferPointer { s in
                for y in 0..<h { for x in 0..<w { for c in 0..<3 { dst[(c * h + y) * w + x] = s[(y * w + x) * 3 + c] * 2 - 1 } } }
            }
        }
        return (image, try m.reshaped([1, 1, h, w]))
    }

    @Test func theFixtureUNetIsAnInpaintingUNet() throws {
        let m = try Self.inpaintModels.get()
        #expect(m.files.kind == .sd15Inpainting)
        #expect(m.unet.config.inChannels == 9)
    }

    @Test(arguments: (try? cases.get().map(\.name)) ?? ["(cases.json unreadable)"])
    func sameImageAsDiffusers(name: String) throws {
        let c = try #require(try Self.cases.get().first { $0.name == name })
        let m = try (c.model == "inpaint" ? Self.inpaintModels : Self.plainModels).get()
        let (image, mask) = try inputs()
        let (cond, uncond) = try m.promptEncoder.encodeTruncated(prompt: c.prompt, negative: c.negative)
        var o = SamplingOptions()
        o.steps = c.steps
        o.guidanceScale = c.cfg
        o.seed = c.seed
        o.batch = c.batch
        o.strength = c.strength
        o.sampler = c.sampler == "default" ? nil : c.sampler
        let latents = try StableDiffusionSampler.inpaint(unet: m.unet, vae: m.vae, schedulerConfig: m.schedulerConfig,
                                                         image: image, mask: mask, positive: cond, negative: uncond, options: o)
        try PipelineParityTests.expectSameAsDiffusers(name, latents: latents, batch: c.batch, vae: m.vae, expected: try expected)
    }

    @Test func badShapesAreClearErrors() throws {
        let m = try Self.inpaintModels.get()
        let (image, _) = try inputs()
        let (cond, uncond) = try m.promptEncoder.encodeTruncated(prompt: "x", negative: "")
        var o = SamplingOptions()
        o.steps = 2
        let smallMask = try Tensor(shape: [1, 1, 32, 32], repeating: 0)
        #expect {
            _ = try StableDiffusionSampler.inpaint(unet: m.unet, vae: m.vae, schedulerConfig: m.schedulerConfig, image: image,
                                                   mask: smallMask, positive: cond, negative: uncond, options: o)
        } throws: { "\($0)".contains("the mask must be [1, 1, 64, 64] like the image, got [1, 1, 32, 32]") }
        o.strength = 0.1
        let mask = try Tensor(shape: [1, 1, 64, 64], repeating: 0)
        #expect {
            _ = try StableDiffusionSampler.inpaint(unet: m.unet, vae: m.vae, schedulerConfig: m.schedulerConfig, image: image,
                                                   mask: mask, positive: cond, negative: uncond, options: o)
        } throws: { "\($0)".contains("strength 0.1 with 2 steps leaves no denoising step") }
    }
}
