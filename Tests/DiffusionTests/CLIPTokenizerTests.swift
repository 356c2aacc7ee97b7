import Foundation
import Testing
@testable import Diffusion

@Suite struct CLIPTokenizerTests {
    @Test func bundledVocabularyHasTheRealSizes() throws {
        let t = try CLIPFixtures.realTokenizer()
        #expect(t.vocabularySize == 49408)
        #expect(t.bosTokenID == 49406 && t.eosTokenID == 49407 && t.padTokenID == 49407 && t.unkTokenID == 49407)
        #expect(t.modelMaxLength == 77)
        let merges = try CLIPTokenizer.readMerges(CLIPFixtures.assets + "/merges.txt")
        #expect(merges.count == 48894)
        #expect(merges.first! == ("i", "n"))
    }

    /// The vectors measured in sd15-models.md §3.2.
    @Test func referenceVectors() throws {
        let t = try CLIPFixtures.realTokenizer()
        #expect(t.encodePadded("").prefix(3) == [49406, 49407, 49407])
        #expect(t.encode("a photo of a cat") == [320, 1125, 539, 320, 2368])
        #expect(t.encode("A  Photo of a CAT, 2023!") == [320, 1125, 539, 320, 2368, 267, 273, 271, 273, 274, 256])
        #expect(t.encode("a cat's toy") == [320, 2368, 568, 5988])
        #expect(t.encode("résumé café") == [29106, 7054, 4166, 15304])
        #expect(t.encode("photo of a cat riding on a bicycle") == [1125, 539, 320, 2368, 6765, 525, 320, 11652])
    }

    /// Every tricky string against transformers' CLIPTokenizer on the same vocabulary.
    @Test func trickyStringsMatchTransformers() throws {
        let t = try CLIPFixtures.realTokenizer()
        let cases = try #require(try CLIPFixtures.json("tokens.json")["tricky"] as? [[String: Any]])
        #expect(cases.count >= 25)
        for c in cases {
            let text = c["text"] as! String
            #expect(t.encode(text) == CLIPFixtures.ints(c["ids"]), "\(text.debugDescription)")
            #expect(t.encodePadded(text) == CLIPFixtures.ints(c["padded77"]), "\(text.debugDescription)")
        }
    }

    /// A small vocabulary read from a tokenizer folder with non-standard BOS/EOS ids, and the SD2-style
    /// folder whose pad token is "!" (which transformers also matches inside the text as a special token).
    @Test func tokenizerFoldersAndPadToken() throws {
        let small = try CLIPFixtures.smallTokenizer()
        let sd2 = try CLIPTokenizer(folder: CLIPFixtures.path("tok-small-sd2"))
        #expect(small.bosTokenID == 912 && small.eosTokenID == 913 && small.padTokenID == 913)
        #expect(sd2.padTokenID == 0 && sd2.eosTokenID == 913)
        let cases = try #require(try CLIPFixtures.json("expected.json")["small_tokens"] as? [[String: Any]])
        for c in cases {
            let text = c["text"] as! String
            #expect(small.encode(text) == CLIPFixtures.ints(c["ids"]), "\(text.debugDescription)")
            #expect(small.encodePadded(text) == CLIPFixtures.ints(c["padded77"]), "\(text.debugDescription)")
            #expect(sd2.encodePadded(text) == CLIPFixtures.ints(c["padded77_sd2"]), "\(text.debugDescription)")
        }
    }

    /// A folder with only tokenizer.json + tokenizer_config.json (what transformers 5 saves) gives the ids
    /// transformers gives for that folder.
    @Test func tokenizerJSONOnlyFolder() throws {
        let t = try CLIPTokenizer(folder: CLIPFixtures.path("tok-json"))
        #expect(t.bosTokenID == 912 && t.eosTokenID == 913 && t.padTokenID == 913)
        #expect(t.source.hasSuffix("tok-json/tokenizer.json"))
        let cases = try #require(try CLIPFixtures.json("tok-json-cases.json")["cases"] as? [[String: Any]])
        #expect(cases.count >= 30)
        for c in cases {
            let text = c["text"] as! String
            #expect(t.encode(text) == CLIPFixtures.ints(c["ids"]), "\(text.debugDescription)")
            #expect(t.encodePadded(text) == CLIPFixtures.ints(c["padded77"]), "\(text.debugDescription)")
        }
    }

    @Test func tokenizerJSONErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokjson-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("tokenizer.json")
        try Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8).write(to: file)
        #expect(throws: DiffusionError("model.type is Unigram, expected BPE (a CLIP tokenizer)", file: file.path)) {
            try CLIPTokenizer(folder: dir.path)
        }
        try Data(#"{"model": {"type": "BPE", "vocab": {"a</w>": 0}, "merges": [["a"]]}}"#.utf8).write(to: file)
        #expect(throws: DiffusionError.self) { try CLIPTokenizer(folder: dir.path) }
    }

    @Test func truncatesToTheContextLength() throws {
        let t = try CLIPFixtures.realTokenizer()
        let ids = t.encodePadded(String(repeating: "cat ", count: 200))
        #expect(ids.count == 77 && ids[0] == 49406 && ids[76] == 49407 && ids[1..<76].allSatisfy { $0 == 2368 })
        #expect(t.encodePadded("a cat", length: 5) == [49406, 320, 2368, 49407, 49407])
    }

    @Test func longWordsAndRepeatsAreCachedConsistently() throws {
        let t = try CLIPFixtures.realTokenizer()
        let word = String(repeating: "abcdefghij", count: 500)
        let first = t.encode(word), second = t.encode(word)
        #expect(first == second && !first.isEmpty)
        #expect(t.encode("cat " + word) == [2368] + first)
    }

    @Test func concurrentUseGivesTheSameIds() async throws {
        let t = try CLIPFixtures.realTokenizer()
        let texts = (0..<32).map { "prompt number \($0): a (red:1.2) fox, résumé 日本語 🐱 \(String(repeating: "z", count: $0))" }
        let serial = texts.map { t.encode($0) }
        let parallel = await withTaskGroup(of: (Int, [Int]).self) { g in
            for (i, s) in texts.enumerated() { g.addTask { (i, t.encode(s)) } }
            var out = [[Int]](repeating: [], count: texts.count)
            for await (i, ids) in g { out[i] = ids }
            return out
        }
        #expect(parallel == serial)
    }

    @Test func errorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect {
            try CLIPTokenizer(folder: dir.path)
        } throws: { ($0 as? DiffusionError)?.file?.hasSuffix("vocab.json") == true }

        try #"{"a": 0, "b": 1, "ab</w>": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#
            .write(to: dir.appendingPathComponent("vocab.json"), atomically: true, encoding: .utf8)
        try "#version: 0.2\na b c\n".write(to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        #expect {
            try CLIPTokenizer(folder: dir.path)
        } throws: { e in
            let d = e as? DiffusionError
            return d?.file?.hasSuffix("merges.txt") == true && d!.message.contains("line 2")
        }
        try "#version: 0.2\na b\n".write(to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        #expect {
            try CLIPTokenizer(folder: dir.path)
        } throws: { ($0 as? DiffusionError)?.message.contains("\"ab\" is not in the vocabulary") == true }
        try #"{"pad_token": "<pad>"}"#.write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        try "#version: 0.2\n".write(to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        #expect {
            try CLIPTokenizer(folder: dir.path)
        } throws: { ($0 as? DiffusionError)?.message.contains("padding token \"<pad>\"") == true }
    }
}
