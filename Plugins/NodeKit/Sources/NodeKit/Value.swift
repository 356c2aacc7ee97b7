/// A raster of Float32 samples, interleaved (row-major, channel-last), nominally in 0...1.
///
/// This is the port-level currency for `image` (1–4 channels: gray, gray+alpha, RGB, RGBA)
/// and `mask` (1 channel, 1 = selected) values. It is a value type whose storage is a
/// copy-on-write array, so a value handed downstream (or held by a cache) can never be
/// mutated by a consumer. Image libraries keep their own types and convert at the pack
/// boundary; because both hold a `[Float]`, that conversion shares storage and copies nothing.
public struct Raster: Sendable, Equatable {
    @frozen public enum SampleDepth: String, Sendable, Codable {
        case uint8, uint16, float32
    }
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [Float]
    /// The precision the samples came from (an 8-bit PNG, a 16-bit TIFF, a float pipeline):
    /// savers use it as the default output depth.
    public var depth: SampleDepth

    public init(width: Int, height: Int, channels: Int, pixels: [Float], depth: SampleDepth = .uint8) {
        precondition(width >= 0 && height >= 0 && channels >= 1 && channels <= 4, "bad raster shape")
        precondition(pixels.count == width * height * channels, "raster has \(pixels.count) samples, expected \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
        self.depth = depth
    }

    public var byteCount: Int { pixels.count * MemoryLayout<Float>.size }
}

/// An opaque value that only a pack's own nodes understand: a loaded model, a scheduler
/// configuration, a conversation. Reference types, shared and never mutated after creation.
public protocol PortObject: AnyObject, Sendable {
    /// The `PortType.object` name this value is carried under (e.g. `sd.unet`).
    static var portTypeName: String { get }
    /// Approximate resident size, for the memory cache's byte budget.
    var estimatedBytes: Int { get }
}

/// A value flowing along a link or given as a literal.
@frozen public enum Value: Sendable {
    case text(String)
    case int(Int)
    case float(Double)
    case bool(Bool)
    case image(Raster)
    case mask(Raster)
    case list(elementType: PortType, [Value])
    case object(any PortObject)

    /// The runtime type of this value.
    public var portType: PortType {
        switch self {
        case .text: .text
        case .int: .int
        case .float: .float
        case .bool: .bool
        case .image: .image
        case .mask: .mask
        case .list(let t, _): .list(t)
        case .object(let o): .object(type(of: o).portTypeName)
        }
    }

    /// Approximate resident size in bytes.
    public var estimatedBytes: Int {
        switch self {
        case .text(let s): 16 + s.utf8.count
        case .int, .float, .bool: 16
        case .image(let r), .mask(let r): 64 + r.byteCount
        case .list(_, let items): items.reduce(32) { $0 + $1.estimatedBytes }
        case .object(let o): o.estimatedBytes
        }
    }

    /// Converts this value to fit an input of type `target` (int → float widening, element-wise
    /// for lists). Returns nil if it does not fit.
    public func coerced(to target: PortType) -> Value? {
        switch (self, target) {
        case (.int(let i), .float): return .float(Double(i))
        case (.list(_, let items), .list(let t)):
            var out: [Value] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard let c = item.coerced(to: t) else { return nil }
                out.append(c)
            }
            return .list(elementType: t, out)
        default:
            return portType == target ? self : nil
        }
    }
}

extension Value: CustomStringConvertible {
    /// A short human-readable rendering for messages and logs (never used for hashing).
    public var description: String {
        switch self {
        case .text(let s): s.count > 60 ? "\"\(s.prefix(57))...\"" : "\"\(s)\""
        case .int(let i): String(i)
        case .float(let d): String(d)
        case .bool(let b): String(b)
        case .image(let r): "image \(r.width)x\(r.height)x\(r.channels)"
        case .mask(let r): "mask \(r.width)x\(r.height)"
        case .list(let t, let items): "[\(t)] (\(items.count) items)"
        case .object(let o): "<\(type(of: o).portTypeName)>"
        }
    }
}
