import Foundation
import Testing
@testable import Imaging

@Suite struct GeometryTests {
    let img = Image(width: 4, height: 3, channels: 2, pixels: (0..<24).map { Float($0) / 24 })

    @Test func cropCopiesTheRectangle() throws {
        let c = try img.cropped(x: 1, y: 1, width: 2, height: 2)
        #expect(c.width == 2 && c.height == 2 && c.channels == 2)
        #expect(c[0, 0, 0] == img[1, 1, 0])
        #expect(c[1, 1, 1] == img[2, 2, 1])
    }

    @Test func cropOutsideThrows() throws {
        for (x, y, w, h) in [(3, 0, 2, 1), (0, 2, 1, 2), (-1, 0, 1, 1), (0, 0, 0, 1), (0, 0, 5, 3)] {
            let e = #expect(throws: ImagingError.self) { try img.cropped(x: x, y: y, width: w, height: h) }
            #expect(e?.kind == .invalidArgument)
        }
        let e = #expect(throws: ImagingError.self) { try img.cropped(x: 3, y: 0, width: 2, height: 1) }
        #expect(e?.message.contains("outside the 4x3 image") == true)
    }

    @Test func padEdgeReplicatesAndConstantFills() throws {
        let p = try img.padded(left: 2, top: 1, right: 1, bottom: 3, fill: .edge)
        #expect(p.width == 7 && p.height == 7)
        #expect(p[0, 0, 0] == img[0, 0, 0])
        #expect(p[6, 6, 1] == img[3, 2, 1])
        #expect(p[3, 2, 0] == img[1, 1, 0])
        let q = try img.padded(left: 1, top: 0, right: 0, bottom: 0, fill: .constant([0.5]))
        #expect(q[0, 0, 0] == 0.5 && q[0, 0, 1] == 1) // alpha of the fill is 1
        #expect(q[1, 0, 0] == img[0, 0, 0])
        #expect(throws: ImagingError.self) { try img.padded(left: 1, top: 0, right: 0, bottom: 0, fill: .constant([1, 2, 3])) }
        #expect(throws: ImagingError.self) { try img.padded(left: -1, top: 0, right: 0, bottom: 0) }
    }

    @Test func outpaintMaskMarksTheNewArea() throws {
        let src = Image(width: 10, height: 8, channels: 3, fill: 0.3)
        let (image, mask) = try src.paddedForOutpaint(left: 3, top: 0, right: 2, bottom: 4, fill: .constant([0.5, 0.5, 0.5]))
        #expect(image.width == 15 && image.height == 12)
        #expect(mask.width == 15 && mask.height == 12 && mask.channels == 1)
        for y in 0..<12 {
            for x in 0..<15 {
                let kept = x >= 3 && x < 13 && y < 8
                #expect(mask[x, y, 0] == (kept ? 0 : 1), "(\(x), \(y))")
                #expect(image[x, y, 1] == (kept ? 0.3 : 0.5))
            }
        }
    }

    @Test func outpaintFeatherRampsIntoTheKeptArea() throws {
        let src = Image(width: 20, height: 10, channels: 3, fill: 0.3)
        let (_, mask) = try src.paddedForOutpaint(left: 4, top: 0, right: 0, bottom: 0, fill: .edge, feather: 4)
        // Along a row: new area 1, then ((4 - d) / 4)^2 for d = 0...3, then 0.
        let row = (0..<24).map { mask[$0, 5, 0] }
        #expect(Array(row[0..<4]) == [1, 1, 1, 1])
        #expect(Array(row[4..<9]) == [1, 0.5625, 0.25, 0.0625, 0])
        #expect(row[9...].allSatisfy { $0 == 0 })
        // No ramp from the sides that were not padded (top, right, bottom).
        #expect(mask[23, 0, 0] == 0 && mask[23, 9, 0] == 0 && mask[12, 0, 0] == 0)
        #expect(throws: ImagingError.self) { try src.paddedForOutpaint(left: 1, top: 0, right: 0, bottom: 0, feather: -1) }
    }
}

@Suite struct MaskTests {
    @Test func thresholdInvertAndAlpha() throws {
        let m = Image(width: 4, height: 1, channels: 1, pixels: [0, 0.5, 0.51, 1])
        #expect(m.thresholded(0.5).pixels == [0, 0, 1, 1])
        #expect(m.inverted().pixels == [1, 0.5, 0.49, 0])
        let rgba = Image(width: 2, height: 1, channels: 4, pixels: [1, 0, 0, 1, 0, 1, 0, 0.25])
        #expect(rgba.maskFromAlpha().pixels == [0, 0.75])
        #expect(Image(width: 2, height: 1, channels: 3, fill: 1).maskFromAlpha().pixels == [0, 0])
        let rgb = Image(width: 1, height: 1, channels: 3, pixels: [1, 0.5, 0])
        #expect(abs(rgb.luminanceMask().pixels[0] - (0.299 + 0.587 * 0.5)) < 1e-6)
    }

    /// Reference dilation/erosion by brute force over the disc.
    func bruteForce(_ m: Image, radius r: Int, dilate: Bool) -> Image {
        var out = m
        for y in 0..<m.height {
            for x in 0..<m.width {
                var v: Float = dilate ? -.infinity : .infinity
                for dy in -r...r {
                    for dx in -r...r where dx * dx + dy * dy <= r * r {
                        let sx = x + dx, sy = y + dy
                        guard sx >= 0, sy >= 0, sx < m.width, sy < m.height else { continue }
                        v = dilate ? max(v, m[sx, sy, 0]) : min(v, m[sx, sy, 0])
                    }
                }
                out[x, y, 0] = v
            }
        }
        return out
    }

    @Test(arguments: [1, 2, 3, 5, 8, 13])
    func growAndShrinkMatchBruteForce(radius: Int) throws {
        let m = randomImage(width: 37, height: 29, channels: 1, seed: UInt64(radius) &* 977)
        #expect(try m.grown(by: radius) == bruteForce(m, radius: radius, dilate: true))
        #expect(try m.grown(by: -radius) == bruteForce(m, radius: radius, dilate: false))
    }

    @Test func growingASinglePixelMakesADisc() throws {
        var m = Image.mask(width: 21, height: 21)
        m[10, 10, 0] = 1
        let g = try m.grown(by: 5)
        var count = 0
        for y in 0..<21 {
            for x in 0..<21 {
                let inside = (x - 10) * (x - 10) + (y - 10) * (y - 10) <= 25
                #expect(g[x, y, 0] == (inside ? 1 : 0))
                if inside { count += 1 }
            }
        }
        #expect(count == 81)
        #expect(try g.grown(by: -5) == m) // erosion undoes it
        #expect(try m.grown(by: 0) == m)
    }

    @Test func compositeMixesAndChecksSizes() throws {
        let base = Image(width: 2, height: 1, channels: 3, fill: 0)
        let over = Image(width: 2, height: 1, channels: 3, fill: 1)
        let mask = Image(width: 2, height: 1, channels: 1, pixels: [0.25, 1])
        let c = try Image.composite(base: base, overlay: over, mask: mask)
        #expect(c.pixels == [0.25, 0.25, 0.25, 1, 1, 1])
        let grayOver = Image(width: 2, height: 1, channels: 1, fill: 1)
        #expect(try Image.composite(base: base, overlay: grayOver, mask: mask) == c)
        let e1 = #expect(throws: ImagingError.self) {
            try Image.composite(base: base, overlay: Image(width: 3, height: 1, channels: 3), mask: mask)
        }
        #expect(e1?.kind == .sizeMismatch)
        #expect(e1?.message.contains("overlay is 3x1 but base is 2x1") == true)
        let e2 = #expect(throws: ImagingError.self) {
            try Image.composite(base: base, overlay: over, mask: Image.mask(width: 2, height: 2))
        }
        #expect(e2?.message.contains("mask is 2x2") == true)
        #expect(throws: ImagingError.self) {
            try Image.composite(base: base, overlay: over, mask: Image(width: 2, height: 1, channels: 3))
        }
    }

    @Test func blurKeepsConstantsAndSpreadsAnImpulse() throws {
        let flat = Image(width: 9, height: 7, channels: 3, fill: 0.4)
        #expect(try flat.gaussianBlurred(sigma: 2).maxAbsDifference(flat)! < 1e-6)
        var m = Image.mask(width: 15, height: 15)
        m[7, 7, 0] = 1
        let b = try m.gaussianBlurred(sigma: 1.5)
        let k = Image.gaussianKernel(size: Image.gaussianKernelSize(sigma: 1.5), sigma: 1.5)
        #expect(abs(b[7, 7, 0] - k[k.count / 2] * k[k.count / 2]) < 1e-6)
        #expect(abs(b.pixels.reduce(0, +) - 1) < 1e-5)
        #expect(try m.gaussianBlurred(sigma: 0) == m)
        #expect(throws: ImagingError.self) { try m.gaussianBlurred(sigma: -1) }
        #expect(reflect101(-1, 5) == 1 && reflect101(5, 5) == 3 && reflect101(-7, 5) == 1 && reflect101(3, 1) == 0)
    }
}

@Suite struct ResizeAndCannyTests {
    @Test func resizeBasics() throws {
        let img = randomImage(width: 30, height: 20, channels: 4)
        #expect(try img.resized(width: 30, height: 20) == img)
        let r = try img.resized(width: 7, height: 41, filter: .bicubic)
        #expect(r.width == 7 && r.height == 41 && r.channels == 4)
        #expect(r.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
        let flat = Image(width: 13, height: 9, channels: 3, fill: 0.6)
        for f in ResizeFilter.allCases {
            #expect(try flat.resized(width: 5, height: 17, filter: f).maxAbsDifference(Image(width: 5, height: 17, channels: 3, fill: 0.6))! < 1e-6)
        }
        #expect(try img.resized(scale: 0.5).width == 15)
        #expect(throws: ImagingError.self) { try img.resized(width: 0, height: 3) }
        #expect(throws: ImagingError.self) { try img.resized(scale: -1) }
    }

    @Test func cannyWithBlurEqualsCannyOfTheBlurredImage() throws {
        let src = try Fixtures.image("src-shapes.png")
        let a = try src.canny(low: 30, high: 90, blurSigma: 1.2)
        let b = try src.gaussianBlurred(sigma: 1.2).canny(low: 30, high: 90)
        #expect(a == b)
        #expect(a != (try src.canny(low: 30, high: 90)))
        #expect(a.channels == 1 && a.pixels.allSatisfy { $0 == 0 || $0 == 1 })
        #expect(throws: ImagingError.self) { try src.canny(low: -1, high: 3) }
        #expect(throws: ImagingError.self) { try src.canny(low: 1, high: 3, blurSigma: .nan) }
    }

    @Test func cannyIsFastOnAMegapixel() throws {
        // A 1024x1024 picture-like image: the sample scene scaled up.
        let sample = try Fixtures.image("src-shapes.png")
        let big = try sample.resized(width: 1024, height: 1024, filter: .bilinear)
        let clock = ContinuousClock()
        var edges: Image?
        let t = try clock.measure { edges = try big.canny(low: 50, high: 150) }
        #expect(edges!.pixels.contains(1))
        #if DEBUG
        let limit = Duration.seconds(20) // unoptimised builds are ~20x slower
        #else
        let limit = Duration.seconds(1)
        #endif
        #expect(t < limit, "canny 1024x1024 took \(t)")
    }
}
