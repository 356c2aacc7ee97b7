/// An image or mask: Float32 samples, interleaved (row-major, channel-last), nominally 0...1.
/// Masks are 1-channel images where 1 means selected.
public struct Image: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [Float]

    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(pixels.count == width * height * channels)
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int, fill: Float = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [Float](repeating: fill, count: width * height * channels))
    }
}

extension Image {
    /// Creates an image after checking the shape, throwing instead of trapping on bad input.
    public init(validating width: Int, height: Int, channels: Int, pixels: [Float]) throws {
        guard width > 0, height > 0 else {
            throw ImagingError(.invalidArgument, "image size must be positive, got \(width)x\(height)")
        }
        guard (1...4).contains(channels) else {
            throw ImagingError(.invalidArgument, "an image has 1 to 4 channels, got \(channels)")
        }
        guard pixels.count == width * height * channels else {
            throw ImagingError(.invalidArgument,
                               "image \(width)x\(height)x\(channels) needs \(width * height * channels) samples, got \(pixels.count)")
        }
        self.init(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// A 1-channel mask filled with `value`.
    public static func mask(width: Int, height: Int, fill: Float = 0) -> Image {
        Image(width: width, height: height, channels: 1, fill: fill)
    }

    public var pixelCount: Int { width * height }
    public var hasAlpha: Bool { channels == 2 || channels == 4 }
    /// The number of colour (non-alpha) channels: 1 for gray, 3 for RGB.
    public var colorChannels: Int { channels >= 3 ? 3 : 1 }

    /// The sample at column `x`, row `y`, channel `c`.
    public subscript(x: Int, y: Int, c: Int) -> Float {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// One channel as a 1-channel image.
    public func channel(_ c: Int) throws -> Image {
        guard c >= 0, c < channels else {
            throw ImagingError(.invalidArgument, "channel \(c) does not exist in a \(channels)-channel image")
        }
        var out = [Float](repeating: 0, count: pixelCount)
        let ch = channels
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<dst.count { dst[i] = src[i * ch + c] }
            }
        }
        return Image(width: width, height: height, channels: 1, pixels: out)
    }

    /// The alpha channel, or nil for images without one.
    public var alpha: Image? { hasAlpha ? try? channel(channels - 1) : nil }

    /// The image as RGB: gray is repeated into three channels, alpha is dropped.
    public func rgb() -> Image {
        converted(toChannels: 3)
    }

    /// The image as RGBA: gray is repeated, a missing alpha is 1.
    public func rgba() -> Image {
        converted(toChannels: 4)
    }

    /// Converts between gray (1), gray+alpha (2), RGB (3) and RGBA (4). Colour to gray uses
    /// the luminance weights 0.299/0.587/0.114; a missing alpha is 1; a dropped alpha is discarded.
    public func converted(toChannels target: Int) -> Image {
        precondition((1...4).contains(target), "an image has 1 to 4 channels")
        if target == channels { return self }
        let n = pixelCount
        let src = channels
        var out = [Float](repeating: 0, count: n * target)
        let srcColor = colorChannels
        let srcAlpha = hasAlpha
        let dstColor = target >= 3 ? 3 : 1
        let dstAlpha = target == 2 || target == 4
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<n {
                    let sp = i * src, dp = i * target
                    if dstColor == srcColor {
                        for c in 0..<dstColor { d[dp + c] = s[sp + c] }
                    } else if dstColor == 3 {
                        let g = s[sp]
                        d[dp] = g; d[dp + 1] = g; d[dp + 2] = g
                    } else {
                        d[dp] = 0.299 * s[sp] + 0.587 * s[sp + 1] + 0.114 * s[sp + 2]
                    }
                    if dstAlpha { d[dp + dstColor] = srcAlpha ? s[sp + srcColor] : 1 }
                }
            }
        }
        return Image(width: width, height: height, channels: target, pixels: out)
    }

    /// Samples clamped to 0...1.
    public func clamped() -> Image {
        var out = self
        out.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = min(max(p[i], 0), 1) }
        }
        return out
    }

    /// The image quantised to 8 bits per sample: `round(clamp(v, 0, 1) * 255)` (half up).
    public func quantized8() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<s.count { d[i] = quantize8(s[i]) }
            }
        }
        return out
    }

    /// An image from 8-bit samples (`v / 255`).
    public init(width: Int, height: Int, channels: Int, bytes: [UInt8]) {
        precondition(bytes.count == width * height * channels)
        var px = [Float](repeating: 0, count: bytes.count)
        bytes.withUnsafeBufferPointer { s in
            px.withUnsafeMutableBufferPointer { d in
                for i in 0..<s.count { d[i] = Float(s[i]) / 255 }
            }
        }
        self.init(width: width, height: height, channels: channels, pixels: px)
    }

    /// Largest absolute difference between two images of the same shape (nil if shapes differ).
    public func maxAbsDifference(_ other: Image) -> Float? {
        guard width == other.width, height == other.height, channels == other.channels else { return nil }
        var m: Float = 0
        for i in 0..<pixels.count { m = max(m, abs(pixels[i] - other.pixels[i])) }
        return m
    }
}

/// `round(clamp(v, 0, 1) * 255)`, rounding halves up; NaN becomes 0.
@inline(__always)
func quantize8(_ v: Float) -> UInt8 {
    let x = v * 255 + 0.5
    if !(x > 0) { return 0 }
    if x >= 255 { return 255 }
    return UInt8(x)
}

/// `round(clamp(v, 0, 1) * 65535)`, rounding halves up; NaN becomes 0.
@inline(__always)
func quantize16(_ v: Float) -> UInt16 {
    let x = v * 65535 + 0.5
    if !(x > 0) { return 0 }
    if x >= 65535 { return 65535 }
    return UInt16(x)
}
