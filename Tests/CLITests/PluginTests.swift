import Foundation
import Testing

/// Builds Plugins/ExamplePack (its own package, as a third party would) once per test run.
/// Returns the directory holding libExamplePack.so and libExamplePackOtherABI.so.
let examplePackDirectory: Result<URL, Error> = {
    let scratch = packageRoot.appendingPathComponent(".build-examplepack")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["swift", "build", "--package-path", packageRoot.appendingPathComponent("Plugins/ExamplePack").path,
                   "--scratch-path", scratch.path]
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("examplepack-build-\(UUID().uuidString).log")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: log) }
    do {
        let h = try FileHandle(forWritingTo: log)
        p.standardOutput = h
        p.standardError = h
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            struct BuildFailed: Error, CustomStringConvertible { var description: String }
            throw BuildFailed(description: "swift build of ExamplePack failed:\n" + ((try? String(contentsOf: log, encoding: .utf8)) ?? ""))
        }
        return .success(scratch.appendingPathComponent("debug"))
    } catch {
        return .failure(error)
    }
}()

/// A directory holding only the named pack libraries (not the build's own libNodeKit copy).
func packDirectory(_ names: [String]) throws -> URL {
    let built = try examplePackDirectory.get()
    let dir = tempDir()
    for n in names {
        try FileManager.default.copyItem(at: built.appendingPathComponent("lib\(n).so"), to: dir.appendingPathComponent("lib\(n).so"))
    }
    return dir
}

let shoutWorkflow = """
version: 1
name: shout
params: { text: hello, seconds: 0, out: out/shout.txt }
nodes:
  shout: { type: example.shout, with: { text: "${text}", marks: 3 } }
  wait: { type: example.delay, with: { text: $shout.text, seconds: "${seconds}" } }
  save: { type: text.save, with: { text: $wait.text, path: "${out}" } }
"""

@Suite(.serialized) struct PluginTests {
    @Test func aPackLoadedAtRunTimeProvidesNodes() throws {
        let packs = try packDirectory(["ExamplePack"])
        let dir = tempDir()
        defer {
            try? FileManager.default.removeItem(at: dir)
            try? FileManager.default.removeItem(at: packs)
        }
        let nodes = try llmga(["nodes", "example.", "--plugins", packs.path], cwd: dir)
        #expect(nodes.status == 0, "\(nodes.stderr)")
        #expect(nodes.stdout.contains("example.shout  v1  [example@1.0.0, \(packs.path)/libExamplePack.so]"), "\(nodes.stdout)")

        try Data(shoutWorkflow.utf8).write(to: dir.appendingPathComponent("shout.yaml"))
        // Through LLMGA_PLUGIN_PATH as well as --plugins.
        let r = try llmga(["run", "shout.yaml", "--cache", "none"], cwd: dir, env: ["LLMGA_PLUGIN_PATH": packs.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOf: dir.appendingPathComponent("out/shout.txt"), encoding: .utf8) == "HELLO!!!\n")

        // Without the pack, the workflow is invalid and says which types are unknown.
        let without = try llmga(["validate", "shout.yaml"], cwd: dir)
        #expect(without.status == 2)
        #expect(without.stdout.contains("shout.yaml:5:18: error[unknown_node_type]: node 'shout': unknown node type 'example.shout'"), "\(without.stdout)")
    }

    @Test func aPackBuiltAgainstAnotherNodeKitIsRefused() throws {
        let packs = try packDirectory(["ExamplePackOtherABI"])
        defer { try? FileManager.default.removeItem(at: packs) }
        let r = try llmga(["nodes", "--plugins", packs.path], cwd: packs)
        #expect(r.status == 3)
        #expect(r.stderr.contains("libExamplePackOtherABI.so: was built against NodeKit ABI 2, but this llmga uses NodeKit ABI 1"), "\(r.stderr)")
        let missing = try llmga(["nodes", "--plugins", "/nonexistent-packs"], cwd: packs)
        #expect(missing.status == 3 && missing.stderr.contains("/nonexistent-packs: no such file or directory"))
    }

    @Test func ctrlCCancelsTheRunAndLeavesNoOutput() throws {
        let packs = try packDirectory(["ExamplePack"])
        let dir = tempDir()
        defer {
            try? FileManager.default.removeItem(at: dir)
            try? FileManager.default.removeItem(at: packs)
        }
        try Data(shoutWorkflow.utf8).write(to: dir.appendingPathComponent("shout.yaml"))
        var interruptedAt: Date?
        let r = try llmga(["run", "shout.yaml", "--set", "seconds=30", "--events", "jsonl", "--plugins", packs.path,
                           "--cache-dir", dir.appendingPathComponent("cache").path],
                          cwd: dir) { process, output in
            // Interrupt once the delay node reports progress.
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, process.isRunning {
                if output().contains("\"event\":\"node_progress\"") {
                    interruptedAt = Date()
                    process.interrupt()
                    return
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        #expect(interruptedAt != nil, "the delay node never reported progress")
        #expect(r.status == 130, "\(r.stderr)")
        if let t = interruptedAt { #expect(Date().timeIntervalSince(t) < 5, "cancellation should be prompt") }
        let events = jsonLines(r.stdout)
        #expect(events.last?["event"] as? String == "run_finished" && events.last?["outcome"] as? String == "cancelled")
        let out = dir.appendingPathComponent("out")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).isEmpty)
        // What finished before the interrupt is cached: the next run starts after it.
        let again = try llmga(["run", "shout.yaml", "--set", "seconds=0.1", "--events", "jsonl", "--plugins", packs.path,
                               "--cache-dir", dir.appendingPathComponent("cache").path], cwd: dir)
        #expect(again.status == 0)
        let started = jsonLines(again.stdout).filter { $0["event"] as? String == "node_started" }.compactMap { $0["node"] as? String }
        #expect(started == ["wait", "save"])
    }
}
