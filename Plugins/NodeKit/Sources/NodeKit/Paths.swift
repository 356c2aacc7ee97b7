import Foundation

/// How a path written in a workflow becomes a file: `~` expands to the home folder, absolute paths
/// pass through, and relative paths resolve against `base`. The one resolver the engine (for cache
/// keys of files a node reads or writes) and the nodes (through `NodeContext.resolvePath`) share.
public enum WorkflowPath {
    public static func resolve(_ path: String, against base: URL) -> URL {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded) }
        return base.appendingPathComponent(expanded)
    }
}
