import Foundation

/// Image file formats this library reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case png, tiff

    /// The format of encoded bytes, by their signature (nil if neither PNG nor TIFF).
    public static func sniff(_ data: Data) -> ImageFormat? {
        let b = [UInt8](data.prefix(8))
        if b.count >= 8, b == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if b.count >= 4, (b[0] == 0x49 && b[1] == 0x49 && (b[2] == 42 || b[2] == 43) && b[3] == 0)
            || (b[0] == 0x4D && b[1] == 0x4D && b[2] == 0 && (b[3] == 42 || b[3] == 43)) { return .tiff }
        return nil
    }

    /// The format named by a file extension (`png`, `tif`, `tiff`; any case).
    public init?(pathExtension ext: String) {
        switch ext.lowercased() {
        case "png": self = .png
        case "tif", "tiff": self = .tiff
        default: return nil
        }
    }
}

/// An image read from a file, with what is known about its encoding.
public struct LoadedImage: Sendable {
    public var image: Image
    public var format: ImageFormat
    public var depth: SampleDepth
    /// PNG text chunks (empty for TIFF).
    public var text: [TextChunk]
}

/// Format-independent reading and atomic writing of image files.
public enum ImageFile {
    /// Decodes PNG or TIFF bytes, recognised by content (not by name).
    /// An image declaring more than `maxPixels` pixels is refused (`.tooLarge`) before it is decoded.
    public static func decode(_ data: Data, name: String = "image data", maxPixels: Int = ImageLimits.defaultMaxPixels) throws -> LoadedImage {
        switch ImageFormat.sniff(data) {
        case .png:
            let p = try PNG.decode(data, name: name, maxPixels: maxPixels)
            return LoadedImage(image: p.image, format: .png, depth: p.depth, text: p.text)
        case .tiff:
            let t = try TIFF.decode(data, name: name, maxPixels: maxPixels)
            return LoadedImage(image: t.image, format: .tiff, depth: t.depth, text: [])
        case nil:
            throw ImagingError(.unsupported, "\(name): not a PNG or TIFF file (unrecognised signature)")
        }
    }

    /// Reads a PNG or TIFF file, recognised by content.
    public static func read(contentsOf url: URL, maxPixels: Int = ImageLimits.defaultMaxPixels) throws -> LoadedImage {
        try decode(readFile(url), name: url.path, maxPixels: maxPixels)
    }

    /// Encodes an image in `format` at `depth` (PNG: 8 or 16; TIFF: 8, 16 or float 32).
    /// PNG carries `text` as iTXt chunks; TIFF refuses text.
    public static func encode(_ image: Image, format: ImageFormat, depth: SampleDepth,
                              text: [TextChunk] = []) throws -> Data {
        switch format {
        case .png: return try PNG.encode(image, depth: depth, text: text)
        case .tiff: return try TIFF.encode(image, depth: depth)
        }
    }

    /// Writes `data` to `url` atomically: creates missing parent directories, writes and
    /// flushes a temporary file in the destination directory, calls `beforeCommit` (which may throw,
    /// e.g. on cancellation) and renames it into place. On any error the temporary file is
    /// removed and no file appears at `url`.
    public static func writeAtomically(_ data: Data, to url: URL, beforeCommit: () throws -> Void = {}) throws {
        let fm = FileManager.default
        let dir = url.deletingLastPathComponent()
        do {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw ImagingError(.io, "\(url.path): cannot create directory \(dir.path) (\(error.localizedDescription))")
        }
        let temp = dir.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        do {
            guard fm.createFile(atPath: temp.path, contents: nil) else {
                throw ImagingError(.io, "\(url.path): cannot create a temporary file in \(dir.path)")
            }
            do {
                let handle = try FileHandle(forWritingTo: temp)
                defer { try? handle.close() }
                try handle.write(contentsOf: data)
                try handle.synchronize() // on disk before it takes the final name
            } catch {
                throw ImagingError(.io, "\(url.path): cannot write (\(error.localizedDescription))")
            }
            try beforeCommit()
            guard rename(temp.path, url.path) == 0 else {
                let reason = String(cString: strerror(errno))
                throw ImagingError(.io, "\(url.path): cannot move the written file into place (\(reason))")
            }
        } catch {
            unlink(temp.path)
            throw error
        }
    }
}
