import Foundation
import Imaging
import NodeKit
import Testing
@testable import CoreNodes

private let ctx = TestContext(baseDirectory: FileManager.default.temporaryDirectory)

/// A picture-like test image: gradient background with a bright square.
private func testImage(width: Int = 40, height: Int = 30) -> Image {
    var img = Image(width: width, height: height, channels: 3, fill: 0)
    for y in 0..<height {
        for x in 0..<width {
            let inside = x >= 10 && x < 25 && y >= 8 && y < 20
            img[x, y, 0] = inside ? 0.95 : Float(x) / Float(width) * 0.3
            img[x, y, 1] = inside ? 0.9 : Float(y) / Float(height) * 0.3
            img[x, y, 2] = inside ? 0.1 : 0.2
        }
    }
    return img
}

private func image(_ img: Image, _ depth: Raster.SampleDepth = .uint8) -> Value { .image(Raster(img, depth: depth)) }
private func mask(_ img: Image) -> Value { .mask(Raster(img, depth: .uint8)) }

@Suite struct ProcessingNodeTests {
    @Test func cannyNodeMatchesImagingCanny() async throws {
        let src = testImage()
        for (low, high, l2, sigma) in [(100.0, 200.0, false, 0.0), (30, 90, true, 0), (20, 60, false, 1.4)] {
            let out = try await run(ImageCanny.self, ["image": image(src), "low": .float(low), "high": .float(high),
                                                      "l2-gradient": .bool(l2), "blur-sigma": .float(sigma)], context: ctx)
            let want = try src.canny(low: low, high: high, l2Gradient: l2, blurSigma: sigma)
            let m = try #require(out["mask"]?.raster)
            let e = try #require(out["edges"]?.raster)
            #expect(m.pixels == want.pixels)
            #expect(want.pixels.contains(1))
            #expect(e.channels == 3 && e.depth == .uint8)
            for i in 0..<want.pixels.count {
                #expect(e.pixels[3 * i] == want.pixels[i] && e.pixels[3 * i + 2] == want.pixels[i])
            }
        }
        // Defaults are OpenCV-style thresholds 100/200 without blur.
        let d = try await run(ImageCanny.self, ["image": image(src)], context: ctx)
        #expect(d["mask"]?.raster?.pixels == (try src.canny(low: 100, high: 200)).pixels)
    }

    @Test func padForOutpaintMaskAndImage() async throws {
        let src = testImage(width: 12, height: 10)
        let out = try await run(ImagePadForOutpaint.self, ["image": image(src, .uint16), "left": .int(4), "bottom": .int(6),
                                                           "fill": .text("color"), "color": .text("#ff0000")], context: ctx)
        let img = try #require(out["image"]?.raster)
        let m = try #require(out["mask"]?.raster)
        #expect(img.width == 16 && img.height == 16 && img.depth == .uint16)
        #expect(m.width == 16 && m.height == 16 && m.channels == 1)
        let mi = Image(m), ii = Image(img)
        for y in 0..<16 {
            for x in 0..<16 {
                let kept = x >= 4 && y < 10
                #expect(mi[x, y, 0] == (kept ? 0 : 1), "mask at (\(x), \(y))")
                if kept {
                    #expect(ii[x, y, 0] == src[x - 4, y, 0])
                } else {
                    #expect(ii[x, y, 0] == 1 && ii[x, y, 1] == 0 && ii[x, y, 2] == 0)
                }
            }
        }
        // Feather ramps into the kept area along the padded sides only.
        let f = try await run(ImagePadForOutpaint.self, ["image": image(src), "left": .int(4), "feather": .int(2)], context: ctx)
        let fm = Image(try #require(f["mask"]?.raster))
        #expect(fm[3, 5, 0] == 1 && fm[4, 5, 0] == 1 && fm[5, 5, 0] == 0.25 && fm[6, 5, 0] == 0)
        #expect(fm[15, 0, 0] == 0 && fm[15, 9, 0] == 0)
        // Edge fill repeats the border.
        let e = try await run(ImagePadForOutpaint.self, ["image": image(src), "top": .int(3)], context: ctx)
        let ei = Image(try #require(e["image"]?.raster))
        #expect(ei[7, 0, 1] == src[7, 0, 1])
        let bad = await nodeError {
            _ = try await run(ImagePadForOutpaint.self, ["image": image(src), "fill": .text("color"), "color": .text("red")], context: ctx)
        }
        #expect(bad?.port == "color")
    }

    @Test func resizeCropAndBlur() async throws {
        let src = testImage()
        let r = try await run(ImageResize.self, ["image": image(src), "width": .int(20), "height": .int(15)], context: ctx)
        #expect(Image(try #require(r["image"]?.raster)) == (try src.resized(width: 20, height: 15, filter: .lanczos)))
        let aspect = try await run(ImageResize.self, ["image": image(src), "width": .int(80)], context: ctx)
        #expect(aspect["image"]?.raster?.height == 60)
        let scaled = try await run(ImageResize.self, ["image": image(src), "scale": .float(0.5), "filter": .text("nearest")], context: ctx)
        #expect(Image(try #require(scaled["image"]?.raster)) == (try src.resized(width: 20, height: 15, filter: .nearest)))
        let none = await nodeError { _ = try await run(ImageResize.self, ["image": image(src)], context: ctx) }
        #expect(none?.port == "width")

        let c = try await run(ImageCrop.self, ["image": image(src), "x": .int(10), "y": .int(8), "width": .int(15), "height": .int(12)],
                              context: ctx)
        let ci = Image(try #require(c["image"]?.raster))
        #expect(ci.width == 15 && ci.height == 12 && ci.pixels.allSatisfy { $0 == 0.95 || $0 == 0.9 || $0 == 0.1 })
        for (given, port) in [(["x": Value.int(40), "width": .int(1), "height": .int(1)], "x"),
                              (["y": .int(30), "width": .int(1), "height": .int(1)], "y"),
                              (["x": .int(30), "width": .int(11), "height": .int(1)], "width"),
                              (["y": .int(20), "width": .int(1), "height": .int(11)], "height")] {
            var g = given
            g["image"] = image(src)
            let e = await nodeError { _ = try await run(ImageCrop.self, g, context: ctx) }
            #expect(e?.port == port)
            #expect(e?.message.contains("40x30") == true)
        }

        let b = try await run(ImageBlur.self, ["image": image(src), "sigma": .float(1.5)], context: ctx)
        #expect(Image(try #require(b["image"]?.raster)) == (try src.gaussianBlurred(sigma: 1.5)))
    }

    @Test func compositeAndItsErrors() async throws {
        let base = Image(width: 4, height: 2, channels: 3, fill: 0.2)
        let over = Image(width: 4, height: 2, channels: 3, fill: 0.8)
        let m = Image(width: 4, height: 2, channels: 1, pixels: [0, 0.5, 1, 1, 0, 0, 0, 1])
        let out = try await run(ImageComposite.self, ["base": image(base), "overlay": image(over, .uint16), "mask": mask(m)],
                                context: ctx)
        let r = try #require(out["image"]?.raster)
        #expect(r.depth == .uint16)
        #expect(abs(r.pixels[3] - 0.5) < 1e-6 && r.pixels[0] == 0.2 && r.pixels[6] == 0.8)
        let e1 = await nodeError {
            _ = try await run(ImageComposite.self, ["base": image(base), "overlay": image(Image(width: 3, height: 2, channels: 3)),
                                                    "mask": mask(m)], context: ctx)
        }
        #expect(e1?.port == "overlay")
        #expect(e1?.message.contains("3x2") == true)
        let e2 = await nodeError {
            _ = try await run(ImageComposite.self, ["base": image(base), "overlay": image(over),
                                                    "mask": mask(Image.mask(width: 4, height: 3))], context: ctx)
        }
        #expect(e2?.port == "mask")
    }

    @Test func maskNodes() async throws {
        let m = Image(width: 5, height: 5, channels: 1, pixels: (0..<25).map { $0 == 12 ? 1 : Float($0) / 100 })
        let t = try await run(MaskThreshold.self, ["mask": mask(m), "level": .float(0.2)], context: ctx)
        #expect(t["mask"]?.raster?.pixels == m.thresholded(0.2).pixels)
        let i = try await run(MaskInvert.self, ["mask": mask(m)], context: ctx)
        #expect(i["mask"]?.raster?.pixels == m.inverted().pixels)
        let g = try await run(MaskGrow.self, ["mask": mask(m.thresholded(0.5)), "radius": .int(1)], context: ctx)
        #expect(g["mask"]?.raster?.pixels.filter { $0 == 1 }.count == 5) // a plus-shaped disc of radius 1
        let s = try await run(MaskGrow.self, ["mask": mask(Image.mask(width: 5, height: 5, fill: 1)), "radius": .int(-1)], context: ctx)
        #expect(s["mask"]?.raster?.pixels.filter { $0 == 1 }.count == 25) // borders do not erode
        let b = try await run(MaskBlur.self, ["mask": mask(m), "sigma": .float(1)], context: ctx)
        #expect(b["mask"]?.raster?.pixels == (try m.gaussianBlurred(sigma: 1)).pixels)
        let bad = await nodeError {
            _ = try await run(MaskInvert.self, ["mask": .mask(Raster(width: 1, height: 1, channels: 3, pixels: [0, 0, 0]))], context: ctx)
        }
        #expect(bad?.port == "mask")
    }

    @Test func maskFromImageChannels() async throws {
        let rgba = Image(width: 1, height: 1, channels: 4, pixels: [1, 0.5, 0.25, 0.75])
        func channel(_ c: String, _ img: Image = rgba) async throws -> [Float]? {
            try await run(MaskFromImage.self, ["image": image(img), "channel": .text(c)], context: ctx)["mask"]?.raster?.pixels
        }
        #expect(try await channel("red") == [1])
        #expect(try await channel("green") == [0.5])
        #expect(try await channel("blue") == [0.25])
        #expect(try await channel("alpha") == [0.75])
        let lum = try #require(try await channel("luminance"))
        #expect(abs(lum[0] - (0.299 + 0.587 * 0.5 + 0.114 * 0.25)) < 1e-6)
        let gray = Image(width: 1, height: 1, channels: 1, pixels: [0.3])
        #expect(try await channel("blue", gray) == [0.3])
        let e = await nodeError { _ = try await channel("alpha", gray) }
        #expect(e?.port == "channel")
    }
}
