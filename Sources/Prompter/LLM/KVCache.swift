/// The f32 key/value cache of one decoding stream: for each layer, keys and values of every position seen so far,
/// laid out [kvHead][capacity][headDim] (rotary embeddings already applied to the keys).
///
/// `CausalLM.forward` appends the new positions and advances `count`; the capacity doubles when needed
/// (copying), so preallocate with `CausalLM.makeCache(capacity:)` for the expected prompt + reply length.
/// Not thread-safe: one stream, one caller at a time.
public final class KVCache {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Positions the buffers hold without growing.
    public private(set) var capacity: Int
    /// Positions filled (the position of the next token).
    public private(set) var count: Int = 0
    private(set) var keys: [UnsafeMutablePointer<Float>] = []
    private(set) var values: [UnsafeMutablePointer<Float>] = []

    /// An empty cache with room for `capacity` positions (at least 1).
    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = max(1, capacity)
        for _ in 0..<layers {
            keys.append(Self.allocate(kvHeads * self.capacity * headDim))
            values.append(Self.allocate(kvHeads * self.capacity * headDim))
        }
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
        p.initialize(repeating: 0, count: max(1, n))
        return p
    }

    /// Forgets every position (the buffers are kept).
    public func reset() { count = 0 }

    /// Keeps the first `n` positions (to rewind a turn); `n` must be in `0...count`.
    public func truncate(to n: Int) throws {
        guard n >= 0, n <= count else { throw PrompterError("cannot truncate a KV cache of \(count) positions to \(n)") }
        count = n
    }

    /// Elements between the starts of two kv heads in one layer's buffer.
    var headStride: Int { capacity * headDim }

    /// Makes room for `total` positions, doubling the capacity and copying what is filled.
    func reserve(_ total: Int) {
        guard total > capacity else { return }
        var newCapacity = capacity
        while newCapacity < total { newCapacity *= 2 }
        func grown(_ old: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
            let new = Self.allocate(kvHeads * newCapacity * headDim)
            for g in 0..<kvHeads {
                (new + g * newCapacity * headDim).update(from: old + g * capacity * headDim, count: count * headDim)
            }
            old.deallocate()
            return new
        }
        for l in 0..<layers {
            keys[l] = grown(keys[l])
            values[l] = grown(values[l])
        }
        capacity = newCapacity
    }

    /// Records that `n` more positions were written.
    func advance(by n: Int) { count += n }
}
