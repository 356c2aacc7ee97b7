import Foundation
import NodeKit

/// What happens during a run, in order, for people (a live display) and machines (JSON Lines).
public enum RunEvent: Sendable {
    case runStarted(workflow: String, nodes: Int, toRun: Int)
    case nodeStarted(node: String, type: String)
    /// Served from a cache tier ("memory", "disk") or not needed because everything downstream was.
    case nodeCached(node: String, type: String, tier: String)
    case nodeProgress(node: String, completed: Int, total: Int, message: String?)
    case nodeFinished(node: String, type: String, seconds: Double)
    case nodeFailed(node: String, type: String, message: String, port: String?)
    /// Not run because a node it depends on failed.
    case nodeBlocked(node: String, type: String, failedUpstream: String)
    case log(node: String, level: LogLevel, message: String)
    case warning(String)
    case runFinished(RunSummary)
}

public struct RunSummary: Sendable {
    public enum Outcome: String, Sendable {
        case succeeded, failed, cancelled
    }
    public var outcome: Outcome
    public var nodes: Int
    public var run: Int
    public var cached: Int
    public var failed: Int
    public var blocked: Int
    public var seconds: Double
    public var writtenFiles: [String]

    /// `4 nodes: 2 run, 2 cached in 1.23 s`
    public var line: String {
        var s = "\(nodes) node\(nodes == 1 ? "" : "s"): \(run) run, \(cached) cached"
        if failed > 0 { s += ", \(failed) failed" }
        if blocked > 0 { s += ", \(blocked) not run" }
        s += String(format: " in %.2f s", seconds)
        if outcome == .cancelled { s += " (cancelled)" }
        return s
    }
}

/// Receives run events. Called from several tasks; implementations serialise their output.
public protocol EventSink: Sendable {
    func emit(_ event: RunEvent)
}

/// Sends every event to several sinks.
public struct FanOutSink: EventSink {
    let sinks: [any EventSink]
    public init(_ sinks: [any EventSink]) { self.sinks = sinks }
    public func emit(_ event: RunEvent) { for s in sinks { s.emit(event) } }
}

/// Collects events in memory (tests, servers).
public final class RecordingSink: EventSink, @unchecked Sendable {
    private var list: [RunEvent] = []
    private let lock = NSLock()
    public init() {}
    public func emit(_ event: RunEvent) {
        lock.lock()
        list.append(event)
        lock.unlock()
    }
    public var events: [RunEvent] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
}

/// One JSON object per line, for machines: `{"event":"node_finished","node":"canny",...,"t":1.234}`.
/// `t` is seconds since the sink was created.
public final class JSONLinesSink: EventSink, @unchecked Sendable {
    private let handle: FileHandle
    private let start = Date()
    private let lock = NSLock()

    public init(handle: FileHandle = .standardOutput) { self.handle = handle }

    public func emit(_ event: RunEvent) {
        var o: [String: Any] = ["t": (Date().timeIntervalSince(start) * 1000).rounded() / 1000]
        switch event {
        case .runStarted(let wf, let nodes, let toRun):
            o["event"] = "run_started"; o["workflow"] = wf; o["nodes"] = nodes; o["to_run"] = toRun
        case .nodeStarted(let n, let t):
            o["event"] = "node_started"; o["node"] = n; o["type"] = t
        case .nodeCached(let n, let t, let tier):
            o["event"] = "node_cached"; o["node"] = n; o["type"] = t; o["tier"] = tier
        case .nodeProgress(let n, let c, let total, let m):
            o["event"] = "node_progress"; o["node"] = n; o["completed"] = c; o["total"] = total
            if let m { o["message"] = m }
        case .nodeFinished(let n, let t, let s):
            o["event"] = "node_finished"; o["node"] = n; o["type"] = t; o["seconds"] = (s * 1e4).rounded() / 1e4
        case .nodeFailed(let n, let t, let m, let p):
            o["event"] = "node_failed"; o["node"] = n; o["type"] = t; o["message"] = m
            if let p { o["port"] = p }
        case .nodeBlocked(let n, let t, let u):
            o["event"] = "node_blocked"; o["node"] = n; o["type"] = t; o["failed_upstream"] = u
        case .log(let n, let level, let m):
            o["event"] = "log"; o["node"] = n; o["level"] = level.rawValue; o["message"] = m
        case .warning(let m):
            o["event"] = "warning"; o["message"] = m
        case .runFinished(let s):
            o["event"] = "run_finished"; o["outcome"] = s.outcome.rawValue; o["nodes"] = s.nodes; o["run"] = s.run
            o["cached"] = s.cached; o["failed"] = s.failed; o["blocked"] = s.blocked
            o["seconds"] = (s.seconds * 1e4).rounded() / 1e4; o["files"] = s.writtenFiles
        }
        guard var data = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        lock.lock()
        handle.write(data)
        lock.unlock()
    }
}

/// Human-readable output. On a terminal it keeps one live status line (current nodes, step
/// progress, cached count, elapsed time) under the log of finished nodes; elsewhere it prints
/// one line per event that matters.
public final class ConsoleSink: EventSink, @unchecked Sendable {
    private let handle: FileHandle
    private let live: Bool
    private let lock = NSLock()
    private let start = Date()
    private var running: [String: String] = [:]     // node -> status text
    private var order: [String] = []
    private var total = 0, done = 0, cached = 0
    private var lastDraw = Date.distantPast
    private var statusShown = false

    /// `live`: redraw a status line (use when `handle` is a terminal).
    public init(handle: FileHandle = .standardError, live: Bool) {
        self.handle = handle
        self.live = live
    }

    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    public func emit(_ event: RunEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .runStarted(let wf, let nodes, let toRun):
            total = nodes
            print("running \(wf): \(nodes) node\(nodes == 1 ? "" : "s"), \(toRun) to run")
        case .nodeStarted(let n, let t):
            running[n] = t
            order.append(n)
            if !live { print("  \(n) (\(t)) started") }
        case .nodeCached(_, _, _):
            cached += 1
            done += 1
        case .nodeProgress(let n, let c, let t, let m):
            running[n] = "\(c)/\(t)" + (m.map { " \($0)" } ?? "")
            if !live && (c == t || c == 1) { print("  \(n) \(c)/\(t)\(m.map { " \($0)" } ?? "")") }
        case .nodeFinished(let n, let t, let s):
            running[n] = nil
            order.removeAll { $0 == n }
            done += 1
            print(String(format: "  ✓ %@ (%@) %.2f s", n, t, s))
        case .nodeFailed(let n, let t, let m, let p):
            running[n] = nil
            order.removeAll { $0 == n }
            done += 1
            print("  ✗ \(n) (\(t))\(p.map { " port '\($0)'" } ?? ""): \(m)")
        case .nodeBlocked(let n, _, let u):
            done += 1
            print("  - \(n) not run: '\(u)' failed")
        case .log(let n, let level, let m):
            print("  [\(n)] \(level == .info ? "" : level.rawValue + ": ")\(m)")
        case .warning(let m):
            print("warning: \(m)")
        case .runFinished(let s):
            clearStatus()
            let cwd = FileManager.default.currentDirectoryPath + "/"
            for f in s.writtenFiles { write("wrote \(f.hasPrefix(cwd) ? String(f.dropFirst(cwd.count)) : f)\n") }
            write(s.line + "\n")
            return
        }
        drawStatus()
    }

    private func print(_ line: String) {
        clearStatus()
        write(line + "\n")
    }

    private func write(_ s: String) { handle.write(Data(s.utf8)) }

    private func clearStatus() {
        if live && statusShown {
            write("\r\u{1B}[2K")
            statusShown = false
        }
    }

    private func drawStatus() {
        guard live, !order.isEmpty else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.05 || !statusShown else { return }
        lastDraw = now
        let current = order.prefix(3).map { n in "\(n) \(running[n] ?? "")" }.joined(separator: " · ")
        let el = Int(now.timeIntervalSince(start))
        var line = "[\(done)/\(total)] \(current)"
        if cached > 0 { line += " · \(cached) cached" }
        line += String(format: " · %02d:%02d", el / 60, el % 60)
        write("\r\u{1B}[2K" + line)
        statusShown = true
    }
}
