import ArgumentParser
import CoreNodes
import DiffusionNodes
import PrompterNodes
import Engine
import Foundation
import NodeKit
import Workflow

/// Exit codes, stable for scripts and job schedulers.
enum Exit {
    static let nodeFailed: Int32 = 1
    static let invalidWorkflow: Int32 = 2
    static let setupFailed: Int32 = 3
    static let cancelled: Int32 = 130
}

@main
enum Main {
    static func main() async {
        OpenBLASSetup.reexecIfNeeded()
        await LLMGA.main()
    }
}

struct LLMGA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llmga",
        abstract: "Evaluate YAML workflow graphs for image generation and editing.",
        discussion: """
        Exit codes: 0 success, 1 a node failed, 2 the workflow is invalid, 3 setup failed \
        (cache directory, plugins), 130 cancelled.
        """,
        version: EngineVersion.string,
        subcommands: [Run.self, Validate.self, Nodes.self, CacheCommand.self, Bench.self]
    )
}

/// Options shared by commands that need the node registry.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugins"), help: ArgumentHelp("A directory (or file) of node packs to load; repeatable. LLMGA_PLUGIN_PATH adds more (colon-separated).", valueName: "dir"))
    var directories: [String] = []

    func registry() throws -> NodeRegistry {
        let registry = NodeRegistry()
        try CoreNodes.register(into: registry)
        try DiffusionNodes.register(into: registry)
        try PrompterNodes.register(into: registry)
        let paths = PluginLoader.searchPath(explicit: directories)
        let (_, errors) = PluginLoader.load(from: paths, into: registry)
        if !errors.isEmpty {
            for e in errors { stderr("error: \(e)") }
            throw ExitCode(Exit.setupFailed)
        }
        return registry
    }
}

func stderr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Compiles a workflow, printing diagnostics; exits 2 on errors. A PNG written by `image.save`
/// stands for the workflow it records: its `llmga:workflow` text with its `llmga:params`, and
/// any `--set` on top.
func compileOrExit(_ file: String, _ registry: NodeRegistry, _ sets: [String], quietWarnings: Bool = false) throws -> CompiledWorkflow {
    do {
        let wf: CompiledWorkflow
        if let recorded = try RecordedWorkflow(png: file) {
            wf = try Compiler.compile(source: recorded.source, file: "\(file) (llmga:workflow)", registry: registry,
                                      overrides: try Overrides(recorded.sets + sets))
        } else {
            wf = try Compiler.load(path: file, registry: registry, overrides: try Overrides(sets))
        }
        if !quietWarnings { for w in wf.warnings { stderr(w.description) } }
        return wf
    } catch {
        for d in error.diagnostics { stderr(d.description) }
        let n = error.errors.count
        stderr("\(file): \(n) error\(n == 1 ? "" : "s"); nothing was run")
        throw ExitCode(Exit.invalidWorkflow)
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a workflow: only the nodes that feed an output run, and cached results are reused.")

    @Argument(help: "The workflow YAML file, or a PNG written by llmga (re-runs the workflow recorded in it).") var file: String
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a param (name=value) or a node input (node.input=value); repeatable.", valueName: "key=value"))
    var sets: [String] = []
    @Option(help: "Cache tiers: disk (memory + persistent directory), memory, or none.") var cache: CacheMode = .disk
    @Option(help: ArgumentHelp("The persistent cache directory (default $LLMGA_CACHE_DIR or ~/.cache/llmga).", valueName: "dir"))
    var cacheDir: String?
    @Option(help: "Progress events: console (a live display on a terminal), jsonl (JSON Lines on stdout), none.")
    var events: EventsMode = .console
    @Option(help: "How many nodes may run at once (heavy nodes always share one compute lane).") var jobs: Int = 4
    @Option(help: ArgumentHelp("Memory cache budget (e.g. 512M, 4G).", valueName: "size")) var memoryCache: String = "2G"
    @OptionGroup var plugins: PluginOptions

    func validate() throws {
        if parseBytes(memoryCache) == nil { throw ValidationError("--memory-cache: '\(memoryCache)' is not a size like 512M or 4G") }
    }

    enum EventsMode: String, ExpressibleByArgument, CaseIterable { case console, jsonl, none }

    func run() async throws {
        let registry = try plugins.registry()
        let wf = try compileOrExit(file, registry, sets)
        var options = EngineOptions()
        options.cache = cache
        if let cacheDir { options.cacheDirectory = URL(fileURLWithPath: cacheDir) }
        options.maxConcurrentNodes = max(1, jobs)
        options.memoryCacheBytes = Int(parseBytes(memoryCache) ?? 2 << 30)
        let engine: Engine
        do {
            engine = try Engine(registry: registry, options: options)
        } catch {
            stderr("error: cannot use the cache directory \(options.cacheDirectory.path): \(error)")
            throw ExitCode(Exit.setupFailed)
        }
        let sink: any EventSink = switch events {
        case .console: ConsoleSink(live: ConsoleSink.isTerminal(STDERR_FILENO))
        case .jsonl: JSONLinesSink()
        case .none: SilentSink()
        }

        // Ctrl-C (or SIGTERM) cancels cooperatively: running nodes stop at their next check,
        // outputs are written atomically, so nothing half-written is left. A second Ctrl-C exits at once.
        let task = Task { await engine.run(wf, events: sink) }
        let interrupts = InterruptHandler { task.cancel() }
        let result = await task.value
        interrupts.stop()

        for f in result.failures { stderr("error: \(f)") }
        switch result.summary.outcome {
        case .succeeded:
            if events == .none { print(result.summary.line) }
        case .failed: throw ExitCode(Exit.nodeFailed)
        case .cancelled:
            stderr("cancelled")
            throw ExitCode(Exit.cancelled)
        }
    }
}

struct SilentSink: EventSink {
    func emit(_ event: RunEvent) {}
}

extension CacheMode: ExpressibleByArgument {}

/// Turns SIGINT/SIGTERM into a cancellation callback; a second signal exits immediately.
final class InterruptHandler: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private var count = 0

    init(_ onInterrupt: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .main)
            s.setEventHandler { [unowned self] in
                self.count += 1
                if self.count == 1 {
                    stderr("\ncancelling (press Ctrl-C again to quit at once)")
                    onInterrupt()
                } else {
                    exit(Exit.cancelled)
                }
            }
            s.resume()
            sources.append(s)
        }
    }

    func stop() {
        for s in sources { s.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a workflow without running it: every error, with file:line:column, node and port.")

    @Argument(help: "The workflow YAML file.") var file: String
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a param or node input, as for run.", valueName: "key=value"))
    var sets: [String] = []
    @Flag(help: "Print diagnostics as a JSON array.") var json = false
    @OptionGroup var plugins: PluginOptions

    func run() async throws {
        let registry = try plugins.registry()
        var diagnostics: [Diagnostic] = []
        var wf: CompiledWorkflow?
        do {
            wf = try Compiler.load(path: file, registry: registry, overrides: try Overrides(sets))
            diagnostics = wf!.warnings
        } catch {
            diagnostics = error.diagnostics
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: diagnostics.map(\.fields), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for d in diagnostics { print(d.description) }
            if let wf {
                print("\(file): valid; \(wf.nodes.count) node\(wf.nodes.count == 1 ? "" : "s") to run (\(wf.sinks.count) output\(wf.sinks.count == 1 ? "" : "s")), \(wf.unused.count) unused")
            } else {
                let n = diagnostics.filter { $0.severity == .error }.count
                print("\(file): \(n) error\(n == 1 ? "" : "s")")
            }
        }
        if wf == nil { throw ExitCode(Exit.invalidWorkflow) }
    }
}

struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every node type with its inputs, outputs and docs.")

    @Flag(help: "Print as JSON.") var json = false
    @Argument(help: "Only node types whose id starts with this.") var prefix: String?
    @OptionGroup var plugins: PluginOptions

    func run() async throws {
        let registry = try plugins.registry()
        let nodes = registry.all.filter { prefix == nil || $0.id.hasPrefix(prefix!) }
        if json {
            let list: [[String: Any]] = nodes.map { n in
                [
                    "id": n.id, "version": n.version, "pack": n.pack.id, "pack_version": n.pack.version,
                    "origin": n.origin, "summary": n.schema.summary, "sink": n.schema.isSink,
                    "cost": n.schema.cost.rawValue, "purity": n.purity.rawValue,
                    "inputs": n.schema.inputs.map { i -> [String: Any] in
                        var d: [String: Any] = ["name": i.name, "type": i.type.description, "doc": i.doc,
                                                "required": i.isRequired, "role": i.role.rawValue]
                        if let v = i.defaultValue { d["default"] = jsonValue(v) }
                        if let r = i.range { d["min"] = r.lowerBound; d["max"] = r.upperBound }
                        if let c = i.choices { d["choices"] = c }
                        return d
                    },
                    "outputs": n.schema.outputs.map { ["name": $0.name, "type": $0.type.description, "doc": $0.doc] },
                ]
            }
            let data = try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for n in nodes {
            print("\(n.id)  v\(n.version)  [\(n.pack.id)@\(n.pack.version)\(n.origin == "built-in" ? "" : ", " + n.origin)]\(n.schema.isSink ? "  (output)" : "")")
            if !n.schema.summary.isEmpty { print("  \(n.schema.summary)") }
            for i in n.schema.inputs {
                var extra: [String] = []
                if let v = i.defaultValue { extra.append("default \(v)") } else if i.optional { extra.append("optional") } else { extra.append("required") }
                if let r = i.rangeText { extra.append(r) }
                if let c = i.choices { extra.append(c.joined(separator: "|")) }
                print("    in  \(i.name): \(i.type) (\(extra.joined(separator: ", ")))\(i.doc.isEmpty ? "" : " — \(i.doc)")")
            }
            for o in n.schema.outputs {
                print("    out \(o.name): \(o.type)\(o.doc.isEmpty ? "" : " — \(o.doc)")")
            }
        }
    }
}

func jsonValue(_ v: Value) -> Any {
    switch v {
    case .text(let s): s
    case .int(let i): i
    case .float(let d): d
    case .bool(let b): b
    case .list(_, let items): items.map(jsonValue)
    default: v.description
    }
}

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cache", abstract: "Inspect or prune the persistent cache.",
                                                    subcommands: [Stats.self, Prune.self])

    struct Location: ParsableArguments {
        @Option(help: ArgumentHelp("The cache directory (default $LLMGA_CACHE_DIR or ~/.cache/llmga).", valueName: "dir"))
        var cacheDir: String?
        func open() throws -> DiskCache {
            let dir = cacheDir.map { URL(fileURLWithPath: $0) } ?? EngineOptions.defaultCacheDirectory
            do { return try DiskCache(directory: dir) } catch {
                stderr("error: cannot open the cache directory \(dir.path): \(error)")
                throw ExitCode(Exit.setupFailed)
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entries and bytes in the cache.")
        @OptionGroup var location: Location
        func run() async throws {
            let cache = try location.open()
            let s = cache.stats()
            print("cache: \(cache.directory.path)")
            print("entries: \(s.entries)")
            print("size: \(formatBytes(s.bytes))")
            if let o = s.oldest, let n = s.newest {
                print("least recently used: \(ISO8601DateFormatter().string(from: o))")
                print("most recently used: \(ISO8601DateFormatter().string(from: n))")
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove least recently used entries.")
        @OptionGroup var location: Location
        @Option(help: "Keep at most this much (e.g. 500M, 10G).") var maxSize: String?
        @Option(help: "Remove entries unused for longer than this (e.g. 12h, 30d).") var olderThan: String?
        @Flag(help: "Remove every entry.") var all = false

        func validate() throws {
            if !all && maxSize == nil && olderThan == nil {
                throw ValidationError("say what to remove: --max-size, --older-than or --all")
            }
            if let m = maxSize, parseBytes(m) == nil { throw ValidationError("--max-size: '\(m)' is not a size like 500M or 10G") }
            if let o = olderThan, parseAge(o) == nil { throw ValidationError("--older-than: '\(o)' is not an age like 12h or 30d") }
        }

        func run() async throws {
            let cache = try location.open()
            let (n, bytes) = cache.prune(maxBytes: all ? 0 : maxSize.flatMap(parseBytes), olderThan: olderThan.flatMap(parseAge))
            print("removed \(n) entr\(n == 1 ? "y" : "ies"), \(formatBytes(bytes))")
        }
    }
}

func formatBytes(_ b: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[u])
}

func parseBytes(_ s: String) -> Int64? {
    let t = s.trimmingCharacters(in: .whitespaces).uppercased()
    let mult: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    var num = t.hasSuffix("IB") ? String(t.dropLast(2)) : (t.hasSuffix("B") ? String(t.dropLast()) : t)
    var m: Int64 = 1
    if let last = num.last, let f = mult[last] { m = f; num.removeLast() }
    guard let v = Double(num), v >= 0 else { return nil }
    return Int64(v * Double(m))
}

func parseAge(_ s: String) -> TimeInterval? {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800]
    guard let last = s.last, let u = units[last], let v = Double(s.dropLast()), v >= 0 else { return nil }
    return v * u
}
