/// Where something is in a workflow file (1-based line and column), or in a command-line
/// argument (`file` is then the argument, e.g. `--set seed=abc`, and line/column are 0).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String {
        line > 0 ? "\(file):\(line):\(column)" : file
    }
}

/// Stable, machine-readable error and warning codes. Their raw values never change once released.
public enum DiagnosticCode: String, Sendable, CaseIterable {
    // Reading the file.
    case fileUnreadable = "file_unreadable"
    case yamlSyntax = "yaml_syntax"
    case duplicateKey = "duplicate_key"
    // Document shape.
    case badDocument = "bad_document"
    case unknownKey = "unknown_key"
    case unsupportedVersion = "unsupported_version"
    case missingVersion = "missing_version"
    case badNodeID = "bad_node_id"
    case missingType = "missing_type"
    // Types and ports.
    case unknownNodeType = "unknown_node_type"
    case unknownInput = "unknown_input"
    case missingInput = "missing_input"
    case unknownNode = "unknown_node"
    case unknownOutput = "unknown_output"
    case typeMismatch = "type_mismatch"
    case literalType = "literal_type"
    case valueOutOfRange = "value_out_of_range"
    case valueNotInList = "value_not_in_list"
    case badLink = "bad_link"
    // Params.
    case unknownParam = "unknown_param"
    case badParam = "bad_param"
    case badOverride = "bad_override"
    // Graph.
    case cycle = "cycle"
    case noSink = "no_sink"
    case unusedNode = "unused_node"
}

public enum Severity: String, Sendable {
    case error, warning
}

/// One problem found in a workflow, with where it is and which node and port it concerns.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public var severity: Severity
    public var code: DiagnosticCode
    public var message: String
    public var location: SourceLocation
    public var node: String?
    public var port: String?

    public init(_ severity: Severity, _ code: DiagnosticCode, _ message: String, at location: SourceLocation,
                node: String? = nil, port: String? = nil) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
        self.node = node
        self.port = port
    }

    /// `file:line:col: error[code]: node 'id' port 'p': message`, the form compilers use, so
    /// editors and terminals can jump to it.
    public var description: String {
        var where_ = ""
        if let node { where_ += "node '\(node)'" }
        if let port { where_ += (where_.isEmpty ? "" : " ") + "port '\(port)'" }
        if !where_.isEmpty { where_ += ": " }
        return "\(location): \(severity.rawValue)[\(code.rawValue)]: \(where_)\(message)"
    }

    /// A flat dictionary for JSON output.
    public var fields: [String: String] {
        var d = ["severity": severity.rawValue, "code": code.rawValue, "message": message,
                 "file": location.file, "line": String(location.line), "column": String(location.column)]
        if let node { d["node"] = node }
        if let port { d["port"] = port }
        return d
    }
}

/// Thrown when a workflow cannot be used; carries every diagnostic found (errors and warnings).
public struct WorkflowError: Error, CustomStringConvertible, Sendable {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
