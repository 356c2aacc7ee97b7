/// The ids of the tokens a model treats specially. `nil` where the tokenizer has no such token
/// (Qwen2 has no BOS, most LLMs have no pad token).
public struct SpecialTokenIds: Sendable, Equatable {
    public var bos: Int?
    public var eos: Int?
    public var pad: Int?
    public var unk: Int?
    /// The id of `<image>` when the vocabulary (or the added tokens) has it. LLMGA checkpoints do not:
    /// their prompts carry `<image>` as text, spliced out by `tokenizeWithImages` as `imageTokenIndex`.
    public var image: Int?

    public init(bos: Int? = nil, eos: Int? = nil, pad: Int? = nil, unk: Int? = nil, image: Int? = nil) {
        self.bos = bos; self.eos = eos; self.pad = pad; self.unk = unk; self.image = image
    }
}

/// Running state of a left-to-right decode, so that tokens can be decoded one at a time
/// (streaming) with the same bytes as decoding the whole sequence.
public struct DecodeState: Sendable, Equatable {
    /// Tokens that reached the decoder so far (skipped special tokens do not count).
    public var tokens = 0
    /// Bytes produced so far.
    public var bytes = 0
    /// Leading characters a fused `Strip` decoder may still remove.
    var stripRemaining = -1
    /// sentencepiece: the dummy-prefix space at the start was consumed, or text was produced.
    var leadingSpaceDone = false
    public init() {}
}

/// A text tokenizer of an LLM. Both implementations (`HFTokenizer`, byte-level or SentencePiece-style BPE from
/// tokenizer.json, and `SentencePieceTokenizer` from tokenizer.model) follow their reference library exactly
/// (see the parity tests).
public protocol Tokenizer: Sendable {
    /// Number of ids (the model vocabulary plus added tokens).
    var vocabularySize: Int { get }
    var specialTokenIds: SpecialTokenIds { get }
    /// The file it was read from (for messages).
    var source: String { get }

    /// Token ids of `text`.
    /// - addSpecialTokens: add the tokens the tokenizer puts around a sequence (BOS for Llama, Llama-3, Mistral;
    ///   nothing for Qwen2), as `tokenizer(text)` does in transformers.
    /// - parseSpecialTokens: recognise special tokens (`<|im_end|>`, `</s>`, ...) written in the text. Turn it off
    ///   for untrusted user text so that it cannot forge turns (the tokens are then tokenized as ordinary text).
    func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int]

    /// Appends the bytes of one token to `output`, continuing a decode described by `state`.
    /// Ids outside the vocabulary produce nothing.
    func decodeToken(_ id: Int, skipSpecialTokens: Bool, state: inout DecodeState, into output: inout [UInt8])

    /// The vocabulary string of an id (the raw piece: byte-level characters, `▁` markers, `<0x0A>`...).
    func idToToken(_ id: Int) -> String?
    /// The id of a vocabulary string or added token.
    func tokenToId(_ token: String) -> Int?
    /// Whether the id is a special (control) token.
    func isSpecial(_ id: Int) -> Bool
    /// Whether `decode` applies transformers' `clean_up_tokenization_spaces` (from tokenizer_config.json).
    var cleanUpTokenizationSpaces: Bool { get }
}

extension Tokenizer {
    /// `encode(text, addSpecialTokens: true, parseSpecialTokens: true)`: what transformers' `tokenizer(text).input_ids` returns.
    public func encode(_ text: String) -> [Int] {
        encode(text, addSpecialTokens: true, parseSpecialTokens: true)
    }

    /// The raw bytes of a token sequence; concatenating the bytes of a split sequence decoded with one
    /// shared `DecodeState` gives the same bytes.
    public func decodeBytes(_ ids: [Int], skipSpecialTokens: Bool = false) -> [UInt8] {
        var state = DecodeState()
        var out: [UInt8] = []
        for id in ids { decodeToken(id, skipSpecialTokens: skipSpecialTokens, state: &state, into: &out) }
        return out
    }

    /// Text of a token sequence. Invalid UTF-8 (a sequence cut inside a character) becomes U+FFFD.
    /// Applies `clean_up_tokenization_spaces` when the tokenizer config asks for it, as transformers' `decode` does.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let text = String(decoding: decodeBytes(ids, skipSpecialTokens: skipSpecialTokens), as: UTF8.self)
        return cleanUpTokenizationSpaces ? cleanUpTokenization(text) : text
    }
}

/// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`.
public func cleanUpTokenization(_ text: String) -> String {
    var s = text
    for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                   (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
        s = s.replacingAll(a, with: b)
    }
    return s
}

extension String {
    /// Replaces every non-overlapping occurrence, left to right (Python's `str.replace`), on Unicode scalars.
    func replacingAll(_ target: String, with replacement: String) -> String {
        let t = Array(target.unicodeScalars)
        guard !t.isEmpty else { return self }
        let s = Array(unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if s[i] == t[0], i + t.count <= s.count, Array(s[i..<(i + t.count)]) == t {
                out.append(contentsOf: replacement.unicodeScalars)
                i += t.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(out)
    }
}

/// Decodes a token stream incrementally: `append` returns the text that became complete, holding back the
/// bytes of a UTF-8 character split across tokens (byte-level BPE and `<0xNN>` byte fallback both split them).
/// Concatenating every `append` result and `finish()` equals `decode(allIds)` without clean-up.
public struct StreamingDecoder: Sendable {
    public let tokenizer: any Tokenizer
    public let skipSpecialTokens: Bool
    private var state = DecodeState()
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token; returns the newly completed text (possibly empty).
    public mutating func append(_ id: Int) -> String {
        tokenizer.decodeToken(id, skipSpecialTokens: skipSpecialTokens, state: &state, into: &pending)
        let cut = completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[0..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Flushes what is left (an incomplete character becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Bytes held back because they may start a character that the next token completes.
    public var pendingByteCount: Int { pending.count }

    /// Length of the longest prefix that does not end inside a possibly valid, incomplete UTF-8 sequence.
    private func completePrefixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        // Look back at most 3 bytes for the lead byte of an unfinished sequence.
        var i = n - 1
        var back = 0
        while i >= 0 && back < 4 {
            let c = b[i]
            if c & 0xC0 != 0x80 {
                let need: Int
                if c < 0x80 { need = 1 } else if c & 0xE0 == 0xC0 { need = 2 } else if c & 0xF0 == 0xE0 { need = 3 } else if c & 0xF8 == 0xF0 { need = 4 } else { need = 1 }
                return (n - i) < need ? i : n
            }
            i -= 1
            back += 1
        }
        return n
    }
}
