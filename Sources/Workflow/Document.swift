import Foundation
import NodeKit
import Yams

/// A YAML value with the location it was written at. The workflow IR is built from these so
/// every later error can point at `file:line:column`.
public indirect enum YValue: Sendable {
    public enum ScalarKind: String, Sendable {
        case string, int, float, bool, null
    }
    case scalar(String, ScalarKind, SourceLocation, quoted: Bool)
    case sequence([YValue], SourceLocation)
    case mapping([(key: String, keyLocation: SourceLocation, value: YValue)], SourceLocation)

    public var location: SourceLocation {
        switch self {
        case .scalar(_, _, let l, _), .sequence(_, let l), .mapping(_, let l): l
        }
    }

    var kindName: String {
        switch self {
        case .scalar: "a scalar"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }

    /// The scalar's text if this is a scalar.
    public var scalarText: String? {
        if case .scalar(let s, _, _, _) = self { return s }
        return nil
    }
}

/// One input of a node as written: a link to another node's output, a literal, or a list of either.
public indirect enum InputExpr: Sendable {
    case link(node: String, output: String, SourceLocation)
    case literal(YValue)
    case list([InputExpr], SourceLocation)

    public var location: SourceLocation {
        switch self {
        case .link(_, _, let l), .list(_, let l): l
        case .literal(let v): v.location
        }
    }
}

/// A node as written in the file.
public struct NodeDecl: Sendable {
    public var id: String
    public var type: String
    public var location: SourceLocation
    public var typeLocation: SourceLocation
    /// Inputs in file order.
    public var inputs: [(name: String, location: SourceLocation, expr: InputExpr)]
}

/// A workflow file parsed into its parts, before params are applied and before validation.
public struct WorkflowDocument: Sendable {
    public var file: String
    public var source: String
    public var version: Int?
    public var name: String
    public var description: String
    /// Params in file order with their default values.
    public var params: [(name: String, value: YValue)]
    public var nodes: [NodeDecl]

    /// Parses workflow YAML. Problems found are appended to `diagnostics`; the document holds
    /// everything that could be read, so validation can report further problems in one pass.
    public static func parse(source: String, file: String, diagnostics: inout [Diagnostic]) -> WorkflowDocument {
        var doc = WorkflowDocument(file: file, source: source, version: nil,
                                   name: URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent,
                                   description: "", params: [], nodes: [])
        let root: YValue
        do {
            // The basic resolver skips Yams' per-scalar regular expressions; scalars are
            // classified below by the YAML 1.2 core schema (so `no` and `on` stay text).
            guard let node = try Yams.compose(yaml: source, .basic) else {
                diagnostics.append(Diagnostic(.error, .badDocument, "the file is empty; a workflow needs 'version' and 'nodes'",
                                              at: SourceLocation(file: file, line: 1, column: 1)))
                return doc
            }
            root = YValue(node, file: file)
        } catch let error as YamlError {
            diagnostics.append(yamlDiagnostic(error, file: file))
            return doc
        } catch {
            diagnostics.append(Diagnostic(.error, .yamlSyntax, "\(error)", at: SourceLocation(file: file, line: 1, column: 1)))
            return doc
        }

        guard case .mapping(let top, _) = root else {
            diagnostics.append(Diagnostic(.error, .badDocument, "a workflow is a mapping with 'version', 'name', 'params' and 'nodes'; found \(root.kindName)",
                                          at: root.location))
            return doc
        }
        let known = ["version", "name", "description", "params", "nodes"]
        var sawNodes = false
        for (key, keyLoc, value) in top {
            switch key {
            case "version":
                if case .scalar(let s, .int, _, _) = value, let v = Int(s) {
                    doc.version = v
                    if v != 1 {
                        diagnostics.append(Diagnostic(.error, .unsupportedVersion, "workflow format version \(v) is not supported; this llmga reads version 1", at: value.location))
                    }
                } else {
                    diagnostics.append(Diagnostic(.error, .unsupportedVersion, "'version' must be the integer 1", at: value.location))
                }
            case "name":
                if let s = value.scalarText { doc.name = s } else {
                    diagnostics.append(Diagnostic(.error, .badDocument, "'name' must be text", at: value.location))
                }
            case "description":
                if let s = value.scalarText { doc.description = s } else {
                    diagnostics.append(Diagnostic(.error, .badDocument, "'description' must be text", at: value.location))
                }
            case "params":
                switch value {
                case .mapping(let pairs, _):
                    for (k, kLoc, v) in pairs {
                        if !isIdentifier(k) {
                            diagnostics.append(Diagnostic(.error, .badParam, "param name '\(k)' must be letters, digits, '_' or '-'", at: kLoc))
                        } else if case .mapping = v {
                            diagnostics.append(Diagnostic(.error, .badParam, "param '\(k)' must be a scalar or a list, not a mapping", at: v.location))
                        } else {
                            doc.params.append((k, v))
                        }
                    }
                case .scalar(_, .null, _, _): break
                default:
                    diagnostics.append(Diagnostic(.error, .badDocument, "'params' must be a mapping of name: value", at: value.location))
                }
            case "nodes":
                sawNodes = true
                parseNodes(value, into: &doc, diagnostics: &diagnostics)
            default:
                diagnostics.append(Diagnostic(.error, .unknownKey, "unknown top-level key '\(key)'\(hint(key, known)); expected one of \(known.joined(separator: ", "))", at: keyLoc))
            }
        }
        if doc.version == nil && !diagnostics.contains(where: { $0.code == .unsupportedVersion }) {
            diagnostics.append(Diagnostic(.warning, .missingVersion, "no 'version'; assuming version 1 (write 'version: 1')", at: root.location))
        }
        if !sawNodes {
            diagnostics.append(Diagnostic(.error, .badDocument, "the workflow has no 'nodes'", at: root.location))
        }
        return doc
    }

    private static func parseNodes(_ value: YValue, into doc: inout WorkflowDocument, diagnostics: inout [Diagnostic]) {
        guard case .mapping(let pairs, _) = value else {
            diagnostics.append(Diagnostic(.error, .badDocument, "'nodes' must be a mapping of node id to node; found \(value.kindName)", at: value.location))
            return
        }
        for (id, idLoc, body) in pairs {
            guard isIdentifier(id) else {
                diagnostics.append(Diagnostic(.error, .badNodeID, "node id '\(id)' must start with a letter or '_' and use letters, digits, '_' or '-'", at: idLoc, node: id))
                continue
            }
            guard case .mapping(let fields, let bodyLoc) = body else {
                diagnostics.append(Diagnostic(.error, .badDocument, "node '\(id)' must be a mapping with 'type' and 'with'; found \(body.kindName)", at: body.location, node: id))
                continue
            }
            var decl = NodeDecl(id: id, type: "", location: idLoc, typeLocation: bodyLoc, inputs: [])
            var sawType = false
            for (key, keyLoc, v) in fields {
                switch key {
                case "type":
                    if case .scalar(let s, _, let l, _) = v, !s.isEmpty {
                        decl.type = s
                        decl.typeLocation = l
                        sawType = true
                    } else {
                        diagnostics.append(Diagnostic(.error, .missingType, "'type' must name a node type", at: v.location, node: id))
                        sawType = true
                    }
                case "with":
                    switch v {
                    case .mapping(let inputs, _):
                        for (name, nameLoc, expr) in inputs {
                            decl.inputs.append((name, nameLoc, inputExpr(expr, node: id, port: name, diagnostics: &diagnostics)))
                        }
                    case .scalar(_, .null, _, _): break
                    default:
                        diagnostics.append(Diagnostic(.error, .badDocument, "'with' must be a mapping of input name to value", at: v.location, node: id))
                    }
                default:
                    diagnostics.append(Diagnostic(.error, .unknownKey, "unknown key '\(key)' in node '\(id)'\(hint(key, ["type", "with"])); a node has 'type' and 'with'", at: keyLoc, node: id))
                }
            }
            if !sawType {
                diagnostics.append(Diagnostic(.error, .missingType, "node '\(id)' has no 'type'", at: idLoc, node: id))
            }
            doc.nodes.append(decl)
        }
    }

    /// `$node.output` is a link; `$$` at the start escapes a literal `$`; anything else is a literal.
    static func inputExpr(_ v: YValue, node: String, port: String, diagnostics: inout [Diagnostic]) -> InputExpr {
        switch v {
        case .sequence(let items, let loc):
            return .list(items.map { inputExpr($0, node: node, port: port, diagnostics: &diagnostics) }, loc)
        case .scalar(let s, .string, let loc, let quoted) where s.hasPrefix("$"):
            if s.hasPrefix("$$") {
                return .literal(.scalar(String(s.dropFirst()), .string, loc, quoted: quoted))
            }
            if s.hasPrefix("${") { return .literal(v) }
            let body = s.dropFirst()
            let parts = body.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 2, isIdentifier(String(parts[0])), isIdentifier(String(parts[1])) {
                return .link(node: String(parts[0]), output: String(parts[1]), loc)
            }
            diagnostics.append(Diagnostic(.error, .badLink, "'\(s)' is not a link; links are written $node.output (write $$ for a literal '$')", at: loc, node: node, port: port))
            return .literal(v)
        default:
            return .literal(v)
        }
    }

    static func yamlDiagnostic(_ error: YamlError, file: String) -> Diagnostic {
        func loc(_ m: Mark) -> SourceLocation { SourceLocation(file: file, line: m.line, column: m.column) }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _), .composer(let context, let problem, let mark, _):
            var msg = problem
            if let c = context { msg += " (\(c.text) at \(c.mark.line):\(c.mark.column))" }
            return Diagnostic(.error, .yamlSyntax, msg, at: loc(mark))
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams marks the first occurrence; point at the repeat (same indentation, later line).
            let first = context.mark
            let lines = context.text.components(separatedBy: "\n")
            var at = loc(first)
            if let key = duplicates.first, first.line >= 1 {
                let indent = String(repeating: " ", count: max(0, first.column - 1))
                for n in first.line..<lines.count {
                    let l = lines[n]
                    if l.hasPrefix(indent + key + ":") || l.hasPrefix(indent + "\"" + key + "\":") {
                        at = SourceLocation(file: file, line: n + 1, column: first.column)
                        break
                    }
                }
            }
            return Diagnostic(.error, .duplicateKey, "\(duplicates.map { "'\($0)'" }.joined(separator: ", ")) appears twice in one mapping (first at \(first.line):\(first.column))", at: at)
        case .reader(let problem, let offset, _, _):
            return Diagnostic(.error, .yamlSyntax, "\(problem)\(offset.map { " at byte \($0)" } ?? "")", at: SourceLocation(file: file, line: 1, column: 1))
        default:
            return Diagnostic(.error, .yamlSyntax, "\(error)", at: SourceLocation(file: file, line: 1, column: 1))
        }
    }
}

func isIdentifier(_ s: String) -> Bool {
    guard let f = s.unicodeScalars.first, f == "_" || (f.properties.isAlphabetic && f.isASCII) else { return false }
    return s.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" }
}

/// ", did you mean 'x'?" when a close candidate exists.
func hint(_ word: String, _ candidates: [String]) -> String {
    let close = candidates.map { ($0, editDistance($0, word)) }.filter { $0.1 <= max(2, word.count / 3) }.min { $0.1 < $1.1 }
    return close.map { " (did you mean '\($0.0)'?)" } ?? ""
}

extension YValue {
    init(_ node: Node, file: String) {
        func loc(_ m: Mark?) -> SourceLocation { SourceLocation(file: file, line: m?.line ?? 0, column: m?.column ?? 0) }
        switch node {
        case .scalar(let s):
            let quoted = s.style == .singleQuoted || s.style == .doubleQuoted || s.style == .literal || s.style == .folded
            let kind: ScalarKind = quoted || s.style != .plain ? .string : YValue.classify(s.string)
            self = .scalar(s.string, kind, loc(s.mark), quoted: quoted)
        case .sequence(let seq):
            self = .sequence(seq.map { YValue($0, file: file) }, loc(seq.mark))
        case .mapping(let map):
            self = .mapping(map.map { pair in
                (key: pair.key.string ?? String(describing: pair.key), keyLocation: loc(pair.key.mark), value: YValue(pair.value, file: file))
            }, loc(map.mark))
        case .alias(let a):
            self = .scalar("*alias", .string, loc(a.mark), quoted: false)
        }
    }
}

extension YValue {
    /// The YAML 1.2 core schema's resolution of a plain scalar.
    static func classify(_ s: String) -> ScalarKind {
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE", "false", "False", "FALSE": return .bool
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN": return .float
        default: break
        }
        let u = Array(s.utf8)
        var i = 0
        if u[0] == UInt8(ascii: "-") || u[0] == UInt8(ascii: "+") { i = 1 }
        func digits(_ from: Int, _ ok: (UInt8) -> Bool) -> Int {
            var j = from
            while j < u.count, ok(u[j]) { j += 1 }
            return j
        }
        let isDigit = { (c: UInt8) in c >= 48 && c <= 57 }
        if i == 0, u.count > 2, u[0] == UInt8(ascii: "0"), u[1] == UInt8(ascii: "x") || u[1] == UInt8(ascii: "o") {
            let hex = u[1] == UInt8(ascii: "x")
            let end = digits(2) { isDigit($0) && (hex || $0 < 56) || (hex && (($0 | 0x20) >= 97 && ($0 | 0x20) <= 102)) }
            return end == u.count ? .int : .string
        }
        let intEnd = digits(i, isDigit)
        if intEnd == u.count && intEnd > i { return .int }
        // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
        var j = intEnd
        var mantissa = intEnd > i
        if j < u.count, u[j] == UInt8(ascii: ".") {
            let f = digits(j + 1, isDigit)
            mantissa = mantissa || f > j + 1
            j = f
        }
        guard mantissa else { return .string }
        if j < u.count, u[j] == UInt8(ascii: "e") || u[j] == UInt8(ascii: "E") {
            var k = j + 1
            if k < u.count, u[k] == UInt8(ascii: "-") || u[k] == UInt8(ascii: "+") { k += 1 }
            let e = digits(k, isDigit)
            guard e > k else { return .string }
            j = e
        }
        return j == u.count ? .float : .string
    }
}
