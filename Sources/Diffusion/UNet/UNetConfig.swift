import Foundation

/// The parts of a diffusers `UNet2DConditionModel` config.json this implementation runs: the SD1.x
/// family (text-to-image, 9-channel inpainting) and smaller test models of the same shape.
/// Options it does not implement are refused with the field named.
public struct UNetConfig: Sendable, Equatable {
    public enum DownBlock: String, Sendable { case crossAttention = "CrossAttnDownBlock2D", plain = "DownBlock2D" }
    public enum UpBlock: String, Sendable { case crossAttention = "CrossAttnUpBlock2D", plain = "UpBlock2D" }

    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var downBlocks: [DownBlock]
    public var upBlocks: [UpBlock]
    public var layersPerBlock: [Int]
    /// Attention heads per down block (diffusers' `attention_head_dim` misnomer, or `num_attention_heads`).
    public var heads: [Int]
    public var transformerLayers: [Int]
    public var crossAttentionDim: Int
    public var useLinearProjection: Bool
    public var normGroups: Int
    public var normEps: Float
    public var flipSinToCos: Bool
    public var freqShift: Int
    public var downsamplePadding: Int
    public var centerInputSample: Bool
    public var sampleSize: Int?

    public init(_ c: ModelConfig) throws {
        inChannels = try c.int("in_channels", default: 4)
        outChannels = try c.int("out_channels", default: 4)
        blockOutChannels = try c.ints("block_out_channels", default: [320, 640, 1280, 1280])
        let n = blockOutChannels.count
        guard n >= 1 else { throw c.fail("block_out_channels", "is empty") }
        downBlocks = try c.strings("down_block_types", default: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]).map {
            guard let b = DownBlock(rawValue: $0) else { throw c.fail("down_block_types", "contains \($0); supported: CrossAttnDownBlock2D, DownBlock2D") }
            return b
        }
        upBlocks = try c.strings("up_block_types", default: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]).map {
            guard let b = UpBlock(rawValue: $0) else { throw c.fail("up_block_types", "contains \($0); supported: CrossAttnUpBlock2D, UpBlock2D") }
            return b
        }
        guard downBlocks.count == n else { throw c.fail("down_block_types", "has \(downBlocks.count) entries, block_out_channels has \(n)") }
        guard upBlocks.count == n else { throw c.fail("up_block_types", "has \(upBlocks.count) entries, block_out_channels has \(n)") }
        try c.require("mid_block_type", isOneOf: ["UNetMidBlock2DCrossAttn"])
        layersPerBlock = try c.perBlock("layers_per_block", count: n, default: 2)
        if !c.isNull("num_attention_heads") {
            heads = try c.perBlock("num_attention_heads", count: n)
        } else {
            heads = try c.perBlock("attention_head_dim", count: n, default: 8)
        }
        transformerLayers = try c.perBlock("transformer_layers_per_block", count: n, default: 1)
        crossAttentionDim = try c.int("cross_attention_dim", default: 1280)
        useLinearProjection = try c.bool("use_linear_projection", default: false)
        normGroups = try c.int("norm_num_groups", default: 32)
        normEps = Float(try c.double("norm_eps", default: 1e-5))
        flipSinToCos = try c.bool("flip_sin_to_cos", default: true)
        freqShift = try c.int("freq_shift", default: 0)
        downsamplePadding = try c.int("downsample_padding", default: 1)
        centerInputSample = try c.bool("center_input_sample", default: false)
        sampleSize = c.isNull("sample_size") ? nil : try c.int("sample_size")
        try c.require("act_fn", isOneOf: ["silu"])
        try c.require("time_embedding_type", isOneOf: ["positional"])
        try c.require("resnet_time_scale_shift", isOneOf: ["default"])
        for k in ["class_embed_type", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type", "time_embedding_dim",
                  "timestep_post_act", "time_cond_proj_dim", "num_class_embeds", "projection_class_embeddings_input_dim",
                  "reverse_transformer_layers_per_block"] {
            try c.requireNull(k)
        }
        try c.require("attention_type", isOneOf: ["default"])
        try c.requireFalse("only_cross_attention")
        try c.requireFalse("dual_cross_attention")
        try c.requireFalse("class_embeddings_concat")
        if try c.double("mid_block_scale_factor", default: 1) != 1 { throw c.fail("mid_block_scale_factor", "must be 1") }
        if try c.int("conv_in_kernel", default: 3) != 3 { throw c.fail("conv_in_kernel", "must be 3") }
        if try c.int("conv_out_kernel", default: 3) != 3 { throw c.fail("conv_out_kernel", "must be 3") }
        if !c.isNull("resnet_out_scale_factor"), try c.double("resnet_out_scale_factor") != 1 { throw c.fail("resnet_out_scale_factor", "must be 1") }
        if !c.isNull("cross_attention_dim"), ModelConfig.asInt(c.values["cross_attention_dim"]!) == nil {
            throw c.fail("cross_attention_dim", "must be one integer (per-block values are not supported)")
        }
        for (i, ch) in blockOutChannels.enumerated() {
            guard ch > 0, ch % normGroups == 0 else { throw c.fail("block_out_channels", "entry \(ch) is not a positive multiple of norm_num_groups \(normGroups)") }
            guard heads[i] > 0, ch % heads[i] == 0 else { throw c.fail("attention_head_dim", "\(heads[i]) heads do not divide \(ch) channels of block \(i)") }
        }
        guard blockOutChannels[0] % 2 == 0 else { throw c.fail("block_out_channels", "first entry must be even (sinusoidal time embedding)") }
        guard layersPerBlock.allSatisfy({ $0 >= 1 }), transformerLayers.allSatisfy({ $0 >= 1 }) else {
            throw c.fail("layers_per_block", "and transformer_layers_per_block must be at least 1")
        }
    }
}
