/// Conversions between the stored floating-point formats and `Float`.
///
/// The loops are written as branch-free scalar code over raw pointers so that the
/// compiler vectorises them with the baseline instruction set (no F16C needed).
public enum FloatConversion {
    /// IEEE binary16 bits to Float (exact, including subnormals, infinities and NaN payloads).
    @inlinable @inline(__always)
    public static func floatFromHalfBits(_ h: UInt16) -> Float {
        let x = UInt32(h)
        let sign = (x & 0x8000) << 16
        let em = x & 0x7fff
        // Normal and subnormal halves: shift into the float's exponent/mantissa position and
        // rescale by 2^112 (exact: a power-of-two scaling of a representable value).
        let scaled = Float(bitPattern: em << 13) * Float(bitPattern: 0x7780_0000)
        // Infinity and NaN: all-ones exponent.
        let special = (em << 13) | 0x7f80_0000
        let bits = em >= 0x7c00 ? special : scaled.bitPattern
        return Float(bitPattern: bits | sign)
    }

    /// bfloat16 bits to Float (exact).
    @inlinable @inline(__always)
    public static func floatFromBFloat16Bits(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Float to bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN of the same sign.
    @inlinable @inline(__always)
    public static func bfloat16Bits(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x0040) }
        let rounding = UInt32(0x7fff) + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }

    /// Float to binary16 bits, rounding to nearest even (overflow gives infinity).
    @inlinable @inline(__always)
    public static func halfBits(_ f: Float) -> UInt16 {
        #if !(os(macOS) && arch(x86_64))
        return Float16(f).bitPattern
        #else
        return halfBitsPortable(f)
        #endif
    }

    @usableFromInline
    static func halfBitsPortable(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (u >> 16) & 0x8000)
        let a = u & 0x7fff_ffff
        if a > 0x7f80_0000 { return sign | 0x7e00 }           // NaN
        if a >= 0x4780_0000 { return sign | 0x7c00 }          // overflow to inf (>= 65536)
        if a < 0x3880_0000 {                                  // subnormal or zero half
            let v = Float(bitPattern: a) + 0.5                // align so that the low bits are the half mantissa
            return sign | UInt16(truncatingIfNeeded: v.bitPattern &- 0x3f00_0000)
        }
        let mantOdd = (a >> 13) & 1
        let r = a &+ 0xc800_0fff &+ mantOdd                   // rebias exponent (-112 << 23) and round
        return sign | UInt16(truncatingIfNeeded: r >> 13)
    }

    /// Converts `count` stored elements at `src` (of `dtype`, which must be floating point)
    /// into `dst`. `src` need not be aligned.
    static func convert(_ src: UnsafeRawPointer, dtype: DType, count: Int,
                               into dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            if Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0 {
                dst.update(from: src.assumingMemoryBound(to: Float.self), count: count)
            } else {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
            }
        case .f16:
            convertChunked(count: count) { range in
                halfToFloat(src + 2 * range.lowerBound, dst + range.lowerBound, range.count)
            }
        case .bf16:
            convertChunked(count: count) { range in
                bf16ToFloat(src + 2 * range.lowerBound, dst + range.lowerBound, range.count)
            }
        case .f64:
            for i in 0..<count {
                dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
            }
        default:
            preconditionFailure("FloatConversion.convert called with non-float dtype \(dtype); callers check isFloatingPoint")
        }
    }

    private static func convertChunked(count: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forRanges(count, minPerChunk: 1 << 16, body)
    }

    @inline(never)
    private static func halfToFloat(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        if Int(bitPattern: src) & 1 == 0 {
            let s = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { dst[i] = floatFromHalfBits(s[i]) }
        } else {
            for i in 0..<n { dst[i] = floatFromHalfBits(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        }
    }

    @inline(never)
    private static func bf16ToFloat(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        if Int(bitPattern: src) & 1 == 0 {
            let s = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { dst[i] = floatFromBFloat16Bits(s[i]) }
        } else {
            for i in 0..<n { dst[i] = floatFromBFloat16Bits(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        }
    }

    /// Encodes floats as little-endian bytes of `dtype` (floating point: f32, f16, bf16; f64 widens).
    static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
        out.withUnsafeMutableBytes { raw in
            switch dtype {
            case .f32:
                for (i, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            case .f16:
                for (i, v) in values.enumerated() { raw.storeBytes(of: halfBits(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            case .bf16:
                for (i, v) in values.enumerated() { raw.storeBytes(of: bfloat16Bits(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            case .f64:
                for (i, v) in values.enumerated() { raw.storeBytes(of: Double(v).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self) }
            default:
                preconditionFailure("FloatConversion.encode called with non-float dtype \(dtype)")
            }
        }
        return out
    }
}
