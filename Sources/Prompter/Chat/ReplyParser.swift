/// What the MLLM's reply asks for.
public struct PrompterReply: Sendable, Equatable {
    public enum Generation: Sendable, Equatable {
        /// One prompt per `<gen_image>…</gen_image>` block, in order (story mode gives several).
        case prompts([String])
        /// The reply has no generation block: answer with text only, generate nothing.
        case noGenerationPrompt
    }

    public var generation: Generation
    /// The reply without the tagged blocks (prose around them), whitespace tidied.
    public var text: String
    /// The reply to keep in the conversation history: stop strings and anything after them removed, trimmed.
    public var historyText: String

    /// The prompts (empty when there is no generation prompt).
    public var prompts: [String] {
        if case .prompts(let p) = generation { return p }
        return []
    }
}

/// Parses MLLM replies: the `<gen_image>`/`</gen_image>` tags of LLMGA's `llmga/llava/constants.py` and the
/// extraction of its `llmga/serve/cli-sd15*.py` (https://github.com/dvlab-research/LLMGA, commit 7e32eb6).
public enum ReplyParser {
    static let openTags = ["<gen_image>", "<gen_img>"]
    static let closeTags = ["</gen_image>", "</gen_img>"]

    /// Parses `raw` (the decoded reply). `stopStrings` (the family's, e.g. `</s>`, `<|im_end|>`) end the reply:
    /// text from the first one on is dropped.
    ///
    /// Blocks: `<gen_image>` or `<gen_img>` (any letter case) opens, `</gen_image>` or `</gen_img>` closes.
    /// A block with no closing tag runs to the end of the reply; repeated opening tags inside a block and
    /// repeated closing tags after it are dropped; a closing tag with no opening tag before it makes the text
    /// before it the prompt (LLMGA's "only end" case). Prompts have their whitespace collapsed, a leading
    /// label such as "Prompt:" and wrapping quotes removed; empty blocks are ignored.
    public static func parse(_ raw: String, stopStrings: [String]) -> PrompterReply {
        var s = Array(raw.unicodeScalars)
        // Cut at the first stop string.
        var cut = s.count
        for stop in stopStrings {
            if let r = find(Array(stop.unicodeScalars), in: s, from: 0, caseInsensitive: false) { cut = min(cut, r.lowerBound) }
        }
        s = Array(s[0..<cut])
        let history = trim(s)

        // Tag positions: (range, isOpen), left to right.
        var tags: [(Range<Int>, Bool)] = []
        var i = 0
        while i < s.count {
            var hit: (Range<Int>, Bool)? = nil
            if s[i] == "<" {
                for (list, isOpen) in [(openTags, true), (closeTags, false)] {
                    for t in list {
                        let ts = Array(t.unicodeScalars)
                        if i + ts.count <= s.count, matchesCaseInsensitive(s, at: i, ts) { hit = (i..<(i + ts.count), isOpen); break }
                    }
                    if hit != nil { break }
                }
            }
            if let h = hit { tags.append(h); i = h.0.upperBound } else { i += 1 }
        }

        var prompts: [String] = []
        var prose: [Unicode.Scalar] = []
        var pos = 0            // start of text not yet consumed
        var blockStart: Int? = nil
        var blockText: [Unicode.Scalar] = []
        var sawOpen = false
        for (r, isOpen) in tags {
            if isOpen {
                if blockStart == nil {
                    prose += s[pos..<r.lowerBound]
                    blockStart = r.upperBound
                    blockText = []
                } else {
                    blockText += s[blockStart!..<r.lowerBound]   // duplicated/nested opening tag: drop the tag
                    blockStart = r.upperBound
                }
                sawOpen = true
            } else {
                if let b = blockStart {
                    blockText += s[b..<r.lowerBound]
                    if let p = cleanPrompt(blockText) { prompts.append(p) }
                    blockStart = nil
                } else if !sawOpen && prompts.isEmpty {
                    // Closing tag with no opening one: the text before it is the prompt.
                    if let p = cleanPrompt(Array(s[pos..<r.lowerBound])) { prompts.append(p) }
                } else {
                    prose += s[pos..<r.lowerBound]   // stray closing tag: drop the tag
                }
                sawOpen = true
            }
            pos = r.upperBound
        }
        if let b = blockStart {
            blockText += s[b..<s.count]
            if let p = cleanPrompt(blockText) { prompts.append(p) }
        } else {
            prose += s[pos..<s.count]
        }
        return PrompterReply(generation: prompts.isEmpty ? .noGenerationPrompt : .prompts(prompts),
                             text: tidy(prose), historyText: history)
    }

    static func cleanPrompt(_ x: [Unicode.Scalar]) -> String? {
        var p = collapse(x)
        // Leading labels: "Prompt:", "Generation prompt -", "The image prompt:", ...
        let lower = p.lowercased()
        for label in ["the generation prompt", "generation prompt", "the image prompt", "image prompt", "detailed description",
                      "description", "the prompt", "prompt", "caption"] where lower.hasPrefix(label) {
            var rest = p.unicodeScalars.dropFirst(label.unicodeScalars.count)
            while rest.first == " " { rest = rest.dropFirst() }
            if let c = rest.first, c == ":" || c == "：" || c == "-" {
                rest = rest.dropFirst()
                p = String(String.UnicodeScalarView(rest)).trimmingSpaces
            }
            break
        }
        // Wrapping quotes.
        for (a, b) in [("\"", "\""), ("'", "'"), ("“", "”")] where p.count >= 2 && p.hasPrefix(a) && p.hasSuffix(b) {
            p = String(p.dropFirst().dropLast()).trimmingSpaces
        }
        return p.isEmpty ? nil : p
    }

    /// Collapses all whitespace runs (spaces, newlines, tabs) into one space and trims.
    static func collapse(_ x: [Unicode.Scalar]) -> String {
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for c in x {
            if c.properties.isWhitespace { pendingSpace = !out.isEmpty; continue }
            if pendingSpace { out.append(" "); pendingSpace = false }
            out.append(c)
        }
        return String(out)
    }

    /// Trims each line's trailing spaces, collapses runs of spaces and of blank lines, trims the ends.
    static func tidy(_ x: [Unicode.Scalar]) -> String {
        let lines = String(String.UnicodeScalarView(x)).split(separator: "\n", omittingEmptySubsequences: false)
            .map { collapse(Array($0.unicodeScalars)) }
        var out: [String] = []
        for l in lines where !(l.isEmpty && (out.last?.isEmpty ?? true)) { out.append(l) }
        while out.last?.isEmpty == true { out.removeLast() }
        return out.joined(separator: "\n")
    }

    static func trim(_ x: [Unicode.Scalar]) -> String {
        var lo = 0, hi = x.count
        while lo < hi && x[lo].properties.isWhitespace { lo += 1 }
        while hi > lo && x[hi - 1].properties.isWhitespace { hi -= 1 }
        return String(String.UnicodeScalarView(x[lo..<hi]))
    }

    static func matchesCaseInsensitive(_ s: [Unicode.Scalar], at i: Int, _ t: [Unicode.Scalar]) -> Bool {
        for k in 0..<t.count {
            var a = s[i + k].value, b = t[k].value
            if a >= 0x41 && a <= 0x5A { a += 0x20 }
            if b >= 0x41 && b <= 0x5A { b += 0x20 }
            if a != b { return false }
        }
        return true
    }

    static func find(_ t: [Unicode.Scalar], in s: [Unicode.Scalar], from: Int, caseInsensitive: Bool) -> Range<Int>? {
        guard !t.isEmpty, s.count >= t.count else { return nil }
        var i = from
        while i + t.count <= s.count {
            if caseInsensitive ? matchesCaseInsensitive(s, at: i, t) : s[i..<(i + t.count)].elementsEqual(t) { return i..<(i + t.count) }
            i += 1
        }
        return nil
    }
}

extension String {
    var trimmingSpaces: String { ReplyParser.trim(Array(unicodeScalars)) }
}
