import Dispatch

/// Matrix-vector and small-batch matrix products against weights in their stored dtype, for LLM decoding.
///
/// Decoding one token is memory-bound: every weight is read once per token. `GEMV.multiply` therefore reads
/// bf16/f16/f32 weights straight from the (memory-mapped) stored bytes and widens them to Float inside SIMD
/// registers (bf16: a 16-bit shift; f16: an exact bit-level rebias, vectorised), four rows at a time with
/// 16-wide accumulators, split over `Parallel.workerCount` threads by output rows. No memory is allocated
/// while it runs. `GEMV.linear` picks GEMV for a few rows and, for prefill batches, converts row tiles of the
/// weight to f32 and calls sgemm, so no f32 copy of a whole weight is kept.
public enum GEMV {
    /// Rows of the input at or below which `linear` calls `multiply` once per row instead of sgemm.
    public nonisolated(unsafe) static var gemvRowLimit = 2
    /// Elements of one converted weight tile in `linear`'s sgemm path (default 2M floats = 8 MB).
    public nonisolated(unsafe) static var tileElements = 1 << 21

    /// `y[r] = Σ_c W[r, c] · x[c] (+ bias[r])` for `W` = `weight` of shape [rows, cols] (f32, f16 or bf16).
    /// `x` holds `cols` floats, `y` and `bias` `rows` floats. Throws when the weight is not a 2-D float tensor.
    public static func multiply(weight: StoredTensor, x: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil,
                                y: UnsafeMutablePointer<Float>) throws {
        guard weight.shape.count == 2 else {
            throw TensorError("gemv: weight \"\(weight.key)\" from \(weight.source) has shape \(weight.shape), expected 2-D")
        }
        let rows = weight.shape[0], cols = weight.shape[1]
        guard rows > 0 else { return }
        guard let base = weight.bytes.baseAddress, cols > 0 else {
            for r in 0..<rows { y[r] = bias?[r] ?? 0 }
            return
        }
        let kind: Int
        switch weight.dtype {
        case .f32: kind = 0
        case .bf16: kind = 1
        case .f16: kind = 2
        default:
            throw TensorError("gemv: weight \"\(weight.key)\" from \(weight.source) has dtype \(weight.dtype.rawValue); expected f32, f16 or bf16")
        }
        // Chunks of whole 4-row groups; a few more chunks than workers balance a noisy machine.
        let workers = Parallel.workerCount
        let groups = (rows + 3) / 4
        let work = rows * cols
        let chunks = work < 1 << 15 ? 1 : min(groups, workers == 1 ? 1 : workers * 2)
        let args = UnsafeSendableBox((base, x, bias, y))
        let body: @Sendable (Int) -> Void = { c in
            let (w, xs, b, ys) = args.value
            let lo = min(rows, groups * c / chunks * 4), hi = min(rows, groups * (c + 1) / chunks * 4)
            guard lo < hi else { return }
            switch kind {
            case 0: rowsKernel(F32Weights.self, w, cols, xs, b, ys, lo..<hi)
            case 1: rowsKernel(BF16Weights.self, w, cols, xs, b, ys, lo..<hi)
            default: rowsKernel(F16Weights.self, w, cols, xs, b, ys, lo..<hi)
            }
        }
        if chunks == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: body) }
    }

    /// `out[i, :] = W · x[i, :] (+ bias)` for `n` rows of `x` ([n, cols] row-major) and `W` of shape [rows, cols]:
    /// per-row GEMV for `n <= gemvRowLimit`, otherwise sgemm on f32 tiles of `W` (f32 weights are used in place).
    /// `out` is [n, rows] row-major.
    public static func linear(x: UnsafePointer<Float>, n: Int, weight: StoredTensor, bias: UnsafePointer<Float>? = nil,
                              out: UnsafeMutablePointer<Float>) throws {
        guard weight.shape.count == 2 else {
            throw TensorError("linear: weight \"\(weight.key)\" from \(weight.source) has shape \(weight.shape), expected 2-D")
        }
        guard weight.dtype.isFloatingPoint, weight.dtype != .f64 else {
            throw TensorError("linear: weight \"\(weight.key)\" from \(weight.source) has dtype \(weight.dtype.rawValue); expected f32, f16 or bf16")
        }
        let rows = weight.shape[0], cols = weight.shape[1]
        guard n > 0, rows > 0 else { return }
        if n <= gemvRowLimit {
            for i in 0..<n { try multiply(weight: weight, x: x + i * cols, bias: bias, y: out + i * rows) }
            return
        }
        try GEMM.checkDims(n, rows, cols)
        let beta: Float
        if let bias {
            for i in 0..<n { (out + i * rows).update(from: bias, count: rows) }
            beta = 1
        } else {
            beta = 0
        }
        guard let src = weight.bytes.baseAddress, cols > 0 else {
            if bias == nil { (out).update(repeating: 0, count: n * rows) }
            return
        }
        if weight.dtype == .f32, Int(bitPattern: src) % 4 == 0 {
            GEMM.sgemm(transB: true, m: n, n: rows, k: cols, a: x, lda: cols,
                       b: src.assumingMemoryBound(to: Float.self), ldb: cols, beta: beta, c: out, ldc: rows)
            return
        }
        let tileRows = max(1, min(rows, tileElements / cols))
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * cols)
        defer { tile.deallocate() }
        let size = weight.dtype.byteSize
        var r0 = 0
        while r0 < rows {
            let r1 = min(rows, r0 + tileRows)
            FloatConversion.convert(src + r0 * cols * size, dtype: weight.dtype, count: (r1 - r0) * cols, into: tile)
            GEMM.sgemm(transB: true, m: n, n: r1 - r0, k: cols, a: x, lda: cols,
                       b: tile, ldb: cols, beta: beta, c: out + r0, ldc: rows)
            r0 = r1
        }
    }

    // MARK: - Kernel

    @inline(__always)
    static func rowsKernel<L: WeightLoader>(_: L.Type, _ w: UnsafeRawPointer, _ cols: Int, _ x: UnsafePointer<Float>,
                                            _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                                            _ range: Range<Int>) {
        let rowBytes = cols * L.byteSize
        let vecEnd = cols & ~15
        let xr = UnsafeRawPointer(x)
        var r = range.lowerBound
        while r + 4 <= range.upperBound {
            let p0 = w + r * rowBytes, p1 = p0 + rowBytes, p2 = p1 + rowBytes, p3 = p2 + rowBytes
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var c = 0
            while c < vecEnd {
                let xv = xr.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                let o = c * L.byteSize
                a0 += L.load16(p0 + o) * xv
                a1 += L.load16(p1 + o) * xv
                a2 += L.load16(p2 + o) * xv
                a3 += L.load16(p3 + o) * xv
                c += 16
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while c < cols {
                let xv = x[c], o = c * L.byteSize
                s0 += L.load1(p0 + o) * xv
                s1 += L.load1(p1 + o) * xv
                s2 += L.load1(p2 + o) * xv
                s3 += L.load1(p3 + o) * xv
                c += 1
            }
            if let bias { s0 += bias[r]; s1 += bias[r + 1]; s2 += bias[r + 2]; s3 += bias[r + 3] }
            y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3
            r += 4
        }
        while r < range.upperBound {
            let p0 = w + r * rowBytes
            var a0 = SIMD16<Float>()
            var c = 0
            while c < vecEnd {
                a0 += L.load16(p0 + c * L.byteSize) * xr.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                c += 16
            }
            var s0 = a0.sum()
            while c < cols { s0 += L.load1(p0 + c * L.byteSize) * x[c]; c += 1 }
            y[r] = s0 + (bias?[r] ?? 0)
            r += 1
        }
    }
}

/// Widens 16 (or 1) stored weights at an unaligned address to Float.
protocol WeightLoader {
    static var byteSize: Int { get }
    static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float>
    static func load1(_ p: UnsafeRawPointer) -> Float
}

enum F32Weights: WeightLoader {
    static var byteSize: Int { 4 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> { p.loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) static func load1(_ p: UnsafeRawPointer) -> Float { p.loadUnaligned(as: Float.self) }
}

enum BF16Weights: WeightLoader {
    static var byteSize: Int { 2 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let h = p.loadUnaligned(as: SIMD16<UInt16>.self)
        return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD16<Float>.self)
    }
    @inline(__always) static func load1(_ p: UnsafeRawPointer) -> Float {
        FloatConversion.floatFromBFloat16Bits(p.loadUnaligned(as: UInt16.self))
    }
}

enum F16Weights: WeightLoader {
    static var byteSize: Int { 2 }
    /// The bit-level conversion of `FloatConversion.floatFromHalfBits`, 16 lanes at once (exact, including
    /// subnormals, infinities and NaN).
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let h = SIMD16<UInt32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD16<UInt16>.self))
        let sign = (h & 0x8000) &<< 16
        let em = h & 0x7fff
        let scaled = unsafeBitCast(em &<< 13, to: SIMD16<Float>.self) * Float(bitPattern: 0x7780_0000)
        var bits = unsafeBitCast(scaled, to: SIMD16<UInt32>.self)
        bits.replace(with: (em &<< 13) | 0x7f80_0000, where: em .>= 0x7c00)
        return unsafeBitCast(bits | sign, to: SIMD16<Float>.self)
    }
    @inline(__always) static func load1(_ p: UnsafeRawPointer) -> Float {
        FloatConversion.floatFromHalfBits(p.loadUnaligned(as: UInt16.self))
    }
}
