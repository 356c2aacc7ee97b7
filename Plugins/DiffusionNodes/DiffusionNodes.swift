import Diffusion
import Foundation
import NodeKit
import Tensor

/// Stable Diffusion 1.x nodes: thin adapters from NodeKit to the Diffusion library.
public enum DiffusionNodes {
    public static let pack = PackInfo(id: "sd", version: "0.1.0")

    public static let nodeTypes: [any NodeType.Type] = [
        Checkpoint.self, EncodePrompt.self, TextToImage.self, ImageToImage.self, Inpaint.self, VAEEncode.self, VAEDecode.self,
    ]

    public static func register(into registry: NodeRegistry) throws {
        try registry.register(pack: pack, nodeTypes)
    }

    /// Where single-file checkpoints get their CLIP tokenizer: the copy bundled with llmga.
    public static var bundledTokenizer: URL? { BundledCLIPVocabulary.folder }
}

// MARK: Handles carried between nodes

/// The text side of a loaded pipeline: tokenizer and text encoder.
public final class CLIPHandle: PortObject {
    public static let portTypeName = "sd.clip"
    public let models: StableDiffusionModels
    init(_ m: StableDiffusionModels) { models = m }
    public var estimatedBytes: Int { 0 }   // owned by the model pool
}

/// The denoiser and the scheduler configuration it was trained with.
public final class UNetHandle: PortObject {
    public static let portTypeName = "sd.unet"
    public let models: StableDiffusionModels
    init(_ m: StableDiffusionModels) { models = m }
    public var estimatedBytes: Int { 0 }
}

public final class VAEHandle: PortObject {
    public static let portTypeName = "sd.vae"
    public let models: StableDiffusionModels
    init(_ m: StableDiffusionModels) { models = m }
    public var estimatedBytes: Int { 0 }
}

/// A pipeline as held by the model pool: what its estimated size is.
final class PooledModels: PortObject {
    static let portTypeName = "sd.models"
    let models: StableDiffusionModels
    let estimatedBytes: Int
    init(_ m: StableDiffusionModels, bytes: Int) {
        models = m
        estimatedBytes = bytes
    }
}

/// Positive and negative prompt embeddings, encoded together so their lengths match.
public final class Conditioning: PortObject {
    public static let portTypeName = "sd.conditioning"
    public let positive: Tensor
    public let negative: Tensor
    init(positive: Tensor, negative: Tensor) {
        self.positive = positive
        self.negative = negative
    }
    public var estimatedBytes: Int { (positive.count + negative.count) * 4 }
}

/// Scaled latents [B, 4, h, w].
public final class Latent: PortObject {
    public static let portTypeName = "sd.latent"
    public let tensor: Tensor
    init(_ t: Tensor) { tensor = t }
    public var estimatedBytes: Int { tensor.count * 4 }
}

// MARK: Conversions between rasters and tensors

enum Convert {
    /// RGB raster → [1, 3, H, W] in [-1, 1].
    static func tensor(_ r: Raster, port: String) throws -> Tensor {
        guard r.channels == 3 || r.channels == 4 || r.channels == 1 else { throw NodeError("needs an RGB image", port: port) }
        let w = r.width, h = r.height, c = r.channels
        return try Tensor(shape: [1, 3, h, w]) { dst in
            r.pixels.withUnsafeBufferPointer { src in
                for y in 0..<h {
                    for x in 0..<w {
                        let p = (y * w + x) * c
                        for ch in 0..<3 {
                            let v = src[p + (c == 1 ? 0 : ch)]
                            dst[(ch * h + y) * w + x] = v * 2 - 1
                        }
                    }
                }
            }
        }
    }

    /// [B, 3, H, W] in [0, 1] → B RGB rasters.
    static func rasters(_ t: Tensor) -> [Raster] {
        let b = t.shape[0], h = t.shape[2], w = t.shape[3]
        return t.withUnsafeBufferPointer { src in
            (0..<b).map { i in
                var px = [Float](repeating: 0, count: h * w * 3)
                let base = i * 3 * h * w
                for y in 0..<h {
                    for x in 0..<w {
                        for ch in 0..<3 { px[(y * w + x) * 3 + ch] = src[base + (ch * h + y) * w + x] }
                    }
                }
                return Raster(width: w, height: h, channels: 3, pixels: px, depth: .uint8)
            }
        }
    }
}

/// Reports steps and checks for cancellation between them.
func onSteps(_ context: any NodeContext) -> StepCallback {
    { done, total in
        try context.checkCancellation()
        context.progress(done, of: total, message: "step \(done)/\(total)")
    }
}

// MARK: Nodes

struct Checkpoint: NodeType {
    static let id = "sd.checkpoint"
    static let version = 1
    static let purity = Purity.readsFiles
    static let schema = NodeSchema(
        summary: "Load a Stable Diffusion 1.x pipeline: a diffusers folder or a single-file .safetensors checkpoint (f32/f16/bf16).",
        inputs: [InputSpec("path", .text, doc: "The diffusers folder (model_index.json, unet/, vae/, ...) or the .safetensors file.", role: .inputFile)],
        outputs: [
            OutputSpec("clip", .object(CLIPHandle.portTypeName), doc: "Tokenizer and text encoder."),
            OutputSpec("unet", .object(UNetHandle.portTypeName), doc: "The denoiser, with the scheduler config it was trained with."),
            OutputSpec("vae", .object(VAEHandle.portTypeName), doc: "The image autoencoder."),
            OutputSpec("inpainting", .bool, doc: "Whether the UNet is a 9-channel inpainting model."),
        ],
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let url = context.resolvePath(try inputs.text("path")).standardizedFileURL
        let path = url.path
        let pooled: PooledModels = try await context.models.model(key: "sd.checkpoint:\(path)") {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw NodeError("no such file or folder: \(path)", port: "path")
            }
            do {
                let files: PipelineFiles
                if isDir.boolValue {
                    files = try PipelineFiles.open(folder: path)
                } else {
                    guard let tok = DiffusionNodes.bundledTokenizer else {
                        throw NodeError("the bundled CLIP vocabulary is missing from this installation", port: "path")
                    }
                    files = try PipelineFiles.open(singleFile: path, tokenizerFolder: tok)
                }
                let bytes = [files.unet, files.vae, files.textEncoder].reduce(0) { sum, c in
                    sum + c.weights.keys.reduce(0) { $0 + ((try? c.weights.stored($1).bytes.count) ?? 0) }
                }
                return PooledModels(try StableDiffusionModels(files: files), bytes: bytes)
            } catch let e as NodeError {
                throw e
            } catch {
                throw NodeError("\(error)", port: "path")
            }
        }
        let m = pooled.models
        return Outputs([
            "clip": .object(CLIPHandle(m)), "unet": .object(UNetHandle(m)), "vae": .object(VAEHandle(m)),
            "inpainting": .bool(m.files.kind == .sd15Inpainting),
        ])
    }
}

struct EncodePrompt: NodeType {
    static let id = "sd.encode-prompt"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Encode a prompt and a negative prompt with CLIP. Prompts longer than 75 tokens are encoded in 75-token windows and concatenated, as LLMGA does.",
        inputs: [
            InputSpec("clip", .object(CLIPHandle.portTypeName), doc: "From sd.checkpoint."),
            InputSpec("text", .text, doc: "The prompt."),
            InputSpec("negative", .text, doc: "What to steer away from.", default: .text("")),
            InputSpec("max-chunks", .int, doc: "At most this many 75-token windows (LLMGA: 3 for text-to-image, 4 for inpainting); 1 truncates at 77 tokens like plain diffusers.",
                      default: .int(3), range: 1...8),
            InputSpec("clip-skip", .int, doc: "Use the output of an earlier CLIP layer (diffusers clip_skip; A1111's value minus one).", default: .int(0), range: 0...11),
            InputSpec("weighting", .text, doc: "'parentheses' reads A1111 emphasis like (word:1.3), (word), [word]; 'none' takes the text literally.",
                      default: .text("none"), choices: ["none", "parentheses"]),
        ],
        outputs: [OutputSpec("conditioning", .object(Conditioning.portTypeName), doc: "Positive and negative embeddings of equal length.")],
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let clip = try inputs.object("clip", as: CLIPHandle.self)
        let weighting: CLIPPromptEncoder.Weighting = try inputs.text("weighting") == "parentheses" ? .parentheses : .none
        return try await libraryCall(port: "text") {
            let (cond, uncond) = try clip.models.promptEncoder.encode(
                prompt: try inputs.text("text"), negative: try inputs.text("negative"),
                maxChunks: try inputs.int("max-chunks"), clipSkip: try inputs.int("clip-skip"), weighting: weighting)
            return Outputs(["conditioning": .object(Conditioning(positive: cond, negative: uncond))])
        }
    }
}

/// Inputs shared by the sampling nodes.
enum SamplingInputs {
    static let specs: [InputSpec] = [
        InputSpec("seed", .int, doc: "Noise seed: the same seed gives diffusers' image (torch.Generator().manual_seed).", default: .int(0), range: 0...Double(UInt32.max)),
        InputSpec("steps", .int, doc: "Denoising steps.", default: .int(30), range: 1...1000),
        InputSpec("cfg", .float, doc: "Classifier-free guidance scale (1 disables guidance).", default: .float(7.5), range: 0...50),
        InputSpec("sampler", .text, doc: "Scheduler: 'default' (the model's own, PNDM for SD1.5) or one of \(SchedulerFactory.shortNames.joined(separator: ", ")).",
                  default: .text("default"), choices: ["default"] + SchedulerFactory.shortNames),
        InputSpec("batch", .int, doc: "Images per run (one noise draw for the whole batch, as diffusers).", default: .int(1), range: 1...64),
    ]

    static func options(_ inputs: Inputs) throws -> SamplingOptions {
        var o = SamplingOptions()
        o.seed = UInt64(try inputs.int("seed"))
        o.steps = try inputs.int("steps")
        o.guidanceScale = Float(try inputs.float("cfg"))
        let s = try inputs.text("sampler")
        o.sampler = s == "default" ? nil : s
        o.batch = try inputs.int("batch")
        return o
    }
}

func imagesOutputs(_ images: Tensor, latents: Tensor) -> Outputs {
    let rasters = Convert.rasters(images)
    return Outputs([
        "image": .image(rasters[0]),
        "images": .list(elementType: .image, rasters.map { .image($0) }),
        "latent": .object(Latent(latents)),
    ])
}

let imageOutputs: [OutputSpec] = [
    OutputSpec("image", .image, doc: "The first image."),
    OutputSpec("images", .list(.image), doc: "All images of the batch."),
    OutputSpec("latent", .object(Latent.portTypeName), doc: "The final latents (for sd.vae-decode or further sampling)."),
]

/// The models every sampling node takes, with their shared checks and the decode at the end.
struct SamplerModels {
    static func specs(unetDoc: String = "From sd.checkpoint.", conditioningDoc: String = "From sd.encode-prompt.") -> [InputSpec] {
        [InputSpec("unet", .object(UNetHandle.portTypeName), doc: unetDoc),
         InputSpec("vae", .object(VAEHandle.portTypeName), doc: "From sd.checkpoint."),
         InputSpec("conditioning", .object(Conditioning.portTypeName), doc: conditioningDoc)]
    }

    let unet: StableDiffusionModels
    let vae: StableDiffusionModels
    let cond: Conditioning

    init(_ inputs: Inputs) throws {
        unet = try inputs.object("unet", as: UNetHandle.self).models
        vae = try inputs.object("vae", as: VAEHandle.self).models
        cond = try inputs.object("conditioning", as: Conditioning.self)
    }

    /// The VAE's downscale factor: image sizes must be multiples of it.
    var factor: Int { StableDiffusionSampler.latentFactor(vae.vae) }

    /// An image input whose size the VAE can take.
    func image(_ inputs: Inputs, _ port: String) throws -> Raster {
        let image = try inputs.image(port)
        guard image.width % factor == 0, image.height % factor == 0 else {
            throw NodeError("is \(image.width)x\(image.height); width and height must be multiples of \(factor) (use image.resize)", port: port)
        }
        return image
    }

    func refuseInpaintingUNet() throws {
        guard unet.files.kind != .sd15Inpainting else {
            throw NodeError("this is a 9-channel inpainting UNet; use it with sd.inpaint", port: "unet")
        }
    }

    /// Runs the sampler, then decodes its latents into the node's outputs.
    func run(_ context: any NodeContext, _ sample: (_ onStep: @escaping StepCallback) throws -> Tensor) async throws -> Outputs {
        try await libraryCall {
            let latents = try sample(onSteps(context))
            try context.checkCancellation()
            return imagesOutputs(try StableDiffusionSampler.decode(vae: vae.vae, latents: latents), latents: latents)
        }
    }
}

struct TextToImage: NodeType {
    static let id = "sd.text-to-image"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Generate images from a prompt with Stable Diffusion 1.x (classifier-free guidance).",
        inputs: SamplerModels.specs() + [
            InputSpec("width", .int, doc: "Image width, a multiple of 8.", default: .int(512), range: 8...4096),
            InputSpec("height", .int, doc: "Image height, a multiple of 8.", default: .int(512), range: 8...4096),
        ] + SamplingInputs.specs,
        outputs: imageOutputs,
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let m = try SamplerModels(inputs)
        var o = try SamplingInputs.options(inputs)
        o.width = try inputs.int("width")
        o.height = try inputs.int("height")
        guard o.width % m.factor == 0 else { throw NodeError("must be a multiple of \(m.factor), got \(o.width)", port: "width") }
        guard o.height % m.factor == 0 else { throw NodeError("must be a multiple of \(m.factor), got \(o.height)", port: "height") }
        try m.refuseInpaintingUNet()
        return try await m.run(context) { onStep in
            try StableDiffusionSampler.textToImage(unet: m.unet.unet, vae: m.vae.vae, schedulerConfig: m.unet.schedulerConfig,
                                                   positive: m.cond.positive, negative: m.cond.negative, options: o, onStep: onStep)
        }
    }
}

struct ImageToImage: NodeType {
    static let id = "sd.image-to-image"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Redraw an image guided by a prompt; strength sets how much of it changes.",
        inputs: SamplerModels.specs() + [
            InputSpec("image", .image, doc: "The starting image; its size must be a multiple of 8 (resize it first)."),
            InputSpec("strength", .float, doc: "0 keeps the image, 1 ignores it.", default: .float(0.75), range: 0.01...1),
        ] + SamplingInputs.specs,
        outputs: imageOutputs,
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let m = try SamplerModels(inputs)
        let image = try m.image(inputs, "image")
        try m.refuseInpaintingUNet()
        var o = try SamplingInputs.options(inputs)
        o.strength = try inputs.float("strength")
        return try await m.run(context) { onStep in
            try StableDiffusionSampler.imageToImage(
                unet: m.unet.unet, vae: m.vae.vae, schedulerConfig: m.unet.schedulerConfig, image: try Convert.tensor(image, port: "image"),
                positive: m.cond.positive, negative: m.cond.negative, options: o, onStep: onStep)
        }
    }
}

struct Inpaint: NodeType {
    static let id = "sd.inpaint"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Regenerate the masked part of an image from a prompt (inpainting; outpainting with image.pad-for-outpaint).",
        inputs: SamplerModels.specs(
            unetDoc: "From sd.checkpoint: a 9-channel inpainting UNet, or any SD UNet (then the kept area is re-imposed on the latents after every step, as diffusers does).",
            conditioningDoc: "From sd.encode-prompt; describe the whole picture, not only the hole.") + [
            InputSpec("image", .image, doc: "The picture; its size must be a multiple of 8 (resize it first)."),
            InputSpec("mask", .mask, doc: "Same size as the image: 1 (≥ 0.5) where to generate, 0 where to keep."),
            InputSpec("strength", .float, doc: "1 regenerates the masked area from pure noise; lower keeps more of what was there.",
                      default: .float(1.0), range: 0.01...1),
        ] + SamplingInputs.specs,
        outputs: imageOutputs,
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let m = try SamplerModels(inputs)
        let image = try m.image(inputs, "image")
        let mask = try inputs.mask("mask")
        guard mask.width == image.width, mask.height == image.height else {
            throw NodeError("is \(mask.width)x\(mask.height) but the image is \(image.width)x\(image.height)", port: "mask")
        }
        guard mask.channels == 1 else { throw NodeError("a mask must have 1 channel, got \(mask.channels)", port: "mask") }
        var o = try SamplingInputs.options(inputs)
        o.strength = try inputs.float("strength")
        let maskTensor = try Tensor(shape: [1, 1, mask.height, mask.width], scalars: mask.pixels)
        return try await m.run(context) { onStep in
            try StableDiffusionSampler.inpaint(
                unet: m.unet.unet, vae: m.vae.vae, schedulerConfig: m.unet.schedulerConfig, image: try Convert.tensor(image, port: "image"),
                mask: maskTensor, positive: m.cond.positive, negative: m.cond.negative, options: o, onStep: onStep)
        }
    }
}

struct VAEEncode: NodeType {
    static let id = "sd.vae-encode"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Encode an image to latents (the posterior mean, scaled).",
        inputs: [
            InputSpec("vae", .object(VAEHandle.portTypeName), doc: "From sd.checkpoint."),
            InputSpec("image", .image, doc: "Width and height must be multiples of 8."),
        ],
        outputs: [OutputSpec("latent", .object(Latent.portTypeName))],
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let vae = try inputs.object("vae", as: VAEHandle.self).models
        let image = try inputs.image("image")
        let f = StableDiffusionSampler.latentFactor(vae.vae)
        guard image.width % f == 0, image.height % f == 0 else {
            throw NodeError("is \(image.width)x\(image.height); width and height must be multiples of \(f)", port: "image")
        }
        let t = try Convert.tensor(image, port: "image")
        return Outputs(["latent": .object(Latent(try StableDiffusionSampler.encodeMean(vae: vae.vae, images: t)))])
    }
}

struct VAEDecode: NodeType {
    static let id = "sd.vae-decode"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Decode latents to images.",
        inputs: [
            InputSpec("vae", .object(VAEHandle.portTypeName), doc: "From sd.checkpoint."),
            InputSpec("latent", .object(Latent.portTypeName), doc: "Scaled latents."),
        ],
        outputs: [OutputSpec("image", .image), OutputSpec("images", .list(.image))],
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let vae = try inputs.object("vae", as: VAEHandle.self).models
        let latent = try inputs.object("latent", as: Latent.self)
        let rasters = Convert.rasters(try StableDiffusionSampler.decode(vae: vae.vae, latents: latent.tensor))
        return Outputs(["image": .image(rasters[0]), "images": .list(elementType: .image, rasters.map { .image($0) })])
    }
}
