// Benchmarks for the Tensor kernels at SD1.5 sizes (not a test). Build and run with
//   tools/tensor/bench.sh            (release build, OPENBLAS_CORETYPE=SkylakeX)
// Prints the median and the minimum of several runs per case (and the rates they give), plus the
// load average, since the machine is shared. BENCH_ATTENTION_SWEEP=1 times attention chunk sizes.
import CBLAS
import Foundation

@main
struct Bench {
    /// Median and minimum wall time of `runs` runs after one warm-up run. On a shared machine the
    /// minimum is the better estimate of the kernel's own speed.
    static func median(_ runs: Int, _ body: () throws -> Void) rethrows -> (median: Double, min: Double) {
        try body() // warm-up
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        return (times[times.count / 2], times[0])
    }

    static func report(_ name: String, seconds t: (median: Double, min: Double), flops: Double? = nil, bytes: Double? = nil) {
        var line = String(format: "%-44@ median %9.2f ms  min %9.2f ms", name as NSString, t.median * 1e3, t.min * 1e3)
        if let flops { line += String(format: "   %6.1f / %6.1f GFLOP/s", flops / t.median / 1e9, flops / t.min / 1e9) }
        if let bytes { line += String(format: "   %6.2f / %6.2f GB/s", bytes / t.median / 1e9, bytes / t.min / 1e9) }
        print(line)
    }

    static func random(_ shape: [Int], seed: UInt64) throws -> Tensor {
        var g = TorchGenerator(seed: seed)
        return try g.randn(shape)
    }

    static func main() throws {
        let env = ProcessInfo.processInfo.environment
        if let load = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) { print("loadavg \(load.split(separator: " ").prefix(3).joined(separator: " "))") }
        print("OPENBLAS_CORETYPE=\(env["OPENBLAS_CORETYPE"] ?? "(unset)")  core \(String(cString: openblas_get_corename()))  OpenBLAS threads \(GEMM.threadCount)  workers \(Parallel.workerCount)")
        if env["BENCH_ATTENTION_SWEEP"] != nil {
            let q = try random([2, 4096, 320], seed: 6), k = try random([2, 4096, 320], seed: 7), v = try random([2, 4096, 320], seed: 8)
            for chunk in [32, 64, 128, 256, 512, 1024] {
                let ta = try median(5) { _ = try Ops.attention(query: q, key: k, value: v, heads: 8, chunk: chunk) }
                report("attention [2,4096,320] 8 heads chunk \(chunk)", seconds: ta, flops: 2 * 2 * 8 * 4096 * 4096 * 40 * 2)
            }
            return
        }
        if env["BENCH_ONLY_ELEMENTWISE"] != nil {
            let small = try random([1 << 20], seed: 20)
            let ts = try median(21) { _ = Ops.silu(small) }
            report("silu 1M elements (cache resident)", seconds: ts, bytes: Double(small.count) * 8)
            let te = try median(21) { _ = Ops.gelu(small) }
            report("gelu 1M elements (cache resident)", seconds: te, bytes: Double(small.count) * 8)
            let tcopy = try median(21) { var c = small; c.withUnsafeMutableBufferPointer { $0[0] = 1 } }
            report("copy 1M elements", seconds: tcopy, bytes: Double(small.count) * 8)
            return
        }

        // sgemm 4096^3
        let n = 4096
        let a = try random([n, n], seed: 1), b = try random([n, n], seed: 2)
        var c = try Tensor(zeros: [n, n])
        let tg = median(5) {
            c.withUnsafeMutableBufferPointer { cp in
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        GEMM.sgemm(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
        }
        report("sgemm 4096x4096x4096", seconds: tg, flops: 2 * pow(Double(n), 3))

        // 3x3 conv [1,320,64,64] -> 320, pad 1 (UNet down block 1)
        let x = try random([1, 320, 64, 64], seed: 3)
        let wConv = StoredTensor(try random([320, 320, 3, 3], seed: 4), key: "w")
        let bConv = StoredTensor(try random([320], seed: 5), key: "b")
        let tc = try median(7) { _ = try Ops.conv2d(x, weight: wConv, bias: bConv, padding: .init(1)) }
        report("conv2d 3x3 [1,320,64,64]->320 pad 1", seconds: tc, flops: 2 * 320 * 320 * 9 * 4096)
        let x2 = try random([2, 320, 64, 64], seed: 3)
        let tc2 = try median(5) { _ = try Ops.conv2d(x2, weight: wConv, bias: bConv, padding: .init(1)) }
        report("conv2d 3x3 [2,320,64,64]->320 pad 1", seconds: tc2, flops: 2 * 2 * 320 * 320 * 9 * 4096)
        // f16-stored weight (converted per call)
        let wHalf = try StoredTensor(key: "w16", dtype: .f16, shape: [320, 320, 3, 3],
                                     bytes: wConv.withFloats { FloatConversion.encode($0, as: .f16) })
        let tch = try median(7) { _ = try Ops.conv2d(x, weight: wHalf, bias: bConv, padding: .init(1)) }
        report("conv2d same, f16 weight", seconds: tch, flops: 2 * 320 * 320 * 9 * 4096)

        // Self-attention at 64x64, CFG batch 2, 8 heads of 40
        let q = try random([2, 4096, 320], seed: 6), k = try random([2, 4096, 320], seed: 7), v = try random([2, 4096, 320], seed: 8)
        let ta = try median(3) { _ = try Ops.attention(query: q, key: k, value: v, heads: 8) }
        report("attention [2,4096,320] 8 heads (chunk 256)", seconds: ta, flops: 2 * 2 * 8 * 4096 * 4096 * 40 * 2)
        // Cross-attention 4096 x 77
        let kc = try random([2, 77, 320], seed: 9), vc = try random([2, 77, 320], seed: 10)
        let tx = try median(7) { _ = try Ops.attention(query: q, key: kc, value: vc, heads: 8) }
        report("cross-attention [2,4096,320] x 77", seconds: tx, flops: 2 * 2 * 8 * 4096 * 77 * 40 * 2)

        // Linear: GEGLU projection 320 -> 2560 over 2*4096 tokens
        let tokens = try random([2, 4096, 320], seed: 11)
        let wLin = StoredTensor(try random([2560, 320], seed: 12), key: "proj")
        let tl = try median(5) { _ = try Ops.linear(tokens, weight: wLin) }
        report("linear [8192,320] x [2560,320]^T", seconds: tl, flops: 2 * 8192 * 320 * 2560)

        // Element-wise and normalisation
        let big = try random([2, 4096, 2560], seed: 13)
        let tgg = try median(5) { _ = try Ops.geglu(big) }
        report("geglu [2,4096,2560] -> 1280", seconds: tgg, bytes: Double(big.count) * 4 * 1.5)
        let tgelu = median(5) { _ = Ops.gelu(big) }
        report("gelu (erf) 21M elements", seconds: tgelu, bytes: Double(big.count) * 8)
        let tsilu = median(5) { _ = Ops.silu(big) }
        report("silu 21M elements", seconds: tsilu, bytes: Double(big.count) * 8)
        let gnW = StoredTensor(try random([320], seed: 14), key: "gw"), gnB = StoredTensor(try random([320], seed: 15), key: "gb")
        let tgn = try median(7) { _ = try Ops.groupNorm(x2, groups: 32, weight: gnW, bias: gnB, eps: 1e-5, fusedSiLU: true) }
        report("groupNorm+SiLU [2,320,64,64]", seconds: tgn, bytes: Double(x2.count) * 8)
        let lnIn = try random([2, 4096, 320], seed: 16)
        let tln = try median(7) { _ = try Ops.layerNorm(lnIn, weight: gnW, bias: gnB, eps: 1e-5) }
        report("layerNorm [2,4096,320]", seconds: tln, bytes: Double(lnIn.count) * 8)
        let sm = try random([256, 4096], seed: 17)
        let tsm = try median(7) { _ = try Ops.softmax(sm) }
        report("softmax [256,4096]", seconds: tsm, bytes: Double(sm.count) * 8)

        // Conversions and RNG
        let count = 1 << 24
        let halfBytes = (0..<count).map { UInt16(truncatingIfNeeded: $0 &* 2654435761) & 0x7bff }
        var dst = [Float](repeating: 0, count: count)
        let th = median(7) {
            halfBytes.withUnsafeBytes { src in
                dst.withUnsafeMutableBufferPointer { FloatConversion.convert(src.baseAddress!, dtype: .f16, count: count, into: $0.baseAddress!) }
            }
        }
        report("f16 -> f32, 16M elements", seconds: th, bytes: Double(count) * 6)
        let tb = median(7) {
            halfBytes.withUnsafeBytes { src in
                dst.withUnsafeMutableBufferPointer { FloatConversion.convert(src.baseAddress!, dtype: .bf16, count: count, into: $0.baseAddress!) }
            }
        }
        report("bf16 -> f32, 16M elements", seconds: tb, bytes: Double(count) * 6)
        var gen = TorchGenerator(seed: 0)
        let tr = try median(7) { _ = try gen.randn([1, 4, 64, 64]) }
        report("randn [1,4,64,64]", seconds: tr)
    }
}
