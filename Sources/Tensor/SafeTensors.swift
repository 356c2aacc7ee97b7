#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A read-only memory mapping of a whole file, unmapped when released.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeRawPointer?
    let size: Int

    init(path: String) throws(SafeTensorsError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(file: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .cannotOpen(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))") }
        base = UnsafeRawPointer(p)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }
}

/// Header entry of one stored tensor.
public struct TensorInfo: Sendable, Equatable {
    public let key: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let dataOffsets: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataOffsets.count }
}

/// A tensor in its stored dtype: raw little-endian bytes kept alive by `owner`
/// (a memory-mapped file, or a buffer owned by this value).
public struct StoredTensor: @unchecked Sendable {
    public let key: String
    public let dtype: DType
    public let shape: [Int]
    /// The raw bytes, valid as long as this value exists.
    public let bytes: UnsafeRawBufferPointer
    /// Where the bytes came from (for messages): a file path or "memory".
    public let source: String
    let owner: AnyObject

    public var elementCount: Int { shape.reduce(1, *) }

    init(key: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer, source: String, owner: AnyObject) {
        self.key = key
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.source = source
        self.owner = owner
    }

    /// Wraps a Float tensor as an f32 stored tensor (no copy).
    public init(_ tensor: Tensor, key: String = "tensor") {
        self.init(key: key, dtype: .f32, shape: tensor.shape,
                  bytes: UnsafeRawBufferPointer(start: tensor.storage.pointer, count: tensor.count * 4),
                  source: "memory", owner: tensor.storage)
    }

    /// Copies `bytes` (little-endian elements of `dtype`) into a new stored tensor.
    public init(key: String = "tensor", dtype: DType, shape: [Int], bytes: [UInt8]) throws(SafeTensorsError) {
        guard shape.allSatisfy({ $0 >= 0 }), let n = try? Tensor.elementCount(shape) else {
            throw .invalidTensor(key: key, reason: "invalid shape \(shape)")
        }
        guard n * dtype.byteSize == bytes.count else {
            throw .invalidTensor(key: key, reason: "shape \(shape) of \(dtype.rawValue) needs \(n * dtype.byteSize) bytes, got \(bytes.count)")
        }
        let box = ByteBox(bytes)
        self.init(key: key, dtype: dtype, shape: shape,
                  bytes: UnsafeRawBufferPointer(start: box.pointer, count: bytes.count), source: "memory", owner: box)
    }

    /// Converts into `destination`, which must hold exactly `elementCount` floats.
    public func convert(into destination: UnsafeMutableBufferPointer<Float>) throws(SafeTensorsError) {
        guard dtype.isFloatingPoint else { throw .notFloatingPoint(file: source, key: key, dtype: dtype) }
        guard destination.count == elementCount else {
            throw .destinationSizeMismatch(file: source, key: key, elements: elementCount, destination: destination.count)
        }
        guard let dst = destination.baseAddress, let src = bytes.baseAddress, elementCount > 0 else { return }
        FloatConversion.convert(src, dtype: dtype, count: elementCount, into: dst)
    }

    /// The values as Floats.
    public func floats() throws(SafeTensorsError) -> [Float] {
        guard dtype.isFloatingPoint else { throw .notFloatingPoint(file: source, key: key, dtype: dtype) }
        var out = [Float](repeating: 0, count: elementCount)
        try out.withUnsafeMutableBufferPointer { (b) throws(SafeTensorsError) in try convert(into: b) }
        return out
    }

    /// The values as a Float tensor of the stored shape.
    public func tensor() throws(SafeTensorsError) -> Tensor {
        guard dtype.isFloatingPoint else { throw .notFloatingPoint(file: source, key: key, dtype: dtype) }
        let storage = TensorStorage(uninitializedCount: elementCount)
        try convert(into: UnsafeMutableBufferPointer(start: storage.pointer, count: elementCount))
        return Tensor(shape: shape, storage: storage)
    }

    /// Calls `body` with the values as Floats: without copying when the bytes are aligned f32,
    /// otherwise through a temporary converted buffer.
    public func withFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard dtype.isFloatingPoint else { throw SafeTensorsError.notFloatingPoint(file: source, key: key, dtype: dtype) }
        if dtype == .f32, let base = bytes.baseAddress, Int(bitPattern: base) % 4 == 0 {
            return try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: elementCount))
        }
        let tmp = TensorStorage(uninitializedCount: elementCount)
        try convert(into: UnsafeMutableBufferPointer(start: tmp.pointer, count: elementCount))
        return try withExtendedLifetime(tmp) {
            try body(UnsafeBufferPointer(start: tmp.pointer, count: elementCount))
        }
    }
}

final class ByteBox: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(_ bytes: [UInt8]) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 64)
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(pointer), byteCount: bytes.count) }
    }
    deinit { pointer.deallocate() }
}

/// Anything that holds named stored tensors: one safetensors file or a sharded checkpoint.
public protocol TensorSource: Sendable {
    /// A name for messages (file or index path).
    var name: String { get }
    /// All tensor keys, sorted.
    var keys: [String] { get }
    func contains(_ key: String) -> Bool
    /// The tensor in its stored dtype; throws `missingKey` with suggestions when absent.
    func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor
}

extension TensorSource {
    public func floats(_ key: String) throws(SafeTensorsError) -> [Float] { try stored(key).floats() }
    public func tensor(_ key: String) throws(SafeTensorsError) -> Tensor { try stored(key).tensor() }
    public func read(_ key: String, into destination: UnsafeMutableBufferPointer<Float>) throws(SafeTensorsError) {
        try stored(key).convert(into: destination)
    }
}

/// One memory-mapped safetensors file, fully validated when opened: header length, JSON, every
/// entry's dtype, shape, offsets (inside the data section, not overlapping) and byte size.
/// Tensor bytes are read lazily from the mapping. As with any mapping, truncating the file while
/// it is open makes later reads fault: replace checkpoint files by renaming, never in place.
public final class SafeTensorsFile: TensorSource, @unchecked Sendable {
    public let path: String
    /// The `__metadata__` string map (empty when absent).
    public let metadata: [String: String]
    /// Header entries by key.
    public let infos: [String: TensorInfo]
    public let keys: [String]
    private let file: MappedFile
    private let dataStart: Int

    public var name: String { path }

    public init(path: String) throws(SafeTensorsError) {
        self.path = path
        file = try MappedFile(path: path)
        let all = file.bytes
        guard all.count >= 8 else { throw .fileTooSmall(file: path, size: all.count) }
        let n = all.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n <= UInt64(all.count - 8) else {
            throw .headerLengthOutOfRange(file: path, headerLength: n, fileSize: all.count)
        }
        let headerLength = Int(n)
        dataStart = 8 + headerLength
        let header = UnsafeRawBufferPointer(rebasing: all[8..<dataStart])
        let json: JSONValue
        do { json = try JSONParser.parse(header) } catch { throw .invalidHeader(file: path, reason: "bad JSON: \(error)") }
        guard case .object(let entries) = json else {
            throw .invalidHeader(file: path, reason: "expected a JSON object, found \(json.typeName)")
        }
        let dataSize = all.count - dataStart
        var meta: [String: String] = [:]
        var infos: [String: TensorInfo] = [:]
        for (key, value) in entries {
            if key == "__metadata__" {
                guard case .object(let m) = value else {
                    throw .invalidHeader(file: path, reason: "__metadata__ must be an object of strings, found \(value.typeName)")
                }
                for (mk, mv) in m {
                    guard case .string(let s) = mv else {
                        throw .invalidHeader(file: path, reason: "__metadata__ value for \"\(mk)\" must be a string, found \(mv.typeName)")
                    }
                    meta[mk] = s
                }
                continue
            }
            infos[key] = try Self.parseEntry(key: key, value: value, file: path, dataSize: dataSize)
        }
        // Overlap check: sort non-empty spans by start.
        let spans = infos.values.filter { !$0.dataOffsets.isEmpty }.sorted {
            $0.dataOffsets.lowerBound != $1.dataOffsets.lowerBound
                ? $0.dataOffsets.lowerBound < $1.dataOffsets.lowerBound : $0.key < $1.key
        }
        for i in spans.indices.dropFirst() where spans[i].dataOffsets.lowerBound < spans[i - 1].dataOffsets.upperBound {
            throw .overlappingTensors(file: path, key: spans[i].key, other: spans[i - 1].key)
        }
        metadata = meta
        self.infos = infos
        keys = infos.keys.sorted()
    }

    private static func parseEntry(key: String, value: JSONValue, file: String, dataSize: Int) throws(SafeTensorsError) -> TensorInfo {
        guard case .object(let o) = value else {
            throw .invalidEntry(file: file, key: key, reason: "expected an object, found \(value.typeName)")
        }
        guard case .string(let dt)? = o["dtype"] else {
            throw .invalidEntry(file: file, key: key, reason: "missing or non-string \"dtype\"")
        }
        guard let dtype = DType(rawValue: dt) else { throw .unsupportedDType(file: file, key: key, dtype: dt) }
        guard case .array(let dims)? = o["shape"] else {
            throw .invalidEntry(file: file, key: key, reason: "missing or non-array \"shape\"")
        }
        var shape: [Int] = []
        for d in dims {
            guard case .integer(let v) = d, v >= 0 else {
                throw .invalidEntry(file: file, key: key, reason: "shape must hold non-negative integers")
            }
            shape.append(v)
        }
        guard case .array(let offs)? = o["data_offsets"], offs.count == 2,
              case .integer(let begin) = offs[0], case .integer(let end) = offs[1] else {
            throw .invalidEntry(file: file, key: key, reason: "\"data_offsets\" must be an array of two integers")
        }
        guard begin >= 0, end >= begin, end <= dataSize else {
            throw .offsetsOutOfRange(file: file, key: key, begin: begin, end: end, dataSize: dataSize)
        }
        var expected = dtype.byteSize
        for d in shape {
            let (p, overflow) = expected.multipliedReportingOverflow(by: d)
            if overflow { throw .invalidEntry(file: file, key: key, reason: "shape \(shape) is too large") }
            expected = p
        }
        guard expected == end - begin else {
            throw .sizeMismatch(file: file, key: key, expectedBytes: expected, actualBytes: end - begin)
        }
        for k in o.keys where k != "dtype" && k != "shape" && k != "data_offsets" {
            throw .invalidEntry(file: file, key: key, reason: "unexpected field \"\(k)\"")
        }
        return TensorInfo(key: key, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    public func contains(_ key: String) -> Bool { infos[key] != nil }

    public func info(_ key: String) throws(SafeTensorsError) -> TensorInfo {
        guard let i = infos[key] else {
            throw .missingKey(key: key, file: path, suggestions: closestKeys(to: key, in: keys))
        }
        return i
    }

    public func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor {
        let i = try info(key)
        let start = file.base.map { $0 + dataStart + i.dataOffsets.lowerBound }
        return StoredTensor(key: key, dtype: i.dtype, shape: i.shape,
                            bytes: UnsafeRawBufferPointer(start: start, count: i.byteCount),
                            source: path, owner: file)
    }
}

/// A checkpoint split over shards (`*.safetensors.index.json` with a `weight_map`) or a single file.
/// Each shard is opened once.
public final class SafeTensorsCheckpoint: TensorSource, @unchecked Sendable {
    public let name: String
    public let metadata: [String: String]
    public let keys: [String]
    /// Opened shards by file name (relative to the index folder).
    public let shards: [String: SafeTensorsFile]
    private let location: [String: SafeTensorsFile]

    /// Opens `path`: an index (`.json`) or a single `.safetensors` file.
    public init(path: String) throws(SafeTensorsError) {
        name = path
        if !path.hasSuffix(".json") {
            let f = try SafeTensorsFile(path: path)
            metadata = f.metadata
            keys = f.keys
            shards = [(path as NSString).lastPathComponent: f]
            location = Dictionary(uniqueKeysWithValues: f.keys.map { ($0, f) })
            return
        }
        let index = try MappedFile(path: path)
        let json: JSONValue
        do { json = try JSONParser.parse(index.bytes) } catch { throw .invalidIndex(file: path, reason: "bad JSON: \(error)") }
        guard case .object(let top) = json else { throw .invalidIndex(file: path, reason: "expected a JSON object") }
        guard case .object(let map)? = top["weight_map"] else {
            throw .invalidIndex(file: path, reason: "missing \"weight_map\" object")
        }
        var meta: [String: String] = [:]
        if case .object(let m)? = top["metadata"] {
            for (k, v) in m {
                switch v {
                case .string(let s): meta[k] = s
                case .integer(let i): meta[k] = String(i)
                case .double(let d): meta[k] = String(d)
                default: break
                }
            }
        }
        let dir = (path as NSString).deletingLastPathComponent
        var opened: [String: SafeTensorsFile] = [:]
        var location: [String: SafeTensorsFile] = [:]
        for key in map.keys.sorted() {
            guard case .string(let shardName)? = map[key] else {
                throw .invalidIndex(file: path, reason: "weight_map entry for \"\(key)\" is not a string")
            }
            guard !shardName.isEmpty, !shardName.hasPrefix("/"), !shardName.split(separator: "/").contains("..") else {
                throw .invalidIndex(file: path, reason: "shard name \"\(shardName)\" for \"\(key)\" leaves the index folder")
            }
            let shard: SafeTensorsFile
            if let s = opened[shardName] {
                shard = s
            } else {
                shard = try SafeTensorsFile(path: dir.isEmpty ? shardName : dir + "/" + shardName)
                opened[shardName] = shard
            }
            guard shard.contains(key) else {
                throw .missingKey(key: key, file: shard.path + " (listed in \(path))",
                                  suggestions: closestKeys(to: key, in: shard.keys))
            }
            location[key] = shard
        }
        metadata = meta
        keys = location.keys.sorted()
        shards = opened
        self.location = location
    }

    public func contains(_ key: String) -> Bool { location[key] != nil }

    public func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor {
        guard let f = location[key] else {
            throw .missingKey(key: key, file: name, suggestions: closestKeys(to: key, in: keys))
        }
        return try f.stored(key)
    }
}
