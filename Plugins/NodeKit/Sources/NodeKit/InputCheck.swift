/// Why a value does not fit an input's declared constraints.
@frozen public enum InputViolation: Sendable, Equatable {
    /// A number outside the input's `range`; the message prints the range in the input's own type
    /// (`0...1000` for an int input, `0...1.5` for a float one).
    case outOfRange(String)
    /// A text value that is not one of the input's `choices`.
    case notAChoice(value: String, choices: [String])

    public var message: String {
        switch self {
        case .outOfRange(let m): return m
        case .notAChoice(let v, let c): return "'\(v)' is not one of \(c.joined(separator: ", "))"
        }
    }
}

extension InputSpec {
    /// Checks a value of this input's type against `range` and `choices` (and each element of a
    /// list). The one place both the compiler (for literals) and the engine (for linked values) check.
    public func violation(of value: Value) -> InputViolation? {
        switch value {
        case .int(let i):
            if let r = range, !r.contains(Double(i)) { return .outOfRange("\(i) is outside \(rangeDescription(r))") }
        case .float(let d):
            if let r = range, !r.contains(d) { return .outOfRange("\(Self.format(d)) is outside \(rangeDescription(r))") }
        case .text(let t):
            if let c = choices, !c.contains(t) { return .notAChoice(value: t, choices: c) }
        case .list(_, let items):
            for item in items { if let v = violation(of: item) { return v } }
        default: break
        }
        return nil
    }

    /// The range as a workflow author writes it: whole bounds without a decimal point.
    public var rangeText: String? { range.map(rangeDescription) }

    private func rangeDescription(_ r: ClosedRange<Double>) -> String {
        "\(Self.format(r.lowerBound))...\(Self.format(r.upperBound))"
    }

    /// A number as a workflow author writes it: `1000`, not `1000.0`; `0.5` stays `0.5`.
    public static func format(_ d: Double) -> String {
        d.isFinite && d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }
}
