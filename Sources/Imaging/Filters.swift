import Foundation

extension Image {
    /// The Gaussian kernel size OpenCV picks for 8-bit images when `ksize` is 0:
    /// `round(sigma * 6 + 1) | 1` (a radius of about 3 sigma).
    public static func gaussianKernelSize(sigma: Double) -> Int {
        Int((sigma * 6 + 1).rounded()) | 1
    }

    /// OpenCV's `getGaussianKernel(ksize, sigma)`: `exp(-(i - (ksize-1)/2)^2 / (2 sigma^2))`,
    /// normalised to sum 1.
    public static func gaussianKernel(size: Int, sigma: Double) -> [Float] {
        precondition(size >= 1 && size % 2 == 1, "Gaussian kernel size must be odd and positive")
        let s = sigma > 0 ? sigma : (Double(size - 1) * 0.5 - 1) * 0.3 + 0.8
        let scale2 = -0.5 / (s * s)
        var k = [Double](repeating: 0, count: size)
        var sum = 0.0
        for i in 0..<size {
            let x = Double(i) - Double(size - 1) * 0.5
            k[i] = exp(scale2 * x * x)
            sum += k[i]
        }
        return k.map { Float($0 / sum) }
    }

    /// Gaussian blur as OpenCV's `GaussianBlur(src, (0, 0), sigma)` on an 8-bit image:
    /// separable, kernel size `gaussianKernelSize(sigma:)`, border BORDER_REFLECT_101.
    /// Computed in Float (OpenCV rounds its 8-bit kernel to fixed point: results agree within
    /// one 8-bit level). `sigma <= 0` returns the image unchanged.
    public func gaussianBlurred(sigma: Double) throws -> Image {
        guard sigma.isFinite, sigma >= 0 else {
            throw ImagingError(.invalidArgument, "blur sigma must be a finite number >= 0, got \(sigma)")
        }
        guard sigma > 0 else { return self }
        guard sigma <= 1000 else {
            throw ImagingError(.invalidArgument, "blur sigma \(sigma) is too large (max 1000)")
        }
        let size = Image.gaussianKernelSize(sigma: sigma)
        return separableFiltered(kernel: Image.gaussianKernel(size: size, sigma: sigma))
    }

    /// Convolves rows then columns with a symmetric odd-length `kernel`, BORDER_REFLECT_101.
    func separableFiltered(kernel: [Float]) -> Image {
        let r = kernel.count / 2
        let ch = channels
        let w = width, h = height
        // Source index for each padded position, per axis.
        let xIndex = (-r..<(w + r)).map { reflect101($0, w) }
        let yIndex = (-r..<(h + r)).map { reflect101($0, h) }
        var temp = [Float](repeating: 0, count: pixels.count)
        var out = [Float](repeating: 0, count: pixels.count)
        let rowLen = w * ch
        pixels.withUnsafeBufferPointer { src in
            temp.withUnsafeMutableBufferPointer { tmp in
                kernel.withUnsafeBufferPointer { k in
                    xIndex.withUnsafeBufferPointer { xi in
                        var padded = [Float](repeating: 0, count: (w + 2 * r) * ch)
                        padded.withUnsafeMutableBufferPointer { pad in
                            for y in 0..<h {
                                let srow = src.baseAddress! + y * rowLen
                                for p in 0..<(w + 2 * r) {
                                    let s = xi[p] * ch
                                    for c in 0..<ch { pad[p * ch + c] = srow[s + c] }
                                }
                                let drow = tmp.baseAddress! + y * rowLen
                                for i in 0..<rowLen { drow[i] = 0 }
                                for t in 0..<k.count {
                                    let kt = k[t]
                                    let prow = pad.baseAddress! + t * ch
                                    for i in 0..<rowLen { drow[i] += kt * prow[i] }
                                }
                            }
                        }
                    }
                }
            }
        }
        temp.withUnsafeBufferPointer { tmp in
            out.withUnsafeMutableBufferPointer { dst in
                kernel.withUnsafeBufferPointer { k in
                    for y in 0..<h {
                        let drow = dst.baseAddress! + y * rowLen
                        for t in 0..<k.count {
                            let kt = k[t]
                            let srow = tmp.baseAddress! + yIndex[y + t] * rowLen
                            for i in 0..<rowLen { drow[i] += kt * srow[i] }
                        }
                    }
                }
            }
        }
        return Image(width: w, height: h, channels: ch, pixels: out)
    }

    /// Luminance as OpenCV's `cvtColor(RGB2GRAY)`: `0.299 R + 0.587 G + 0.114 B`, as a
    /// 1-channel image. Gray images return their gray channel; alpha is dropped.
    public func grayscale() -> Image {
        if channels == 1 { return self }
        return converted(toChannels: 1)
    }

    /// The image as 8-bit gray, exactly as OpenCV 5 converts an 8-bit RGB image
    /// (`cvtColor(RGB2GRAY)`): each sample quantised with `round(v * 255)` (halves up), then
    /// `(9798 R + 19235 G + 3735 B + 16384) >> 15` (checked equal to cv2 5.0 on all 2^24
    /// colours). Gray images are only quantised; alpha is ignored.
    public func grayscale8() -> [UInt8] {
        let n = pixelCount
        var out = [UInt8](repeating: 0, count: n)
        let ch = channels
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                if ch >= 3 {
                    for i in 0..<n {
                        let r = Int(quantize8(s[i * ch])), g = Int(quantize8(s[i * ch + 1])), b = Int(quantize8(s[i * ch + 2]))
                        d[i] = UInt8((r * 9798 + g * 19235 + b * 3735 + 16384) >> 15)
                    }
                } else {
                    for i in 0..<n { d[i] = quantize8(s[i * ch]) }
                }
            }
        }
        return out
    }
}

/// OpenCV's borderInterpolate for BORDER_REFLECT_101 (`gfedcb|abcdefgh|gfedcba`).
func reflect101(_ p: Int, _ len: Int) -> Int {
    if len == 1 { return 0 }
    var p = p
    while p < 0 || p >= len {
        if p < 0 { p = -p } else { p = 2 * len - p - 2 }
    }
    return p
}
