import Foundation

/// Resampling filters, with the kernels and conventions of Pillow's `Image.resize`.
public enum ResizeFilter: String, Sendable, CaseIterable {
    /// Pillow NEAREST: the source sample at `floor((x + 0.5) * in / out)`.
    case nearest
    /// Box kernel, support 0.5 (Pillow BOX).
    case box
    /// Triangle kernel, support 1 (Pillow BILINEAR).
    case bilinear
    /// Hamming-windowed sinc, support 1 (Pillow HAMMING).
    case hamming
    /// Keys cubic kernel with a = -0.5, support 2 (Pillow BICUBIC).
    case bicubic
    /// Lanczos windowed sinc with a = 3, support 3 (Pillow LANCZOS).
    case lanczos

    /// The kernel's half-width at scale 1 (Pillow's `filter->support`).
    package var support: Double {
        switch self {
        case .nearest: 0
        case .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    /// Pillow's filter functions (`Resample.c`), in double.
    package func weight(_ x: Double) -> Double {
        switch self {
        case .nearest:
            return 0
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let a = abs(x)
            return a < 1 ? 1 - a : 0
        case .hamming:
            var t = abs(x)
            if t == 0 { return 1 }
            if t >= 1 { return 0 }
            t *= Double.pi
            return sin(t) / t * (0.54 + 0.46 * cos(t))
        case .bicubic:
            let a = -0.5
            let t = abs(x)
            if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0
        case .lanczos:
            if x >= -3, x < 3 { return Self.sinc(x) * Self.sinc(x / 3) }
            return 0
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = x * Double.pi
        return sin(px) / px
    }
}

/// Convolution coefficients for one axis, as Pillow's `precompute_coeffs`: for each output
/// position a first source index and `count` normalised weights (double, `ksize` per position).
/// The float resize here and the Prompter's 8-bit Pillow-exact resize (which converts them to
/// Pillow's fixed point) both start from these.
package struct PillowCoefficients {
    package var first: [Int]
    package var count: [Int]
    package var weights: [Double] // outSize * ksize
    package var ksize: Int

    package init(inSize: Int, outSize: Int, filter: ResizeFilter) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        self.ksize = ksize
        first = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        weights = [Double](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        let ss = 1 / filterScale
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            var xmin = Int(center - support + 0.5) // C truncation toward zero, as Pillow
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0..<max(xmax, 0) {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<max(xmax, 0) {
                weights[xx * ksize + x] = ww != 0 ? k[x] / ww : k[x]
            }
            first[xx] = xmin
            count[xx] = max(xmax, 0)
        }
    }
}

/// `PillowCoefficients` in Float for the float resize.
struct ResampleCoefficients {
    var first: [Int]
    var count: [Int]
    var weights: [Float] // outSize * ksize
    var ksize: Int

    init(inSize: Int, outSize: Int, filter: ResizeFilter) {
        let c = PillowCoefficients(inSize: inSize, outSize: outSize, filter: filter)
        first = c.first
        count = c.count
        weights = c.weights.map { Float($0) }
        ksize = c.ksize
    }
}

extension Image {
    /// Resizes with Pillow's `Image.resize` semantics: a separable convolution (horizontal
    /// pass, then vertical) whose kernel support grows with the downscale factor, so
    /// downscaling is antialiased; `nearest` picks single samples. With `clamp` (the default,
    /// matching Pillow on 8-bit images) the intermediate and final samples are clamped to 0...1,
    /// which removes the over/undershoot of bicubic and lanczos at sharp edges.
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResizeFilter = .lanczos,
                        clamp: Bool = true) throws -> Image {
        guard newWidth > 0, newHeight > 0 else {
            throw ImagingError(.invalidArgument, "resize target must be positive, got \(newWidth)x\(newHeight)")
        }
        guard newWidth <= 1 << 16, newHeight <= 1 << 16 else {
            throw ImagingError(.invalidArgument, "resize target \(newWidth)x\(newHeight) is too large (max 65536 per side)")
        }
        if newWidth == width, newHeight == height { return self }
        if filter == .nearest { return resizedNearest(newWidth, newHeight) }
        var current = self
        if newWidth != width {
            current = current.resampledHorizontally(ResampleCoefficients(inSize: width, outSize: newWidth, filter: filter),
                                                    outWidth: newWidth, clamp: clamp)
        }
        if newHeight != height {
            current = current.resampledVertically(ResampleCoefficients(inSize: height, outSize: newHeight, filter: filter),
                                                  outHeight: newHeight, clamp: clamp)
        }
        return current
    }

    /// Resizes by a scale factor; the new size is `round(size * scale)`, at least 1.
    public func resized(scale: Double, filter: ResizeFilter = .lanczos) throws -> Image {
        guard scale > 0, scale.isFinite else {
            throw ImagingError(.invalidArgument, "resize scale must be positive, got \(scale)")
        }
        let w = max(1, Int((Double(width) * scale).rounded()))
        let h = max(1, Int((Double(height) * scale).rounded()))
        return try resized(width: w, height: h, filter: filter)
    }

    private func resizedNearest(_ newWidth: Int, _ newHeight: Int) -> Image {
        // Pillow's ImagingScaleAffine: positions accumulate in double from a half-pixel offset.
        let ax = Double(width) / Double(newWidth)
        let ay = Double(height) / Double(newHeight)
        var xs = [Int](repeating: 0, count: newWidth)
        var xo = ax * 0.5
        for x in 0..<newWidth {
            xs[x] = min(Int(xo), width - 1)
            xo += ax
        }
        let ch = channels
        var out = [Float](repeating: 0, count: newWidth * newHeight * ch)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var yo = ay * 0.5
                for y in 0..<newHeight {
                    let sy = min(Int(yo), height - 1)
                    yo += ay
                    let srow = sy * width * ch
                    let drow = y * newWidth * ch
                    for x in 0..<newWidth {
                        let s = srow + xs[x] * ch
                        let d = drow + x * ch
                        for c in 0..<ch { dst[d + c] = src[s + c] }
                    }
                }
            }
        }
        return Image(width: newWidth, height: newHeight, channels: ch, pixels: out)
    }

    private func resampledHorizontally(_ co: ResampleCoefficients, outWidth: Int, clamp: Bool) -> Image {
        let ch = channels
        let inW = width
        let ks = co.ksize
        var out = [Float](repeating: 0, count: outWidth * height * ch)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                co.weights.withUnsafeBufferPointer { wts in
                    for y in 0..<height {
                        let srow = src.baseAddress! + y * inW * ch
                        let drow = dst.baseAddress! + y * outWidth * ch
                        for xx in 0..<outWidth {
                            let first = co.first[xx], n = co.count[xx]
                            let w = wts.baseAddress! + xx * ks
                            for c in 0..<ch {
                                var acc: Float = 0
                                var p = srow + first * ch + c
                                for k in 0..<n {
                                    acc += w[k] * p.pointee
                                    p += ch
                                }
                                drow[xx * ch + c] = clamp ? min(max(acc, 0), 1) : acc
                            }
                        }
                    }
                }
            }
        }
        return Image(width: outWidth, height: height, channels: ch, pixels: out)
    }

    private func resampledVertically(_ co: ResampleCoefficients, outHeight: Int, clamp: Bool) -> Image {
        let rowLen = width * channels
        let ks = co.ksize
        var out = [Float](repeating: 0, count: rowLen * outHeight)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                co.weights.withUnsafeBufferPointer { wts in
                    for yy in 0..<outHeight {
                        let first = co.first[yy], n = co.count[yy]
                        let w = wts.baseAddress! + yy * ks
                        let drow = dst.baseAddress! + yy * rowLen
                        // Accumulate whole rows: contiguous, vectorisable.
                        for k in 0..<n {
                            let wk = w[k]
                            let srow = src.baseAddress! + (first + k) * rowLen
                            for i in 0..<rowLen { drow[i] += wk * srow[i] }
                        }
                        if clamp {
                            for i in 0..<rowLen { drow[i] = min(max(drow[i], 0), 1) }
                        }
                    }
                }
            }
        }
        return Image(width: width, height: outHeight, channels: channels, pixels: out)
    }
}
