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

    /// Inpainting, as diffusers' StableDiffusionInpaintPipeline: `image` is [1, 3, H, W] in [-1, 1], `mask`
    /// [1, 1, H, W] with 1 (≥ 0.5 after binarising, as diffusers' mask processor does) where to generate.
    ///
    /// - A 9-channel inpainting UNet sees `[latents, mask at latent size (nearest), masked-image latents]` at
    ///   every step; the masked image is `image · (mask < 0.5)` (holes at 0, mid-grey), VAE-encoded with a
    ///   posterior sample. Nothing is pasted back: the UNet keeps the unmasked area itself.
    /// - A plain 4-channel UNet is diffusers' fallback: after each step the unmasked area is replaced by the
    ///   image's own latents noised to the next timestep, and by the clean latents after the last step.
    /// - `strength` < 1 starts from the image's latents noised to the strength's first timestep.
    ///
    /// The generator draws as diffusers does: the image's latents (only when a 4-channel UNet or
    /// strength < 1 needs them), then the noise, then the masked image's latents.
    public static func inpaint(unet: UNet2DConditionModel, vae: AutoencoderKL, schedulerConfig: SchedulerConfig,
                               image: Tensor, mask: Tensor, positive: Tensor, negative: Tensor, options o: SamplingOptions,
                               onStep: StepCallback = { _, _ in }) throws -> Tensor {
        guard image.rank == 4, image.shape[0] == 1, image.shape[1] == 3 else {
            throw DiffusionError("inpainting needs one RGB image [1, 3, H, W], got \(image.shape)")
        }
        let h = image.shape[2], w = image.shape[3]
        guard mask.shape == [1, 1, h, w] else {
            throw DiffusionError("the mask must be [1, 1, \(h), \(w)] like the image, got \(mask.shape)")
        }
        var opts = o
        opts.height = h
        opts.width = w
        let f = latentFactor(vae)
        try checkSize(opts, factor: f)
        let latentChannels = vae.config.latentChannels
        let inChannels = unet.config.inChannels
        let nineChannel = inChannels == 2 * latentChannels + 1
        guard nineChannel || inChannels == latentChannels else {
            throw DiffusionError("the UNet takes \(inChannels) input channels; inpainting needs \(latentChannels) (any SD UNet) or \(2 * latentChannels + 1) (an inpainting UNet)")
        }
        var scheduler = try makeScheduler(schedulerConfig, o)
        try scheduler.setTimesteps(steps: o.steps, strength: o.strength)
        let strengthMax = o.strength >= 1
        var generator = TorchGenerator(seed: o.seed)
        let sf = vae.config.scalingFactor

        // diffusers' prepare_latents.
        var imageLatents: Tensor?
        if !nineChannel || !strengthMax {
            imageLatents = try repeatBatch(try scale(try vae.encode(image).sample(generator: &generator), by: sf), o.batch)
        }
        let noise = try generator.randn([o.batch, latentChannels, h / f, w / f])
        let latents: Tensor
        if let imageLatents, !strengthMax {
            latents = try scheduler.addNoise(original: imageLatents, noise: noise)
        } else {
            latents = try scale(noise, by: scheduler.initNoiseSigma)
        }

        // diffusers' prepare_mask_latents (the masked image is encoded, and drawn for, even when a 4-channel UNet
        // does not use it).
        let binary = try Tensor(shape: mask.shape) { dst in
            mask.withUnsafeBufferPointer { src in for i in 0..<src.count { dst[i] = src[i] < 0.5 ? 0 : 1 } }
        }
        let masked = try Tensor(shape: image.shape) { dst in
            image.withUnsafeBufferPointer { src in
                binary.withUnsafeBufferPointer { m in
                    for c in 0..<3 { for i in 0..<(h * w) { dst[c * h * w + i] = m[i] < 0.5 ? src[c * h * w + i] : 0 } }
                }
            }
        }
        let maskedLatents = try scale(try vae.encode(masked).sample(generator: &generator), by: sf)
        // torch's nearest interpolation to (h/f, w/f): source index floor(i · f).
        let lh = h / f, lw = w / f
        let latentMask = try Tensor(shape: [1, 1, lh, lw]) { dst in
            binary.withUnsafeBufferPointer { m in
                for y in 0..<lh { for x in 0..<lw { dst[y * lw + x] = m[(y * f) * w + x * f] } }
            }
        }

        var hooks = DenoiseHooks()
        if nineChannel {
            let extra = try repeatBatch(try Ops.concat([latentMask, maskedLatents], axis: 1), o.batch)
            hooks.extraChannels = o.guidanceScale > 1 ? try concatBatch([extra, extra]) : extra
        } else if let imageLatents {
            let last = scheduler.timesteps.count - 1
            hooks.afterStep = { [scheduler] i, x in
                let proper = i < last ? try scheduler.addNoise(original: imageLatents, noise: noise, index: i + 1) : imageLatents
                return try blend(kept: proper, generated: x, mask: latentMask)
            }
        }
        return try denoise(unet: unet, scheduler: &scheduler, latents: latents, positive: positive, negative: negative,
                           options: opts, generator: &generator, hooks: hooks, onStep: onStep)
    }

    /// `(1 − mask) · kept + mask · generated`, the [1, 1, h, w] mask broadcast over batch and channels.
    static func blend(kept: Tensor, generated: Tensor, mask: Tensor) throws -> Tensor {
        let plane = mask.count
        return try Tensor(shape: generated.shape) { dst in
            kept.withUnsafeBufferPointer { k in
                generated.withUnsafeBufferPointer { g in
                    mask.withUnsafeBufferPointer { m in
                        for i in 0..<g.count {
                            let mv = m[i % plane]
                            dst[i] = (1 - mv) * k[i] + mv * g[i]
                        }
                    }
                }
            }
        }
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

    /// What an inpainting loop adds to the plain one.
    struct DenoiseHooks {
        /// Channels appended to the (scaled) UNet input at every step, already doubled for CFG.
        var extraChannels: Tensor?
        /// Applied to the latents after step `index`.
        var afterStep: ((_ index: Int, _ latents: Tensor) throws -> Tensor)?
    }

    static func denoise(unet: UNet2DConditionModel, scheduler: inout any Scheduler, latents start: Tensor,
                        positive: Tensor, negative: Tensor, options o: SamplingOptions,
                        generator: inout TorchGenerator, hooks: DenoiseHooks = DenoiseHooks(),
                        onStep: StepCallback) throws -> Tensor {
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
            var modelInput = cfg ? try concatBatch([input, input]) : input
            if let extra = hooks.extraChannels { modelInput = try Ops.concat([modelInput, extra], axis: 1) }
            let out = try unet(sample: modelInput, timesteps: [t], encoderHiddenStates: context)
            let eps = cfg ? try guidance(out, scale: o.guidanceScale) : out
            latents = try scheduler.step(modelOutput: eps, index: i, sample: latents, generator: &generator)
            if let after = hooks.afterStep { latents = try after(i, latents) }
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
