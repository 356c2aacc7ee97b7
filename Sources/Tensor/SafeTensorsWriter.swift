#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Builds a safetensors file: tensors by name with their dtype, shape and raw bytes, plus
/// string metadata. Written atomically (temporary file in the same folder, fsync, rename).
public struct SafeTensorsWriter: Sendable {
    private struct Entry: Sendable {
        let dtype: DType
        let shape: [Int]
        let bytes: [UInt8]
    }

    public var metadata: [String: String]
    private var entries: [String: Entry] = [:]

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    public var names: [String] { entries.keys.sorted() }

    /// Adds raw little-endian bytes. Throws if the byte count does not match shape × dtype,
    /// the name is empty, reserved or already used.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) throws(SafeTensorsError) {
        guard !name.isEmpty, name != "__metadata__" else {
            throw .invalidTensor(key: name, reason: "reserved or empty tensor name")
        }
        guard entries[name] == nil else { throw .invalidTensor(key: name, reason: "added twice") }
        guard let n = try? Tensor.elementCount(shape) else { throw .invalidTensor(key: name, reason: "invalid shape \(shape)") }
        guard n * dtype.byteSize == bytes.count else {
            throw .invalidTensor(key: name, reason: "shape \(shape) of \(dtype.rawValue) needs \(n * dtype.byteSize) bytes, got \(bytes.count)")
        }
        entries[name] = Entry(dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Adds Float values stored as `dtype` (f32, f16, bf16 with round-to-nearest-even, or f64).
    public mutating func add(_ name: String, shape: [Int], floats: [Float], as dtype: DType = .f32) throws(SafeTensorsError) {
        guard dtype.isFloatingPoint else {
            throw .invalidTensor(key: name, reason: "cannot store Floats as \(dtype.rawValue)")
        }
        let bytes = floats.withUnsafeBufferPointer { FloatConversion.encode($0, as: dtype) }
        try add(name, dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Adds a tensor stored as `dtype`.
    public mutating func add(_ name: String, _ tensor: Tensor, as dtype: DType = .f32) throws(SafeTensorsError) {
        try add(name, shape: tensor.shape, floats: tensor.scalars, as: dtype)
    }

    /// The complete file contents. Tensors are laid out in name order; the header is padded
    /// with spaces to a multiple of 8 bytes so that the data section stays aligned.
    public func serialized() -> [UInt8] {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
        }
        var offset = 0
        let order = entries.keys.sorted()
        for name in order {
            let e = entries[name]!
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonQuoted(name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for name in order { out.append(contentsOf: entries[name]!.bytes) }
        return out
    }

    /// Writes the file atomically: a reader sees either the old file or the complete new one.
    public func write(to path: String) throws(SafeTensorsError) {
        try Self.atomicWrite(serialized(), to: path)
    }

    static func atomicWrite(_ data: [UInt8], to path: String) throws(SafeTensorsError) {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let tmp = (dir.isEmpty ? "" : dir + "/") + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw .writeFailed(file: path, reason: String(cString: strerror(errno))) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var written = 0
        let failure: String? = data.withUnsafeBytes { raw -> String? in
            while written < raw.count {
                let r = systemWrite(fd, raw.baseAddress! + written, raw.count - written)
                if r < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                written += r
            }
            return nil
        }
        if let failure { close(fd); throw .writeFailed(file: path, reason: failure) }
        if fsync(fd) != 0 { let e = String(cString: strerror(errno)); close(fd); throw .writeFailed(file: path, reason: e) }
        if close(fd) != 0 { throw .writeFailed(file: path, reason: String(cString: strerror(errno))) }
        guard rename(tmp, path) == 0 else { throw .writeFailed(file: path, reason: String(cString: strerror(errno))) }
        ok = true
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
