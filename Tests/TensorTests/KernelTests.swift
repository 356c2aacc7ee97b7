import Testing
@testable import Tensor

/// Kernels against torch (float64 reference from the same float32 inputs), fixtures in
/// kernels.safetensors. Tolerance: max |ours − torch| ≤ tol · max |torch| per case.
@Suite struct KernelTests {
    let f: SafeTensorsFile
    init() throws { f = try SafeTensorsFile(path: fixturePath("kernels.safetensors")) }

    func t(_ key: String) throws -> Tensor { try f.tensor(key) }
    func w(_ key: String) throws -> StoredTensor { try f.stored(key) }
    func optional(_ key: String) throws -> StoredTensor? { f.contains(key) ? try f.stored(key) : nil }

    func expectClose(_ got: Tensor, _ refKey: String, tol: Float, _ what: String = "") throws {
        let ref = try f.stored(refKey)
        #expect(got.shape == ref.shape, "\(refKey) shape")
        guard got.shape == ref.shape else { return }
        let (err, scale) = maxAbsError(got.scalars, try ref.floats())
        #expect(err <= tol * scale, "\(refKey) \(what): max abs err \(err), max |ref| \(scale), rel \(err / scale)")
    }

    @Test(arguments: ["f32", "f16", "bf16"])
    func linearWithStoredWeightDTypes(dtype: String) throws {
        let p = "linear.\(dtype)"
        #expect(try w(p + ".weight").dtype.rawValue == dtype.uppercased())
        let y = try Ops.linear(t(p + ".x"), weight: w(p + ".weight"), bias: w(p + ".bias"))
        try expectClose(y, p + ".out", tol: 1e-6)
    }

    @Test func linearWithoutBiasAndShapeErrors() throws {
        let y = try Ops.linear(t("linear.nobias.x"), weight: w("linear.nobias.weight"))
        try expectClose(y, "linear.nobias.out", tol: 1e-6)
        #expect(throws: TensorError.self) { _ = try Ops.linear(t("linear.nobias.out"), weight: w("linear.nobias.weight")) }
        #expect(throws: TensorError.self) {
            _ = try Ops.linear(t("linear.f32.x"), weight: w("linear.f32.weight"), bias: w("linear.nobias.weight"))
        }
    }

    static let convCases: [(String, (Int, Int), Ops.Padding2D, (Int, Int), Int)] = [
        ("basic", (1, 1), .init(1), (1, 1), 1),
        ("down", (2, 2), .init(1), (1, 1), 1),
        ("asym", (2, 2), .init(top: 0, bottom: 1, left: 0, right: 1), (1, 1), 1),
        ("dilated", (1, 1), .init(2), (2, 2), 1),
        ("groups", (1, 1), .init(1), (1, 1), 2),
        ("depthwise", (1, 1), .init(1), (1, 1), 5),
        ("pointwise", (1, 1), .init(0), (1, 1), 1),
        ("rect", (1, 2), .init(height: 2, width: 1), (1, 1), 1),
        ("nopad", (3, 3), .init(0), (1, 1), 1),
    ]

    @Test func conv2dMatchesTorch() throws {
        for (name, stride, padding, dilation, groups) in Self.convCases {
            let p = "conv.\(name)"
            let x = try t(p + ".x"), weight = try w(p + ".weight"), bias = try optional(p + ".bias")
            let y = try Ops.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding,
                                   dilation: dilation, groups: groups)
            try expectClose(y, p + ".out", tol: 2e-6, name)
            // Small im2col chunks (not dividing the output) give the same answer.
            for chunk in [1, 7, 13] {
                let yc = try Ops.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding,
                                        dilation: dilation, groups: groups, columnChunk: chunk)
                try expectClose(yc, p + ".out", tol: 2e-6, "\(name) chunk \(chunk)")
            }
        }
    }

    @Test func conv2dRejectsBadShapes() throws {
        let x = try t("conv.basic.x")
        #expect(throws: TensorError.self) { _ = try Ops.conv2d(x, weight: w("conv.groups.weight")) }
        #expect(throws: TensorError.self) { _ = try Ops.conv2d(x, weight: w("conv.basic.weight"), groups: 4) }
        #expect(throws: TensorError.self) { _ = try Ops.conv2d(x, weight: w("conv.basic.weight"), bias: w("conv.down.bias")) }
        #expect(throws: TensorError.self) { _ = try Ops.conv2d(x, weight: w("conv.basic.weight"), stride: (0, 1)) }
        let tiny = try Tensor(zeros: [1, 6, 1, 1])
        #expect(throws: TensorError.self) { _ = try Ops.conv2d(tiny, weight: w("conv.basic.weight")) }
        #expect(throws: TensorError.self) { _ = try Ops.conv2d(t("linear.f32.x"), weight: w("conv.basic.weight")) }
    }

    @Test func groupNormMatchesTorch() throws {
        let x = try t("groupnorm.affine.x")
        try expectClose(try Ops.groupNorm(x, groups: 4, weight: w("groupnorm.affine.weight"), bias: w("groupnorm.affine.bias"), eps: 1e-5),
                        "groupnorm.affine.out", tol: 1e-6)
        try expectClose(try Ops.groupNorm(x, groups: 2, eps: 1e-6), "groupnorm.plain.out", tol: 1e-6)
        try expectClose(try Ops.groupNorm(x, groups: 4, weight: w("groupnorm.silu.weight"), bias: w("groupnorm.silu.bias"),
                                          eps: 1e-5, fusedSiLU: true), "groupnorm.silu.out", tol: 1e-6)
        #expect(throws: TensorError.self) { _ = try Ops.groupNorm(x, groups: 3, eps: 1e-5) }
        #expect(throws: TensorError.self) { _ = try Ops.groupNorm(x, groups: 4, weight: w("linear.f32.bias"), eps: 1e-5) }
    }

    @Test func layerNormMatchesTorch() throws {
        let x = try t("layernorm.affine.x")
        try expectClose(try Ops.layerNorm(x, weight: w("layernorm.affine.weight"), bias: w("layernorm.affine.bias"), eps: 1e-5),
                        "layernorm.affine.out", tol: 1e-6)
        try expectClose(try Ops.layerNorm(x, eps: 1e-6), "layernorm.plain.out", tol: 1e-6)
        #expect(throws: TensorError.self) { _ = try Ops.layerNorm(x, weight: w("linear.f32.bias"), eps: 1e-5) }
    }

    @Test func softmaxIsStableAndMatchesTorch() throws {
        let y = try Ops.softmax(t("softmax.x"))
        try expectClose(y, "softmax.out", tol: 1e-6)
        #expect(y.scalars.allSatisfy { $0.isFinite })
        let s = y.scalars
        for r in 0..<4 { #expect(abs(s[(r * 33)..<((r + 1) * 33)].reduce(0, +) - 1) < 1e-5) }
    }

    @Test func activationsMatchTorch() throws {
        let x = try t("act.x")
        try expectClose(Ops.gelu(x), "act.gelu", tol: 1e-6)
        try expectClose(Ops.geluTanh(x), "act.gelu_tanh", tol: 1e-6)
        try expectClose(Ops.quickGelu(x), "act.quick_gelu", tol: 1e-6)
        try expectClose(Ops.silu(x), "act.silu", tol: 1e-6)
        try expectClose(try Ops.geglu(t("geglu.x")), "geglu.out", tol: 1e-6)
        #expect(throws: TensorError.self) { _ = try Ops.geglu(Tensor(zeros: [2, 3])) }
    }

    @Test func upsampleNearestMatchesTorchExactly() throws {
        let y = try Ops.upsampleNearest2x(t("upsample2x.x"))
        #expect(y.shape == [1, 3, 8, 10])
        #expect(y.scalars == (try f.floats("upsample2x.out")))
        let z = try Ops.upsampleNearest(t("upsample.size.x"), height: 7, width: 9)
        #expect(z.shape == [1, 2, 7, 9])
        #expect(z.scalars == (try f.floats("upsample.size.out")))
        #expect(throws: TensorError.self) { _ = try Ops.upsampleNearest2x(Tensor(zeros: [3, 4])) }
        #expect(throws: TensorError.self) { _ = try Ops.upsampleNearest(Tensor(zeros: [1, 2, 0, 3]), height: 2, width: 2) }
        #expect(throws: TensorError.self) { _ = try Ops.upsampleNearest(t("upsample2x.x"), height: 0, width: 2) }
    }

    @Test func concatAlongChannelsAndOtherAxes() throws {
        let a = try Tensor(shape: [2, 1, 2], scalars: [1, 2, 3, 4])
        let b = try Tensor(shape: [2, 2, 2], scalars: [5, 6, 7, 8, 9, 10, 11, 12])
        let c = try Ops.concat([a, b], axis: 1)
        #expect(c.shape == [2, 3, 2])
        #expect(c.scalars == [1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12])
        let d = try Ops.concat([a, a], axis: -1)
        #expect(d.shape == [2, 1, 4] && d.scalars == [1, 2, 1, 2, 3, 4, 3, 4])
        let e = try Ops.concat([a, a], axis: 0)
        #expect(e.shape == [4, 1, 2] && e.scalars == [1, 2, 3, 4, 1, 2, 3, 4])
        #expect(throws: TensorError.self) { _ = try Ops.concat([a, b], axis: 0) }
        #expect(throws: TensorError.self) { _ = try Ops.concat([], axis: 0) }
        #expect(throws: TensorError.self) { _ = try Ops.concat([a], axis: 3) }
    }

    @Test(arguments: [256, 7, 1])
    func attentionMatchesTorch(chunk: Int) throws {
        let q = try t("attn.plain.q"), k = try t("attn.plain.k"), v = try t("attn.plain.v")
        try expectClose(try Ops.attention(query: q, key: k, value: v, heads: 4, chunk: chunk), "attn.plain.out", tol: 2e-6)
        try expectClose(try Ops.attention(query: q, key: k, value: v, heads: 4, scale: 0.5, chunk: chunk), "attn.scale.out", tol: 2e-6)
        try expectClose(try Ops.attention(query: q, key: k, value: v, heads: 4, mask: t("attn.mask4.mask"), chunk: chunk),
                        "attn.mask4.out", tol: 2e-6)
        try expectClose(try Ops.attention(query: q, key: k, value: v, heads: 4, mask: t("attn.mask2.mask"), chunk: chunk),
                        "attn.mask2.out", tol: 2e-6)
        let qs = try t("attn.causal.q"), ks = try t("attn.causal.k"), vs = try t("attn.causal.v")
        try expectClose(try Ops.attention(query: qs, key: ks, value: vs, heads: 2, causal: true, chunk: chunk),
                        "attn.causal.out", tol: 2e-6)
        try expectClose(try Ops.attention(query: qs.slice(first: 0..<1).reshaped([1, 20, 16]).sliceRows(0..<12), key: ks, value: vs,
                                          heads: 2, causal: true, chunk: chunk), "attn.causal_wide.out", tol: 2e-6)
    }

    @Test func attentionRejectsBadShapes() throws {
        let q = try t("attn.plain.q"), k = try t("attn.plain.k"), v = try t("attn.plain.v")
        #expect(throws: TensorError.self) { _ = try Ops.attention(query: q, key: k, value: v, heads: 5) }
        #expect(throws: TensorError.self) { _ = try Ops.attention(query: q, key: v, value: v, heads: 4) }
        #expect(throws: TensorError.self) { _ = try Ops.attention(query: q, key: k, value: v, heads: 4, mask: Tensor(zeros: [3, 50, 37])) }
        #expect(throws: TensorError.self) { _ = try Ops.attention(query: q, key: k, value: v, heads: 4, chunk: 0) }
    }
}

extension Tensor {
    /// Rows `range` of the second dimension of a [1, N, D] tensor (test helper).
    func sliceRows(_ range: Range<Int>) throws -> Tensor {
        let d = shape[2]
        let s = Array(scalars[(range.lowerBound * d)..<(range.upperBound * d)])
        return try Tensor(shape: [1, range.count, d], scalars: s)
    }
}
