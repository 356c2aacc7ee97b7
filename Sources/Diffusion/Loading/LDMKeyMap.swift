/// Maps the tensor names of a single-file LDM checkpoint (the original Stable Diffusion layout:
/// `model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.*`) to the
/// diffusers names the model code uses, as diffusers' `convert_ldm_unet_checkpoint` /
/// `convert_ldm_vae_checkpoint` do. The mapping is computed from the key list itself (layers per
/// block and the number of VAE levels are read from the keys), so small test checkpoints with the
/// same layout map the same way as SD1.5.
public enum LDMKeyMap {
    public enum Component: String, Sendable, CaseIterable {
        case unet, vae, textEncoder = "text_encoder"
    }

    /// One mapped tensor: where it goes, and a shape to view it as (the VAE's 1×1-conv attention
    /// projections become linear weights).
    public struct Target: Sendable, Equatable {
        public var component: Component
        public var key: String
        public var squeezeTo2D: Bool
    }

    static let unetPrefix = "model.diffusion_model."
    static let vaePrefixes = ["first_stage_model.", "vae."]
    static let textPrefix = "cond_stage_model.transformer."

    /// DDPM buffers and other keys of an LDM file that hold no weights the pipeline uses.
    static let ignoredTopLevel: Set<String> = [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "logvar",
    ]

    /// Builds the mapping for every key of a checkpoint. Keys that carry nothing the pipeline uses
    /// (DDPM buffers, EMA copies, position ids) are left out.
    public static func build(keys: [String]) -> [String: Target] {
        let layersPerBlock = unetLayersPerBlock(keys)
        let vaeLevels = vaeDecoderLevels(keys)
        var out: [String: Target] = [:]
        for k in keys {
            if let t = map(k, layersPerBlock: layersPerBlock, vaeLevels: vaeLevels) { out[k] = t }
        }
        return out
    }

    /// LDM's `num_res_blocks`: resnets per down block, read from the input block indices.
    static func unetLayersPerBlock(_ keys: [String]) -> Int {
        // input_blocks.{L+1}.0.op is the first downsampler.
        for k in keys where k.hasPrefix(unetPrefix + "input_blocks.") && k.contains(".0.op.") {
            let parts = k.dropFirst((unetPrefix + "input_blocks.").count).split(separator: ".")
            if let n = Int(parts[0]) { return n - 1 }
        }
        return 2
    }

    /// Number of VAE decoder levels (`decoder.up.{i}`).
    static func vaeDecoderLevels(_ keys: [String]) -> Int {
        var top = -1
        for k in keys {
            for p in vaePrefixes where k.hasPrefix(p + "decoder.up.") {
                if let n = Int(k.dropFirst((p + "decoder.up.").count).split(separator: ".")[0]) { top = max(top, n) }
            }
        }
        return top + 1
    }

    static func map(_ key: String, layersPerBlock L: Int, vaeLevels: Int) -> Target? {
        if key.hasPrefix(unetPrefix) {
            return mapUNet(String(key.dropFirst(unetPrefix.count)), L).map { Target(component: .unet, key: $0, squeezeTo2D: false) }
        }
        for p in vaePrefixes where key.hasPrefix(p) {
            return mapVAE(String(key.dropFirst(p.count)), vaeLevels)
        }
        if key.hasPrefix(textPrefix) {
            var rest = String(key.dropFirst(textPrefix.count))
            if !rest.hasPrefix("text_model.") { rest = "text_model." + rest }
            if rest.hasSuffix("embeddings.position_ids") { return nil }
            return Target(component: .textEncoder, key: rest, squeezeTo2D: false)
        }
        return nil
    }

    // MARK: UNet

    static func mapUNet(_ k: String, _ L: Int) -> String? {
        let parts = k.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        func rest(_ from: Int) -> String { parts[from...].joined(separator: ".") }
        switch parts[0] {
        case "time_embed":
            guard parts.count >= 3 else { return nil }
            let layer = parts[1] == "0" ? "linear_1" : parts[1] == "2" ? "linear_2" : nil
            return layer.map { "time_embedding.\($0).\(rest(2))" }
        case "out":
            guard parts.count >= 3 else { return nil }
            let layer = parts[1] == "0" ? "conv_norm_out" : parts[1] == "2" ? "conv_out" : nil
            return layer.map { "\($0).\(rest(2))" }
        case "input_blocks":
            guard parts.count >= 4, let n = Int(parts[1]) else { return nil }
            if n == 0 { return "conv_in.\(rest(3))" }
            let i = (n - 1) / (L + 1), j = (n - 1) % (L + 1)
            if j == L {
                // input_blocks.N.0.op → down_blocks.i.downsamplers.0.conv
                guard parts[2] == "0", parts[3] == "op" else { return nil }
                return "down_blocks.\(i).downsamplers.0.conv.\(rest(4))"
            }
            if parts[2] == "0" { return "down_blocks.\(i).resnets.\(j).\(resnet(rest(3)))" }
            if parts[2] == "1" { return "down_blocks.\(i).attentions.\(j).\(rest(3))" }
            return nil
        case "middle_block":
            guard parts.count >= 3 else { return nil }
            switch parts[1] {
            case "0": return "mid_block.resnets.0.\(resnet(rest(2)))"
            case "1": return "mid_block.attentions.0.\(rest(2))"
            case "2": return "mid_block.resnets.1.\(resnet(rest(2)))"
            default: return nil
            }
        case "output_blocks":
            guard parts.count >= 4, let n = Int(parts[1]) else { return nil }
            let i = n / (L + 1), j = n % (L + 1)
            switch parts[2] {
            case "0": return "up_blocks.\(i).resnets.\(j).\(resnet(rest(3)))"
            case "1":
                // An up block without attention has its upsampler at index 1.
                if parts[3] == "conv" { return "up_blocks.\(i).upsamplers.0.\(rest(3))" }
                return "up_blocks.\(i).attentions.\(j).\(rest(3))"
            case "2":
                guard parts[3] == "conv" else { return nil }
                return "up_blocks.\(i).upsamplers.0.\(rest(3))"
            default: return nil
            }
        default:
            return nil
        }
    }

    /// ResBlock internals, LDM → diffusers.
    static func resnet(_ k: String) -> String {
        let table: [(String, String)] = [
            ("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
            ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."), ("skip_connection.", "conv_shortcut."),
        ]
        for (from, to) in table where k.hasPrefix(from) { return to + k.dropFirst(from.count) }
        return k
    }

    // MARK: VAE

    static func mapVAE(_ k: String, _ levels: Int) -> Target? {
        func t(_ key: String, squeeze: Bool = false) -> Target { Target(component: .vae, key: key, squeezeTo2D: squeeze) }
        let parts = k.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        func rest(_ from: Int) -> String { parts[from...].joined(separator: ".") }
        guard parts.count >= 2 else { return nil }
        if parts[0] == "quant_conv" || parts[0] == "post_quant_conv" { return t(k) }
        guard parts[0] == "encoder" || parts[0] == "decoder" else { return nil }
        let side = parts[0]
        switch parts[1] {
        case "conv_in", "conv_out": return t(k)
        case "norm_out": return t("\(side).conv_norm_out.\(rest(2))")
        case "down", "up":
            guard parts.count >= 5, let level = Int(parts[2]) else { return nil }
            let blocks = side == "encoder" ? "down_blocks" : "up_blocks"
            let i = side == "encoder" ? level : levels - 1 - level   // the decoder is stored reversed
            switch parts[3] {
            case "block": return t("\(side).\(blocks).\(i).resnets.\(parts[4]).\(vaeResnet(rest(5)))")
            case "downsample": return t("\(side).\(blocks).\(i).downsamplers.0.\(rest(4))")
            case "upsample": return t("\(side).\(blocks).\(i).upsamplers.0.\(rest(4))")
            default: return nil
            }
        case "mid":
            guard parts.count >= 4 else { return nil }
            switch parts[2] {
            case "block_1": return t("\(side).mid_block.resnets.0.\(vaeResnet(rest(3)))")
            case "block_2": return t("\(side).mid_block.resnets.1.\(vaeResnet(rest(3)))")
            case "attn_1":
                let names = ["norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"]
                guard let name = names[parts[3]] else { return nil }
                return t("\(side).mid_block.attentions.0.\(name).\(rest(4))", squeeze: parts[3] != "norm" && parts.last == "weight")
            default: return nil
            }
        default:
            return nil
        }
    }

    static func vaeResnet(_ k: String) -> String {
        k.hasPrefix("nin_shortcut.") ? "conv_shortcut." + k.dropFirst("nin_shortcut.".count) : k
    }
}
