import Foundation
import NodeKit
import Workflow

public enum CacheMode: String, Sendable, CaseIterable {
    /// No caching: every needed node runs.
    case none
    /// Results are kept in memory for the life of the engine (useful in one long-lived process).
    case memory
    /// Memory, plus a persistent content-addressed directory shared across runs and processes.
    case disk
}

public struct EngineOptions: Sendable {
    public var cache: CacheMode = .disk
    public var cacheDirectory: URL = EngineOptions.defaultCacheDirectory
    public var memoryCacheBytes: Int = 2 << 30
    public var modelPoolBytes: Int = 12 << 30
    /// How many nodes may evaluate at once. Heavy nodes additionally share one compute lane.
    public var maxConcurrentNodes: Int = 4
    /// What relative paths in node inputs resolve against.
    public var baseDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    /// Keep every node's outputs in the run result (tests, debugging). Otherwise only sinks' outputs are kept
    /// and intermediates are released as soon as their consumers have run.
    public var keepAllOutputs = false

    public init() {}

    /// `$LLMGA_CACHE_DIR`, else `$XDG_CACHE_HOME/llmga`, else `~/.cache/llmga`.
    public static var defaultCacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let d = env["LLMGA_CACHE_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("llmga") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/llmga")
    }
}

/// A node that failed: which node, which port (if the node said), and why.
public struct NodeFailure: Error, Sendable, CustomStringConvertible {
    public var node: String
    public var type: String
    public var port: String?
    public var message: String
    public var location: SourceLocation
    public var description: String {
        "\(location): node '\(node)' (\(type))\(port.map { " port '\($0)'" } ?? ""): \(message)"
    }
}

public struct RunResult: Sendable {
    public var summary: RunSummary
    /// Outputs by node id: sinks always; every node with `keepAllOutputs`.
    public var outputs: [String: [String: Value]]
    public var failures: [NodeFailure]
    /// Ids of the nodes that were evaluated (not served from a cache), in completion order.
    public var executed: [String]
}

/// Evaluates compiled workflows with caching. One engine can run many workflows (one after
/// another or concurrently); its memory cache, model pool and file-hash memo are shared.
public final class Engine: Sendable {
    public let registry: NodeRegistry
    public let options: EngineOptions
    public let memory: MemoryCache?
    public let disk: DiskCache?
    public let models: SharedModelPool
    public let files: FileHasher
    let lane = AsyncSemaphore(permits: 1)

    public init(registry: NodeRegistry, options: EngineOptions = EngineOptions()) throws {
        self.registry = registry
        self.options = options
        memory = options.cache == .none ? nil : MemoryCache(budgetBytes: options.memoryCacheBytes)
        disk = options.cache == .disk ? try DiskCache(directory: options.cacheDirectory) : nil
        models = SharedModelPool(budgetBytes: options.modelPoolBytes)
        files = FileHasher(memoDirectory: options.cache == .disk ? options.cacheDirectory.appendingPathComponent("file-hashes") : nil)
    }

    // MARK: Keys

    private enum KeyState {
        case key(Digest)
        /// Computed at run time from input values (an upstream has no static key, or a file path comes from a link).
        case deferred
        /// Volatile: never cached.
        case uncacheable
    }

    private func keyPrefix(_ n: CompiledNode) -> [UInt8] {
        var b: [UInt8] = Array("llmga-key-v1\u{0}".utf8)
        ValueCodec.appendString(n.node.id, &b)
        ValueCodec.appendInt(Int64(n.node.version), &b)
        ValueCodec.appendString(n.node.pack.id, &b)
        ValueCodec.appendString(n.node.pack.version, &b)
        return b
    }

    /// What a path input adds to the key beyond its literal text: for `.inputFile`, the file's
    /// content hash (nil when unreadable: the node then runs and reports it); for `.outputFile`,
    /// the resolved absolute path, so the same relative path run from another directory is a
    /// different result. `.some(nil)` means nothing to add.
    /// An empty path names no file (an optional file input left out) and adds nothing.
    private func fileComponent(_ spec: InputSpec?, _ v: Value) -> [UInt8]?? {
        guard let spec, spec.role != .value, case .text(let p) = v, !p.isEmpty else { return .some(nil) }
        let url = resolve(p)
        switch spec.role {
        case .inputFile:
            guard let d = try? files.hash(path: url.path) else { return nil }
            return .some(Array("F".utf8) + d.bytes)
        case .outputFile:
            var b = Array("O".utf8)
            ValueCodec.appendString(url.standardizedFileURL.path, &b)
            return .some(b)
        case .value:
            return .some(nil)
        }
    }

    private func resolve(_ path: String) -> URL {
        WorkflowPath.resolve(path, against: options.baseDirectory)
    }

    private func staticKeys(_ wf: CompiledWorkflow) -> [KeyState] {
        var keys: [KeyState] = []
        keys.reserveCapacity(wf.nodes.count)
        for n in wf.nodes {
            if n.node.purity == .volatile {
                keys.append(.uncacheable)
                continue
            }
            var b = keyPrefix(n)
            var deferred = false
            func add(_ binding: Binding, _ spec: InputSpec?) -> Bool {
                switch binding {
                case .value(let v):
                    guard (try? ValueCodec.encode(v, into: &b)) != nil else { return false }
                    guard let f = fileComponent(spec, v) else { return false }
                    if let f { b += f }
                    return true
                case .link(let u, let output):
                    guard case .key(let k) = keys[u], (spec?.role ?? .value) == .value else { return false }  // paths over links: keyed at run time
                    b += Array("L".utf8) + k.bytes
                    ValueCodec.appendString(output, &b)
                    return true
                case .list(let t, let items):
                    b += Array("A".utf8)
                    ValueCodec.appendString(t.description, &b)
                    ValueCodec.appendInt(Int64(items.count), &b)
                    return items.allSatisfy { add($0, spec) }
                }
            }
            for name in n.inputs.keys.sorted() {
                ValueCodec.appendString(name, &b)
                if !add(n.inputs[name]!, n.node.schema.input(name)) {
                    deferred = true
                    break
                }
            }
            keys.append(deferred ? .deferred : .key(Digest.of(b)))
        }
        return keys
    }

    /// A key from the actual input values, for nodes whose static key could not be known.
    private func runtimeKey(_ n: CompiledNode, _ inputs: [String: Value], _ keys: [KeyState]) -> Digest? {
        var b = keyPrefix(n)
        b += Array("values".utf8)
        for name in inputs.keys.sorted() {
            ValueCodec.appendString(name, &b)
            let v = inputs[name]!
            if ValueCodec.isEncodable(v) {
                guard (try? ValueCodec.encode(v, into: &b)) != nil else { return nil }
                guard let f = fileComponent(n.node.schema.input(name), v) else { return nil }
                if let f { b += f }
            } else if case .link(let u, let out)? = n.inputs[name], case .key(let k) = keys[u] {
                // An opaque object (a model) from a node with a static key.
                b += Array("L".utf8) + k.bytes
                ValueCodec.appendString(out, &b)
            } else {
                return nil
            }
        }
        return Digest.of(b)
    }

    // MARK: Cache access

    private func lookup(_ key: Digest, _ n: CompiledNode, events: any EventSink) -> (CachedResult, String)? {
        var found: (CachedResult, String)?
        if let r = memory?.get(key) {
            found = (r, "memory")
        } else if let disk {
            switch disk.get(key) {
            case .hit(let r):
                memory?.put(key, r)
                found = (r, "disk")
            case .corrupt(let msg):
                events.emit(.warning("node '\(n.id)': \(msg)"))
            case .miss: break
            }
        }
        guard let (r, tier) = found else { return nil }
        // A sink's files must still be there, unchanged.
        for f in r.writtenFiles {
            guard let d = try? files.hash(path: f.path), d == f.digest else {
                memory?.remove(key)
                return nil
            }
        }
        return (r, tier)
    }

    private func store(_ key: Digest, _ r: CachedResult, _ n: CompiledNode, events: any EventSink) {
        memory?.put(key, r)
        guard let disk else { return }
        do {
            try disk.put(key, r, nodeType: n.node.id)
        } catch {
            events.emit(.warning("node '\(n.id)': could not write its cache entry: \(error)"))
        }
    }

    // MARK: Running

    private enum Need { case none, result, value }
    private enum Plan { case skip, cached(CachedResult, tier: String), run }

    /// Runs a compiled workflow: serves what it can from the caches, runs the rest with
    /// independent branches in parallel, and reports events. Never throws: failures and
    /// cancellation are in the result's summary.
    public func run(_ wf: CompiledWorkflow, events: any EventSink) async -> RunResult {
        let start = Date()
        let nodes = wf.nodes
        let keys = staticKeys(wf)
        let count = nodes.count

        var consumersOf = [[Int]](repeating: [], count: count)
        var upstreamOf = [[Int]](repeating: [], count: count)
        for (i, n) in nodes.enumerated() {
            var ups = Set<Int>()
            func walk(_ b: Binding) {
                switch b {
                case .link(let u, _): ups.insert(u)
                case .list(_, let items): items.forEach(walk)
                case .value: break
                }
            }
            n.inputs.values.forEach(walk)
            upstreamOf[i] = ups.sorted()
            for u in ups { consumersOf[u].append(i) }
        }

        // Demand: from the sinks backwards, serve from cache where possible.
        var need = [Need](repeating: .none, count: count)
        var plan = [Plan](repeating: .skip, count: count)
        for s in wf.sinks { need[s] = .result }
        for i in stride(from: count - 1, through: 0, by: -1) where need[i] != .none {
            if case .key(let k) = keys[i], let (r, tier) = lookup(k, nodes[i], events: events) {
                plan[i] = .cached(r, tier: tier)
            } else {
                plan[i] = .run
                for u in upstreamOf[i] { need[u] = .value }
            }
        }
        let toRun = plan.filter { if case .run = $0 { true } else { false } }.count
        events.emit(.runStarted(workflow: wf.name, nodes: count, toRun: toRun))

        var results = [[String: Value]?](repeating: nil, count: count)
        var cachedCount = 0
        for i in 0..<count {
            switch plan[i] {
            case .cached(let r, let tier):
                results[i] = r.outputs
                cachedCount += 1
                events.emit(.nodeCached(node: nodes[i].id, type: nodes[i].node.id, tier: tier))
            case .skip:
                cachedCount += 1
                events.emit(.nodeCached(node: nodes[i].id, type: nodes[i].node.id, tier: "not needed"))
            case .run: break
            }
        }

        let runInfo = RunInfo(workflowName: wf.name, workflowSource: wf.source,
                              params: Dictionary(wf.params.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                              nodeVersions: Dictionary(nodes.map { ($0.node.id, "\($0.node.version) (\($0.node.pack.id)@\($0.node.pack.version))") },
                                                       uniquingKeysWith: { a, _ in a }),
                              engineVersion: EngineVersion.string)
        let scratchRoot = FileManager.default.temporaryDirectory.appendingPathComponent("llmga-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratchRoot) }

        var waiting = [Int](repeating: 0, count: count)
        var ready: [Int] = []
        for i in 0..<count {
            guard case .run = plan[i] else { continue }
            waiting[i] = upstreamOf[i].filter { if case .run = plan[$0] { true } else { false } }.count
            if waiting[i] == 0 { ready.append(i) }
        }
        var remainingConsumers = consumersOf.map(\.count)
        var failures: [NodeFailure] = []
        var executed: [String] = []
        var blocked = Set<Int>()
        var cancelled = false
        var runCount = 0
        var writtenNow: [String] = []

        await withTaskGroup(of: (Int, NodeOutcome).self) { group in
            var inFlight = 0
            func launch() {
                while inFlight < max(1, options.maxConcurrentNodes), !ready.isEmpty, !Task.isCancelled {
                    let i = ready.removeFirst()
                    let n = nodes[i]
                    switch gatherInputs(n, results) {
                    case .failure(let f):
                        // Resolved at launch, reported like any node failure.
                        group.addTask { (i, .failed(f)) }
                    case .success(let inputs):
                        let keyState = keys[i]
                        let ctx = RunContext(nodeID: n.id, events: events, models: models,
                                             scratchRoot: scratchRoot, baseDirectory: options.baseDirectory, runInfo: runInfo)
                        group.addTask { (i, await self.evaluate(n, inputs, keyState, keys, ctx, events)) }
                    }
                    inFlight += 1
                }
            }
            launch()
            while let (i, outcome) = await group.next() {
                inFlight -= 1
                let n = nodes[i]
                switch outcome {
                case .ran(let outputs, let files):
                    results[i] = outputs
                    writtenNow += files
                    runCount += 1
                    executed.append(n.id)
                case .cached(let outputs):
                    results[i] = outputs
                    cachedCount += 1
                case .failed(let f):
                    failures.append(f)
                    events.emit(.nodeFailed(node: f.node, type: f.type, message: f.message, port: f.port))
                    // Everything downstream cannot run; independent branches go on.
                    var stack = consumersOf[i]
                    while let c = stack.popLast() {
                        if blocked.insert(c).inserted {
                            events.emit(.nodeBlocked(node: nodes[c].id, type: nodes[c].node.id, failedUpstream: n.id))
                            stack += consumersOf[c]
                        }
                    }
                case .cancelled:
                    cancelled = true
                }
                if results[i] != nil {
                    for c in consumersOf[i] where !blocked.contains(c) {
                        waiting[c] -= 1
                        if waiting[c] == 0 { ready.append(c) }
                    }
                    // Release intermediates whose consumers have all run.
                    if !options.keepAllOutputs {
                        for u in upstreamOf[i] {
                            remainingConsumers[u] -= 1
                            if remainingConsumers[u] == 0 && !wf.sinks.contains(u) { results[u] = nil }
                        }
                    }
                }
                if Task.isCancelled { cancelled = true }
                if !cancelled { launch() }
            }
        }
        if Task.isCancelled { cancelled = true }

        var outputs: [String: [String: Value]] = [:]
        for i in 0..<count {
            if let r = results[i], options.keepAllOutputs || wf.sinks.contains(i) { outputs[nodes[i].id] = r }
        }
        var written: [String] = []
        for s in wf.sinks {
            if case .cached(let r, _) = plan[s] { written += r.writtenFiles.map(\.path) }
        }
        written += writtenNow
        let summary = RunSummary(outcome: cancelled ? .cancelled : (failures.isEmpty ? .succeeded : .failed),
                                 nodes: count, run: runCount, cached: cachedCount, failed: failures.count,
                                 blocked: blocked.count, seconds: Date().timeIntervalSince(start), writtenFiles: written)
        events.emit(.runFinished(summary))
        return RunResult(summary: summary, outputs: outputs, failures: failures, executed: executed)
    }

    private enum NodeOutcome: Sendable {
        case ran([String: Value], writtenFiles: [String])
        case cached([String: Value])
        case failed(NodeFailure)
        case cancelled
    }

    private func failure(_ n: CompiledNode, _ message: String, port: String? = nil) -> NodeFailure {
        NodeFailure(node: n.id, type: n.node.id, port: port, message: message, location: n.location)
    }

    /// Builds the node's inputs from literals and upstream results, checking values that arrive
    /// over links against the input's range and choices.
    private func gatherInputs(_ n: CompiledNode, _ results: [[String: Value]?]) -> Result<Inputs, NodeFailure> {
        var values: [String: Value] = [:]
        func resolve(_ b: Binding) -> Value? {
            switch b {
            case .value(let v): return v
            case .link(let u, let out): return results[u]?[out]
            case .list(let t, let items):
                var out: [Value] = []
                for item in items {
                    guard let v = resolve(item) else { return nil }
                    out.append(v)
                }
                return .list(elementType: t, out)
            }
        }
        for (name, b) in n.inputs {
            guard let spec = n.node.schema.input(name) else { continue }
            guard let raw = resolve(b), let v = raw.coerced(to: spec.type) else {
                return .failure(failure(n, "no value of type \(spec.type) arrived", port: name))
            }
            if let violation = spec.violation(of: v) { return .failure(failure(n, violation.message, port: name)) }
            values[name] = v
        }
        return .success(Inputs(values))
    }

    private func evaluate(_ n: CompiledNode, _ inputs: Inputs, _ keyState: KeyState, _ keys: [KeyState],
                          _ ctx: RunContext, _ events: any EventSink) async -> NodeOutcome {
        var key: Digest?
        switch keyState {
        case .key(let k): key = k
        case .deferred:
            key = runtimeKey(n, inputs.values, keys)
            if let k = key, let (r, tier) = lookup(k, n, events: events) {
                events.emit(.nodeCached(node: n.id, type: n.node.id, tier: tier))
                return .cached(r.outputs)
            }
        case .uncacheable: key = nil
        }
        if Task.isCancelled { return .cancelled }
        let heavy = n.node.schema.cost == .heavy
        if heavy {
            do { try await lane.acquire() } catch { return .cancelled }
        }
        events.emit(.nodeStarted(node: n.id, type: n.node.id))
        let t0 = Date()
        let produced: Outputs
        do {
            produced = try await n.node.type.init().evaluate(inputs, ctx)
            if heavy { await lane.release() }
        } catch is CancellationError {
            if heavy { await lane.release() }
            return .cancelled
        } catch let e as NodeError {
            if heavy { await lane.release() }
            return .failed(failure(n, e.message, port: e.port))
        } catch {
            if heavy { await lane.release() }
            return .failed(failure(n, String(describing: error)))
        }
        // The node must deliver every declared output with its declared type.
        var outputs: [String: Value] = [:]
        for spec in n.node.schema.outputs {
            guard let v = produced.values[spec.name] else {
                return .failed(failure(n, "the node did not produce its output '\(spec.name)' (a bug in pack \(n.node.pack.id))"))
            }
            guard let c = v.coerced(to: spec.type) else {
                return .failed(failure(n, "output '\(spec.name)' should be \(spec.type) but is \(v.portType) (a bug in pack \(n.node.pack.id))"))
            }
            outputs[spec.name] = c
        }
        var files: [(path: String, digest: Digest)] = []
        for p in produced.writtenFiles {
            if let d = try? self.files.hash(path: p) { files.append((p, d)) }
        }
        if let key, n.node.purity != .volatile {
            store(key, CachedResult(outputs: outputs, writtenFiles: files), n, events: events)
        }
        events.emit(.nodeFinished(node: n.id, type: n.node.id, seconds: Date().timeIntervalSince(t0)))
        return .ran(outputs, writtenFiles: produced.writtenFiles)
    }
}

/// The `NodeContext` the engine hands to a node.
struct RunContext: NodeContext {
    let nodeID: String
    let events: any EventSink
    let models: any ModelPool
    let scratchRoot: URL
    let baseDirectory: URL
    let runInfo: RunInfo

    func progress(_ completed: Int, of total: Int, message: String?) {
        events.emit(.nodeProgress(node: nodeID, completed: completed, total: total, message: message))
    }

    func checkCancellation() throws { try Task.checkCancellation() }

    var scratchDirectory: URL {
        let u = scratchRoot.appendingPathComponent(nodeID)
        try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    func log(_ level: LogLevel, _ message: String) {
        events.emit(.log(node: nodeID, level: level, message: message))
    }
}

/// A counting semaphore for async code; waiting is cancellable.
actor AsyncSemaphore {
    private var permits: Int
    private var waiters: [(id: UUID, cont: CheckedContinuation<Void, Error>)] = []

    init(permits: Int) { self.permits = permits }

    func acquire() async throws {
        if permits > 0 {
            permits -= 1
            return
        }
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                if Task.isCancelled {
                    c.resume(throwing: CancellationError())
                } else {
                    waiters.append((id, c))
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: UUID) {
        if let i = waiters.firstIndex(where: { $0.id == id }) {
            waiters.remove(at: i).cont.resume(throwing: CancellationError())
        }
    }

    func release() {
        if waiters.isEmpty {
            permits += 1
        } else {
            waiters.removeFirst().cont.resume()
        }
    }
}
