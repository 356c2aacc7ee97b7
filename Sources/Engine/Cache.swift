import Foundation
import NodeKit

/// A cached node result: its outputs and the files it wrote (with their content hashes, so a
/// cached sink whose file was deleted or edited is re-run).
public struct CachedResult: Sendable {
    public var outputs: [String: Value]
    public var writtenFiles: [(path: String, digest: Digest)]

    public var estimatedBytes: Int {
        outputs.values.reduce(256) { $0 + $1.estimatedBytes }
    }
}

/// In-memory results, least recently used first out, bounded by an estimate of their bytes.
public final class MemoryCache: @unchecked Sendable {
    private var entries: [Digest: (result: CachedResult, bytes: Int, tick: UInt64)] = [:]
    private var tick: UInt64 = 0
    private var total = 0
    private let lock = NSLock()
    public let budget: Int

    public init(budgetBytes: Int) { budget = budgetBytes }

    public func get(_ key: Digest) -> CachedResult? {
        lock.lock()
        defer { lock.unlock() }
        guard var e = entries[key] else { return nil }
        tick += 1
        e.tick = tick
        entries[key] = e
        return e.result
    }

    public func put(_ key: Digest, _ result: CachedResult) {
        let bytes = result.estimatedBytes
        guard bytes <= budget else { return }
        lock.lock()
        defer { lock.unlock() }
        tick += 1
        if let old = entries[key] { total -= old.bytes }
        entries[key] = (result, bytes, tick)
        total += bytes
        while total > budget, let victim = entries.min(by: { $0.value.tick < $1.value.tick }) {
            entries[victim.key] = nil
            total -= victim.value.bytes
        }
    }

    public func remove(_ key: Digest) {
        lock.lock()
        defer { lock.unlock() }
        if let old = entries.removeValue(forKey: key) { total -= old.bytes }
    }

    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }

    public var bytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return total
    }
}

/// A persistent, content-addressed cache of node results in a directory that several processes
/// (and machines, on shared storage) may use at once.
///
/// Layout: `DIR/entries/ab/abcdef….llmga` where the name is the cache key. An entry is
///
///     "LLMGA-CACHE\u{1}\n" | u64 header length | header JSON | outputs (ValueCodec) | SHA-256 of all before it
///
/// Entries are written atomically (temporary file + rename), so readers never see a partial
/// entry and two writers of the same key simply race to put identical bytes in place. A
/// damaged entry (bad checksum, truncated, undecodable) is reported, deleted and recomputed.
public final class DiskCache: @unchecked Sendable {
    public let directory: URL
    static let magic = Array("LLMGA-CACHE\u{1}\n".utf8)

    public init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: entriesDirectory, withIntermediateDirectories: true)
    }

    var entriesDirectory: URL { directory.appendingPathComponent("entries") }

    func url(for key: Digest) -> URL {
        let hex = key.hex
        return entriesDirectory.appendingPathComponent(String(hex.prefix(2))).appendingPathComponent(hex + ".llmga")
    }

    public enum Lookup {
        case miss
        case hit(CachedResult)
        case corrupt(String)
    }

    public func get(_ key: Digest) -> Lookup {
        let u = url(for: key)
        guard let data = FileManager.default.contents(atPath: u.path) else { return .miss }
        do {
            let r = try decode(data)
            // Touch for least-recently-used pruning.
            _ = utimes(u.path, nil)
            return .hit(r)
        } catch {
            try? FileManager.default.removeItem(at: u)
            return .corrupt("cache entry \(u.path) is damaged (\(error)); it was removed and the node will be recomputed")
        }
    }

    /// Stores a result. Results holding opaque objects (models) are not stored; returns whether it was.
    @discardableResult
    public func put(_ key: Digest, _ result: CachedResult, nodeType: String) throws -> Bool {
        guard result.outputs.values.allSatisfy(ValueCodec.isEncodable) else { return false }
        let header: [String: Any] = [
            "node_type": nodeType,
            "created": Date().timeIntervalSince1970.rounded(),
            "files": result.writtenFiles.map { ["path": $0.path, "sha256": $0.digest.hex] },
        ]
        let headerBytes = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var out = Self.magic
        ValueCodec.appendInt(Int64(headerBytes.count), &out)
        out += headerBytes
        out += try ValueCodec.encodeOutputs(result.outputs)
        out += Digest.of(out).bytes
        try AtomicFile.write(Data(out), to: url(for: key), durable: false)
        return true
    }

    struct Damaged: Error, CustomStringConvertible {
        var description: String
    }

    func decode(_ data: Data) throws -> CachedResult {
        let bytes = [UInt8](data)
        let m = Self.magic.count
        guard bytes.count >= m + 8 + 32, Array(bytes[0..<m]) == Self.magic else { throw Damaged(description: "not a cache entry") }
        let body = bytes[0..<(bytes.count - 32)]
        guard Digest.of(body).bytes == Array(bytes[(bytes.count - 32)...]) else { throw Damaged(description: "checksum mismatch") }
        return try body.withUnsafeBytes { raw in
            var r = ValueCodec.Reader(bytes: raw)
            _ = try r.take(m)
            let hlen = try r.count()
            let header = try r.take(hlen)
            guard let json = try JSONSerialization.jsonObject(with: Data(header)) as? [String: Any] else {
                throw Damaged(description: "bad header")
            }
            var files: [(String, Digest)] = []
            for f in json["files"] as? [[String: String]] ?? [] {
                guard let p = f["path"], let h = f["sha256"], let d = Digest(hex: h) else { throw Damaged(description: "bad file record") }
                files.append((p, d))
            }
            let rest = UnsafeRawBufferPointer(rebasing: raw[r.offset...])
            let outputs = try ValueCodec.decodeOutputs(rest)
            return CachedResult(outputs: outputs, writtenFiles: files)
        }
    }

    public struct Stats: Sendable {
        public var entries: Int
        public var bytes: Int64
        public var oldest: Date?
        public var newest: Date?
    }

    private func allEntries() -> [(url: URL, size: Int64, used: Date)] {
        let keys: [URLResourceKey] = [.fileSizeKey, .contentModificationDateKey, .isRegularFileKey]
        guard let e = FileManager.default.enumerator(at: entriesDirectory, includingPropertiesForKeys: keys) else { return [] }
        var out: [(URL, Int64, Date)] = []
        for case let u as URL in e where u.pathExtension == "llmga" {
            guard let v = try? u.resourceValues(forKeys: Set(keys)), v.isRegularFile == true else { continue }
            out.append((u, Int64(v.fileSize ?? 0), v.contentModificationDate ?? .distantPast))
        }
        return out
    }

    public func stats() -> Stats {
        let all = allEntries()
        return Stats(entries: all.count, bytes: all.reduce(0) { $0 + $1.size },
                     oldest: all.map(\.used).min(), newest: all.map(\.used).max())
    }

    /// Removes least recently used entries until at most `maxBytes` remain, and entries unused
    /// for longer than `olderThan`. Returns (entries removed, bytes freed).
    @discardableResult
    public func prune(maxBytes: Int64?, olderThan: TimeInterval? = nil) -> (Int, Int64) {
        var all = allEntries().sorted { $0.used < $1.used }
        var total = all.reduce(0) { $0 + $1.size }
        var removed = 0
        var freed: Int64 = 0
        let cutoff = olderThan.map { Date().addingTimeInterval(-$0) }
        while let first = all.first,
              (maxBytes.map { total > $0 } ?? false) || (cutoff.map { first.used < $0 } ?? false) {
            all.removeFirst()
            if (try? FileManager.default.removeItem(at: first.url)) != nil {
                removed += 1
                freed += first.size
            }
            total -= first.size
        }
        // Temporary files left by a process that was killed mid-write.
        if let e = FileManager.default.enumerator(at: entriesDirectory, includingPropertiesForKeys: [.contentModificationDateKey]) {
            for case let u as URL in e where u.lastPathComponent.hasSuffix(".tmp") {
                if let d = try? u.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate,
                   d < Date().addingTimeInterval(-3600) {
                    try? FileManager.default.removeItem(at: u)
                }
            }
        }
        return (removed, freed)
    }
}
