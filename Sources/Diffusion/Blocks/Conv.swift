import Foundation
import Tensor

/// 2-D convolution, NCHW, weight [Cout, Cin, kH, kW] in its stored dtype (converted per call into the
/// workspace), bias Float32. 3×3 stride-1 convolutions with enough channels and tiles go through
/// Winograd F(2×2, 3×3) (`WinogradConv`, 2.25× fewer flops); the rest use im2col (chunked over
/// output positions) + one sgemm per chunk; a 1×1
/// stride-1 convolution multiplies the input directly. At small resolutions the images of a batch
/// share one GEMM (more columns per weight pass). Bias, a per-(image, channel) bias (the ResNet
/// time embedding) and a residual are fused into the output pass.
public struct Conv2d: Sendable {
    public let weight: StoredTensor
    public let bias: StoredTensor?
    public let inChannels: Int, outChannels: Int, kernel: Int
    public let stride: Int
    public let padding: Ops.Padding2D

    public init(_ r: WeightReader, _ name: String, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1,
                padding: Ops.Padding2D, bias: Bool = true) throws {
        weight = try r.stored("\(name).weight", shape: [cout, cin, kernel, kernel])
        self.bias = bias ? try r.float32("\(name).bias", shape: [cout]) : nil
        inChannels = cin
        outChannels = cout
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    /// conv(x) + bias + channelBias[b, c] + residual.
    func callAsFunction(_ x: Tensor, _ ws: Workspace, residual: Tensor? = nil, channelBias: Tensor? = nil) throws -> Tensor {
        try ws.measure("conv\(kernel)x\(kernel)") { try run(x, ws, residual: residual, channelBias: channelBias) }
    }

    private func run(_ x: Tensor, _ ws: Workspace, residual: Tensor?, channelBias: Tensor?) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels else {
            throw shapeError("conv \(weight.key)", x.shape, expected: "[N, \(inChannels), H, W]")
        }
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let hp = h + padding.top + padding.bottom, wp = w + padding.left + padding.right
        guard hp >= kernel, wp >= kernel else {
            throw shapeError("conv \(weight.key)", x.shape, expected: "a padded size of at least \(kernel)×\(kernel)")
        }
        let ho = (hp - kernel) / stride + 1, wo = (wp - kernel) / stride + 1
        let hwo = ho * wo
        let cout = outChannels, kdim = inChannels * kernel * kernel
        let outShape = [n, cout, ho, wo]
        if let residual, residual.shape != outShape {
            throw shapeError("conv \(weight.key) residual", residual.shape, expected: "\(outShape)")
        }
        if let channelBias, channelBias.shape != [n, cout] {
            throw shapeError("conv \(weight.key) channel bias", channelBias.shape, expected: "[\(n), \(cout)]")
        }
        let wts = try ws.floats(weight)
        let geo = Im2Col(c: inChannels, h: h, w: w, k: kernel, s: stride, pt: padding.top, pl: padding.left, ho: ho, wo: wo)
        let direct = kernel == 1 && stride == 1 && padding == Ops.Padding2D(0)
        let b = bias.map(f32Pointer)
        let cb = channelBias?.storage.pointer
        let res = residual?.storage.pointer
        let hasAdd = b != nil || cb != nil || res != nil
        @inline(__always) func value(_ img: Int, _ c: Int) -> Float { (b?[c] ?? 0) + (cb?[img * cout + c] ?? 0) }
        let budget = max(ws.columnBudget, kdim, cout)
        if kernel == 3, stride == 1, ws.useWinograd,
           WinogradConv.applies(cin: inChannels, cout: cout, tiles: n * ((ho + 1) / 2) * ((wo + 1) / 2), minTiles: ws.winogradMinTiles) {
            return try Tensor(shape: outShape) { outBuf in
                x.withUnsafeBufferPointer { xs in
                    WinogradConv.run(x: xs.baseAddress!, n: n, cin: inChannels, h: h, w: w, padding: padding, weights: wts,
                                     cout: cout, ho: ho, wo: wo, y: outBuf.baseAddress!, residual: res.map { UnsafePointer($0) },
                                     add: value, ws)
                }
            }
        }
        return try Tensor(shape: outShape) { outBuf in
            let y = outBuf.baseAddress!
            x.withUnsafeBufferPointer { xs in
                let xp = xs.baseAddress!
                if n == 1 || hwo >= 512 {
                    for img in 0..<n {
                        let dst = y + img * cout * hwo
                        if hasAdd {
                            let box = UnsafeSendableBox((dst, res.map { $0 + img * cout * hwo }))
                            Parallel.forRanges(cout, minPerChunk: max(1, 16384 / max(1, hwo))) { range in
                                let (dst, r) = box.value
                                for c in range {
                                    let d = dst + c * hwo, v = value(img, c)
                                    if let r { let s = r + c * hwo; for j in 0..<hwo { d[j] = s[j] + v } } else { d.update(repeating: v, count: hwo) }
                                }
                            }
                        }
                        let beta: Float = hasAdd ? 1 : 0
                        let src = xp + img * inChannels * h * w
                        if direct {
                            GEMM.sgemm(m: cout, n: hwo, k: kdim, a: wts, lda: kdim, b: src, ldb: hwo, beta: beta, c: dst, ldc: hwo)
                            continue
                        }
                        let chunk = max(1, min(hwo, budget / kdim))
                        let cols = ws.buffer(.columns, count: kdim * chunk)
                        var n0 = 0
                        while n0 < hwo {
                            let nc = min(chunk, hwo - n0)
                            geo.fill(src, columns: n0..<(n0 + nc), into: cols, ld: nc)
                            GEMM.sgemm(m: cout, n: nc, k: kdim, a: wts, lda: kdim, b: cols, ldb: nc, beta: beta, c: dst + n0, ldc: hwo)
                            n0 += nc
                        }
                    }
                } else {
                    // Small images: columns of all images side by side, one GEMM per chunk, then scatter.
                    let total = n * hwo
                    let chunk = max(1, min(total, budget / max(kdim, cout)))
                    let cols = ws.buffer(.columns, count: kdim * chunk)
                    let tile = ws.buffer(.tile, count: cout * chunk)
                    var g0 = 0
                    while g0 < total {
                        let nc = min(chunk, total - g0)
                        let segs = ImageSegment.split(start: g0, count: nc, perImage: hwo)
                        for s in segs {
                            geo.fill(xp + s.img * inChannels * h * w, columns: s.j0..<s.j1, into: cols + s.off, ld: nc)
                        }
                        GEMM.sgemm(m: cout, n: nc, k: kdim, a: wts, lda: kdim, b: cols, ldb: nc, beta: 0, c: tile, ldc: nc)
                        let box = UnsafeSendableBox((y, tile, res))
                        Parallel.forRanges(cout, minPerChunk: max(1, 16384 / max(1, nc))) { range in
                            let (y, tile, res) = box.value
                            for c in range {
                                for s in segs {
                                    let v = value(s.img, c)
                                    let d = y + (s.img * cout + c) * hwo
                                    let t = tile + c * nc + s.off - s.j0
                                    if let res {
                                        let r = res + (s.img * cout + c) * hwo
                                        for j in s.j0..<s.j1 { d[j] = t[j] + v + r[j] }
                                    } else {
                                        for j in s.j0..<s.j1 { d[j] = t[j] + v }
                                    }
                                }
                            }
                        }
                        g0 += nc
                    }
                }
            }
        }
    }
}

/// im2col geometry of one image: rows (c, ki, kj), columns = output positions.
struct Im2Col: Sendable {
    let c, h, w, k, s, pt, pl, ho, wo: Int

    /// Writes rows × `columns` into `dst` (row stride `ld`), split over threads by rows.
    func fill(_ src: ConstPtr, columns: Range<Int>, into dst: FloatPtr, ld: Int) {
        let rows = c * k * k
        let g = self
        let box = UnsafeSendableBox((src, dst))
        Parallel.forRanges(rows, minPerChunk: max(1, 8192 / max(1, columns.count))) { range in
            let (src, dst) = box.value
            for r in range {
                let ch = r / (g.k * g.k), ki = (r / g.k) % g.k, kj = r % g.k
                let plane = src + ch * g.h * g.w
                let row = dst + r * ld - columns.lowerBound
                let off = kj - g.pl
                // Output columns ow with 0 <= ow*s + off < w.
                let owLo = off >= 0 ? 0 : (-off + g.s - 1) / g.s
                let owHi = g.w - off <= 0 ? 0 : min(g.wo, (g.w - off + g.s - 1) / g.s)
                var col = columns.lowerBound
                while col < columns.upperBound {
                    let oh = col / g.wo, owStart = col % g.wo
                    let owEnd = min(g.wo, owStart + (columns.upperBound - col))
                    let out = row + col - owStart
                    let ih = oh * g.s - g.pt + ki
                    if ih < 0 || ih >= g.h {
                        (out + owStart).update(repeating: 0, count: owEnd - owStart)
                    } else {
                        let line = plane + ih * g.w + off
                        let lo = max(owStart, min(owLo, owEnd)), hi = max(lo, min(owEnd, owHi))
                        if lo > owStart { (out + owStart).update(repeating: 0, count: lo - owStart) }
                        if g.s == 1 {
                            if hi > lo { (out + lo).update(from: line + lo, count: hi - lo) }
                        } else {
                            for ow in lo..<hi { out[ow] = line[ow * g.s] }
                        }
                        if owEnd > hi { (out + hi).update(repeating: 0, count: owEnd - hi) }
                    }
                    col += owEnd - owStart
                }
            }
        }
    }
}

/// A run of consecutive columns of one image inside a chunk that spans images: columns `j0..<j1` of image `img`,
/// stored from column `off` of the chunk. Used by the im2col and Winograd convolutions, which both batch the
/// columns (output pixels or tiles) of several small images into one GEMM.
struct ImageSegment {
    let img: Int, j0: Int, j1: Int, off: Int
    var count: Int { j1 - j0 }

    /// Splits the global columns `start ..< start + count` (image-major, `perImage` columns per image).
    static func split(start: Int, count: Int, perImage: Int) -> [ImageSegment] {
        var segs: [ImageSegment] = []
        var g = start
        while g < start + count {
            let img = g / perImage, j0 = g % perImage, j1 = min(perImage, j0 + (start + count - g))
            segs.append(ImageSegment(img: img, j0: j0, j1: j1, off: g - start))
            g += j1 - j0
        }
        return segs
    }
}
