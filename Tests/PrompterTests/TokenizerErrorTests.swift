import Foundation
import Testing
@testable import Prompter

@Suite struct TokenizerErrorTests {
    func tempFolder(_ files: [String: [UInt8]]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prompter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, bytes) in files { try Data(bytes).write(to: dir.appendingPathComponent(name)) }
        return dir.path
    }

    func fixtureBytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: fixturePath(path))))
    }

    @Test func errorsNameTheFile() throws {
        let broken = try tempFolder(["tokenizer.json": Array("{\"model\": ".utf8)])
        do { _ = try TokenizerLoader.load(folder: broken); Issue.record("loaded a broken file") } catch let e as PrompterError {
            #expect(e.source == broken + "/tokenizer.json")
            #expect(e.description.contains("tokenizer.json"))
        }
        let badConfig = try tempFolder(["tokenizer.model": try fixtureBytes("tokenizers/llama2-spm/tokenizer.model"),
                                        "tokenizer_config.json": Array("{\"legacy\": \"yes\"}".utf8)])
        do { _ = try TokenizerLoader.load(folder: badConfig); Issue.record("accepted a bad config") } catch let e as PrompterError {
            #expect(e.source == badConfig + "/tokenizer_config.json")
            #expect(e.message.contains("legacy"))
        }
        let empty = try tempFolder([:])
        #expect(throws: PrompterError("no tokenizer.json or tokenizer.model", source: empty)) { try TokenizerLoader.load(folder: empty) }
        #expect(throws: PrompterError.self) { try TokenizerLoader.load(folder: empty + "/missing") }
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let unigram = #"{"model": {"type": "Unigram", "vocab": []}}"#
        #expect(throws: PrompterError("model: model type Unigram is not supported (only BPE)", source: "t.json")) {
            try HFTokenizer(json: Array(unigram.utf8), source: "t.json")
        }
        let wp = #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "BertPreTokenizer"}}"#
        #expect(throws: PrompterError("pre_tokenizer BertPreTokenizer is not supported", source: "t.json")) {
            try HFTokenizer(json: Array(wp.utf8), source: "t.json")
        }
        let badMerge = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}"#
        #expect(throws: PrompterError("model: merge 1: merged token \"ab\" is not in the vocabulary", source: "t.json")) {
            try HFTokenizer(json: Array(badMerge.utf8), source: "t.json")
        }
    }

    /// Truncated and corrupted tokenizer.json never crash: they load or throw a PrompterError naming the file.
    @Test func fuzzTokenizerJSON() throws {
        let good = try fixtureBytes("tokenizers/llama3/tokenizer.json")
        var rng = SplitMix(state: 1)
        var thrown = 0
        for i in 0..<400 {
            var b = good
            if i < 150 {
                b = Array(b.prefix(Int.random(in: 0..<good.count, using: &rng)))
            } else if i < 350 {
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            } else {
                b = (0..<Int.random(in: 0...2000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            do {
                let t = try HFTokenizer(json: b, source: "fuzz.json")
                _ = t.decode(t.encode("Hello <|eot_id|> wörld 🦊"))
            } catch let e as PrompterError {
                #expect(e.source == "fuzz.json")
                thrown += 1
            }
        }
        #expect(thrown > 300)
    }

    /// Truncated and corrupted tokenizer.model (protobuf) never crash.
    @Test func fuzzSentencePieceModel() throws {
        let good = try fixtureBytes("tokenizers/mistral-spm/tokenizer.model")
        var rng = SplitMix(state: 2)
        var thrown = 0
        for i in 0..<600 {
            var b = good
            if i < 250 {
                b = Array(b.prefix(Int.random(in: 0..<good.count, using: &rng)))
            } else if i < 550 {
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            } else {
                b = (0..<Int.random(in: 0...3000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            do {
                let t = try SentencePieceTokenizer(model: b, source: "fuzz.model")
                _ = t.decode(t.encode("Hello <s> wörld 🦊 <gen_image>"))
            } catch let e as PrompterError {
                #expect(e.source == "fuzz.model")
                thrown += 1
            }
        }
        #expect(thrown > 250)
    }

    @Test func protobufReaderLimits() {
        var r = ProtoReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(throws: PrompterError.self) { try r.varint() }
        var r2 = ProtoReader([0x0A, 0x05, 0x41])   // field 1, length 5, one byte present
        #expect(throws: PrompterError.self) { _ = try r2.tag(); _ = try r2.lengthDelimited() }
        #expect(throws: PrompterError.self) { try SentencePieceModel(bytes: []) }
    }
}
