import Foundation
@testable import Imaging

/// The fixtures made by tools/make_imaging_fixtures.py, described by fixtures.json.
struct FixtureIndex: Decodable {
    struct Source: Decodable { var image: String; var gray: String; var width: Int; var height: Int }
    struct CannyCase: Decodable { var source: String; var low: Double; var high: Double; var l2: Bool; var edges: String; var edgePixels: Int }
    struct BlurCase: Decodable { var source: String; var sigma: Double; var ksize: Int; var u8: String; var float: String }
    struct ResizeCase: Decodable { var source: String; var filter: String; var width: Int; var height: Int; var output: String }
    struct PNGCase: Decodable { var file: String; var channels: Int; var bits: Int; var colorType: Int }
    struct TIFFCase: Decodable { var file: String; var channels: Int; var bits: Int; var width: Int?; var height: Int? }
    struct Palette: Decodable { var file: String; var palette: [[Int]]; var transparentIndex: Int }
    struct Text: Decodable { var file: String; var chunks: [[String]] }
    struct Named: Decodable { var file: String }

    var sources: [String: Source]
    var canny: [CannyCase]
    var blur: [BlurCase]
    var resize: [ResizeCase]
    var png: [PNGCase]
    var palette: Palette
    var gray1: Named
    var text: Text
    var tiff: [TIFFCase]
    var tiffPalette: Named
}

enum Fixtures {
    static let directory: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    static func image(_ name: String) throws -> Image { try ImageFile.read(contentsOf: url(name)).image }

    static let index: FixtureIndex = {
        let data = try! Data(contentsOf: url("fixtures.json"))
        return try! JSONDecoder().decode(FixtureIndex.self, from: data)
    }()

    /// 8-bit test pattern used by the PNG/TIFF fixtures.
    static func f8(_ x: Int, _ y: Int, _ c: Int) -> Int { (x * 7 + y * 13 + c * 50) % 256 }
    /// 16-bit test pattern used by the PNG/TIFF fixtures.
    static func f16(_ x: Int, _ y: Int, _ c: Int) -> Int { (x * 1031 + y * 2053 + c * 4099) % 65536 }
}

/// A deterministic pseudo-random image (xorshift), values in 0...1.
func randomImage(width: Int, height: Int, channels: Int, seed: UInt64 = 0x9E3779B97F4A7C15) -> Image {
    var s = seed
    var px = [Float](repeating: 0, count: width * height * channels)
    for i in 0..<px.count {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        px[i] = Float(s % 65536) / 65535
    }
    return Image(width: width, height: height, channels: channels, pixels: px)
}

/// Largest difference between two byte arrays, and how many samples differ.
func byteDiff(_ a: [UInt8], _ b: [UInt8]) -> (max: Int, count: Int) {
    var m = 0, n = 0
    for i in 0..<min(a.count, b.count) {
        let d = abs(Int(a[i]) - Int(b[i]))
        if d > 0 { n += 1 }
        m = max(m, d)
    }
    return (m, n)
}
