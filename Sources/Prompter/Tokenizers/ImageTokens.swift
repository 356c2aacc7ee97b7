/// LLaVA's `IMAGE_TOKEN_INDEX`: the id that marks where the 576 projected image embeddings go.
public let imageTokenIndex = -200

/// The text LLaVA prompts use for the image position.
public let imagePlaceholder = "<image>"

extension Tokenizer {
    /// LLaVA's `tokenizer_image_token`: split the prompt on `<image>`, tokenize each chunk separately
    /// (`tokenizer(chunk).input_ids`, i.e. with special tokens), and join the chunks with `imageTokenIndex`.
    /// When the first chunk starts with BOS, BOS is kept once and the first id of every chunk is dropped
    /// (each chunk's own BOS), exactly as the Python does.
    public func tokenizeWithImages(_ prompt: String, parseSpecialTokens: Bool = true) -> [Int] {
        let chunks = prompt.components(separatedBy: imagePlaceholder)
            .map { encode($0, addSpecialTokens: true, parseSpecialTokens: parseSpecialTokens) }
        var out: [Int] = []
        var offset = 0
        if let first = chunks.first?.first, let bos = specialTokenIds.bos, first == bos {
            offset = 1
            out.append(first)
        }
        // insert_separator(chunks, [IMAGE] * (offset + 1)), then drop `offset` ids from every element.
        for (i, c) in chunks.enumerated() {
            if i > 0 { out += [Int](repeating: imageTokenIndex, count: offset + 1).dropFirst(offset) }
            out += c.dropFirst(offset)
        }
        return out
    }
}

extension String {
    /// Python's `str.split(sep)` (keeps empty pieces; no Foundation).
    func components(separatedBy sep: String) -> [String] {
        let s = Array(unicodeScalars), t = Array(sep.unicodeScalars)
        guard !t.isEmpty else { return [self] }
        var out: [String] = []
        var start = 0, i = 0
        while i + t.count <= s.count {
            if s[i..<(i + t.count)].elementsEqual(t) {
                out.append(String(String.UnicodeScalarView(s[start..<i])))
                i += t.count
                start = i
            } else {
                i += 1
            }
        }
        out.append(String(String.UnicodeScalarView(s[start...])))
        return out
    }
}
