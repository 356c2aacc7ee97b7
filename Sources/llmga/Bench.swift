import ArgumentParser
import Engine
import Foundation
import NodeKit
import Workflow

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks (not tests): measure and print medians.",
                                                    subcommands: [EngineBench.self])
}

/// Engine overhead: parse + validate + plan + run a generated graph of trivial nodes.
///
/// The graph is N integer-add nodes; node i adds node i-1 and a random earlier node, so every
/// node feeds the single sink at the end. The nodes do almost nothing, so the times measure the
/// engine: YAML parsing, validation, key hashing, scheduling, events and caching.
struct EngineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "engine", abstract: "Engine overhead on a generated graph of trivial nodes.")

    @Option(help: "Number of nodes in the generated graph.") var nodes: Int = 10_000
    @Option(help: "Repetitions; medians are reported.") var repeats: Int = 5
    @Option(help: "Concurrent nodes.") var jobs: Int = 4

    struct Add: NodeType {
        static let id = "bench.add"
        static let version = 1
        static let schema = NodeSchema(summary: "a + b", inputs: [InputSpec("a", .int), InputSpec("b", .int)],
                                       outputs: [OutputSpec("sum", .int)])
        func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
            Outputs(["sum": .int(try inputs.int("a") &+ inputs.int("b"))])
        }
    }

    struct Sink: NodeType {
        static let id = "bench.sink"
        static let version = 1
        static let schema = NodeSchema(summary: "consumes a value", inputs: [InputSpec("value", .int)], outputs: [], isSink: true)
        func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { Outputs() }
    }

    func makeYAML() -> String {
        var rng = SplitMix64(seed: 1)
        var s = "version: 1\nname: bench\nparams:\n  start: 1\nnodes:\n"
        s += "  n0:\n    type: bench.add\n    with: { a: \"${start}\", b: 2 }\n"
        for i in 1..<nodes {
            let j = Int(rng.next() % UInt64(i))
            s += "  n\(i):\n    type: bench.add\n    with: { a: $n\(i - 1).sum, b: $n\(j).sum }\n"
        }
        s += "  out:\n    type: bench.sink\n    with: { value: $n\(nodes - 1).sum }\n"
        return s
    }

    func run() async throws {
        let registry = NodeRegistry()
        try registry.register(pack: PackInfo(id: "bench", version: "1"), [Add.self, Sink.self])
        let yaml = makeYAML()
        var compileT: [Double] = [], coldT: [Double] = [], warmT: [Double] = [], diskT: [Double] = []
        for r in 0..<repeats {
            var t = Date()
            let wf = try Compiler.compile(source: yaml, file: "bench.yaml", registry: registry)
            compileT.append(Date().timeIntervalSince(t))

            var opts = EngineOptions()
            opts.cache = .memory
            opts.maxConcurrentNodes = jobs
            let engine = try Engine(registry: registry, options: opts)
            t = Date()
            let cold = await engine.run(wf, events: SilentSink())
            coldT.append(Date().timeIntervalSince(t))
            guard cold.summary.run == wf.nodes.count else { throw ValidationError("cold run ran \(cold.summary.run) of \(wf.nodes.count)") }
            t = Date()
            let warm = await engine.run(wf, events: SilentSink())
            warmT.append(Date().timeIntervalSince(t))
            guard warm.summary.run == 0 else { throw ValidationError("warm run ran \(warm.summary.run) nodes") }

            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llmga-bench-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            opts.cache = .disk
            opts.cacheDirectory = dir
            let diskEngine = try Engine(registry: registry, options: opts)
            t = Date()
            _ = await diskEngine.run(wf, events: SilentSink())
            diskT.append(Date().timeIntervalSince(t))
        }
        func med(_ a: [Double]) -> Double { a.sorted()[a.count / 2] }
        let n = Double(nodes + 1)
        print("engine overhead, \(nodes + 1) nodes, \(repeats) rounds, medians:")
        print(String(format: "  parse + validate + plan:     %7.3f s  (%6.1f µs/node)", med(compileT), med(compileT) / n * 1e6))
        print(String(format: "  run, cold (memory cache):    %7.3f s  (%6.1f µs/node)", med(coldT), med(coldT) / n * 1e6))
        print(String(format: "  run, all cached:             %7.3f s  (%6.1f µs/node)", med(warmT), med(warmT) / n * 1e6))
        print(String(format: "  run, cold, disk cache writes:%7.3f s  (%6.1f µs/node)", med(diskT), med(diskT) / n * 1e6))
        print(String(format: "  validate + plan + cold run:  %7.3f s", med(compileT) + med(coldT)))
        print("  peak RSS: \(formatBytes(peakRSS()))")
    }
}

/// Deterministic generator for benchmark graphs.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Peak resident set size of this process (VmHWM), in bytes.
func peakRSS() -> Int64 {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int64($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}
