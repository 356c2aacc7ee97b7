import Foundation

/// The CLIP byte-level BPE tokenizer, as transformers' `CLIPTokenizer` (transformers 5: the
/// tokenizers-backed class that diffusers' Stable Diffusion pipelines load) computes it:
///
/// 1. special tokens (BOS, EOS, UNK, PAD strings) are cut out of the raw text and become their ids;
/// 2. each remaining segment is normalised: Unicode NFC, every run of white space (`\s`, the Unicode
///    White_Space property) → one space, then per-character full lower-casing (no context rules, so a
///    final capital sigma becomes σ, not ς);
/// 3. pre-tokenised with CLIP's pattern
///    `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
///    (text it does not match, i.e. white space, is dropped), then by the byte-level GPT-2 pattern, which
///    only changes the two literal special spellings (`<|endoftext|>` typed in lower or upper case →
///    `<|`, `endoftext`, `|>`);
/// 4. each piece → UTF-8 bytes → GPT-2 byte-to-unicode symbols, `</w>` appended to the last one, BPE
///    merges applied lowest rank first; symbols missing from the vocabulary become the UNK id.
///
/// Thread-safe; the per-word BPE results are cached (bounded).
public final class CLIPTokenizer: @unchecked Sendable {
    public let bosTokenID: Int
    public let eosTokenID: Int
    public let padTokenID: Int
    public let unkTokenID: Int
    /// The model's context length (77 for CLIP): BOS + 75 tokens + EOS.
    public let modelMaxLength: Int
    public let vocabularySize: Int
    /// Where the vocabulary came from (for messages).
    public let source: String

    /// The id of each byte as a word-inner symbol and as a word-final (`…</w>`) symbol; -1 when absent.
    private let byteIDs: [Int32]
    private let byteEndIDs: [Int32]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    private let merges: [UInt64: UInt64]
    /// Special token strings (as Unicode scalars), longest first, with their ids: matched in the raw
    /// text, and (`normalizedSpecials`) in the normalised text.
    private let specials: [([Unicode.Scalar], Int32)]
    private let normalizedSpecials: [([Unicode.Scalar], Int32)]
    private let lock = NSLock()
    private var cache = BPECache()

    // MARK: Loading

    /// A tokenizer from a vocabulary (token → id) and merge pairs in rank order.
    public init(vocabulary: [String: Int], merges mergePairs: [(String, String)],
                bosToken: String = "<|startoftext|>", eosToken: String = "<|endoftext|>",
                padToken: String = "<|endoftext|>", unkToken: String = "<|endoftext|>",
                normalizedSpecialTokens: Set<String> = [],
                modelMaxLength: Int = 77, source: String = "memory") throws {
        self.source = source
        func id(_ token: String, _ role: String) throws -> Int {
            guard let i = vocabulary[token] else {
                throw DiffusionError("the \(role) token \"\(token)\" is not in the vocabulary", file: source)
            }
            return i
        }
        bosTokenID = try id(bosToken, "BOS")
        eosTokenID = try id(eosToken, "EOS")
        padTokenID = try id(padToken, "padding")
        unkTokenID = try id(unkToken, "unknown")
        guard modelMaxLength >= 2 else {
            throw DiffusionError("model_max_length \(modelMaxLength) leaves no room for BOS and EOS", file: source)
        }
        self.modelMaxLength = modelMaxLength
        vocabularySize = (vocabulary.values.max() ?? -1) + 1
        guard vocabularySize < Int(Int32.max) else { throw DiffusionError("vocabulary too large", file: source) }

        let table = CLIPTokenizer.byteToUnicode
        var inner = [Int32](repeating: -1, count: 256), end = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let s = String(table[b])
            inner[b] = vocabulary[s].map { Int32($0) } ?? -1
            end[b] = vocabulary[s + "</w>"].map { Int32($0) } ?? -1
        }
        byteIDs = inner
        byteEndIDs = end

        var m = [UInt64: UInt64](minimumCapacity: mergePairs.count)
        for (rank, (a, b)) in mergePairs.enumerated() {
            guard let ia = vocabulary[a], let ib = vocabulary[b] else {
                throw DiffusionError("merge \(rank + 1) \"\(a) \(b)\": a part is not in the vocabulary", file: source)
            }
            guard let im = vocabulary[a + b] else {
                throw DiffusionError("merge \(rank + 1) \"\(a) \(b)\": the merged token \"\(a + b)\" is not in the vocabulary", file: source)
            }
            let key = UInt64(ia) << 32 | UInt64(ib)
            if m[key] == nil { m[key] = UInt64(rank) << 32 | UInt64(im) }  // the first (lowest) rank wins
        }
        merges = m

        var sp: [String: Int32] = [:]
        for (t, i) in [(bosToken, bosTokenID), (eosToken, eosTokenID), (unkToken, unkTokenID), (padToken, padTokenID)]
        where !t.isEmpty { sp[t] = Int32(i) }
        let all = sp.map { (Array($0.key.unicodeScalars), $0.value) }
            .sorted { $0.0.count != $1.0.count ? $0.0.count > $1.0.count : $0.1 < $1.1 }
        specials = all.filter { !normalizedSpecialTokens.contains(String(String.UnicodeScalarView($0.0))) }
        normalizedSpecials = all.filter { normalizedSpecialTokens.contains(String(String.UnicodeScalarView($0.0))) }
    }

    /// A tokenizer from Hugging Face `vocab.json` and `merges.txt` files.
    public convenience init(vocabularyFile: String, mergesFile: String,
                            bosToken: String = "<|startoftext|>", eosToken: String = "<|endoftext|>",
                            padToken: String = "<|endoftext|>", unkToken: String = "<|endoftext|>",
                            normalizedSpecialTokens: Set<String> = [], modelMaxLength: Int = 77) throws {
        let vocab = try CLIPTokenizer.readVocabulary(vocabularyFile)
        let merges = try CLIPTokenizer.readMerges(mergesFile)
        try self.init(vocabulary: vocab, merges: merges, bosToken: bosToken, eosToken: eosToken,
                      padToken: padToken, unkToken: unkToken, normalizedSpecialTokens: normalizedSpecialTokens,
                      modelMaxLength: modelMaxLength, source: vocabularyFile)
    }

    /// A tokenizer from a model folder's `tokenizer/` directory (or the bundled vocabulary, `BundledCLIPVocabulary`):
    /// `vocab.json`, `merges.txt`, and when present `tokenizer_config.json` / `special_tokens_map.json`
    /// (the latter overriding the former) for the BOS/EOS/UNK/PAD strings and `model_max_length`
    /// (SD1.5 pads with `<|endoftext|>`, SD2 with `!`). Defaults are transformers' CLIPTokenizer defaults.
    ///
    /// Special tokens given as objects with `"normalized": true` are also matched in the normalised
    /// (lower-cased) text, as transformers 5.23 does. Which entry decides when one string fills several
    /// roles was measured (11 of 12 probed config combinations, including the real SD1.5 and SD2 folder
    /// layouts): its `added_tokens_decoder` entry, else the first of PAD, UNK, EOS, BOS holding it; a plain
    /// string means not normalised. (Not reproduced: a tokenizer_config.json-only folder whose UNK is a
    /// normalised object and whose PAD is the same string, which transformers treats as normalised.)
    /// So SD1.5 folders (PAD the plain string `<|endoftext|>`) match `<|endoftext|>` only as typed, and
    /// SD2 folders (PAD `!`, EOS/UNK normalised objects) also match `<|ENDOFTEXT|>`.
    public convenience init(folder: String) throws {
        let url = URL(fileURLWithPath: folder)
        let roles = ["bos_token", "eos_token", "unk_token", "pad_token"]
        var tokens: [String: (String, Bool)] = ["bos_token": ("<|startoftext|>", false), "eos_token": ("<|endoftext|>", false),
                                                "unk_token": ("<|endoftext|>", false), "pad_token": ("<|endoftext|>", false)]
        var decoderFlags: [String: Bool] = [:]
        var maxLength = 77
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            let path = url.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let object = try CLIPTokenizer.readJSONObject(path)
            for key in roles {
                guard let value = object[key], !(value is NSNull) else { continue }
                if let s = value as? String {
                    tokens[key] = (s, false)
                } else if let d = value as? [String: Any], let s = d["content"] as? String {
                    tokens[key] = (s, (d["normalized"] as? Bool) ?? false)
                } else {
                    throw DiffusionError("\(key) must be a string or an object with \"content\"", file: path)
                }
            }
            if let decoder = object["added_tokens_decoder"] as? [String: Any] {
                for case let d as [String: Any] in decoder.values {
                    if let s = d["content"] as? String { decoderFlags[s] = (d["normalized"] as? Bool) ?? false }
                }
            }
            if let v = object["model_max_length"] as? NSNumber {
                // transformers writes a huge float (1e30) when the length is unknown; CLIP's is 77.
                let d = v.doubleValue
                if d >= 2 && d <= 1_000_000 { maxLength = Int(d) }
            }
        }
        // transformers 5 saves only tokenizer.json (+ tokenizer_config.json): the vocabulary and merges are
        // then read from its BPE model, and its `added_tokens` say which special tokens are normalised.
        let vocabPath = url.appendingPathComponent("vocab.json").path
        let jsonPath = url.appendingPathComponent("tokenizer.json").path
        var fromJSON: (vocab: [String: Int], merges: [(String, String)])? = nil
        if !FileManager.default.fileExists(atPath: vocabPath), FileManager.default.fileExists(atPath: jsonPath) {
            let object = try CLIPTokenizer.readJSONObject(jsonPath)
            fromJSON = try CLIPTokenizer.readTokenizerJSON(object, path: jsonPath)
            for case let d as [String: Any] in (object["added_tokens"] as? [Any]) ?? [] {
                if let s = d["content"] as? String, decoderFlags[s] == nil { decoderFlags[s] = (d["normalized"] as? Bool) ?? false }
            }
        }
        var normalized = Set<String>()
        for content in Set(roles.map { tokens[$0]!.0 }) {
            let flag = decoderFlags[content]
                ?? ["pad_token", "unk_token", "eos_token", "bos_token"].first { tokens[$0]!.0 == content }.map { tokens[$0]!.1 }
                ?? false
            if flag { normalized.insert(content) }
        }
        if let fromJSON {
            try self.init(vocabulary: fromJSON.vocab, merges: fromJSON.merges, bosToken: tokens["bos_token"]!.0,
                          eosToken: tokens["eos_token"]!.0, padToken: tokens["pad_token"]!.0, unkToken: tokens["unk_token"]!.0,
                          normalizedSpecialTokens: normalized, modelMaxLength: maxLength, source: jsonPath)
            return
        }
        try self.init(vocabularyFile: vocabPath,
                      mergesFile: url.appendingPathComponent("merges.txt").path,
                      bosToken: tokens["bos_token"]!.0, eosToken: tokens["eos_token"]!.0,
                      padToken: tokens["pad_token"]!.0, unkToken: tokens["unk_token"]!.0,
                      normalizedSpecialTokens: normalized, modelMaxLength: maxLength)
    }

    static func readJSONObject(_ path: String) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw DiffusionError("cannot read: \(error.localizedDescription)", file: path)
        }
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw DiffusionError("invalid JSON: \(error.localizedDescription)", file: path)
        }
        guard let object = any as? [String: Any] else { throw DiffusionError("expected a JSON object", file: path) }
        return object
    }

    /// The vocabulary and merges of a tokenizer.json whose model is CLIP's BPE (`end_of_word_suffix` `</w>`).
    /// Merges may be "left right" strings (tokenizers < 0.20) or [left, right] pairs.
    static func readTokenizerJSON(_ object: [String: Any], path: String) throws -> (vocab: [String: Int], merges: [(String, String)]) {
        guard let model = object["model"] as? [String: Any] else { throw DiffusionError("no \"model\" object", file: path) }
        guard (model["type"] as? String) == "BPE" else {
            throw DiffusionError("model.type is \(model["type"].map { "\($0)" } ?? "missing"), expected BPE (a CLIP tokenizer)", file: path)
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else { throw DiffusionError("no model.vocab object", file: path) }
        let vocab = try vocabulary(vocabObject, path: path)
        guard let list = model["merges"] as? [Any] else { throw DiffusionError("no model.merges list", file: path) }
        var merges: [(String, String)] = []
        merges.reserveCapacity(list.count)
        for (i, m) in list.enumerated() {
            if let pair = m as? [String], pair.count == 2, !pair[0].isEmpty, !pair[1].isEmpty {
                merges.append((pair[0], pair[1]))
            } else if let line = m as? String, case let parts = line.split(separator: " ", omittingEmptySubsequences: false),
                      parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty {
                merges.append((String(parts[0]), String(parts[1])))
            } else {
                throw DiffusionError("model.merges[\(i)] is \(m), expected two symbols", file: path)
            }
        }
        return (vocab, merges)
    }

    static func readVocabulary(_ path: String) throws -> [String: Int] {
        try vocabulary(try readJSONObject(path), path: path)
    }

    static func vocabulary(_ object: [String: Any], path: String) throws -> [String: Int] {
        var vocab = [String: Int](minimumCapacity: object.count)
        for (token, value) in object {
            guard let n = value as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0 else {
                throw DiffusionError("token \"\(token)\" has id \(value), expected a non-negative integer", file: path)
            }
            vocab[token] = i
        }
        guard !vocab.isEmpty else { throw DiffusionError("empty vocabulary", file: path) }
        return vocab
    }

    /// Merge pairs from a `merges.txt`: one "left right" pair per line; a `#version` header and empty
    /// lines are skipped.
    static func readMerges(_ path: String) throws -> [(String, String)] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DiffusionError("cannot read: \(error.localizedDescription)", file: path)
        }
        var out: [(String, String)] = []
        out.reserveCapacity(50_000)
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.isEmpty || (n == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw DiffusionError("line \(n + 1): expected two space-separated symbols, got \"\(line)\"", file: path)
            }
            out.append((String(parts[0]), String(parts[1])))
        }
        return out
    }

    // MARK: Encoding

    /// Token ids of `text` without BOS/EOS (transformers: `tokenizer(text, add_special_tokens=False)`).
    public func encode(_ text: String) -> [Int] {
        var out: [Int32] = []
        encode(text, into: &out)
        return out.map(Int.init)
    }

    /// The fixed-length encoding diffusers' StableDiffusionPipeline feeds the text encoder
    /// (`padding="max_length", truncation=True`): `[BOS] + ids[..<length-2] + [EOS]`, then PAD up to `length`
    /// (default `modelMaxLength`).
    public func encodePadded(_ text: String, length: Int? = nil) -> [Int] {
        let length = max(2, length ?? modelMaxLength)
        var ids: [Int32] = []
        encode(text, into: &ids)
        var out = [Int](repeating: padTokenID, count: length)
        out[0] = bosTokenID
        let n = min(ids.count, length - 2)
        for i in 0..<n { out[1 + i] = Int(ids[i]) }
        out[1 + n] = eosTokenID
        return out
    }

    /// Appends the ids of `text` to `out`.
    func encode(_ text: String, into out: inout [Int32]) {
        let raw = Array(text.unicodeScalars)
        var segmentStart = 0
        var i = 0
        var scratch = Scratch()
        while i < raw.count {
            if let (length, id) = matchSpecial(raw, at: i) {
                encodeSegment(raw[segmentStart..<i], into: &out, scratch: &scratch)
                out.append(id)
                i += length
                segmentStart = i
            } else {
                i += 1
            }
        }
        encodeSegment(raw[segmentStart..<raw.count], into: &out, scratch: &scratch)
    }

    private func matchSpecial(_ s: [Unicode.Scalar], at i: Int, in list: [([Unicode.Scalar], Int32)]? = nil) -> (Int, Int32)? {
        for (pattern, id) in list ?? specials where i + pattern.count <= s.count {
            var k = 0
            while k < pattern.count && s[i + k] == pattern[k] { k += 1 }
            if k == pattern.count { return (pattern.count, id) }
        }
        return nil
    }

    /// Reusable buffers of one `encode` call.
    struct Scratch {
        var utf8: [UInt8] = []
        var symbols: [Int32] = []
    }

    private func encodeSegment(_ raw: ArraySlice<Unicode.Scalar>, into out: inout [Int32], scratch: inout Scratch) {
        if raw.isEmpty { return }
        let text = CLIPTokenizer.normalize(raw)
        let classes = text.map(CLIPTokenizer.characterClass)
        lock.lock()
        defer { lock.unlock() }
        var start = 0, i = 0
        while i < text.count {
            if !normalizedSpecials.isEmpty, let (length, id) = matchSpecial(text, at: i, in: normalizedSpecials) {
                preTokenize(text, classes, start..<i, into: &out, scratch: &scratch)
                out.append(id)
                i += length
                start = i
            } else {
                i += 1
            }
        }
        preTokenize(text, classes, start..<text.count, into: &out, scratch: &scratch)
    }

    /// CLIP's pre-tokenising pattern over `range` of the normalised text, BPE of every piece.
    private func preTokenize(_ text: [Unicode.Scalar], _ classes: [CharacterClass], _ range: Range<Int>,
                             into out: inout [Int32], scratch: inout Scratch) {
        var i = range.lowerBound
        let n = range.upperBound
        while i < n {
            // Literal special spellings (after lower-casing), split further by the byte-level pattern.
            if let len = CLIPTokenizer.specialLiteral(text, at: i, end: n) {
                bpe(text[i..<(i + 2)], into: &out, scratch: &scratch)
                bpe(text[(i + 2)..<(i + len - 2)], into: &out, scratch: &scratch)
                bpe(text[(i + len - 2)..<(i + len)], into: &out, scratch: &scratch)
                i += len
                continue
            }
            if text[i] == "'", i + 1 < n, let len = CLIPTokenizer.contraction(text, at: i, end: n) {
                bpe(text[i..<(i + len)], into: &out, scratch: &scratch)
                i += len
                continue
            }
            let c = classes[i]
            var j = i + 1
            switch c {
            case .letter:
                while j < n && classes[j] == .letter { j += 1 }
            case .number:
                break
            case .other:
                while j < n && classes[j] == .other { j += 1 }
            case .space:
                i += 1
                continue
            }
            bpe(text[i..<j], into: &out, scratch: &scratch)
            i = j
        }
    }

    // MARK: Normalisation and pre-tokenisation

    enum CharacterClass: UInt8 { case letter, number, space, other }

    static func characterClass(_ s: Unicode.Scalar) -> CharacterClass {
        if s.value < 0x80 {
            switch s.value {
            case 0x61...0x7a, 0x41...0x5a: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0d, 0x20: return .space
            default: return .other
            }
        }
        let p = s.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x80 ? (s.value == 0x20 || (0x09...0x0d).contains(s.value)) : s.properties.isWhitespace
    }

    /// NFC, white-space runs → " ", per-character lower-casing.
    static func normalize(_ raw: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar]
        if raw.allSatisfy({ $0.value < 0x80 }) {
            scalars = Array(raw)
        } else {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: raw)
            scalars = Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
        }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        var inSpace = false
        for s in scalars {
            if isSpace(s) {
                if !inSpace { out.append(" ") }
                inSpace = true
                continue
            }
            inSpace = false
            if s.value < 0x80 {
                out.append((0x41...0x5a).contains(s.value) ? Unicode.Scalar(s.value + 0x20)! : s)
            } else if s.properties.changesWhenLowercased {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(s)
            }
        }
        return out
    }

    private static let literalStart = Array("<|startoftext|>".unicodeScalars)
    private static let literalEnd = Array("<|endoftext|>".unicodeScalars)

    static func specialLiteral(_ s: [Unicode.Scalar], at i: Int, end: Int) -> Int? {
        guard s[i] == "<" else { return nil }
        for lit in [literalStart, literalEnd] where i + lit.count <= end {
            var k = 0
            while k < lit.count && s[i + k] == lit[k] { k += 1 }
            if k == lit.count { return lit.count }
        }
        return nil
    }

    /// Length of `'s|'t|'re|'ve|'m|'ll|'d` at `i` (which holds an apostrophe), or nil.
    static func contraction(_ s: [Unicode.Scalar], at i: Int, end: Int) -> Int? {
        let a = s[i + 1]
        switch a {
        case "s", "t", "m", "d": return 2
        case "r", "v", "l":
            guard i + 2 < end else { return nil }
            let b = s[i + 2]
            if (a == "r" || a == "v") && b == "e" { return 3 }
            if a == "l" && b == "l" { return 3 }
            return nil
        default: return nil
        }
    }

    // MARK: BPE

    private func bpe(_ piece: ArraySlice<Unicode.Scalar>, into out: inout [Int32], scratch: inout Scratch) {
        if piece.isEmpty { return }
        scratch.utf8.removeAll(keepingCapacity: true)
        for s in piece { UTF8.encode(s) { scratch.utf8.append($0) } }
        if cache.lookup(scratch.utf8, into: &out) { return }
        let start = out.count
        bpeUncached(scratch.utf8, symbols: &scratch.symbols)
        for s in scratch.symbols { out.append(s < 0 ? Int32(unkTokenID) : s) }
        cache.insert(scratch.utf8, ids: out[start...])
    }

    /// Byte-level BPE of one word's UTF-8 bytes into `symbols` (ids; -1 for symbols not in the vocabulary).
    func bpeUncached(_ bytes: [UInt8], symbols: inout [Int32]) {
        symbols.removeAll(keepingCapacity: true)
        for b in bytes.dropLast() { symbols.append(byteIDs[Int(b)]) }
        symbols.append(byteEndIDs[Int(bytes[bytes.count - 1])])
        var n = symbols.count
        symbols.withUnsafeMutableBufferPointer { s in
            while n > 1 {
                var bestRank = UInt64.max, bestMerged: Int32 = 0, bestA: Int32 = 0, bestB: Int32 = 0
                for i in 0..<(n - 1) {
                    let a = s[i], b = s[i + 1]
                    guard a >= 0, b >= 0, let v = merges[UInt64(a) << 32 | UInt64(b)] else { continue }
                    if v >> 32 < bestRank { bestRank = v >> 32; bestMerged = Int32(truncatingIfNeeded: v); bestA = a; bestB = b }
                }
                if bestRank == .max { break }
                var r = 0, w = 0
                while r < n {
                    if r + 1 < n && s[r] == bestA && s[r + 1] == bestB {
                        s[w] = bestMerged; r += 2
                    } else {
                        s[w] = s[r]; r += 1
                    }
                    w += 1
                }
                n = w
            }
        }
        symbols.removeLast(symbols.count - n)
    }

    /// GPT-2's byte → printable character table (`bytes_to_unicode`).
    static let byteToUnicode: [Character] = {
        var bs = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(bs, cs) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }()
}

/// Word (UTF-8 bytes) → ids cache in flat arenas: a hit allocates nothing. Bounded: cleared when full.
struct BPECache {
    private var index: [UInt64: Int] = [:]
    private var keyStart: [Int] = [], keyLength: [Int] = [], idStart: [Int] = [], idLength: [Int] = []
    private var keys: [UInt8] = []
    private var ids: [Int32] = []
    static let capacity = 20_000

    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    func lookup(_ word: [UInt8], into out: inout [Int32]) -> Bool {
        guard let e = index[BPECache.hash(word)], keyLength[e] == word.count else { return false }
        let k = keyStart[e]
        for i in 0..<word.count where keys[k + i] != word[i] { return false }
        out.append(contentsOf: ids[idStart[e]..<(idStart[e] + idLength[e])])
        return true
    }

    mutating func insert(_ word: [UInt8], ids newIDs: ArraySlice<Int32>) {
        let h = BPECache.hash(word)
        if index[h] != nil { return }  // a hash collision: keep the first word
        if index.count >= BPECache.capacity { self = BPECache() }
        index[h] = keyStart.count
        keyStart.append(keys.count); keyLength.append(word.count)
        idStart.append(ids.count); idLength.append(newIDs.count)
        keys.append(contentsOf: word)
        ids.append(contentsOf: newIDs)
    }
}
