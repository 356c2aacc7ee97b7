import Foundation
import Imaging
import Testing

/// The package root (this file is Tests/CLITests/CLITests.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The `llmga` binary built next to this test bundle.
let llmgaBinary: URL = {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent()] {
        let u = candidate.appendingPathComponent("llmga")
        if FileManager.default.isExecutableFile(atPath: u.path) { return u }
    }
    return dir.appendingPathComponent("llmga")
}()

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `llmga` with arguments in `cwd`; `whileRunning` may act on the live process (e.g. signal it).
func llmga(_ args: [String], cwd: URL, env: [String: String] = [:],
           whileRunning: ((Process, @escaping () -> String) -> Void)? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = llmgaBinary
    p.arguments = args
    p.currentDirectoryURL = cwd
    var environment = ProcessInfo.processInfo.environment
    environment["LLMGA_PLUGIN_PATH"] = nil
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let outURL = cwd.appendingPathComponent(".stdout-\(UUID().uuidString)")
    let errURL = cwd.appendingPathComponent(".stderr-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    p.standardOutput = try FileHandle(forWritingTo: outURL)
    p.standardError = try FileHandle(forWritingTo: errURL)
    try p.run()
    whileRunning?(p) { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus,
                         stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}

func tempDir() -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("llmga-cli-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

func jsonLines(_ s: String) -> [[String: Any]] {
    s.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

@Suite(.serialized) struct CLITests {
    let demo = packageRoot.appendingPathComponent("Workflows/demo.yaml").path
    let sample = packageRoot.appendingPathComponent("Assets/images/sample.png").path

    @Test func demoRendersEndToEndAndASecondProcessRunsNothing() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = [demo, "--set", "image=\(sample)", "--cache-dir", dir.appendingPathComponent("cache").path]

        let first = try llmga(["run"] + common, cwd: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("7 nodes: 7 run, 0 cached"))
        let canvas = dir.appendingPathComponent("out/demo-outpaint.png")
        let png = try PNG.read(contentsOf: canvas)
        #expect(png.image.width == 256 + 2 * 64 && png.image.height == 192)
        // Provenance: the workflow, the resolved params and node versions are in the file.
        #expect(png.text("llmga:workflow")?.contains("name: demo") == true)
        #expect(png.text("llmga:params")?.contains(sample) == true)
        #expect(png.text("llmga:nodes")?.contains("image.canny") == true)

        let second = try llmga(["run"] + common, cwd: dir)
        #expect(second.status == 0)
        #expect(second.stderr.contains("7 nodes: 0 run, 7 cached"), "\(second.stderr)")

        // Changing one param re-runs exactly the nodes downstream of it.
        let third = try llmga(["run"] + common + ["--set", "low=30", "--events", "jsonl"], cwd: dir)
        #expect(third.status == 0, "\(third.stderr)")
        let events = jsonLines(third.stdout)
        let started = Set(events.filter { $0["event"] as? String == "node_started" }.compactMap { $0["node"] as? String })
        #expect(started == ["edges", "outline", "overlay", "canvas", "save-edges", "save-canvas"])
        let finished = events.last
        #expect(finished?["event"] as? String == "run_finished")
        #expect(finished?["run"] as? Int == 6 && finished?["cached"] as? Int == 1)
        #expect((finished?["files"] as? [String])?.count == 2)
    }

    @Test func validateReportsEveryErrorWithItsLocationAndExits2() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = """
        version: 1
        nodes:
          load:
            type: image.lod
          edges:
            type: image.canny
            with: { image: $load.image, low: lots, hihg: 3 }
          save:
            type: image.save
            with: { image: $edges.mask, path: x.png }
        """
        try Data(bad.utf8).write(to: dir.appendingPathComponent("bad.yaml"))
        let r = try llmga(["validate", "bad.yaml"], cwd: dir)
        #expect(r.status == 2)
        #expect(r.stdout.contains("bad.yaml:4:11: error[unknown_node_type]: node 'load': unknown node type 'image.lod' (did you mean 'image.load'?)"), "\(r.stdout)")
        #expect(r.stdout.contains("bad.yaml:7:38: error[literal_type]: node 'edges' port 'low'"))
        #expect(r.stdout.contains("bad.yaml:7:44: error[unknown_input]: node 'edges' port 'hihg'"))
        #expect(r.stdout.contains("bad.yaml:10:20: error[type_mismatch]: node 'save' port 'image'"))
        #expect(r.stdout.contains("4 errors"))

        let j = try llmga(["validate", "bad.yaml", "--json"], cwd: dir)
        let list = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [[String: String]]
        #expect(list?.count == 4)
        #expect(list?.contains { $0["code"] == "type_mismatch" && $0["line"] == "10" && $0["node"] == "save" } == true)

        // run refuses the same file and runs nothing.
        let run = try llmga(["run", "bad.yaml"], cwd: dir)
        #expect(run.status == 2)
        #expect(run.stderr.contains("nothing was run"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.png").path))

        let missing = try llmga(["validate", "nope.yaml"], cwd: dir)
        #expect(missing.status == 2)
        #expect(missing.stdout.contains("nope.yaml: error[file_unreadable]"))
    }

    @Test func aFailingNodeExits1AndNamesNodeAndPort() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try llmga(["run", demo, "--set", "image=missing.png", "--cache", "none"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("node 'picture' (image.load) port 'path'"), "\(r.stderr)")
        #expect(r.stderr.contains("missing.png"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    @Test func nodesListsEveryTypeWithPortsAsJSON() throws {
        let r = try llmga(["nodes", "--json"], cwd: tempDir())
        #expect(r.status == 0)
        let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
        let ids = Set(list.compactMap { $0["id"] as? String })
        for id in ["image.load", "image.save", "image.resize", "image.crop", "image.pad-for-outpaint", "image.composite",
                   "image.canny", "mask.threshold", "mask.invert", "mask.grow", "mask.blur", "mask.from-image",
                   "text.template", "text.concat"] {
            #expect(ids.contains(id), "missing \(id)")
        }
        let canny = list.first { $0["id"] as? String == "image.canny" }
        let inputs = canny?["inputs"] as? [[String: Any]] ?? []
        #expect(inputs.contains { $0["name"] as? String == "low" && $0["type"] as? String == "float" && $0["default"] as? Double == 100 })
        let text = try llmga(["nodes", "image.save"], cwd: tempDir())
        #expect(text.stdout.contains("image.save  v1  [core@1.0.0]  (output)"))
    }

    @Test func cacheStatsAndPrune() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        _ = try llmga(["run", demo, "--set", "image=\(sample)", "--cache-dir", cache], cwd: dir)
        let stats = try llmga(["cache", "stats", "--cache-dir", cache], cwd: dir)
        #expect(stats.status == 0)
        #expect(stats.stdout.contains("entries: 7"), "\(stats.stdout)")
        let prune = try llmga(["cache", "prune", "--all", "--cache-dir", cache], cwd: dir)
        #expect(prune.stdout.contains("removed 7 entries"))
        #expect(try llmga(["cache", "stats", "--cache-dir", cache], cwd: dir).stdout.contains("entries: 0"))
        let usage = try llmga(["cache", "prune", "--cache-dir", cache], cwd: dir)
        #expect(usage.status != 0 && usage.stderr.contains("--max-size, --older-than or --all"))
    }

    @Test func twoProcessesShareOneCacheDirectorySafely() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = dir.appendingPathComponent("cache").path
        // Two processes run the same workflow at the same time into one cache, each writing its own outputs.
        let outA = dir.appendingPathComponent("a"), outB = dir.appendingPathComponent("b")
        try FileManager.default.createDirectory(at: outA, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outB, withIntermediateDirectories: true)
        var second: ProcessResult?
        let first = try llmga(["run", demo, "--set", "image=\(sample)", "--cache-dir", cache], cwd: outA) { _, _ in
            second = try? llmga(["run", demo, "--set", "image=\(sample)", "--cache-dir", cache], cwd: outB)
        }
        #expect(first.status == 0 && second?.status == 0, "\(first.stderr)\n\(second?.stderr ?? "")")
        let a = try Data(contentsOf: outA.appendingPathComponent("out/demo-outpaint.png"))
        let b = try Data(contentsOf: outB.appendingPathComponent("out/demo-outpaint.png"))
        #expect(a == b)
        // Every entry left in the cache is whole: a third run in a new place loads them without warnings.
        let outC = dir.appendingPathComponent("c")
        try FileManager.default.createDirectory(at: outC, withIntermediateDirectories: true)
        let third = try llmga(["run", demo, "--set", "image=\(sample)", "--cache-dir", cache, "--events", "jsonl"], cwd: outC)
        #expect(third.status == 0)
        let events = jsonLines(third.stdout)
        #expect(!events.contains { $0["event"] as? String == "warning" })
        // The images themselves come from the cache; only the two savers run (their files are new here).
        let started = Set(events.filter { $0["event"] as? String == "node_started" }.compactMap { $0["node"] as? String })
        #expect(started == ["save-edges", "save-canvas"])
    }

    @Test func aSavedPNGReRunsTheWorkflowItRecords() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try llmga(["run", demo, "--set", "image=\(sample)", "--set", "pad=16", "--cache", "none"], cwd: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let recorded = dir.appendingPathComponent("recorded.png")
        try FileManager.default.moveItem(at: dir.appendingPathComponent("out/demo-outpaint.png"), to: recorded)
        // The recorded params (pad=16) apply, and --set still overrides them.
        let again = try llmga(["run", "recorded.png", "--cache", "none"], cwd: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try PNG.read(contentsOf: dir.appendingPathComponent("out/demo-outpaint.png")).image.width == 256 + 32)
        let changed = try llmga(["run", "recorded.png", "--set", "pad=4", "--cache", "none"], cwd: dir)
        #expect(changed.status == 0)
        #expect(try PNG.read(contentsOf: dir.appendingPathComponent("out/demo-outpaint.png")).image.width == 256 + 8)
        // A PNG without a recorded workflow is refused plainly.
        let plain = try llmga(["run", sample], cwd: dir)
        #expect(plain.status == 2 && plain.stderr.contains("records no workflow"))
    }
}
