import Engine
import Foundation
import NodeKit
import Workflow

// A small node pack for engine tests. These are real nodes with real behaviour (the engine
// tests need to observe what ran, what was cached and what was written), not mocks of the engine.

struct Const: NodeType {
    static let id = "t.const"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("value", .int, default: .int(0))], outputs: [OutputSpec("value", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        Outputs(["value": .int(try inputs.int("value"))])
    }
}

struct Add: NodeType {
    static let id = "t.add"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("a", .int), InputSpec("b", .int, default: .int(0)),
                                                         InputSpec("k", .int, default: .int(1), range: -1000...1000)],
                                   outputs: [OutputSpec("sum", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        Outputs(["sum": .int(try inputs.int("a") &* inputs.int("k") &+ inputs.int("b"))])
    }
}

struct Join: NodeType {
    static let id = "t.join"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("items", .list(.int)), InputSpec("sep", .text, default: .text(","))],
                                   outputs: [OutputSpec("text", .text)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let items = try inputs.list("items").map { v -> String in
            guard case .int(let i) = v else { throw NodeError("not an int", port: "items") }
            return String(i)
        }
        return Outputs(["text": .text(items.joined(separator: try inputs.text("sep")))])
    }
}

/// Writes text to a file atomically: the sink of the test graphs.
struct Write: NodeType {
    static let id = "t.write"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("text", .text), InputSpec("path", .text, role: .outputFile)],
                                   outputs: [OutputSpec("path", .text)], isSink: true)
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let url = context.resolvePath(try inputs.text("path"))
        try AtomicFile.write(to: url) { tmp in
            try Data(try inputs.text("text").utf8).write(to: tmp)
            try context.checkCancellation()
        }
        return Outputs(["path": .text(url.path)], writtenFiles: [url.path])
    }
}

/// Reads a text file (content-hashed into the cache key); an empty path reads as empty text, as an optional
/// file input (`llmga.load`'s `path` when a server is used instead).
struct Read: NodeType {
    static let id = "t.read"
    static let version = 1
    static let purity = Purity.readsFiles
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("path", .text, role: .inputFile)], outputs: [OutputSpec("text", .text)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let path = try inputs.text("path")
        if path.isEmpty { return Outputs(["text": .text("")]) }
        let url = context.resolvePath(path)
        guard let s = try? String(contentsOf: url, encoding: .utf8) else { throw NodeError("cannot read \(url.path)", port: "path") }
        return Outputs(["text": .text(s)])
    }
}

struct Length: NodeType {
    static let id = "t.length"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("text", .text)], outputs: [OutputSpec("n", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        Outputs(["n": .int(try inputs.text("text").count)])
    }
}

/// Waits, reporting progress and honouring cancellation; passes its value through.
struct Slow: NodeType {
    static let id = "t.slow"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("value", .int, default: .int(0)), InputSpec("ms", .int, default: .int(50))],
                                   outputs: [OutputSpec("value", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let steps = max(1, try inputs.int("ms") / 10)
        for s in 0..<steps {
            try context.checkCancellation()
            try await Task.sleep(nanoseconds: 10_000_000)
            context.progress(s + 1, of: steps)
        }
        return Outputs(["value": .int(try inputs.int("value"))])
    }
}

struct Fail: NodeType {
    static let id = "t.fail"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("x", .int, default: .int(0))], outputs: [OutputSpec("value", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        throw NodeError("x must not be \(try inputs.int("x"))", port: "x")
    }
}

/// Counts how many evaluations are in flight at once, to observe scheduling.
final class Gauge: @unchecked Sendable {
    private var now = 0, peak = 0
    private let lock = NSLock()
    func enter() { lock.lock(); now += 1; peak = max(peak, now); lock.unlock() }
    func leave() { lock.lock(); now -= 1; lock.unlock() }
    var max_: Int { lock.lock(); defer { lock.unlock() }; return peak }
    func reset() { lock.lock(); now = 0; peak = 0; lock.unlock() }
}
let heavyGauge = Gauge()
let lightGauge = Gauge()

struct HeavyWork: NodeType {
    static let id = "t.heavy"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("value", .int)], outputs: [OutputSpec("value", .int)], cost: .heavy)
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        heavyGauge.enter()
        defer { heavyGauge.leave() }
        try await Task.sleep(nanoseconds: 30_000_000)
        return Outputs(["value": .int(try inputs.int("value"))])
    }
}

struct LightWork: NodeType {
    static let id = "t.light"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("value", .int)], outputs: [OutputSpec("value", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        lightGauge.enter()
        defer { lightGauge.leave() }
        try await Task.sleep(nanoseconds: 30_000_000)
        return Outputs(["value": .int(try inputs.int("value"))])
    }
}

struct Dice: NodeType {
    static let id = "t.dice"
    static let version = 1
    static let purity = Purity.volatile
    static let schema = NodeSchema(summary: "", inputs: [], outputs: [OutputSpec("value", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        Outputs(["value": .int(Int.random(in: 0..<1_000_000_000))])
    }
}

final class Weights: PortObject {
    static let portTypeName = "t.weights"
    let scale: Int
    let estimatedBytes: Int
    init(scale: Int, bytes: Int) {
        self.scale = scale
        estimatedBytes = bytes
    }
}
let modelLoads = Gauge()

/// Loads a "model" through the pool (so loads are shared and budgeted).
struct LoadWeights: NodeType {
    static let id = "t.load-weights"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("scale", .int, default: .int(2))], outputs: [OutputSpec("weights", .object("t.weights"))])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let scale = try inputs.int("scale")
        let w = try await context.models.model(key: "weights-\(scale)") { () async throws -> Weights in
            modelLoads.enter()
            modelLoads.leave()
            return Weights(scale: scale, bytes: 1000)
        }
        return Outputs(["weights": .object(w)])
    }
}

struct Apply: NodeType {
    static let id = "t.apply"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("weights", .object("t.weights")), InputSpec("value", .int)], outputs: [OutputSpec("value", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        Outputs(["value": .int(try inputs.object("weights", as: Weights.self).scale * inputs.int("value"))])
    }
}

/// A node that breaks its own schema, to check the engine catches it.
struct Liar: NodeType {
    static let id = "t.liar"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [], outputs: [OutputSpec("value", .int)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { Outputs(["value": .text("no")]) }
}

func testRegistry() -> NodeRegistry {
    let r = NodeRegistry()
    try! r.register(pack: PackInfo(id: "t", version: "1"),
                    [Const.self, Add.self, Join.self, Write.self, Read.self, Length.self, Slow.self, Fail.self,
                     HeavyWork.self, LightWork.self, Dice.self, LoadWeights.self, Apply.self, Liar.self])
    return r
}

/// A fresh temporary directory, removed by the caller.
func tempDir() -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("llmga-test-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

func makeEngine(_ cache: CacheMode, dir: URL, keepAll: Bool = true, jobs: Int = 4) throws -> Engine {
    var o = EngineOptions()
    o.cache = cache
    o.cacheDirectory = dir.appendingPathComponent("cache")
    o.baseDirectory = dir
    o.keepAllOutputs = keepAll
    o.maxConcurrentNodes = jobs
    return try Engine(registry: testRegistry(), options: o)
}

func compile(_ yaml: String, _ sets: [String] = []) throws -> CompiledWorkflow {
    try Compiler.compile(source: yaml, file: "test.yaml", registry: testRegistry(), overrides: try Overrides(sets))
}
