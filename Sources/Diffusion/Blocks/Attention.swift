import Foundation
import Tensor

/// Where an attention layer sits in the UNet (prompt-to-prompt groups its maps by this).
public enum AttentionPlace: String, Sendable, Hashable {
    case down, mid, up
}

/// One attention call site of a UNet forward.
public struct AttentionSite: Sendable, Hashable, CustomStringConvertible {
    /// Call order within one UNet forward: 0..<32 for SD1.5 (down, mid, up; self before cross).
    public let index: Int
    /// diffusers module path, e.g. `down_blocks.0.attentions.0.transformer_blocks.0.attn2`.
    public let name: String
    public let place: AttentionPlace
    /// true for cross-attention (attn2: keys are the text tokens), false for self-attention.
    public let isCross: Bool
    public let heads: Int
    /// The query grid of this call (tokens = height × width).
    public let height: Int, width: Int

    public var description: String { "#\(index) \(name) (\(place), \(isCross ? "cross" : "self"), \(heads) heads, \(height)×\(width))" }
}

/// Observes or replaces attention probabilities (prompt-to-prompt's interception point, what a
/// diffusers `AttnProcessor` does between softmax and `probs·V`). Layers for which
/// `wantsProbabilities` is false take the fused, chunked path and never materialise the
/// probabilities; a wanted layer materialises `[B·H, Nq, Nk]` (64² self-attention: 512 MiB per image,
/// which prompt-to-prompt never asks for).
public protocol AttentionHook: AnyObject {
    func wantsProbabilities(at site: AttentionSite) -> Bool
    /// `probabilities` is `[B·H, Nq, Nk]`, row `b·H + h`, each row a softmax over keys; edit in place.
    /// Its shape must stay the same.
    func process(_ probabilities: inout Tensor, at site: AttentionSite) throws
}

enum AttentionKernel {
    /// softmax(scale·Q·Kᵀ)·V per head; q [B, Nq, H·D], k/v [B, Nk, H·D] → [B, Nq, H·D].
    static func run(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float,
                    site: AttentionSite?, hook: (any AttentionHook)?) throws -> Tensor {
        guard let site, let hook, hook.wantsProbabilities(at: site) else {
            return try BlockedAttention.run(q: q, k: k, v: v, heads: heads, scale: scale)
        }
        let (b, nq, hd) = (q.shape[0], q.shape[1], q.shape[2])
        let nk = k.shape[1], d = hd / heads
        let probsShape = [b * heads, nq, nk]
        var probs = try Tensor(shape: probsShape) { p in
            q.withUnsafeBufferPointer { qs in
                k.withUnsafeBufferPointer { ks in
                    for bi in 0..<b {
                        for h in 0..<heads {
                            GEMM.sgemm(transB: true, m: nq, n: nk, k: d, alpha: scale,
                                       a: qs.baseAddress! + bi * nq * hd + h * d, lda: hd,
                                       b: ks.baseAddress! + bi * nk * hd + h * d, ldb: hd,
                                       beta: 0, c: p.baseAddress! + (bi * heads + h) * nq * nk, ldc: nk)
                        }
                    }
                }
            }
        }
        probs = try Ops.softmax(probs)
        try hook.process(&probs, at: site)
        guard probs.shape == probsShape else {
            throw DiffusionError("attention hook changed the probabilities of \(site) from \(probsShape) to \(probs.shape)")
        }
        return try Tensor(shape: [b, nq, hd]) { o in
            probs.withUnsafeBufferPointer { ps in
                v.withUnsafeBufferPointer { vs in
                    for bi in 0..<b {
                        for h in 0..<heads {
                            GEMM.sgemm(m: nq, n: d, k: nk, a: ps.baseAddress! + (bi * heads + h) * nq * nk, lda: nk,
                                       b: vs.baseAddress! + bi * nk * hd + h * d, ldb: hd,
                                       beta: 0, c: o.baseAddress! + bi * nq * hd + h * d, ldc: hd)
                        }
                    }
                }
            }
        }
    }
}

/// Token-major projections of NCHW maps (1×1 convolution or Linear on the channel dimension).
enum TokenProjection {
    /// x [B, Cin, H, W] → tokens [B, H·W, Cout] = xᵀ·Wᵀ + bias (no permute copy).
    static func toTokens(_ x: Tensor, _ lin: Linear, _ ws: Workspace) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == lin.inFeatures else {
            throw shapeError("projection \(lin.weight.key)", x.shape, expected: "[N, \(lin.inFeatures), H, W]")
        }
        let (n, cin, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let cout = lin.outFeatures
        let w = try ws.floats(lin.weight)
        return try Tensor(shape: [n, hw, cout]) { o in
            let y = o.baseAddress!
            if let b = lin.bias.map(f32Pointer) {
                for r in 0..<(n * hw) { (y + r * cout).update(from: b, count: cout) }
            }
            x.withUnsafeBufferPointer { xs in
                for img in 0..<n {
                    GEMM.sgemm(transA: true, transB: true, m: hw, n: cout, k: cin, a: xs.baseAddress! + img * cin * hw, lda: hw,
                               b: w, ldb: cin, beta: lin.bias == nil ? 0 : 1, c: y + img * hw * cout, ldc: cout)
                }
            }
        }
    }

    /// tokens [B, H·W, Cin] → [B, Cout, H, W] = W·tokensᵀ + bias + residual.
    static func toNCHW(_ t: Tensor, _ lin: Linear, _ ws: Workspace, height: Int, width: Int, residual: Tensor) throws -> Tensor {
        let n = t.shape[0], hw = height * width, cin = lin.inFeatures, cout = lin.outFeatures
        guard t.rank == 3, t.shape[1] == hw, t.shape[2] == cin, residual.shape == [n, cout, height, width] else {
            throw shapeError("projection \(lin.weight.key)", t.shape, expected: "[N, \(hw), \(cin)] with a residual [N, \(cout), \(height), \(width)]")
        }
        let w = try ws.floats(lin.weight)
        return try Tensor(shape: [n, cout, height, width]) { o in
            let y = o.baseAddress!
            residual.withUnsafeBufferPointer { r in y.update(from: r.baseAddress!, count: n * cout * hw) }
            if let b = lin.bias.map(f32Pointer) {
                for img in 0..<n { for c in 0..<cout { let d = y + (img * cout + c) * hw, v = b[c]; for j in 0..<hw { d[j] += v } } }
            }
            t.withUnsafeBufferPointer { ts in
                for img in 0..<n {
                    GEMM.sgemm(transB: true, m: cout, n: hw, k: cin, a: w, lda: cin, b: ts.baseAddress! + img * hw * cin, ldb: cin,
                               beta: 1, c: y + img * cout * hw, ldc: hw)
                }
            }
        }
    }
}

/// diffusers `Attention` as used by `BasicTransformerBlock`: q/k/v without bias, `to_out.0` with bias.
struct CrossAttention: Sendable {
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    let heads: Int, scale: Float
    let site: AttentionSite

    init(_ r: WeightReader, dim: Int, contextDim: Int, heads: Int, site: AttentionSite) throws {
        guard heads >= 1, dim % heads == 0 else {
            throw DiffusionError("\(r.prefix): \(dim) channels do not split into \(heads) attention heads", file: r.source.name)
        }
        toQ = try Linear(r, "to_q", in: dim, out: dim, bias: false)
        toK = try Linear(r, "to_k", in: contextDim, out: dim, bias: false)
        toV = try Linear(r, "to_v", in: contextDim, out: dim, bias: false)
        toOut = try Linear(r, "to_out.0", in: dim, out: dim, bias: true)
        self.heads = heads
        scale = 1 / Float(dim / heads).squareRoot()
        self.site = site
    }

    /// residual + to_out(attention(x, context ?? x)).
    func callAsFunction(_ x: Tensor, context: Tensor?, residual: Tensor, grid: (Int, Int), _ ws: Workspace,
                        hook: (any AttentionHook)?) throws -> Tensor {
        let q = try toQ(x, ws)
        let c = context ?? x
        let k = try toK(c, ws), v = try toV(c, ws)
        let s = AttentionSite(index: site.index, name: site.name, place: site.place, isCross: site.isCross,
                              heads: heads, height: grid.0, width: grid.1)
        let o = try ws.measure("attention \(site.isCross ? "cross" : "self") \(grid.0)x\(grid.1)") {
            try AttentionKernel.run(q: q, k: k, v: v, heads: heads, scale: scale, site: s, hook: hook)
        }
        return try toOut(o, ws, residual: residual)
    }
}

/// diffusers `BasicTransformerBlock` (layer_norm, self-attention, cross-attention, GEGLU feed-forward).
struct BasicTransformerBlock: Sendable {
    let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
    let attn1: CrossAttention, attn2: CrossAttention
    let ffIn: Linear, ffOut: Linear

    init(_ r: WeightReader, dim: Int, contextDim: Int, heads: Int, siteIndex: Int, name: String, place: AttentionPlace) throws {
        norm1 = try LayerNorm(r, "norm1", dim: dim, eps: 1e-5)
        norm2 = try LayerNorm(r, "norm2", dim: dim, eps: 1e-5)
        norm3 = try LayerNorm(r, "norm3", dim: dim, eps: 1e-5)
        attn1 = try CrossAttention(r.child("attn1"), dim: dim, contextDim: dim, heads: heads,
                                   site: AttentionSite(index: siteIndex, name: name + ".attn1", place: place, isCross: false, heads: heads, height: 0, width: 0))
        attn2 = try CrossAttention(r.child("attn2"), dim: dim, contextDim: contextDim, heads: heads,
                                   site: AttentionSite(index: siteIndex + 1, name: name + ".attn2", place: place, isCross: true, heads: heads, height: 0, width: 0))
        ffIn = try Linear(r, "ff.net.0.proj", in: dim, out: dim * 8, bias: true)
        ffOut = try Linear(r, "ff.net.2", in: dim * 4, out: dim, bias: true)
    }

    func callAsFunction(_ x: Tensor, context: Tensor, grid: (Int, Int), _ ws: Workspace, hook: (any AttentionHook)?) throws -> Tensor {
        var h = try attn1(try ws.measure("layernorm") { try norm1(x) }, context: nil, residual: x, grid: grid, ws, hook: hook)
        h = try attn2(try ws.measure("layernorm") { try norm2(h) }, context: context, residual: h, grid: grid, ws, hook: hook)
        let n3 = try ws.measure("layernorm") { try norm3(h) }
        let f = try ffIn(n3, ws)
        let g = try ws.measure("geglu") { try Elementwise.geglu(f) }
        return try ffOut(g, ws, residual: h)
    }
}

/// diffusers `Transformer2DModel` (continuous input): GroupNorm(eps 1e-6), proj_in (1×1 conv or
/// Linear), transformer blocks on tokens, proj_out, residual.
struct Transformer2D: Sendable {
    let norm: GroupNorm
    let projIn: Linear, projOut: Linear
    let blocks: [BasicTransformerBlock]
    /// Attention sites used: 2 per block.
    var siteCount: Int { 2 * blocks.count }

    init(_ r: WeightReader, channels: Int, heads: Int, layers: Int, contextDim: Int, groups: Int,
         linearProjection: Bool, firstSite: Int, name: String, place: AttentionPlace) throws {
        norm = try GroupNorm(r, "norm", channels: channels, groups: groups, eps: 1e-6)
        projIn = try Linear(r, "proj_in", in: channels, out: channels, bias: true, acceptConv1x1: !linearProjection)
        projOut = try Linear(r, "proj_out", in: channels, out: channels, bias: true, acceptConv1x1: !linearProjection)
        blocks = try (0..<layers).map { i in
            try BasicTransformerBlock(r.child("transformer_blocks.\(i)"), dim: channels, contextDim: contextDim, heads: heads,
                                      siteIndex: firstSite + 2 * i, name: "\(name).transformer_blocks.\(i)", place: place)
        }
    }

    func callAsFunction(_ x: Tensor, context: Tensor, _ ws: Workspace, hook: (any AttentionHook)?) throws -> Tensor {
        let (hh, ww) = (x.shape[2], x.shape[3])
        let n = try ws.measure("groupnorm") { try norm(x) }
        var t = try ws.measure("proj_in") { try TokenProjection.toTokens(n, projIn, ws) }
        for b in blocks { t = try b(t, context: context, grid: (hh, ww), ws, hook: hook) }
        return try ws.measure("proj_out") { try TokenProjection.toNCHW(t, projOut, ws, height: hh, width: ww, residual: x) }
    }
}

/// The VAE's mid-block attention (`Attention(_from_deprecated_attn_block=True)`): GroupNorm, one
/// head over all channels, q/k/v/out with bias, residual. Accepts the legacy names
/// `query`/`key`/`value`/`proj_attn` and 1×1-conv shaped weights.
struct SpatialSelfAttention: Sendable {
    let norm: GroupNorm
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    let heads: Int

    init(_ r: WeightReader, channels: Int, heads: Int, groups: Int, eps: Float) throws {
        norm = try GroupNorm(r, "group_norm", channels: channels, groups: groups, eps: eps)
        toQ = try Linear(r, "to_q", in: channels, out: channels, bias: true, acceptConv1x1: true, legacyName: "query")
        toK = try Linear(r, "to_k", in: channels, out: channels, bias: true, acceptConv1x1: true, legacyName: "key")
        toV = try Linear(r, "to_v", in: channels, out: channels, bias: true, acceptConv1x1: true, legacyName: "value")
        toOut = try Linear(r, "to_out.0", in: channels, out: channels, bias: true, acceptConv1x1: true, legacyName: "proj_attn")
        self.heads = heads
    }

    func callAsFunction(_ x: Tensor, _ ws: Workspace) throws -> Tensor {
        let n = try norm(x)
        let q = try TokenProjection.toTokens(n, toQ, ws)
        let k = try TokenProjection.toTokens(n, toK, ws)
        let v = try TokenProjection.toTokens(n, toV, ws)
        let scale = 1 / Float(x.shape[1] / heads).squareRoot()
        let o = try ws.measure("vae attention") { try AttentionKernel.run(q: q, k: k, v: v, heads: heads, scale: scale, site: nil, hook: nil) }
        return try TokenProjection.toNCHW(o, toOut, ws, height: x.shape[2], width: x.shape[3], residual: x)
    }
}
