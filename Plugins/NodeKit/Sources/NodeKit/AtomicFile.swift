import Foundation

/// Writes files so that readers see either the old content or the whole new content, never a
/// part: the data goes to a uniquely named temporary file in the same directory, is flushed,
/// and is renamed over the destination.
public enum AtomicFile {
    /// Writes `data` atomically. `durable` also flushes it to stable storage before the rename
    /// (use it for outputs people keep; a cache whose entries carry checksums can skip it).
    public static func write(_ data: Data, to url: URL, durable: Bool = true) throws {
        try write(to: url) { tmp in
            if durable {
                guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
                    throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: tmp.path])
                }
                let h = try FileHandle(forWritingTo: tmp)
                defer { try? h.close() }
                try h.write(contentsOf: data)
                try h.synchronize()
            } else {
                try data.write(to: tmp)
            }
        }
    }

    /// Lets `body` write the file at a temporary path in the destination's directory, then
    /// renames it into place. If `body` throws (an encoder error, a cancellation), the temporary
    /// file is removed and the destination is untouched.
    public static func write(to url: URL, using body: (URL) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        if !FileManager.default.fileExists(atPath: dir.path) {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        do {
            try body(tmp)
            guard rename(tmp.path, url.path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path,
                                                               NSLocalizedDescriptionKey: String(cString: strerror(errno))])
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }
}
