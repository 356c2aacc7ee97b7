import Foundation
import NodeKit

/// `text.template`
public struct TextTemplate: NodeType {
    public static let id = "text.template"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Fill {0}, {1}, ... in a template with the given values.",
        inputs: [
            InputSpec("template", .text, doc: "Text with {0}, {1}, ... placeholders; write {{ and }} for literal braces."),
            InputSpec("values", .list(.text), doc: "The values for {0}, {1}, ... in order.", default: .list(elementType: .text, [])),
        ],
        outputs: [OutputSpec("text", .text, doc: "The filled-in text.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let template = try inputs.text("template")
        var values: [String] = []
        for (i, v) in try inputs.list("values").enumerated() {
            guard case .text(let s) = v else { throw NodeError("item \(i) is \(v.portType), not text", port: "values") }
            values.append(s)
        }
        return Outputs(["text": .text(try Self.render(template, values))])
    }

    static func render(_ template: String, _ values: [String]) throws -> String {
        var out = ""
        let chars = Array(template)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "{" {
                if i + 1 < chars.count, chars[i + 1] == "{" {
                    out.append("{")
                    i += 2
                    continue
                }
                guard let close = chars[(i + 1)...].firstIndex(of: "}") else {
                    throw NodeError("unclosed '{' at character \(i + 1)", port: "template")
                }
                let name = String(chars[(i + 1)..<close])
                guard !name.isEmpty, name.allSatisfy(\.isASCII), name.allSatisfy(\.isNumber), let index = Int(name) else {
                    throw NodeError("placeholder '{\(name)}' at character \(i + 1) must be a number like {0}", port: "template")
                }
                guard index < values.count else {
                    throw NodeError("placeholder {\(index)} has no value (\(values.count) value\(values.count == 1 ? "" : "s") given)",
                                    port: "template")
                }
                out += values[index]
                i = close + 1
            } else if c == "}" {
                guard i + 1 < chars.count, chars[i + 1] == "}" else {
                    throw NodeError("single '}' at character \(i + 1): write '}}' for a literal brace", port: "template")
                }
                out.append("}")
                i += 2
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }
}

/// `text.concat`
public struct TextConcat: NodeType {
    public static let id = "text.concat"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Join texts with a separator.",
        inputs: [
            InputSpec("items", .list(.text), doc: "The texts to join, in order."),
            InputSpec("separator", .text, doc: "Put between consecutive items.", default: .text(", ")),
            InputSpec("skip-empty", .bool, doc: "Leave out items that are empty or only whitespace.", default: .bool(true)),
        ],
        outputs: [OutputSpec("text", .text, doc: "The joined text.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        var items: [String] = []
        for (i, v) in try inputs.list("items").enumerated() {
            guard case .text(let s) = v else { throw NodeError("item \(i) is \(v.portType), not text", port: "items") }
            items.append(s)
        }
        if try inputs.bool("skip-empty") {
            items = items.filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        }
        return Outputs(["text": .text(items.joined(separator: try inputs.text("separator")))])
    }
}

/// `math.float`
public struct MathFloat: NodeType {
    public static let id = "math.float"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Arithmetic on two floats.",
        inputs: [
            InputSpec("a", .float, doc: "Left operand."),
            InputSpec("b", .float, doc: "Right operand.", default: .float(0)),
            InputSpec("op", .text, doc: "a + b, a - b, a * b, a / b, min, max, or a to the power b.",
                      default: .text("add"), choices: ["add", "sub", "mul", "div", "min", "max", "pow"]),
        ],
        outputs: [OutputSpec("result", .float, doc: "The result.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let a = try inputs.float("a"), b = try inputs.float("b")
        let op = try inputs.text("op")
        let r: Double
        switch op {
        case "add": r = a + b
        case "sub": r = a - b
        case "mul": r = a * b
        case "div":
            guard b != 0 else { throw NodeError("division by zero", port: "b") }
            r = a / b
        case "min": r = min(a, b)
        case "max": r = max(a, b)
        case "pow": r = Foundation.pow(a, b)
        default: throw NodeError("unknown operation '\(op)'", port: "op")
        }
        guard r.isFinite else {
            throw NodeError("\(op)(\(a), \(b)) is not a finite number", port: "op")
        }
        return Outputs(["result": .float(r)])
    }
}

/// `math.int`
public struct MathInt: NodeType {
    public static let id = "math.int"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Arithmetic on two integers (div and mod round towards negative infinity, as Python's // and %).",
        inputs: [
            InputSpec("a", .int, doc: "Left operand."),
            InputSpec("b", .int, doc: "Right operand.", default: .int(0)),
            InputSpec("op", .text, doc: "a + b, a - b, a * b, floor(a / b), min, max, a to the power b (b >= 0), or a mod b (sign of b).",
                      default: .text("add"), choices: ["add", "sub", "mul", "div", "min", "max", "pow", "mod"]),
        ],
        outputs: [OutputSpec("result", .int, doc: "The result.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let a = try inputs.int("a"), b = try inputs.int("b")
        let op = try inputs.text("op")
        func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> Int {
            guard !r.overflow else { throw NodeError("\(op)(\(a), \(b)) overflows a 64-bit integer", port: "op") }
            return r.partialValue
        }
        let r: Int
        switch op {
        case "add": r = try checked(a.addingReportingOverflow(b))
        case "sub": r = try checked(a.subtractingReportingOverflow(b))
        case "mul": r = try checked(a.multipliedReportingOverflow(by: b))
        case "div", "mod":
            guard b != 0 else { throw NodeError(op == "div" ? "division by zero" : "modulo by zero", port: "b") }
            if op == "mod" && b == -1 { r = 0; break } // Int.min % -1 would trap
            let q = try checked(a.dividedReportingOverflow(by: b))
            let rem = a - q * b // exact: |q * b| <= |a|
            // Floor semantics: adjust when the remainder's sign differs from b's.
            let adjust = rem != 0 && ((rem < 0) != (b < 0))
            r = op == "div" ? (adjust ? q - 1 : q) : (adjust ? rem + b : rem)
        case "min": r = min(a, b)
        case "max": r = max(a, b)
        case "pow":
            guard b >= 0 else { throw NodeError("negative exponent \(b) has no integer result", port: "b") }
            var result = 1, base = a, e = b
            while e > 0 {
                if e & 1 == 1 { result = try checked(result.multipliedReportingOverflow(by: base)) }
                e >>= 1
                if e > 0 { base = try checked(base.multipliedReportingOverflow(by: base)) }
            }
            r = result
        default: throw NodeError("unknown operation '\(op)'", port: "op")
        }
        return Outputs(["result": .int(r)])
    }
}

/// `text.save`: write text to a file (a generated prompt, a reply), atomically.
public struct TextSave: NodeType {
    public static let id = "text.save"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Save text to a UTF-8 file, atomically.",
        inputs: [
            InputSpec("text", .text, doc: "The text to write."),
            InputSpec("path", .text, doc: "Output file; missing folders are created. Relative paths resolve against the directory llmga runs in.",
                      role: .outputFile),
            InputSpec("newline", .bool, doc: "End the file with a newline if the text does not.", default: .bool(true)),
        ],
        outputs: [OutputSpec("path", .text, doc: "The absolute path written.")],
        isSink: true)

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        var text = try inputs.text("text")
        if try inputs.bool("newline"), !text.hasSuffix("\n") { text += "\n" }
        let url = context.resolvePath(try inputs.text("path")).standardizedFileURL
        do {
            try AtomicFile.write(to: url) { tmp in
                try Data(text.utf8).write(to: tmp)
                try context.checkCancellation()
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw NodeError("cannot write \(url.path): \(error.localizedDescription)", port: "path")
        }
        return Outputs(["path": .text(url.path)], writtenFiles: [url.path])
    }
}
