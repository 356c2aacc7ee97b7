import Foundation
import Tensor
import Testing
@testable import Diffusion

/// The tiny pipeline of tools/diffusion/make_pipeline_fixture.py, run by diffusers and by us:
/// same folder, prompt, seed, sampler and steps must give the same image (PSNR ≥ 40 dB).
@Suite struct PipelineParityTests {
    struct Case: Decodable {
        var name: String
        var prompt: String
        var negative: String
        var sampler: String
        var seed: UInt64
        var steps: Int
        var cfg: Float
        var batch: Int
        var strength: Double?
    }

    static let dir = Bundle.module.url(forResource: "pipeline", withExtension: nil, subdirectory: "Fixtures")!
    static let cases: [Case] = {
        let data = try! Data(contentsOf: dir.appendingPathComponent("cases.json"))
        return try! JSONDecoder().decode([Case].self, from: data)
    }()
    /// Loaded once and shared by the cases; a loading error fails each test instead of crashing the run.
    static let loaded: Result<StableDiffusionModels, Error> = Result {
        try StableDiffusionModels(files: try PipelineFiles.open(folder: dir.appendingPathComponent("model").path))
    }
    var models: StableDiffusionModels { get throws { try Self.loaded.get() } }
    var expected: SafeTensorsFile { get throws { try SafeTensorsFile(path: Self.dir.appendingPathComponent("expected.safetensors").path) } }

    /// PSNR in dB of two images in [0, 1].
    static func psnr(_ a: [Float], _ b: [Float]) -> Double {
        var se = 0.0
        for i in a.indices { se += Double((a[i] - b[i]) * (a[i] - b[i])) }
        let mse = se / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(1 / mse)
    }

    /// [B, 3, H, W] → [B, H, W, 3] like diffusers' numpy output.
    static func nhwc(_ t: Tensor) -> [Float] {
        let b = t.shape[0], h = t.shape[2], w = t.shape[3]
        var out = [Float](repeating: 0, count: t.count)
        t.withUnsafeBufferPointer { s in
            for i in 0..<b { for y in 0..<h { for x in 0..<w { for c in 0..<3 {
                out[((i * h + y) * w + x) * 3 + c] = s[((i * 3 + c) * h + y) * w + x]
            } } } }
        }
        return out
    }

    @Test(arguments: cases.map(\.name))
    func sameImageAsDiffusers(name: String) throws {
        let c = Self.cases.first { $0.name == name }!
        let m = try models
        let (cond, uncond) = try m.promptEncoder.encodeTruncated(prompt: c.prompt, negative: c.negative)
        var o = SamplingOptions()
        o.width = 64
        o.height = 64
        o.steps = c.steps
        o.guidanceScale = c.cfg
        o.seed = c.seed
        o.batch = c.batch
        o.sampler = c.sampler == "default" ? nil : c.sampler
        let latents: Tensor
        if let strength = c.strength {
            o.strength = strength
            let initNHWC = try expected.tensor("init_image")
            let h = initNHWC.shape[1], w = initNHWC.shape[2]
            let image = try Tensor(shape: [1, 3, h, w]) { dst in
                initNHWC.withUnsafeBufferPointer { s in
                    for y in 0..<h { for x in 0..<w { for ch in 0..<3 { dst[(ch * h + y) * w + x] = s[(y * w + x) * 3 + ch] * 2 - 1 } } }
                }
            }
            latents = try StableDiffusionSampler.imageToImage(unet: m.unet, vae: m.vae, schedulerConfig: m.schedulerConfig, image: image,
                                                              positive: cond, negative: uncond, options: o)
        } else {
            latents = try StableDiffusionSampler.textToImage(unet: m.unet, vae: m.vae, schedulerConfig: m.schedulerConfig,
                                                             positive: cond, negative: uncond, options: o)
        }
        try Self.expectSameAsDiffusers(name, latents: latents, batch: c.batch, vae: m.vae, expected: try expected)
    }

    /// The final latents first (within 1e-4 of the reference's largest magnitude), then the decoded
    /// images (PSNR ≥ 40 dB against diffusers' 64×64 `NAME`, stored next to `NAME_latents`).
    static func expectSameAsDiffusers(_ name: String, latents: Tensor, batch: Int, vae: AutoencoderKL,
                                      expected: SafeTensorsFile) throws {
        let refLatents = try expected.tensor(name + "_latents")
        #expect(latents.shape == refLatents.shape)
        let scale = refLatents.scalars.map { abs($0) }.max() ?? 1
        let err = zip(latents.scalars, refLatents.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(err <= 1e-4 * scale, "\(name): latents max abs error \(err) vs max |ref| \(scale)")
        let images = try StableDiffusionSampler.decode(vae: vae, latents: latents)
        let ref = try expected.tensor(name)
        #expect(ref.shape == [batch, 64, 64, 3])
        let p = psnr(nhwc(images), ref.scalars)
        #expect(p >= 40, "\(name): PSNR \(p) dB")
    }

    @Test func cancellingBetweenStepsStopsTheRun() throws {
        let m = try models
        let (cond, uncond) = try m.promptEncoder.encodeTruncated(prompt: "a cat", negative: "")
        var o = SamplingOptions()
        o.width = 64
        o.height = 64
        o.steps = 10
        var seen: [Int] = []
        #expect(throws: CancellationError.self) {
            _ = try StableDiffusionSampler.textToImage(unet: m.unet, vae: m.vae, schedulerConfig: m.schedulerConfig,
                                                       positive: cond, negative: uncond, options: o) { done, total in
                seen.append(done)
                // PNDM's PLMS start evaluates one timestep twice: 10 steps are 11 UNet calls.
                #expect(total == 11)
                if done == 3 { throw CancellationError() }
            }
        }
        #expect(seen == [0, 1, 2, 3])
    }
}
