import Foundation

/// Typed access to a diffusers `config.json` object. Every error names the config's origin and
/// the field, so a wrong file can be found and fixed.
public struct ModelConfig: @unchecked Sendable {
    public let values: [String: Any]
    public let origin: String

    public init(values: [String: Any], origin: String) {
        self.values = values
        self.origin = origin
    }

    /// Parses JSON bytes (the `configJSON` of `ComponentFiles`).
    public init(json: Data, origin: String) throws {
        guard let obj = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw DiffusionError("is not a JSON object", file: origin)
        }
        self.init(values: obj, origin: origin)
    }

    func isNull(_ key: String) -> Bool { values[key] == nil || values[key] is NSNull }

    func fail(_ key: String, _ what: String) -> DiffusionError {
        DiffusionError("config field \"\(key)\" \(what)", file: origin)
    }

    /// JSON true/false (Foundation gives NSNumbers; booleans have the ObjC type "c").
    static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    static func asInt(_ v: Any) -> Int? {
        if let n = v as? NSNumber {
            if Self.isBool(n) { return nil }
            let d = n.doubleValue
            return d == d.rounded() && abs(d) < 1e15 ? Int(d) : nil
        }
        return nil
    }

    public func int(_ key: String, default def: Int? = nil) throws -> Int {
        if isNull(key) {
            guard let def else { throw fail(key, "is missing") }
            return def
        }
        guard let i = Self.asInt(values[key]!) else { throw fail(key, "must be an integer, got \(values[key]!)") }
        return i
    }

    public func double(_ key: String, default def: Double? = nil) throws -> Double {
        if isNull(key) {
            guard let def else { throw fail(key, "is missing") }
            return def
        }
        guard let n = values[key] as? NSNumber, !Self.isBool(n) else {
            throw fail(key, "must be a number, got \(values[key]!)")
        }
        return n.doubleValue
    }

    public func optionalDouble(_ key: String) throws -> Double? {
        isNull(key) ? nil : try double(key)
    }

    public func bool(_ key: String, default def: Bool) throws -> Bool {
        if isNull(key) { return def }
        guard let n = values[key] as? NSNumber, Self.isBool(n) else {
            throw fail(key, "must be true or false, got \(values[key]!)")
        }
        return n.boolValue
    }

    public func string(_ key: String, default def: String? = nil) throws -> String {
        if isNull(key) {
            guard let def else { throw fail(key, "is missing") }
            return def
        }
        guard let s = values[key] as? String else { throw fail(key, "must be a string, got \(values[key]!)") }
        return s
    }

    public func optionalString(_ key: String) throws -> String? {
        isNull(key) ? nil : try string(key)
    }

    public func strings(_ key: String, default def: [String]? = nil) throws -> [String] {
        if isNull(key) {
            guard let def else { throw fail(key, "is missing") }
            return def
        }
        guard let a = values[key] as? [Any], let s = a as? [String] else { throw fail(key, "must be a list of strings") }
        return s
    }

    public func ints(_ key: String, default def: [Int]? = nil) throws -> [Int] {
        if isNull(key) {
            guard let def else { throw fail(key, "is missing") }
            return def
        }
        guard let a = values[key] as? [Any] else { throw fail(key, "must be a list of integers") }
        let r = a.compactMap(Self.asInt)
        guard r.count == a.count else { throw fail(key, "must be a list of integers, got \(a)") }
        return r
    }

    /// An integer or a list of integers, broadcast to `count` entries (diffusers' per-block settings).
    public func perBlock(_ key: String, count: Int, default def: Int? = nil) throws -> [Int] {
        if isNull(key) {
            guard let def else { throw fail(key, "is missing") }
            return Array(repeating: def, count: count)
        }
        if let i = Self.asInt(values[key]!) { return Array(repeating: i, count: count) }
        let list = try ints(key)
        guard list.count == count else { throw fail(key, "has \(list.count) entries, the model has \(count) blocks") }
        return list
    }

    /// Throws unless the field is absent, null or equal to `expected` (for options this implementation
    /// does not support).
    public func require(_ key: String, isOneOf accepted: [String], orNull: Bool = true) throws {
        if isNull(key) {
            guard orNull else { throw fail(key, "is missing") }
            return
        }
        guard let s = values[key] as? String, accepted.contains(s) else {
            throw fail(key, "is \(values[key]!); supported: \(accepted.joined(separator: ", "))\(orNull ? " or null" : "")")
        }
    }

    public func requireNull(_ key: String) throws {
        guard isNull(key) else { throw fail(key, "is \(values[key]!); only null (unset) is supported") }
    }

    public func requireFalse(_ key: String) throws {
        if isNull(key) { return }
        if let n = values[key] as? NSNumber, Self.isBool(n), !n.boolValue { return }
        if let a = values[key] as? [Any], a.allSatisfy({ ($0 as? NSNumber)?.boolValue == false }) { return }
        throw fail(key, "is \(values[key]!); only false is supported")
    }
}
