import CKernels
import Foundation
import Tensor

/// 3×3 stride-1 convolution by Winograd F(2×2, 3×3): every 2×2 block of outputs (a tile) comes from a
/// 4×4 input tile; after the transforms in CKernels the convolution is 16 independent matrix
/// products M[ξ] = U[ξ]·V[ξ] (Cout × Cin times Cin × tiles), 16 multiply-adds per 4 outputs and input
/// channel instead of 36: 2.25× fewer flops than im2col + sgemm, with the products still in OpenBLAS.
/// The filter transform (16·Cout·Cin floats) is redone per call from the converted weight, so
/// nothing beyond the F16 weights stays resident; it costs about 1/tiles of the products.
enum WinogradConv {
    /// Worth it when both channel counts fill a GEMM and there are at least `minTiles` tiles for wide
    /// products (`Workspace.winogradMinTiles`, 64: below that, at the UNet's 8×8 level, im2col's
    /// batched GEMM is as fast).
    static func applies(cin: Int, cout: Int, tiles: Int, minTiles: Int = 64) -> Bool {
        cin >= 16 && cout >= 16 && tiles >= minTiles
    }

    /// y = conv3×3(x) + add(img, c) + residual, stride 1, any padding; shapes already checked by `Conv2d`.
    static func run(x: ConstPtr, n: Int, cin: Int, h: Int, w: Int, padding: Ops.Padding2D,
                    weights: ConstPtr, cout: Int, ho: Int, wo: Int, y: FloatPtr, residual: ConstPtr?,
                    add: (Int, Int) -> Float, _ ws: Workspace) {
        let tilesW = (wo + 1) / 2, tilesH = (ho + 1) / 2
        let perImage = tilesW * tilesH, total = n * perImage
        let hwo = ho * wo
        // Tiles per chunk: V (16·Cin·chunk) and M (16·Cout·chunk) stay within `winogradBudget` floats
        // each, so that both are still in the last-level cache when the next stage reads them.
        // At least 256 tiles per chunk: narrower products lose more in sgemm than the cache saves.
        let chunk = max(1, min(total, max(256, ws.winogradBudget / (16 * max(cin, cout)))))
        let u = ws.buffer(.winogradFilter, count: 16 * cout * cin)
        let v = ws.buffer(.columns, count: 16 * cin * chunk)
        let m = ws.buffer(.tile, count: 16 * cout * chunk)
        let box = UnsafeSendableBox((x, weights, y, residual, u, v, m))
        ws.measure("(conv3x3 winograd: filter transform)") {
            Parallel.forRanges(cout, minPerChunk: 1) { range in
                let (_, wts, _, _, u, _, _) = box.value
                ck_winograd_filter(wts, Int32(cout), Int32(cin), Int32(range.lowerBound), Int32(range.upperBound), u, cout * cin)
            }
        }
        var g0 = 0
        while g0 < total {
            let nc = min(chunk, total - g0)
            // Image segments of this chunk: tiles j0..<j1 of an image, from column `off`.
            let segs = ImageSegment.split(start: g0, count: nc, perImage: perImage)
            ws.measure("(conv3x3 winograd: input transform)") {
                Parallel.forRanges(cin, minPerChunk: max(1, 4096 / nc)) { range in
                    let (x, _, _, _, _, v, _) = box.value
                    for ci in range {
                        for s in segs {
                            ck_winograd_input(x + (s.img * cin + ci) * h * w, Int32(h), Int32(w), Int32(padding.top), Int32(padding.left),
                                              Int32(tilesW), Int32(s.j0), Int32(s.count), v + ci * nc + s.off, cin * nc)
                        }
                    }
                }
            }
            ws.measure("(conv3x3 winograd: 16 sgemm)") {
                for xi in 0..<16 {
                    GEMM.sgemm(m: cout, n: nc, k: cin, a: u + xi * cout * cin, lda: cin, b: v + xi * cin * nc, ldb: nc,
                               beta: 0, c: m + xi * cout * nc, ldc: nc)
                }
            }
            ws.measure("(conv3x3 winograd: output transform)") {
                Parallel.forRanges(cout, minPerChunk: max(1, 4096 / nc)) { range in
                    let (_, _, y, res, _, _, m) = box.value
                    for co in range {
                        for s in segs {
                            let plane = (s.img * cout + co) * hwo
                            ck_winograd_output(m + co * nc + s.off, cout * nc, Int32(tilesW), Int32(s.j0), Int32(s.count),
                                               y + plane, Int32(ho), Int32(wo), add(s.img, co), res.map { $0 + plane })
                        }
                    }
                }
            }
            g0 += nc
        }
    }
}
