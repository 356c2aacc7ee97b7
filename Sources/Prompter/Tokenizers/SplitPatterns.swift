import Foundation

/// GPT-2's byte ↔ unicode table (`bytes_to_unicode`): printable Latin-1 bytes map to themselves, the other
/// 68 bytes to U+0100 and up, so every byte string is a printable string.
enum ByteLevelTable {
    static let byteToScalar: [Unicode.Scalar] = {
        var printable = Set<Int>()
        for r in [0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF] { for b in r { printable.insert(b) } }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n = 0
        for b in 0..<256 {
            if printable.contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(UInt32(256 + n))!
                n += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { m[s.value] = UInt8(b) }
        return m
    }()

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var v = String.UnicodeScalarView()
        for b in bytes { v.append(byteToScalar[Int(b)]) }
        return String(v)
    }
}

/// Character classes used by the GPT-2 / Llama-3 / Qwen2 split regexes.
struct ScalarClass: OptionSet {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)       // \p{L}
    static let number = ScalarClass(rawValue: 2)       // \p{N}
    static let space = ScalarClass(rawValue: 4)        // \s (Unicode White_Space, as Oniguruma)
    static let crlf = ScalarClass(rawValue: 8)         // \r \n

    static func of(_ s: Unicode.Scalar) -> ScalarClass {
        let v = s.value
        if v < 0x80 {
            switch v {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x0A, 0x0D: return [.space, .crlf]
            case 0x09, 0x0B, 0x0C, 0x20: return .space
            default: return []
            }
        }
        let p = s.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return p.isWhitespace ? .space : []
        }
    }
}

/// A split pattern of a `Split` pre-tokenizer. The regexes that GPT-2, Llama-3 and Qwen2 tokenizers use are
/// matched by hand-written scanners (exact regex semantics, linear time); any other regex goes to
/// NSRegularExpression (ICU), and a `String` pattern is matched literally.
enum SplitPattern: @unchecked Sendable {
    case gpt2
    case llama3(maxDigits: Int)      // Llama-3: \p{N}{1,3}; Qwen2: \p{N}
    case literal([Unicode.Scalar])
    case regex(NSRegularExpression)

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func regex(_ pattern: String) throws -> SplitPattern {
        switch pattern {
        case gpt2Pattern: return .gpt2
        case llama3Pattern: return .llama3(maxDigits: 3)
        case qwen2Pattern: return .llama3(maxDigits: 1)
        default:
            do {
                return .regex(try NSRegularExpression(pattern: pattern, options: []))
            } catch {
                throw PrompterError("split regex \(pattern) does not compile: \(error)")
            }
        }
    }

    /// Non-empty matches, as scalar index ranges, left to right and non-overlapping.
    func matches(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .gpt2: return Self.scan(s, gpt2: true, maxDigits: 0)
        case .llama3(let d): return Self.scan(s, gpt2: false, maxDigits: d)
        case .literal(let lit):
            guard !lit.isEmpty else { return [] }
            var out: [Range<Int>] = []
            var i = 0
            while i + lit.count <= s.count {
                if s[i] == lit[0] && Array(s[i..<(i + lit.count)]) == lit {
                    out.append(i..<(i + lit.count)); i += lit.count
                } else { i += 1 }
            }
            return out
        case .regex(let re):
            return Self.icuMatches(re, s)
        }
    }

    static func icuMatches(_ re: NSRegularExpression, _ s: [Unicode.Scalar]) -> [Range<Int>] {
        var str = String.UnicodeScalarView()
        str.append(contentsOf: s)
        let string = String(str)
        // Map UTF-16 offsets back to scalar indices.
        var utf16ToScalar = [Int](repeating: 0, count: string.utf16.count + 1)
        var u = 0
        for (i, sc) in s.enumerated() {
            let w = sc.value > 0xFFFF ? 2 : 1
            for k in 0..<w { utf16ToScalar[u + k] = i }
            u += w
        }
        utf16ToScalar[u] = s.count
        var out: [Range<Int>] = []
        for m in re.matches(in: string, options: [], range: NSRange(location: 0, length: u)) where m.range.length > 0 {
            out.append(utf16ToScalar[m.range.location]..<utf16ToScalar[m.range.location + m.range.length])
        }
        return out
    }

    /// The three built-in regexes. Every alternative is tried in order at each position, like a backtracking
    /// regex engine; at least one always matches, so the matches tile the input.
    static func scan(_ s: [Unicode.Scalar], gpt2: Bool, maxDigits: Int) -> [Range<Int>] {
        let n = s.count
        var cls = [ScalarClass](repeating: [], count: n)
        for i in 0..<n { cls[i] = ScalarClass.of(s[i]) }
        func isL(_ i: Int) -> Bool { i < n && cls[i].contains(.letter) }
        func isN(_ i: Int) -> Bool { i < n && cls[i].contains(.number) }
        func isS(_ i: Int) -> Bool { i < n && cls[i].contains(.space) }
        func isOther(_ i: Int) -> Bool { i < n && cls[i].isEmpty }   // [^\s\p{L}\p{N}]
        func isCRLF(_ i: Int) -> Bool { i < n && cls[i].contains(.crlf) }
        func lower(_ i: Int) -> UInt32? {
            guard i < n else { return nil }
            let v = s[i].value
            if v >= 0x41 && v <= 0x5A { return v + 0x20 }
            if v == 0x17F { return 0x73 } // ſ case-folds to s
            return v
        }
        func contraction(_ i: Int) -> Int? {
            guard i < n, s[i] == "'" else { return nil }
            let a: UInt32?
            let b: UInt32?
            if gpt2 {
                a = i + 1 < n ? s[i + 1].value : nil
                b = i + 2 < n ? s[i + 2].value : nil
            } else {
                a = lower(i + 1); b = lower(i + 2)
            }
            guard let c1 = a else { return nil }
            switch c1 {
            case 0x73, 0x74, 0x6D, 0x64: return i + 2                // s t m d
            case 0x72: return b == 0x65 ? i + 3 : nil                // re
            case 0x76: return b == 0x65 ? i + 3 : nil                // ve
            case 0x6C: return b == 0x6C ? i + 3 : nil                // ll
            default: return nil
            }
        }
        func runEnd(_ i: Int, _ pred: (Int) -> Bool) -> Int {
            var j = i
            while j < n && pred(j) { j += 1 }
            return j
        }
        // \s+(?!\S) then \s+
        func whitespaceTail(_ i: Int) -> Int? {
            guard isS(i) else { return nil }
            let k = runEnd(i, isS)
            if k == n { return k }
            if k - i >= 2 { return k - 1 }
            return k
        }

        var out: [Range<Int>] = []
        out.reserveCapacity(n / 3 + 1)
        var i = 0
        while i < n {
            var end: Int? = contraction(i)
            if end == nil {
                if gpt2 {
                    // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+'
                    let sp = s[i] == " " ? 1 : 0
                    if isL(i + sp) { end = runEnd(i + sp, isL) }
                    else if isN(i + sp) { end = runEnd(i + sp, isN) }
                    else if isOther(i + sp) { end = runEnd(i + sp, isOther) }
                    else { end = whitespaceTail(i) }
                } else {
                    // [^\r\n\p{L}\p{N}]?\p{L}+
                    if !isL(i) && !isN(i) && !isCRLF(i) && isL(i + 1) { end = runEnd(i + 1, isL) }
                    else if isL(i) { end = runEnd(i, isL) }
                    // \p{N}{1,maxDigits}
                    else if isN(i) {
                        var j = i
                        while j < n && j - i < maxDigits && isN(j) { j += 1 }
                        end = j
                    }
                    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
                    else if (s[i] == " " && isOther(i + 1)) || isOther(i) {
                        let start = s[i] == " " ? i + 1 : i
                        end = runEnd(runEnd(start, isOther), isCRLF)
                    }
                    // \s*[\r\n]+  (the match ends after the last CR/LF of the whitespace run)
                    else if isS(i) {
                        let k = runEnd(i, isS)
                        var lastNL = -1
                        var j = k - 1
                        while j >= i { if isCRLF(j) { lastNL = j; break }; j -= 1 }
                        end = lastNL >= 0 ? lastNL + 1 : whitespaceTail(i)
                    }
                }
            }
            if let e = end, e > i {
                out.append(i..<e)
                i = e
            } else {
                i += 1   // unreachable for these patterns: every scalar is L, N, \s or other
            }
        }
        return out
    }
}

/// How a `Split` pre-tokenizer turns matches into pieces (tokenizers' SplitDelimiterBehavior).
enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"

    /// Splits `0..<count` given the delimiter ranges (sorted, disjoint). Empty pieces are dropped.
    func apply(count: Int, matches: [Range<Int>], invert: Bool) -> [Range<Int>] {
        // (range, isDelimiter) covering everything
        var parts: [(Range<Int>, Bool)] = []
        var pos = 0
        for m in matches {
            if m.lowerBound > pos { parts.append((pos..<m.lowerBound, invert)) }
            parts.append((m, !invert))
            pos = m.upperBound
        }
        if pos < count { parts.append((pos..<count, invert)) }
        var out: [Range<Int>] = []
        switch self {
        case .removed:
            out = parts.filter { !$0.1 }.map(\.0)
        case .isolated:
            out = parts.map(\.0)
        case .mergedWithPrevious:
            var prevWasMatch = false
            for (r, isDelim) in parts {
                if isDelim, !prevWasMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
                prevWasMatch = isDelim
            }
        case .mergedWithNext:
            var pendingStart: Int? = nil
            for (r, isDelim) in parts {
                if isDelim {
                    if let p = pendingStart { out.append(p..<r.lowerBound) }
                    pendingStart = r.lowerBound
                } else {
                    out.append((pendingStart ?? r.lowerBound)..<r.upperBound)
                    pendingStart = nil
                }
            }
            if let p = pendingStart { out.append(p..<count) }
        case .contiguous:
            var prevWasMatch = false
            for (r, isDelim) in parts {
                if isDelim, prevWasMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
                prevWasMatch = isDelim
            }
        }
        return out.filter { !$0.isEmpty }
    }
}
