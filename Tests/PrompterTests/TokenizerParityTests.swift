import Foundation
import Testing
@testable import Prompter

/// Ids and decodes of tokenizer.json files against the `tokenizers` library and transformers' AutoTokenizer
/// (fixtures made by tools/prompter/make_tokenizer_fixtures.py).
@Suite struct ByteLevelParityTests {
    @Test(arguments: ["qwen2", "llama3", "gpt2", "llama2-hfjson"])
    func idsMatchTokenizersLibrary(folder: String) throws {
        let loaded = try loadFixtureTokenizer(folder)
        #expect(loaded.tokenizer is HFTokenizer)
        let t = loaded.tokenizer
        let cases = try loadCases(folder)
        #expect(cases.cases.count > 60)
        for c in cases.cases {
            #expect(t.encode(c.text, addSpecialTokens: false, parseSpecialTokens: true) == c.ids, "\(folder) \(show(c.text))")
            #expect(t.encode(c.text) == c.ids_with_special, "\(folder) with special \(show(c.text))")
            if let plain = c.ids_special_as_text {
                #expect(t.encode(c.text, addSpecialTokens: false, parseSpecialTokens: false) == plain, "\(folder) specials as text \(show(c.text))")
            }
            if let slow = c.slow_ids_with_special {
                #expect(t.encode(c.text) == slow, "\(folder) vs slow LlamaTokenizer \(show(c.text))")
            }
            if let d = c.decoded {
                #expect(String(decoding: t.decodeBytes(c.ids_with_special), as: UTF8.self) == d, "\(folder) decode \(show(c.text))")
            }
            if let d = c.decoded_skip_special {
                #expect(String(decoding: t.decodeBytes(c.ids_with_special, skipSpecialTokens: true), as: UTF8.self) == d,
                        "\(folder) decode skipping specials \(show(c.text))")
            }
            if let d = c.auto_decoded {
                #expect(t.decode(c.ids_with_special) == d, "\(folder) AutoTokenizer decode \(show(c.text))")
            }
        }
        #expect(t.specialTokenIds.bos == cases.bos_token_id)
        #expect(t.specialTokenIds.eos == cases.eos_token_id)
        #expect(t.specialTokenIds.pad == cases.pad_token_id)
        for p in cases.image_prompts {
            #expect(t.tokenizeWithImages(p.prompt) == p.ids, "\(folder) image prompt \(show(p.prompt))")
        }
    }
}

/// tokenizer.model against `sentencepiece` and transformers' slow LlamaTokenizer (legacy true and false).
@Suite struct SentencePieceParityTests {
    @Test(arguments: ["llama2-spm", "mistral-spm", "nobytes-spm"])
    func idsMatchSentencepieceAndLlamaTokenizer(folder: String) throws {
        let loaded = try loadFixtureTokenizer(folder)
        let t = try #require(loaded.tokenizer as? SentencePieceTokenizer)
        let cases = try loadCases(folder)
        for c in cases.cases {
            let raw = try #require(c.sp_ids)
            #expect(t.model.encode(c.text) == raw, "\(folder) sentencepiece \(show(c.text))")
            #expect(String(decoding: t.decodeBytes(raw), as: UTF8.self) == c.sp_decoded, "\(folder) sentencepiece decode \(show(c.text))")
            #expect(t.encode(c.text) == c.ids_with_special, "\(folder) LlamaTokenizer \(show(c.text))")
            #expect(t.encode(c.text, addSpecialTokens: false, parseSpecialTokens: true) == c.ids, "\(folder) no BOS \(show(c.text))")
        }
        #expect(t.specialTokenIds.bos == cases.bos_token_id)
        #expect(t.specialTokenIds.eos == cases.eos_token_id)
        for p in cases.image_prompts {
            #expect(t.tokenizeWithImages(p.prompt) == p.ids, "\(folder) image prompt \(show(p.prompt))")
        }
    }
}
