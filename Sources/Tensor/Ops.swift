#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU kernels on contiguous Float32 tensors. Matrix products go through `cblas_sgemm`;
/// element-wise and row-wise work is split over `Parallel.workerCount` threads.
/// Weights are `StoredTensor`s in their stored dtype (f32 used in place, f16/bf16 converted per call).
public enum Ops {
    typealias FloatPtr = UnsafeMutablePointer<Float>
    typealias ConstPtr = UnsafePointer<Float>

    static func checkShape(_ w: StoredTensor, _ expected: [Int], _ role: String) throws {
        guard w.shape == expected else {
            throw TensorError("\(role) \"\(w.key)\" from \(w.source) has shape \(w.shape), expected \(expected)")
        }
    }

    /// Calls `body` with the Floats of an optional per-channel parameter of length `count`.
    static func withOptionalVector<R>(_ v: StoredTensor?, count: Int, role: String,
                                      _ body: (ConstPtr?) throws -> R) throws -> R {
        guard let v else { return try body(nil) }
        guard v.elementCount == count, v.shape.count == 1 else {
            throw TensorError("\(role) \"\(v.key)\" from \(v.source) has shape \(v.shape), expected [\(count)]")
        }
        return try v.withFloats { try body($0.baseAddress!) }
    }

    // MARK: - Linear

    /// `x · Wᵀ + b` over the last dimension: x [..., in], weight [out, in], bias [out] → [..., out].
    public static func linear(_ x: Tensor, weight: StoredTensor, bias: StoredTensor? = nil) throws -> Tensor {
        guard x.rank >= 1 else { throw TensorError("linear: input must have at least one dimension") }
        let inF = x.shape[x.rank - 1]
        guard weight.shape.count == 2, weight.shape[1] == inF else {
            throw TensorError("linear: weight \"\(weight.key)\" from \(weight.source) has shape \(weight.shape), input has \(inF) features")
        }
        let outF = weight.shape[0]
        let rows = inF == 0 ? x.shape.dropLast().reduce(1, *) : x.count / inF
        try GEMM.checkDims(rows, outF, inF)
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        var out = try Tensor(zeros: outShape)
        try out.withUnsafeMutableBufferPointer { o in
            let y = o.baseAddress!
            let beta: Float = try withOptionalVector(bias, count: outF, role: "linear bias") { b in
                guard let b else { return 0 }
                for r in 0..<rows { (y + r * outF).update(from: b, count: outF) }
                return 1
            }
            try weight.withFloats { w in
                x.withUnsafeBufferPointer { xs in
                    GEMM.sgemm(transB: true, m: rows, n: outF, k: inF, a: xs.baseAddress!, lda: inF,
                               b: w.baseAddress!, ldb: inF, beta: beta, c: y, ldc: outF)
                }
            }
        }
        return out
    }

    // MARK: - Convolution

    /// Padding of a 2-D convolution, per side.
    public struct Padding2D: Sendable, Equatable {
        public var top, bottom, left, right: Int
        public init(top: Int, bottom: Int, left: Int, right: Int) {
            self.top = top; self.bottom = bottom; self.left = left; self.right = right
        }
        public init(_ all: Int) { self.init(top: all, bottom: all, left: all, right: all) }
        public init(height: Int, width: Int) { self.init(top: height, bottom: height, left: width, right: width) }
    }

    /// Floats of im2col scratch per chunk (16 MiB); the output columns are processed in chunks
    /// so a large input (VAE at 512²) never needs a full im2col matrix.
    public nonisolated(unsafe) static var im2colBudget = 4 << 20

    /// 2-D convolution, NCHW: x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], bias [Cout].
    /// im2col (chunked over output positions) + one sgemm per group and chunk; 1×1 stride-1
    /// unpadded convolutions multiply the input directly.
    public static func conv2d(_ x: Tensor, weight: StoredTensor, bias: StoredTensor? = nil,
                              stride: (Int, Int) = (1, 1), padding: Padding2D = Padding2D(0),
                              dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                   groups: groups, columnChunk: nil)
    }

    /// `columnChunk` forces the number of output positions per im2col chunk (tests).
    static func conv2d(_ x: Tensor, weight: StoredTensor, bias: StoredTensor?, stride: (Int, Int), padding: Padding2D,
                       dilation: (Int, Int), groups: Int, columnChunk: Int?) throws -> Tensor {
        guard x.rank == 4 else { throw TensorError("conv2d: input must be [N, C, H, W], got \(x.shape)") }
        guard weight.shape.count == 4 else {
            throw TensorError("conv2d: weight \"\(weight.key)\" from \(weight.source) must be [Cout, Cin/groups, kH, kW], got \(weight.shape)")
        }
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        guard groups >= 1, cin % groups == 0, cout % groups == 0, cinG == cin / groups else {
            throw TensorError("conv2d: weight \"\(weight.key)\" shape \(weight.shape) does not fit input channels \(cin) with groups \(groups)")
        }
        guard stride.0 >= 1, stride.1 >= 1, dilation.0 >= 1, dilation.1 >= 1,
              padding.top >= 0, padding.bottom >= 0, padding.left >= 0, padding.right >= 0 else {
            throw TensorError("conv2d: stride and dilation must be >= 1 and padding >= 0")
        }
        let hp = h + padding.top + padding.bottom, wp = w + padding.left + padding.right
        let ekh = dilation.0 * (kh - 1) + 1, ekw = dilation.1 * (kw - 1) + 1
        guard hp >= ekh, wp >= ekw else {
            throw TensorError("conv2d: kernel \(kh)x\(kw) (dilation \(dilation)) larger than padded input \(hp)x\(wp)")
        }
        let ho = (hp - ekh) / stride.0 + 1, wo = (wp - ekw) / stride.1 + 1
        let hwo = ho * wo
        let coutG = cout / groups
        let kdim = cinG * kh * kw
        try GEMM.checkDims(coutG, hwo, kdim)
        var out = try Tensor(zeros: [n, cout, ho, wo])
        let direct = kh == 1 && kw == 1 && stride == (1, 1) && padding == Padding2D(0)
        let chunk = direct ? hwo : max(1, min(hwo, columnChunk ?? im2colBudget / max(1, kdim)))
        let scratch = direct ? nil : TensorStorage(uninitializedCount: kdim * chunk)
        let geo = Im2ColGeometry(c: cinG, h: h, w: w, kh: kh, kw: kw, sh: stride.0, sw: stride.1,
                                 dh: dilation.0, dw: dilation.1, pt: padding.top, pl: padding.left, ho: ho, wo: wo)
        try out.withUnsafeMutableBufferPointer { o in
            let y = o.baseAddress!
            let beta: Float = try withOptionalVector(bias, count: cout, role: "conv2d bias") { b in
                guard let b else { return 0 }
                for img in 0..<n { for c in 0..<cout { (y + (img * cout + c) * hwo).initialize(repeating: b[c], count: hwo) } }
                return 1
            }
            try weight.withFloats { wts in
                x.withUnsafeBufferPointer { xs in
                    for img in 0..<n {
                        for g in 0..<groups {
                            let src = xs.baseAddress! + (img * cin + g * cinG) * h * w
                            let dst = y + (img * cout + g * coutG) * hwo
                            let wg = wts.baseAddress! + g * coutG * kdim
                            if direct {
                                GEMM.sgemm(m: coutG, n: hwo, k: kdim, a: wg, lda: kdim, b: src, ldb: hwo,
                                           beta: beta, c: dst, ldc: hwo)
                                continue
                            }
                            var n0 = 0
                            while n0 < hwo {
                                let nc = min(chunk, hwo - n0)
                                im2col(src, geo, columns: n0..<(n0 + nc), into: scratch!.pointer)
                                GEMM.sgemm(m: coutG, n: nc, k: kdim, a: wg, lda: kdim, b: scratch!.pointer, ldb: nc,
                                           beta: beta, c: dst + n0, ldc: hwo)
                                n0 += nc
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    struct Im2ColGeometry {
        let c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo: Int
    }

    /// Writes rows (c, ki, kj) × output positions `columns` of the im2col matrix, row-major with
    /// row length `columns.count`. Rows are split over threads.
    static func im2col(_ src: ConstPtr, _ g: Im2ColGeometry, columns: Range<Int>, into dst: FloatPtr) {
        let rows = g.c * g.kh * g.kw
        let nc = columns.count
        let box = UnsafeSendableBox((src, dst))
        Parallel.forRanges(rows, minPerChunk: max(1, 8192 / max(1, nc))) { range in
            let (src, dst) = box.value
            for r in range {
                let c = r / (g.kh * g.kw)
                let ki = (r / g.kw) % g.kh
                let kj = r % g.kw
                let plane = src + c * g.h * g.w
                let row = dst + r * nc
                // Output columns ow with 0 <= ow*sw - pl + kj*dw < w.
                let off = kj * g.dw - g.pl
                let owLo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw
                let owHi = g.w - off <= 0 ? 0 : min(g.wo, (g.w - off + g.sw - 1) / g.sw)
                var col = columns.lowerBound
                while col < columns.upperBound {
                    let oh = col / g.wo
                    let owStart = col % g.wo
                    let owEnd = min(g.wo, owStart + (columns.upperBound - col))
                    let out = row + (col - columns.lowerBound) - owStart
                    let ih = oh * g.sh - g.pt + ki * g.dh
                    if ih < 0 || ih >= g.h {
                        for ow in owStart..<owEnd { out[ow] = 0 }
                    } else {
                        let line = plane + ih * g.w + off
                        let lo = max(owStart, min(owLo, owEnd)), hi = max(lo, min(owEnd, owHi))
                        for ow in owStart..<lo { out[ow] = 0 }
                        if g.sw == 1 {
                            if hi > lo { (out + lo).update(from: line + lo, count: hi - lo) }
                        } else {
                            for ow in lo..<hi { out[ow] = line[ow * g.sw] }
                        }
                        for ow in hi..<owEnd { out[ow] = 0 }
                    }
                    col += owEnd - owStart
                }
            }
        }
    }

    // MARK: - Normalisation

    /// Group normalisation over x [N, C, *]: biased variance per (sample, group) of C/groups
    /// contiguous channels, statistics in Double. Optional affine weight/bias [C] and fused SiLU.
    public static func groupNorm(_ x: Tensor, groups: Int, weight: StoredTensor? = nil, bias: StoredTensor? = nil,
                                 eps: Float, fusedSiLU: Bool = false) throws -> Tensor {
        guard x.rank >= 2 else { throw TensorError("groupNorm: input must be [N, C, ...], got \(x.shape)") }
        let n = x.shape[0], c = x.shape[1]
        guard groups >= 1, c % groups == 0 else { throw TensorError("groupNorm: \(c) channels not divisible into \(groups) groups") }
        let spatial = x.shape.dropFirst(2).reduce(1, *)
        let cg = c / groups
        var out = try Tensor(zeros: x.shape)
        try withOptionalVector(weight, count: c, role: "groupNorm weight") { wp in
            try withOptionalVector(bias, count: c, role: "groupNorm bias") { bp in
                x.withUnsafeBufferPointer { xs in
                    out.withUnsafeMutableBufferPointer { os in
                        let box = UnsafeSendableBox((xs.baseAddress!, os.baseAddress!, wp, bp))
                        let perGroup = cg * spatial
                        Parallel.forRanges(n * groups, minPerChunk: max(1, 16384 / max(1, perGroup))) { range in
                            let (xp, op, wp, bp) = box.value
                            for ng in range {
                                let base = ng * perGroup
                                let (mean, rstd) = meanRstd(xp + base, perGroup, eps: eps)
                                let g = ng % groups
                                for ci in 0..<cg {
                                    let ch = g * cg + ci
                                    let scale = rstd * (wp?[ch] ?? 1)
                                    let shift = (bp?[ch] ?? 0) - mean * scale
                                    let s = xp + base + ci * spatial, d = op + base + ci * spatial
                                    for i in 0..<spatial { d[i] = s[i] * scale + shift }
                                    if fusedSiLU { SIMDMath.apply(d, d, spatial, SIMDMath.silu) }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Mean and 1/sqrt(biased variance + eps) of `count` floats (two passes, Double accumulation).
    @inline(__always)
    static func meanRstd(_ p: ConstPtr, _ count: Int, eps: Float) -> (Float, Float) {
        guard count > 0 else { return (0, 1 / eps.squareRoot()) }
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = 0
        while i + 4 <= count {
            s0 += Double(p[i]); s1 += Double(p[i + 1]); s2 += Double(p[i + 2]); s3 += Double(p[i + 3]); i += 4
        }
        while i < count { s0 += Double(p[i]); i += 1 }
        let mean = (s0 + s1 + s2 + s3) / Double(count)
        var v0 = 0.0, v1 = 0.0, v2 = 0.0, v3 = 0.0
        i = 0
        while i + 4 <= count {
            let a = Double(p[i]) - mean, b = Double(p[i + 1]) - mean, c = Double(p[i + 2]) - mean, d = Double(p[i + 3]) - mean
            v0 += a * a; v1 += b * b; v2 += c * c; v3 += d * d; i += 4
        }
        while i < count { let a = Double(p[i]) - mean; v0 += a * a; i += 1 }
        let variance = (v0 + v1 + v2 + v3) / Double(count)
        return (Float(mean), Float(1 / (variance + Double(eps)).squareRoot()))
    }

    /// Layer normalisation over the last dimension with optional affine weight/bias [D].
    public static func layerNorm(_ x: Tensor, weight: StoredTensor? = nil, bias: StoredTensor? = nil, eps: Float) throws -> Tensor {
        guard x.rank >= 1 else { throw TensorError("layerNorm: input must have at least one dimension") }
        let d = x.shape[x.rank - 1]
        let rows = d == 0 ? 0 : x.count / d
        var out = try Tensor(zeros: x.shape)
        try withOptionalVector(weight, count: d, role: "layerNorm weight") { wp in
            try withOptionalVector(bias, count: d, role: "layerNorm bias") { bp in
                x.withUnsafeBufferPointer { xs in
                    out.withUnsafeMutableBufferPointer { os in
                        let box = UnsafeSendableBox((xs.baseAddress!, os.baseAddress!, wp, bp))
                        Parallel.forRanges(rows, minPerChunk: max(1, 16384 / max(1, d))) { range in
                            let (xp, op, wp, bp) = box.value
                            for r in range {
                                let s = xp + r * d, o = op + r * d
                                let (mean, rstd) = meanRstd(s, d, eps: eps)
                                switch (wp, bp) {
                                case let (w?, b?): for i in 0..<d { o[i] = (s[i] - mean) * rstd * w[i] + b[i] }
                                case let (w?, nil): for i in 0..<d { o[i] = (s[i] - mean) * rstd * w[i] }
                                case let (nil, b?): for i in 0..<d { o[i] = (s[i] - mean) * rstd + b[i] }
                                case (nil, nil): for i in 0..<d { o[i] = (s[i] - mean) * rstd }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: - Softmax

    /// Numerically stable softmax over the last dimension.
    public static func softmax(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1 else { throw TensorError("softmax: input must have at least one dimension") }
        let d = x.shape[x.rank - 1]
        var out = x
        out.withUnsafeMutableBufferPointer { o in
            softmaxRows(o.baseAddress!, rows: d == 0 ? 0 : o.count / d, cols: d)
        }
        return out
    }

    /// In-place stable softmax of `rows` rows of length `cols` (row stride `cols`).
    static func softmaxRows(_ p: FloatPtr, rows: Int, cols: Int) {
        let box = UnsafeSendableBox(p)
        Parallel.forRanges(rows, minPerChunk: max(1, 16384 / max(1, cols))) { range in
            for r in range { softmaxRow(box.value + r * cols, cols) }
        }
    }

    @inline(__always)
    static func softmaxRow(_ row: FloatPtr, _ n: Int) {
        let inv = 1 / expShiftedRow(row, n)
        for j in 0..<n { row[j] *= inv }
    }

    /// Replaces row[j] by exp(row[j] − max) and returns the sum (a fully masked row of −inf
    /// gives zeros and sum 0, so normalising yields NaN as in torch).
    @inline(__always)
    static func expShiftedRow(_ row: FloatPtr, _ n: Int) -> Float {
        typealias V = SIMD16<Float>
        var mv = V(repeating: -.infinity)
        var i = 0
        while i + 16 <= n {
            let v = SIMDMath.load(row + i)
            mv.replace(with: v, where: v .> mv)
            i += 16
        }
        var m = mv.max()
        while i < n { m = max(m, row[i]); i += 1 }
        if m == -.infinity { m = 0 }
        let mb = V(repeating: m)
        var acc = V(repeating: 0)
        i = 0
        while i + 16 <= n {
            let e = SIMDMath.exp(SIMDMath.load(row + i) - mb)
            SIMDMath.store(e, row + i)
            acc += e
            i += 16
        }
        var sum = acc.sum()
        while i < n {
            var v = V(repeating: -.infinity)
            v[0] = row[i] - m
            let e = SIMDMath.exp(v)[0]
            row[i] = e
            sum += e
            i += 1
        }
        return sum
    }

    // MARK: - Activations

    /// Applies the vector function `f` element-wise into a new tensor, in parallel.
    @inline(__always)
    static func map(_ x: Tensor, _ f: (SIMD16<Float>) -> SIMD16<Float>) -> Tensor {
        var out = x
        out.withUnsafeMutableBufferPointer { o in
            let box = UnsafeSendableBox(o.baseAddress!)
            Parallel.forRanges(o.count, minPerChunk: 1 << 15) { range in
                let p = box.value + range.lowerBound
                SIMDMath.apply(p, p, range.count, f)
            }
        }
        return out
    }

    /// GELU with erf: x·Φ(x). erf is computed as torch's CPU kernels do (Abramowitz–Stegun 7.1.26,
    /// absolute error about 4e-7 in float), so results track torch's own GELU.
    public static func gelu(_ x: Tensor) -> Tensor { map(x, SIMDMath.gelu) }

    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public static func geluTanh(_ x: Tensor) -> Tensor {
        map(x) { v in v * 0.5 * (1 + SIMDMath.tanh((v + v * v * v * 0.044715) * 0.7978845608028654)) }
    }

    /// quick GELU (CLIP): x·σ(1.702·x).
    public static func quickGelu(_ x: Tensor) -> Tensor { map(x) { v in v / (1 + SIMDMath.exp(v * -1.702)) } }

    /// SiLU: x·σ(x).
    public static func silu(_ x: Tensor) -> Tensor { map(x, SIMDMath.silu) }

    /// GEGLU: split the last dimension in halves [a, g] and return a · gelu(g) (diffusers order).
    public static func geglu(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1, x.shape[x.rank - 1] % 2 == 0 else {
            throw TensorError("geglu: last dimension must be even, got shape \(x.shape)")
        }
        let d2 = x.shape[x.rank - 1], d = d2 / 2
        let rows = d2 == 0 ? 0 : x.count / d2
        var shape = x.shape
        shape[shape.count - 1] = d
        var out = try Tensor(zeros: shape)
        x.withUnsafeBufferPointer { xs in
            out.withUnsafeMutableBufferPointer { os in
                let box = UnsafeSendableBox((xs.baseAddress!, os.baseAddress!))
                Parallel.forRanges(rows, minPerChunk: max(1, 16384 / max(1, d))) { range in
                    let (xp, op) = box.value
                    for r in range {
                        let a = xp + r * d2, g = a + d, o = op + r * d
                        SIMDMath.apply(g, o, d, SIMDMath.gelu)
                        for i in 0..<d { o[i] *= a[i] }
                    }
                }
            }
        }
        return out
    }

    // MARK: - Shape operations

    /// Nearest-neighbour upsampling of x [N, C, H, W] to [N, C, height, width] with torch's
    /// `mode="nearest"` index rule: src = floor(dst · in / out).
    public static func upsampleNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        guard x.rank == 4 else { throw TensorError("upsampleNearest: input must be [N, C, H, W], got \(x.shape)") }
        guard height >= 1, width >= 1 else { throw TensorError("upsampleNearest: output size must be positive") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard h >= 1, w >= 1 else { throw TensorError("upsampleNearest: input \(x.shape) has an empty spatial dimension") }
        var out = try Tensor(zeros: [n, c, height, width])
        let sh = Float(h) / Float(height), sw = Float(w) / Float(width)
        let colIndex = (0..<width).map { min(Int((Float($0) * sw).rounded(.down)), w - 1) }
        let rowIndex = (0..<height).map { min(Int((Float($0) * sh).rounded(.down)), h - 1) }
        x.withUnsafeBufferPointer { xs in
            out.withUnsafeMutableBufferPointer { os in
                let box = UnsafeSendableBox((xs.baseAddress!, os.baseAddress!))
                Parallel.forRanges(n * c, minPerChunk: max(1, 16384 / max(1, height * width))) { range in
                    let (xp, op) = box.value
                    colIndex.withUnsafeBufferPointer { ci in
                        for plane in range {
                            let s = xp + plane * h * w, d = op + plane * height * width
                            for oy in 0..<height {
                                let srow = s + rowIndex[oy] * w, drow = d + oy * width
                                for ox in 0..<width { drow[ox] = srow[ci[ox]] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Nearest-neighbour 2× upsampling of [N, C, H, W].
    public static func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4 else { throw TensorError("upsampleNearest2x: input must be [N, C, H, W], got \(x.shape)") }
        return try upsampleNearest(x, height: 2 * x.shape[2], width: 2 * x.shape[3])
    }

    /// Concatenation along `axis` (1 = channels for NCHW); other dimensions must agree.
    public static func concat(_ xs: [Tensor], axis: Int) throws -> Tensor {
        guard let first = xs.first else { throw TensorError("concat: no tensors") }
        let rank = first.rank
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else { throw TensorError("concat: axis \(axis) out of range for rank \(rank)") }
        for t in xs where t.rank != rank || (0..<rank).contains(where: { $0 != a && t.shape[$0] != first.shape[$0] }) {
            throw TensorError("concat along axis \(axis): shapes \(xs.map(\.shape)) do not agree")
        }
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        var shape = first.shape
        shape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        var out = try Tensor(zeros: shape)
        let rowOut = shape[a] * inner
        out.withUnsafeMutableBufferPointer { o in
            var offset = 0
            for t in xs {
                let len = t.shape[a] * inner
                t.withUnsafeBufferPointer { s in
                    for i in 0..<outer where len > 0 {
                        (o.baseAddress! + i * rowOut + offset).update(from: s.baseAddress! + i * len, count: len)
                    }
                }
                offset += len
            }
        }
        return out
    }

    // MARK: - Attention

    /// Default query rows per attention chunk: the score scratch is `chunk × keys` floats
    /// (256 × 4096 × 4 B = 4 MiB at SD's 64×64 self-attention) instead of keys × keys (64 MiB per head).
    public static let defaultAttentionChunk = 256

    /// Scaled dot-product attention, multi-head, chunked over queries.
    /// query [B, Nq, H·D], key [B, Nk, H·D], value [B, Nk, H·Dv] → [B, Nq, H·Dv]; head h uses
    /// features h·D..<(h+1)·D (diffusers' head split). `mask` is additive, broadcastable to
    /// [B, H, Nq, Nk] (rank 2 to 4, each dimension full or 1). `causal` masks key j > query i
    /// (torch's top-left aligned `is_causal`). `scale` defaults to 1/√D. `chunk` query rows are
    /// processed at a time (scratch: chunk × Nk floats).
    public static func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int,
                                 mask: Tensor? = nil, causal: Bool = false, scale: Float? = nil,
                                 chunk: Int = defaultAttentionChunk) throws -> Tensor {
        guard query.rank == 3, key.rank == 3, value.rank == 3 else {
            throw TensorError("attention: query, key and value must be [B, N, H*D], got \(query.shape), \(key.shape), \(value.shape)")
        }
        let b = query.shape[0], nq = query.shape[1], hd = query.shape[2]
        let nk = key.shape[1], hdv = value.shape[2]
        guard heads >= 1, hd % heads == 0, hdv % heads == 0, key.shape[0] == b, value.shape[0] == b,
              key.shape[2] == hd, value.shape[1] == nk else {
            throw TensorError("attention: incompatible shapes query \(query.shape), key \(key.shape), value \(value.shape) with \(heads) heads")
        }
        let d = hd / heads, dv = hdv / heads
        let s = scale ?? 1 / Float(d).squareRoot()
        // Mask strides over (B, H, Nq, Nk); 0 for broadcast dimensions.
        var maskStrides = [0, 0, 0, 0]
        if let mask {
            guard (2...4).contains(mask.rank) else { throw TensorError("attention: mask must have rank 2 to 4, got \(mask.shape)") }
            let full = [b, heads, nq, nk]
            let ms = Array(repeating: 1, count: 4 - mask.rank) + mask.shape
            var stride = 1
            for i in (0..<4).reversed() {
                guard ms[i] == full[i] || ms[i] == 1 else {
                    throw TensorError("attention: mask \(mask.shape) does not broadcast to \(full)")
                }
                maskStrides[i] = ms[i] == 1 ? 0 : stride
                stride *= ms[i]
            }
        }
        try GEMM.checkDims(nq, nk, hd, hdv)
        var out = try Tensor(zeros: [b, nq, hdv])
        guard chunk >= 1 else { throw TensorError("attention: chunk must be >= 1") }
        let chunk = min(chunk, max(1, nq))
        let scores = TensorStorage(uninitializedCount: chunk * nk)
        let sums = TensorStorage(uninitializedCount: chunk)
        query.withUnsafeBufferPointer { qs in
            key.withUnsafeBufferPointer { ks in
                value.withUnsafeBufferPointer { vs in
                    out.withUnsafeMutableBufferPointer { os in
                        let maskPtr = mask?.storage.pointer
                        for bi in 0..<b {
                            for h in 0..<heads {
                                let q = qs.baseAddress! + bi * nq * hd + h * d
                                let k = ks.baseAddress! + bi * nk * hd + h * d
                                let v = vs.baseAddress! + bi * nk * hdv + h * dv
                                let o = os.baseAddress! + bi * nq * hdv + h * dv
                                var i0 = 0
                                while i0 < nq {
                                    let m = min(chunk, nq - i0)
                                    GEMM.sgemm(transB: true, m: m, n: nk, k: d, alpha: s, a: q + i0 * hd, lda: hd,
                                               b: k, ldb: hd, beta: 0, c: scores.pointer, ldc: nk)
                                    if let maskPtr {
                                        let base = maskPtr + bi * maskStrides[0] + h * maskStrides[1]
                                        addMask(scores.pointer, rows: m, cols: nk, mask: base + i0 * maskStrides[2],
                                                rowStride: maskStrides[2], colStride: maskStrides[3])
                                    }
                                    if causal {
                                        for r in 0..<m where i0 + r + 1 < nk {
                                            (scores.pointer + r * nk + i0 + r + 1).update(repeating: -.infinity, count: nk - (i0 + r + 1))
                                        }
                                    }
                                    // Unnormalised probabilities; the 1/sum goes onto the Dv-wide output rows.
                                    let sp = UnsafeSendableBox((scores.pointer, sums.pointer))
                                    Parallel.forRanges(m, minPerChunk: max(1, 16384 / max(1, nk))) { range in
                                        let (sc, su) = sp.value
                                        for r in range { su[r] = 1 / expShiftedRow(sc + r * nk, nk) }
                                    }
                                    GEMM.sgemm(m: m, n: dv, k: nk, a: scores.pointer, lda: nk, b: v, ldb: hdv,
                                               beta: 0, c: o + i0 * hdv, ldc: hdv)
                                    for r in 0..<m {
                                        let row = o + (i0 + r) * hdv, inv = sums.pointer[r]
                                        for j in 0..<dv { row[j] *= inv }
                                    }
                                    i0 += m
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    static func addMask(_ p: FloatPtr, rows: Int, cols: Int, mask: ConstPtr, rowStride: Int, colStride: Int) {
        for r in 0..<rows {
            let row = p + r * cols, mrow = mask + r * rowStride
            if colStride == 1 {
                for j in 0..<cols { row[j] += mrow[j] }
            } else {
                let v = mrow[0]
                for j in 0..<cols { row[j] += v }
            }
        }
    }
}
