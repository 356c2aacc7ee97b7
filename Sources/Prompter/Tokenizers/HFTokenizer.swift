import Foundation

/// A tokenizer read from a Hugging Face `tokenizer.json`, encoding and decoding as the `tokenizers` library does.
/// Supported components (the ones the LLMGA families' files use, and the SentencePiece-converted form):
/// normalizers NFC/NFD/NFKC/NFKD/Lowercase/Prepend/Replace/Strip/Sequence; pre-tokenizers ByteLevel/Split/
/// Metaspace/Digits/Sequence; model BPE (merges as "a b" or [a, b], ignore_merges, byte_fallback, unk/fuse_unk);
/// post-processors TemplateProcessing/ByteLevel/Sequence; decoders ByteLevel/Replace/ByteFallback/Fuse/Strip/
/// Metaspace/Sequence. Anything else is refused with a message naming the file and the component.
public struct HFTokenizer: Tokenizer {
    public let source: String
    public let specialTokenIds: SpecialTokenIds
    public let cleanUpTokenizationSpaces: Bool
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoderSteps: [DecoderStep]
    let added: AddedVocabulary
    public let vocabularySize: Int

    /// Reads `tokenizer.json` bytes. `config` (from tokenizer_config.json) supplies the special-token names.
    public init(json bytes: [UInt8], source: String = "tokenizer.json", config: TokenizerConfig = TokenizerConfig()) throws {
        self.source = source
        let root: JSONValue
        do { root = try JSONValue.parse(bytes) } catch {
            throw PrompterError("not valid JSON: \(error)", source: source)
        }
        guard case .object = root else { throw PrompterError("top level is not a JSON object", source: source) }
        guard let modelJSON = root["model"], case .object = modelJSON else {
            throw PrompterError("missing \"model\" object", source: source)
        }
        model = try BPEModel(json: modelJSON, file: source)
        normalizer = try Normalizer.parse(root["normalizer"], file: source)
        preTokenizer = try PreTokenizer.parse(root["pre_tokenizer"], file: source)
        postProcessor = try PostProcessor.parse(root["post_processor"], file: source)
        decoderSteps = try DecoderStep.parse(root["decoder"], file: source)
        added = try AddedVocabulary(json: root["added_tokens"], file: source)

        var maxId = model.idToToken.keys.max() ?? -1
        for t in added.tokens { maxId = max(maxId, t.id) }
        vocabularySize = maxId + 1
        cleanUpTokenizationSpaces = config.cleanUpTokenizationSpaces ?? false

        let lookup: (String?) -> Int? = { [model, added] name in
            guard let name else { return nil }
            return added.byContent[ExactString(name)]?.id ?? model.vocab[ExactString(name)]
        }
        var ids = SpecialTokenIds()
        ids.bos = lookup(config.bosToken)
        ids.eos = lookup(config.eosToken)
        ids.pad = lookup(config.padToken)
        ids.unk = lookup(config.unkToken) ?? model.unkId
        ids.image = lookup("<image>")
        specialTokenIds = ids
    }

    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int] {
        var out: [Int] = []
        let scalars = Array(text.unicodeScalars)
        // 1. added tokens that match the raw text
        for seg in added.split(scalars, normalized: false, parseSpecial: parseSpecialTokens) {
            if let id = seg.id { out.append(id); continue }
            // 2. normalize the rest, then added tokens that match normalized text
            var piece = Array(scalars[seg.range])
            if let normalizer { piece = normalizer.apply(piece) }
            let atOrigin = seg.range.lowerBound == 0
            for seg2 in added.split(piece, normalized: true, parseSpecial: parseSpecialTokens) {
                if let id = seg2.id { out.append(id); continue }
                let sub = Array(piece[seg2.range])
                // 3. pre-tokenize, 4. model
                var pieces = [PreToken(scalars: sub, atOrigin: atOrigin && seg2.range.lowerBound == 0)]
                if let preTokenizer { pieces = preTokenizer.apply(pieces) }
                for p in pieces where !p.scalars.isEmpty {
                    let s = String(String.UnicodeScalarView(p.scalars))
                    model.tokenize(s[...].unicodeScalars, into: &out)
                }
            }
        }
        if addSpecialTokens, let postProcessor { out = postProcessor.apply(out) }
        return out
    }

    public func decodeToken(_ id: Int, skipSpecialTokens: Bool, state: inout DecodeState, into output: inout [UInt8]) {
        let text: String
        if let a = added.byId[id] {
            if skipSpecialTokens && a.special { return }
            text = a.content
        } else if let t = model.idToToken[id] {
            text = t
        } else {
            return
        }
        var value = Array(text.utf8)
        var raw = false
        var fused = false
        let index = state.tokens
        state.tokens += 1
        for step in decoderSteps {
            switch step {
            case .byteLevel:
                if !raw {
                    var bytes: [UInt8] = []
                    bytes.reserveCapacity(value.count)
                    var ok = true
                    for sc in String(decoding: value, as: UTF8.self).unicodeScalars {
                        guard let b = ByteLevelTable.scalarToByte[sc.value] else { ok = false; break }
                        bytes.append(b)
                    }
                    if ok { value = bytes }
                    raw = true
                }
            case .replace(let pattern, let content):
                if !raw { value = replaceBytes(value, pattern, content) }
            case .byteFallback:
                if !raw, let b = parseByteToken(value) { value = [b]; raw = true }
            case .fuse:
                fused = true
            case .strip(let content, let start, let stop):
                let c = Array(String(content).utf8)
                if fused {
                    if state.stripRemaining < 0 { state.stripRemaining = start }
                    if state.bytes == 0 {
                        while state.stripRemaining > 0, value.starts(with: c) {
                            value.removeFirst(c.count); state.stripRemaining -= 1
                        }
                    }
                } else {
                    var k = 0
                    while k < start, value.starts(with: c) { value.removeFirst(c.count); k += 1 }
                    k = 0
                    while k < stop, value.count >= c.count, Array(value.suffix(c.count)) == c { value.removeLast(c.count); k += 1 }
                }
            case .joinWithSpaces:
                if index > 0 { value.insert(0x20, at: 0) }
            case .metaspace(let replacement, let prependNever):
                if !raw {
                    let rep = Array(String(replacement).utf8)
                    value = replaceBytes(value, rep, (index == 0 && !prependNever) ? [] : [0x20])
                }
            }
        }
        if state.stripRemaining > 0 && !value.isEmpty { state.stripRemaining = 0 }
        state.bytes += value.count
        output.append(contentsOf: value)
    }

    public func idToToken(_ id: Int) -> String? { added.byId[id]?.content ?? model.idToToken[id] }
    public func tokenToId(_ token: String) -> Int? { added.byContent[ExactString(token)]?.id ?? model.vocab[ExactString(token)] }
    public func isSpecial(_ id: Int) -> Bool { added.byId[id]?.special ?? false }
}

// MARK: - components

struct PreToken {
    var scalars: [Unicode.Scalar]
    /// Starts at offset 0 of the original input (Metaspace's prepend_scheme "first").
    var atOrigin: Bool
}

indirect enum Normalizer: @unchecked Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(SplitPattern, String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    static func parse(_ j: JSONValue?, file: String) throws -> Normalizer? {
        guard let j, !j.isNull else { return nil }
        guard let type = j["type"]?.stringValue else { throw PrompterError("normalizer has no \"type\"", source: file) }
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend":
            guard let p = j["prepend"]?.stringValue else { throw PrompterError("Prepend normalizer without \"prepend\"", source: file) }
            return .prepend(p)
        case "Replace":
            return .replace(try parsePattern(j["pattern"], file: file, what: "Replace normalizer"), j["content"]?.stringValue ?? "")
        case "Strip":
            return .strip(left: j["strip_left"]?.boolValue ?? true, right: j["strip_right"]?.boolValue ?? true)
        case "Sequence":
            guard let list = j["normalizers"]?.arrayValue else { throw PrompterError("normalizer Sequence without \"normalizers\"", source: file) }
            return .sequence(try list.map { try parse($0, file: file) }.compactMap { $0 })
        default:
            throw PrompterError("normalizer \(type) is not supported", source: file)
        }
    }

    func apply(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        func str(_ x: [Unicode.Scalar]) -> String { String(String.UnicodeScalarView(x)) }
        switch self {
        case .nfc: return Array(str(s).precomposedStringWithCanonicalMapping.unicodeScalars)
        case .nfd: return Array(str(s).decomposedStringWithCanonicalMapping.unicodeScalars)
        case .nfkc: return Array(str(s).precomposedStringWithCompatibilityMapping.unicodeScalars)
        case .nfkd: return Array(str(s).decomposedStringWithCompatibilityMapping.unicodeScalars)
        case .lowercase: return Array(str(s).lowercased().unicodeScalars)
        case .prepend(let p): return s.isEmpty ? s : Array(p.unicodeScalars) + s
        case .replace(let pattern, let content):
            let ms = pattern.matches(s)
            if ms.isEmpty { return s }
            var out: [Unicode.Scalar] = []
            var pos = 0
            let c = Array(content.unicodeScalars)
            for m in ms { out += s[pos..<m.lowerBound]; out += c; pos = m.upperBound }
            out += s[pos...]
            return out
        case .strip(let left, let right):
            var lo = 0, hi = s.count
            if left { while lo < hi && s[lo].properties.isWhitespace { lo += 1 } }
            if right { while hi > lo && s[hi - 1].properties.isWhitespace { hi -= 1 } }
            return Array(s[lo..<hi])
        case .sequence(let list):
            var x = s
            for n in list { x = n.apply(x) }
            return x
        }
    }
}

func parsePattern(_ j: JSONValue?, file: String, what: String) throws -> SplitPattern {
    if let s = j?["String"]?.stringValue { return .literal(Array(s.unicodeScalars)) }
    if let r = j?["Regex"]?.stringValue {
        do { return try SplitPattern.regex(r) } catch let e as PrompterError { throw PrompterError(e.message, source: file) }
    }
    throw PrompterError("\(what) pattern is neither {\"String\": ...} nor {\"Regex\": ...}", source: file)
}

indirect enum PreTokenizer: @unchecked Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(SplitPattern, SplitBehavior, invert: Bool)
    case metaspace(replacement: Unicode.Scalar, prepend: MetaspacePrepend, split: Bool)
    case digits(individual: Bool)
    case sequence([PreTokenizer])

    static func parse(_ j: JSONValue?, file: String) throws -> PreTokenizer? {
        guard let j, !j.isNull else { return nil }
        guard let type = j["type"]?.stringValue else { throw PrompterError("pre_tokenizer has no \"type\"", source: file) }
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: j["add_prefix_space"]?.boolValue ?? true, useRegex: j["use_regex"]?.boolValue ?? true)
        case "Split":
            let pattern = try parsePattern(j["pattern"], file: file, what: "Split pre-tokenizer")
            guard let b = j["behavior"]?.stringValue, let behavior = SplitBehavior(rawValue: b) else {
                throw PrompterError("Split pre-tokenizer behavior \(j["behavior"]?.stringValue ?? "(missing)") is not supported", source: file)
            }
            return .split(pattern, behavior, invert: j["invert"]?.boolValue ?? false)
        case "Metaspace":
            let rep = j["replacement"]?.stringValue ?? "\u{2581}"
            guard rep.unicodeScalars.count == 1, let r = rep.unicodeScalars.first else {
                throw PrompterError("Metaspace replacement must be one character", source: file)
            }
            return .metaspace(replacement: r, prepend: try MetaspacePrepend.parse(j, file: file), split: j["split"]?.boolValue ?? true)
        case "Digits":
            return .digits(individual: j["individual_digits"]?.boolValue ?? false)
        case "Sequence":
            guard let list = j["pretokenizers"]?.arrayValue else { throw PrompterError("pre_tokenizer Sequence without \"pretokenizers\"", source: file) }
            return .sequence(try list.compactMap { try parse($0, file: file) })
        default:
            throw PrompterError("pre_tokenizer \(type) is not supported", source: file)
        }
    }

    func apply(_ pieces: [PreToken]) -> [PreToken] {
        var out: [PreToken] = []
        for p in pieces { applyOne(p, into: &out) }
        return out
    }

    private func applyOne(_ p: PreToken, into out: inout [PreToken]) {
        func emit(_ ranges: [Range<Int>], _ s: [Unicode.Scalar], map: ([Unicode.Scalar]) -> [Unicode.Scalar] = { $0 }) {
            for r in ranges {
                out.append(PreToken(scalars: map(Array(s[r])), atOrigin: p.atOrigin && r.lowerBound == 0))
            }
        }
        switch self {
        case .byteLevel(let addPrefixSpace, let useRegex):
            var s = p.scalars
            if addPrefixSpace && s.first != " " { s.insert(" ", at: 0) }
            let ranges = useRegex ? SplitBehavior.isolated.apply(count: s.count, matches: SplitPattern.gpt2.matches(s), invert: false)
                                  : (s.isEmpty ? [] : [0..<s.count])
            emit(ranges, s) { piece in
                var v: [Unicode.Scalar] = []
                for b in String(String.UnicodeScalarView(piece)).utf8 { v.append(ByteLevelTable.byteToScalar[Int(b)]) }
                return v
            }
        case .split(let pattern, let behavior, let invert):
            emit(behavior.apply(count: p.scalars.count, matches: pattern.matches(p.scalars), invert: invert), p.scalars)
        case .metaspace(let rep, let prepend, let split):
            var s = p.scalars.map { $0 == " " ? rep : $0 }
            switch prepend {
            case .always: if s.first != rep { s.insert(rep, at: 0) }
            case .first: if s.first != rep && p.atOrigin { s.insert(rep, at: 0) }
            case .never: break
            }
            if split {
                let ms = s.indices.filter { s[$0] == rep }.map { $0..<($0 + 1) }
                emit(SplitBehavior.mergedWithNext.apply(count: s.count, matches: ms, invert: false), s)
            } else {
                out.append(PreToken(scalars: s, atOrigin: p.atOrigin))
            }
        case .digits(let individual):
            let s = p.scalars
            var ms: [Range<Int>] = []
            for i in s.indices where ScalarClass.of(s[i]).contains(.number) { ms.append(i..<(i + 1)) }
            emit((individual ? SplitBehavior.isolated : SplitBehavior.contiguous).apply(count: s.count, matches: ms, invert: false), s)
        case .sequence(let list):
            var cur = [p]
            for t in list { cur = t.apply(cur) }
            out += cur
        }
    }
}

enum MetaspacePrepend: Sendable {
    case always, first, never
    static func parse(_ j: JSONValue, file: String) throws -> MetaspacePrepend {
        if let s = j["prepend_scheme"]?.stringValue {
            switch s {
            case "always": return .always
            case "first": return .first
            case "never": return .never
            default: throw PrompterError("Metaspace prepend_scheme \(s) is not supported", source: file)
            }
        }
        return (j["add_prefix_space"]?.boolValue ?? true) ? .always : .never
    }
}

indirect enum PostProcessor: Sendable {
    case template([TemplateItem])
    case sequence([PostProcessor])
    case none

    enum TemplateItem: Sendable { case special([Int]); case sequenceA }

    static func parse(_ j: JSONValue?, file: String) throws -> PostProcessor? {
        guard let j, !j.isNull else { return nil }
        guard let type = j["type"]?.stringValue else { throw PrompterError("post_processor has no \"type\"", source: file) }
        switch type {
        case "ByteLevel": return PostProcessor.none
        case "Sequence":
            guard let list = j["processors"]?.arrayValue else { throw PrompterError("post_processor Sequence without \"processors\"", source: file) }
            return .sequence(try list.compactMap { try parse($0, file: file) })
        case "TemplateProcessing":
            guard let single = j["single"]?.arrayValue else { throw PrompterError("TemplateProcessing without \"single\"", source: file) }
            let specials = j["special_tokens"]?.objectValue ?? []
            var items: [TemplateItem] = []
            for item in single {
                if let sp = item["SpecialToken"] {
                    guard let name = sp["id"]?.stringValue, let entry = specials.first(where: { $0.key.utf8.elementsEqual(name.utf8) })?.value,
                          let ids = entry["ids"]?.arrayValue?.compactMap({ $0.intValue }) else {
                        throw PrompterError("TemplateProcessing special token \(item["SpecialToken"]?["id"]?.stringValue ?? "?") is not in special_tokens", source: file)
                    }
                    items.append(.special(ids))
                } else if let seq = item["Sequence"] {
                    guard seq["id"]?.stringValue == "A" else { throw PrompterError("TemplateProcessing single template uses sequence B", source: file) }
                    items.append(.sequenceA)
                } else {
                    throw PrompterError("TemplateProcessing item is neither SpecialToken nor Sequence", source: file)
                }
            }
            return .template(items)
        default:
            throw PrompterError("post_processor \(type) is not supported", source: file)
        }
    }

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .none: return ids
        case .sequence(let list):
            var x = ids
            for p in list { x = p.apply(x) }
            return x
        case .template(let items):
            var out: [Int] = []
            for it in items {
                switch it {
                case .special(let s): out += s
                case .sequenceA: out += ids
                }
            }
            return out
        }
    }
}

enum DecoderStep: Sendable {
    case byteLevel
    case replace([UInt8], [UInt8])
    case byteFallback
    case fuse
    case strip(Character, start: Int, stop: Int)
    case metaspace(Unicode.Scalar, prependNever: Bool)
    case joinWithSpaces

    static func parse(_ j: JSONValue?, file: String) throws -> [DecoderStep] {
        // No decoder: tokenizers joins the tokens with spaces.
        guard let j, !j.isNull else { return [.joinWithSpaces] }
        guard let type = j["type"]?.stringValue else { throw PrompterError("decoder has no \"type\"", source: file) }
        switch type {
        case "ByteLevel": return [.byteLevel]
        case "ByteFallback": return [.byteFallback]
        case "Fuse": return [.fuse]
        case "Replace":
            guard let p = j["pattern"]?["String"]?.stringValue else {
                throw PrompterError("Replace decoder needs a {\"String\": ...} pattern", source: file)
            }
            return [.replace(Array(p.utf8), Array((j["content"]?.stringValue ?? "").utf8))]
        case "Strip":
            guard let c = j["content"]?.stringValue, c.count == 1 else { throw PrompterError("Strip decoder content must be one character", source: file) }
            return [.strip(c.first!, start: j["start"]?.intValue ?? 0, stop: j["stop"]?.intValue ?? 0)]
        case "Metaspace":
            let rep = j["replacement"]?.stringValue ?? "\u{2581}"
            guard rep.unicodeScalars.count == 1, let r = rep.unicodeScalars.first else {
                throw PrompterError("Metaspace replacement must be one character", source: file)
            }
            return [.metaspace(r, prependNever: try MetaspacePrepend.parse(j, file: file) == .never)]
        case "Sequence":
            guard let list = j["decoders"]?.arrayValue else { throw PrompterError("decoder Sequence without \"decoders\"", source: file) }
            let steps = try list.flatMap { try parse($0, file: file) }
            var fused = false
            for s in steps {
                if case .fuse = s { fused = true }
                if case .strip(_, _, let stop) = s, fused, stop > 0 {
                    throw PrompterError("a Strip decoder with stop > 0 after Fuse is not supported (it cannot stream)", source: file)
                }
            }
            return steps
        default:
            throw PrompterError("decoder \(type) is not supported", source: file)
        }
    }
}

func replaceBytes(_ v: [UInt8], _ pattern: [UInt8], _ content: [UInt8]) -> [UInt8] {
    guard !pattern.isEmpty, v.count >= pattern.count else { return v }
    var out: [UInt8] = []
    out.reserveCapacity(v.count)
    var i = 0
    while i < v.count {
        if v[i] == pattern[0], i + pattern.count <= v.count, v[i..<(i + pattern.count)].elementsEqual(pattern) {
            out += content; i += pattern.count
        } else {
            out.append(v[i]); i += 1
        }
    }
    return out
}

/// "<0xNN>" → NN
func parseByteToken(_ v: [UInt8]) -> UInt8? {
    guard v.count == 6, v[0] == 0x3C, v[1] == 0x30, v[2] == 0x78, v[5] == 0x3E else { return nil }
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
    guard let h = hex(v[3]), let l = hex(v[4]) else { return nil }
    return h << 4 | l
}

// MARK: - added tokens

struct AddedToken: Sendable {
    var id: Int
    var content: String
    var special: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
    var singleWord: Bool
}

/// tokenizers' AddedVocabulary: tokens found in the text before (normalized: false) or after (normalized: true)
/// normalization, leftmost-longest, with their lstrip/rstrip/single_word flags.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    let byId: [Int: AddedToken]
    let byContent: [ExactString: AddedToken]
    /// first scalar → candidates, longest first (one table per `normalized` flag)
    private let starts: [Bool: [UInt32: [(scalars: [Unicode.Scalar], token: AddedToken)]]]

    /// - singleTable: match every token on the raw text (transformers' slow tokenizers have no normalizer step).
    init(tokens: [AddedToken], singleTable: Bool = false) {
        self.tokens = tokens
        var byId: [Int: AddedToken] = [:], byContent: [ExactString: AddedToken] = [:]
        var starts: [Bool: [UInt32: [(scalars: [Unicode.Scalar], token: AddedToken)]]] = [false: [:], true: [:]]
        for t in tokens {
            byId[t.id] = t
            byContent[ExactString(t.content)] = t
            let sc = Array(t.content.unicodeScalars)
            guard let f = sc.first else { continue }
            starts[singleTable ? false : t.normalized, default: [:]][f.value, default: []].append((sc, t))
        }
        for k in [false, true] {
            for (f, list) in starts[k] ?? [:] { starts[k]![f] = list.sorted { $0.scalars.count > $1.scalars.count } }
        }
        self.byId = byId
        self.byContent = byContent
        self.starts = starts
    }

    init(json: JSONValue?, file: String) throws {
        var list: [AddedToken] = []
        for (i, t) in (json?.arrayValue ?? []).enumerated() {
            guard let id = t["id"]?.intValue, let content = t["content"]?.stringValue else {
                throw PrompterError("added_tokens[\(i)] needs an integer \"id\" and a string \"content\"", source: file)
            }
            list.append(AddedToken(id: id, content: content, special: t["special"]?.boolValue ?? false,
                                   lstrip: t["lstrip"]?.boolValue ?? false, rstrip: t["rstrip"]?.boolValue ?? false,
                                   normalized: t["normalized"]?.boolValue ?? !(t["special"]?.boolValue ?? false),
                                   singleWord: t["single_word"]?.boolValue ?? false))
        }
        self.init(tokens: list)
    }

    struct Segment { var range: Range<Int>; var id: Int? }

    func split(_ s: [Unicode.Scalar], normalized: Bool, parseSpecial: Bool) -> [Segment] {
        guard let table = starts[normalized], !table.isEmpty, !s.isEmpty else { return [Segment(range: 0..<s.count, id: nil)] }
        var out: [Segment] = []
        var startOffset = 0
        var i = 0
        func isWord(_ c: Unicode.Scalar) -> Bool { ScalarClass.of(c).contains(.letter) || ScalarClass.of(c).contains(.number) || c == "_" }
        while i < s.count {
            guard let cands = table[s[i].value],
                  let hit = cands.first(where: { i + $0.scalars.count <= s.count && s[i..<(i + $0.scalars.count)].elementsEqual($0.scalars) })
            else { i += 1; continue }
            var start = i
            var stop = i + hit.scalars.count
            i = stop
            let t = hit.token
            if t.special && !parseSpecial { continue }
            if t.singleWord {
                let startOK = start == 0 || !isWord(s[start - 1])
                let stopOK = stop == s.count || !isWord(s[stop])
                if !startOK || !stopOK { continue }
            }
            if t.lstrip {
                var k = start
                while k > 0 && s[k - 1].properties.isWhitespace { k -= 1 }
                start = max(k, startOffset)
            }
            if t.rstrip {
                while stop < s.count && s[stop].properties.isWhitespace { stop += 1 }
            }
            if startOffset < start { out.append(Segment(range: startOffset..<start, id: nil)) }
            out.append(Segment(range: start..<stop, id: t.id))
            startOffset = stop
        }
        if startOffset < s.count { out.append(Segment(range: startOffset..<s.count, id: nil)) }
        return out
    }
}
