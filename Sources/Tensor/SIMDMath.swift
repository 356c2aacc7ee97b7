/// Vectorised exp / erf / tanh on SIMD16<Float>, written with plain multiplies and adds, compares,
/// `replacing(with:where:)` and bit casts so that they vectorise with the baseline instruction set.
/// Public so model code's fused kernels use the same functions (inlined across modules).
public enum SIMDMath {
    public typealias V = SIMD16<Float>
    public typealias U = SIMD16<UInt32>

    @inlinable static func bits(_ v: V) -> U { unsafeBitCast(v, to: U.self) }
    @inlinable static func float(_ u: U) -> V { unsafeBitCast(u, to: V.self) }

    /// e^x with about 1 ulp error (Cephes expf: Cody–Waite reduction, degree-5 polynomial).
    /// Returns 0 below -87.3 (including -inf) and clamps large inputs at e^88.37.
    @inlinable
    public static func exp(_ input: V) -> V {
        var x = input.replacing(with: 88.3762626647949, where: input .> 88.3762626647949)
        let underflow = input .< -87.33654
        x.replace(with: -87.33654, where: underflow)
        // n = round(x / ln 2) via the 1.5·2^23 magic number; its low bits hold n.
        let magic = V(repeating: 12_582_912)
        let shifted = x * 1.44269504088896341 + magic
        let n = shifted - magic
        var r = x - n * 0.693359375
        r = r - n * -2.12194440e-4
        let r2 = r * r
        var y = V(repeating: 1.9875691500E-4)
        y = y * r + 1.3981999507E-3
        y = y * r + 8.3334519073E-3
        y = y * r + 4.1665795894E-2
        y = y * r + 1.6666665459E-1
        y = y * r + 5.0000001201E-1
        y = y * r2 + r + 1
        let nBits = bits(shifted) &- bits(magic)        // n in two's complement
        let pow2n = float( (nBits &+ 127) &<< 23)
        var result = y * pow2n
        result.replace(with: 0, where: underflow)
        return result
    }

    /// erf as torch's vectorised CPU kernels compute it (Abramowitz–Stegun 7.1.26 with exp):
    /// sign(x)·(1 − t·r(t)·e^(−x²)), t = 1/(1 + 0.3275911|x|); absolute error below 1.5e-7 for the
    /// formula, about 4.2e-7 measured in float arithmetic.
    @inline(__always)
    static func erf(_ x: V) -> V {
        let signBits = bits(x) & U(repeating: 0x8000_0000)
        let a = float( bits(x) & U(repeating: 0x7fff_ffff))
        let t = 1 / (a * 0.3275911 + 1)
        var r = t * 1.061405429 + -1.453152027
        r = r * t + 1.421413741
        r = r * t + -0.284496736
        r = r * t + 0.254829592
        let e = exp(-(x * x))
        let v = 1 - e * t * r
        return float( bits(v) ^ signBits)
    }

    /// tanh(x) = sign(x)·(1 − e^(−2|x|)) / (1 + e^(−2|x|)).
    @inline(__always)
    static func tanh(_ x: V) -> V {
        let signBits = bits(x) & U(repeating: 0x8000_0000)
        let a = float( bits(x) & U(repeating: 0x7fff_ffff))
        let e = exp(a * -2)
        let v = (1 - e) / (1 + e)
        return float( bits(v) ^ signBits)
    }

    @inline(__always) static func silu(_ x: V) -> V { x / (1 + exp(-x)) }
    @inline(__always) static func gelu(_ x: V) -> V { x * 0.5 * (1 + erf(x * 0.70710678118654752)) }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// Applies `f` to `count` floats from `src` into `dst` (which may alias `src`), 16 at a time;
    /// the tail goes through a zero-padded vector.
    @inline(__always)
    static func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ f: (V) -> V) {
        var i = 0
        while i + 16 <= count {
            store(f(load(src + i)), dst + i)
            i += 16
        }
        if i < count {
            var v = V(repeating: 0)
            for j in 0..<(count - i) { v[j] = src[i + j] }
            let r = f(v)
            for j in 0..<(count - i) { dst[i + j] = r[j] }
        }
    }
}
