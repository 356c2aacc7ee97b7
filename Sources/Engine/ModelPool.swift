import NodeKit

/// Loaded models shared by every node and every run of one engine, within a byte budget.
///
/// Concurrent requests for the same key share one load. When the budget is exceeded the least
/// recently used models are dropped from the pool (nodes still holding one keep it alive until
/// they finish; the pool just forgets it).
public actor SharedModelPool: ModelPool {
    private var entries: [String: (model: any PortObject, bytes: Int, tick: UInt64)] = [:]
    private var loading: [String: Task<any PortObject, Error>] = [:]
    private var tick: UInt64 = 0
    public let budget: Int
    public private(set) var loads = 0

    public init(budgetBytes: Int) { budget = budgetBytes }

    public struct TypeClash: Error, CustomStringConvertible {
        public var description: String
    }

    public func model<T: PortObject>(key: String, load: @escaping @Sendable () async throws -> T) async throws -> T {
        tick += 1
        if let e = entries[key] {
            entries[key]!.tick = tick
            return try cast(e.model, key)
        }
        if let task = loading[key] {
            return try cast(try await task.value, key)
        }
        let t = Task<any PortObject, Error> { try await load() }
        loading[key] = t
        defer { loading[key] = nil }
        let result: T = try cast(try await t.value, key)
        loads += 1
        tick += 1
        entries[key] = (result, result.estimatedBytes, tick)
        evict(keeping: key)
        return result
    }

    private func cast<T: PortObject>(_ m: any PortObject, _ key: String) throws -> T {
        guard let t = m as? T else {
            throw TypeClash(description: "model pool key '\(key)' holds a \(type(of: m).portTypeName), not a \(T.portTypeName)")
        }
        return t
    }

    private func evict(keeping key: String) {
        var total = entries.values.reduce(0) { $0 + $1.bytes }
        while total > budget, let victim = entries.filter({ $0.key != key }).min(by: { $0.value.tick < $1.value.tick }) {
            entries[victim.key] = nil
            total -= victim.value.bytes
        }
    }

    public var residentBytes: Int { entries.values.reduce(0) { $0 + $1.bytes } }
    public var keys: [String] { Array(entries.keys) }
}
