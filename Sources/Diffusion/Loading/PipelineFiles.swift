import Foundation
import Tensor

/// One model component's files: its diffusers `config.json` (as JSON bytes) and its weights.
public struct ComponentFiles: Sendable {
    public let name: String
    /// Where the config came from (a file, or "built-in SD1.5 config" for single-file checkpoints).
    public let configOrigin: String
    public let configJSON: Data
    public let weights: any TensorSource

    /// The config as a JSON object.
    public func config() throws -> [String: Any] {
        guard let obj = try? JSONSerialization.jsonObject(with: configJSON) as? [String: Any] else {
            throw DiffusionError("is not a JSON object", file: configOrigin)
        }
        return obj
    }
}

/// The files of a Stable Diffusion pipeline, from a diffusers folder or a single-file checkpoint.
public struct PipelineFiles: Sendable {
    public let path: String
    public let kind: CheckpointKind
    public let unet: ComponentFiles
    public let vae: ComponentFiles
    public let textEncoder: ComponentFiles
    /// The CLIP tokenizer folder: `vocab.json` + `merges.txt`, or only `tokenizer.json` (what transformers 5
    /// saves), with optional `tokenizer_config.json` / `special_tokens_map.json`.
    public let tokenizerFolder: URL
    public let schedulerConfigJSON: Data
    public let schedulerConfigOrigin: String

    /// Opens a diffusers folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/`, `tokenizer/`,
    /// `scheduler/`). Single-file checkpoints are opened with `open(singleFile:tokenizer:)`.
    public static func open(folder path: String) throws -> PipelineFiles {
        let root = URL(fileURLWithPath: path)
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw DiffusionError("no such file or folder", file: path) }
        guard isDir.boolValue else { throw DiffusionError("is a file, not a diffusers folder", file: path) }
        let index = root.appendingPathComponent("model_index.json")
        if fm.fileExists(atPath: index.path) {
            guard let data = fm.contents(atPath: index.path),
                  let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw DiffusionError("is not valid JSON", file: index.path)
            }
            for c in ["unet", "vae", "text_encoder", "tokenizer", "scheduler"] where obj[c] == nil {
                throw DiffusionError("names no '\(c)' component; is this a Stable Diffusion pipeline?", file: index.path)
            }
        }
        let unet = try component(root, "unet", weightStem: "diffusion_pytorch_model")
        let vae = try component(root, "vae", weightStem: "diffusion_pytorch_model")
        let text = try component(root, "text_encoder", weightStem: "model")
        let tok = root.appendingPathComponent("tokenizer")
        let vocab = tok.appendingPathComponent("vocab.json"), merges = tok.appendingPathComponent("merges.txt")
        if !fm.fileExists(atPath: tok.appendingPathComponent("tokenizer.json").path) {
            for f in [vocab, merges] where !fm.fileExists(atPath: f.path) {
                throw DiffusionError("missing: the CLIP tokenizer needs tokenizer/vocab.json and tokenizer/merges.txt, or tokenizer/tokenizer.json", file: f.path)
            }
        }
        let sched = root.appendingPathComponent("scheduler/scheduler_config.json")
        guard let schedData = fm.contents(atPath: sched.path) else { throw DiffusionError("missing", file: sched.path) }
        let convIn = try? unet.weights.stored("conv_in.weight")
        let kind: CheckpointKind = convIn?.shape.count == 4 && convIn?.shape[1] == 9 ? .sd15Inpainting : .sd15
        return PipelineFiles(path: path, kind: kind, unet: unet, vae: vae, textEncoder: text,
                             tokenizerFolder: tok,
                             schedulerConfigJSON: schedData, schedulerConfigOrigin: sched.path)
    }

    /// Opens a single-file LDM checkpoint with the built-in SD1.5 configs (adapted to what the
    /// tensors say: inpainting's 9 input channels) and the given CLIP tokenizer folder (the bundled one:
    /// `BundledCLIPVocabulary.folder`).
    public static func open(singleFile path: String, tokenizerFolder: URL) throws -> PipelineFiles {
        let source: any TensorSource
        do { source = try SafeTensorsCheckpoint(path: path) } catch { throw DiffusionError("\(error)") }
        let ckpt = try LDMCheckpoint(source: source)
        switch ckpt.kind {
        case .sd15, .sd15Inpainting: break
        case .sd2: throw DiffusionError("is a Stable Diffusion 2.x checkpoint; only the SD1.x family is supported", file: path)
        case .controlNet: throw DiffusionError("is a ControlNet, not a pipeline checkpoint; load it with a ControlNet loader", file: path)
        case .unknown: throw DiffusionError("is not a Stable Diffusion checkpoint (no model.diffusion_model.input_blocks.0.0.weight)", file: path)
        }
        var unetConfig = DefaultConfigs.sd15UNet
        if ckpt.kind == .sd15Inpainting { unetConfig["in_channels"] = 9 }
        func json(_ d: [String: Any]) -> Data { (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data() }
        let origin = "built-in SD1.5 config for \(path)"
        return PipelineFiles(
            path: path, kind: ckpt.kind,
            unet: ComponentFiles(name: "unet", configOrigin: origin, configJSON: json(unetConfig), weights: ckpt.unet),
            vae: ComponentFiles(name: "vae", configOrigin: origin, configJSON: json(DefaultConfigs.sd15VAE), weights: ckpt.vae),
            textEncoder: ComponentFiles(name: "text_encoder", configOrigin: origin, configJSON: json(DefaultConfigs.sd15TextEncoder), weights: ckpt.textEncoder),
            tokenizerFolder: tokenizerFolder,
            schedulerConfigJSON: json(DefaultConfigs.sd15Scheduler), schedulerConfigOrigin: origin)
    }

    /// A component folder: `config.json` plus weights as `<stem>.safetensors`, a `.fp16`/`.bf16`
    /// variant, or a sharded `<stem>.safetensors.index.json`.
    static func component(_ root: URL, _ name: String, weightStem: String) throws -> ComponentFiles {
        let dir = root.appendingPathComponent(name)
        let fm = FileManager.default
        let configURL = dir.appendingPathComponent("config.json")
        guard let config = fm.contents(atPath: configURL.path) else { throw DiffusionError("missing", file: configURL.path) }
        let candidates = ["\(weightStem).safetensors", "\(weightStem).safetensors.index.json",
                          "\(weightStem).fp16.safetensors", "\(weightStem).fp16.safetensors.index.json",
                          "\(weightStem).bf16.safetensors"]
        guard let file = candidates.map({ dir.appendingPathComponent($0) }).first(where: { fm.fileExists(atPath: $0.path) }) else {
            let bin = dir.appendingPathComponent("\(weightStem).bin")
            if fm.fileExists(atPath: bin.path) {
                throw DiffusionError("holds PyTorch pickle weights only; convert them to safetensors (pickles can run code, so llmga does not load them)", file: bin.path)
            }
            throw DiffusionError("has no weights: expected \(candidates[0]) (or an .fp16 variant or a sharded index)", file: dir.path)
        }
        do {
            return ComponentFiles(name: name, configOrigin: configURL.path, configJSON: config,
                                  weights: try SafeTensorsCheckpoint(path: file.path))
        } catch {
            throw DiffusionError("\(error)")
        }
    }
}

/// The SD1.5 component configs (diffusers' config.json values) used for single-file checkpoints.
enum DefaultConfigs {
    nonisolated(unsafe) static let sd15UNet: [String: Any] = [
        "_class_name": "UNet2DConditionModel", "in_channels": 4, "out_channels": 4, "sample_size": 64,
        "block_out_channels": [320, 640, 1280, 1280],
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "layers_per_block": 2, "attention_head_dim": 8, "cross_attention_dim": 768,
        "norm_num_groups": 32, "norm_eps": 1e-5, "act_fn": "silu", "downsample_padding": 1,
        "mid_block_scale_factor": 1, "flip_sin_to_cos": true, "freq_shift": 0, "use_linear_projection": false,
        "center_input_sample": false, "upcast_attention": false,
    ]
    nonisolated(unsafe) static let sd15VAE: [String: Any] = [
        "_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
        "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        "norm_num_groups": 32, "act_fn": "silu", "scaling_factor": 0.18215, "sample_size": 512,
    ]
    nonisolated(unsafe) static let sd15TextEncoder: [String: Any] = [
        "architectures": ["CLIPTextModel"], "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
        "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 77,
        "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    ]
    nonisolated(unsafe) static let sd15Scheduler: [String: Any] = [
        "_class_name": "PNDMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "steps_offset": 1, "set_alpha_to_one": false, "skip_prk_steps": true,
        "clip_sample": false, "prediction_type": "epsilon", "timestep_spacing": "leading", "trained_betas": NSNull(),
    ]
}
