import Tensor

/// Why generation ended.
public enum GenerationStopReason: Sendable, Equatable {
    /// A token of `stopTokenIds` (EOS, `<|im_end|>`, …) was generated.
    case stopToken(Int)
    /// The decoded text came to contain this stop string.
    case stopString(String)
    /// `maxNewTokens` tokens were generated.
    case maxNewTokens
}

/// The outcome of `CausalLM.generate`.
public struct GenerationResult: Sendable, Equatable {
    /// The generated ids, including a final stop token when generation ended on one (as transformers returns them).
    public var ids: [Int]
    /// The reply decoded without the stop token and cut before a stop string ("" without a tokenizer).
    public var text: String
    public var stopReason: GenerationStopReason
}

extension CausalLM {
    /// Generates a reply after `promptEmbeddings` ([n, hiddenSize], typically token embeddings with image features
    /// spliced in), continuing `cache` (pass an empty cache for a fresh conversation, or the cache of the previous
    /// turn with only the new turn's embeddings to reuse it).
    ///
    /// The prompt runs as one batch; each new token is then sampled with `TokenSampler(options:)` and run alone.
    /// Generation ends after `options.maxNewTokens` tokens, on a token of `stopTokenIds`, or when the text decoded
    /// so far (`StreamingDecoder` over `tokenizer`, special tokens kept) contains one of `stopStrings`. `progress` is
    /// called after every token with the text so far; an error it throws stops generation and propagates
    /// (cancellation). On return the cache holds the prompt and every generated token except the last one, which
    /// was sampled but not run (feed it first when continuing the conversation from the cache).
    public func generate(promptEmbeddings: Tensor, cache: KVCache, options: GenerationOptions,
                         stopTokenIds: [Int] = [], stopStrings: [String] = [], tokenizer: (any Tokenizer)? = nil,
                         progress: (GenerationProgress) throws -> Void = { _ in }) throws -> GenerationResult {
        var sampler = try TokenSampler(options: options)
        guard tokenizer != nil || stopStrings.isEmpty else {
            throw PrompterError("stop strings need a tokenizer to decode the generated text")
        }
        let stops = stopStrings.filter { !$0.isEmpty }
        var decoder = tokenizer.map { StreamingDecoder(tokenizer: $0, skipSpecialTokens: false) }
        var text = ""
        var ids: [Int] = []
        var logits = try forward(embeddings: promptEmbeddings, cache: cache)
        while true {
            let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
            ids.append(token)
            if stopTokenIds.contains(token) {
                if var d = decoder { text += d.finish(); decoder = d }
                try progress(GenerationProgress(tokens: ids.count, maxTokens: options.maxNewTokens, text: text))
                return GenerationResult(ids: ids, text: text, stopReason: .stopToken(token))
            }
            if var d = decoder {
                let piece = d.append(token)
                decoder = d
                if !piece.isEmpty {
                    // Only a match that ends in the new piece can be new.
                    let searchFrom = text.utf8.count - (stops.map { $0.utf8.count }.max() ?? 0)
                    text += piece
                    if let (stop, cut) = Self.firstStop(stops, in: text, fromUTF8Offset: max(0, searchFrom)) {
                        text = cut
                        try progress(GenerationProgress(tokens: ids.count, maxTokens: options.maxNewTokens, text: text))
                        return GenerationResult(ids: ids, text: text, stopReason: .stopString(stop))
                    }
                }
            }
            if ids.count >= options.maxNewTokens {
                if var d = decoder { text += d.finish(); decoder = d }
                try progress(GenerationProgress(tokens: ids.count, maxTokens: options.maxNewTokens, text: text))
                return GenerationResult(ids: ids, text: text, stopReason: .maxNewTokens)
            }
            try progress(GenerationProgress(tokens: ids.count, maxTokens: options.maxNewTokens, text: text))
            logits = try forward(ids: [token], cache: cache)
        }
    }

    /// `generate(promptEmbeddings: embed(ids), …)` for a text-only prompt.
    public func generate(ids: [Int], cache: KVCache, options: GenerationOptions,
                         stopTokenIds: [Int] = [], stopStrings: [String] = [], tokenizer: (any Tokenizer)? = nil,
                         progress: (GenerationProgress) throws -> Void = { _ in }) throws -> GenerationResult {
        try generate(promptEmbeddings: try embed(ids), cache: cache, options: options, stopTokenIds: stopTokenIds,
                     stopStrings: stopStrings, tokenizer: tokenizer, progress: progress)
    }

    /// The earliest stop string occurring in `text` at or after the UTF-8 offset, and the text before it.
    static func firstStop(_ stops: [String], in text: String, fromUTF8Offset start: Int) -> (String, String)? {
        let bytes = Array(text.utf8)
        var best: (Int, String)? = nil
        for s in stops {
            let pat = Array(s.utf8)
            guard pat.count <= bytes.count else { continue }
            var i = start
            while i + pat.count <= bytes.count {
                if bytes[i] == pat[0] && Array(bytes[i..<i + pat.count]) == pat {
                    if best == nil || i < best!.0 { best = (i, s) }
                    break
                }
                i += 1
            }
        }
        guard let (at, s) = best else { return nil }
        return (s, String(decoding: bytes[0..<at], as: UTF8.self))
    }
}
