extension Image {
    /// 1 where a sample is greater than `level`, else 0 (per sample).
    public func thresholded(_ level: Float) -> Image {
        var out = self
        out.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = p[i] > level ? 1 : 0 }
        }
        return out
    }

    /// `1 - v` per sample.
    public func inverted() -> Image {
        var out = self
        out.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = 1 - p[i] }
        }
        return out
    }

    /// A mask from the alpha channel, as ComfyUI's image loader: `1 - alpha` (transparent
    /// pixels are selected). Images without alpha give an all-zero mask.
    public func maskFromAlpha() -> Image {
        guard hasAlpha, let a = alpha else { return .mask(width: width, height: height) }
        return a.inverted()
    }

    /// A mask from luminance (`0.299 R + 0.587 G + 0.114 B`; gray as it is).
    public func luminanceMask() -> Image { grayscale() }

    /// Grows (dilates, `radius` > 0) or shrinks (erodes, `radius` < 0) by `|radius|` pixels with
    /// a disc-shaped structuring element (offsets with `dx² + dy² <= radius²`). Each channel is
    /// filtered separately; pixels outside the image do not take part.
    public func grown(by radius: Int) throws -> Image {
        guard abs(radius) <= 4096 else {
            throw ImagingError(.invalidArgument, "grow radius \(radius) is too large (max 4096)")
        }
        if radius == 0 { return self }
        return radius > 0 ? morphology(radius: radius, dilate: true) : morphology(radius: -radius, dilate: false)
    }

    /// Dilation by a disc of `radius` pixels (maximum over the disc).
    public func dilated(radius: Int) throws -> Image { try grown(by: abs(radius)) }

    /// Erosion by a disc of `radius` pixels (minimum over the disc).
    public func eroded(radius: Int) throws -> Image { try grown(by: -abs(radius)) }

    /// Maximum (or minimum) over a disc. The disc is a stack of horizontal spans: for each
    /// row offset `dy` the span half-width is `w(dy) = floor(sqrt(r² - dy²))`. Each distinct
    /// width gets one running-max pass over all rows (van Herk/Gil-Werman, O(1) per pixel),
    /// then combined into the rows `±dy` that use it: O(pixels × radius) in all.
    private func morphology(radius r: Int, dilate: Bool) -> Image {
        let w = width, h = height, ch = channels, n = w * h
        var halfWidth = [Int](repeating: 0, count: r + 1)
        for dy in 0...r {
            var k = Int(Double(r * r - dy * dy).squareRoot())
            while k * k + dy * dy > r * r { k -= 1 }
            while (k + 1) * (k + 1) + dy * dy <= r * r { k += 1 }
            halfWidth[dy] = k
        }
        var out = [Float](repeating: 0, count: pixels.count)
        var plane = [Float](repeating: 0, count: n)
        var acc = [Float](repeating: 0, count: n)
        var spans = [Float](repeating: 0, count: n)
        let sign: Float = dilate ? 1 : -1
        for c in 0..<ch {
            // Work on a sign-flipped plane so erosion is dilation of the negation.
            for i in 0..<n { plane[i] = sign * pixels[i * ch + c] }
            for i in 0..<n { acc[i] = -.infinity }
            var dy = 0
            while dy <= r {
                let hw = halfWidth[dy]
                runningMax(plane, into: &spans, width: w, height: h, halfWidth: hw)
                // All dy sharing this half-width (consecutive in dy) reuse `spans`.
                var last = dy
                while last + 1 <= r, halfWidth[last + 1] == hw { last += 1 }
                acc.withUnsafeMutableBufferPointer { a in
                    spans.withUnsafeBufferPointer { s in
                        for d in dy...last {
                            for off in d == 0 ? [0] : [d, -d] {
                                let y0 = max(0, -off), y1 = min(h, h - off)
                                if y0 >= y1 { continue }
                                for y in y0..<y1 {
                                    let arow = a.baseAddress! + y * w
                                    let srow = s.baseAddress! + (y + off) * w
                                    for x in 0..<w { arow[x] = max(arow[x], srow[x]) }
                                }
                            }
                        }
                    }
                }
                dy = last + 1
            }
            for i in 0..<n { out[i * ch + c] = sign * acc[i] }
        }
        return Image(width: w, height: h, channels: ch, pixels: out)
    }
}

/// For each row, the maximum of `src` over `[x - hw, x + hw]` clipped to the row.
private func runningMax(_ src: [Float], into dst: inout [Float], width w: Int, height h: Int, halfWidth hw: Int) {
    if hw == 0 {
        dst.withUnsafeMutableBufferPointer { d in src.withUnsafeBufferPointer { s in d.baseAddress!.update(from: s.baseAddress!, count: s.count) } }
        return
    }
    let k = 2 * hw + 1
    let len = w + 2 * hw
    var padded = [Float](repeating: -.infinity, count: len)
    var g = [Float](repeating: 0, count: len)
    var hh = [Float](repeating: 0, count: len)
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
            padded.withUnsafeMutableBufferPointer { p in
                g.withUnsafeMutableBufferPointer { g in
                    hh.withUnsafeMutableBufferPointer { hh in
                        for y in 0..<h {
                            (p.baseAddress! + hw).update(from: s.baseAddress! + y * w, count: w)
                            // Prefix maxima within blocks of k, and suffix maxima within blocks.
                            for i in 0..<len { g[i] = i % k == 0 ? p[i] : max(g[i - 1], p[i]) }
                            var i = len - 1
                            while i >= 0 {
                                hh[i] = (i == len - 1 || (i + 1) % k == 0) ? p[i] : max(hh[i + 1], p[i])
                                i -= 1
                            }
                            let row = d.baseAddress! + y * w
                            for x in 0..<w { row[x] = max(hh[x], g[x + k - 1]) }
                        }
                    }
                }
            }
        }
    }
}

extension Image {
    /// `base * (1 - mask) + overlay * mask`. The overlay is converted to the base's channel
    /// count; all three must have the same width and height, and the mask one channel.
    public static func composite(base: Image, overlay: Image, mask: Image) throws -> Image {
        guard base.width == overlay.width, base.height == overlay.height else {
            throw ImagingError(.sizeMismatch,
                               "composite: overlay is \(overlay.width)x\(overlay.height) but base is \(base.width)x\(base.height)")
        }
        guard base.width == mask.width, base.height == mask.height else {
            throw ImagingError(.sizeMismatch,
                               "composite: mask is \(mask.width)x\(mask.height) but base is \(base.width)x\(base.height)")
        }
        guard mask.channels == 1 else {
            throw ImagingError(.invalidArgument, "composite: mask must have 1 channel, got \(mask.channels)")
        }
        let ov = overlay.converted(toChannels: base.channels)
        var out = base
        let ch = base.channels
        out.pixels.withUnsafeMutableBufferPointer { o in
            ov.pixels.withUnsafeBufferPointer { v in
                mask.pixels.withUnsafeBufferPointer { m in
                    for i in 0..<m.count {
                        let a = m[i]
                        for c in 0..<ch {
                            let j = i * ch + c
                            o[j] = o[j] * (1 - a) + v[j] * a
                        }
                    }
                }
            }
        }
        return out
    }
}
