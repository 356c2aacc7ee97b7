import Foundation
import Testing
import Tensor
@testable import Diffusion

@Suite struct CLIPPromptEncoderTests {
    static func encoder() throws -> CLIPPromptEncoder {
        CLIPPromptEncoder(tokenizer: try CLIPFixtures.smallTokenizer(), textModel: try CLIPFixtures.f32())
    }

    /// The examples of lpw's `parse_prompt_attention` docstring (weights exactly as Python computes them).
    @Test func parsesA1111Syntax() throws {
        func parse(_ s: String) throws -> [String] {
            try CLIPPromptEncoder.parseAttention(s).map { "\($0.text)|\($0.weight)" }
        }
        #expect(try parse("normal text") == ["normal text|1.0"])
        #expect(try parse("an (important) word") == ["an |1.0", "important|1.1", " word|1.0"])
        #expect(try parse("(unbalanced") == ["unbalanced|1.1"])
        #expect(try parse("\\(literal\\]") == ["(literal]|1.0"])
        #expect(try parse("(unnecessary)(parens)") == ["unnecessaryparens|1.1"])
        #expect(try parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).") == [
            "a |1.0", "house|1.5730000000000004", " |1.1", "on|1.0", " a |1.1", "hill|0.55", ", sun, |1.1",
            "sky|1.4641000000000006", ".|1.1"])
        #expect(try parse("") == ["|1.0"])
        #expect(try parse("a:1.2) b [c] d\\x") == ["a:1.2) b |1.0", "c|0.9090909090909091", " dx|1.0"])
        #expect(try parse("x (y:١.٥) z") == ["x |1.0", "y|1.5", " z|1.0"])  // \d is any Unicode digit, as in Python
        #expect(try parse("(w:-.5)") == ["w|-0.5"])
        #expect { try CLIPPromptEncoder.parseAttention("(x:1.2.3)") } throws: { "\($0)".contains("1.2.3") }
    }

    /// lpw token layout on the real vocabulary: window count, ids (BOS, tokens, PAD…, EOS) and weights.
    @Test func longPromptLayoutMatchesUpstream() throws {
        let real = CLIPPromptEncoder(tokenizer: try CLIPFixtures.realTokenizer(), textModel: try CLIPFixtures.f32())
        let cases = try #require(try CLIPFixtures.json("tokens.json")["long"] as? [[String: Any]])
        #expect(cases.count == 12)
        var sawMultiple = false
        for c in cases {
            let middle: CLIPPromptEncoder.MiddleTokens = (c["no_boseos_middle"] as! Bool) ? .drop : .keep
            let r = try real.chunk(prompt: c["prompt"] as! String, negative: c["negative"] as! String,
                                   maxChunks: (c["max_chunks"] as! NSNumber).intValue, weighting: .parentheses,
                                   middleTokens: middle)
            #expect(r.chunks == (c["chunks"] as! NSNumber).intValue)
            #expect(r.promptIDs == CLIPFixtures.ints(c["prompt_ids"]))
            #expect(r.negativeIDs == CLIPFixtures.ints(c["negative_ids"]))
            // Foundation's JSON parser on Linux is not correctly rounded (0.9090909090909091 reads as …092):
            // compare the Float32 weights the encoder uses, and the Doubles to 1e-15.
            for (mine, theirs) in [(r.promptWeights, CLIPFixtures.doubles(c["prompt_weights"])),
                                   (r.negativeWeights, CLIPFixtures.doubles(c["negative_weights"]))] {
                #expect(mine.count == theirs.count)
                #expect(mine.map(Float.init) == theirs.map(Float.init))
                #expect(zip(mine, theirs).allSatisfy { abs($0 - $1) <= 1e-15 })
            }
            sawMultiple = sawMultiple || r.chunks > 1
        }
        #expect(sawMultiple)
    }

    /// LLMGA long-prompt embeddings (both middle-token modes, weighting on and off, clip skip) against
    /// the torch computation.
    @Test func longPromptEmbeddingsMatchUpstream() throws {
        let cases = try #require(try CLIPFixtures.json("expected.json")["long"] as? [[String: Any]])
        var worst: Float = 0
        for (j, c) in cases.enumerated() {
            let middle: CLIPPromptEncoder.MiddleTokens = (c["no_boseos_middle"] as! Bool) ? .drop : .keep
            let weighting: CLIPPromptEncoder.Weighting = (c["weighting"] as! Bool) ? .parentheses : .none
            let (cond, uncond) = try Self.encoder().encode(
                prompt: c["prompt"] as! String, negative: c["negative"] as! String,
                maxChunks: (c["max_chunks"] as! NSNumber).intValue, clipSkip: (c["clip_skip"] as! NSNumber).intValue,
                weighting: weighting, middleTokens: middle)
            let shape = CLIPFixtures.ints(c["shape"])
            #expect(cond.shape == [1] + shape && uncond.shape == [1] + shape)
            worst = max(worst, try expectClose(cond, "long\(j).cond"))
            worst = max(worst, try expectClose(uncond, "long\(j).uncond"))
        }
        print("LLMGA long-prompt encoding: worst max-abs error / max|ref| = \(worst)")
    }

    @Test func lengthsOfTheTwoModes() throws {
        let encoder = try Self.encoder()
        let long = String(repeating: "a cat on a mat ", count: 20)  // 140 tokens with the small vocabulary: 2 windows
        #expect(encoder.tokenizer.encode(long).count == 140)
        let keep = try encoder.encode(prompt: long, maxChunks: 3)
        let drop = try encoder.encode(prompt: long, maxChunks: 3, middleTokens: .drop)
        #expect(keep.cond.shape == [1, 154, 32] && keep.uncond.shape == [1, 154, 32])
        #expect(drop.cond.shape == [1, 152, 32] && drop.uncond.shape == [1, 152, 32])
        // .drop keeps window 0's rows 0..<76 and window 1's rows 1..<77; .keep all of both.
        let k = keep.cond.scalars, d = drop.cond.scalars
        #expect(Array(d[0..<(76 * 32)]) == Array(k[0..<(76 * 32)]))
        #expect(Array(d[(76 * 32)...]) == Array(k[(78 * 32)...]))
        let one = try encoder.encode(prompt: long, maxChunks: 1)
        #expect(one.cond.shape == [1, 77, 32])
        #expect(throws: DiffusionError.self) { try Self.encoder().encode(prompt: "x", maxChunks: 0) }
    }

    /// diffusers' StableDiffusionPipeline encoding: clip skip on the prompt only.
    @Test func truncatedEncodingMatchesDiffusers() throws {
        let ps = try CLIPTextModelTests.prompts()
        let (cond, uncond) = try Self.encoder().encodeTruncated(prompt: ps[0]["text"] as! String, negative: "")
        try expectClose(cond, "p0.f32.last")
        try expectClose(uncond, "p1.f32.last")
        let skipped = try Self.encoder().encodeTruncated(prompt: ps[2]["text"] as! String, negative: ps[3]["text"] as! String,
                                                       clipSkip: 1)
        try expectClose(skipped.cond, "p2.f32.skip1")
        try expectClose(skipped.uncond, "p3.f32.last")
    }
}
