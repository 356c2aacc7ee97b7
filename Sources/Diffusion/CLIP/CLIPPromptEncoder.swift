import Tensor

/// Prompt → text-encoder conditioning for Stable Diffusion 1.x.
///
/// Two encodings:
/// - `encodeTruncated`: diffusers' `StableDiffusionPipeline.encode_prompt` — one 77-token window
///   (`[BOS] + ids[..<75] + [EOS] + PAD…`), no weighting; `clipSkip` applies to the prompt only.
/// - `encode`: LLMGA's long-prompt encoding (its lpw pipelines' `get_weighted_text_embeddings`;
///   llmga-upstream.md §3): A1111-style weights parsed from the text, token ids cut into 75-token
///   windows, each window encoded separately as `[BOS] + 75 + [EOS]`, the outputs concatenated along the
///   sequence axis, the negative prompt padded to the same window count, then the weighted embedding
///   rescaled to its unweighted mean.
public struct CLIPPromptEncoder: Sendable {
    /// How `(…)`, `[…]`, `(…:1.3)` in a prompt are treated.
    public enum Weighting: Sendable, Equatable {
        /// Brackets are ordinary characters (lpw `skip_parsing=True`): the prompt is tokenised whole.
        case none
        /// A1111 syntax (lpw default): `(x)` ×1.1, `[x]` ÷1.1, `(x:w)` ×w, nesting multiplies, unbalanced
        /// openers apply to the rest of the prompt, `\(` `\)` `\[` `\]` `\\` are literal characters. Each
        /// fragment is tokenised separately; every token's embedding row is multiplied by its weight and the
        /// whole [77·k, hidden] embedding is then rescaled so its mean equals the unweighted mean.
        case parentheses
    }

    /// What happens to the BOS/EOS rows of the windows when k > 1 windows are concatenated.
    public enum MiddleTokens: Sendable, Equatable {
        /// Keep all 77 rows of every window: length 77·k. LLMGA's inference pipelines
        /// (`no_boseos_middle=False`).
        case keep
        /// Drop the EOS row of the first window, BOS and EOS of middle windows, the BOS row of the last:
        /// length 75·k + 2. LLMGA's SD1.5 training code (`get_unweighted_text_embeddings` default
        /// `no_boseos_middle=True`).
        case drop
    }

    /// Token ids and per-row weights of a prompt/negative pair, laid out as the lpw pipeline does.
    public struct ChunkedPrompt: Sendable, Equatable {
        /// Window count k (1...maxChunks).
        public var chunks: Int
        /// `[BOS] + tokens + [PAD]… + [EOS]`, 75·k + 2 ids each.
        public var promptIDs: [Int]
        public var negativeIDs: [Int]
        /// One weight per output row (77·k for `.keep`, 75·k + 2 for `.drop`).
        public var promptWeights: [Double]
        public var negativeWeights: [Double]
    }

    public let tokenizer: CLIPTokenizer
    public let textModel: CLIPTextModel

    public init(tokenizer: CLIPTokenizer, textModel: CLIPTextModel) {
        self.tokenizer = tokenizer
        self.textModel = textModel
    }

    // MARK: diffusers

    /// diffusers' StableDiffusionPipeline encoding: cond [1, 77, hidden] with `clipSkip` (diffusers'
    /// `clip_skip`), uncond [1, 77, hidden] without it (as diffusers does).
    public func encodeTruncated(prompt: String, negative: String = "", clipSkip: Int = 0) throws -> (cond: Tensor, uncond: Tensor) {
        let p = tokenizer.encodePadded(prompt), n = tokenizer.encodePadded(negative)
        if clipSkip == 0 {
            let both = try textModel([p, n])
            return (try both.slice(first: 0..<1), try both.slice(first: 1..<2))
        }
        return (try textModel([p], clipSkip: clipSkip), try textModel([n]))
    }

    // MARK: LLMGA long prompts

    /// LLMGA's long-prompt encoding. Returns cond and uncond of equal shape [1, L, hidden] with
    /// L = 77·k (`.keep`) or 75·k + 2 (`.drop`), k = min(maxChunks, windows needed by the longer of the
    /// two prompts) ≥ 1. Prompts longer than 75·maxChunks tokens are truncated. `maxChunks` is 3 in LLMGA's
    /// text-to-image pipeline and 4 in its inpainting pipeline. `clipSkip` (not used by LLMGA, whose value
    /// is 0) selects `final_layer_norm(hidden_states[-(clipSkip+1)])` for every window of both prompts.
    public func encode(prompt: String, negative: String = "", maxChunks: Int = 3, clipSkip: Int = 0,
                       weighting: Weighting = .parentheses, middleTokens: MiddleTokens = .keep) throws -> (cond: Tensor, uncond: Tensor) {
        let c = try chunk(prompt: prompt, negative: negative, maxChunks: maxChunks, weighting: weighting,
                          middleTokens: middleTokens)
        let window = tokenizer.modelMaxLength, payload = window - 2
        let k = c.chunks
        // All windows of both prompts in one batch: [2k, 77].
        var batch: [[Int]] = []
        for ids in [c.promptIDs, c.negativeIDs] {
            for i in 0..<k {
                var w = Array(ids[(i * payload)..<(i * payload + window)])
                w[0] = ids[0]
                w[window - 1] = ids[ids.count - 1]
                batch.append(w)
            }
        }
        let out = try textModel(batch, clipSkip: clipSkip)
        let h = textModel.config.hiddenSize
        let length = middleTokens == .keep || k == 1 ? window * k : payload * k + 2
        var results: [Tensor] = []
        for (side, weights) in [c.promptWeights, c.negativeWeights].enumerated() {
            var e = try Tensor(shape: [1, length, h]) { dst in
                out.withUnsafeBufferPointer { src in
                    var row = 0
                    for i in 0..<k {
                        var lo = 0, hi = window
                        if middleTokens == .drop && k > 1 {
                            if i > 0 { lo = 1 }
                            if i < k - 1 { hi = window - 1 }
                        }
                        let base = src.baseAddress! + ((side * k + i) * window) * h
                        (dst.baseAddress! + row * h).update(from: base + lo * h, count: (hi - lo) * h)
                        row += hi - lo
                    }
                }
            }
            if weighting == .parentheses { CLIPPromptEncoder.applyWeights(&e, weights, hidden: h) }
            results.append(e)
        }
        return (results[0], results[1])
    }

    /// `e *= w[row]`, then `e *= mean(e before) / mean(e after)` (means over all elements, accumulated
    /// in Double, ratio taken in Float as torch does in float32).
    static func applyWeights(_ e: inout Tensor, _ weights: [Double], hidden h: Int) {
        if weights.allSatisfy({ Float($0) == 1 }) { return }  // exact no-op upstream too
        e.withUnsafeMutableBufferPointer { p in
            let before = Float(mean(p))
            for (r, w) in weights.enumerated() {
                let wf = Float(w)
                let row = p.baseAddress! + r * h
                for i in 0..<h { row[i] *= wf }
            }
            let after = Float(mean(p))
            let scale = before / after
            for i in 0..<p.count { p[i] *= scale }
        }
    }

    static func mean(_ p: UnsafeMutableBufferPointer<Float>) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = 0
        while i + 4 <= p.count {
            s0 += Double(p[i]); s1 += Double(p[i + 1]); s2 += Double(p[i + 2]); s3 += Double(p[i + 3]); i += 4
        }
        while i < p.count { s0 += Double(p[i]); i += 1 }
        return (s0 + s1 + s2 + s3) / Double(max(1, p.count))
    }

    /// The lpw token layout of a prompt/negative pair (no text encoder involved).
    public func chunk(prompt: String, negative: String, maxChunks: Int, weighting: Weighting,
                      middleTokens: MiddleTokens) throws -> ChunkedPrompt {
        guard maxChunks >= 1 else { throw DiffusionError("maxChunks must be at least 1, got \(maxChunks)") }
        let window = tokenizer.modelMaxLength, payload = window - 2
        guard payload >= 1 else { throw DiffusionError("tokenizer model_max_length \(window) leaves no room for tokens") }
        let limit = payload * maxChunks
        let (pt, pw) = try tokensAndWeights(prompt, limit: limit, weighting: weighting)
        let (nt, nw) = try tokensAndWeights(negative, limit: limit, weighting: weighting)
        let longest = max(pt.count, nt.count)
        // Python: max(1, min(M, (L - 1) // 75 + 1)) with floor division ((-1) // 75 == -1).
        let needed = longest == 0 ? 0 : (longest - 1) / payload + 1
        let k = max(1, min(maxChunks, needed))
        let total = payload * k + 2
        func layout(_ t: [Int], _ w: [Double]) -> ([Int], [Double]) {
            let ids = [tokenizer.bosTokenID] + t + Array(repeating: tokenizer.padTokenID, count: total - 2 - t.count)
                + [tokenizer.eosTokenID]
            var ww: [Double]
            if middleTokens == .drop {
                ww = [1] + w + Array(repeating: 1, count: total - 1 - w.count)
            } else {
                let length = k * window
                if w.isEmpty {
                    ww = Array(repeating: 1, count: length)
                } else {
                    ww = []
                    for j in 0..<k {
                        ww.append(1)
                        let lo = j * payload, hi = min(w.count, (j + 1) * payload)
                        if lo < hi { ww += w[lo..<hi] }
                        ww.append(1)
                    }
                    ww += Array(repeating: 1, count: max(0, length - ww.count))
                    ww = Array(ww.prefix(length))
                }
            }
            return (ids, ww)
        }
        let (pids, pww) = layout(pt, pw)
        let (nids, nww) = layout(nt, nw)
        return ChunkedPrompt(chunks: k, promptIDs: pids, negativeIDs: nids, promptWeights: pww, negativeWeights: nww)
    }

    /// Token ids (no BOS/EOS) and their weights, at most `limit` of them.
    func tokensAndWeights(_ text: String, limit: Int, weighting: Weighting) throws -> ([Int], [Double]) {
        switch weighting {
        case .none:
            let ids = Array(tokenizer.encode(text).prefix(limit))
            return (ids, Array(repeating: 1, count: ids.count))
        case .parentheses:
            var ids: [Int] = [], weights: [Double] = []
            for (fragment, weight) in try CLIPPromptEncoder.parseAttention(text) {
                let t = tokenizer.encode(fragment)
                ids += t
                weights += Array(repeating: weight, count: t.count)
                if ids.count > limit { break }
            }
            return (Array(ids.prefix(limit)), Array(weights.prefix(limit)))
        }
    }

    // MARK: A1111 attention syntax

    /// Splits a prompt into (text, weight) fragments with the A1111 / lpw `parse_prompt_attention` rules;
    /// neighbouring fragments of equal weight are merged; an empty prompt gives `[("", 1)]`.
    /// Throws when a `(text:weight)` weight is not a number (e.g. `1.2.3`), where the Python code raises.
    public static func parseAttention(_ text: String) throws -> [(text: String, weight: Double)] {
        var res: [(text: String, weight: Double)] = []
        var round: [Int] = [], square: [Int] = []
        func multiply(from start: Int, _ m: Double) {
            for p in start..<res.count { res[p].weight *= m }
        }
        let s = Array(text.unicodeScalars)
        func string(_ r: Range<Int>) -> String {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[r])
            return String(v)
        }
        func isDigit(_ c: Unicode.Scalar) -> Bool { c.properties.generalCategory == .decimalNumber }
        var i = 0
        while i < s.count {
            let c = s[i]
            switch c {
            case "\\":
                if i + 1 < s.count, "()[]\\".unicodeScalars.contains(s[i + 1]) {
                    res.append((string((i + 1)..<(i + 2)), 1))
                    i += 2
                } else {
                    res.append(("", 1))
                    i += 1
                }
            case "(":
                round.append(res.count); i += 1
            case "[":
                square.append(res.count); i += 1
            case ":":
                // `:([+-]?[.\d]+)\)`
                var j = i + 1
                if j < s.count, s[j] == "+" || s[j] == "-" { j += 1 }
                let numberStart = j
                while j < s.count, s[j] == "." || isDigit(s[j]) { j += 1 }
                if j > numberStart, j < s.count, s[j] == ")" {
                    let literal = string((i + 1)..<j)
                    if let m = round.popLast() {
                        guard let w = parseWeight(s[(i + 1)..<j]) else {
                            throw DiffusionError("prompt weight \"\(literal)\" is not a number")
                        }
                        multiply(from: m, w)
                    } else {
                        res.append((string(i..<(j + 1)), 1))
                    }
                    i = j + 1
                } else {
                    res.append((":", 1)); i += 1
                }
            case ")":
                if let m = round.popLast() { multiply(from: m, 1.1) } else { res.append((")", 1)) }
                i += 1
            case "]":
                if let m = square.popLast() { multiply(from: m, 1 / 1.1) } else { res.append(("]", 1)) }
                i += 1
            default:
                var j = i + 1
                while j < s.count, !"\\()[]:".unicodeScalars.contains(s[j]) { j += 1 }
                res.append((string(i..<j), 1))
                i = j
            }
        }
        for p in round { multiply(from: p, 1.1) }
        for p in square { multiply(from: p, 1 / 1.1) }
        if res.isEmpty { res = [("", 1)] }
        var k = 0
        while k + 1 < res.count {
            if res[k].weight == res[k + 1].weight {
                res[k].text += res[k + 1].text
                res.remove(at: k + 1)
            } else {
                k += 1
            }
        }
        return res
    }

    /// Python `float()` of `[+-]?[.\d]+` where \d is any Unicode decimal digit.
    static func parseWeight(_ s: ArraySlice<Unicode.Scalar>) -> Double? {
        var ascii = ""
        for c in s {
            if c == "." || c == "+" || c == "-" {
                ascii.unicodeScalars.append(c)
            } else if let v = c.properties.numericValue, v >= 0, v <= 9, v == v.rounded() {
                ascii.unicodeScalars.append(Unicode.Scalar(UInt8(48 + Int(v))))
            } else {
                return nil
            }
        }
        // Swift accepts forms Python rejects ("1e5" cannot occur here; "." and "1.2.3" are rejected by both).
        guard ascii.filter({ $0 == "." }).count <= 1, ascii.contains(where: \.isNumber) else { return nil }
        return Double(ascii)
    }
}
