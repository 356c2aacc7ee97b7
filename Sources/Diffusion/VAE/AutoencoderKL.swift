import Foundation
import Tensor

/// The parts of a diffusers `AutoencoderKL` config.json this implementation runs.
public struct VAEConfig: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var latentChannels: Int
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var normGroups: Int
    /// `scaling_factor` (SD1.5: 0.18215). The model does NOT apply it: the pipeline multiplies
    /// encoded latents by it and divides latents by it before `decode`.
    public var scalingFactor: Float
    /// `shift_factor` (null for SD1.x); like the scaling factor, applied by the pipeline.
    public var shiftFactor: Float?
    public var useQuantConv: Bool
    public var usePostQuantConv: Bool
    public var midBlockAddAttention: Bool

    public init(_ c: ModelConfig) throws {
        inChannels = try c.int("in_channels", default: 3)
        outChannels = try c.int("out_channels", default: 3)
        latentChannels = try c.int("latent_channels", default: 4)
        blockOutChannels = try c.ints("block_out_channels", default: [64])
        layersPerBlock = try c.int("layers_per_block", default: 1)
        normGroups = try c.int("norm_num_groups", default: 32)
        scalingFactor = Float(try c.double("scaling_factor", default: 0.18215))
        shiftFactor = try c.optionalDouble("shift_factor").map(Float.init)
        useQuantConv = try c.bool("use_quant_conv", default: true)
        usePostQuantConv = try c.bool("use_post_quant_conv", default: true)
        midBlockAddAttention = try c.bool("mid_block_add_attention", default: true)
        let n = blockOutChannels.count
        guard n >= 1 else { throw c.fail("block_out_channels", "is empty") }
        let downs = try c.strings("down_block_types", default: Array(repeating: "DownEncoderBlock2D", count: n))
        let ups = try c.strings("up_block_types", default: Array(repeating: "UpDecoderBlock2D", count: n))
        guard downs.count == n, downs.allSatisfy({ $0 == "DownEncoderBlock2D" }) else {
            throw c.fail("down_block_types", "must be \(n) × DownEncoderBlock2D (one per block_out_channels entry), got \(downs)")
        }
        guard ups.count == n, ups.allSatisfy({ $0 == "UpDecoderBlock2D" }) else {
            throw c.fail("up_block_types", "must be \(n) × UpDecoderBlock2D (one per block_out_channels entry), got \(ups)")
        }
        try c.require("act_fn", isOneOf: ["silu"])
        for ch in blockOutChannels where ch <= 0 || ch % normGroups != 0 {
            throw c.fail("block_out_channels", "entry \(ch) is not a positive multiple of norm_num_groups \(normGroups)")
        }
        guard layersPerBlock >= 1 else { throw c.fail("layers_per_block", "must be at least 1") }
        for k in ["latents_mean", "latents_std"] { try c.requireNull(k) }
    }
}

/// The encoder's output distribution (diffusers `DiagonalGaussianDistribution`).
public struct DiagonalGaussian: Sendable {
    /// [B, 2·latent, h, w]: mean then log-variance (before clamping), as `quant_conv` returns them.
    public let moments: Tensor
    public let mean: Tensor
    /// log-variance clamped to [-30, 20].
    public let logvar: Tensor

    init(moments: Tensor) throws {
        self.moments = moments
        let (b, c2, h, w) = (moments.shape[0], moments.shape[1], moments.shape[2], moments.shape[3])
        let c = c2 / 2, plane = c * h * w
        mean = try Tensor(shape: [b, c, h, w]) { o in
            moments.withUnsafeBufferPointer { m in for i in 0..<b { (o.baseAddress! + i * plane).update(from: m.baseAddress! + i * 2 * plane, count: plane) } }
        }
        logvar = try Tensor(shape: [b, c, h, w]) { o in
            moments.withUnsafeBufferPointer { m in
                for i in 0..<b {
                    let s = m.baseAddress! + i * 2 * plane + plane, d = o.baseAddress! + i * plane
                    for j in 0..<plane { d[j] = min(max(s[j], -30), 20) }
                }
            }
        }
    }

    /// exp(0.5 · logvar).
    public var std: Tensor {
        get throws {
            try Tensor(shape: logvar.shape) { o in
                logvar.withUnsafeBufferPointer { l in for i in 0..<l.count { o[i] = expf(0.5 * l[i]) } }
            }
        }
    }

    /// mean + std · ε with ε = `torch.randn(mean.shape, generator)` — diffusers' `latent_dist.sample(generator)`.
    public func sample(generator: inout TorchGenerator) throws -> Tensor {
        let eps = try generator.randn(mean.shape)
        let s = try std
        return try Tensor(shape: mean.shape) { o in
            mean.withUnsafeBufferPointer { m in
                s.withUnsafeBufferPointer { sd in
                    eps.withUnsafeBufferPointer { e in for i in 0..<o.count { o[i] = m[i] + sd[i] * e[i] } }
                }
            }
        }
    }
}

/// diffusers `AutoencoderKL` (SD1.x VAE). Images are [B, 3, H, W] in [-1, 1]; latents are the raw
/// (unscaled) latent space: callers multiply encoded latents by `config.scalingFactor` and divide
/// by it before `decode` (the SD pipelines do this, not the model). Weights stay in their stored
/// dtype; calls on one model are serialised.
public final class AutoencoderKL: @unchecked Sendable {
    public let config: VAEConfig
    public let workspace = Workspace()
    private let lock = NSLock()

    struct Mid: Sendable {
        let res0: ResnetBlock2D, attn: SpatialSelfAttention?, res1: ResnetBlock2D
        func callAsFunction(_ x: Tensor, _ ws: Workspace) throws -> Tensor {
            var h = try res0(x, tembAct: nil, ws)
            if let attn { h = try attn(h, ws) }
            return try res1(h, tembAct: nil, ws)
        }
    }

    let encConvIn: Conv2d
    let encDown: [(resnets: [ResnetBlock2D], down: Downsample2D?)]
    let encMid: Mid
    let encNormOut: GroupNorm
    let encConvOut: Conv2d
    let quantConv: Conv2d?
    let postQuantConv: Conv2d?
    let decConvIn: Conv2d
    let decMid: Mid
    let decUp: [(resnets: [ResnetBlock2D], up: Upsample2D?)]
    let decNormOut: GroupNorm
    let decConvOut: Conv2d

    public convenience init(files: ComponentFiles) throws {
        try self.init(config: ModelConfig(json: files.configJSON, origin: files.configOrigin), weights: files.weights)
    }

    public init(config c: ModelConfig, weights: any TensorSource) throws {
        let cfg = try VAEConfig(c)
        config = cfg
        let r = WeightReader(source: weights)
        let ch = cfg.blockOutChannels, n = ch.count, g = cfg.normGroups, eps: Float = 1e-6
        let lat = cfg.latentChannels, top = ch[n - 1]
        func mid(_ r: WeightReader) throws -> Mid {
            Mid(res0: try ResnetBlock2D(r.child("resnets.0"), in: top, out: top, tembChannels: nil, groups: g, eps: eps),
                attn: cfg.midBlockAddAttention ? try SpatialSelfAttention(r.child("attentions.0"), channels: top, heads: 1, groups: g, eps: eps) : nil,
                res1: try ResnetBlock2D(r.child("resnets.1"), in: top, out: top, tembChannels: nil, groups: g, eps: eps))
        }
        let e = r.child("encoder")
        encConvIn = try Conv2d(e, "conv_in", in: cfg.inChannels, out: ch[0], kernel: 3, padding: .init(1))
        var downs: [(resnets: [ResnetBlock2D], down: Downsample2D?)] = []
        var outCh = ch[0]
        for i in 0..<n {
            let inCh = outCh
            outCh = ch[i]
            let br = e.child("down_blocks.\(i)")
            let resnets = try (0..<cfg.layersPerBlock).map { j in
                try ResnetBlock2D(br.child("resnets.\(j)"), in: j == 0 ? inCh : outCh, out: outCh, tembChannels: nil, groups: g, eps: eps)
            }
            downs.append((resnets, i < n - 1 ? try Downsample2D(br.child("downsamplers.0"), channels: outCh, padding: 0) : nil))
        }
        encDown = downs
        encMid = try mid(e.child("mid_block"))
        encNormOut = try GroupNorm(e, "conv_norm_out", channels: top, groups: g, eps: eps)
        encConvOut = try Conv2d(e, "conv_out", in: top, out: 2 * lat, kernel: 3, padding: .init(1))
        quantConv = cfg.useQuantConv ? try Conv2d(r, "quant_conv", in: 2 * lat, out: 2 * lat, kernel: 1, padding: .init(0)) : nil
        postQuantConv = cfg.usePostQuantConv ? try Conv2d(r, "post_quant_conv", in: lat, out: lat, kernel: 1, padding: .init(0)) : nil
        let d = r.child("decoder")
        decConvIn = try Conv2d(d, "conv_in", in: lat, out: top, kernel: 3, padding: .init(1))
        decMid = try mid(d.child("mid_block"))
        let rch = Array(ch.reversed())
        var ups: [(resnets: [ResnetBlock2D], up: Upsample2D?)] = []
        outCh = rch[0]
        for i in 0..<n {
            let prev = outCh
            outCh = rch[i]
            let br = d.child("up_blocks.\(i)")
            let resnets = try (0...cfg.layersPerBlock).map { j in
                try ResnetBlock2D(br.child("resnets.\(j)"), in: j == 0 ? prev : outCh, out: outCh, tembChannels: nil, groups: g, eps: eps)
            }
            ups.append((resnets, i < n - 1 ? try Upsample2D(br.child("upsamplers.0"), channels: outCh) : nil))
        }
        decUp = ups
        decNormOut = try GroupNorm(d, "conv_norm_out", channels: ch[0], groups: g, eps: eps)
        decConvOut = try Conv2d(d, "conv_out", in: ch[0], out: cfg.outChannels, kernel: 3, padding: .init(1))
    }

    /// Encodes images [B, in_channels, H, W] in [-1, 1] to the latent distribution (unscaled).
    public func encode(_ image: Tensor) throws -> DiagonalGaussian {
        lock.lock()
        defer { workspace.releaseScratch(); lock.unlock() }
        guard image.rank == 4, image.shape[1] == config.inChannels else {
            throw shapeError("VAE encode", image.shape, expected: "[B, \(config.inChannels), H, W]")
        }
        let ws = workspace
        var x = try encConvIn(image, ws)
        for blk in encDown {
            for r in blk.resnets { x = try r(x, tembAct: nil, ws) }
            if let ds = blk.down { x = try ds(x, ws) }
        }
        x = try encMid(x, ws)
        x = try encConvOut(try encNormOut(x, silu: true), ws)
        if let quantConv { x = try quantConv(x, ws) }
        return try DiagonalGaussian(moments: x)
    }

    /// Decodes unscaled latents [B, latent_channels, h, w] (divide the pipeline's latents by
    /// `config.scalingFactor` first) to images [B, out_channels, 8h, 8w] in about [-1, 1] (not clamped).
    public func decode(_ latents: Tensor) throws -> Tensor {
        lock.lock()
        defer { workspace.releaseScratch(); lock.unlock() }
        guard latents.rank == 4, latents.shape[1] == config.latentChannels else {
            throw shapeError("VAE decode", latents.shape, expected: "[B, \(config.latentChannels), h, w]")
        }
        let ws = workspace
        var x = latents
        if let postQuantConv { x = try postQuantConv(x, ws) }
        x = try decConvIn(x, ws)
        x = try decMid(x, ws)
        for blk in decUp {
            for r in blk.resnets { x = try r(x, tembAct: nil, ws) }
            if let us = blk.up { x = try us(x, size: nil, ws) }
        }
        return try decConvOut(try decNormOut(x, silu: true), ws)
    }
}
