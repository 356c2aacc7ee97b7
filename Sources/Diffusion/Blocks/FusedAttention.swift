import Foundation
import Tensor

/// Attention without materialised probabilities: per (image, head) and tile of query rows, the
/// scores `scale·Q·Kᵀ` go into a cache-sized tile (sgemm), each row is exponentiated in place
/// around its maximum with the sum kept aside (one pass, no normalising pass), `tile·V` is written
/// straight into the output rows (sgemm), and those rows are divided by their sums. Equivalent to
/// softmax-then-matmul up to float rounding. (Tensor's `Ops.attention` normalises the scores in a
/// separate pass and allocates per call; this kernel was added here for the UNet's 64² self-attention.)
/// Superseded in the models by `BlockedAttention` (CKernels, about 2× faster: OpenBLAS is slow on
/// the head-width-40 products); kept as an sgemm-based second implementation for tests and
/// `BENCH_ATTN=1`.
enum FusedAttention {
    typealias V = SIMD16<Float>

    /// Score floats per tile (4 MiB: 256 query rows at 4096 keys; measured best of 64, 256 and 1024 rows).
    static let tileFloats = 1 << 20

    static func run(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float) throws -> Tensor {
        let (b, nq, hd) = (q.shape[0], q.shape[1], q.shape[2])
        let nk = k.shape[1], hdv = v.shape[2]
        guard heads >= 1, hd % heads == 0, hdv % heads == 0, k.shape[0] == b, v.shape[0] == b, k.shape[2] == hd, v.shape[1] == nk, nk >= 1 else {
            throw DiffusionError("attention: incompatible shapes query \(q.shape), key \(k.shape), value \(v.shape) with \(heads) heads")
        }
        let d = hd / heads, dv = hdv / heads
        let rows = max(1, min(nq, tileFloats / nk))
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: rows * nk + rows)
        defer { tile.deallocate() }
        let inv = tile + rows * nk
        return try Tensor(shape: [b, nq, hdv]) { o in
            q.withUnsafeBufferPointer { qs in
                k.withUnsafeBufferPointer { ks in
                    v.withUnsafeBufferPointer { vs in
                        for bi in 0..<b {
                            for h in 0..<heads {
                                let qp = qs.baseAddress! + bi * nq * hd + h * d
                                let kp = ks.baseAddress! + bi * nk * hd + h * d
                                let vp = vs.baseAddress! + bi * nk * hdv + h * dv
                                let op = o.baseAddress! + bi * nq * hdv + h * dv
                                var i0 = 0
                                while i0 < nq {
                                    let m = min(rows, nq - i0)
                                    GEMM.sgemm(transB: true, m: m, n: nk, k: d, alpha: scale, a: qp + i0 * hd, lda: hd,
                                               b: kp, ldb: hd, beta: 0, c: tile, ldc: nk)
                                    expRows(tile, rows: m, cols: nk, inverseSums: inv)
                                    GEMM.sgemm(m: m, n: dv, k: nk, a: tile, lda: nk, b: vp, ldb: hdv, beta: 0, c: op + i0 * hdv, ldc: hdv)
                                    for r in 0..<m {
                                        let row = op + (i0 + r) * hdv, s = inv[r]
                                        for j in 0..<dv { row[j] *= s }
                                    }
                                    i0 += m
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Row r ← exp(row − max(row)); inverseSums[r] = 1 / Σ. Rows split over threads.
    static func expRows(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int, inverseSums: UnsafeMutablePointer<Float>) {
        let box = UnsafeSendableBox((p, inverseSums))
        Parallel.forRanges(rows, minPerChunk: max(1, 32768 / cols)) { range in
            let (p, inv) = box.value
            for r in range {
                let row = p + r * cols
                var mv = V(repeating: -.infinity)
                var i = 0
                while i + 16 <= cols {
                    let x = load(row + i)
                    mv.replace(with: x, where: x .> mv)
                    i += 16
                }
                var mx = mv.max()
                while i < cols { mx = max(mx, row[i]); i += 1 }
                let mb = V(repeating: mx)
                var acc = V(repeating: 0)
                i = 0
                while i + 16 <= cols {
                    let e = exp(load(row + i) - mb)
                    store(e, row + i)
                    acc += e
                    i += 16
                }
                var sum = acc.sum()
                while i < cols {
                    var t = V(repeating: -.infinity)
                    t[0] = row[i] - mx
                    let e = exp(t)[0]
                    row[i] = e
                    sum += e
                    i += 1
                }
                inv[r] = 1 / sum
            }
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// e^x: Tensor's SIMDMath.exp (Cephes expf, about 1 ulp; 0 below −87.3).
    @inline(__always)
    static func exp(_ input: V) -> V { SIMDMath.exp(input) }
}
