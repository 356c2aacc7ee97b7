import Foundation

/// The NodeKit ABI a pack was compiled against. `@inlinable` makes a pack capture the value
/// at its own build time, so the host can compare it with its own.
public enum NodeKitABI {
    @inlinable public static var version: Int32 { 1 }
    /// The C symbol every dynamically loaded pack exports:
    /// `@_cdecl("llmga_pack_entry") func entry(_ hostABI: Int32, _ registry: UnsafeMutableRawPointer) -> Int32`.
    /// It registers its node types only when `hostABI` equals its own ABI, and always returns its own ABI.
    public static let entrySymbol = "llmga_pack_entry"
}

/// Identity of a node pack: a namespaced id and a version that is part of every cache key of its nodes.
public struct PackInfo: Sendable, Hashable {
    public var id: String
    public var version: String
    public init(id: String, version: String) {
        self.id = id
        self.version = version
    }
}

/// A node type as registered: its Swift type and the pack it came from.
public struct RegisteredNode: Sendable {
    public let type: any NodeType.Type
    public let pack: PackInfo
    /// Where the pack came from: "built-in" or the shared library's path.
    public let origin: String

    public var id: String { type.id }
    public var version: Int { type.version }
    public var schema: NodeSchema { type.schema }
    public var purity: Purity { type.purity }
}

public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// All node types known to a process. Packs fill it once at start-up; afterwards it is read-only.
public final class NodeRegistry: @unchecked Sendable {
    private var nodes: [String: RegisteredNode] = [:]
    private var packList: [PackInfo] = []
    private let lock = NSLock()
    fileprivate var loadingOrigin = "built-in"
    fileprivate var lastDynamicError: String?

    public init() {}

    /// Registers the node types of one pack. A node id registered twice is an error (no silent
    /// last-wins clashes); ids must be namespaced `pack.name`.
    public func register(pack: PackInfo, origin: String = "built-in", _ types: [any NodeType.Type]) throws {
        lock.lock()
        defer { lock.unlock() }
        var seen: [String: RegisteredNode] = [:]
        for t in types {
            guard t.id.contains("."), !t.id.hasPrefix("."), !t.id.hasSuffix(".") else {
                throw RegistryError("node type id '\(t.id)' of pack \(pack.id) must be namespaced like 'pack.name'")
            }
            if let existing = nodes[t.id] ?? seen[t.id] {
                throw RegistryError("node type '\(t.id)' from pack \(pack.id) (\(origin)) is already registered by pack \(existing.pack.id) (\(existing.origin))")
            }
            let names = t.schema.inputs.map(\.name)
            if Set(names).count != names.count { throw RegistryError("node type '\(t.id)' declares an input twice") }
            let outs = t.schema.outputs.map(\.name)
            if Set(outs).count != outs.count { throw RegistryError("node type '\(t.id)' declares an output twice") }
            seen[t.id] = RegisteredNode(type: t, pack: pack, origin: origin)
        }
        nodes.merge(seen) { a, _ in a }
        packList.append(pack)
    }

    public func node(_ id: String) -> RegisteredNode? {
        lock.lock()
        defer { lock.unlock() }
        return nodes[id]
    }

    public var all: [RegisteredNode] {
        lock.lock()
        defer { lock.unlock() }
        return nodes.values.sorted { $0.id < $1.id }
    }

    public var packs: [PackInfo] {
        lock.lock()
        defer { lock.unlock() }
        return packList
    }

    /// Ids close to `id`, for "did you mean" hints.
    public func suggestions(for id: String) -> [String] {
        all.map(\.id).filter { editDistance($0, id) <= max(2, id.count / 4) }
    }
}

/// Levenshtein distance, for suggestions.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}

/// Helper for a dynamic pack's entry point:
///
/// ```swift
/// @_cdecl("llmga_pack_entry")
/// public func llmgaPackEntry(_ hostABI: Int32, _ registry: UnsafeMutableRawPointer) -> Int32 {
///     PackEntry.register(hostABI: hostABI, registry: registry, pack: PackInfo(id: "example", version: "1.0.0"),
///                        [MyNode.self])
/// }
/// ```
public enum PackEntry {
    /// Registers `types` into the host's registry if the ABIs match; returns the pack's ABI.
    /// Registration errors (a clashing id) are reported back through the registry.
    @inlinable
    public static func register(hostABI: Int32, registry: UnsafeMutableRawPointer, pack: PackInfo,
                                _ types: [any NodeType.Type]) -> Int32 {
        let mine = NodeKitABI.version
        guard hostABI == mine else { return mine }
        let reg = Unmanaged<NodeRegistry>.fromOpaque(registry).takeUnretainedValue()
        reg.recordDynamicRegistration { try reg.register(pack: pack, origin: $0, types) }
        return mine
    }
}

extension NodeRegistry {
    /// Called by `PackEntry.register` inside a pack: runs the registration with the origin the
    /// host is loading from and keeps its error for the host to report.
    public func recordDynamicRegistration(_ body: (String) throws -> Void) {
        do {
            try body(loadingOrigin)
            lastDynamicError = nil
        } catch {
            lastDynamicError = String(describing: error)
        }
    }

    /// Used by the host's plugin loader: runs `call` (the pack's entry) with `origin` recorded,
    /// and returns the pack's ABI and its registration error, if any. Packs load serially.
    public func withLoadingOrigin(_ origin: String, _ call: () -> Int32) -> (abi: Int32, error: String?) {
        loadingOrigin = origin
        lastDynamicError = nil
        let abi = call()
        let err = lastDynamicError
        loadingOrigin = "built-in"
        lastDynamicError = nil
        return (abi, err)
    }
}
