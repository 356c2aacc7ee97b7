import Foundation
import Testing
@testable import Imaging

@Suite struct PNGTests {
    @Test(arguments: [1, 2, 3, 4], [SampleDepth.uint8, .uint16])
    func roundTrip(channels: Int, depth: SampleDepth) throws {
        let img = randomImage(width: 23, height: 17, channels: channels, seed: UInt64(channels * 31 + depth.rawValue))
        let data = try PNG.encode(img, depth: depth)
        let back = try PNG.decode(data)
        #expect(back.image.width == 23 && back.image.height == 17 && back.image.channels == channels)
        #expect(back.bitDepth == depth.rawValue)
        #expect(back.colorType == [0, 0, 4, 2, 6][channels])
        let levels: Float = depth == .uint8 ? 255 : 65535
        // Exactly the quantised values come back.
        for i in 0..<img.pixels.count {
            let q = (img.pixels[i] * levels + 0.5).rounded(.down) / levels
            #expect(abs(back.image.pixels[i] - q) < 1e-6)
        }
    }

    @Test func textChunksRoundTrip() throws {
        let long = String(repeating: "workflow: {nodes: [a, b]}\n", count: 200) // compressed iTXt
        let text: [TextChunk] = [("llmga:workflow", long), ("llmga:params", "{\"seed\":\"42\",\"prompt\":\"ein Hund, 犬 🐕\"}"),
                                 ("empty", "")]
        let img = Image(width: 4, height: 3, channels: 3, fill: 0.25)
        let data = try PNG.encode(img, text: text)
        #expect(data.count < long.utf8.count) // the long value was compressed
        let back = try PNG.decode(data)
        #expect(back.text.count == 3)
        for (i, t) in text.enumerated() {
            #expect(back.text[i].key == t.key)
            #expect(back.text[i].value == t.value)
        }
        #expect(back.text("llmga:params")?.contains("🐕") == true)
    }

    @Test func readsTextChunksOfEveryKind() throws {
        let png = try PNG.read(contentsOf: Fixtures.url(Fixtures.index.text.file))
        let want = Fixtures.index.text.chunks
        #expect(png.text.count == want.count)
        for pair in want {
            #expect(png.text(pair[0]) == pair[1], "chunk \(pair[0])")
        }
    }

    @Test func decodesEveryColourTypeFromOtherWriters() throws {
        for c in Fixtures.index.png {
            let png = try PNG.read(contentsOf: Fixtures.url(c.file))
            let img = png.image
            #expect(img.channels == c.channels, "\(c.file)")
            #expect(png.bitDepth == c.bits, "\(c.file)")
            #expect(png.colorType == c.colorType, "\(c.file)")
            var bad = 0
            for y in 0..<img.height {
                for x in 0..<img.width {
                    for ch in 0..<img.channels {
                        let want = c.bits == 16 ? Float(Fixtures.f16(x, y, ch)) / 65535 : Float(Fixtures.f8(x, y, ch)) / 255
                        if abs(img[x, y, ch] - want) > 1e-7 { bad += 1 }
                    }
                }
            }
            #expect(bad == 0, "\(c.file): \(bad) samples differ")
        }
    }

    @Test func expandsPaletteWithTransparency() throws {
        let p = Fixtures.index.palette
        let png = try PNG.read(contentsOf: Fixtures.url(p.file))
        #expect(png.colorType == 3)
        #expect(png.image.channels == 4)
        for y in 0..<png.image.height {
            for x in 0..<png.image.width {
                let idx = (x + y) % 4
                for c in 0..<3 { #expect(png.image[x, y, c] == Float(p.palette[idx][c]) / 255) }
                #expect(png.image[x, y, 3] == (idx == p.transparentIndex ? 0 : 1))
            }
        }
        #expect(png.image.maskFromAlpha()[0, 0, 0] == 1)
        #expect(png.image.maskFromAlpha()[1, 0, 0] == 0)
    }

    @Test func expandsOneBitGray() throws {
        let png = try PNG.read(contentsOf: Fixtures.url(Fixtures.index.gray1.file))
        #expect(png.bitDepth == 1)
        #expect(png.depth == .uint8)
        #expect(png.image.channels == 1)
        for y in 0..<png.image.height {
            for x in 0..<png.image.width { #expect(png.image[x, y, 0] == Float((x ^ y) & 1)) }
        }
    }

    @Test func corruptDataThrowsWithMessage() throws {
        let good = try PNG.encode(randomImage(width: 40, height: 30, channels: 3), text: [("k", "v")])
        // Truncations at many points, including inside the header and inside IDAT.
        for cut in [0, 4, 8, 20, 33, 50, good.count / 2, good.count - 13, good.count - 1] {
            let e = #expect(throws: ImagingError.self) { try PNG.decode(good.prefix(cut), name: "cut.png") }
            #expect(e?.message.hasPrefix("cut.png") == true)
            #expect(e?.kind == .corruptData)
        }
        // Garbage, and garbage after a valid signature.
        let garbage = Data((0..<500).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
        let e1 = #expect(throws: ImagingError.self) { try PNG.decode(garbage, name: "garbage.png") }
        #expect(e1?.message.contains("signature") == true)
        let e2 = #expect(throws: ImagingError.self) { try PNG.decode(good.prefix(8) + garbage, name: "g2.png") }
        #expect(e2?.message.contains("g2.png") == true)
        // A flipped byte inside the image data: CRC or zlib error, never a crash.
        var flipped = good
        flipped[good.count / 2] ^= 0x5A
        #expect(throws: ImagingError.self) { try PNG.decode(flipped) }
    }

    @Test func encodeRejectsBadArguments() throws {
        let img = Image(width: 2, height: 2, channels: 3, fill: 0.5)
        #expect(throws: ImagingError.self) { try PNG.encode(img, depth: .float32) }
        #expect(throws: ImagingError.self) { try PNG.encode(img, text: [("", "x")]) }
        #expect(throws: ImagingError.self) { try PNG.encode(img, text: [(String(repeating: "k", count: 80), "x")]) }
        #expect(throws: ImagingError.self) { try PNG.encode(img, text: [("bad\u{1}key", "x")]) }
        #expect(throws: ImagingError.self) { try PNG.encode(img, text: [("key", "nul\u{0}inside")]) }
        let empty = Image(width: 0, height: 0, channels: 3, pixels: [])
        #expect(throws: ImagingError.self) { try PNG.encode(empty) }
    }

    @Test func missingFileNamesThePath() throws {
        let url = URL(fileURLWithPath: "/nonexistent/dir/none.png")
        let e = #expect(throws: ImagingError.self) { try PNG.read(contentsOf: url) }
        #expect(e?.kind == .io)
        #expect(e?.message.contains("/nonexistent/dir/none.png") == true)
    }
}

@Suite struct TIFFTests {
    @Test(arguments: [1, 2, 3, 4], [SampleDepth.uint8, .uint16, .float32])
    func roundTrip(channels: Int, depth: SampleDepth) throws {
        var img = randomImage(width: 31, height: 19, channels: channels, seed: UInt64(channels * 7 + depth.rawValue))
        if depth == .float32 { img.pixels[0] = -0.5; img.pixels[1] = 3.25 } // floats are stored as they are
        let data = try TIFF.encode(img, depth: depth)
        let back = try TIFF.decode(data)
        #expect(back.depth == depth)
        #expect(back.image.width == 31 && back.image.height == 19 && back.image.channels == channels)
        if depth == .float32 {
            #expect(back.image.pixels == img.pixels)
        } else {
            let levels: Float = depth == .uint8 ? 255 : 65535
            var worst: Float = 0
            for i in 0..<img.pixels.count {
                let q = (min(max(img.pixels[i], 0), 1) * levels + 0.5).rounded(.down) / levels
                worst = max(worst, abs(back.image.pixels[i] - q))
            }
            #expect(worst < 1e-6)
        }
    }

    @Test func readsFilesFromOtherWriters() throws {
        for c in Fixtures.index.tiff {
            let t = try TIFF.read(contentsOf: Fixtures.url(c.file))
            let img = t.image
            #expect(img.channels == c.channels, "\(c.file)")
            #expect(t.depth.rawValue == c.bits, "\(c.file)")
            if let w = c.width, let h = c.height { #expect(img.width == w && img.height == h, "\(c.file)") }
            var bad = 0
            for y in 0..<img.height {
                for x in 0..<img.width {
                    for ch in 0..<img.channels {
                        let want = c.bits == 16 ? Float(Fixtures.f16(x, y, ch)) / 65535 : Float(Fixtures.f8(x, y, ch)) / 255
                        if abs(img[x, y, ch] - want) > 1e-7 { bad += 1 }
                    }
                }
            }
            #expect(bad == 0, "\(c.file): \(bad) samples differ")
        }
    }

    @Test func palettedTIFFComesBackAsRGB() throws {
        let t = try TIFF.read(contentsOf: Fixtures.url(Fixtures.index.tiffPalette.file))
        let palette = Fixtures.index.palette.palette
        #expect(t.image.channels == 3)
        #expect(t.depth == .uint8)
        for y in 0..<t.image.height {
            for x in 0..<t.image.width {
                for c in 0..<3 { #expect(t.image[x, y, c] == Float(palette[(x + y) % 4][c]) / 255) }
            }
        }
    }

    @Test func corruptDataThrowsWithMessage() throws {
        let good = try TIFF.encode(randomImage(width: 64, height: 64, channels: 3), depth: .uint16)
        for cut in [0, 3, 8, 16, good.count / 3, good.count - 100] {
            let e = #expect(throws: ImagingError.self) { try TIFF.decode(good.prefix(cut), name: "cut.tif") }
            #expect(e?.message.hasPrefix("cut.tif") == true)
            #expect(e?.message.count ?? 0 > "cut.tif: cannot decode TIFF: ".count)
        }
        let garbage = Data([0x49, 0x49, 42, 0] + (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 91 &+ 3) })
        #expect(throws: ImagingError.self) { try TIFF.decode(garbage, name: "garbage.tif") }
        #expect(throws: ImagingError.self) { try TIFF.decode(Data("hello".utf8)) }
    }

    @Test func fileFormatsAreSniffedByContent() throws {
        let img = randomImage(width: 5, height: 4, channels: 3)
        let png = try ImageFile.encode(img, format: .png, depth: .uint16)
        let tif = try ImageFile.encode(img, format: .tiff, depth: .float32)
        #expect(ImageFormat.sniff(png) == .png)
        #expect(ImageFormat.sniff(tif) == .tiff)
        #expect(try ImageFile.decode(png).depth == .uint16)
        #expect(try ImageFile.decode(tif).image == img)
        let e = #expect(throws: ImagingError.self) { try ImageFile.decode(Data("GIF89a....".utf8), name: "x.gif") }
        #expect(e?.message.contains("x.gif") == true)
        #expect(ImageFormat(pathExtension: "TIFF") == .tiff)
        #expect(ImageFormat(pathExtension: "jpg") == nil)
    }

    @Test func atomicWriteLeavesNothingOnFailure() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imaging-atomic-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("a/b/out.png")
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try ImageFile.writeAtomically(Data([1, 2, 3]), to: target) { throw Stop() }
        }
        #expect(!FileManager.default.fileExists(atPath: target.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.deletingLastPathComponent().path).isEmpty)
        try ImageFile.writeAtomically(Data([1, 2, 3]), to: target)
        #expect(try Data(contentsOf: target) == Data([1, 2, 3]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.deletingLastPathComponent().path) == ["out.png"])
    }
}

/// Damaged files of both formats must decode or throw, never crash (deterministic mutations).
@Suite struct DamagedFileTests {
    func mutations(of data: Data, count: Int, seed: UInt64) -> [Data] {
        var s = seed
        func next() -> Int {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return Int(s % UInt64(Int32.max))
        }
        var out: [Data] = []
        for i in 0..<count {
            var d = data
            switch i % 3 {
            case 0: // flip a few bytes
                for _ in 0..<(1 + next() % 4) { d[next() % d.count] ^= UInt8(1 + next() % 255) }
            case 1: // overwrite a run with garbage
                let at = next() % d.count
                for k in at..<min(d.count, at + 1 + next() % 16) { d[k] = UInt8(next() % 256) }
            default: // drop a slice from the middle
                let at = next() % d.count
                d.removeSubrange(at..<min(d.count, at + 1 + next() % 64))
            }
            out.append(d)
        }
        return out
    }

    @Test func mutatedPNGsNeverCrash() throws {
        let good = try PNG.encode(randomImage(width: 24, height: 20, channels: 4), depth: .uint16, text: [("k", "value")])
        var failures = 0
        for d in mutations(of: good, count: 300, seed: 42) {
            do { _ = try PNG.decode(d) } catch let e as ImagingError {
                failures += 1
                #expect(!e.message.isEmpty)
            }
        }
        #expect(failures > 100) // most mutations are detected (CRCs, zlib checks)
    }

    @Test func mutatedTIFFsNeverCrash() throws {
        var datas = [try TIFF.encode(randomImage(width: 24, height: 20, channels: 3), depth: .uint8)]
        datas.append(try Fixtures.data("tiff-tiled-gray8.tif"))
        datas.append(try Fixtures.data("tiff-planar-rgb16.tif"))
        var failures = 0
        for (n, good) in datas.enumerated() {
            for d in mutations(of: good, count: 150, seed: UInt64(7 + n)) {
                do { _ = try TIFF.decode(d) } catch let e as ImagingError {
                    failures += 1
                    #expect(!e.message.isEmpty)
                }
            }
        }
        #expect(failures > 50)
    }
}
