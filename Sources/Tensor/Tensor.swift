import Foundation

/// Errors from tensor construction and kernels (shape mismatches and the like). Shapes come
/// from checkpoints, so a wrong one is reported, never trapped on.
public struct TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Owns a 64-byte aligned buffer of Floats.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) {
        self.count = count
        let bytes = max(1, count) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
    }

    /// Allocates `count` floats without initialising them (the caller writes every element).
    init(uninitializedCount count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// A contiguous, row-major Float32 tensor with value semantics (copy on write).
/// Reshaping shares storage; writing through `withUnsafeMutableBufferPointer` copies first
/// when the storage is shared.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public private(set) var storage: TensorStorage

    /// Number of elements (product of the shape; 1 for a scalar shape []).
    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    public static func elementCount(_ shape: [Int]) throws(TensorError) -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw TensorError("negative dimension in shape \(shape)") }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw TensorError("shape \(shape) has too many elements") }
            n = p
        }
        return n
    }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) throws(TensorError) {
        self.shape = shape
        storage = TensorStorage(count: try Tensor.elementCount(shape))
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) throws(TensorError) {
        self.shape = shape
        storage = TensorStorage(uninitializedCount: try Tensor.elementCount(shape))
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    /// A tensor holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) throws(TensorError) {
        let n = try Tensor.elementCount(shape)
        guard n == scalars.count else {
            throw TensorError("shape \(shape) needs \(n) elements but \(scalars.count) were given")
        }
        self.shape = shape
        storage = TensorStorage(uninitializedCount: n)
        scalars.withUnsafeBufferPointer { storage.pointer.initialize(from: $0.baseAddress!, count: n) }
    }

    /// A tensor whose elements are written by `body` (which must write all of them).
    public init(shape: [Int], uninitialized body: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        let n = try Tensor.elementCount(shape)
        self.shape = shape
        storage = TensorStorage(uninitializedCount: n)
        try body(UnsafeMutableBufferPointer(start: storage.pointer, count: n))
    }

    init(shape: [Int], storage: TensorStorage) {
        self.shape = shape
        self.storage = storage
    }

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(uninitializedCount: count)
            copy.pointer.initialize(from: storage.pointer, count: count)
            storage = copy
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// The same elements under a new shape; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
        var dims = newShape
        let inferred = dims.indices.filter { dims[$0] == -1 }
        guard inferred.count <= 1 else { throw TensorError("reshape \(shape) -> \(newShape): more than one -1") }
        if let i = inferred.first {
            var known = dims
            known[i] = 1
            let k = try Tensor.elementCount(known)
            guard k > 0, count % k == 0 else { throw TensorError("cannot reshape \(shape) to \(newShape)") }
            dims[i] = count / k
        }
        guard try Tensor.elementCount(dims) == count else {
            throw TensorError("cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        return Tensor(shape: dims, storage: storage)
    }

    /// Size of dimension `axis` (negative counts from the end).
    public func dim(_ axis: Int) throws(TensorError) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else { throw TensorError("axis \(axis) out of range for shape \(shape)") }
        return shape[a]
    }

    /// A copy of the slab `range` along the first dimension.
    public func slice(first range: Range<Int>) throws(TensorError) -> Tensor {
        guard rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError("slice \(range) out of range for shape \(shape)")
        }
        let inner = count / max(1, shape[0])
        var s = shape
        s[0] = range.count
        let out = TensorStorage(uninitializedCount: range.count * inner)
        out.pointer.initialize(from: storage.pointer + range.lowerBound * inner, count: range.count * inner)
        return Tensor(shape: s, storage: out)
    }

    public var description: String {
        let head = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", ..." : "")])"
    }
}
