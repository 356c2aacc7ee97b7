import Foundation

/// A node type. Packs declare one Swift type per node type and register it with a `NodeRegistry`.
///
/// ```swift
/// struct Invert: NodeType {
///     static let id = "mask.invert"
///     static let version = 1
///     static let schema = NodeSchema(summary: "1 - mask",
///         inputs: [InputSpec("mask", .mask)], outputs: [OutputSpec("mask", .mask)])
///     func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { ... }
/// }
/// ```
public protocol NodeType: Sendable {
    /// Namespaced id used in workflows: `pack.name` (e.g. `sd.text-to-image`).
    static var id: String { get }
    /// Bump when the outputs change for the same inputs: it is part of every cache key.
    static var version: Int { get }
    static var schema: NodeSchema { get }
    static var purity: Purity { get }
    init()
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs
}

extension NodeType {
    public static var purity: Purity { .pure }
}

/// An error a node reports. The engine adds the node id; `port` names the input at fault.
public struct NodeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var port: String?
    public init(_ message: String, port: String? = nil) {
        self.message = message
        self.port = port
    }
    public var description: String {
        port.map { "\($0): \(message)" } ?? message
    }
}

/// Runs library code for a node: cancellation and node errors pass through; any other error becomes
/// a `NodeError` (on `port` when given) carrying the library error's description, so the engine reports
/// it with the node's id and type.
public func libraryCall<T>(port: String? = nil, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let e as CancellationError {
        throw e
    } catch let e as NodeError {
        throw e
    } catch {
        throw NodeError("\(error)", port: port)
    }
}

/// The resolved input values of one evaluation, already checked against the schema
/// (types, ranges, choices) and with defaults filled in.
public struct Inputs: Sendable {
    public let values: [String: Value]

    public init(_ values: [String: Value]) { self.values = values }

    public subscript(name: String) -> Value? { values[name] }
    public func has(_ name: String) -> Bool { values[name] != nil }

    func require(_ name: String) throws -> Value {
        guard let v = values[name] else { throw NodeError("missing input", port: name) }
        return v
    }
    private func mismatch(_ name: String, _ v: Value, _ expected: String) -> NodeError {
        NodeError("expected \(expected), got \(v.portType)", port: name)
    }

    public func text(_ name: String) throws -> String {
        let v = try require(name)
        guard case .text(let s) = v else { throw mismatch(name, v, "text") }
        return s
    }
    public func int(_ name: String) throws -> Int {
        let v = try require(name)
        guard case .int(let i) = v else { throw mismatch(name, v, "int") }
        return i
    }
    public func float(_ name: String) throws -> Double {
        let v = try require(name)
        switch v {
        case .float(let d): return d
        case .int(let i): return Double(i)
        default: throw mismatch(name, v, "float")
        }
    }
    public func bool(_ name: String) throws -> Bool {
        let v = try require(name)
        guard case .bool(let b) = v else { throw mismatch(name, v, "bool") }
        return b
    }
    public func image(_ name: String) throws -> Raster {
        let v = try require(name)
        guard case .image(let r) = v else { throw mismatch(name, v, "image") }
        return r
    }
    public func mask(_ name: String) throws -> Raster {
        let v = try require(name)
        guard case .mask(let r) = v else { throw mismatch(name, v, "mask") }
        return r
    }
    public func list(_ name: String) throws -> [Value] {
        let v = try require(name)
        guard case .list(_, let items) = v else { throw mismatch(name, v, "list") }
        return items
    }
    public func object<T: PortObject>(_ name: String, as type: T.Type = T.self) throws -> T {
        let v = try require(name)
        guard case .object(let o) = v, let t = o as? T else { throw mismatch(name, v, T.portTypeName) }
        return t
    }
    /// The value of an optional input, or nil when the workflow left it out.
    public func optional<T>(_ name: String, _ get: (String) throws -> T) rethrows -> T? {
        values[name] == nil ? nil : try get(name)
    }
}

/// The outputs of one evaluation, by output name.
public struct Outputs: Sendable {
    public var values: [String: Value]
    /// Files a sink wrote. A cached sink whose files are gone or changed is re-run.
    public var writtenFiles: [String]

    public init(_ values: [String: Value] = [:], writtenFiles: [String] = []) {
        self.values = values
        self.writtenFiles = writtenFiles
    }
    public subscript(name: String) -> Value? {
        get { values[name] }
        set { values[name] = newValue }
    }
}

/// Facts about the run a node is part of, for sinks that record provenance (image metadata).
public struct RunInfo: Sendable {
    public var workflowName: String
    /// The workflow file's text as the user wrote it.
    public var workflowSource: String
    /// The resolved params, after `--set` overrides, rendered as YAML-style scalars.
    public var params: [String: String]
    /// Every node type in the plan with its version and pack: `id -> "version (pack@packVersion)"`.
    public var nodeVersions: [String: String]
    public var engineVersion: String

    public init(workflowName: String, workflowSource: String, params: [String: String], nodeVersions: [String: String], engineVersion: String) {
        self.workflowName = workflowName
        self.workflowSource = workflowSource
        self.params = params
        self.nodeVersions = nodeVersions
        self.engineVersion = engineVersion
    }
}

/// A shared pool of loaded models with a memory budget. Loading the same key twice (in one
/// run or across runs of a long-lived engine) returns the loaded instance; least recently used
/// models are dropped when the budget is exceeded.
public protocol ModelPool: Sendable {
    /// Returns the model stored under `key`, loading it with `load` if absent.
    /// `key` must identify the model's content (e.g. a file path plus its content hash).
    func model<T: PortObject>(key: String, load: @escaping @Sendable () async throws -> T) async throws -> T
}

@frozen public enum LogLevel: String, Sendable {
    case debug, info, warning
}

/// What the engine offers a node while it evaluates.
public protocol NodeContext: Sendable {
    /// The id of the node in the workflow.
    var nodeID: String { get }
    /// Reports progress of long work (`completed` of `total` steps).
    func progress(_ completed: Int, of total: Int, message: String?)
    /// Throws `CancellationError` if the run has been cancelled. Call it between steps.
    func checkCancellation() throws
    var models: any ModelPool { get }
    /// A private directory for temporary files, removed after the run.
    var scratchDirectory: URL { get }
    /// The directory relative paths in the workflow resolve against (the workflow file's folder
    /// for inputs; the current directory for outputs is the CLI's choice and is passed here too).
    var baseDirectory: URL { get }
    var runInfo: RunInfo { get }
    func log(_ level: LogLevel, _ message: String)
}

extension NodeContext {
    public func progress(_ completed: Int, of total: Int) { progress(completed, of: total, message: nil) }

    /// Resolves a path from the workflow against `baseDirectory` (absolute paths and `~` pass through).
    public func resolvePath(_ path: String) -> URL {
        WorkflowPath.resolve(path, against: baseDirectory)
    }
}
