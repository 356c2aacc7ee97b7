import Foundation
import Tensor

/// Reads a model's tensors (diffusers names) from a `TensorSource` under a key prefix, checking
/// dtype and shape. Big weights stay in their stored dtype (memory-mapped F32/F16/BF16); small
/// ones (norm scales, biases) are converted to Float32 once, at load time.
public struct WeightReader: Sendable {
    public let source: any TensorSource
    public let prefix: String

    public init(source: any TensorSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
    }

    /// The reader for a sub-module: `child("down_blocks.0")` reads `down_blocks.0.<name>`.
    public func child(_ name: String) -> WeightReader {
        WeightReader(source: source, prefix: prefix + name + ".")
    }

    func fetch(_ key: String) throws -> StoredTensor {
        do {
            return try source.stored(key)
        } catch {
            if case let .missingKey(k, _, similar) = error {
                throw DiffusionError("missing tensor \"\(k)\"" + (similar.isEmpty ? "" : " (similar names: \(similar.joined(separator: ", ")))"),
                                     file: source.name)
            }
            throw DiffusionError("\(error)", file: source.name)
        }
    }

    /// The stored tensor `prefix+name`, which must have one of `shapes`; a `[C, C, 1, 1]` tensor is
    /// viewed as `shapes[0]` when that is `[C, C]` and is listed as acceptable. `legacyNames` are
    /// tried in order when `name` is absent (old VAE files: `query`/`key`/`value`/`proj_attn`).
    public func stored(_ name: String, shape: [Int], alsoAccept other: [[Int]] = [], legacyNames: [String] = []) throws -> StoredTensor {
        var key = prefix + name
        if !source.contains(key), let alt = legacyNames.map({ prefix + $0 }).first(where: { source.contains($0) }) {
            key = alt
        }
        let t = try fetch(key)
        guard t.dtype.isFloatingPoint else {
            throw DiffusionError("tensor \"\(key)\" has dtype \(t.dtype.rawValue); expected F32, F16 or BF16", file: source.name)
        }
        if t.shape == shape { return t }
        if other.contains(t.shape) {
            do { return try t.viewed(as: shape) } catch { throw DiffusionError("\(error)", file: source.name) }
        }
        let accepted = ([shape] + other).map { "\($0)" }.joined(separator: " or ")
        throw DiffusionError("tensor \"\(key)\" has shape \(t.shape), expected \(accepted)", file: source.name)
    }

    /// A small tensor converted to Float32 now (kept in memory as an f32 `StoredTensor`).
    public func float32(_ name: String, shape: [Int], legacyNames: [String] = []) throws -> StoredTensor {
        let t = try stored(name, shape: shape, legacyNames: legacyNames)
        if t.dtype == .f32, let b = t.bytes.baseAddress, Int(bitPattern: b) % 4 == 0 { return t }
        do { return StoredTensor(try t.tensor(), key: t.key) } catch { throw DiffusionError("\(error)", file: source.name) }
    }

    public func contains(_ name: String) -> Bool { source.contains(prefix + name) }
}

/// Reusable buffers for one model: the Float32 copy of the weight being applied (F16/BF16
/// weights are converted per layer, per call, into this one buffer), im2col columns and GEMM
/// output tiles. Also counts the time spent converting weights. A model uses its workspace
/// under a lock, so calls on one model are serialised.
public final class Workspace: @unchecked Sendable {
    private var buffers: [UnsafeMutablePointer<Float>?] = [nil, nil, nil, nil]
    private var capacities: [Int] = [0, 0, 0, 0]
    /// Seconds spent converting stored weights to Float32 since the last `resetCounters()`.
    public private(set) var conversionSeconds: Double = 0
    /// Weight elements converted since the last `resetCounters()`.
    public private(set) var convertedElements: Int = 0
    /// Seconds per kernel kind ("conv3x3", "conv1x1", "linear", "attention", ...) while `profiling` is on.
    public private(set) var profile: [String: Double] = [:]
    public var profiling = false

    /// Runs `body`, adding its wall time to `profile[label]` when profiling.
    @inline(__always)
    func measure<R>(_ label: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard profiling else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { profile[label(), default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    /// Floats of im2col columns (and of GEMM output tiles) per chunk.
    public var columnBudget = 6 << 20

    /// Whether 3×3 stride-1 convolutions may use Winograd F(2×2, 3×3) (tests turn it off to compare
    /// against im2col).
    public var useWinograd = true
    /// Fewest 2×2 output tiles (over the batch) for which a convolution takes the Winograd path.
    public var winogradMinTiles = 64
    /// Floats of Winograd input tiles (and of products) per chunk of tiles: 8 MiB each, so that both fit
    /// the 32 MiB last-level cache with room to spare (24 MiB chunks measured slower at 512²).
    public var winogradBudget = 2 << 20

    public init() {}

    deinit { for b in buffers { b?.deallocate() } }

    public func resetCounters() {
        profile = [:]
        conversionSeconds = 0
        convertedElements = 0
    }

    /// weight: the converted weight; columns: im2col columns or Winograd input tiles; tile: GEMM
    /// output tiles or Winograd products; winogradFilter: the transformed 3×3 filter.
    enum Slot: Int, CaseIterable { case weight = 0, columns = 1, tile = 2, winogradFilter = 3 }

    /// Frees the scratch buffers (they are reallocated on the next call). Models call this after
    /// each forward so that a pipeline holds only one model's scratch at a time.
    public func releaseScratch() {
        for i in buffers.indices {
            buffers[i]?.deallocate()
            buffers[i] = nil
            capacities[i] = 0
        }
    }

    func buffer(_ slot: Slot, count: Int) -> UnsafeMutablePointer<Float> {
        let i = slot.rawValue
        if capacities[i] < count {
            buffers[i]?.deallocate()
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
            buffers[i] = raw.bindMemory(to: Float.self, capacity: max(1, count))
            capacities[i] = count
        }
        return buffers[i]!
    }

    /// Float32 values of a weight: in place for aligned F32, else converted into the weight buffer
    /// (valid until the next call).
    func floats(_ w: StoredTensor) throws -> UnsafePointer<Float> {
        if w.dtype == .f32, let b = w.bytes.baseAddress, Int(bitPattern: b) % 4 == 0 {
            return b.assumingMemoryBound(to: Float.self)
        }
        let n = w.elementCount
        let dst = buffer(.weight, count: n)
        let t0 = DispatchTime.now().uptimeNanoseconds
        do { try w.convert(into: UnsafeMutableBufferPointer(start: dst, count: n)) } catch { throw DiffusionError("\(error)", file: w.source) }
        conversionSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        convertedElements += n
        return UnsafePointer(dst)
    }
}

/// Float32 pointer of an f32 `StoredTensor` made by `WeightReader.float32`.
@inline(__always)
func f32Pointer(_ t: StoredTensor) -> UnsafePointer<Float> {
    t.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
}

func shapeError(_ what: String, _ shape: [Int], expected: String) -> DiffusionError {
    DiffusionError("\(what): input has shape \(shape), expected \(expected)")
}
