import Foundation
import NodeKit
import Testing
@testable import CoreNodes

private let ctx = TestContext(baseDirectory: FileManager.default.temporaryDirectory)

@Suite struct TextNodeTests {
    func template(_ t: String, _ values: [String]) async throws -> String? {
        try await run(TextTemplate.self, ["template": .text(t), "values": texts(values)], context: ctx)["text"]?.textValue
    }

    @Test func fillsPlaceholdersAndEscapes() async throws {
        #expect(try await template("a {0} in {1}, {0}!", ["husky", "armour"]) == "a husky in armour, husky!")
        #expect(try await template("{{0}} is {0}; }}{{", ["x"]) == "{0} is x; }{")
        #expect(try await template("no placeholders", []) == "no placeholders")
        #expect(try await template("{1}{0}", ["b", "a"]) == "ab")
        #expect(try await template("日本 {0}", ["🐕"]) == "日本 🐕")
        #expect(try await run(TextTemplate.self, ["template": .text("plain")], context: ctx)["text"]?.textValue == "plain")
    }

    @Test func badTemplatesNameThePort() async throws {
        for (t, fragment) in [("{2}", "no value"), ("{x}", "must be a number"), ("{0", "unclosed"), ("a } b", "single '}'"),
                              ("{}", "must be a number"), ("{-1}", "must be a number")] {
            let e = await nodeError { _ = try await template(t, ["a", "b"]) }
            #expect(e?.port == "template", "\(t)")
            #expect(e?.message.contains(fragment) == true, "\(t): \(e?.message ?? "no error")")
        }
    }

    @Test func concatJoinsAndSkipsEmpty() async throws {
        func concat(_ items: [String], _ extra: [String: Value] = [:]) async throws -> String? {
            var g = extra
            g["items"] = texts(items)
            return try await run(TextConcat.self, g, context: ctx)["text"]?.textValue
        }
        #expect(try await concat(["a", "", "b", "  ", "c"]) == "a, b, c")
        #expect(try await concat(["a", "", "b"], ["skip-empty": .bool(false)]) == "a, , b")
        #expect(try await concat(["x", "y"], ["separator": .text("\n")]) == "x\ny")
        #expect(try await concat([]) == "")
        #expect(try await concat(["", ""]) == "")
    }
}

@Suite struct MathNodeTests {
    func float(_ a: Double, _ b: Double, _ op: String) async throws -> Double? {
        try await run(MathFloat.self, ["a": .float(a), "b": .float(b), "op": .text(op)], context: ctx)["result"]?.floatValue
    }

    func int(_ a: Int, _ b: Int, _ op: String) async throws -> Int? {
        try await run(MathInt.self, ["a": .int(a), "b": .int(b), "op": .text(op)], context: ctx)["result"]?.intValue
    }

    @Test func floatOps() async throws {
        #expect(try await float(1.5, 2, "add") == 3.5)
        #expect(try await float(1.5, 2, "sub") == -0.5)
        #expect(try await float(1.5, 2, "mul") == 3)
        #expect(try await float(3, 2, "div") == 1.5)
        #expect(try await float(3, 2, "min") == 2)
        #expect(try await float(3, 2, "max") == 3)
        #expect(try await float(2, 10, "pow") == 1024)
        #expect(try await run(MathFloat.self, ["a": .int(2)], context: ctx)["result"]?.floatValue == 2) // int widens, b = 0, add
        let e1 = await nodeError { _ = try await float(1, 0, "div") }
        #expect(e1?.port == "b" && e1?.message == "division by zero")
        let e2 = await nodeError { _ = try await float(-8, 1.0 / 3, "pow") }
        #expect(e2?.port == "op")
        let e3 = await nodeError { _ = try await float(1e308, 10, "mul") }
        #expect(e3?.message.contains("not a finite number") == true)
    }

    @Test func intOpsFloorLikePython() async throws {
        #expect(try await int(7, 2, "div") == 3)
        #expect(try await int(-7, 2, "div") == -4)
        #expect(try await int(7, -2, "div") == -4)
        #expect(try await int(-7, -2, "div") == 3)
        #expect(try await int(7, 2, "mod") == 1)
        #expect(try await int(-7, 2, "mod") == 1)
        #expect(try await int(7, -2, "mod") == -1)
        #expect(try await int(-7, -2, "mod") == -1)
        #expect(try await int(6, 3, "mod") == 0)
        #expect(try await int(Int.min, -1, "mod") == 0)
        #expect(try await int(3, 4, "pow") == 81)
        #expect(try await int(-2, 63, "pow") == Int.min)
        #expect(try await int(5, 0, "pow") == 1)
        #expect(try await int(4, 9, "min") == 4)
        #expect(try await int(4, 9, "max") == 9)
        #expect(try await int(4, 9, "sub") == -5)
        #expect(try await int(4, 9, "mul") == 36)
        #expect(try await int(4, 9, "add") == 13)
    }

    @Test func intErrors() async throws {
        let e1 = await nodeError { _ = try await int(1, 0, "div") }
        #expect(e1?.port == "b")
        let e2 = await nodeError { _ = try await int(1, 0, "mod") }
        #expect(e2?.port == "b" && e2?.message == "modulo by zero")
        let e3 = await nodeError { _ = try await int(Int.max, 1, "add") }
        #expect(e3?.message.contains("overflows") == true)
        let e4 = await nodeError { _ = try await int(2, 64, "pow") }
        #expect(e4?.message.contains("overflows") == true)
        let e5 = await nodeError { _ = try await int(2, -1, "pow") }
        #expect(e5?.port == "b")
        let e6 = await nodeError { _ = try await int(Int.min, -1, "div") }
        #expect(e6?.port == "op")
    }
}

@Suite struct TextSaveTests {
    @Test func writesAtomicallyWithNewlineAndReportsTheFile() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = TestContext(baseDirectory: dir)
        let out = try await run(TextSave.self, ["text": .text("a husky, 家"), "path": .text("p/prompt.txt")], context: c)
        let url = dir.appendingPathComponent("p/prompt.txt")
        #expect(out["path"]?.textValue == url.standardizedFileURL.path)
        #expect(try String(contentsOf: url, encoding: .utf8) == "a husky, 家\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("p").path) == ["prompt.txt"])
    }

    @Test func cancellationBeforeTheRenameLeavesNothing() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = TestContext(baseDirectory: dir, cancelOnCheck: 1)
        await #expect(throws: CancellationError.self) {
            _ = try await run(TextSave.self, ["text": .text("x"), "path": .text("t.txt")], context: c)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".scratch") }.isEmpty)
    }

    @Test func unwritablePathNamesThePort() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("file".utf8).write(to: dir.appendingPathComponent("blocker"))
        let e = await nodeError {
            _ = try await run(TextSave.self, ["text": .text("x"), "path": .text("blocker/t.txt")], context: TestContext(baseDirectory: dir))
        }
        #expect(e?.port == "path")
    }
}
