import Foundation

/// The type of a node input or output.
///
/// Primitive types are built in; packs define their own opaque handle types
/// (`.object("sd.unet")`) for models and other values that only their own
/// nodes understand. `.list(T)` carries an ordered list of `T`.
@frozen public indirect enum PortType: Hashable, Sendable, CustomStringConvertible {
    case text
    case int
    case float
    case bool
    case image
    case mask
    case list(PortType)
    /// An opaque handle type defined by a pack, named `pack.kind` (e.g. `sd.unet`).
    case object(String)

    public var description: String {
        switch self {
        case .text: "text"
        case .int: "int"
        case .float: "float"
        case .bool: "bool"
        case .image: "image"
        case .mask: "mask"
        case .list(let t): "[\(t)]"
        case .object(let name): name
        }
    }

    /// Parses the spelling produced by `description` (`text`, `[image]`, `sd.unet`).
    public init?(parsing s: String) {
        let s = s.trimmingCharacters(in: .whitespaces)
        switch s {
        case "text": self = .text
        case "int": self = .int
        case "float": self = .float
        case "bool": self = .bool
        case "image": self = .image
        case "mask": self = .mask
        default:
            if s.hasPrefix("["), s.hasSuffix("]"), let inner = PortType(parsing: String(s.dropFirst().dropLast())) {
                self = .list(inner)
            } else if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }) {
                self = .object(s)
            } else {
                return nil
            }
        }
    }

    /// Whether a value of type `self` may feed an input of type `target`.
    /// Exact matches, int → float widening, and the same rules element-wise for lists.
    public func canFeed(_ target: PortType) -> Bool {
        if self == target { return true }
        switch (self, target) {
        case (.int, .float): return true
        case (.list(let a), .list(let b)): return a.canFeed(b)
        default: return false
        }
    }
}
