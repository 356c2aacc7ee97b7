import Foundation
import Tensor
import Testing
@testable import Diffusion

/// CKernels against plain references: the blocked attention against a Double-precision softmax
/// attention, the Winograd 3×3 convolution against im2col + sgemm, on sizes that are not multiples of
/// the kernels' blocks (64-key panels, 64-row tiles, 128-key blocks, 16-float vectors, 2×2 tiles).
@Suite struct KernelTests {
    /// softmax(scale·q·kᵀ)·v per head in Double.
    static func referenceAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float) throws -> Tensor {
        let (b, nq, hd) = (q.shape[0], q.shape[1], q.shape[2])
        let nk = k.shape[1], hdv = v.shape[2], d = hd / heads, dv = hdv / heads
        let qs = q.scalars, ks = k.scalars, vs = v.scalars
        var out = [Float](repeating: 0, count: b * nq * hdv)
        var s = [Double](repeating: 0, count: nk)
        for bi in 0..<b {
            for h in 0..<heads {
                for i in 0..<nq {
                    var m = -Double.infinity
                    for j in 0..<nk {
                        var a = 0.0
                        for t in 0..<d { a += Double(qs[(bi * nq + i) * hd + h * d + t]) * Double(ks[(bi * nk + j) * hd + h * d + t]) }
                        s[j] = a * Double(scale)
                        m = max(m, s[j])
                    }
                    var l = 0.0
                    for j in 0..<nk { s[j] = Foundation.exp(s[j] - m); l += s[j] }
                    for c in 0..<dv {
                        var a = 0.0
                        for j in 0..<nk { a += s[j] * Double(vs[(bi * nk + j) * hdv + h * dv + c]) }
                        out[(bi * nq + i) * hdv + h * dv + c] = Float(a / l)
                    }
                }
            }
        }
        return try Tensor(shape: [b, nq, hdv], scalars: out)
    }

    @Test(arguments: [
        // (batch, queries, keys, heads, head width)
        (1, 1, 1, 1, 8), (2, 67, 77, 2, 40), (1, 130, 129, 3, 8), (2, 65, 200, 1, 64),
        (1, 100, 257, 2, 80), (1, 70, 33, 1, 160), (1, 129, 64, 2, 24), (1, 300, 5, 4, 40),
    ])
    func blockedAttentionMatchesTheReference(_ c: (Int, Int, Int, Int, Int)) throws {
        let (b, nq, nk, heads, d) = c
        var g = TorchGenerator(seed: UInt64(nq * 1000 + nk))
        let q = try g.randn([b, nq, heads * d]), k = try g.randn([b, nk, heads * d]), v = try g.randn([b, nk, heads * d])
        // The model's scale 1/√d and a sharper one (peaked softmax, large running-max corrections).
        for scale in [1 / Float(d).squareRoot(), 2.5 as Float] {
            let ref = try Self.referenceAttention(q: q, k: k, v: v, heads: heads, scale: scale)
            let got = try BlockedAttention.run(q: q, k: k, v: v, heads: heads, scale: scale)
            expectClose(got, ref, rel: 2e-6 * Float(max(1, d / 8)), "blocked attention b\(b) q\(nq) k\(nk) h\(heads) d\(d) scale \(scale)")
        }
    }

    @Test func blockedAttentionWithDifferentValueWidth() throws {
        var g = TorchGenerator(seed: 3)
        let q = try g.randn([1, 90, 2 * 40]), k = try g.randn([1, 150, 2 * 40]), v = try g.randn([1, 150, 2 * 24])
        let ref = try Self.referenceAttention(q: q, k: k, v: v, heads: 2, scale: 0.2)
        expectClose(try BlockedAttention.run(q: q, k: k, v: v, heads: 2, scale: 0.2), ref, rel: 1e-5, "blocked attention, d 40, dv 24")
    }

    /// Weights of one convolution, served as a `TensorSource`.
    final class ConvWeights: TensorSource, @unchecked Sendable {
        let tensors: [String: StoredTensor]
        var name: String { "conv test weights" }
        var keys: [String] { tensors.keys.sorted() }
        init(_ t: [String: StoredTensor]) { tensors = t }
        func contains(_ key: String) -> Bool { tensors[key] != nil }
        func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor {
            guard let t = tensors[key] else { throw .missingKey(key: key, file: name, suggestions: []) }
            return t
        }
    }

    @Test(arguments: [
        // (batch, in channels, out channels, height, width, padding top/bottom/left/right)
        (1, 16, 16, 16, 16, Ops.Padding2D(1)), (2, 17, 33, 13, 9, Ops.Padding2D(1)),
        (1, 32, 20, 11, 12, Ops.Padding2D(0)), (3, 24, 19, 7, 15, Ops.Padding2D(top: 0, bottom: 2, left: 1, right: 0)),
        (2, 48, 64, 32, 32, Ops.Padding2D(1)), (3, 16, 16, 20, 22, Ops.Padding2D(1)),
    ])
    func winogradConvMatchesIm2col(_ c: (Int, Int, Int, Int, Int, Ops.Padding2D)) throws {
        let (n, cin, cout, h, w, pad) = c
        var g = TorchGenerator(seed: UInt64(cin * 100 + cout))
        let weight = try g.randn([cout, cin, 3, 3]), bias = try g.randn([cout])
        let x = try g.randn([n, cin, h, w])
        let ho = h + pad.top + pad.bottom - 2, wo = w + pad.left + pad.right - 2
        let residual = try g.randn([n, cout, ho, wo]), channelBias = try g.randn([n, cout])
        let src = ConvWeights(["c.weight": StoredTensor(weight, key: "c.weight"), "c.bias": StoredTensor(bias, key: "c.bias")])
        let conv = try Conv2d(WeightReader(source: src), "c", in: cin, out: cout, kernel: 3, padding: pad)
        #expect(WinogradConv.applies(cin: cin, cout: cout, tiles: n * ((ho + 1) / 2) * ((wo + 1) / 2), minTiles: 1))
        let wino = Workspace(), im2col = Workspace()
        wino.winogradMinTiles = 1
        im2col.useWinograd = false
        for (r, cb) in [(nil, nil), (residual, channelBias)] as [(Tensor?, Tensor?)] {
            let ref = try conv(x, im2col, residual: r, channelBias: cb)
            let got = try conv(x, wino, residual: r, channelBias: cb)
            expectClose(got, ref, rel: 2e-6, "winograd conv n\(n) \(cin)→\(cout) \(h)×\(w) pad \(pad) residual \(r != nil)")
        }
    }

    @Test(arguments: [(2, 32, 8, 9, 4), (1, 64, 7, 5, 32), (3, 6, 1, 37, 3)])
    func groupNormAndSiLUMatchOps(_ c: (Int, Int, Int, Int, Int)) throws {
        let (n, ch, h, w, groups) = c
        var g = TorchGenerator(seed: UInt64(ch * 10 + h))
        // An offset so that the mean matters (the two-pass statistics), and affine parameters.
        let x = try Tensor(shape: [n, ch, h, w], scalars: try g.randn([n, ch, h, w]).scalars.map { $0 * 3 + 5 })
        let weight = try g.randn([ch]), bias = try g.randn([ch])
        for silu in [false, true] {
            let ref = try Ops.groupNorm(x, groups: groups, weight: StoredTensor(weight), bias: StoredTensor(bias), eps: 1e-6, fusedSiLU: silu)
            let got = try weight.withUnsafeBufferPointer { wp in
                try bias.withUnsafeBufferPointer { bp in
                    try Elementwise.groupNorm(x, groups: groups, weight: wp.baseAddress!, bias: bp.baseAddress!, eps: 1e-6, silu: silu)
                }
            }
            expectClose(got, ref, rel: 1e-6, "group norm \(x.shape) groups \(groups) silu \(silu)")
        }
    }

    @Test(arguments: [[3, 40], [2, 5, 64], [1, 2560]])
    func gegluMatchesOps(_ shape: [Int]) throws {
        var g = TorchGenerator(seed: 11)
        let x = try Tensor(shape: shape, scalars: try g.randn(shape).scalars.map { $0 * 4 })
        expectClose(try Elementwise.geglu(x), try Ops.geglu(x), rel: 1e-6, "geglu \(shape)")
    }
}
