import Foundation

/// The training noise schedule, computed the way torch computes it in diffusers' scheduler
/// constructors, so that the float32 values are bit-identical:
/// - `torch.linspace(a, b, n, dtype=float32)`: step `(b − a)/(n − 1)` in float32, first half
///   `fma(step, i, a)`, second half `fma(−step, n − 1 − i, b)` (torch's CPU kernel, which GCC
///   compiles with fused multiply-adds);
/// - `betas²`, `1 − betas` in float32;
/// - `torch.cumprod` on CPU accumulates in double and rounds each output to float32;
/// - `squaredcos_cap_v2` is computed in double (Python floats) and rounded once.
public struct TrainingSchedule: Sendable, Equatable {
    public let betas: [Float]
    public let alphas: [Float]
    public let alphasCumprod: [Float]
    public var count: Int { alphasCumprod.count }

    /// Builds the schedule from a config. `rescaleZeroSNR` applies diffusers'
    /// `rescale_zero_terminal_snr` to the betas (classes that support `rescale_betas_zero_snr`).
    public init(config: SchedulerConfig, rescaleZeroSNR: Bool = false) throws(DiffusionError) {
        try config.validateCommon()
        let n = config.resolvedNumTrainTimesteps
        var b: [Float]
        if let tb = config.trainedBetas {
            b = tb.map { Float($0) }
        } else {
            switch config.resolvedBetaSchedule {
            case .linear:
                b = Self.torchLinspace(Float(config.resolvedBetaStart), Float(config.resolvedBetaEnd), n)
            case .scaledLinear:
                b = Self.torchLinspace(Float(config.resolvedBetaStart.squareRoot()), Float(config.resolvedBetaEnd.squareRoot()), n)
                    .map { $0 * $0 }
            case .squaredcosCapV2:
                b = Self.betasForAlphaBar(n)
            }
        }
        if rescaleZeroSNR { b = Self.rescaleZeroTerminalSNR(b) }
        betas = b
        alphas = b.map { 1 - $0 }
        alphasCumprod = Self.cumprod(alphas)
    }

    private init(betas: [Float], alphas: [Float], alphasCumprod: [Float]) {
        self.betas = betas
        self.alphas = alphas
        self.alphasCumprod = alphasCumprod
    }

    /// The same schedule with ᾱ at the last training timestep replaced (diffusers sets it to 2⁻²⁴
    /// after rescaling to zero terminal SNR in the σ-based schedulers, to keep σ finite).
    func pinningLastAlphaCumprod(_ value: Float) -> TrainingSchedule {
        var c = alphasCumprod
        c[c.count - 1] = value
        return TrainingSchedule(betas: betas, alphas: alphas, alphasCumprod: c)
    }

    /// `torch.linspace(start, end, steps, dtype=torch.float32)` on CPU.
    static func torchLinspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [start] : [] }
        let step = (end - start) / Float(steps - 1)
        let half = steps / 2
        return (0..<steps).map { i in
            i < half ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(steps - i - 1))
        }
    }

    /// `torch.cumprod` of a float32 tensor on CPU (double accumulator).
    static func cumprod(_ x: [Float]) -> [Float] {
        var acc = 1.0
        return x.map { v in
            acc *= Double(v)
            return Float(acc)
        }
    }

    /// diffusers `betas_for_alpha_bar(n)` with the cosine transform and max_beta 0.999.
    static func betasForAlphaBar(_ n: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<n).map { i in
            let t1 = Double(i) / Double(n), t2 = Double(i + 1) / Double(n)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// diffusers `rescale_zero_terminal_snr` (float32 tensor arithmetic).
    static func rescaleZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let ac = cumprod(betas.map { 1 - $0 })
        var s = ac.map { $0.squareRoot() }
        let s0 = s[0], sT = s[s.count - 1]
        let scale = s0 / (s0 - sT)
        for i in s.indices { s[i] = (s[i] - sT) * scale }
        let bar = s.map { $0 * $0 }
        var out = [Float](repeating: 0, count: bar.count)
        out[0] = 1 - bar[0]
        for i in 1..<bar.count { out[i] = 1 - bar[i] / bar[i - 1] }
        return out
    }

    /// ᾱ at an integer timestep, or `final` when the timestep is negative (diffusers'
    /// `final_alpha_cumprod` rule).
    @inline(__always)
    func alphaProd(_ t: Int, final: Float) -> Float { t >= 0 ? alphasCumprod[t] : final }

    /// σ(t) = sqrt((1 − ᾱ)/ᾱ) for every training timestep, in float32 like torch.
    var sigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }
}

/// numpy behaviours the timestep and sigma tables depend on (double precision, as numpy).
enum NumPy {
    /// `np.linspace(start, stop, num)` (endpoint=True), float64.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        guard num > 1 else { return num == 1 ? [start] : [] }
        let step = (stop - start) / Double(num - 1)
        var y = (0..<num).map { Double($0) * step + start }
        y[num - 1] = stop
        return y
    }

    /// `np.arange(start, stop, step)` for doubles: numpy stores start and start+step, then fills
    /// `start + i·(second − start)`; the length is `ceil((stop − start)/step)`.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let len = Int(max(0, ((stop - start) / step).rounded(.up)))
        guard len > 0 else { return [] }
        guard len > 1 else { return [start] }
        let second = start + step
        let delta = second - start
        var out = [start, second]
        out.reserveCapacity(len)
        for i in 2..<len { out.append(start + Double(i) * delta) }
        return out
    }

    /// `np.round` (half to even).
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `np.interp(x, arange(len(fp)), fp)` with fp given as float32 (computed in double).
    static func interpIndex(_ x: Double, _ fp: [Float]) -> Double {
        let n = fp.count
        if x <= 0 { return Double(fp[0]) }
        if x >= Double(n - 1) { return Double(fp[n - 1]) }
        let j = Int(x.rounded(.down))
        if Double(j) == x { return Double(fp[j]) }
        let slope = (Double(fp[j + 1]) - Double(fp[j])) / (Double(j + 1) - Double(j))
        return slope * (x - Double(j)) + Double(fp[j])
    }
}

/// diffusers' `_sigma_to_t`: piecewise-linear interpolation of the timestep in log σ over the
/// training sigmas. `logSigmas` are the float32 logs of the training sigmas (numpy keeps float32).
func sigmaToT(_ sigma: Double, logSigmas: [Float]) -> Double {
    let logSigma = Foundation.log(max(sigma, 1e-10))
    let n = logSigmas.count
    // low_idx = argmax(cumsum(dists >= 0)) = last index whose log σ is <= log_sigma (first index of
    // the cumsum maximum), clipped to n − 2. log_sigmas ascend with t, so count the ones <= logSigma.
    var count = 0
    for l in logSigmas where logSigma - Double(l) >= 0 { count += 1 }
    // argmax of a cumsum returns the first index where the running count reaches its maximum.
    var lowIdx = 0
    if count > 0 {
        var running = 0
        for (i, l) in logSigmas.enumerated() {
            if logSigma - Double(l) >= 0 { running += 1 }
            if running == count { lowIdx = i; break }
        }
    }
    lowIdx = min(lowIdx, n - 2)
    let highIdx = lowIdx + 1
    let low = logSigmas[lowIdx], high = logSigmas[highIdx]
    var w = (Double(low) - logSigma) / Double(low - high)
    w = min(max(w, 0), 1)
    return (1 - w) * Double(lowIdx) + w * Double(highIdx)
}

/// Karras et al. (2022) σ ramp with ρ = 7 (diffusers `_convert_to_karras`), float64.
func karrasSigmas(sigmaMin: Double, sigmaMax: Double, count: Int) -> [Double] {
    let rho = 7.0
    let minInv = pow(sigmaMin, 1 / rho), maxInv = pow(sigmaMax, 1 / rho)
    return NumPy.linspace(0, 1, count).map { pow(maxInv + $0 * (minInv - maxInv), rho) }
}

/// `np.log` of a float32 array as numpy computes it on x86-64 with AVX2+FMA3 or AVX-512F
/// (`simd_log_FLOAT` in numpy's loops_exponent_log.dispatch.c.src): range reduction to a mantissa
/// in (√½, √2], a 5/5 rational minimax polynomial with fused multiply-adds, plus k·ln 2. It is not
/// correctly rounded (up to ~4 ulp), and diffusers' `_sigma_to_t` feeds these float32 logs into the
/// Karras timesteps, so reproducing it makes those fractional timesteps exact. Verified equal bit for
/// bit to numpy 2.4 on 400,000 positive normal inputs. Inputs here are positive normal sigmas.
func float32Logs(_ x: [Float]) -> [Float] { x.map(numpyLogFloat32) }

func numpyLogFloat32(_ v: Float) -> Float {
    guard v.isNormal, v > 0 else { return Float(Foundation.log(Double(v))) }
    let p0: Float = 0, p1: Float = 9.999999999999998702752e-01, p2: Float = 2.112677543073053063722e+00
    let p3: Float = 1.480000633576506585156e+00, p4: Float = 3.808837741388407920751e-01, p5: Float = 2.589979117907922693523e-02
    let q0: Float = 1, q1: Float = 2.612677543073109236779e+00, q2: Float = 2.453006071784736363091e+00
    let q3: Float = 9.864942958519418960339e-01, q4: Float = 1.546476374983906719538e-01, q5: Float = 5.875095403124574342950e-03
    let loge2: Float = 0.693147180559945309417232121458176568
    let sqrtHalf: Float = 0.707106781186547524400844362104849039
    // _mm512_getexp_ps + 1 and _mm512_getmant_ps(_MM_MANT_NORM_p5_1): v = m·2^e, m in [0.5, 1).
    var e = Float(v.exponent) + 1
    var m = Float(sign: .plus, exponent: -1, significand: v.significand)
    if m <= sqrtHalf {
        m = m + m
        e = e - 1
    }
    let x = m - 1
    var num = p4.addingProduct(p5, x)
    num = p3.addingProduct(num, x)
    num = p2.addingProduct(num, x)
    num = p1.addingProduct(num, x)
    num = p0.addingProduct(num, x)
    var den = q4.addingProduct(q5, x)
    den = q3.addingProduct(den, x)
    den = q2.addingProduct(den, x)
    den = q1.addingProduct(den, x)
    den = q0.addingProduct(den, x)
    return (num / den).addingProduct(e, loge2)
}
