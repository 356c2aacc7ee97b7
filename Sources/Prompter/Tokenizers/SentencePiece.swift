/// A small protobuf wire-format reader: varints, length-delimited fields, fixed32/fixed64, with bounds checks.
struct ProtoReader {
    let bytes: [UInt8]
    var pos: Int
    let end: Int

    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        pos = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    var atEnd: Bool { pos >= end }

    mutating func varint() throws(PrompterError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end else { throw PrompterError("truncated varint at byte \(pos)") }
            let b = bytes[pos]
            pos += 1
            if shift == 63 && b > 1 { throw PrompterError("varint overflows 64 bits at byte \(pos - 1)") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            if shift > 63 { throw PrompterError("varint longer than 10 bytes at byte \(pos)") }
        }
    }

    /// (field number, wire type)
    mutating func tag() throws(PrompterError) -> (Int, Int) {
        let start = pos
        let t = try varint()
        let field = t >> 3
        guard field >= 1 && field <= 536_870_911 else { throw PrompterError("invalid field number \(field) at byte \(start)") }
        return (Int(field), Int(t & 7))
    }

    mutating func lengthDelimited() throws(PrompterError) -> Range<Int> {
        let start = pos
        let n = try varint()
        guard n <= UInt64(end - pos) else {
            throw PrompterError("length \(n) at byte \(start) runs past the end of its message")
        }
        let r = pos..<(pos + Int(n))
        pos += Int(n)
        return r
    }

    mutating func fixed32() throws(PrompterError) -> UInt32 {
        guard end - pos >= 4 else { throw PrompterError("truncated fixed32 at byte \(pos)") }
        let v = UInt32(bytes[pos]) | UInt32(bytes[pos + 1]) << 8 | UInt32(bytes[pos + 2]) << 16 | UInt32(bytes[pos + 3]) << 24
        pos += 4
        return v
    }

    mutating func skip(wireType: Int) throws(PrompterError) {
        switch wireType {
        case 0: _ = try varint()
        case 1:
            guard end - pos >= 8 else { throw PrompterError("truncated fixed64 at byte \(pos)") }
            pos += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw PrompterError("unsupported wire type \(wireType) at byte \(pos)")
        }
    }

    func string(_ r: Range<Int>) throws(PrompterError) -> String {
        guard let s = String(validating: bytes[r], as: UTF8.self) else {
            throw PrompterError("string at byte \(r.lowerBound) is not valid UTF-8")
        }
        return s
    }
}

/// The parts of sentencepiece's `ModelProto` that encoding and decoding need.
public struct SentencePieceModel: Sendable {
    public enum PieceType: Int, Sendable { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }
    public struct Piece: Sendable { public var piece: String; public var score: Float; public var type: PieceType }

    public enum ModelType: Int, Sendable { case unigram = 1, bpe = 2, word = 3, char = 4 }

    public private(set) var pieces: [Piece] = []
    public private(set) var modelType: ModelType = .unigram
    public private(set) var byteFallback = false
    public private(set) var unkSurface = " \u{2047} "
    public private(set) var trainerUnkId = 0, trainerBosId = 1, trainerEosId = 2, trainerPadId = -1
    public private(set) var treatWhitespaceAsSuffix = false
    public private(set) var normalizerName = ""
    public private(set) var precompiledCharsmapSize = 0
    public var addDummyPrefix = true
    public private(set) var removeExtraWhitespaces = true
    public private(set) var escapeWhitespaces = true

    /// Normal, user-defined and unused pieces (sentencepiece's `pieces_`).
    private(set) var pieceIds: [ExactString: Int] = [:]
    /// Control, unknown and byte pieces (`reserved_id_map_`).
    private(set) var reservedIds: [ExactString: Int] = [:]
    private(set) var userDefined: [[UInt8]] = []
    public private(set) var unkId = 0
    private(set) var byteIds: [Int] = []

    /// Parses a serialized `ModelProto` (tokenizer.model).
    public init(bytes: [UInt8]) throws(PrompterError) {
        var r = ProtoReader(bytes)
        while !r.atEnd {
            let (field, wire) = try r.tag()
            switch (field, wire) {
            case (1, 2): pieces.append(try Self.parsePiece(&r, index: pieces.count))
            case (2, 2): try parseTrainerSpec(ProtoReader(bytes, range: try r.lengthDelimited()))
            case (3, 2): try parseNormalizerSpec(ProtoReader(bytes, range: try r.lengthDelimited()))
            case (1...3, _): throw PrompterError("ModelProto field \(field) has wire type \(wire), expected 2")
            default: try r.skip(wireType: wire)
            }
        }
        guard !pieces.isEmpty else { throw PrompterError("no pieces (not a sentencepiece model?)") }
        var unk: Int? = nil
        var bytesFound: [Int: Int] = [:]
        for (i, p) in pieces.enumerated() {
            switch p.type {
            case .normal, .userDefined, .unused:
                if pieceIds[ExactString(p.piece)] != nil { throw PrompterError("piece \"\(p.piece)\" appears twice (id \(i))") }
                pieceIds[ExactString(p.piece)] = i
            case .unknown, .control, .byte:
                if reservedIds[ExactString(p.piece)] != nil { throw PrompterError("piece \"\(p.piece)\" appears twice (id \(i))") }
                reservedIds[ExactString(p.piece)] = i
            }
            if p.type == .userDefined { userDefined.append(Array(p.piece.utf8)) }
            if p.type == .unknown {
                if unk != nil { throw PrompterError("more than one unknown piece") }
                unk = i
            }
            if p.type == .byte {
                guard byteFallback else { throw PrompterError("byte piece \(p.piece) but byte_fallback is off") }
                guard let b = parseByteToken(Array(p.piece.utf8)) else { throw PrompterError("byte piece \"\(p.piece)\" is not <0xNN>") }
                bytesFound[Int(b)] = i
            }
        }
        guard let unk else { throw PrompterError("no unknown (<unk>) piece") }
        unkId = unk
        if byteFallback {
            guard bytesFound.count == 256 else { throw PrompterError("byte_fallback is on but only \(bytesFound.count) of 256 <0xNN> pieces exist") }
            byteIds = (0..<256).map { bytesFound[$0]! }
        }
        userDefined.sort { $0.count > $1.count }
    }

    private static func parsePiece(_ r: inout ProtoReader, index: Int) throws(PrompterError) -> Piece {
        var sub = ProtoReader(r.bytes, range: try r.lengthDelimited())
        var piece: String? = nil
        var score: Float = 0
        var type = PieceType.normal
        while !sub.atEnd {
            let (field, wire) = try sub.tag()
            switch (field, wire) {
            case (1, 2): piece = try sub.string(try sub.lengthDelimited())
            case (2, 5): score = Float(bitPattern: try sub.fixed32())
            case (3, 0):
                let v = try sub.varint()
                guard let t = PieceType(rawValue: Int(truncatingIfNeeded: v)) else { throw PrompterError("piece \(index) has unknown type \(v)") }
                type = t
            case (1...3, _): throw PrompterError("piece \(index) field \(field) has the wrong wire type \(wire)")
            default: try sub.skip(wireType: wire)
            }
        }
        guard let piece else { throw PrompterError("piece \(index) has no text") }
        if piece.isEmpty { throw PrompterError("piece \(index) is empty") }
        return Piece(piece: piece, score: score, type: type)
    }

    private mutating func parseTrainerSpec(_ r0: ProtoReader) throws(PrompterError) {
        var r = r0
        while !r.atEnd {
            let (field, wire) = try r.tag()
            func int32() throws(PrompterError) -> Int {
                guard wire == 0 else { throw PrompterError("trainer_spec field \(field) has wire type \(wire), expected varint") }
                return Int(Int32(truncatingIfNeeded: try r.varint()))
            }
            switch field {
            case 3:
                let v = try int32()
                guard let t = ModelType(rawValue: v) else { throw PrompterError("unknown model_type \(v)") }
                modelType = t
            case 24: treatWhitespaceAsSuffix = try int32() != 0
            case 35: byteFallback = try int32() != 0
            case 40: trainerUnkId = try int32()
            case 41: trainerBosId = try int32()
            case 42: trainerEosId = try int32()
            case 43: trainerPadId = try int32()
            case 44:
                guard wire == 2 else { throw PrompterError("unk_surface has wire type \(wire)") }
                unkSurface = try r.string(try r.lengthDelimited())
            default: try r.skip(wireType: wire)
            }
        }
    }

    private mutating func parseNormalizerSpec(_ r0: ProtoReader) throws(PrompterError) {
        var r = r0
        while !r.atEnd {
            let (field, wire) = try r.tag()
            switch (field, wire) {
            case (1, 2): normalizerName = try r.string(try r.lengthDelimited())
            case (2, 2): precompiledCharsmapSize = try r.lengthDelimited().count
            case (3, 0): addDummyPrefix = try r.varint() != 0
            case (4, 0): removeExtraWhitespaces = try r.varint() != 0
            case (5, 0): escapeWhitespaces = try r.varint() != 0
            case (1...5, _): throw PrompterError("normalizer_spec field \(field) has the wrong wire type \(wire)")
            default: try r.skip(wireType: wire)
            }
        }
    }

    /// Checks the features this implementation supports.
    func validateSupported() throws(PrompterError) {
        guard modelType == .bpe else { throw PrompterError("model_type \(modelType) is not supported (only BPE, as Llama-2/Vicuna/Mistral use)") }
        guard precompiledCharsmapSize == 0 else {
            throw PrompterError("normalization \"\(normalizerName)\" uses a precompiled character map, which is not supported (only identity)")
        }
        guard !treatWhitespaceAsSuffix else { throw PrompterError("treat_whitespace_as_suffix is not supported") }
    }

    public func id(of piece: String) -> Int? { reservedIds[ExactString(piece)] ?? pieceIds[ExactString(piece)] }

    // MARK: encode

    /// sentencepiece's `Normalizer::Normalize` for the identity rule.
    func normalize(_ text: String) -> [UInt8] {
        let space: [UInt8] = escapeWhitespaces ? [0xE2, 0x96, 0x81] : [0x20]
        var input = Array(text.utf8)[...]
        if removeExtraWhitespaces { while input.first == 0x20 { input.removeFirst() } }
        if input.isEmpty { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(input.count + 8)
        if addDummyPrefix { out += space }
        var prevSpace = removeExtraWhitespaces
        var i = input.startIndex
        while i < input.endIndex {
            // user-defined symbols pass through untouched
            if let u = matchUserDefined(input, at: i) {
                out += input[i..<(i + u)]
                i += u
                prevSpace = false
                continue
            }
            let c = input[i]
            if c == 0x20 {
                if !(removeExtraWhitespaces && prevSpace) { out += space }
                prevSpace = true
            } else {
                out.append(c)
                prevSpace = false
            }
            i += 1
        }
        if removeExtraWhitespaces {
            while out.count >= space.count && Array(out.suffix(space.count)) == space { out.removeLast(space.count) }
        }
        return out
    }

    private func matchUserDefined(_ s: ArraySlice<UInt8>, at i: Int) -> Int? {
        for u in userDefined where i + u.count <= s.endIndex && s[i..<(i + u.count)].elementsEqual(u) { return u.count }
        return nil
    }

    /// `BPEModel::Encode` on normalized text followed by the processor's byte fallback / unknown fusing.
    func encodeNormalized(_ text: [UInt8], into out: inout [Int]) {
        if text.isEmpty { return }
        // Initial symbols: a user-defined symbol (frozen) or one UTF-8 character.
        var starts: [Int] = [], ends: [Int] = [], frozen: [Bool] = []
        var i = 0
        let all = text[...]
        while i < text.count {
            var len: Int
            var isFrozen = false
            if let u = matchUserDefined(all, at: i) { len = u; isFrozen = true } else {
                let b = text[i]
                len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
                len = min(len, text.count - i)
            }
            starts.append(i); ends.append(i + len); frozen.append(isFrozen)
            i += len
        }
        let n = starts.count
        var prev = (0..<n).map { $0 - 1 }
        var next = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = PairHeap()
        var revMerge: [ExactString: (String, String)] = [:]

        func key(_ a: Int, _ b: Int) -> String { String(decoding: text[a..<b], as: UTF8.self) }
        func maybeAdd(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0, !frozen[l], !frozen[r] else { return }
            let k = key(starts[l], ends[r])
            guard let id = pieceIds[ExactString(k)] else { return }
            heap.push(.init(score: pieces[id].score, left: Int32(l), right: Int32(r), size: Int32(ends[r] - starts[l])))
            if pieces[id].type == .unused {
                revMerge[ExactString(k)] = (key(starts[l], ends[l]), key(starts[r], ends[r]))
            }
        }
        for k in 1..<max(n, 1) { maybeAdd(k - 1, k) }
        while let top = heap.pop() {
            let l = Int(top.left), r = Int(top.right)
            guard alive[l], alive[r], (ends[l] - starts[l]) + (ends[r] - starts[r]) == Int(top.size) else { continue }
            ends[l] = ends[r]
            next[l] = next[r]
            if next[r] >= 0 { prev[next[r]] = l }
            alive[r] = false
            maybeAdd(prev[l], l)
            maybeAdd(l, next[l])
        }

        var prevUnk = false
        func emit(_ piece: String) {
            let id = id(of: piece) ?? unkId
            if id == unkId {
                if byteFallback {
                    for b in piece.utf8 { out.append(byteIds[Int(b)]) }
                    prevUnk = true
                    return
                }
                if prevUnk { return }   // consecutive unknown pieces fuse into one
                out.append(id)
                prevUnk = true
                return
            }
            out.append(id)
            prevUnk = false
        }
        func resegment(_ piece: String) {
            if let id = pieceIds[ExactString(piece)], pieces[id].type == .unused, let (a, b) = revMerge[ExactString(piece)] {
                resegment(a); resegment(b)
            } else {
                emit(piece)
            }
        }
        var s = 0
        while s >= 0 {
            resegment(key(starts[s], ends[s]))
            s = next[s]
        }
    }

    /// `SentencePieceProcessor::Encode(text)` ids.
    public func encode(_ text: String) -> [Int] {
        var out: [Int] = []
        encodeNormalized(normalize(text), into: &out)
        return out
    }
}

/// Max-heap of symbol pairs by score, leftmost first on ties (sentencepiece's agenda).
struct PairHeap {
    struct Entry { var score: Float; var left: Int32; var right: Int32; var size: Int32 }
    private var items: [Entry] = []
    private static func before(_ a: Entry, _ b: Entry) -> Bool { a.score != b.score ? a.score > b.score : a.left < b.left }
    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if Self.before(items[i], items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }
    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && Self.before(items[l], items[m]) { m = l }
                if r < items.count && Self.before(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
