import CImageCodecs
import Foundation

/// The sample precision of an encoded image.
public enum SampleDepth: Int, Sendable, CaseIterable {
    case uint8 = 8
    case uint16 = 16
    case float32 = 32
}

/// A text chunk of a PNG file (`tEXt`, `zTXt` or `iTXt`).
public typealias TextChunk = (key: String, value: String)

/// A decoded PNG file.
public struct PNGImage: Sendable {
    public var image: Image
    /// The file's bit depth (1, 2, 4, 8 or 16). Samples are scaled to 0...1 whatever it was.
    public var bitDepth: Int
    /// The PNG colour type as stored: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    public var colorType: Int
    /// Text chunks in file order, decoded from Latin-1 (`tEXt`/`zTXt`) or UTF-8 (`iTXt`).
    public var text: [TextChunk]

    /// The precision the samples came from: 16-bit files are `.uint16`, all others `.uint8`.
    public var depth: SampleDepth { bitDepth == 16 ? .uint16 : .uint8 }

    /// The value of the first text chunk with `key`.
    public func text(_ key: String) -> String? { text.first { $0.key == key }?.value }
}

/// A decoded TIFF file.
public struct TIFFImage: Sendable {
    public var image: Image
    public var depth: SampleDepth
    /// Bits per sample as stored in the file.
    public var sourceBitsPerSample: Int
}

/// How large an image a decoder accepts. The check runs on the dimensions a file's header declares,
/// before any pixel buffer is allocated, so a small file cannot make a huge allocation
/// (a 1 MB PNG can declare 20000×20000 pixels: 4.8 GB as Float32 RGB).
public enum ImageLimits {
    /// Pillow's decompression-bomb threshold: `Image.MAX_IMAGE_PIXELS` is 89,478,485 (1024³ / 4 / 3, Pillow 11
    /// `src/PIL/Image.py`), and Pillow refuses an image of more than twice that with `DecompressionBombError`.
    public static let defaultMaxPixels = 2 * 89_478_485
}

/// PNG reading and writing through libpng.
public enum PNG {
    /// Decodes a PNG. Palette images and `tRNS` transparency are expanded (to RGB/RGBA or
    /// gray+alpha); gray below 8 bits is scaled up. `name` appears in error messages.
    public static func decode(_ data: Data, name: String = "PNG data", maxPixels: Int = ImageLimits.defaultMaxPixels) throws -> PNGImage {
        var img = cic_png_image()
        var err = [CChar](repeating: 0, count: Int(CIC_ERROR_SIZE))
        let rc = data.withUnsafeBytes { raw -> Int32 in
            let base = raw.bindMemory(to: UInt8.self).baseAddress ?? UnsafePointer(bitPattern: 1)!
            return cic_png_decode(base, raw.count, UInt64(max(0, maxPixels)), &img, &err)
        }
        defer { cic_png_image_free(&img) }
        guard rc == 0 else {
            throw ImagingError(errorKind(rc), "\(name): cannot decode PNG: \(cMessage(err))")
        }
        let w = Int(img.width), h = Int(img.height), ch = Int(img.channels)
        let n = w * h * ch
        var px = [Float](repeating: 0, count: n)
        px.withUnsafeMutableBufferPointer { d in
            if img.bit_depth == 16 {
                let s = UnsafeRawPointer(img.pixels!).assumingMemoryBound(to: UInt16.self)
                for i in 0..<n { d[i] = Float(s[i]) / 65535 }
            } else {
                let s = img.pixels!
                for i in 0..<n { d[i] = Float(s[i]) / 255 }
            }
        }
        var text: [TextChunk] = []
        for i in 0..<Int(img.text_count) {
            let t = img.texts[i]
            let key = decodeText(t.key, utf8: false)
            let value = decodeText(t.value, utf8: t.is_utf8 != 0)
            text.append((key, value))
        }
        return PNGImage(image: Image(width: w, height: h, channels: ch, pixels: px),
                        bitDepth: Int(img.source_bit_depth), colorType: Int(img.source_color_type), text: text)
    }

    /// Reads and decodes a PNG file.
    public static func read(contentsOf url: URL, maxPixels: Int = ImageLimits.defaultMaxPixels) throws -> PNGImage {
        try decode(readFile(url), name: url.path, maxPixels: maxPixels)
    }

    /// Encodes an image (1–4 channels) as an 8- or 16-bit PNG with the given text as `iTXt`
    /// chunks (UTF-8 values; long values are compressed). Samples are clamped to 0...1.
    public static func encode(_ image: Image, depth: SampleDepth = .uint8, text: [TextChunk] = [],
                              compressionLevel: Int = 6) throws -> Data {
        guard depth != .float32 else {
            throw ImagingError(.invalidArgument, "PNG stores 8 or 16 bits per sample, not 32-bit float (use TIFF)")
        }
        try checkShape(image)
        for t in text { try validateKeyword(t.key) }
        if let bad = text.first(where: { $0.value.utf8.contains(0) }) {
            throw ImagingError(.invalidArgument, "PNG text '\(bad.key)' contains a NUL character")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: Int(CIC_ERROR_SIZE))
        let keys = text.map { strdup($0.key) }
        let values = text.map { strdup($0.value) }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        guard !keys.contains(where: { $0 == nil }), !values.contains(where: { $0 == nil }) else {
            throw ImagingError(.invalidArgument, "out of memory for PNG text")
        }
        let rc: Int32 = withSamples(image, depth: depth) { samples in
            keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { kp in
                values.map { UnsafePointer($0) }.withUnsafeBufferPointer { vp in
                    cic_png_encode(samples, Int32(image.width), Int32(image.height), Int32(image.channels),
                                   Int32(depth.rawValue), kp.baseAddress, vp.baseAddress, Int32(text.count),
                                   Int32(compressionLevel), &out, &size, &err)
                }
            }
        }
        guard rc == 0, let out else {
            throw ImagingError(errorKind(rc), "cannot encode PNG: \(cMessage(err))")
        }
        defer { cic_free(out) }
        return Data(bytes: out, count: size)
    }

    /// Encodes and writes a PNG file (not atomically; see `ImageFile.write` for that).
    public static func write(_ image: Image, to url: URL, depth: SampleDepth = .uint8, text: [TextChunk] = []) throws {
        try writeFile(encode(image, depth: depth, text: text), to: url)
    }

    /// PNG keywords are 1–79 Latin-1 printable characters without leading, trailing or double spaces.
    static func validateKeyword(_ key: String) throws {
        let scalars = key.unicodeScalars
        let ok = !key.isEmpty && scalars.count <= 79
            && scalars.allSatisfy { (0x20...0x7E).contains($0.value) || (0xA1...0xFF).contains($0.value) }
            && !key.hasPrefix(" ") && !key.hasSuffix(" ") && !key.contains("  ")
        guard ok else {
            throw ImagingError(.invalidArgument,
                               "invalid PNG text keyword '\(key)': 1-79 printable Latin-1 characters, no leading/trailing/double spaces")
        }
    }

    private static func decodeText(_ p: UnsafeMutablePointer<CChar>?, utf8: Bool) -> String {
        guard let p else { return "" }
        if utf8 { return String(cString: p) } // invalid UTF-8 is repaired with U+FFFD
        // Latin-1: each byte is the Unicode scalar of the same value.
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(b)) }
        return String(s)
    }
}

/// TIFF reading and writing through libtiff.
public enum TIFF {
    /// Decodes a TIFF: 8/16-bit unsigned or 32-bit float samples, 1–4 samples per pixel,
    /// contiguous or separate planes, strips or tiles; other layouts libtiff can render
    /// (palette, bilevel, YCbCr, CMYK) come back as 8-bit RGB(A). Only the first page is read.
    public static func decode(_ data: Data, name: String = "TIFF data", maxPixels: Int = ImageLimits.defaultMaxPixels) throws -> TIFFImage {
        var img = cic_tiff_image()
        var err = [CChar](repeating: 0, count: Int(CIC_ERROR_SIZE))
        let rc = data.withUnsafeBytes { raw -> Int32 in
            let base = raw.bindMemory(to: UInt8.self).baseAddress ?? UnsafePointer(bitPattern: 1)!
            return cic_tiff_decode(base, raw.count, UInt64(max(0, maxPixels)), &img, &err)
        }
        defer { cic_tiff_image_free(&img) }
        guard rc == 0 else {
            throw ImagingError(errorKind(rc), "\(name): cannot decode TIFF: \(cMessage(err))")
        }
        let w = Int(img.width), h = Int(img.height), ch = Int(img.channels)
        let n = w * h * ch
        var px = [Float](repeating: 0, count: n)
        let depth: SampleDepth
        let raw = UnsafeRawPointer(img.pixels!)
        switch (img.bits_per_sample, img.sample_format) {
        case (8, _):
            depth = .uint8
            let s = raw.assumingMemoryBound(to: UInt8.self)
            px.withUnsafeMutableBufferPointer { d in for i in 0..<n { d[i] = Float(s[i]) / 255 } }
        case (16, _):
            depth = .uint16
            let s = raw.assumingMemoryBound(to: UInt16.self)
            px.withUnsafeMutableBufferPointer { d in for i in 0..<n { d[i] = Float(s[i]) / 65535 } }
        default:
            depth = .float32
            let s = raw.assumingMemoryBound(to: Float.self)
            px.withUnsafeMutableBufferPointer { d in for i in 0..<n { d[i] = s[i] } }
        }
        return TIFFImage(image: Image(width: w, height: h, channels: ch, pixels: px), depth: depth,
                         sourceBitsPerSample: Int(img.source_bits))
    }

    public static func read(contentsOf url: URL, maxPixels: Int = ImageLimits.defaultMaxPixels) throws -> TIFFImage {
        try decode(readFile(url), name: url.path, maxPixels: maxPixels)
    }

    /// Encodes an image as a Deflate-compressed TIFF with 8/16-bit unsigned samples (clamped to
    /// 0...1 and scaled) or 32-bit float samples (stored as they are).
    public static func encode(_ image: Image, depth: SampleDepth = .uint16) throws -> Data {
        try checkShape(image)
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: Int(CIC_ERROR_SIZE))
        let format = depth == .float32 ? Int32(CIC_SAMPLE_FLOAT) : Int32(CIC_SAMPLE_UINT)
        let rc: Int32 = withSamples(image, depth: depth) { samples in
            cic_tiff_encode(samples, Int32(image.width), Int32(image.height), Int32(image.channels),
                            Int32(depth.rawValue), format, &out, &size, &err)
        }
        guard rc == 0, let out else {
            throw ImagingError(errorKind(rc), "cannot encode TIFF: \(cMessage(err))")
        }
        defer { cic_free(out) }
        return Data(bytes: out, count: size)
    }

    public static func write(_ image: Image, to url: URL, depth: SampleDepth = .uint16) throws {
        try writeFile(encode(image, depth: depth), to: url)
    }
}

// MARK: - Shared helpers

private func errorKind(_ rc: Int32) -> ImagingError.Kind {
    switch rc {
    case Int32(CIC_ERR_UNSUPPORTED): .unsupported
    case Int32(CIC_ERR_ARGUMENT): .invalidArgument
    case Int32(CIC_ERR_MEMORY): .unsupported
    case Int32(CIC_ERR_LIMIT): .tooLarge
    default: .corruptData
    }
}

private func checkShape(_ image: Image) throws {
    guard image.width > 0, image.height > 0, (1...4).contains(image.channels),
          image.pixels.count == image.width * image.height * image.channels else {
        throw ImagingError(.invalidArgument,
                           "cannot encode an image of shape \(image.width)x\(image.height)x\(image.channels)")
    }
    guard image.width <= Int(Int32.max) / 16, image.height <= Int(Int32.max) else {
        throw ImagingError(.invalidArgument, "image \(image.width)x\(image.height) is too large to encode")
    }
}

/// Calls `body` with the image's samples converted to `depth` (native-endian).
private func withSamples<R>(_ image: Image, depth: SampleDepth, _ body: (UnsafeRawPointer) -> R) -> R {
    let n = image.pixels.count
    switch depth {
    case .uint8:
        let bytes = image.quantized8()
        return bytes.withUnsafeBytes { body($0.baseAddress!) }
    case .uint16:
        var words = [UInt16](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { s in
            words.withUnsafeMutableBufferPointer { d in for i in 0..<n { d[i] = quantize16(s[i]) } }
        }
        return words.withUnsafeBytes { body($0.baseAddress!) }
    case .float32:
        return image.pixels.withUnsafeBytes { body($0.baseAddress!) }
    }
}

func readFile(_ url: URL) throws -> Data {
    do {
        return try Data(contentsOf: url)
    } catch {
        let reason = FileManager.default.fileExists(atPath: url.path) ? "cannot be read" : "does not exist"
        throw ImagingError(.io, "\(url.path): file \(reason)")
    }
}

func writeFile(_ data: Data, to url: URL) throws {
    do {
        try data.write(to: url)
    } catch {
        throw ImagingError(.io, "\(url.path): cannot write file (\(error.localizedDescription))")
    }
}

/// The NUL-terminated message in a C error buffer.
func cMessage(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
