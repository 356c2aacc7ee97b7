import NodeKit
import Testing
@testable import Workflow

// Node types with schemas only: the compiler never evaluates them.
struct Number: NodeType {
    static let id = "t.number"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [
        InputSpec("value", .int, default: .int(0), range: 0...100),
        InputSpec("scale", .float, default: .float(1)),
    ], outputs: [OutputSpec("value", .int), OutputSpec("label", .text)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { Outputs() }
}

struct Describe: NodeType {
    static let id = "t.describe"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [
        InputSpec("text", .text),
        InputSpec("mode", .text, default: .text("short"), choices: ["short", "long"]),
        InputSpec("count", .int, optional: true),
        InputSpec("flag", .bool, default: .bool(false)),
    ], outputs: [OutputSpec("text", .text)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { Outputs() }
}

struct Gather: NodeType {
    static let id = "t.gather"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("items", .list(.text)), InputSpec("weights", .list(.float), default: .list(elementType: .float, []))],
                                   outputs: [OutputSpec("text", .text)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { Outputs() }
}

struct Picture: NodeType {
    static let id = "t.picture"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("prompt", .text, default: .text(""))], outputs: [OutputSpec("image", .image)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { Outputs() }
}

struct Save: NodeType {
    static let id = "t.save"
    static let version = 1
    static let schema = NodeSchema(summary: "", inputs: [InputSpec("text", .text, optional: true), InputSpec("image", .image, optional: true),
                                                         InputSpec("path", .text, default: .text("out.txt"), role: .outputFile)],
                                   outputs: [], isSink: true)
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs { Outputs() }
}

func registry() -> NodeRegistry {
    let r = NodeRegistry()
    try! r.register(pack: PackInfo(id: "t", version: "1"), [Number.self, Describe.self, Gather.self, Picture.self, Save.self])
    return r
}

/// Compiles and returns all diagnostics (errors thrown or warnings returned).
func diagnose(_ yaml: String, sets: [String] = []) -> [Diagnostic] {
    do {
        let wf = try Compiler.compile(source: yaml, file: "wf.yaml", registry: registry(), overrides: try Overrides(sets))
        return wf.warnings
    } catch {
        return error.diagnostics
    }
}

func expectDiag(_ diags: [Diagnostic], _ code: DiagnosticCode, line: Int, column: Int, node: String? = nil, port: String? = nil,
                sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    let match = diags.first { $0.code == code && $0.location.line == line && $0.location.column == column }
    #expect(match != nil, "expected \(code.rawValue) at \(line):\(column), got:\n\(diags.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
    if let match {
        if let node { #expect(match.node == node, sourceLocation: sourceLocation) }
        if let port { #expect(match.port == port, sourceLocation: sourceLocation) }
    }
}

@Suite struct CompileTests {
    @Test func validWorkflowCompilesInTopologicalOrder() throws {
        let yaml = """
        version: 1
        name: demo
        params:
          n: 7
        nodes:
          save:
            type: t.save
            with: { text: $d.text }
          d:
            type: t.describe
            with: { text: $num.label, mode: long }
          num:
            type: t.number
            with: { value: "${n}" }
        """
        let wf = try Compiler.compile(source: yaml, file: "wf.yaml", registry: registry())
        #expect(wf.nodes.map(\.id) == ["num", "d", "save"])
        #expect(wf.sinks == [2])
        #expect(wf.warnings.isEmpty)
        guard case .value(.int(7)) = wf.nodes[0].inputs["value"] else {
            Issue.record("whole-scalar ${n} should keep the int type")
            return
        }
        // Defaults are filled in.
        guard case .value(.float(1)) = wf.nodes[0].inputs["scale"] else {
            Issue.record("default not applied")
            return
        }
    }

    @Test func yamlSyntaxErrorHasLineAndColumn() {
        let d = diagnose("version: 1\nnodes:\n  a:\n    type: [t.save\n")
        #expect(d.count == 1)
        expectDiag(d, .yamlSyntax, line: 5, column: 1)
        #expect(d.first?.message.contains("4:11") == true, "names where the unclosed list starts")
    }

    @Test func duplicateNodeIDPointsAtTheRepeat() {
        let d = diagnose("version: 1\nnodes:\n  a:\n    type: t.save\n  a:\n    type: t.save\n")
        expectDiag(d, .duplicateKey, line: 5, column: 3)
        #expect(d.first?.message.contains("first at 3:3") == true)
    }

    @Test func badParamsAndBadDocumentShape() {
        let d = diagnose("version: 1\nparams:\n  \"bad name\": 1\n  m: {a: 1}\nnodes: [1, 2]\n")
        expectDiag(d, .badParam, line: 3, column: 3)
        expectDiag(d, .badParam, line: 4, column: 6)
        expectDiag(d, .badDocument, line: 5, column: 8)
        let top = diagnose("- just\n- a list\n")
        expectDiag(top, .badDocument, line: 1, column: 1)
    }

    @Test func unknownNodeTypeSuggests() {
        let d = diagnose("""
        version: 1
        nodes:
          s:
            type: t.sav
        """)
        expectDiag(d, .unknownNodeType, line: 4, column: 11, node: "s")
        #expect(d.first { $0.code == .unknownNodeType }?.message.contains("t.save") == true)
    }

    @Test func unknownAndMissingInputs() {
        let d = diagnose("""
        version: 1
        nodes:
          d:
            type: t.describe
            with:
              txt: hello
          s:
            type: t.save
            with: { text: $d.text }
        """)
        expectDiag(d, .unknownInput, line: 6, column: 7, node: "d", port: "txt")
        expectDiag(d, .missingInput, line: 3, column: 3, node: "d", port: "text")
    }

    @Test func linksToUnknownNodeAndOutput() {
        let d = diagnose("""
        version: 1
        nodes:
          n:
            type: t.number
          s:
            type: t.save
            with: { text: $nn.label }
          s2:
            type: t.save
            with: { text: $n.labels }
        """)
        expectDiag(d, .unknownNode, line: 7, column: 19, node: "s", port: "text")
        expectDiag(d, .unknownOutput, line: 10, column: 19, node: "s2", port: "text")
    }

    @Test func typeMismatchOnLink() {
        let d = diagnose("""
        version: 1
        nodes:
          n:
            type: t.number
          s:
            type: t.save
            with:
              text: $n.value
        """)
        expectDiag(d, .typeMismatch, line: 8, column: 13, node: "s", port: "text")
    }

    @Test func literalTypeRangeAndChoices() {
        let d = diagnose("""
        version: 1
        nodes:
          n:
            type: t.number
            with: { value: many, scale: 2 }
          m:
            type: t.number
            with: { value: 101 }
          d:
            type: t.describe
            with: { text: $n.label, mode: medium, flag: maybe }
          p:
            type: t.picture
          s:
            type: t.save
            with: { text: $d.text, image: "not an image" }
          s2:
            type: t.save
            with: { text: $m.label }
        """)
        expectDiag(d, .literalType, line: 5, column: 20, node: "n", port: "value")
        expectDiag(d, .valueOutOfRange, line: 8, column: 20, node: "m", port: "value")
        expectDiag(d, .valueNotInList, line: 11, column: 35, node: "d", port: "mode")
        expectDiag(d, .literalType, line: 11, column: 49, node: "d", port: "flag")
        expectDiag(d, .literalType, line: 16, column: 35, node: "s", port: "image")
        // Every error at once, plus the unused node as a warning.
        #expect(d.filter { $0.severity == .error }.count == 5)
        expectDiag(d, .unusedNode, line: 12, column: 3, node: "p")
    }

    @Test func unknownParamInInterpolationPointsInsideTheString() {
        let d = diagnose("""
        version: 1
        params: { subject: cat }
        nodes:
          d:
            type: t.describe
            with: { text: "a ${subjct} on a mat" }
          s:
            type: t.save
            with: { text: $d.text }
        """)
        // The column of '${' inside the quoted scalar that starts at column 19.
        expectDiag(d, .unknownParam, line: 6, column: 22, node: "d", port: "text")
        #expect(d.first { $0.code == .unknownParam }?.message.contains("subject") == true)
    }

    @Test func cycleIsReportedWithItsPath() {
        let d = diagnose("""
        version: 1
        nodes:
          a:
            type: t.describe
            with: { text: $b.text }
          b:
            type: t.describe
            with: { text: $a.text }
          s:
            type: t.save
            with: { text: $b.text }
        """)
        let c = d.first { $0.code == .cycle }
        #expect(c != nil)
        #expect(c?.message.contains("a -> b -> a") == true || c?.message.contains("b -> a -> b") == true)
        #expect(c?.location.line == 3 || c?.location.line == 6)
    }

    @Test func selfLinkIsACycle() {
        let d = diagnose("version: 1\nnodes:\n  a:\n    type: t.describe\n    with: { text: $a.text }\n  s:\n    type: t.save\n    with: { text: $a.text }\n")
        expectDiag(d, .cycle, line: 5, column: 19, node: "a", port: "text")
    }

    @Test func documentShapeErrors() {
        let d = diagnose("""
        version: 2
        nodez: {}
        nodes:
          "9bad":
            type: t.save
          ok:
            typ: t.save
          s:
            type: t.save
            with: { text: $ok }
        """)
        expectDiag(d, .unsupportedVersion, line: 1, column: 10)
        expectDiag(d, .unknownKey, line: 2, column: 1)
        #expect(d.first { $0.code == .unknownKey && $0.location.line == 2 }?.message.contains("nodes") == true)
        expectDiag(d, .badNodeID, line: 4, column: 3)
        expectDiag(d, .unknownKey, line: 7, column: 5, node: "ok")
        expectDiag(d, .missingType, line: 6, column: 3, node: "ok")
        expectDiag(d, .badLink, line: 10, column: 19, node: "s", port: "text")
    }

    @Test func noSinkIsAnError() {
        let d = diagnose("version: 1\nnodes:\n  n:\n    type: t.number\n")
        #expect(d.contains { $0.code == .noSink && $0.severity == .error })
    }

    @Test func missingVersionWarns() throws {
        let d = diagnose("nodes:\n  s:\n    type: t.save\n")
        #expect(d.count == 1)
        #expect(d[0].code == .missingVersion && d[0].severity == .warning)
    }

    @Test func overridesSetParamsAndInputs() throws {
        let yaml = """
        version: 1
        params: { n: 5, subject: cat }
        nodes:
          num:
            type: t.number
            with: { value: "${n}" }
          d:
            type: t.describe
            with: { text: "a ${subject}" }
          s:
            type: t.save
            with: { text: $d.text }
          s2:
            type: t.save
            with: { text: $num.label }
        """
        let wf = try Compiler.compile(source: yaml, file: "wf.yaml", registry: registry(),
                                      overrides: try Overrides(["n=9", "subject=dog", "d.mode=long"]))
        let num = wf.nodes[wf.index(of: "num")!]
        guard case .value(.int(9)) = num.inputs["value"] else { Issue.record("param override"); return }
        let d = wf.nodes[wf.index(of: "d")!]
        guard case .value(.text("a dog")) = d.inputs["text"], case .value(.text("long")) = d.inputs["mode"] else {
            Issue.record("text interpolation or input override"); return
        }
        #expect(wf.params.first { $0.name == "n" }?.value == "9")

        let bad = diagnose(yaml, sets: ["m=1", "n=abc", "zz.mode=long"])
        #expect(bad.contains { $0.code == .unknownParam && $0.location.file == "--set m=1" })
        #expect(bad.contains { $0.code == .literalType && $0.location.file == "--set n=abc" && $0.node == "num" })
        #expect(bad.contains { $0.code == .badOverride && $0.location.file == "--set zz.mode=long" })
    }

    @Test func listsFromLiteralsLinksAndParams() throws {
        let yaml = """
        version: 1
        params:
          words: [red, green]
        nodes:
          d:
            type: t.describe
            with: { text: hi }
          g:
            type: t.gather
            with: { items: [$d.text, literal, "$$5"], weights: [1, 2.5] }
          g2:
            type: t.gather
            with: { items: "${words}" }
          g3:
            type: t.gather
            with: { items: $d.text }
          s:
            type: t.save
            with: { text: $g.text }
          s2:
            type: t.save
            with: { text: $g2.text }
          s3:
            type: t.save
            with: { text: $g3.text }
        """
        let wf = try Compiler.compile(source: yaml, file: "wf.yaml", registry: registry())
        let g = wf.nodes[wf.index(of: "g")!]
        guard case .list(.text, let items)? = g.inputs["items"], items.count == 3,
              case .link = items[0], case .value(.text("literal")) = items[1], case .value(.text("$5")) = items[2] else {
            Issue.record("mixed list: \(String(describing: g.inputs["items"]))"); return
        }
        guard case .list(.float, let w)? = g.inputs["weights"], case .value(.float(1)) = w[0] else {
            Issue.record("int widened to float in list"); return
        }
        let g2 = wf.nodes[wf.index(of: "g2")!]
        guard case .list(.text, let words)? = g2.inputs["items"], words.count == 2 else { Issue.record("list param"); return }
        let g3 = wf.nodes[wf.index(of: "g3")!]
        guard case .list(.text, let one)? = g3.inputs["items"], one.count == 1, case .link = one[0] else { Issue.record("T into [T]"); return }
    }

    @Test func escapedDollarAndBuiltinName() throws {
        let yaml = """
        version: 1
        name: wfname
        nodes:
          d:
            type: t.describe
            with: { text: "cost $$5 for ${name} $${literal}" }
          s:
            type: t.save
            with: { text: $d.text, path: "out/${name}.txt" }
        """
        let wf = try Compiler.compile(source: yaml, file: "wf.yaml", registry: registry())
        guard case .value(.text(let t))? = wf.nodes[wf.index(of: "d")!].inputs["text"] else { Issue.record("no text"); return }
        #expect(t == "cost $$5 for wfname ${literal}")
        guard case .value(.text("out/wfname.txt"))? = wf.nodes[wf.index(of: "s")!].inputs["path"] else { Issue.record("path"); return }
    }

    @Test func unusedNodesArePrunedAndWarned() throws {
        let yaml = """
        version: 1
        nodes:
          a: { type: t.number }
          b: { type: t.number }
          s:
            type: t.save
            with: { text: $a.label }
        """
        let wf = try Compiler.compile(source: yaml, file: "wf.yaml", registry: registry())
        #expect(wf.nodes.map(\.id) == ["a", "s"])
        #expect(wf.unused == ["b"])
        #expect(wf.warnings.contains { $0.code == .unusedNode && $0.node == "b" && $0.location.line == 4 })
    }

    @Test func unreadableFile() {
        do {
            _ = try Compiler.load(path: "/nonexistent/wf.yaml", registry: registry())
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.first?.code == .fileUnreadable)
            #expect(error.description.contains("/nonexistent/wf.yaml"))
        }
    }

    @Test func diagnosticFormat() {
        let d = Diagnostic(.error, .missingInput, "needs it", at: SourceLocation(file: "a.yaml", line: 3, column: 5), node: "n", port: "p")
        #expect(d.description == "a.yaml:3:5: error[missing_input]: node 'n' port 'p': needs it")
    }
}

@Suite struct ScalarTests {
    @Test func plainScalarsFollowTheYAML12CoreSchema() {
        let cases: [(String, YValue.ScalarKind)] = [
            ("42", .int), ("-7", .int), ("+3", .int), ("0x1F", .int), ("0o17", .int), ("0o19", .string),
            ("3.5", .float), ("-.5", .float), ("1e3", .float), ("2.", .float), ("1.5E-2", .float), (".inf", .float), ("-.Inf", .float), (".nan", .float),
            ("true", .bool), ("False", .bool), ("yes", .string), ("no", .string), ("on", .string),
            ("~", .null), ("null", .null), ("", .null),
            ("1e", .string), ("e3", .string), (".", .string), ("-", .string), ("12px", .string), ("1_000", .string), ("a husky", .string),
        ]
        for (s, kind) in cases {
            #expect(YValue.classify(s) == kind, "'\(s)'")
        }
    }

    @Test func quotedScalarsAreAlwaysText() throws {
        let wf = try Compiler.compile(source: """
        version: 1
        nodes:
          d: { type: t.describe, with: { text: "42" } }
          s: { type: t.save, with: { text: $d.text } }
        """, file: "wf.yaml", registry: registry())
        guard case .value(.text("42"))? = wf.nodes[wf.index(of: "d")!].inputs["text"] else { Issue.record("quoted"); return }
        // A quoted number still converts for a number port (it is how "${param}" splices arrive).
        let wf2 = try Compiler.compile(source: """
        version: 1
        nodes:
          n: { type: t.number, with: { value: "42" } }
          s: { type: t.save, with: { text: $n.label } }
        """, file: "wf.yaml", registry: registry())
        guard case .value(.int(42))? = wf2.nodes[wf2.index(of: "n")!].inputs["value"] else { Issue.record("quoted int"); return }
    }
}
