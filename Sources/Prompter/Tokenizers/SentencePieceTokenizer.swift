/// A Llama-2 / Vicuna / Mistral tokenizer from `tokenizer.model`, encoding as transformers' slow
/// `LlamaTokenizer` does (which is how LLaVA/LLMGA load it, `use_fast=False`): special tokens written in the
/// text are split out first, each remaining chunk is encoded by sentencepiece, and the `legacy` flag of
/// tokenizer_config.json decides how chunks after a special token get their leading `▁`.
/// With no special tokens in the text and `legacy` on, the ids are exactly `sentencepiece`'s `encode`.
public struct SentencePieceTokenizer: Tokenizer {
    public let source: String
    public let model: SentencePieceModel
    private let modelNoDummyPrefix: SentencePieceModel
    public let specialTokenIds: SpecialTokenIds
    public let cleanUpTokenizationSpaces: Bool
    public let legacy: Bool
    public let addBosToken: Bool
    public let addEosToken: Bool
    public let addPrefixSpace: Bool
    let added: AddedVocabulary
    private let unkText: String
    private let unkTokenLength: Int
    private let spaceId: Int?
    public let vocabularySize: Int

    /// - bytes: the tokenizer.model file; config: tokenizer_config.json (flags and special tokens).
    public init(model bytes: [UInt8], source: String = "tokenizer.model", config: TokenizerConfig = TokenizerConfig()) throws {
        self.source = source
        let m: SentencePieceModel
        do {
            m = try SentencePieceModel(bytes: bytes)
            try m.validateSupported()
        } catch {
            throw PrompterError(error.message, source: source)
        }
        model = m
        var nd = m
        nd.addDummyPrefix = false
        modelNoDummyPrefix = nd
        legacy = config.legacy ?? true
        addBosToken = config.addBosToken ?? true
        addEosToken = config.addEosToken ?? false
        addPrefixSpace = config.addPrefixSpace ?? true
        cleanUpTokenizationSpaces = config.cleanUpTokenizationSpaces ?? false

        func pieceName(_ id: Int) -> String? { id >= 0 && id < m.pieces.count ? m.pieces[id].piece : nil }
        let unkName = config.unkToken ?? pieceName(m.unkId) ?? "<unk>"
        let bosName = config.bosToken ?? pieceName(m.trainerBosId)
        let eosName = config.eosToken ?? pieceName(m.trainerEosId)
        let padName = config.padToken ?? pieceName(m.trainerPadId)

        var addedList = config.addedTokens
        if addedList.isEmpty {
            // transformers makes bos/eos/unk (and pad) special added tokens with no stripping.
            var seen = Set<String>()
            for name in [unkName, bosName, eosName, padName].compactMap({ $0 }) where !seen.contains(name) {
                seen.insert(name)
                if let id = m.id(of: name) {
                    addedList.append(AddedToken(id: id, content: name, special: true, lstrip: false, rstrip: false, normalized: false, singleWord: false))
                }
            }
        }
        let av = AddedVocabulary(tokens: addedList, singleTable: true)
        added = av
        unkText = unkName
        unkTokenLength = nd.encode(unkName).count
        spaceId = m.id(of: "\u{2581}")

        func lookup(_ name: String?) -> Int? {
            guard let name else { return nil }
            return av.byContent[ExactString(name)]?.id ?? m.id(of: name)
        }
        specialTokenIds = SpecialTokenIds(bos: lookup(bosName), eos: lookup(eosName), pad: config.padToken.flatMap(lookup),
                                          unk: lookup(unkName) ?? m.unkId, image: lookup("<image>"))
        vocabularySize = max(m.pieces.count, (addedList.map(\.id).max() ?? -1) + 1)
    }

    /// transformers' `PreTrainedTokenizer.tokenize` split: added tokens out of the text, stripping whitespace
    /// next to tokens marked lstrip/rstrip. Returns chunks (text or token id).
    private func splitAdded(_ text: String, parseSpecial: Bool) -> [(text: String, id: Int?)] {
        let s = Array(text.unicodeScalars)
        var out: [(text: String, id: Int?)] = []
        for seg in added.split(s, normalized: false, parseSpecial: parseSpecial) {
            if let id = seg.id { out.append(("", id)); continue }
            if seg.range.isEmpty { continue }
            out.append((String(String.UnicodeScalarView(s[seg.range])), nil))
        }
        return out
    }

    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int] {
        var ids: [Int] = []
        if legacy || text.isEmpty {
            for chunk in splitAdded(text, parseSpecial: parseSpecialTokens) {
                if let id = chunk.id { ids.append(id) } else { ids += model.encode(chunk.text) }
            }
        } else {
            var t = text.replacingAll("\u{2581}", with: " ")
            if addPrefixSpace { t = "\u{2581}" + t }
            var fromAdded: [Bool] = []
            for chunk in splitAdded(t, parseSpecial: parseSpecialTokens) {
                if let id = chunk.id { ids.append(id); fromAdded.append(true); continue }
                let piece: [Int]
                if chunk.text.hasPrefix("\u{2581}") || chunk.text.hasPrefix(" ") {
                    let r = modelNoDummyPrefix.encode(unkText + chunk.text)
                    piece = r.count >= unkTokenLength ? Array(r[unkTokenLength...]) : r
                } else {
                    piece = modelNoDummyPrefix.encode(chunk.text)
                }
                ids += piece
                fromAdded += [Bool](repeating: false, count: piece.count)
            }
            if ids.count > 1, !fromAdded[0], ids[0] == spaceId, fromAdded[1], added.byId[ids[1]]?.special == true {
                ids.removeFirst()
            }
        }
        if addSpecialTokens {
            if addBosToken, let b = specialTokenIds.bos { ids.insert(b, at: 0) }
            if addEosToken, let e = specialTokenIds.eos { ids.append(e) }
        }
        return ids
    }

    public func decodeToken(_ id: Int, skipSpecialTokens: Bool, state: inout DecodeState, into output: inout [UInt8]) {
        if skipSpecialTokens && isSpecial(id) { return }
        var bytes: [UInt8]
        if id >= 0 && id < model.pieces.count {
            let p = model.pieces[id]
            switch p.type {
            case .control: bytes = Array(p.piece.utf8)          // sentencepiece prints nothing; we keep the marker text
            case .unknown: bytes = Array(model.unkSurface.utf8)  // " ⁇ "
            case .byte: bytes = parseByteToken(Array(p.piece.utf8)).map { [$0] } ?? []
            case .normal, .userDefined, .unused: bytes = pieceBytes(p.piece, state: &state)
            }
        } else if let a = added.byId[id] {
            bytes = Array(a.content.utf8)
        } else {
            return
        }
        state.tokens += 1
        state.bytes += bytes.count
        if !bytes.isEmpty { state.leadingSpaceDone = true }
        output += bytes
    }

    /// sentencepiece's `DecodeSentencePiece`: `▁` → space, and the first `▁` of the text (the dummy prefix)
    /// is dropped once.
    private func pieceBytes(_ piece: String, state: inout DecodeState) -> [UInt8] {
        var v = Array(piece.utf8)
        let marker: [UInt8] = [0xE2, 0x96, 0x81]
        let stripsLeading = legacy ? (model.addDummyPrefix || model.removeExtraWhitespaces) : addPrefixSpace
        if !state.leadingSpaceDone && stripsLeading && v.starts(with: marker) {
            v.removeFirst(3)
            state.leadingSpaceDone = true
        }
        return replaceBytes(v, marker, [0x20])
    }

    public func idToToken(_ id: Int) -> String? {
        added.byId[id]?.content ?? (id >= 0 && id < model.pieces.count ? model.pieces[id].piece : nil)
    }
    public func tokenToId(_ token: String) -> Int? { added.byContent[ExactString(token)]?.id ?? model.id(of: token) }
    public func isSpecial(_ id: Int) -> Bool {
        if let a = added.byId[id] { return a.special }
        guard id >= 0 && id < model.pieces.count else { return false }
        return model.pieces[id].type == .control || model.pieces[id].type == .unknown
    }
}
