/// The `BPE` model of a tokenizer.json (Hugging Face tokenizers' `models::bpe::BPE`), encode only.
struct BPEModel: Sendable {
    let vocab: [ExactString: Int]
    let idToToken: [Int: String]
    /// (left id << 32 | right id) → (rank, merged id)
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkId: Int?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    /// Single-scalar vocabulary entries, the fast path for the initial symbols.
    private let scalarIds: [UInt32: Int]
    private let byteIds: [Int]?   // "<0xNN>" ids when byte_fallback is on and all 256 exist

    init(json model: JSONValue, file: String) throws {
        func fail(_ m: String) -> PrompterError { PrompterError("model: \(m)", source: file) }
        if let t = model["type"]?.stringValue, t != "BPE" {
            throw fail("model type \(t) is not supported (only BPE)")
        }
        guard let vocabObj = model["vocab"]?.objectValue else { throw fail("missing or invalid \"vocab\" object") }
        var vocab: [ExactString: Int] = [:]
        vocab.reserveCapacity(vocabObj.count)
        var idToToken: [Int: String] = [:]
        idToToken.reserveCapacity(vocabObj.count)
        for m in vocabObj {
            let tok = m.key, v = m.value
            guard let id = v.intValue, id >= 0, id < Int(Int32.max) else { throw fail("vocab entry \"\(tok)\" has no integer id in 0..<2^31") }
            vocab[ExactString(tok)] = id
            idToToken[id] = tok
        }
        self.vocab = vocab
        self.idToToken = idToToken

        let prefix = model["continuing_subword_prefix"]?.stringValue
        let suffix = model["end_of_word_suffix"]?.stringValue
        continuingSubwordPrefix = (prefix?.isEmpty ?? true) ? nil : prefix
        endOfWordSuffix = (suffix?.isEmpty ?? true) ? nil : suffix

        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        let mergeList = model["merges"]?.arrayValue ?? []
        merges.reserveCapacity(mergeList.count)
        let prefixLen = continuingSubwordPrefix?.count ?? 0
        for (rank, m) in mergeList.enumerated() {
            let a: String, b: String
            switch m {
            case .string(let line):
                // tokenizers: exactly two parts separated by single spaces.
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank + 1) \"\(line)\" is not two space-separated tokens") }
                a = String(parts[0]); b = String(parts[1])
            case .array(let pair):
                guard pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue else {
                    throw fail("merge \(rank + 1) is not a pair of strings")
                }
                a = x; b = y
            default:
                throw fail("merge \(rank + 1) is neither a string nor a pair")
            }
            guard let ia = vocab[ExactString(a)] else { throw fail("merge \(rank + 1): token \"\(a)\" is not in the vocabulary") }
            guard let ib = vocab[ExactString(b)] else { throw fail("merge \(rank + 1): token \"\(b)\" is not in the vocabulary") }
            let merged = a + String(b.dropFirst(prefixLen))
            guard let im = vocab[ExactString(merged)] else { throw fail("merge \(rank + 1): merged token \"\(merged)\" is not in the vocabulary") }
            merges[UInt64(ia) << 32 | UInt64(ib)] = (Int32(rank), Int32(im))
        }
        self.merges = merges

        if let unk = model["unk_token"]?.stringValue {
            unkId = vocab[ExactString(unk)]
            if unkId == nil { throw fail("unk_token \"\(unk)\" is not in the vocabulary") }
        } else {
            unkId = nil
        }
        fuseUnk = model["fuse_unk"]?.boolValue ?? false
        byteFallback = model["byte_fallback"]?.boolValue ?? false
        ignoreMerges = model["ignore_merges"]?.boolValue ?? false
        if let d = model["dropout"]?.doubleValue, d > 0 {
            throw fail("BPE dropout \(d) is a training feature and not supported")
        }

        var scalarIds: [UInt32: Int] = [:]
        for (tok, id) in vocab {
            var it = tok.string.unicodeScalars.makeIterator()
            if let first = it.next(), it.next() == nil { scalarIds[first.value] = id }
        }
        self.scalarIds = scalarIds
        if byteFallback {
            var ids: [Int] = []
            for b in 0..<256 {
                guard let id = vocab[ExactString(Self.byteToken(UInt8(b)))] else { break }
                ids.append(id)
            }
            byteIds = ids.count == 256 ? ids : nil
        } else {
            byteIds = nil
        }
    }

    static func byteToken(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    /// Ids of one pre-tokenized word.
    func tokenize(_ word: Substring.UnicodeScalarView, into out: inout [Int]) {
        if word.isEmpty { return }
        if ignoreMerges, let id = vocab[ExactString(String(String.UnicodeScalarView(word)))] {
            out.append(id)
            return
        }
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var unk: Int? = nil
        let plain = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        var idx = word.startIndex
        var first = true
        while idx < word.endIndex {
            let scalar = word[idx]
            let next = word.index(after: idx)
            let isLast = next == word.endIndex
            var id: Int?
            if plain {
                id = scalarIds[scalar.value]
            } else {
                var s = String(scalar)
                if !first, let p = continuingSubwordPrefix { s = p + s }
                if isLast, let sfx = endOfWordSuffix { s += sfx }
                id = vocab[ExactString(s)]
            }
            if let id {
                if let u = unk { symbols.append(u); unk = nil }
                symbols.append(id)
            } else {
                var handled = false
                if byteFallback {
                    let utf8 = Array(String(scalar).utf8)
                    var ids: [Int] = []
                    for b in utf8 {
                        if let table = byteIds { ids.append(table[Int(b)]) }
                        else if let bid = vocab[ExactString(Self.byteToken(b))] { ids.append(bid) }
                        else { ids.removeAll(); break }
                    }
                    if ids.count == utf8.count {
                        // tokenizers adds byte tokens without flushing a pending unk first.
                        symbols.append(contentsOf: ids)
                        handled = true
                    }
                }
                if !handled, let u = unkId {
                    if unk != nil, !fuseUnk { symbols.append(u) }
                    unk = u
                }
            }
            first = false
            idx = next
        }
        if let u = unk { symbols.append(u) }
        mergeAll(&symbols)
        out.append(contentsOf: symbols)
    }

    /// tokenizers' `Word::merge_all`: repeatedly apply the lowest-rank merge, leftmost first, with a heap.
    private func mergeAll(_ ids: inout [Int]) {
        let n = ids.count
        if n < 2 || merges.isEmpty { return }
        var c = ids
        var prev = [Int](repeating: -1, count: n)
        var next = [Int](repeating: -1, count: n)
        var alive = [Bool](repeating: true, count: n)
        for i in 0..<n { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1 }
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = merges[UInt64(c[i]) << 32 | UInt64(c[i + 1])] {
                heap.push(.init(rank: m.rank, pos: Int32(i), newId: m.id))
            }
        }
        while let top = heap.pop() {
            let pos = Int(top.pos)
            if !alive[pos] { continue }
            let right = next[pos]
            if right < 0 { continue }
            guard let m = merges[UInt64(c[pos]) << 32 | UInt64(c[right])], m.id == top.newId else { continue }
            c[pos] = Int(top.newId)
            alive[right] = false
            let rn = next[right]
            next[pos] = rn
            if rn >= 0 { prev[rn] = pos }
            let p = prev[pos]
            if p >= 0, let pm = merges[UInt64(c[p]) << 32 | UInt64(c[pos])] {
                heap.push(.init(rank: pm.rank, pos: Int32(p), newId: pm.id))
            }
            if rn >= 0, let nm = merges[UInt64(c[pos]) << 32 | UInt64(c[rn])] {
                heap.push(.init(rank: nm.rank, pos: Int32(pos), newId: nm.id))
            }
        }
        var out: [Int] = []
        out.reserveCapacity(n)
        var i = 0
        while i >= 0 { out.append(c[i]); i = next[i] }
        ids = out
    }
}

/// Binary min-heap ordered by (rank, position).
struct MergeHeap {
    struct Entry { var rank: Int32; var pos: Int32; var newId: Int32 }
    private var items: [Entry] = []

    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
    }

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if Self.less(items[i], items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && Self.less(items[l], items[m]) { m = l }
                if r < n && Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
