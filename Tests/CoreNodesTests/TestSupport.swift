import Foundation
import NodeKit
@testable import CoreNodes

/// A model pool for tests: loads on first use, keeps everything.
final class TestModelPool: ModelPool, @unchecked Sendable {
    private var models: [String: any PortObject] = [:]
    private let lock = NSLock()

    func model<T: PortObject>(key: String, load: @escaping @Sendable () async throws -> T) async throws -> T {
        if let m = lock.withLock({ models[key] }) as? T { return m }
        let m = try await load()
        lock.withLock { models[key] = m }
        return m
    }
}

/// A NodeContext test double: fixed run info, a temporary base directory, optional cancellation.
struct TestContext: NodeContext {
    var nodeID = "test-node"
    var baseDirectory: URL
    var scratchDirectory: URL
    var runInfo: RunInfo
    var models: any ModelPool = TestModelPool()
    /// When set, checkCancellation throws on the n-th call (1-based).
    var cancelOnCheck: Int?
    let checks = Counter()

    final class Counter: @unchecked Sendable {
        private var n = 0
        private let lock = NSLock()
        func next() -> Int { lock.withLock { n += 1; return n } }
        var value: Int { lock.withLock { n } }
    }

    init(baseDirectory: URL, cancelOnCheck: Int? = nil) {
        self.baseDirectory = baseDirectory
        self.scratchDirectory = baseDirectory.appendingPathComponent(".scratch")
        self.cancelOnCheck = cancelOnCheck
        self.runInfo = RunInfo(workflowName: "test", workflowSource: "version: 1\nname: test\nnodes: {}\n",
                               params: ["seed": "42", "prompt": "a house, 家"],
                               nodeVersions: ["image.save": "1 (core@1.0.0)"], engineVersion: "0.1.0-test")
    }

    func progress(_ completed: Int, of total: Int, message: String?) {}
    func checkCancellation() throws {
        let n = checks.next()
        if let c = cancelOnCheck, n >= c { throw CancellationError() }
    }
    func log(_ level: LogLevel, _ message: String) {}
}

/// A fresh temporary directory, removed by the caller.
func makeTempDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("corenodes-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Inputs for `T` with the schema's defaults filled in, as the engine does.
func inputs<T: NodeType>(_ type: T.Type, _ given: [String: Value]) -> Inputs {
    var values = given
    for spec in T.schema.inputs where values[spec.name] == nil {
        if let d = spec.defaultValue { values[spec.name] = d }
    }
    return Inputs(values)
}

/// Evaluates a node with defaults filled in.
func run<T: NodeType>(_ type: T.Type, _ given: [String: Value], context: TestContext) async throws -> Outputs {
    try await T().evaluate(inputs(type, given), context)
}

extension Value {
    var raster: Raster? {
        switch self {
        case .image(let r), .mask(let r): r
        default: nil
        }
    }
    var textValue: String? { if case .text(let s) = self { s } else { nil } }
    var intValue: Int? { if case .int(let i) = self { i } else { nil } }
    var floatValue: Double? { if case .float(let d) = self { d } else { nil } }
}

func texts(_ items: [String]) -> Value { .list(elementType: .text, items.map { .text($0) }) }

/// The NodeError `body` throws (nil if it succeeds or throws something else).
func nodeError(_ body: () async throws -> Void) async -> NodeError? {
    do {
        try await body()
        return nil
    } catch let e as NodeError {
        return e
    } catch {
        return nil
    }
}
