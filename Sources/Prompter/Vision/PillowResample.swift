import Foundation
import Imaging

/// An 8-bit interleaved image as Pillow holds an `RGB` (or `L`) picture: `channels` bytes per pixel,
/// row-major. The preprocessing works on this form so that every rounding step is Pillow's.
struct Bitmap8: Equatable {
    var width: Int
    var height: Int
    var channels: Int
    var bytes: [UInt8]

    init(width: Int, height: Int, channels: Int, bytes: [UInt8]) {
        precondition(bytes.count == width * height * channels)
        self.width = width; self.height = height; self.channels = channels; self.bytes = bytes
    }

    init(width: Int, height: Int, channels: Int, fill: [UInt8]) {
        precondition(fill.count == channels)
        var b = [UInt8](repeating: 0, count: width * height * channels)
        for i in 0..<(width * height) { for c in 0..<channels { b[i * channels + c] = fill[c] } }
        self.init(width: width, height: height, channels: channels, bytes: b)
    }
}

/// Pillow's resampling filters as numbered by `PIL.Image.Resampling` (the `resample` of a
/// `preprocessor_config.json`); the kernels are Imaging's `ResizeFilter`.
public enum PillowFilter: Int, Sendable, CaseIterable {
    case nearest = 0, lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5

    var resizeFilter: ResizeFilter {
        switch self {
        case .nearest: .nearest
        case .lanczos: .lanczos
        case .bilinear: .bilinear
        case .bicubic: .bicubic
        case .box: .box
        case .hamming: .hamming
        }
    }
}

/// Pillow's `Image.resize` for 8-bit images, bit for bit: double-precision coefficients
/// (`precompute_coeffs`), converted to fixed point with 22 fractional bits (`normalize_coeffs_8bpc`),
/// two passes (`ImagingResampleHorizontal_8bpc`, `ImagingResampleVertical_8bpc`) with the intermediate
/// rounded and clipped to 8 bits, horizontal first. NEAREST uses Pillow's affine sampling.
enum PillowResample {
    static let precisionBits = 32 - 8 - 2

    struct Coefficients {
        var first: [Int]
        var count: [Int]
        var kernel: [Int32]  // outSize × ksize
        var ksize: Int
    }

    /// Imaging's double coefficients (`precompute_coeffs`) in Pillow's fixed point (`normalize_coeffs_8bpc`).
    static func coefficients(inSize: Int, outSize: Int, filter: PillowFilter) -> Coefficients {
        let c = PillowCoefficients(inSize: inSize, outSize: outSize, filter: filter.resizeFilter)
        let one = Double(1 << precisionBits)
        let kernel = c.weights.map { v in Int32(v < 0 ? (-0.5 + v * one) : (0.5 + v * one)) }
        return Coefficients(first: c.first, count: c.count, kernel: kernel, ksize: c.ksize)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)  // arithmetic shift, as Pillow's lookup index
        return s <= 0 ? 0 : s >= 255 ? 255 : UInt8(s)
    }

    /// `image.resize((width, height), filter)`.
    static func resize(_ im: Bitmap8, width: Int, height: Int, filter: PillowFilter) -> Bitmap8 {
        if width == im.width, height == im.height { return im }
        if filter == .nearest { return nearest(im, width: width, height: height) }
        // Horizontal pass first, as Pillow ≤ 9 (the versions with `Image.ANTIALIAS` that LLaVA/LLMGA ran on)
        // always does. Pillow 13 runs the vertical pass first for some mixed up/down scalings (the 8-bit
        // intermediate then rounds differently, by a few levels); LLaVA's resizes (one-axis squash, uniform
        // shortest-edge resize) are not affected.
        var cur = im
        if width != im.width { cur = horizontal(cur, coefficients(inSize: cur.width, outSize: width, filter: filter)) }
        if height != im.height { cur = vertical(cur, coefficients(inSize: cur.height, outSize: height, filter: filter)) }
        return cur
    }

    private static func horizontal(_ im: Bitmap8, _ co: Coefficients) -> Bitmap8 {
        let ch = im.channels, outW = co.first.count
        var out = [UInt8](repeating: 0, count: outW * im.height * ch)
        let half = Int32(1 << (precisionBits - 1))
        im.bytes.withUnsafeBufferPointer { src in
            co.kernel.withUnsafeBufferPointer { kern in
                for y in 0..<im.height {
                    let srow = y * im.width * ch, drow = y * outW * ch
                    for xx in 0..<outW {
                        let xmin = co.first[xx], n = co.count[xx], kb = xx * co.ksize
                        for c in 0..<ch {
                            var ss = half
                            for x in 0..<n { ss &+= Int32(src[srow + (x + xmin) * ch + c]) &* kern[kb + x] }
                            out[drow + xx * ch + c] = clip8(ss)
                        }
                    }
                }
            }
        }
        return Bitmap8(width: outW, height: im.height, channels: ch, bytes: out)
    }

    private static func vertical(_ im: Bitmap8, _ co: Coefficients) -> Bitmap8 {
        let ch = im.channels, outH = co.first.count, rowLen = im.width * ch
        var out = [UInt8](repeating: 0, count: rowLen * outH)
        let half = Int32(1 << (precisionBits - 1))
        im.bytes.withUnsafeBufferPointer { src in
            co.kernel.withUnsafeBufferPointer { kern in
                for yy in 0..<outH {
                    let ymin = co.first[yy], n = co.count[yy], kb = yy * co.ksize
                    for i in 0..<rowLen {
                        var ss = half
                        for y in 0..<n { ss &+= Int32(src[(y + ymin) * rowLen + i]) &* kern[kb + y] }
                        out[yy * rowLen + i] = clip8(ss)
                    }
                }
            }
        }
        return Bitmap8(width: im.width, height: outH, channels: ch, bytes: out)
    }

    /// Pillow's NEAREST (`ImagingScaleAffine`): positions accumulate in double from a half-pixel offset.
    private static func nearest(_ im: Bitmap8, width: Int, height: Int) -> Bitmap8 {
        let ax = Double(im.width) / Double(width), ay = Double(im.height) / Double(height)
        var xs = [Int](repeating: 0, count: width)
        var xo = ax * 0.5
        for x in 0..<width { xs[x] = min(Int(xo), im.width - 1); xo += ax }
        let ch = im.channels
        var out = [UInt8](repeating: 0, count: width * height * ch)
        var yo = ay * 0.5
        for y in 0..<height {
            let sy = min(Int(yo), im.height - 1)
            yo += ay
            for x in 0..<width {
                for c in 0..<ch { out[(y * width + x) * ch + c] = im.bytes[(sy * im.width + xs[x]) * ch + c] }
            }
        }
        return Bitmap8(width: width, height: height, channels: ch, bytes: out)
    }
}
