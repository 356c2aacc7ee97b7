/// Canny edge detection, bit-exact with OpenCV's `cv2.Canny(gray, low, high, apertureSize=3,
/// L2gradient=...)` on the same 8-bit input.
public enum Canny {
    /// Edges of an 8-bit gray image (`width * height` bytes, row-major): 255 on edges, 0 elsewhere.
    ///
    /// As OpenCV: 3×3 Sobel gradients (BORDER_REPLICATE); magnitude `|gx| + |gy|`, or
    /// `gx² + gy²` against squared thresholds when `l2Gradient`; thresholds are floored to
    /// integers and swapped if `low > high`; non-maximum suppression with the integer
    /// tan(22.5°) tests (magnitudes outside the image count as 0); hysteresis keeps
    /// candidates (`magnitude > low` and a local maximum) 8-connected to one with
    /// `magnitude > high`.
    public static func edges(gray: [UInt8], width w: Int, height h: Int, low: Double, high: Double,
                             l2Gradient: Bool = false) -> [UInt8] {
        precondition(gray.count == w * h && w > 0 && h > 0, "Canny: gray buffer does not match \(w)x\(h)")
        var lo = low, hi = high
        if lo > hi { swap(&lo, &hi) }
        if l2Gradient {
            lo = min(32767, lo)
            hi = min(32767, hi)
            if lo > 0 { lo *= lo }
            if hi > 0 { hi *= hi }
        }
        let lowT = Int32(clamping: Int(lo.rounded(.down)))
        let highT = Int32(clamping: Int(hi.rounded(.down)))

        // Padded copies: source with a replicated 1-pixel border; magnitude with a zero border;
        // the map with a border marked "not an edge".
        let pw = w + 2, ph = h + 2
        var src = [Int32](repeating: 0, count: pw * ph)
        var dx = [Int32](repeating: 0, count: w * h)
        var dy = [Int32](repeating: 0, count: w * h)
        var mag = [Int32](repeating: 0, count: pw * ph)
        var map = [UInt8](repeating: 1, count: pw * ph)
        var stack: [Int] = []
        stack.reserveCapacity(max(1024, w * h / 16))

        gray.withUnsafeBufferPointer { g in
            src.withUnsafeMutableBufferPointer { s in
                for y in 0..<ph {
                    let sy = min(max(y - 1, 0), h - 1)
                    for x in 0..<pw {
                        let sx = min(max(x - 1, 0), w - 1)
                        s[y * pw + x] = Int32(g[sy * w + sx])
                    }
                }
            }
        }
        src.withUnsafeBufferPointer { s in
            dx.withUnsafeMutableBufferPointer { gx in
                dy.withUnsafeMutableBufferPointer { gy in
                    mag.withUnsafeMutableBufferPointer { m in
                        for y in 0..<h {
                            let r0 = s.baseAddress! + y * pw + 1       // row above, centred on x
                            let r1 = r0 + pw
                            let r2 = r1 + pw
                            let mrow = m.baseAddress! + (y + 1) * pw + 1
                            for x in 0..<w {
                                let a = r0[x - 1], b = r0[x], c = r0[x + 1]
                                let d = r1[x - 1], f = r1[x + 1]
                                let gg = r2[x - 1], hh = r2[x], ii = r2[x + 1]
                                let vx = (c + 2 &* f + ii) - (a + 2 &* d + gg)
                                let vy = (gg + 2 &* hh + ii) - (a + 2 &* b + c)
                                gx[y * w + x] = vx
                                gy[y * w + x] = vy
                                mrow[x] = l2Gradient ? vx &* vx &+ vy &* vy : abs(vx) + abs(vy)
                            }
                        }
                    }
                }
            }
        }

        let tg22: Int32 = 13573 // (int)(tan(22.5°) * 2^15 + 0.5)
        mag.withUnsafeBufferPointer { m in
            map.withUnsafeMutableBufferPointer { mp in
                dx.withUnsafeBufferPointer { gx in
                    dy.withUnsafeBufferPointer { gy in
                        for y in 0..<h {
                            for x in 0..<w {
                                let j = (y + 1) * pw + x + 1
                                let v = m[j]
                                var isMax = false
                                if v > lowT {
                                    let xs = gx[y * w + x], ys = gy[y * w + x]
                                    let ax = abs(xs)
                                    let ay = abs(ys) << 15
                                    let tg22x = ax &* tg22
                                    if ay < tg22x {
                                        isMax = v > m[j - 1] && v >= m[j + 1]
                                    } else {
                                        let tg67x = tg22x &+ (ax << 16)
                                        if ay > tg67x {
                                            isMax = v > m[j - pw] && v >= m[j + pw]
                                        } else {
                                            let s = (xs ^ ys) < 0 ? -1 : 1
                                            isMax = v > m[j - pw - s] && v > m[j + pw + s]
                                        }
                                    }
                                }
                                if isMax {
                                    if v > highT {
                                        mp[j] = 2
                                        stack.append(j)
                                    } else {
                                        mp[j] = 0
                                    }
                                }
                            }
                        }
                        // Hysteresis: grow strong edges through 8-connected candidates.
                        let offsets = [-pw - 1, -pw, -pw + 1, -1, 1, pw - 1, pw, pw + 1]
                        while let j = stack.popLast() {
                            for o in offsets where mp[j + o] == 0 {
                                mp[j + o] = 2
                                stack.append(j + o)
                            }
                        }
                    }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: w * h)
        map.withUnsafeBufferPointer { mp in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<h {
                    for x in 0..<w where mp[(y + 1) * pw + x + 1] == 2 { o[y * w + x] = 255 }
                }
            }
        }
        return out
    }
}

extension Image {
    /// Canny edges as a 1-channel 0/1 mask. The image is first blurred with `blurSigma`
    /// (0 = no blur, in Float, see `gaussianBlurred(sigma:)`), then converted to 8-bit gray
    /// exactly as OpenCV does (`grayscale8()`), then run through `Canny.edges`.
    public func canny(low: Double, high: Double, l2Gradient: Bool = false, blurSigma: Double = 0) throws -> Image {
        guard low.isFinite, high.isFinite, low >= 0, high >= 0 else {
            throw ImagingError(.invalidArgument, "Canny thresholds must be finite and >= 0, got \(low) and \(high)")
        }
        guard blurSigma.isFinite, blurSigma >= 0 else {
            throw ImagingError(.invalidArgument, "Canny blur sigma must be finite and >= 0, got \(blurSigma)")
        }
        let source = blurSigma > 0 ? try gaussianBlurred(sigma: blurSigma) : self
        let e = Canny.edges(gray: source.grayscale8(), width: width, height: height, low: low, high: high,
                            l2Gradient: l2Gradient)
        var px = [Float](repeating: 0, count: e.count)
        for i in 0..<e.count where e[i] != 0 { px[i] = 1 }
        return Image(width: width, height: height, channels: 1, pixels: px)
    }
}
