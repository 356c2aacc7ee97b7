import Foundation
import NodeKit
import Testing
import Workflow
@testable import Engine

let diamond = """
version: 1
params: { x: 3, y: 4 }
nodes:
  a:
    type: t.const
    with: { value: "${x}" }
  b:
    type: t.add
    with: { a: $a.value, k: 2 }
  c:
    type: t.const
    with: { value: "${y}" }
  d:
    type: t.join
    with: { items: [$b.sum, $c.value, 7] }
  e:
    type: t.add
    with: { a: $c.value, b: 100 }
  out:
    type: t.write
    with: { text: $d.text, path: out/result.txt }
"""

func intOutput(_ r: RunResult, _ node: String, _ port: String) -> Int? {
    if case .int(let i)? = r.outputs[node]?[port] { return i }
    return nil
}

@Suite(.serialized) struct EngineTests {
    @Test func runsOnlyNodesFeedingASinkAndWritesTheOutput() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try makeEngine(.memory, dir: dir)
        let wf = try compile(diamond)
        #expect(wf.unused == ["e"])
        let r = await engine.run(wf, events: RecordingSink())
        #expect(r.summary.outcome == .succeeded)
        #expect(Set(r.executed) == ["a", "b", "c", "d", "out"])
        let text = try String(contentsOf: dir.appendingPathComponent("out/result.txt"), encoding: .utf8)
        #expect(text == "6,4,7")
        #expect(r.summary.writtenFiles == [dir.appendingPathComponent("out/result.txt").path])
    }

    @Test func secondRunExecutesNothing() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        for mode in [CacheMode.memory, .disk] {
            let engine = try makeEngine(mode, dir: dir)
            let wf = try compile(diamond)
            let first = await engine.run(wf, events: RecordingSink())
            #expect(first.summary.run == 5)
            let events = RecordingSink()
            let second = await engine.run(wf, events: events)
            #expect(second.executed.isEmpty, "\(mode): \(second.executed)")
            #expect(second.summary.run == 0 && second.summary.cached == 5)
            #expect(!events.events.contains { if case .nodeStarted = $0 { true } else { false } })
        }
    }

    @Test func changingOneLiteralRerunsExactlyThatNodeAndItsDescendants() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try makeEngine(.memory, dir: dir)
        _ = await engine.run(try compile(diamond), events: RecordingSink())
        // x feeds a -> b -> d -> out; c is untouched.
        let r = await engine.run(try compile(diamond, ["x=5"]), events: RecordingSink())
        #expect(Set(r.executed) == ["a", "b", "d", "out"])
        #expect(try String(contentsOf: dir.appendingPathComponent("out/result.txt"), encoding: .utf8) == "10,4,7")
        // A literal deep in the graph: only b and below.
        let r2 = await engine.run(try compile(diamond, ["x=5", "b.k=3"]), events: RecordingSink())
        #expect(Set(r2.executed) == ["b", "d", "out"])
        // A change to the sink only.
        let r3 = await engine.run(try compile(diamond, ["x=5", "b.k=3", "out.path=out/other.txt"]), events: RecordingSink())
        #expect(r3.executed == ["out"])
        #expect(try String(contentsOf: dir.appendingPathComponent("out/other.txt"), encoding: .utf8) == "15,4,7")
    }

    @Test func diskCacheIsSharedBetweenEngines() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let wf = try compile(diamond)
        let first = await (try makeEngine(.disk, dir: dir)).run(wf, events: RecordingSink())
        #expect(first.summary.run == 5)
        // A new engine (as a second process would be) with the same directory and an empty memory.
        let events = RecordingSink()
        let second = await (try makeEngine(.disk, dir: dir)).run(wf, events: events)
        #expect(second.executed.isEmpty)
        let tiers = events.events.compactMap { e -> String? in if case .nodeCached(_, _, let t) = e { t } else { nil } }
        #expect(tiers.contains("disk"))
    }

    @Test func deletedOutputFileMakesTheSinkRunAgain() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try makeEngine(.disk, dir: dir)
        let wf = try compile(diamond)
        _ = await engine.run(wf, events: RecordingSink())
        let out = dir.appendingPathComponent("out/result.txt")
        try FileManager.default.removeItem(at: out)
        let r = await engine.run(wf, events: RecordingSink())
        // The sink re-runs; its input comes from the cache, not from re-running the graph.
        #expect(r.executed == ["out"])
        #expect(try String(contentsOf: out, encoding: .utf8) == "6,4,7")
        // Edited by hand: also re-run.
        try Data("edited".utf8).write(to: out)
        let r2 = await engine.run(wf, events: RecordingSink())
        #expect(r2.executed == ["out"])
        #expect(try String(contentsOf: out, encoding: .utf8) == "6,4,7")
    }

    @Test func corruptedDiskEntryIsDetectedAndRecomputed() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let wf = try compile(diamond)
        let first = await (try makeEngine(.disk, dir: dir)).run(wf, events: RecordingSink())
        // Damage every entry in a different way: flip a byte, truncate, replace with garbage.
        let entries = FileManager.default.enumerator(at: dir.appendingPathComponent("cache/entries"), includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "llmga" }.sorted { $0.path < $1.path }
        #expect(entries.count == 5)
        for (i, e) in entries.enumerated() {
            var bytes = [UInt8](try Data(contentsOf: e))
            switch i % 3 {
            case 0: bytes[bytes.count / 2] ^= 0x40
            case 1: bytes.removeLast(bytes.count / 3)
            default: bytes = Array("not a cache entry at all".utf8)
            }
            try Data(bytes).write(to: e)
        }
        let events = RecordingSink()
        let second = await (try makeEngine(.disk, dir: dir)).run(wf, events: events)
        let warnings = events.events.compactMap { e -> String? in if case .warning(let m) = e { m } else { nil } }
        #expect(warnings.contains { $0.contains("damaged") })
        #expect(second.summary.outcome == .succeeded)
        #expect(second.outputs["d"]?["text"].map { "\($0)" } == first.outputs["d"]?["text"].map { "\($0)" })
        // Recomputed entries were written back and are good now.
        let third = await (try makeEngine(.disk, dir: dir)).run(wf, events: RecordingSink())
        #expect(third.executed.isEmpty)
    }

    @Test func fileInputsAreContentHashed() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.txt")
        try Data("hello".utf8).write(to: input)
        let yaml = """
        version: 1
        nodes:
          r: { type: t.read, with: { path: in.txt } }
          n: { type: t.length, with: { text: $r.text } }
          j: { type: t.join, with: { items: [$n.n] } }
          w: { type: t.write, with: { text: $j.text, path: n.txt } }
        """
        let engine = try makeEngine(.disk, dir: dir)
        _ = await engine.run(try compile(yaml), events: RecordingSink())
        #expect(try String(contentsOf: dir.appendingPathComponent("n.txt"), encoding: .utf8) == "5")
        #expect(await engine.run(try compile(yaml), events: RecordingSink()).executed.isEmpty)
        try Data("hello world".utf8).write(to: input)
        let r = await engine.run(try compile(yaml), events: RecordingSink())
        #expect(Set(r.executed) == ["r", "n", "j", "w"])
        #expect(try String(contentsOf: dir.appendingPathComponent("n.txt"), encoding: .utf8) == "11")
    }

    /// An empty path on a file input is "no file": the key takes the literal and no file hash, so the node is
    /// cached like any other (were it resolved, it would name the run directory, which cannot be hashed).
    @Test func emptyPathOnAFileInputIsCached() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        nodes:
          r: { type: t.read, with: { path: "" } }
          n: { type: t.length, with: { text: $r.text } }
          j: { type: t.join, with: { items: [$n.n] } }
          w: { type: t.write, with: { text: $j.text, path: n.txt } }
        """
        let engine = try makeEngine(.disk, dir: dir)
        let first = await engine.run(try compile(yaml), events: RecordingSink())
        #expect(Set(first.executed) == ["r", "n", "j", "w"])
        #expect(try String(contentsOf: dir.appendingPathComponent("n.txt"), encoding: .utf8) == "0")
        #expect(await engine.run(try compile(yaml), events: RecordingSink()).executed.isEmpty)
    }

    @Test func volatileNodesAreNeverCachedButTheirUnchangedConsumersAre() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        nodes:
          dice: { type: t.dice }
          zero: { type: t.add, with: { a: $dice.value, k: 0 } }
          j: { type: t.join, with: { items: [$zero.sum] } }
          w: { type: t.write, with: { text: $j.text, path: v.txt } }
        """
        let engine = try makeEngine(.memory, dir: dir)
        _ = await engine.run(try compile(yaml), events: RecordingSink())
        let r = await engine.run(try compile(yaml), events: RecordingSink())
        // The dice rolls again; `zero` gets a new input value so it runs; its output (0) is
        // unchanged, so everything after it is served from the cache by value.
        #expect(r.executed.contains("dice"))
        #expect(r.executed.contains("zero"))
        #expect(!r.executed.contains("j") && !r.executed.contains("w"))
    }

    @Test func failureBlocksDescendantsButIndependentBranchesFinish() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        nodes:
          bad: { type: t.fail, with: { x: 7 } }
          after: { type: t.join, with: { items: [$bad.value] } }
          w1: { type: t.write, with: { text: $after.text, path: one.txt } }
          ok: { type: t.join, with: { items: [1, 2] } }
          w2: { type: t.write, with: { text: $ok.text, path: two.txt } }
        """
        let r = await (try makeEngine(.none, dir: dir)).run(try compile(yaml), events: RecordingSink())
        #expect(r.summary.outcome == .failed)
        #expect(r.failures.count == 1)
        let f = r.failures[0]
        #expect(f.node == "bad" && f.port == "x" && f.message.contains("7") && f.location.line == 3)
        #expect(f.description.hasPrefix("test.yaml:3:3: node 'bad' (t.fail) port 'x'"))
        #expect(r.summary.blocked == 2)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("two.txt").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("one.txt").path))
    }

    @Test func valuesArrivingOverLinksAreRangeChecked() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        nodes:
          big: { type: t.const, with: { value: 5000 } }
          a: { type: t.add, with: { a: 1, k: $big.value } }
          j: { type: t.join, with: { items: [$a.sum] } }
          w: { type: t.write, with: { text: $j.text, path: x.txt } }
        """
        let r = await (try makeEngine(.none, dir: dir)).run(try compile(yaml), events: RecordingSink())
        #expect(r.failures.first?.node == "a" && r.failures.first?.port == "k")
    }

    @Test func nodeBreakingItsSchemaIsReported() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        nodes:
          l: { type: t.liar }
          j: { type: t.join, with: { items: [$l.value] } }
          w: { type: t.write, with: { text: $j.text, path: x.txt } }
        """
        let r = await (try makeEngine(.none, dir: dir)).run(try compile(yaml), events: RecordingSink())
        #expect(r.failures.first?.message.contains("should be int") == true)
    }

    @Test func cancellationMidRunLeavesNoOutputFile() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        nodes:
          s: { type: t.slow, with: { value: 1, ms: 3000 } }
          j: { type: t.join, with: { items: [$s.value] } }
          w: { type: t.write, with: { text: $j.text, path: out/cancelled.txt } }
        """
        let engine = try makeEngine(.disk, dir: dir)
        let wf = try compile(yaml)
        let events = RecordingSink()
        let task = Task { await engine.run(wf, events: events) }
        // Wait until the slow node is under way, then cancel.
        for _ in 0..<200 {
            if events.events.contains(where: { if case .nodeProgress = $0 { true } else { false } }) { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        task.cancel()
        let started = Date()
        let r = await task.value
        #expect(Date().timeIntervalSince(started) < 1.0, "cancellation should be prompt")
        #expect(r.summary.outcome == .cancelled)
        let out = dir.appendingPathComponent("out")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
        #expect(leftovers.isEmpty, "left behind: \(leftovers)")
        // Nothing was cached for the cancelled node: a new run does the work.
        let again = await engine.run(try compile(yaml, ["s.ms=20"]), events: RecordingSink())
        #expect(again.summary.outcome == .succeeded)
    }

    @Test func heavyNodesShareOneLaneWhileLightNodesOverlap() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var yaml = "version: 1\nnodes:\n"
        for i in 0..<4 {
            yaml += "  h\(i): { type: t.heavy, with: { value: \(i) } }\n  l\(i): { type: t.light, with: { value: \(i) } }\n"
        }
        yaml += "  j: { type: t.join, with: { items: [" + (0..<4).map { "$h\($0).value, $l\($0).value" }.joined(separator: ", ") + "] } }\n"
        yaml += "  w: { type: t.write, with: { text: $j.text, path: lanes.txt } }\n"
        heavyGauge.reset()
        lightGauge.reset()
        let r = await (try makeEngine(.none, dir: dir, jobs: 8)).run(try compile(yaml), events: RecordingSink())
        #expect(r.summary.outcome == .succeeded)
        #expect(heavyGauge.max_ == 1)
        #expect(lightGauge.max_ > 1)
    }

    @Test func modelsAreLoadedOnceAndSharedThroughThePool() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        nodes:
          m1: { type: t.load-weights, with: { scale: 3 } }
          m2: { type: t.load-weights, with: { scale: 3 } }
          a1: { type: t.apply, with: { weights: $m1.weights, value: 2 } }
          a2: { type: t.apply, with: { weights: $m2.weights, value: 5 } }
          j: { type: t.join, with: { items: [$a1.value, $a2.value] } }
          w: { type: t.write, with: { text: $j.text, path: m.txt } }
        """
        modelLoads.reset()
        let engine = try makeEngine(.disk, dir: dir)
        let r = await engine.run(try compile(yaml), events: RecordingSink())
        #expect(r.summary.outcome == .succeeded)
        #expect(try String(contentsOf: dir.appendingPathComponent("m.txt"), encoding: .utf8) == "6,15")
        #expect(await engine.models.loads == 1)
        // Objects are not written to disk, but results computed from them are.
        let r2 = await engine.run(try compile(yaml, ["a2.value=6"]), events: RecordingSink())
        #expect(Set(r2.executed).isSubset(of: ["m1", "m2", "a2", "j", "w"]))
        #expect(await engine.models.loads == 1)
    }

    @Test func modelPoolEvictsLeastRecentlyUsedBeyondItsBudget() async throws {
        let pool = SharedModelPool(budgetBytes: 2500)
        for s in [1, 2, 3] {
            _ = try await pool.model(key: "k\(s)") { Weights(scale: s, bytes: 1000) }
        }
        #expect(await pool.keys.sorted() == ["k2", "k3"])
        _ = try await pool.model(key: "k2") { Weights(scale: 2, bytes: 1000) }
        #expect(await pool.loads == 3)
        await #expect(throws: SharedModelPool.TypeClash.self) {
            _ = try await pool.model(key: "k2") { () async throws -> OtherModel in OtherModel() }
        }
    }
}

final class OtherModel: PortObject {
    static let portTypeName = "t.other"
    var estimatedBytes: Int { 1 }
}

@Suite struct CodecAndCacheTests {
    @Test func codecRoundTripsAndIsCanonical() throws {
        let raster = Raster(width: 2, height: 1, channels: 3, pixels: [0, 0.25, 0.5, 0.75, 1, -0.5], depth: .uint16)
        let values: [String: Value] = [
            "t": .text("héllo\n"), "i": .int(-42), "f": .float(-0.0), "b": .bool(true),
            "img": .image(raster), "m": .mask(Raster(width: 1, height: 1, channels: 1, pixels: [1])),
            "l": .list(elementType: .list(.int), [.list(elementType: .int, [.int(1), .int(2)])]),
        ]
        let bytes = try ValueCodec.encodeOutputs(values)
        let back = try bytes.withUnsafeBytes { try ValueCodec.decodeOutputs($0) }
        #expect(try ValueCodec.encodeOutputs(back) == bytes)
        guard case .image(let r)? = back["img"] else { Issue.record("image lost"); return }
        #expect(r == raster)
        // -0.0 and 0.0 encode alike (they are equal inputs).
        var a: [UInt8] = [], b: [UInt8] = []
        try ValueCodec.encode(.float(-0.0), into: &a)
        try ValueCodec.encode(.float(0.0), into: &b)
        #expect(a == b)
        // Truncation anywhere is an error, not a crash.
        for cut in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: (any Error).self) { try Array(bytes[0..<cut]).withUnsafeBytes { try ValueCodec.decodeOutputs($0) } }
        }
    }

    @Test func memoryCacheEvictsLeastRecentlyUsed() {
        let c = MemoryCache(budgetBytes: 1500)  // each entry is about 570 bytes: two fit, three do not
        func entry(_ n: Int) -> CachedResult { CachedResult(outputs: ["t": .text(String(repeating: "x", count: n))], writtenFiles: []) }
        let k = (0..<3).map { Digest.of(Array("k\($0)".utf8)) }
        c.put(k[0], entry(300))
        c.put(k[1], entry(300))
        _ = c.get(k[0])
        c.put(k[2], entry(300))
        #expect(c.get(k[0]) != nil)
        #expect(c.get(k[1]) == nil)
        #expect(c.get(k[2]) != nil)
        #expect(c.bytes <= 1500)
    }

    @Test func diskCachePruneKeepsMostRecent() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try DiskCache(directory: dir)
        for i in 0..<5 {
            let key = Digest.of(Array("p\(i)".utf8))
            try c.put(key, CachedResult(outputs: ["t": .text(String(repeating: "y", count: 1000))], writtenFiles: []), nodeType: "t.x")
            let url = c.url(for: key)
            var times = [timespec(tv_sec: 1_000_000 + i, tv_nsec: 0), timespec(tv_sec: 1_000_000 + i, tv_nsec: 0)]
            _ = utimensat(AT_FDCWD, url.path, &times, 0)
        }
        #expect(c.stats().entries == 5)
        let one = c.stats().bytes / 5
        let (removed, _) = c.prune(maxBytes: one * 2)
        #expect(removed == 3)
        #expect(c.stats().entries == 2)
        if case .miss = c.get(Digest.of(Array("p0".utf8))) {} else { Issue.record("oldest should be gone") }
        if case .hit = c.get(Digest.of(Array("p4".utf8))) {} else { Issue.record("newest should stay") }
    }

    @Test func fileHasherNoticesChangesAndRemembersAcrossInstances() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("f.bin")
        try Data("abc".utf8).write(to: f)
        let h = FileHasher(memoDirectory: dir.appendingPathComponent("memo"))
        let d1 = try h.hash(path: f.path)
        #expect(d1.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        try Data("abd".utf8).write(to: f)
        #expect(try h.hash(path: f.path) != d1)
        #expect(try FileHasher(memoDirectory: dir.appendingPathComponent("memo")).hash(path: f.path) == (try h.hash(path: f.path)))
        #expect(throws: (any Error).self) { try h.hash(path: dir.appendingPathComponent("missing").path) }
    }
}

@Suite struct OutputPathKeyTests {
    /// The same workflow with the same relative output path, run from two directories, writes both files.
    @Test func relativeOutputPathsAreKeyedByWhereTheyResolve() async throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let yaml = """
        version: 1
        nodes:
          j: { type: t.join, with: { items: [1, 2] } }
          w: { type: t.write, with: { text: $j.text, path: out.txt } }
        """
        var o = EngineOptions()
        o.cache = .disk
        o.cacheDirectory = root.appendingPathComponent("cache")
        for sub in ["a", "b"] {
            o.baseDirectory = root.appendingPathComponent(sub)
            let r = await (try Engine(registry: testRegistry(), options: o)).run(try compile(yaml), events: RecordingSink())
            #expect(r.executed.contains("w"), "\(sub)")
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("\(sub)/out.txt").path))
        }
    }
}

@Suite struct FolderHashTests {
    @Test func foldersHashByTheirFiles() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: model.appendingPathComponent("unet"), withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: model.appendingPathComponent("model_index.json"))
        try Data("weights".utf8).write(to: model.appendingPathComponent("unet/w.safetensors"))
        let h = FileHasher(memoDirectory: nil)
        let d1 = try h.hash(path: model.path)
        #expect(try FileHasher(memoDirectory: nil).hash(path: model.path) == d1)
        try Data("weight2".utf8).write(to: model.appendingPathComponent("unet/w.safetensors"))
        let d2 = try h.hash(path: model.path)
        #expect(d2 != d1)
        try FileManager.default.moveItem(at: model.appendingPathComponent("unet/w.safetensors"),
                                         to: model.appendingPathComponent("unet/v.safetensors"))
        let d3 = try h.hash(path: model.path)
        #expect(d3 != d2, "a rename changes the folder's identity")
        // Hidden files (editor swap files, .DS_Store) do not.
        try Data("x".utf8).write(to: model.appendingPathComponent(".DS_Store"))
        #expect(try h.hash(path: model.path) == d3)
    }
}
