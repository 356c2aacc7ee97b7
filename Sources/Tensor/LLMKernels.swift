import Dispatch
import Foundation

/// Row-wise kernels of Llama-architecture decoders on raw Float buffers: RMSNorm, rotary embeddings
/// (transformers' rotate_half convention), embedding-row lookup in the stored dtype, and causal attention
/// of new queries against a key/value cache (grouped-query heads).
public enum LLMKernels {
    /// `out[i, :] = weight ⊙ x[i, :] / sqrt(mean(x[i, :]²) + eps)` for `n` rows of `dim` floats
    /// (transformers' LlamaRMSNorm computed in f32). `out` may equal `x`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, n: Int, dim: Int, weight: UnsafePointer<Float>, eps: Float,
                               out: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let row = x + i * dim, o = out + i * dim
            var acc = SIMD16<Float>()
            var c = 0
            let raw = UnsafeRawPointer(row)
            while c + 16 <= dim {
                let v = raw.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                acc += v * v
                c += 16
            }
            var ss = acc.sum()
            while c < dim { ss += row[c] * row[c]; c += 1 }
            let inv = 1 / (ss / Float(dim) + eps).squareRoot()
            for j in 0..<dim { o[j] = weight[j] * (row[j] * inv) }
        }
    }

    /// Applies rotary position embeddings in place to `n` rows of `heads × headDim` floats (row stride
    /// `heads * headDim`); row `i` is at position `startPosition + i`. `invFreq` has `headDim / 2` entries.
    /// As transformers: angle = Float(position) · invFreq[j] (f32), x' = x·cos + rotate_half(x)·sin with
    /// rotate_half(x) = [-x₂, x₁] over the two halves of each head.
    public static func rope(_ x: UnsafeMutablePointer<Float>, n: Int, heads: Int, headDim: Int, startPosition: Int,
                            invFreq: UnsafePointer<Float>) {
        let half = headDim / 2
        let cs = UnsafeMutablePointer<Float>.allocate(capacity: 2 * half)
        defer { cs.deallocate() }
        for i in 0..<n {
            let pos = Float(startPosition + i)
            for j in 0..<half {
                let angle = pos * invFreq[j]
                cs[j] = Float(Foundation.cos(Double(angle)))
                cs[half + j] = Float(Foundation.sin(Double(angle)))
            }
            let row = x + i * heads * headDim
            for h in 0..<heads {
                let v = row + h * headDim
                for j in 0..<half {
                    let a = v[j], b = v[j + half], c = cs[j], s = cs[half + j]
                    v[j] = a * c - b * s
                    v[j + half] = b * c + a * s
                }
            }
        }
    }

    /// Copies row `row` of a 2-D stored tensor (f32/f16/bf16) into `out` as Floats.
    public static func copyRow(_ table: StoredTensor, row: Int, into out: UnsafeMutablePointer<Float>) throws {
        guard table.shape.count == 2, row >= 0, row < table.shape[0] else {
            throw TensorError("row \(row) is outside \"\(table.key)\" from \(table.source) of shape \(table.shape)")
        }
        guard table.dtype.isFloatingPoint, let base = table.bytes.baseAddress else {
            throw TensorError("\"\(table.key)\" from \(table.source) has dtype \(table.dtype.rawValue); expected a float type")
        }
        let cols = table.shape[1]
        FloatConversion.convert(base + row * cols * table.dtype.byteSize, dtype: table.dtype, count: cols, into: out)
    }

    /// Causal attention of `n` new queries against a key/value cache.
    ///
    /// `q` is [n, heads, headDim]; `out` receives [n, heads, headDim]. The cache of kv head `g` holds keys at
    /// `keys + g * kvHeadStride + t * headDim` for positions `t` in `0..<past + n` (the new tokens' keys and
    /// values already written at `past..<past + n`); likewise `values`. Query `i` (position `past + i`) attends
    /// to positions `0...past + i`. Query head `h` uses kv head `h / (heads / kvHeads)`. Scores are scaled by
    /// `scale` and soft-maxed in f32. Work is split over heads. With a sliding `window`, query `i` sees only
    /// positions `past + i − window + 1 ... past + i` (transformers' `kv_idx > q_idx − sliding_window`).
    public static func cachedAttention(q: UnsafePointer<Float>, n: Int, heads: Int, kvHeads: Int, headDim: Int,
                                       keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvHeadStride: Int,
                                       past: Int, scale: Float, window: Int? = nil, out: UnsafeMutablePointer<Float>) {
        let group = heads / kvHeads
        let total = past + n
        let args = UnsafeSendableBox((q, keys, values, out))
        let body: @Sendable (Range<Int>) -> Void = { hs in
            let (q, keys, values, out) = args.value
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: total)
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: headDim)
            defer { scores.deallocate(); acc.deallocate() }
            for h in hs {
                let g = h / group
                let kBase = keys + g * kvHeadStride, vBase = values + g * kvHeadStride
                for i in 0..<n {
                    let qv = q + (i * heads + h) * headDim
                    let len = past + i + 1
                    let start = window.map { max(0, len - $0) } ?? 0
                    var mx = -Float.infinity
                    for t in start..<len {
                        let s = dot(qv, kBase + t * headDim, headDim) * scale
                        scores[t] = s
                        mx = max(mx, s)
                    }
                    var sum: Float = 0
                    for t in start..<len {
                        let e = Float(Foundation.exp(Double(scores[t] - mx)))
                        scores[t] = e
                        sum += e
                    }
                    let inv = 1 / sum
                    acc.update(repeating: 0, count: headDim)
                    for t in start..<len {
                        let p = scores[t] * inv, v = vBase + t * headDim
                        for d in 0..<headDim { acc[d] += p * v[d] }
                    }
                    (out + (i * heads + h) * headDim).update(from: acc, count: headDim)
                }
            }
        }
        let work = heads * n * total * headDim
        let workers = min(heads, Parallel.workerCount)
        if workers <= 1 || work < 1 << 14 {
            body(0..<heads)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { c in
                body(heads * c / workers..<heads * (c + 1) / workers)
            }
        }
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var c = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while c + 16 <= n {
            acc += ra.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
            c += 16
        }
        var s = acc.sum()
        while c < n { s += a[c] * b[c]; c += 1 }
        return s
    }

    /// `x[i] = silu(gate[i]) · x[i]` for `count` floats (the SwiGLU product), split over workers.
    public static func swiGLU(gate: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count: Int) {
        let args = UnsafeSendableBox((gate, x))
        Parallel.forRanges(count, minPerChunk: 1 << 15) { r in
            let (g, x) = args.value
            var i = r.lowerBound
            let rg = UnsafeRawPointer(g), rx = UnsafeMutableRawPointer(x)
            while i + 16 <= r.upperBound {
                let gv = rg.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                let xv = rx.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                rx.storeBytes(of: SIMDMath.silu(gv) * xv, toByteOffset: 4 * i, as: SIMD16<Float>.self)
                i += 16
            }
            while i < r.upperBound {
                let gv = g[i]
                x[i] = gv / (1 + Float(Foundation.exp(Double(-gv)))) * x[i]
                i += 1
            }
        }
    }
}
