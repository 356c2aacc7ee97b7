/// How new pixels around an image are filled.
public enum PadFill: Sendable, Equatable {
    /// Repeat the nearest edge pixel.
    case edge
    /// A constant colour: one value per channel, or the colour channels only (alpha becomes 1),
    /// or a single value for every colour channel (alpha becomes 1).
    case constant([Float])
}

extension Image {
    /// The rectangle at (`x`, `y`) of size `width`x`height`. Throws when it does not lie
    /// entirely inside the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) throws -> Image {
        guard w > 0, h > 0 else {
            throw ImagingError(.invalidArgument, "crop size must be positive, got \(w)x\(h)")
        }
        guard x >= 0, y >= 0, x + w <= width, y + h <= height else {
            throw ImagingError(.invalidArgument,
                               "crop \(w)x\(h) at (\(x), \(y)) is outside the \(width)x\(height) image")
        }
        let ch = channels
        var out = [Float](repeating: 0, count: w * h * ch)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for row in 0..<h {
                    let s = src.baseAddress! + ((y + row) * width + x) * ch
                    let d = dst.baseAddress! + row * w * ch
                    d.update(from: s, count: w * ch)
                }
            }
        }
        return Image(width: w, height: h, channels: ch, pixels: out)
    }

    /// The constant fill values for this image's channels.
    func fillValues(_ colour: [Float]) throws -> [Float] {
        if colour.count == channels { return colour }
        if colour.count == colorChannels { return colour + (hasAlpha ? [1] : []) }
        if colour.count == 1 {
            return [Float](repeating: colour[0], count: colorChannels) + (hasAlpha ? [1] : [])
        }
        throw ImagingError(.invalidArgument,
                           "fill colour has \(colour.count) values; a \(channels)-channel image needs \(channels), \(colorChannels) or 1")
    }

    /// The image on a larger canvas, grown by the given number of pixels on each side.
    public func padded(left: Int, top: Int, right: Int, bottom: Int, fill: PadFill = .edge) throws -> Image {
        guard left >= 0, top >= 0, right >= 0, bottom >= 0 else {
            throw ImagingError(.invalidArgument,
                               "padding must not be negative (left \(left), top \(top), right \(right), bottom \(bottom))")
        }
        let nw = width + left + right, nh = height + top + bottom
        guard nw <= 1 << 16, nh <= 1 << 16 else {
            throw ImagingError(.invalidArgument, "padded size \(nw)x\(nh) is too large (max 65536 per side)")
        }
        let ch = channels
        var out = [Float](repeating: 0, count: nw * nh * ch)
        switch fill {
        case .edge:
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<nh {
                        let sy = min(max(y - top, 0), height - 1)
                        let srow = src.baseAddress! + sy * width * ch
                        let drow = dst.baseAddress! + y * nw * ch
                        for x in 0..<nw {
                            let sx = min(max(x - left, 0), width - 1)
                            for c in 0..<ch { drow[x * ch + c] = srow[sx * ch + c] }
                        }
                    }
                }
            }
        case .constant(let colour):
            let v = try fillValues(colour)
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(nw * nh) { for c in 0..<ch { dst[i * ch + c] = v[c] } }
            }
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<height {
                        (dst.baseAddress! + ((y + top) * nw + left) * ch)
                            .update(from: src.baseAddress! + y * width * ch, count: width * ch)
                    }
                }
            }
        }
        return Image(width: nw, height: nh, channels: ch, pixels: out)
    }

    /// Grows the canvas for outpainting. Returns the padded image and a mask that is 1 on the
    /// new area and 0 on the kept area. With `feather` > 0 the mask also ramps into the kept
    /// area along the padded sides: a kept pixel `d` pixels from the nearest padded side
    /// (0 for the row or column touching it) gets `((feather - d) / feather)^2` when
    /// `d < feather` (the ramp of ComfyUI's ImagePadForOutpaint, measured symmetrically).
    public func paddedForOutpaint(left: Int, top: Int, right: Int, bottom: Int, fill: PadFill = .edge,
                                  feather: Int = 0) throws -> (image: Image, mask: Image) {
        guard feather >= 0 else {
            throw ImagingError(.invalidArgument, "feather must not be negative, got \(feather)")
        }
        let image = try padded(left: left, top: top, right: right, bottom: bottom, fill: fill)
        let nw = image.width, nh = image.height
        var mask = [Float](repeating: 1, count: nw * nh)
        let f = Float(feather)
        let big = Int.max / 4
        mask.withUnsafeMutableBufferPointer { m in
            for i in 0..<height {
                let dt = top > 0 ? i : big
                let db = bottom > 0 ? height - 1 - i : big
                for j in 0..<width {
                    var v: Float = 0
                    if feather > 0 {
                        let dl = left > 0 ? j : big
                        let dr = right > 0 ? width - 1 - j : big
                        let d = min(dt, db, dl, dr)
                        if d < feather {
                            let t = (f - Float(d)) / f
                            v = t * t
                        }
                    }
                    m[(i + top) * nw + (j + left)] = v
                }
            }
        }
        return (image, Image(width: nw, height: nh, channels: 1, pixels: mask))
    }
}
