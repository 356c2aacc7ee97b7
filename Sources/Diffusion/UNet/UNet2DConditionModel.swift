import Foundation
import Tensor

/// diffusers `UNet2DConditionModel`, built from its config.json and weights under diffusers names
/// (a diffusers folder, or a single-file LDM checkpoint through `LDMCheckpoint`). Weights stay in
/// their stored dtype (memory-mapped); F16/BF16 weights are converted layer by layer into one
/// reusable Float32 buffer during each call (see `workspace.conversionSeconds`).
/// Calls on one model are serialised (they share that workspace).
public final class UNet2DConditionModel: @unchecked Sendable {
    public let config: UNetConfig
    public let workspace = Workspace()
    private let lock = NSLock()

    let convIn: Conv2d
    let timeLinear1: Linear, timeLinear2: Linear
    let down: [DownBlock]
    let midResnets: [ResnetBlock2D]
    let midAttentions: [Transformer2D]
    let up: [UpBlock]
    let normOut: GroupNorm
    let convOut: Conv2d
    /// Every attention call site, in call order.
    public let attentionSites: [AttentionSite]

    struct DownBlock: Sendable {
        let resnets: [ResnetBlock2D]
        let attentions: [Transformer2D]?
        let downsample: Downsample2D?
    }

    struct UpBlock: Sendable {
        let resnets: [ResnetBlock2D]
        let attentions: [Transformer2D]?
        let upsample: Upsample2D?
    }

    /// Loads a UNet from a pipeline component (config + weights).
    public convenience init(files: ComponentFiles) throws {
        try self.init(config: ModelConfig(json: files.configJSON, origin: files.configOrigin), weights: files.weights)
    }

    public init(config c: ModelConfig, weights: any TensorSource) throws {
        let cfg = try UNetConfig(c)
        config = cfg
        let r = WeightReader(source: weights)
        let ch = cfg.blockOutChannels
        let n = ch.count
        let tembDim = ch[0] * 4
        let groups = cfg.normGroups, eps = cfg.normEps
        convIn = try Conv2d(r, "conv_in", in: cfg.inChannels, out: ch[0], kernel: 3, padding: .init(1))
        timeLinear1 = try Linear(r, "time_embedding.linear_1", in: ch[0], out: tembDim, bias: true)
        timeLinear2 = try Linear(r, "time_embedding.linear_2", in: tembDim, out: tembDim, bias: true)
        var site = 0
        var sites: [AttentionSite] = []
        func transformer(_ r: WeightReader, _ name: String, channels: Int, heads: Int, layers: Int, place: AttentionPlace) throws -> Transformer2D {
            let t = try Transformer2D(r, channels: channels, heads: heads, layers: layers, contextDim: cfg.crossAttentionDim,
                                      groups: groups, linearProjection: cfg.useLinearProjection, firstSite: site, name: name, place: place)
            for b in t.blocks { sites += [b.attn1.site, b.attn2.site] }
            site += t.siteCount
            return t
        }
        var blocks: [DownBlock] = []
        var outCh = ch[0]
        for i in 0..<n {
            let inCh = outCh
            outCh = ch[i]
            let br = r.child("down_blocks.\(i)")
            var resnets: [ResnetBlock2D] = []
            var attns: [Transformer2D] = []
            for j in 0..<cfg.layersPerBlock[i] {
                resnets.append(try ResnetBlock2D(br.child("resnets.\(j)"), in: j == 0 ? inCh : outCh, out: outCh,
                                                 tembChannels: tembDim, groups: groups, eps: eps))
                if cfg.downBlocks[i] == .crossAttention {
                    attns.append(try transformer(br.child("attentions.\(j)"), "down_blocks.\(i).attentions.\(j)", channels: outCh,
                                                 heads: cfg.heads[i], layers: cfg.transformerLayers[i], place: .down))
                }
            }
            let ds = i < n - 1 ? try Downsample2D(br.child("downsamplers.0"), channels: outCh, padding: cfg.downsamplePadding) : nil
            blocks.append(DownBlock(resnets: resnets, attentions: cfg.downBlocks[i] == .crossAttention ? attns : nil, downsample: ds))
        }
        down = blocks
        let mr = r.child("mid_block")
        midResnets = try (0..<2).map {
            try ResnetBlock2D(mr.child("resnets.\($0)"), in: ch[n - 1], out: ch[n - 1], tembChannels: tembDim, groups: groups, eps: eps)
        }
        midAttentions = [try transformer(mr.child("attentions.0"), "mid_block.attentions.0", channels: ch[n - 1], heads: cfg.heads[n - 1],
                                         layers: cfg.transformerLayers[n - 1], place: .mid)]
        let rch = Array(ch.reversed()), rheads = Array(cfg.heads.reversed())
        let rlayers = Array(cfg.layersPerBlock.reversed()), rtl = Array(cfg.transformerLayers.reversed())
        var ups: [UpBlock] = []
        outCh = rch[0]
        for i in 0..<n {
            let prevOut = outCh
            outCh = rch[i]
            let inCh = rch[min(i + 1, n - 1)]
            let br = r.child("up_blocks.\(i)")
            let count = rlayers[i] + 1
            var resnets: [ResnetBlock2D] = []
            var attns: [Transformer2D] = []
            for j in 0..<count {
                let skip = j == count - 1 ? inCh : outCh
                let resIn = j == 0 ? prevOut : outCh
                resnets.append(try ResnetBlock2D(br.child("resnets.\(j)"), in: resIn + skip, out: outCh,
                                                 tembChannels: tembDim, groups: groups, eps: eps))
                if cfg.upBlocks[i] == .crossAttention {
                    attns.append(try transformer(br.child("attentions.\(j)"), "up_blocks.\(i).attentions.\(j)", channels: outCh,
                                                 heads: rheads[i], layers: rtl[i], place: .up))
                }
            }
            let us = i < n - 1 ? try Upsample2D(br.child("upsamplers.0"), channels: outCh) : nil
            ups.append(UpBlock(resnets: resnets, attentions: cfg.upBlocks[i] == .crossAttention ? attns : nil, upsample: us))
        }
        up = ups
        normOut = try GroupNorm(r, "conv_norm_out", channels: ch[0], groups: groups, eps: eps)
        convOut = try Conv2d(r, "conv_out", in: ch[0], out: cfg.outChannels, kernel: 3, padding: .init(1))
        attentionSites = sites
    }

    /// Channels of the skip connections `down_block_res_samples` in order (what ControlNet's
    /// down residuals must match), and the mid-block channels. Spatial size of skip k is the latent
    /// size divided by 2^(number of downsamplers before it).
    public var skipChannels: [Int] {
        var out = [config.blockOutChannels[0]]
        for (i, b) in down.enumerated() {
            out += Array(repeating: config.blockOutChannels[i], count: b.resnets.count)
            if b.downsample != nil { out.append(config.blockOutChannels[i]) }
        }
        return out
    }

    /// Sinusoidal timestep embedding [B, C0] (diffusers `get_timestep_embedding`, float32).
    static func timestepEmbedding(_ t: [Float], dim: Int, flipSinToCos: Bool, freqShift: Int) throws -> Tensor {
        let half = dim / 2
        let denom = Float(half - freqShift)
        let logMax = Float(-log(10000.0))
        var freq = [Float](repeating: 0, count: half)
        for i in 0..<half { freq[i] = expf(logMax * Float(i) / denom) }
        return try Tensor(shape: [t.count, dim]) { o in
            for (b, tb) in t.enumerated() {
                let row = o.baseAddress! + b * dim
                for i in 0..<half {
                    let a = tb * freq[i]
                    let (s, c) = (sinf(a), cosf(a))
                    if flipSinToCos { row[i] = c; row[half + i] = s } else { row[i] = s; row[half + i] = c }
                }
            }
        }
    }

    /// One denoising call.
    /// - sample: [B, in_channels, H, W] latents.
    /// - timesteps: one value for the whole batch or one per batch element (may be fractional).
    /// - encoderHiddenStates: [B, S, cross_attention_dim] text embeddings.
    /// - downResiduals / midResidual: ControlNet outputs, added to the skip connections (shapes as in
    ///   `skipChannels`) and to the mid-block output, as diffusers does; give both or neither.
    /// - attentionHook: sees (and may replace) attention probabilities of the layers it asks for.
    /// Returns [B, out_channels, H, W].
    public func callAsFunction(sample: Tensor, timesteps: [Float], encoderHiddenStates context: Tensor,
                               downResiduals: [Tensor]? = nil, midResidual: Tensor? = nil,
                               attentionHook: (any AttentionHook)? = nil) throws -> Tensor {
        lock.lock()
        // Scratch (converted weights, im2col/Winograd buffers: a few hundred MB at 64² latents) is freed after
        // each call, so a pipeline holds the UNet's or the VAE's scratch, never both.
        defer { workspace.releaseScratch(); lock.unlock() }
        let cfg = config
        guard sample.rank == 4, sample.shape[1] == cfg.inChannels, sample.shape[0] >= 1 else {
            throw shapeError("UNet sample", sample.shape, expected: "[B, \(cfg.inChannels), H, W]")
        }
        let b = sample.shape[0]
        guard context.rank == 3, context.shape[0] == b, context.shape[2] == cfg.crossAttentionDim, context.shape[1] >= 1 else {
            throw shapeError("UNet encoder hidden states", context.shape, expected: "[\(b), S, \(cfg.crossAttentionDim)]")
        }
        guard timesteps.count == 1 || timesteps.count == b else {
            throw DiffusionError("UNet: \(timesteps.count) timesteps for a batch of \(b); give one or one per batch element")
        }
        guard (downResiduals == nil) == (midResidual == nil) else {
            throw DiffusionError("UNet: ControlNet residuals need both the down residuals and the mid residual")
        }
        let ws = workspace
        var x = sample
        if cfg.centerInputSample { x = try Tensor(shape: x.shape, scalars: x.scalars.map { 2 * $0 - 1 }) }
        let temb = try timeLinear2(Ops.silu(try timeLinear1(try Self.timestepEmbedding(timesteps.count == b ? timesteps : Array(repeating: timesteps[0], count: b), dim: cfg.blockOutChannels[0], flipSinToCos: cfg.flipSinToCos, freqShift: cfg.freqShift), ws)), ws)
        let tembAct = Ops.silu(temb)

        let upFactor = 1 << (cfg.blockOutChannels.count - 1)
        let forwardUpsampleSize = sample.shape[2] % upFactor != 0 || sample.shape[3] % upFactor != 0

        x = try convIn(x, ws)
        var skips = [x]
        for blk in down {
            for (j, res) in blk.resnets.enumerated() {
                x = try res(x, tembAct: tembAct, ws)
                if let a = blk.attentions { x = try a[j](x, context: context, ws, hook: attentionHook) }
                skips.append(x)
            }
            if let ds = blk.downsample {
                x = try ds(x, ws)
                skips.append(x)
            }
        }
        if let downResiduals {
            guard downResiduals.count == skips.count else {
                throw DiffusionError("UNet: \(downResiduals.count) ControlNet down residuals given, the UNet has \(skips.count) skip connections")
            }
            for k in skips.indices { skips[k] = try Elementwise.add(skips[k], downResiduals[k], what: "ControlNet down residual \(k)") }
        }
        x = try midResnets[0](x, tembAct: tembAct, ws)
        for (a, r) in zip(midAttentions, midResnets.dropFirst()) {
            x = try a(x, context: context, ws, hook: attentionHook)
            x = try r(x, tembAct: tembAct, ws)
        }
        if let midResidual { x = try Elementwise.add(x, midResidual, what: "ControlNet mid residual") }

        for blk in up {
            let taken = Array(skips.suffix(blk.resnets.count))
            skips.removeLast(blk.resnets.count)
            for (j, res) in blk.resnets.enumerated() {
                let cat = try ws.measure("concat") { try Ops.concat([x, taken[taken.count - 1 - j]], axis: 1) }
                x = try res(cat, tembAct: tembAct, ws)
                if let a = blk.attentions { x = try a[j](x, context: context, ws, hook: attentionHook) }
            }
            if let us = blk.upsample {
                let size = forwardUpsampleSize ? skips.last.map { ($0.shape[2], $0.shape[3]) } : nil
                x = try us(x, size: size, ws)
            }
        }
        return try convOut(try normOut(x, silu: true), ws)
    }
}
