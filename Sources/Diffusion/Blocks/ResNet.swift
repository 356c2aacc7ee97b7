import Foundation
import Tensor

/// diffusers `ResnetBlock2D` (time_embedding_norm "default", output_scale_factor 1):
/// conv1(SiLU(GN(x))) + time_emb_proj(SiLU(temb)), conv2(SiLU(GN(h))), plus x or conv_shortcut(x).
struct ResnetBlock2D: Sendable {
    let norm1: GroupNorm, norm2: GroupNorm
    let conv1: Conv2d, conv2: Conv2d
    let timeProj: Linear?
    let shortcut: Conv2d?
    let outChannels: Int

    init(_ r: WeightReader, in cin: Int, out cout: Int, tembChannels: Int?, groups: Int, eps: Float) throws {
        norm1 = try GroupNorm(r, "norm1", channels: cin, groups: groups, eps: eps)
        conv1 = try Conv2d(r, "conv1", in: cin, out: cout, kernel: 3, padding: .init(1))
        timeProj = try tembChannels.map { try Linear(r, "time_emb_proj", in: $0, out: cout, bias: true) }
        norm2 = try GroupNorm(r, "norm2", channels: cout, groups: groups, eps: eps)
        conv2 = try Conv2d(r, "conv2", in: cout, out: cout, kernel: 3, padding: .init(1))
        shortcut = cin != cout ? try Conv2d(r, "conv_shortcut", in: cin, out: cout, kernel: 1, padding: .init(0)) : nil
        outChannels = cout
    }

    /// `tembAct` is SiLU(temb) [B, tembChannels] (computed once per forward), nil in the VAE.
    func callAsFunction(_ x: Tensor, tembAct: Tensor?, _ ws: Workspace) throws -> Tensor {
        var channelBias: Tensor? = nil
        if let timeProj {
            guard let tembAct else { throw DiffusionError("\(conv1.weight.key): this ResNet block needs a time embedding") }
            channelBias = try timeProj(tembAct, ws)
        }
        var h = try conv1(try ws.measure("groupnorm") { try norm1(x, silu: true) }, ws, channelBias: channelBias)
        h = try ws.measure("groupnorm") { try norm2(h, silu: true) }
        let res = try shortcut.map { try $0(x, ws) } ?? x
        return try conv2(h, ws, residual: res)
    }
}

/// diffusers `Downsample2D` with a convolution: stride 2, symmetric padding `padding`; padding 0 means
/// the asymmetric (right 1, bottom 1) zero padding of the VAE encoder.
struct Downsample2D: Sendable {
    let conv: Conv2d

    init(_ r: WeightReader, channels: Int, padding: Int) throws {
        let pad = padding == 0 ? Ops.Padding2D(top: 0, bottom: 1, left: 0, right: 1) : Ops.Padding2D(padding)
        conv = try Conv2d(r, "conv", in: channels, out: channels, kernel: 3, stride: 2, padding: pad)
    }

    func callAsFunction(_ x: Tensor, _ ws: Workspace) throws -> Tensor { try conv(x, ws) }
}

/// diffusers `Upsample2D` with a convolution: nearest ×2 (or to `size`), then 3×3 conv.
struct Upsample2D: Sendable {
    let conv: Conv2d

    init(_ r: WeightReader, channels: Int) throws {
        conv = try Conv2d(r, "conv", in: channels, out: channels, kernel: 3, padding: .init(1))
    }

    func callAsFunction(_ x: Tensor, size: (Int, Int)?, _ ws: Workspace) throws -> Tensor {
        let (h, w) = size ?? (2 * x.shape[2], 2 * x.shape[3])
        return try conv(try ws.measure("upsample") { try Ops.upsampleNearest(x, height: h, width: w) }, ws)
    }
}
