import Foundation
import NodeKit

/// Canonical binary encoding of values: the same value always gives the same bytes, on every
/// machine and in every process (little-endian, lengths explicit, floats by bit pattern).
/// It is used both for cache keys and for the disk cache's entries.
public enum ValueCodec {
    public struct NotEncodable: Error, CustomStringConvertible {
        public var description: String
    }
    public struct Corrupt: Error, CustomStringConvertible {
        public var description: String
    }

    enum Tag: UInt8 {
        case text = 1, int, float, bool, image, mask, list, outputs
    }

    /// Whether `value` can be written to the disk cache (opaque objects cannot).
    public static func isEncodable(_ value: Value) -> Bool {
        switch value {
        case .object: false
        case .list(_, let items): items.allSatisfy(isEncodable)
        default: true
        }
    }

    public static func encode(_ value: Value, into out: inout [UInt8]) throws {
        switch value {
        case .text(let s):
            out.append(Tag.text.rawValue)
            appendString(s, &out)
        case .int(let i):
            out.append(Tag.int.rawValue)
            appendInt(Int64(i), &out)
        case .float(let d):
            out.append(Tag.float.rawValue)
            let canonical = d.isNaN ? Double.nan : (d == 0 ? 0 : d)  // one NaN, no -0
            appendInt(Int64(bitPattern: canonical.bitPattern), &out)
        case .bool(let b):
            out.append(Tag.bool.rawValue)
            out.append(b ? 1 : 0)
        case .image(let r), .mask(let r):
            if case .image = value { out.append(Tag.image.rawValue) } else { out.append(Tag.mask.rawValue) }
            appendInt(Int64(r.width), &out)
            appendInt(Int64(r.height), &out)
            appendInt(Int64(r.channels), &out)
            appendString(r.depth.rawValue, &out)
            r.pixels.withUnsafeBytes { raw in
                // Float32 little-endian; this machine is little-endian (x86_64/arm64).
                out.append(contentsOf: raw)
            }
        case .list(let t, let items):
            out.append(Tag.list.rawValue)
            appendString(t.description, &out)
            appendInt(Int64(items.count), &out)
            for item in items { try encode(item, into: &out) }
        case .object(let o):
            throw NotEncodable(description: "a \(type(of: o).portTypeName) value cannot be stored on disk")
        }
    }

    /// Encodes a node's outputs (sorted by name).
    public static func encodeOutputs(_ values: [String: Value]) throws -> [UInt8] {
        var out: [UInt8] = [Tag.outputs.rawValue]
        appendInt(Int64(values.count), &out)
        for name in values.keys.sorted() {
            appendString(name, &out)
            try encode(values[name]!, into: &out)
        }
        return out
    }

    public static func decodeOutputs(_ bytes: UnsafeRawBufferPointer) throws -> [String: Value] {
        var r = Reader(bytes: bytes)
        guard try r.byte() == Tag.outputs.rawValue else { throw Corrupt(description: "not an outputs record") }
        let n = try r.count()
        var values: [String: Value] = [:]
        for _ in 0..<n {
            let name = try r.string()
            values[name] = try r.value()
        }
        guard r.offset == bytes.count else { throw Corrupt(description: "\(bytes.count - r.offset) trailing bytes") }
        return values
    }

    static func appendInt(_ v: Int64, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
    static func appendString(_ s: String, _ out: inout [UInt8]) {
        let u = Array(s.utf8)
        appendInt(Int64(u.count), &out)
        out.append(contentsOf: u)
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
            guard n >= 0, offset + n <= bytes.count else { throw Corrupt(description: "truncated at byte \(offset)") }
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
        }
        mutating func byte() throws -> UInt8 { try take(1)[0] }
        mutating func int() throws -> Int64 {
            let b = try take(8)
            var v: Int64 = 0
            withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: b) }
            return Int64(littleEndian: v)
        }
        mutating func count() throws -> Int {
            let v = try int()
            guard v >= 0, v <= Int64(bytes.count) else { throw Corrupt(description: "bad length \(v) at byte \(offset - 8)") }
            return Int(v)
        }
        mutating func string() throws -> String {
            let n = try count()
            guard let s = String(validating: try take(n), as: UTF8.self) else { throw Corrupt(description: "invalid UTF-8 at byte \(offset - n)") }
            return s
        }
        mutating func raster() throws -> Raster {
            let w = try count(), h = try count(), c = try count()
            guard let depth = Raster.SampleDepth(rawValue: try string()), (1...4).contains(c) else { throw Corrupt(description: "bad raster header") }
            let (n, overflow) = (w * h).multipliedReportingOverflow(by: c)
            guard !overflow, n <= bytes.count / 4 else { throw Corrupt(description: "bad raster size") }
            let b = try take(n * 4)
            let pixels = [Float](unsafeUninitializedCapacity: n) { buf, count in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: b)
                count = n
            }
            return Raster(width: w, height: h, channels: c, pixels: pixels, depth: depth)
        }
        mutating func value() throws -> Value {
            guard let tag = Tag(rawValue: try byte()) else { throw Corrupt(description: "unknown tag at byte \(offset - 1)") }
            switch tag {
            case .text: return .text(try string())
            case .int: return .int(Int(try int()))
            case .float: return .float(Double(bitPattern: UInt64(bitPattern: try int())))
            case .bool: return .bool(try byte() != 0)
            case .image: return .image(try raster())
            case .mask: return .mask(try raster())
            case .list:
                guard let t = PortType(parsing: try string()) else { throw Corrupt(description: "bad list type") }
                let n = try count()
                var items: [Value] = []
                items.reserveCapacity(n)
                for _ in 0..<n { items.append(try value()) }
                return .list(elementType: t, items)
            case .outputs: throw Corrupt(description: "nested outputs record")
            }
        }
    }
}
