import Foundation
import NodeKit
import Yams

/// How a node input gets its value in a compiled workflow.
public indirect enum Binding: Sendable {
    /// A literal, already converted to the input's type and range-checked.
    case value(Value)
    /// The output `output` of `CompiledWorkflow.nodes[node]`.
    case link(node: Int, output: String)
    /// A list assembled from literals and links.
    case list(elementType: PortType, [Binding])
}

/// A node ready to evaluate: its registered type and a binding for every input it will see.
public struct CompiledNode: Sendable {
    public let id: String
    public let node: RegisteredNode
    /// Bindings for the inputs that have a value (given, or defaulted). Optional inputs the
    /// workflow left out are absent.
    public let inputs: [String: Binding]
    public let location: SourceLocation
}

/// A validated workflow: nodes in topological order, pruned to those that feed a sink.
public struct CompiledWorkflow: Sendable {
    public let file: String
    public let source: String
    public let name: String
    public let description: String
    /// Resolved params (defaults with `--set` applied), rendered as YAML scalars, in file order.
    public let params: [(name: String, value: String)]
    public let nodes: [CompiledNode]
    /// Indices of the sink nodes in `nodes`.
    public let sinks: [Int]
    /// Ids of declared nodes that feed no sink and will not run.
    public let unused: [String]
    /// Warnings found while compiling (errors are thrown).
    public let warnings: [Diagnostic]

    public func index(of id: String) -> Int? { nodes.firstIndex { $0.id == id } }
}

/// `--set` overrides from the command line: `name=value` sets a param; `node.port=value` sets
/// a node input directly. Values are read as YAML scalars (`7` is an int, `"7"` text).
public struct Overrides: Sendable {
    public struct Entry: Sendable {
        public var key: String
        public var value: YValue
        public var argument: String
    }
    public var entries: [Entry] = []

    public init() {}

    public init(_ arguments: [String]) throws(WorkflowError) {
        var diags: [Diagnostic] = []
        for arg in arguments {
            let loc = SourceLocation(file: "--set \(arg)", line: 0, column: 0)
            guard let eq = arg.firstIndex(of: "="), eq != arg.startIndex else {
                diags.append(Diagnostic(.error, .badOverride, "expected --set key=value", at: loc))
                continue
            }
            let key = String(arg[..<eq])
            let raw = String(arg[arg.index(after: eq)...])
            let value: YValue
            if raw.isEmpty {
                value = .scalar("", .string, loc, quoted: true)
            } else if let node = try? Yams.compose(yaml: raw) {
                value = Overrides.relocate(YValue(node, file: loc.file), to: loc)
            } else {
                value = .scalar(raw, .string, loc, quoted: true)
            }
            entries.append(Entry(key: key, value: value, argument: arg))
        }
        if !diags.isEmpty { throw WorkflowError(diags) }
    }

    static func relocate(_ v: YValue, to loc: SourceLocation) -> YValue {
        switch v {
        case .scalar(let s, let k, _, let q): .scalar(s, k, loc, quoted: q)
        case .sequence(let items, _): .sequence(items.map { relocate($0, to: loc) }, loc)
        case .mapping(let pairs, _): .mapping(pairs.map { ($0.key, loc, relocate($0.value, to: loc)) }, loc)
        }
    }
}

public enum Compiler {
    /// Reads, parses and validates a workflow file. Throws a `WorkflowError` with every problem found.
    public static func load(path: String, registry: NodeRegistry, overrides: Overrides = Overrides()) throws(WorkflowError) -> CompiledWorkflow {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw WorkflowError([Diagnostic(.error, .fileUnreadable, "cannot read the workflow: \(describeFileError(error, path: path))",
                                            at: SourceLocation(file: path, line: 0, column: 0))])
        }
        return try compile(source: source, file: path, registry: registry, overrides: overrides)
    }

    /// Parses and validates workflow YAML. Throws a `WorkflowError` listing every error (and the
    /// warnings) if any error is found; otherwise returns the compiled workflow with its warnings.
    public static func compile(source: String, file: String, registry: NodeRegistry,
                               overrides: Overrides = Overrides()) throws(WorkflowError) -> CompiledWorkflow {
        var diags: [Diagnostic] = []
        var doc = WorkflowDocument.parse(source: source, file: file, diagnostics: &diags)
        if diags.contains(where: { $0.code == .yamlSyntax || $0.code == .duplicateKey }) {
            throw WorkflowError(diags)
        }
        let params = resolveParams(&doc, overrides: overrides, diagnostics: &diags)
        var compiler = GraphCompiler(doc: doc, params: params, registry: registry)
        let result = compiler.run()
        diags += compiler.diagnostics
        if diags.contains(where: { $0.severity == .error }) {
            throw WorkflowError(diags)
        }
        return CompiledWorkflow(file: file, source: source, name: doc.name, description: doc.description,
                                params: doc.params.map { ($0.name, render($0.value)) },
                                nodes: result.nodes, sinks: result.sinks, unused: result.unused,
                                warnings: diags)
    }

    /// Applies `--set` overrides: params replace their defaults; `node.port` entries replace or
    /// add that node's input. Returns the param table used for interpolation.
    static func resolveParams(_ doc: inout WorkflowDocument, overrides: Overrides, diagnostics: inout [Diagnostic]) -> [String: YValue] {
        for o in overrides.entries {
            let loc = o.value.location
            if let dot = o.key.firstIndex(of: ".") {
                let nodeID = String(o.key[..<dot]), port = String(o.key[o.key.index(after: dot)...])
                guard let i = doc.nodes.firstIndex(where: { $0.id == nodeID }) else {
                    diagnostics.append(Diagnostic(.error, .badOverride, "no node '\(nodeID)' in the workflow\(hint(nodeID, doc.nodes.map(\.id)))", at: loc, node: nodeID, port: port))
                    continue
                }
                let expr = WorkflowDocument.inputExpr(o.value, node: nodeID, port: port, diagnostics: &diagnostics)
                if let j = doc.nodes[i].inputs.firstIndex(where: { $0.name == port }) {
                    doc.nodes[i].inputs[j].expr = expr
                    doc.nodes[i].inputs[j].location = loc
                } else {
                    doc.nodes[i].inputs.append((port, loc, expr))
                }
            } else if let i = doc.params.firstIndex(where: { $0.name == o.key }) {
                doc.params[i].value = o.value
            } else {
                diagnostics.append(Diagnostic(.error, .unknownParam, "the workflow has no param '\(o.key)'\(hint(o.key, doc.params.map(\.name)))\(doc.params.isEmpty ? "" : "; params: " + doc.params.map(\.name).joined(separator: ", "))", at: loc))
            }
        }
        var table: [String: YValue] = ["name": .scalar(doc.name, .string, SourceLocation(file: doc.file, line: 0, column: 0), quoted: true)]
        for p in doc.params { table[p.name] = p.value }
        return table
    }

    /// A param value as YAML text, for metadata and messages.
    static func render(_ v: YValue) -> String {
        switch v {
        case .scalar(let s, _, _, _): s
        case .sequence(let items, _): "[" + items.map(render).joined(separator: ", ") + "]"
        case .mapping(let pairs, _): "{" + pairs.map { "\($0.key): \(render($0.value))" }.joined(separator: ", ") + "}"
        }
    }
}

func describeFileError(_ error: Error, path: String) -> String {
    var isDir: ObjCBool = false
    if !FileManager.default.fileExists(atPath: path, isDirectory: &isDir) { return "no such file" }
    if isDir.boolValue { return "it is a directory" }
    if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
    return "not valid UTF-8 text"
}

/// Builds and checks the graph of one document.
struct GraphCompiler {
    let doc: WorkflowDocument
    let params: [String: YValue]
    let registry: NodeRegistry
    var diagnostics: [Diagnostic] = []

    init(doc: WorkflowDocument, params: [String: YValue], registry: NodeRegistry) {
        self.doc = doc
        self.params = params
        self.registry = registry
    }

    /// Per declared node: its type (if known) and its bindings, with links still by node id.
    private struct Pending {
        var decl: NodeDecl
        var node: RegisteredNode?
        var inputs: [String: PendingBinding] = [:]
        var deps: Set<String> = []
    }
    private indirect enum PendingBinding {
        case value(Value)
        case link(String, String)
        case list(PortType, [PendingBinding])
    }

    mutating func run() -> (nodes: [CompiledNode], sinks: [Int], unused: [String]) {
        var pending: [String: Pending] = [:]
        var order: [String] = []
        for decl in doc.nodes {
            var p = Pending(decl: decl)
            if !decl.type.isEmpty {
                if let n = registry.node(decl.type) {
                    p.node = n
                } else {
                    let sugg = registry.suggestions(for: decl.type)
                    diagnostics.append(Diagnostic(.error, .unknownNodeType,
                                                  "unknown node type '\(decl.type)'" + (sugg.isEmpty ? "; 'llmga nodes' lists the known types" : " (did you mean \(sugg.map { "'\($0)'" }.joined(separator: " or "))?)"),
                                                  at: decl.typeLocation, node: decl.id))
                }
            }
            pending[decl.id] = p
            order.append(decl.id)
        }
        let declared = Dictionary(doc.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })

        // Inputs: every given input is checked; required inputs must be present.
        for id in order {
            guard var p = pending[id] else { continue }
            for (name, nameLoc, expr) in p.decl.inputs {
                if let node = p.node {
                    guard let spec = node.schema.input(name) else {
                        let names = node.schema.inputs.map(\.name)
                        diagnostics.append(Diagnostic(.error, .unknownInput, "\(node.id) has no input '\(name)'\(hint(name, names)); its inputs are \(names.joined(separator: ", "))", at: nameLoc, node: id, port: name))
                        continue
                    }
                    if let b = bind(expr, to: spec.type, spec: spec, node: id, declared: declared, pending: pending) {
                        p.inputs[name] = b
                    }
                } else {
                    // Unknown type: still check links so all errors show at once.
                    _ = bind(expr, to: nil, spec: nil, node: id, declared: declared, pending: pending)
                }
                collectDeps(expr, into: &p.deps)
            }
            if let node = p.node {
                for spec in node.schema.inputs where p.inputs[spec.name] == nil {
                    let given = p.decl.inputs.contains { $0.name == spec.name }
                    if let d = spec.defaultValue {
                        if !given { p.inputs[spec.name] = .value(d) }
                    } else if spec.isRequired && !given {
                        diagnostics.append(Diagnostic(.error, .missingInput, "\(node.id) needs input '\(spec.name)' (\(spec.type))\(spec.doc.isEmpty ? "" : ": \(spec.doc)")", at: p.decl.location, node: id, port: spec.name))
                    }
                }
            }
            pending[id] = p
        }

        // Topological order (Kahn); what remains is on a cycle.
        var indegree: [String: Int] = [:]
        var consumers: [String: [String]] = [:]
        for id in order {
            let deps = pending[id]!.deps.filter { pending[$0] != nil }
            indegree[id] = deps.count
            for d in deps { consumers[d, default: []].append(id) }
        }
        var queue = order.filter { indegree[$0] == 0 }
        var topo: [String] = []
        var qi = 0
        while qi < queue.count {
            let id = queue[qi]; qi += 1
            topo.append(id)
            for c in consumers[id] ?? [] {
                indegree[c]! -= 1
                if indegree[c] == 0 { queue.append(c) }
            }
        }
        if topo.count < order.count {
            let onCycle = Set(order.filter { indegree[$0]! > 0 })
            let cycle = findCycle(in: onCycle, pending: pending, order: order)
            let first = pending[cycle[0]]!.decl
            diagnostics.append(Diagnostic(.error, .cycle, "the nodes form a cycle: \((cycle + [cycle[0]]).joined(separator: " -> "))", at: first.location, node: first.id))
            return ([], [], [])
        }

        // Prune to nodes that feed a sink.
        let sinkIDs = topo.filter { pending[$0]!.node?.schema.isSink == true }
        var needed = Set<String>()
        var stack = sinkIDs
        while let id = stack.popLast() {
            guard needed.insert(id).inserted else { continue }
            stack.append(contentsOf: pending[id]!.deps.filter { pending[$0] != nil })
        }
        let knownTypes = pending.values.allSatisfy { $0.node != nil || $0.decl.type.isEmpty }
        if sinkIDs.isEmpty && knownTypes && !order.isEmpty {
            let sinkTypes = registry.all.filter(\.schema.isSink).map(\.id)
            diagnostics.append(Diagnostic(.error, .noSink, "no node writes anything, so nothing would run; add an output node (\(sinkTypes.joined(separator: ", ")))", at: SourceLocation(file: doc.file, line: 1, column: 1)))
        }
        var unused: [String] = []
        for id in order where !needed.contains(id) && !sinkIDs.isEmpty {
            unused.append(id)
            diagnostics.append(Diagnostic(.warning, .unusedNode, "feeds no output node and will not run", at: pending[id]!.decl.location, node: id))
        }

        if diagnostics.contains(where: { $0.severity == .error }) { return ([], [], unused) }
        let kept = topo.filter { needed.contains($0) }
        let index = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        func finish(_ b: PendingBinding) -> Binding {
            switch b {
            case .value(let v): .value(v)
            case .link(let n, let o): .link(node: index[n]!, output: o)
            case .list(let t, let items): .list(elementType: t, items.map(finish))
            }
        }
        let nodes = kept.map { id in
            let p = pending[id]!
            return CompiledNode(id: id, node: p.node!, inputs: p.inputs.mapValues(finish), location: p.decl.location)
        }
        return (nodes, sinkIDs.map { index[$0]! }, unused)
    }

    private func collectDeps(_ e: InputExpr, into deps: inout Set<String>) {
        switch e {
        case .link(let n, _, _): deps.insert(n)
        case .list(let items, _): for i in items { collectDeps(i, into: &deps) }
        case .literal: break
        }
    }

    private func findCycle(in set: Set<String>, pending: [String: Pending], order: [String]) -> [String] {
        // Walk dependencies inside the cyclic set until a node repeats.
        var path: [String] = []
        var seen: [String: Int] = [:]
        var cur = order.first { set.contains($0) }!
        while seen[cur] == nil {
            seen[cur] = path.count
            path.append(cur)
            cur = pending[cur]!.deps.sorted().first { set.contains($0) }!
        }
        // path[seen[cur]...] is the cycle in dependency direction; show it in data-flow direction.
        return Array(path[seen[cur]!...].reversed())
    }

    /// Checks one input expression against the port type and converts literals.
    private mutating func bind(_ expr: InputExpr, to type: PortType?, spec: InputSpec?, node: String,
                               declared: [String: NodeDecl], pending: [String: Pending]) -> PendingBinding? {
        let port = spec?.name
        switch expr {
        case .link(let target, let output, let loc):
            guard declared[target] != nil else {
                diagnostics.append(Diagnostic(.error, .unknownNode, "links to '$\(target).\(output)' but there is no node '\(target)'\(hint(target, Array(declared.keys)))", at: loc, node: node, port: port))
                return nil
            }
            if target == node {
                diagnostics.append(Diagnostic(.error, .cycle, "the node links to its own output '$\(target).\(output)'", at: loc, node: node, port: port))
                return nil
            }
            guard let src = pending[target]?.node else { return nil }
            guard let out = src.schema.output(output) else {
                let names = src.schema.outputs.map(\.name)
                diagnostics.append(Diagnostic(.error, .unknownOutput, "\(src.id) ('\(target)') has no output '\(output)'\(hint(output, names)); its outputs are \(names.isEmpty ? "none" : names.joined(separator: ", "))", at: loc, node: node, port: port))
                return nil
            }
            guard let type else { return nil }
            if out.type.canFeed(type) { return .link(target, output) }
            if case .list(let el) = type, out.type.canFeed(el) { return .list(el, [.link(target, output)]) }
            diagnostics.append(Diagnostic(.error, .typeMismatch, "'$\(target).\(output)' is \(out.type) but this input takes \(type)", at: loc, node: node, port: port))
            return nil

        case .list(let items, let loc):
            guard let type else {
                for i in items { _ = bind(i, to: nil, spec: nil, node: node, declared: declared, pending: pending) }
                return nil
            }
            guard case .list(let el) = type else {
                diagnostics.append(Diagnostic(.error, .literalType, "takes \(type), not a list", at: loc, node: node, port: port))
                return nil
            }
            var out: [PendingBinding] = []
            var ok = true
            for i in items {
                if let b = bind(i, to: el, spec: spec, node: node, declared: declared, pending: pending) { out.append(b) } else { ok = false }
            }
            return ok ? .list(el, out) : nil

        case .literal(let raw):
            guard let v = interpolate(raw, node: node, port: port) else { return nil }
            guard let type, let spec else { return nil }
            if case .sequence = v {
                // A param holding a list, substituted whole.
                let items = WorkflowDocument.inputExprList(v)
                return bind(.list(items, v.location), to: type, spec: spec, node: node, declared: declared, pending: pending)
            }
            if case .list(let el) = type {
                guard let one = convert(v, to: el, spec: spec, node: node) else { return nil }
                return .list(el, [.value(one)])
            }
            guard let value = convert(v, to: type, spec: spec, node: node) else { return nil }
            return .value(value)
        }
    }

    /// Substitutes `${param}` references. A scalar that is exactly `${p}` takes p's value with its
    /// type (an int stays an int, a list stays a list); otherwise the text is spliced in.
    private mutating func interpolate(_ v: YValue, node: String, port: String?) -> YValue? {
        guard case .scalar(let s, let kind, let loc, let quoted) = v, kind == .string, s.contains("${") || s.contains("$${") else { return v }
        var out = ""
        var i = s.startIndex
        var wholeValue: YValue?
        var ok = true
        while i < s.endIndex {
            if s[i...].hasPrefix("$${") {
                out += "${"
                i = s.index(i, offsetBy: 3)
                continue
            }
            if s[i...].hasPrefix("${") {
                guard let close = s[i...].firstIndex(of: "}") else {
                    diagnostics.append(Diagnostic(.error, .unknownParam, "unterminated '${' in '\(s)'", at: column(loc, s, i, quoted), node: node, port: port))
                    return nil
                }
                let name = String(s[s.index(i, offsetBy: 2)..<close]).trimmingCharacters(in: .whitespaces)
                if let p = params[name] {
                    if i == s.startIndex && s.index(after: close) == s.endIndex {
                        wholeValue = p
                    }
                    out += Compiler.render(p)
                } else {
                    ok = false
                    let names = params.keys.sorted()
                    diagnostics.append(Diagnostic(.error, .unknownParam, "'${\(name)}' names no param\(hint(name, names)); params: \(names.joined(separator: ", "))", at: column(loc, s, i, quoted), node: node, port: port))
                }
                i = s.index(after: close)
                continue
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        guard ok else { return nil }
        if let w = wholeValue {
            // Point at the use site, unless the value came from the command line: then the
            // `--set` argument is what the user has to fix.
            return w.location.line == 0 && w.location.file.hasPrefix("--set") ? w : Overrides.relocate(w, to: loc)
        }
        return .scalar(out, .string, loc, quoted: quoted)
    }

    /// The column of `index` inside a single-line scalar starting at `loc`.
    private func column(_ loc: SourceLocation, _ s: String, _ index: String.Index, _ quoted: Bool) -> SourceLocation {
        guard loc.line > 0, !s.contains("\n") else { return loc }
        var l = loc
        l.column += s.unicodeScalars.distance(from: s.unicodeScalars.startIndex, to: index.samePosition(in: s.unicodeScalars) ?? s.unicodeScalars.startIndex) + (quoted ? 1 : 0)
        return l
    }

    /// Converts a literal to a value of `type`, checking range and choices.
    private mutating func convert(_ v: YValue, to type: PortType, spec: InputSpec, node: String) -> Value? {
        let loc = v.location
        func fail(_ msg: String) -> Value? {
            diagnostics.append(Diagnostic(.error, .literalType, msg, at: loc, node: node, port: spec.name))
            return nil
        }
        guard case .scalar(let s, let kind, _, _) = v else {
            return fail("takes \(type), not \(v.kindName)")
        }
        let value: Value
        switch type {
        case .text:
            if kind == .null { return fail("takes text; the value is empty (null). Quote it: \"\"") }
            value = .text(s)
        case .int:
            guard kind == .int || kind == .string, let i = parseInt(s) else {
                return fail("takes an integer, not '\(s)'")
            }
            value = .int(i)
        case .float:
            guard kind == .int || kind == .float || kind == .string, let d = parseFloat(s) else {
                return fail("takes a number, not '\(s)'")
            }
            value = .float(d)
        case .bool:
            switch s.lowercased() {
            case "true", "yes", "on": value = .bool(true)
            case "false", "no", "off": value = .bool(false)
            default: return fail("takes true or false, not '\(s)'")
            }
        case .image, .mask, .object:
            return fail("takes \(type), which comes from another node: link it as $node.output")
        case .list:
            return fail("takes \(type)")
        }
        switch spec.violation(of: value) {
        case .outOfRange(let message)?:
            diagnostics.append(Diagnostic(.error, .valueOutOfRange, message, at: loc, node: node, port: spec.name))
            return nil
        case .notAChoice(let t, let choices)?:
            diagnostics.append(Diagnostic(.error, .valueNotInList, "\(InputViolation.notAChoice(value: t, choices: choices).message)\(hint(t, choices))", at: loc, node: node, port: spec.name))
            return nil
        case nil:
            break
        }
        return value
    }
}

func parseInt(_ s: String) -> Int? {
    let t = s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
    if let i = Int(t) { return i }
    if t.hasPrefix("0x"), let i = Int(t.dropFirst(2), radix: 16) { return i }
    return nil
}

func parseFloat(_ s: String) -> Double? {
    let t = s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
    switch t.lowercased() {
    case ".inf", "+.inf": return .infinity
    case "-.inf": return -.infinity
    case ".nan": return .nan
    default: return Double(t)
    }
}

extension WorkflowDocument {
    /// The items of a sequence value as input expressions (for list params substituted whole).
    static func inputExprList(_ v: YValue) -> [InputExpr] {
        guard case .sequence(let items, _) = v else { return [.literal(v)] }
        return items.map { item in
            if case .sequence = item { return .list(inputExprList(item), item.location) }
            return .literal(item)
        }
    }
}
