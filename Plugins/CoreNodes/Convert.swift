import Foundation
import Imaging
import NodeKit

// Raster (the port value) and Image (the Imaging library's type) both hold a `[Float]`
// laid out the same way, so converting shares the array's storage: no pixel is copied.

extension Image {
    init(_ raster: Raster) {
        self.init(width: raster.width, height: raster.height, channels: raster.channels, pixels: raster.pixels)
    }
}

extension Raster {
    init(_ image: Image, depth: SampleDepth) {
        self.init(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels, depth: depth)
    }
}

extension Raster.SampleDepth {
    init(_ d: Imaging.SampleDepth) {
        switch d {
        case .uint8: self = .uint8
        case .uint16: self = .uint16
        case .float32: self = .float32
        }
    }

    /// The more precise of two depths (for results computed from several inputs).
    func widened(_ other: Raster.SampleDepth) -> Raster.SampleDepth {
        let order: [Raster.SampleDepth] = [.uint8, .uint16, .float32]
        return order.firstIndex(of: self)! >= order.firstIndex(of: other)! ? self : other
    }
}

extension Inputs {
    /// An `image` input as an Imaging image, with its depth.
    func imagingImage(_ name: String) throws -> (Image, Raster.SampleDepth) {
        let r = try image(name)
        try checkRaster(r, name)
        return (Image(r), r.depth)
    }

    /// A `mask` input as a 1-channel Imaging image.
    func imagingMask(_ name: String) throws -> (Image, Raster.SampleDepth) {
        let r = try mask(name)
        try checkRaster(r, name)
        guard r.channels == 1 else { throw NodeError("a mask must have 1 channel, got \(r.channels)", port: name) }
        return (Image(r), r.depth)
    }

    private func checkRaster(_ r: Raster, _ name: String) throws {
        guard r.width > 0, r.height > 0 else {
            throw NodeError("empty image (\(r.width)x\(r.height))", port: name)
        }
    }
}

/// Runs an Imaging call, turning its errors into a NodeError on `port`.
func imaging<T>(port: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ImagingError {
        throw NodeError(e.message, port: port)
    }
}

func imageValue(_ image: Image, depth: Raster.SampleDepth) -> Value { .image(Raster(image, depth: depth)) }

func maskValue(_ mask: Image, depth: Raster.SampleDepth = .uint8) -> Value {
    precondition(mask.channels == 1)
    return .mask(Raster(mask, depth: depth))
}

/// Parses `#rgb`, `#rrggbb` or `#rrggbbaa` into 0...1 components.
func parseHexColor(_ text: String, port: String) throws -> [Float] {
    var s = text.trimmingCharacters(in: .whitespaces)
    guard s.hasPrefix("#") else {
        throw NodeError("colour '\(text)' must be written #rgb, #rrggbb or #rrggbbaa", port: port)
    }
    s.removeFirst()
    guard [3, 6, 8].contains(s.count), s.allSatisfy(\.isHexDigit) else {
        throw NodeError("colour '\(text)' must be written #rgb, #rrggbb or #rrggbbaa", port: port)
    }
    if s.count == 3 { s = s.map { "\($0)\($0)" }.joined() }
    var out: [Float] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(Float(UInt8(s[i..<j], radix: 16)!) / 255)
        i = j
    }
    return out
}
