import Foundation
import NodeKit

/// Loads node packs from shared libraries at run time.
///
/// A pack is a `.so` (`.dylib` on macOS) built against the same `libNodeKit` as this binary and
/// with the same Swift toolchain. It exports one C function, `llmga_pack_entry(hostABI, registry)`,
/// which registers its node types when `hostABI` equals the NodeKit ABI it was compiled with
/// and returns that ABI. A pack compiled against another ABI is refused with a message saying
/// so; nothing of it is registered. Packs are never unloaded (Swift metadata cannot be unloaded).
public enum PluginLoader {
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "node pack \(path): \(reason)" }
    }

    public struct Loaded: Sendable {
        public var path: String
        public var nodeTypes: [String]
    }

    /// The directories named by `--plugins` and by `LLMGA_PLUGIN_PATH` (colon-separated), in that order.
    public static func searchPath(explicit: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        explicit + (environment["LLMGA_PLUGIN_PATH"]?.split(separator: ":").map(String.init) ?? [])
    }

    /// Loads every shared library in the given directories (or the given files). Returns what
    /// was loaded and a list of errors; a bad pack does not stop the others.
    public static func load(from paths: [String], into registry: NodeRegistry) -> (loaded: [Loaded], errors: [LoadError]) {
        var loaded: [Loaded] = []
        var errors: [LoadError] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                errors.append(LoadError(path: p, reason: "no such file or directory"))
                continue
            }
            let files: [String]
            if isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []
                files = names.filter { $0.hasSuffix(".so") || $0.hasSuffix(".dylib") }
                    .filter { !$0.hasPrefix("libNodeKit.") }
                    .sorted().map { (p as NSString).appendingPathComponent($0) }
            } else {
                files = [p]
            }
            for f in files {
                do {
                    loaded.append(try loadOne(f, into: registry))
                } catch let e as LoadError {
                    errors.append(e)
                } catch {
                    errors.append(LoadError(path: f, reason: "\(error)"))
                }
            }
        }
        return (loaded, errors)
    }

    typealias Entry = @convention(c) (Int32, UnsafeMutableRawPointer) -> Int32

    static func loadOne(_ path: String, into registry: NodeRegistry) throws -> Loaded {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let handle = dlopen(absolute, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw LoadError(path: absolute, reason: "cannot be loaded: \(why)")
        }
        guard let sym = dlsym(handle, NodeKitABI.entrySymbol) else {
            throw LoadError(path: absolute, reason: "is not an llmga node pack (it exports no '\(NodeKitABI.entrySymbol)')")
        }
        let entry = unsafeBitCast(sym, to: Entry.self)
        let before = Set(registry.all.map(\.id))
        let host = NodeKitABI.version
        let (abi, err) = registry.withLoadingOrigin(absolute) {
            entry(host, Unmanaged.passUnretained(registry).toOpaque())
        }
        guard abi == host else {
            throw LoadError(path: absolute, reason: "was built against NodeKit ABI \(abi), but this llmga uses NodeKit ABI \(host); rebuild the pack against this version of NodeKit")
        }
        if let err {
            throw LoadError(path: absolute, reason: "failed to register: \(err)")
        }
        let added = registry.all.map(\.id).filter { !before.contains($0) }
        return Loaded(path: absolute, nodeTypes: added)
    }
}
