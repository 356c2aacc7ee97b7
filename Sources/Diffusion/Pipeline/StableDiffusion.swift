import Foundation
import Tensor

/// The models of one Stable Diffusion 1.x pipeline, loaded from a diffusers folder or a
/// single-file checkpoint. Weights stay memory-mapped in their stored dtype.
public final class StableDiffusionModels: @unchecked Sendable {
    public let files: PipelineFiles
    public let tokenizer: CLIPTokenizer
    public let textModel: CLIPTextModel
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public let schedulerConfig: SchedulerConfig

    public init(files: PipelineFiles) throws {
        self.files = files
        tokenizer = try CLIPTokenizer(folder: files.tokenizerFolder.path)
        textModel = try CLIPTextModel(config: try CLIPTextConfig(object: try files.textEncoder.config(), origin: files.textEncoder.configOrigin),
                                      weights: files.textEncoder.weights)
        unet = try UNet2DConditionModel(config: try ModelConfig(json: files.unet.configJSON, origin: files.unet.configOrigin),
                                        weights: files.unet.weights)
        vae = try AutoencoderKL(config: try ModelConfig(json: files.vae.configJSON, origin: files.vae.configOrigin),
                                weights: files.vae.weights)
        schedulerConfig = try SchedulerConfig(jsonData: files.schedulerConfigJSON, path: files.schedulerConfigOrigin)
    }

    public var promptEncoder: CLIPPromptEncoder { CLIPPromptEncoder(tokenizer: tokenizer, textModel: textModel) }
}

/// Parameters of one sampling run, with diffusers' and LLMGA's defaults.
public struct SamplingOptions: Sendable {
    public var width = 512
    public var height = 512
    public var steps = 50
    public var guidanceScale: Float = 7.5
    /// A scheduler short name (`SchedulerFactory.shortNames`) or diffusers class name; nil uses the model's own.
    public var sampler: String?
    public var eta = 0.0
    public var seed: UInt64 = 0
    public var batch = 1
    /// img2img: how much of the schedule to run (1 = from pure noise).
    public var strength = 1.0

    public init() {}
}

/// Reports progress (`completed` of `total` steps) and may throw to cancel between steps.
public typealias StepCallback = (_ completed: Int, _ total: Int) throws -> Void

/// The sampling loops of diffusers' StableDiffusionPipeline and StableDiffusionImg2ImgPipeline,
/// drawing from one seeded generator in the same order, so the same seed gives diffusers' image.
public enum StableDiffusionSampler {
    /// Text-to-image: returns latents [batch, 4, h/f, w/f] (scaled, as the UNet sees them; f = 8 for SD1.5).
    /// `positive`/`negative` are [1, S, D] embeddings of equal shape (`CLIPPromptEncoder`).
    public static func textToImage(unet: UNet2DConditionModel, vae: AutoencoderKL, schedulerConfig: SchedulerConfig,
                                   positive: Tensor, negative: Tensor, options o: SamplingOptions,
                                   onStep: StepCallback = { _, _ in }) throws -> Tensor {
        let f = latentFactor(vae)
        try checkSize(o, factor: f)
        var scheduler = try makeScheduler(schedulerConfig, o)
        try scheduler.setTimesteps(steps: o.steps)
        var generator = TorchGenerator(seed: o.seed)
        let shape = [o.batch, unetLatentChannels(unet), o.height / f, o.width / f]
        let latents = try scale(try generator.randn(shape), by: scheduler.initNoiseSigma)
        return try denoise(unet: unet, scheduler: &scheduler, latents: latents, positive: positive, negative: negative,
                           options: o, generator: &generator, onStep: onStep)
    }

    /// Image-to-image: `image` is [1, 3, H, W] in [-1, 1]; it is VAE-encoded with a sample from the
    /// posterior (as diffusers does), noised to the strength's first timestep, and denoised.
    public static func imageToImage(unet: UNet2DConditionModel, vae: AutoencoderKL, schedulerConfig: SchedulerConfig,
                                    image: Tensor, positive: Tensor, negative: Tensor, options o: SamplingOptions,
                                    onStep: StepCallback = { _, _ in }) throws -> Tensor {
        var opts = o
        opts.height = image.shape[2]
        opts.width = image.shape[3]
        try checkSize(opts, factor: latentFactor(vae))
        var generator = TorchGenerator(seed: o.seed)
        // diffusers: retrieve_latents(vae.encode(image), generator) draws first, then the noise.
        var initLatents = try scale(try vae.encode(image).sample(generator: &generator), by: vae.config.scalingFactor)
        if o.batch > 1 { initLatents = try repeatBatch(initLatents, o.batch) }
        var scheduler = try makeScheduler(schedulerConfig, o)
        try scheduler.setTimesteps(steps: o.steps, strength: o.strength)
        let noise = try generator.randn(initLatents.shape)
        let latents = try scheduler.addNoise(original: initLatents, noise: noise)
        return try denoise(unet: unet, scheduler: &scheduler, latents: latents, positive: positive, negative: negative,
                           options: opts, generator: &generator, onStep: onStep)
    }

    /// Decodes latents to images [B, 3, H, W] in [0, 1] (diffusers' `(x / 2 + 0.5).clamp(0, 1)`).
    public static func decode(vae: AutoencoderKL, latents: Tensor) throws -> Tensor {
        let x = try vae.decode(try scale(latents, by: 1 / vae.config.scalingFactor))
        return try Tensor(shape: x.shape) { dst in
            x.withUnsafeBufferPointer { src in
                for i in 0..<src.count { dst[i] = min(max(src[i] * 0.5 + 0.5, 0), 1) }
            }
        }
    }

    /// Encodes images [B, 3, H, W] in [-1, 1] to scaled latents using the posterior mean
    /// (deterministic, as PnPInversion's image2latent).
    public static func encodeMean(vae: AutoencoderKL, images: Tensor) throws -> Tensor {
        try scale(try vae.encode(images).mean, by: vae.config.scalingFactor)
    }

    // MARK: The loop

    static func denoise(unet: UNet2DConditionModel, scheduler: inout any Scheduler, latents start: Tensor,
                        positive: Tensor, negative: Tensor, options o: SamplingOptions,
                        generator: inout TorchGenerator, onStep: StepCallback) throws -> Tensor {
        guard positive.shape == negative.shape, positive.rank == 3, positive.shape[0] == 1 else {
            throw DiffusionError("positive and negative conditioning must both be [1, S, D] with the same S (got \(positive.shape) and \(negative.shape)); encode them together")
        }
        let cfg = o.guidanceScale > 1
        let b = o.batch
        // diffusers order: [negative × B, positive × B].
        let context = cfg ? try concatBatch([try repeatBatch(negative, b), try repeatBatch(positive, b)])
                          : try repeatBatch(positive, b)
        var latents = start
        let total = scheduler.timesteps.count
        try onStep(0, total)
        for i in 0..<total {
            let input = try scheduler.scaleModelInput(latents, index: i)
            let t = scheduler.timesteps[i]
            let modelInput = cfg ? try concatBatch([input, input]) : input
            let out = try unet(sample: modelInput, timesteps: [t], encoderHiddenStates: context)
            let eps = cfg ? try guidance(out, scale: o.guidanceScale) : out
            latents = try scheduler.step(modelOutput: eps, index: i, sample: latents, generator: &generator)
            try onStep(i + 1, total)
        }
        return latents
    }

    static func makeScheduler(_ config: SchedulerConfig, _ o: SamplingOptions) throws -> any Scheduler {
        if let name = o.sampler { return try SchedulerFactory.make(name, config: config, eta: o.eta) }
        return try SchedulerFactory.make(config: config, eta: o.eta)
    }

    static func unetLatentChannels(_ unet: UNet2DConditionModel) -> Int { unet.config.outChannels }

    /// The VAE's downscale factor, 2^(levels − 1): 8 for SD1.5 (diffusers' `vae_scale_factor`).
    public static func latentFactor(_ vae: AutoencoderKL) -> Int { 1 << max(0, vae.config.blockOutChannels.count - 1) }

    static func checkSize(_ o: SamplingOptions, factor f: Int) throws {
        guard o.width >= f, o.height >= f, o.width % f == 0, o.height % f == 0 else {
            throw DiffusionError("width and height must be positive multiples of \(f), got \(o.width)x\(o.height)")
        }
        guard o.batch >= 1 else { throw DiffusionError("batch must be at least 1") }
    }

    /// uncond + g · (cond − uncond) over the two halves of the batch.
    static func guidance(_ out: Tensor, scale g: Float) throws -> Tensor {
        let b = out.shape[0] / 2
        let half = out.count / 2
        var shape = out.shape
        shape[0] = b
        return try Tensor(shape: shape) { dst in
            out.withUnsafeBufferPointer { src in
                for i in 0..<half {
                    let u = src[i], c = src[half + i]
                    dst[i] = u + g * (c - u)
                }
            }
        }
    }

    static func scale(_ x: Tensor, by s: Float) throws -> Tensor {
        try Tensor(shape: x.shape) { dst in
            x.withUnsafeBufferPointer { src in
                for i in 0..<src.count { dst[i] = src[i] * s }
            }
        }
    }

    static func repeatBatch(_ x: Tensor, _ n: Int) throws -> Tensor {
        n == 1 ? x : try concatBatch([Tensor](repeating: x, count: n))
    }

    static func concatBatch(_ xs: [Tensor]) throws -> Tensor { try Ops.concat(xs, axis: 0) }
}
