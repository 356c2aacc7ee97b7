import Crypto
import Foundation
import NodeKit

/// A SHA-256 digest, shown as lowercase hex.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var hex: String { bytes.map { String(format: "%02x", $0) }.joined() }
    public var description: String { hex }

    public init?(hex: String) {
        guard hex.count == 64 else { return nil }
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            guard let b = UInt8(hex[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        bytes = out
    }

    public static func of(_ data: some DataProtocol) -> Digest { Digest(Array(SHA256.hash(data: data))) }
}

/// Content hashes of files, remembered by (device, inode, size, modification time) so a large
/// model file is read once, not on every run. The memo is kept in memory and, when a
/// directory is given, on disk next to the cache so later processes reuse it.
public final class FileHasher: @unchecked Sendable {
    private struct Stamp: Hashable {
        var dev: UInt64, ino: UInt64, size: Int64, mtimeNs: Int64
    }
    private var memo: [String: (Stamp, Digest)] = [:]
    private let lock = NSLock()
    private let directory: URL?

    public init(memoDirectory: URL?) {
        directory = memoDirectory
    }

    public struct HashError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The SHA-256 of the file's content. For a directory (a diffusers model folder), a digest
    /// over its files' relative paths and content hashes, recursively; hidden files are skipped.
    public func hash(path: String) throws -> Digest {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            return try hashDirectory(path)
        }
        let stamp = try Self.stamp(path)
        lock.lock()
        if let (s, d) = memo[path], s == stamp {
            lock.unlock()
            return d
        }
        lock.unlock()
        let memoFile = directory.map { $0.appendingPathComponent(Digest.of(Array(path.utf8)).hex) }
        if let memoFile, let text = try? String(contentsOf: memoFile, encoding: .utf8) {
            let parts = text.split(separator: " ")
            if parts.count == 5, UInt64(parts[0]) == stamp.dev, UInt64(parts[1]) == stamp.ino,
               Int64(parts[2]) == stamp.size, Int64(parts[3]) == stamp.mtimeNs, let d = Digest(hex: String(parts[4])) {
                remember(path, stamp, d)
                return d
            }
        }
        let d = try Self.hashContents(path)
        remember(path, stamp, d)
        if let memoFile {
            let text = "\(stamp.dev) \(stamp.ino) \(stamp.size) \(stamp.mtimeNs) \(d.hex)"
            try? AtomicFile.write(Data(text.utf8), to: memoFile, durable: false)
        }
        return d
    }

    private func remember(_ path: String, _ s: Stamp, _ d: Digest) {
        lock.lock()
        memo[path] = (s, d)
        lock.unlock()
    }

    private static func stamp(_ path: String) throws -> Stamp {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw HashError(description: "\(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw HashError(description: "\(path): not a regular file") }
        return Stamp(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: Int64(st.st_size),
                     mtimeNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    /// Streams the file through SHA-256 in 4 MiB blocks.
    static func hashContents(_ path: String) throws -> Digest {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw HashError(description: "\(path): cannot open for reading")
        }
        defer { try? h.close() }
        var hasher = SHA256()
        while true {
            let chunk = try h.read(upToCount: 4 << 20) ?? Data()
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return Digest(Array(hasher.finalize()))
    }

    private func hashDirectory(_ path: String) throws -> Digest {
        let root = URL(fileURLWithPath: path).resolvingSymlinksInPath()
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                     options: [.skipsHiddenFiles]) else {
            throw HashError(description: "\(path): cannot list the folder")
        }
        var files: [(String, String)] = []
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let u as URL in e {
            let real = u.resolvingSymlinksInPath()
            guard (try? real.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let rel = u.path.hasPrefix(prefix) ? String(u.path.dropFirst(prefix.count)) : u.lastPathComponent
            files.append((rel, real.path))
        }
        var bytes = Array("llmga-dir-v1\u{0}".utf8)
        for (rel, real) in files.sorted(by: { $0.0 < $1.0 }) {
            bytes += Array(rel.utf8) + [0]
            bytes += try hash(path: real).bytes
        }
        return Digest.of(bytes)
    }
}
