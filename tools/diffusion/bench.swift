// Benchmark (not a test): full-size SD1.5 UNet and VAE with random F16 weights generated here
// (shapes from Tests/DiffusionTests/Fixtures/sd15-keymap.tsv), built by tools/diffusion/bench.sh.
// Prints seconds per call (median), GFLOP/s, weight-conversion time per call and peak RSS.
#if canImport(Glibc)
import Glibc
#endif
import CKernels
import Foundation
import Tensor

/// Random F16 weights for every key of one component (uniform ±√(3/fan_in); norm scales 1, biases 0.01·u).
final class RandomF16Source: TensorSource, @unchecked Sendable {
    let name: String
    let shapes: [String: [Int]]
    var keys: [String] { shapes.keys.sorted() }
    private var made: [String: StoredTensor] = [:]
    private var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    init(component: String, table: String) throws {
        name = "random-f16 \(component)"
        var s: [String: [Int]] = [:]
        for line in try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n").dropFirst() {
            let f = line.split(separator: "\t")
            guard f.count == 4, f[1].hasPrefix(component + "/") else { continue }
            let shape = f[2].dropFirst().dropLast().split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces))! }
            s[String(f[1].dropFirst(component.count + 1))] = shape
        }
        shapes = s
    }

    func contains(_ key: String) -> Bool { shapes[key] != nil }

    func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor {
        if let t = made[key] { return t }
        guard let shape = shapes[key] else { throw .missingKey(key: key, file: name, suggestions: []) }
        let n = shape.reduce(1, *)
        var bytes = [UInt8](repeating: 0, count: 2 * n)
        let fanIn = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : 1
        let a = Float(shape.count >= 2 ? (3.0 / Double(fanIn)).squareRoot() : 0.01)
        let isScale = shape.count == 1 && key.hasSuffix("weight")
        bytes.withUnsafeMutableBytes { raw in
            let p = raw.bindMemory(to: UInt16.self)
            for i in 0..<n {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                let u = Float(state >> 40) / Float(1 << 24) * 2 - 1
                p[i] = Float16(isScale ? 1 + 0.01 * u : a * u).bitPattern
            }
        }
        let t = try StoredTensor(key: key, dtype: .f16, shape: shape, bytes: bytes)
        made[key] = t
        return t
    }
}

func peakRSSGiB() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / (1024 * 1024)
}

func currentRSSGiB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let pages = Double(s.split(separator: " ")[1]) ?? 0
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_073_741_824
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

/// sgemm rate right now (the machine is shared: read the model's rate against this).
func sgemmGFLOPs(_ n: Int = 2048) -> Double {
    let a = [Float](repeating: 0.5, count: n * n), b = a
    var c = [Float](repeating: 0, count: n * n)
    var best = 0.0
    for _ in 0..<3 {
        let t0 = now()
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            GEMM.sgemm(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
        } } }
        best = max(best, 2 * Double(n * n * n) / (now() - t0) / 1e9)
    }
    return best
}

func printProfile(_ ws: Workspace, calls: Int) {
    for (k, v) in ws.profile.sorted(by: { $0.value > $1.value }) { print(String(format: "    %-28@ %6.2f s per call", k as NSString, v / Double(calls))) }
}

/// One text-to-image run at 512² as the pipeline node does it (CLIP on both prompts, `steps` CFG
/// steps, VAE decode), all weights random F16, for its peak RSS (the issue's memory bar: < 4 GiB).
func pipeline(steps: Int, table: String) throws {
    var t0 = now()
    let clip = try CLIPTextModel(config: .sd15, weights: try RandomF16Source(component: "text_encoder", table: table))
    let unet = try UNet2DConditionModel(config: ModelConfig(values: DefaultConfigs.sd15UNet, origin: "built-in SD1.5 UNet config"),
                                        weights: try RandomF16Source(component: "unet", table: table))
    let vae = try AutoencoderKL(config: ModelConfig(values: DefaultConfigs.sd15VAE, origin: "built-in SD1.5 VAE config"),
                                weights: try RandomF16Source(component: "vae", table: table))
    print(String(format: "pipeline models built (random F16) in %.1f s; RSS %.2f GiB", now() - t0, currentRSSGiB()))
    t0 = now()
    let tokens = [49406] + Array(repeating: 320, count: 10) + Array(repeating: 49407, count: 66)
    let positive = try clip([tokens]), negative = try clip([[49406] + Array(repeating: 49407, count: 76)])
    var o = SamplingOptions()
    o.steps = steps
    let latents = try StableDiffusionSampler.textToImage(unet: unet, vae: vae, schedulerConfig: .stableDiffusion15,
                                                         positive: positive, negative: negative, options: o) { done, total in
        print(String(format: "  step %d/%d at %.1f s, RSS %.2f GiB", done, total, now() - t0, currentRSSGiB()))
    }
    let image = try StableDiffusionSampler.decode(vae: vae, latents: latents)
    print(String(format: "pipeline 512², %d steps: %.1f s, image %@", steps, now() - t0, "\(image.shape)"))
    print(String(format: "pipeline peak RSS %.2f GiB (F16 weights)", peakRSSGiB()))
}

/// Weights of one convolution (random F16), served as a `TensorSource`.
final class ConvSource: TensorSource, @unchecked Sendable {
    let tensors: [String: StoredTensor]
    var name: String { "bench conv" }
    var keys: [String] { tensors.keys.sorted() }
    init(cout: Int, cin: Int) throws {
        var g = TorchGenerator(seed: 5)
        let w = try g.randn([cout, cin, 3, 3]).scalars.map { Float16($0 * 0.05).bitPattern }
        let wb = w.withUnsafeBytes { [UInt8]($0) }
        tensors = ["c.weight": try StoredTensor(key: "c.weight", dtype: .f16, shape: [cout, cin, 3, 3], bytes: wb),
                   "c.bias": StoredTensor(try g.randn([cout]), key: "c.bias")]
    }
    func contains(_ key: String) -> Bool { tensors[key] != nil }
    func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor {
        guard let t = tensors[key] else { throw .missingKey(key: key, file: name, suggestions: []) }
        return t
    }
}

/// 3×3 convolutions at the UNet's and VAE's levels, Winograd against im2col (BENCH_CONV=1), with the
/// Winograd stages profiled: for choosing `WinogradConv.applies`.
func convLevels() throws {
    let shapes = [(2, 320, 64), (2, 640, 32), (2, 1280, 16), (2, 1280, 8), (1, 512, 64), (1, 512, 128), (1, 256, 256), (1, 128, 512)]
    for (n, c, s) in shapes {
        let conv = try Conv2d(WeightReader(source: try ConvSource(cout: c, cin: c)), "c", in: c, out: c, kernel: 3, padding: .init(1))
        var g = TorchGenerator(seed: 1)
        let x = try g.randn([n, c, s, s])
        let flops = 2.0 * Double(n * c * c * 9 * s * s)
        var line = String(format: "  conv3x3 [%d, %4d, %3d, %3d]:", n, c, s, s)
        for wino in [false, true] {
            let ws = Workspace()
            ws.useWinograd = wino
            ws.winogradMinTiles = 1
            _ = try conv(x, ws)
            var best = Double.infinity
            for _ in 0..<3 { let t0 = now(); _ = try conv(x, ws); best = min(best, now() - t0) }
            line += String(format: " %@ %.3f s (%.0f GFLOP/s direct-equivalent)", wino ? "winograd" : "im2col", best, flops / best / 1e9)
            if wino {
                ws.profiling = true
                _ = try conv(x, ws)
                line += " [" + ws.profile.filter { $0.key.hasPrefix("(") }.sorted { $0.key < $1.key }
                    .map { String(format: "%@ %.3f", String($0.key.dropFirst(18).dropLast()), $0.value) }.joined(separator: ", ") + "]"
            }
        }
        print(line)
    }
}

@main struct Bench {
    static func main() throws {
        let env = ProcessInfo.processInfo.environment
        print(String(format: "sgemm 2048³ now: %.0f GFLOP/s (best of 3)", sgemmGFLOPs()))
        let runs = Int(env["BENCH_RUNS"] ?? "") ?? 3
        let table = "Tests/DiffusionTests/Fixtures/sd15-keymap.tsv"
        print("OpenBLAS threads \(GEMM.threadCount), workers \(Parallel.workerCount), OPENBLAS_CORETYPE=\(env["OPENBLAS_CORETYPE"] ?? "unset")")
        print("CKernels variant: \(String(cString: ck_variant()))")
        if env["BENCH_PIPELINE"] != nil {
            try pipeline(steps: Int(env["BENCH_STEPS"] ?? "") ?? 2, table: table)
            return
        }
        if env["BENCH_CONV"] != nil {
            try convLevels()
            return
        }
        if env["BENCH_ATTN"] != nil {
            var g = TorchGenerator(seed: 2)
            let q = try g.randn([2, 4096, 320]), k = try g.randn([2, 4096, 320]), v = try g.randn([2, 4096, 320])
            for chunk in [32, 64, 128, 256, 512, 1024] {
                let t0 = now()
                _ = try Ops.attention(query: q, key: k, value: v, heads: 8, scale: 0.158, chunk: chunk)
                print(String(format: "  Ops.attention 64² self, batch 2, 8 heads, chunk %4d: %.3f s", chunk, now() - t0))
            }
            do {
                let m = 256, nk = 4096, d = 40, hd = 320
                let sc = UnsafeMutablePointer<Float>.allocate(capacity: m * nk)
                let o = UnsafeMutablePointer<Float>.allocate(capacity: m * hd)
                var tq = 0.0, ts = 0.0, tp = 0.0
                q.withUnsafeBufferPointer { qs in k.withUnsafeBufferPointer { ks in v.withUnsafeBufferPointer { vs in
                    for _ in 0..<(16 * 16) {
                        var t0 = now()
                        GEMM.sgemm(transB: true, m: m, n: nk, k: d, alpha: 0.158, a: qs.baseAddress!, lda: hd, b: ks.baseAddress!, ldb: hd, c: sc, ldc: nk)
                        tq += now() - t0; t0 = now()
                        let st = try! Tensor(shape: [m, nk]) { $0.baseAddress!.update(from: sc, count: m * nk) }
                        _ = try! Ops.softmax(st)
                        ts += now() - t0; t0 = now()
                        GEMM.sgemm(m: m, n: d, k: nk, a: sc, lda: nk, b: vs.baseAddress!, ldb: hd, c: o, ldc: hd)
                        tp += now() - t0
                    }
                } } }
                print(String(format: "  per layer-equivalent (256 chunks of 256 rows): QK^T %.3f s, softmax %.3f s, PV %.3f s", tq, ts, tp))
            }
            var t0 = now()
            _ = try FusedAttention.run(q: q, k: k, v: v, heads: 8, scale: 0.158)
            print(String(format: "  FusedAttention (sgemm tiles) 64² self, batch 2, 8 heads: %.3f s", now() - t0))
            for _ in 0..<3 {
                t0 = now()
                _ = try AttentionKernel.run(q: q, k: k, v: v, heads: 8, scale: 0.158, site: nil, hook: nil)
                let dt = now() - t0
                print(String(format: "  AttentionKernel (blocked, CKernels) 64² self, batch 2, 8 heads: %.3f s, %.0f GFLOP/s", dt, 4 * 2 * 4096.0 * 4096 * 320 / dt / 1e9))
            }
            return
        }
        if env["BENCH_SKIP_UNET"] == nil {
            var t0 = now()
            let unet = try UNet2DConditionModel(config: ModelConfig(values: DefaultConfigs.sd15UNet, origin: "built-in SD1.5 UNet config"),
                                                weights: try RandomF16Source(component: "unet", table: table))
            print(String(format: "UNet built with random F16 weights in %.1f s; RSS %.2f GiB", now() - t0, currentRSSGiB()))
            var g = TorchGenerator(seed: 0)
            let sample = try g.randn([2, 4, 64, 64]), context = try g.randn([2, 77, 768])
            var times: [Double] = [], conv: [Double] = []
            for i in 0..<runs {
                unet.workspace.resetCounters()
                t0 = now()
                let out = try unet(sample: sample, timesteps: [999], encoderHiddenStates: context)
                let dt = now() - t0
                times.append(dt)
                conv.append(unet.workspace.conversionSeconds)
                let finite = out.scalars.allSatisfy(\.isFinite)
                print(String(format: "  UNet batch 2, 64×64, 77 tokens: call %d %.2f s (F16→F32 conversion %.2f s, %d elements), output finite: %@, RSS %.2f GiB",
                             i + 1, dt, unet.workspace.conversionSeconds, unet.workspace.convertedElements, finite ? "yes" : "NO", currentRSSGiB()))
            }
            if env["BENCH_PROFILE"] != nil {
                unet.workspace.resetCounters()
                unet.workspace.profiling = true
                _ = try unet(sample: sample, timesteps: [999], encoderHiddenStates: context)
                print("  profile of one more call (kernel wall time; conversion is inside conv/linear):")
                printProfile(unet.workspace, calls: 1)
                unet.workspace.profiling = false
            }
            let m = median(times)
            print(String(format: "UNet CFG step (batch 2): median %.2f s over %d calls, %.0f GFLOP/s (2 × 803 GFLOP), conversion median %.2f s (%.0f %%)",
                         m, runs, 2 * 803 / m, median(conv), 100 * median(conv) / m))
        }
        if env["BENCH_SKIP_VAE"] == nil {
            var t0 = now()
            let vae = try AutoencoderKL(config: ModelConfig(values: DefaultConfigs.sd15VAE, origin: "built-in SD1.5 VAE config"),
                                        weights: try RandomF16Source(component: "vae", table: table))
            print(String(format: "VAE built in %.1f s", now() - t0))
            var g = TorchGenerator(seed: 1)
            let z = try g.randn([1, 4, 64, 64])
            var times: [Double] = []
            for i in 0..<runs {
                t0 = now()
                let img = try vae.decode(z)
                times.append(now() - t0)
                print(String(format: "  VAE decode 512²: call %d %.2f s, output %@, RSS %.2f GiB", i + 1, times.last!, "\(img.shape)", currentRSSGiB()))
            }
            if env["BENCH_PROFILE"] != nil {
                vae.workspace.resetCounters()
                vae.workspace.profiling = true
                _ = try vae.decode(z)
                print("  profile of one more decode:")
                printProfile(vae.workspace, calls: 1)
                vae.workspace.profiling = false
            }
            let m = median(times)
            print(String(format: "VAE decode 512²: median %.2f s, %.0f GFLOP/s (2515 GFLOP)", m, 2515 / m))
        }
        print(String(format: "sgemm 2048³ now: %.0f GFLOP/s (best of 3)", sgemmGFLOPs()))
        print(String(format: "peak RSS %.2f GiB", peakRSSGiB()))
    }
}
