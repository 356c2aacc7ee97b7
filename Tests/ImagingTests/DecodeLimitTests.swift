import Foundation
import Testing
@testable import Imaging

/// The pixel limit is checked on the header's dimensions, before any pixel buffer is allocated.
@Suite struct DecodeLimitTests {
    /// A well-formed PNG header declaring `width`×`height` RGB pixels, followed by a tiny IDAT and IEND:
    /// a few dozen bytes that would decode to width·height·3 floats.
    static func bombPNG(width: UInt32, height: UInt32) -> Data {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let tb = Array(type.utf8) + body
            return be(UInt32(body.count)) + tb + be(crc32(tb))
        }
        let ihdr = be(width) + be(height) + [8, 2, 0, 0, 0]
        let idat: [UInt8] = [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01] // zlib stream of one zero byte
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", []))
    }

    /// CRC-32 as PNG chunks use it (ISO 3309, polynomial 0xEDB88320).
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }

    @Test func aPNGDeclaring20000SquaredIsRefusedByDefault() throws {
        let bomb = Self.bombPNG(width: 20000, height: 20000)
        #expect(bomb.count < 100)
        let e = #expect(throws: ImagingError.self) { try ImageFile.decode(bomb, name: "bomb.png") }
        #expect(e?.kind == .tooLarge)
        #expect(e?.message.contains("bomb.png") == true)
        #expect(e?.message.contains("20000x20000 = 400000000 pixels") == true)
        #expect(e?.message.contains("\(ImageLimits.defaultMaxPixels)") == true)
    }

    @Test func theDefaultIsPillowsDecompressionBombThreshold() {
        // Pillow: MAX_IMAGE_PIXELS = int(1024 * 1024 * 1024 // 4 // 3); DecompressionBombError above twice that.
        #expect(ImageLimits.defaultMaxPixels == 2 * (1024 * 1024 * 1024 / 4 / 3))
    }

    @Test func theLimitIsInclusiveAndConfigurable() throws {
        var img = Image(width: 40, height: 30, channels: 3)
        for i in img.pixels.indices { img.pixels[i] = Float(i % 7) / 6 }
        for format in [ImageFormat.png, .tiff] {
            let data = try ImageFile.encode(img, format: format, depth: .uint8)
            #expect(try ImageFile.decode(data, maxPixels: 1200).image.width == 40)
            let e = #expect(throws: ImagingError.self) { try ImageFile.decode(data, name: "small", maxPixels: 1199) }
            #expect(e?.kind == .tooLarge, "\(format)")
            #expect(e?.message.contains("40x30 = 1200 pixels, more than the limit of 1199") == true, "\(format): \(e?.message ?? "")")
        }
    }
}
