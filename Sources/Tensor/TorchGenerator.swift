#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reproduces `torch.Generator().manual_seed(seed)` on the CPU: the same mt19937 stream, and
/// `torch.randn` / `torch.rand` for float32 with the same values, including how successive
/// calls continue the stream.
///
/// torch's CPU normal sampler (aten/src/ATen/native/cpu/DistributionTemplates.h) has two paths:
/// - numel >= 16 (contiguous): `normal_fill` draws one 24-bit uniform float per element, then
///   applies Box–Muller in blocks of 16 (elements j and j+8 of a block form a pair); when numel is
///   not a multiple of 16 it draws 16 fresh uniforms for the last 16 elements and transforms them again.
///   On CPUs where torch picks its AVX2 kernels (AVX2 without AVX-512) that block transform uses
///   approximate vector log/sin/cos instead; this type follows the scalar transform that torch uses
///   with AVX-512 (as on the project's machines) and on ARM.
/// - numel < 16: `normal_distribution<double>` per element from two 53-bit uniforms, caching the
///   second Box–Muller value in the generator for the next call.
public struct TorchGenerator: Sendable {
    /// Which of torch's Box–Muller block transforms `randn` reproduces for numel >= 16.
    public enum NormalTransform: Sendable, Equatable {
        /// torch on x86-64 with AVX2 or AVX-512 (`avx_mathfun.h` log/sincos, as compiled by GCC
        /// with fused multiply-adds). The default: what diffusers gives on x86 machines.
        case x86Vector
        /// torch's scalar `NormalFill16` (libm logf/cosf/sinf): torch on ARM, or x86 with
        /// `ATEN_CPU_CAPABILITY=default`.
        case scalar
    }

    /// The transform used by `randn` for tensors of 16 or more elements.
    public var normalTransform: NormalTransform
    private var state: [UInt32]
    private var next: Int
    private var left: Int
    /// The cached second value of the double-precision Box–Muller pair (torch's `next_double_normal_sample`).
    private var cachedNormal: Double?
    public private(set) var seed: UInt64

    private static let n = 624
    private static let m = 397

    public init(seed: UInt64, normalTransform: NormalTransform = .x86Vector) {
        self.normalTransform = normalTransform
        state = [UInt32](repeating: 0, count: Self.n)
        next = 0
        left = 1
        self.seed = seed
        cachedNormal = nil
        manualSeed(seed)
    }

    /// `generator.manual_seed(seed)`: mt19937 seeded with the low 32 bits, cached normal cleared.
    public mutating func manualSeed(_ seed: UInt64) {
        self.seed = seed
        state[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<Self.n {
            let p = state[j - 1]
            state[j] = 1_812_433_253 &* (p ^ (p >> 30)) &+ UInt32(j)
        }
        left = 1
        next = 0
        cachedNormal = nil
    }

    private mutating func nextState() {
        @inline(__always) func twist(_ u: UInt32, _ v: UInt32) -> UInt32 {
            let mixed = (u & 0x8000_0000) | (v & 0x7fff_ffff)
            return (mixed >> 1) ^ ((v & 1) != 0 ? 0x9908_b0df : 0)
        }
        state.withUnsafeMutableBufferPointer { s in
            let n = Self.n, m = Self.m
            for i in 0..<(n - m) { s[i] = s[i + m] ^ twist(s[i], s[i + 1]) }
            for i in (n - m)..<(n - 1) { s[i] = s[i + m - n] ^ twist(s[i], s[i + 1]) }
            s[n - 1] = s[m - 1] ^ twist(s[n - 1], s[0])
        }
        left = Self.n
        next = 0
    }

    /// The next 32-bit output of mt19937 (torch's `generator->random()`).
    public mutating func nextUInt32() -> UInt32 {
        left -= 1
        if left == 0 { nextState() }
        var y = state[next]
        next += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// torch's `random64()`: two draws, the first in the high half.
    public mutating func nextUInt64() -> UInt64 {
        let hi = UInt64(nextUInt32())
        let lo = UInt64(nextUInt32())
        return hi << 32 | lo
    }

    /// `uniform_real_distribution<float>(0, 1)`: 24 random bits times 2^-24.
    @inline(__always)
    private mutating func uniformFloat() -> Float {
        Float(nextUInt32() & 0x00ff_ffff) * Float(1.0 / 16_777_216.0)
    }

    /// `uniform_real_distribution<double>(0, 1)`: 53 random bits times 2^-53.
    @inline(__always)
    private mutating func uniformDouble() -> Double {
        Double(nextUInt64() & 0x001f_ffff_ffff_ffff) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `at::normal_distribution<double>(0, 1)` with the cached second sample.
    private mutating func normalDouble() -> Double {
        if let c = cachedNormal {
            cachedNormal = nil
            return c
        }
        let u1 = uniformDouble()
        let u2 = uniformDouble()
        let r = sqrt(-2.0 * log1p(-u2))
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * sin(theta)
        return r * cos(theta)
    }

    /// Box–Muller on one block of 16 uniforms in place (torch's scalar `NormalFill16`).
    @inline(__always)
    private static func normalFill16(_ d: UnsafeMutablePointer<Float>) {
        for j in 0..<8 {
            let u1: Float = 1 - d[j]
            let u2 = d[j + 8]
            let radius = sqrtf(-2 * logf(u1))
            let theta = Float(2.0 * Double.pi * Double(u2))
            d[j] = radius * cosf(theta)
            d[j + 8] = radius * sinf(theta)
        }
    }

    /// Box–Muller on one block of 16 uniforms in place, as torch's AVX2 `NormalFill16`.
    @inline(__always)
    private static func normalFill16Vector(_ d: UnsafeMutablePointer<Float>) {
        let twoPi = Float(2.0 * Double.pi)
        for j in 0..<8 {
            let u1: Float = 1 - d[j]
            let u2 = d[j + 8]
            let radius = (-2 * AVXMathFun.log(u1)).squareRoot()
            let (s, c) = AVXMathFun.sincos(twoPi * u2)
            d[j] = radius * c
            d[j + 8] = radius * s
        }
    }

    /// Fills `out` as `torch.randn` would fill a contiguous float32 tensor of `out.count` elements.
    public mutating func fillNormal(_ out: UnsafeMutableBufferPointer<Float>) {
        let size = out.count
        guard size > 0, let data = out.baseAddress else { return }
        if size >= 16 {
            for i in 0..<size { data[i] = uniformFloat() }
            let vector = normalTransform == .x86Vector
            func transform(_ p: UnsafeMutablePointer<Float>) {
                if vector { Self.normalFill16Vector(p) } else { Self.normalFill16(p) }
            }
            var i = 0
            while i + 16 <= size {
                transform(data + i)
                i += 16
            }
            if size % 16 != 0 {
                let tail = data + (size - 16)
                for j in 0..<16 { tail[j] = uniformFloat() }
                transform(tail)
            }
        } else {
            for i in 0..<size { data[i] = Float(normalDouble()) }
        }
    }

    /// Fills `out` as `torch.rand` would (uniform in [0, 1), 24-bit resolution).
    public mutating func fillUniform(_ out: UnsafeMutableBufferPointer<Float>) {
        for i in out.indices { out[i] = uniformFloat() }
    }

    /// `torch.randn(shape, generator=g)` (float32, CPU).
    public mutating func randn(_ shape: [Int]) throws(TensorError) -> Tensor {
        var t = try Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { fillNormal($0) }
        return t
    }

    /// `torch.rand(shape, generator=g)` (float32, CPU).
    public mutating func rand(_ shape: [Int]) throws(TensorError) -> Tensor {
        var t = try Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { fillUniform($0) }
        return t
    }
}

/// Scalar re-statement of the Cephes-style `log256_ps` and `sincos256_ps` from torch's
/// `aten/src/ATen/native/cpu/avx_mathfun.h`, operation by operation, with the multiply-adds that
/// GCC fuses when it compiles torch (`-O2 -mfma`, default `-ffp-contract=fast`). Verified equal
/// to the compiled C for every input the RNG can produce (all 2^24 uniform values).
enum AVXMathFun {
    private static func c(_ v: Double) -> Float { Float(v) }

    /// log(x) for x in [2^-24, 1] (the RNG's range); no special-value handling.
    @inline(__always)
    static func log(_ input: Float) -> Float {
        let q1 = c(-2.12194440e-4), q2 = c(0.693359375)
        let p: (Float, Float, Float, Float, Float, Float, Float, Float, Float) = (
            c(7.0376836292E-2), c(-1.1514610310E-1), c(1.1676998740E-1), c(-1.2420140846E-1),
            c(1.4249322787E-1), c(-1.6668057665E-1), c(2.0000714765E-1), c(-2.4999993993E-1),
            c(3.3333331174E-1))
        let clamped = max(input, Float(bitPattern: 0x0080_0000))
        let bits = clamped.bitPattern
        let exponent = Int32(bitPattern: bits >> 23) - 0x7f
        var x = Float(bitPattern: (bits & ~UInt32(0x7f80_0000)) | Float(0.5).bitPattern)
        var e = Float(exponent) + 1
        let small = x < c(0.707106781186547524)
        let tmp: Float = small ? x : 0
        x = x - 1
        e = e - (small ? 1 : 0)
        x = x + tmp
        let z = x * x
        var y = p.0
        y = p.1.addingProduct(y, x)
        y = p.2.addingProduct(y, x)
        y = p.3.addingProduct(y, x)
        y = p.4.addingProduct(y, x)
        y = p.5.addingProduct(y, x)
        y = p.6.addingProduct(y, x)
        y = p.7.addingProduct(y, x)
        y = p.8.addingProduct(y, x)
        y = y * x
        y = (e * q1).addingProduct(y, z)
        y = y.addingProduct(-z, 0.5)
        x = x + y
        x = x.addingProduct(e, q2)
        return x
    }

    /// (sin x, cos x) for x >= 0 below 2π (the RNG's range).
    @inline(__always)
    static func sincos(_ input: Float) -> (Float, Float) {
        let dp1 = c(-0.78515625), dp2 = c(-2.4187564849853515625e-4), dp3 = c(-3.77489497744594108e-8)
        let s0 = c(-1.9515295891E-4), s1 = c(8.3321608736E-3), s2 = c(-1.6666654611E-1)
        let c0 = c(2.443315711809948E-005), c1 = c(-1.388731625493765E-003), c2 = c(4.166664568298827E-002)
        let fopi = c(1.27323954473516)
        var signSin = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7fff_ffff)
        var y = x * fopi
        var j = (Int32(y) &+ 1) & ~1
        y = Float(j)
        let swapSignSin = UInt32(bitPattern: (j & 4) << 29)
        let polyMask = (j & 2) == 0
        x = x.addingProduct(y, dp1)
        x = x.addingProduct(y, dp2)
        x = x.addingProduct(y, dp3)
        j = ~(j &- 2) & 4
        let signCos = UInt32(bitPattern: j << 29)
        signSin ^= swapSignSin
        let z = x * x
        var yc = c1.addingProduct(c0, z)
        yc = c2.addingProduct(yc, z)
        yc = yc * z
        yc = (-(z * 0.5)).addingProduct(yc, z)
        yc = yc + 1
        var ys = s1.addingProduct(s0, z)
        ys = s2.addingProduct(ys, z)
        ys = ys * z
        ys = x.addingProduct(ys, x)
        let ysin2: Float = polyMask ? ys : 0
        let ysin1: Float = polyMask ? 0 : yc
        ys = ys - ysin2
        yc = yc - ysin1
        let sinv = ysin1 + ysin2
        let cosv = yc + ys
        return (Float(bitPattern: sinv.bitPattern ^ signSin), Float(bitPattern: cosv.bitPattern ^ signCos))
    }
}
