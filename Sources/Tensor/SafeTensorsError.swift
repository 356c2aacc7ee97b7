/// Every problem found while reading or writing safetensors files. Each case names the
/// file and, where there is one, the tensor key.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotOpen(file: String, reason: String)
    case fileTooSmall(file: String, size: Int)
    case headerLengthOutOfRange(file: String, headerLength: UInt64, fileSize: Int)
    case invalidHeader(file: String, reason: String)
    case invalidEntry(file: String, key: String, reason: String)
    case unsupportedDType(file: String, key: String, dtype: String)
    case offsetsOutOfRange(file: String, key: String, begin: Int, end: Int, dataSize: Int)
    case overlappingTensors(file: String, key: String, other: String)
    case sizeMismatch(file: String, key: String, expectedBytes: Int, actualBytes: Int)
    case missingKey(key: String, file: String, suggestions: [String])
    case notFloatingPoint(file: String, key: String, dtype: DType)
    case destinationSizeMismatch(file: String, key: String, elements: Int, destination: Int)
    case invalidIndex(file: String, reason: String)
    case invalidTensor(key: String, reason: String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            return "cannot open \(file): \(reason)"
        case let .fileTooSmall(file, size):
            return "\(file) is not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case let .headerLengthOutOfRange(file, length, fileSize):
            return "\(file): header length \(length) exceeds the file size \(fileSize) (truncated or not a safetensors file)"
        case let .invalidHeader(file, reason):
            return "\(file): invalid header: \(reason)"
        case let .invalidEntry(file, key, reason):
            return "\(file): tensor \"\(key)\": \(reason)"
        case let .unsupportedDType(file, key, dtype):
            return "\(file): tensor \"\(key)\": unsupported dtype \"\(dtype)\" (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .offsetsOutOfRange(file, key, begin, end, dataSize):
            return "\(file): tensor \"\(key)\": data offsets [\(begin), \(end)) outside the data section of \(dataSize) bytes"
        case let .overlappingTensors(file, key, other):
            return "\(file): tensor \"\(key)\" overlaps tensor \"\(other)\""
        case let .sizeMismatch(file, key, expected, actual):
            return "\(file): tensor \"\(key)\": shape and dtype need \(expected) bytes but its offsets span \(actual)"
        case let .missingKey(key, file, suggestions):
            var s = "missing key \(key) in \(file)"
            if !suggestions.isEmpty { s += " (did you mean \(suggestions.joined(separator: ", "))?)" }
            return s
        case let .notFloatingPoint(file, key, dtype):
            return "\(file): tensor \"\(key)\" has dtype \(dtype.rawValue), which cannot be converted to Float"
        case let .destinationSizeMismatch(file, key, elements, destination):
            return "\(file): tensor \"\(key)\" has \(elements) elements but the destination holds \(destination)"
        case let .invalidIndex(file, reason):
            return "\(file): invalid shard index: \(reason)"
        case let .invalidTensor(key, reason):
            return "tensor \"\(key)\": \(reason)"
        case let .writeFailed(file, reason):
            return "cannot write \(file): \(reason)"
        }
    }
}

/// Up to `limit` keys close to `key`: by edit distance, then by shared suffix (for renamed prefixes).
func closestKeys(to key: String, in keys: some Sequence<String>, limit: Int = 3) -> [String] {
    let target = Array(key.utf8)
    var scored: [(Int, String)] = []
    for candidate in keys {
        let c = Array(candidate.utf8)
        let d = editDistance(target, c, bound: max(4, target.count / 3))
        if let d { scored.append((d, candidate)); continue }
        // Same tail (e.g. "model.diffusion_model.x.weight" vs "x.weight").
        if c.count >= 8, target.count >= 8,
           target.reversed().starts(with: c.reversed()) || c.reversed().starts(with: target.reversed()) {
            scored.append((abs(c.count - target.count), candidate))
        }
    }
    scored.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
    return scored.prefix(limit).map(\.1)
}

/// Levenshtein distance, or nil when it exceeds `bound`.
private func editDistance(_ a: [UInt8], _ b: [UInt8], bound: Int) -> Int? {
    if abs(a.count - b.count) > bound { return nil }
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        var rowMin = cur[0]
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            rowMin = min(rowMin, cur[j])
        }
        if rowMin > bound { return nil }
        swap(&prev, &cur)
    }
    return prev[b.count] <= bound ? prev[b.count] : nil
}
