/// One typed input of a node.
public struct InputSpec: Sendable {
    @frozen public enum Role: String, Sendable {
        /// An ordinary value.
        case value
        /// A path to a file the node reads. The engine hashes the file's content into the
        /// node's cache key, so editing the file invalidates the cached result.
        case inputFile
        /// A path the node writes. Sinks that write files list them in `Outputs.writtenFiles`;
        /// a cached sink is re-run if a file it wrote has gone or changed.
        case outputFile
    }

    public var name: String
    public var type: PortType
    public var doc: String
    /// Used when the workflow does not give the input. Inputs with neither a default nor
    /// `optional` are required.
    public var defaultValue: Value?
    /// An optional input may be left out; the node sees it as absent.
    public var optional: Bool
    /// Inclusive numeric range for int/float inputs (and for the elements of lists of them).
    public var range: ClosedRange<Double>?
    /// The allowed values of a text input (an enumeration such as a resize filter).
    public var choices: [String]?
    public var role: Role

    public init(_ name: String, _ type: PortType, doc: String = "", default defaultValue: Value? = nil,
                optional: Bool = false, range: ClosedRange<Double>? = nil, choices: [String]? = nil,
                role: Role = .value) {
        self.name = name
        self.type = type
        self.doc = doc
        self.defaultValue = defaultValue
        self.optional = optional
        self.range = range
        self.choices = choices
        self.role = role
    }

    public var isRequired: Bool { defaultValue == nil && !optional }
}

/// One typed output of a node.
public struct OutputSpec: Sendable {
    public var name: String
    public var type: PortType
    public var doc: String
    public init(_ name: String, _ type: PortType, doc: String = "") {
        self.name = name
        self.type = type
        self.doc = doc
    }
}

/// How heavy a node's work is. Heavy nodes (a UNet, a VAE, an LLM) share one compute lane so
/// two of them never fight over the same cores; light nodes run concurrently.
@frozen public enum Cost: String, Sendable {
    case light, heavy
}

/// What a node's result depends on, for caching.
@frozen public enum Purity: String, Sendable {
    /// Depends only on its inputs.
    case pure
    /// Depends on its inputs and the content of the files named by its `.inputFile` inputs.
    case readsFiles
    /// May differ between runs for the same inputs (a clock, unseeded randomness, a remote
    /// service without a seed): never served from a cache.
    case volatile
}

/// The static description of a node type: its typed inputs and outputs and their docs.
public struct NodeSchema: Sendable {
    public var summary: String
    public var inputs: [InputSpec]
    public var outputs: [OutputSpec]
    /// A sink is an output node (it writes files or otherwise acts on the world). Only nodes
    /// that feed a sink run.
    public var isSink: Bool
    public var cost: Cost

    public init(summary: String, inputs: [InputSpec], outputs: [OutputSpec], isSink: Bool = false, cost: Cost = .light) {
        self.summary = summary
        self.inputs = inputs
        self.outputs = outputs
        self.isSink = isSink
        self.cost = cost
    }

    public func input(_ name: String) -> InputSpec? { inputs.first { $0.name == name } }
    public func output(_ name: String) -> OutputSpec? { outputs.first { $0.name == name } }
}
