import Foundation
import NodeKit
import Testing
import Workflow
@testable import Engine

/// A seeded generator so failures reproduce.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random DAG of const/add/join nodes with several sinks; `literals` perturbs some constants.
func randomWorkflow(seed: UInt64, size: Int, perturb: Int) -> String {
    var rng = SeededRNG(state: seed)
    var y = "version: 1\nnodes:\n"
    var ints: [String] = []   // "$node.port" of int outputs
    for i in 0..<size {
        let roll = Int.random(in: 0..<10, using: &rng)
        if ints.count < 2 || roll < 3 {
            var v = Int.random(in: -50...50, using: &rng)
            if i == perturb { v += 1 }
            y += "  n\(i): { type: t.const, with: { value: \(v) } }\n"
            ints.append("$n\(i).value")
        } else if roll < 8 {
            let a = ints.randomElement(using: &rng)!, b = ints.randomElement(using: &rng)!
            var k = Int.random(in: -3...3, using: &rng)
            if i == perturb { k += 1 }
            y += "  n\(i): { type: t.add, with: { a: \(a), b: \(b), k: \(k) } }\n"
            ints.append("$n\(i).sum")
        } else {
            let items = (0..<Int.random(in: 1...4, using: &rng)).map { _ in ints.randomElement(using: &rng)! }
            y += "  n\(i): { type: t.join, with: { items: [\(items.joined(separator: ", "))] } }\n"
            y += "  w\(i): { type: t.write, with: { text: $n\(i).text, path: \"out/w\(i).txt\" } }\n"
        }
    }
    let last = ints.suffix(3)
    y += "  final: { type: t.join, with: { items: [\(last.joined(separator: ", "))] } }\n"
    y += "  wfinal: { type: t.write, with: { text: $final.text, path: out/final.txt } }\n"
    return y
}

func outputsText(_ r: RunResult) -> [String: String] {
    var d: [String: String] = [:]
    for (node, outs) in r.outputs {
        for (port, v) in outs where !(node.hasPrefix("w")) { d["\(node).\(port)"] = "\(v)" }
    }
    return d
}

@Suite(.serialized) struct PropertyTests {
    /// For random DAGs: outputs with the cache on equal outputs with the cache off, after a
    /// change to one literal too; and a repeated run executes nothing.
    @Test(arguments: 0..<12)
    func cacheOnEqualsCacheOff(seed: Int) async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let size = 20 + seed * 3
        let cached = try makeEngine(.disk, dir: dir.appendingPathComponent("c"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("c"), withIntermediateDirectories: true)
        for (round, perturb) in [-1, seed % size, (seed * 7) % size].enumerated() {
            let yaml = randomWorkflow(seed: UInt64(seed), size: size, perturb: perturb)
            let wf = try compile(yaml)
            let plainDir = dir.appendingPathComponent("p\(round)")
            try FileManager.default.createDirectory(at: plainDir, withIntermediateDirectories: true)
            let plain = await (try makeEngine(.none, dir: plainDir)).run(wf, events: RecordingSink())
            let withCache = await cached.run(wf, events: RecordingSink())
            #expect(plain.summary.outcome == .succeeded && withCache.summary.outcome == .succeeded)
            // Sinks' outputs and the files on disk agree.
            for s in wf.sinks {
                let id = wf.nodes[s].id
                let name = id == "wfinal" ? "final" : id
                let p = try String(contentsOf: plainDir.appendingPathComponent("out/\(name).txt"), encoding: .utf8)
                let c = try String(contentsOf: dir.appendingPathComponent("c/out/\(name).txt"), encoding: .utf8)
                #expect(p == c, "seed \(seed) round \(round) sink \(id)")
            }
            // Every intermediate value the cached run produced or loaded equals the uncached one.
            let pt = outputsText(plain), ct = outputsText(withCache)
            for (k, v) in ct { #expect(pt[k] == v, "seed \(seed) round \(round) \(k)") }
            let again = await cached.run(wf, events: RecordingSink())
            #expect(again.executed.isEmpty, "seed \(seed) round \(round) re-ran \(again.executed)")
        }
    }
}
