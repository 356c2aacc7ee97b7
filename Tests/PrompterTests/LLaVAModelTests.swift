import Foundation
import Imaging
import Tensor
import Testing
@testable import Prompter

/// The whole LLaVA assembly (`LLaVAModel.load`: vision tower → projector → splice at -200 → Qwen2 decoder) against
/// transformers on the tiny fixture of tools/prompter/make_vision_fixtures.py, in both key layouts. The reference
/// logits are F32 computed from the F16-rounded weights; tolerance 5e-4 absolute on logits up to ~11 (measured 4e-5:
/// only the F32 accumulation order differs from torch's), and the 32 greedy tokens must be identical (the fixture
/// records each step's top-2 margin, all ≥ 0.05, far above that tolerance).
@Suite struct LLaVAModelTests {
    /// expected.json, read per test so that a missing or broken fixture is a test failure, not a crash.
    static func expectedValues() throws -> [String: Any] {
        let path = fixturePath("llava/expected.json")
        let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(path) is not a JSON object")
    }

    static func load(_ layout: String) throws -> LLaVAModel {
        // The llava layout names a hub tower ("openai/clip-vit-tiny-patch14-56") llmga cannot know: its
        // configuration comes from a config-only folder, the weights from the checkpoint.
        try LLaVAModel.load(folder: fixturePath("llava/\(layout)"),
                            visionTower: layout == "llava" ? fixturePath("llava/tower-config") : nil)
    }

    static func conversation(_ model: LLaVAModel) -> Conversation {
        Conversation(family: model.chatFamily, messages: [.user("Generate a similar image.", image: true)])
    }

    static func picture() throws -> Image {
        try ImageFile.read(contentsOf: URL(fileURLWithPath: fixturePath("vision/images/rgb45x30.png"))).image
    }

    @Test(arguments: ["llava", "hf"])
    func promptLogitsAndGreedyReplyMatchTransformers(layout: String) throws {
        let expected = try Self.expectedValues()
        let model = try Self.load(layout)
        #expect(model.chatFamily == .qwen2)
        #expect(model.acceptsImages)
        let conversation = Self.conversation(model)
        let rendered = try { var c = conversation; c.family = model.chatFamily; return try c.render() }()
        #expect(rendered == expected["prompt"] as? String)
        let ids = try model.promptIds(conversation)
        #expect(ids == expected["input_ids_llava"] as? [Int])

        // The projected image features alone.
        let features = try #require(model.vision).encode(try Self.picture())
        let referenceFeatures = try SafeTensorsFile(path: fixturePath("llava/reference.safetensors")).floats("image_features")
        let featureDiff = zip(features.withUnsafeBufferPointer { Array($0) }, referenceFeatures).map { abs($0 - $1) }.max()!
        #expect(featureDiff < 1e-4, "\(layout): max |Δfeature| \(featureDiff)")

        // Logits of every prompt position, image features spliced in.
        let embeddings = try model.inputEmbeddings(ids: ids, image: try Self.picture())
        let shape = try #require(expected["logits_shape"] as? [Int])
        #expect(embeddings.shape[0] == shape[0])
        let logits = try model.llm.forward(embeddings: embeddings, cache: model.llm.makeCache(capacity: shape[0]), allLogits: true)
        #expect(logits.shape == shape)
        let reference = try SafeTensorsFile(path: fixturePath("llava/reference.safetensors")).floats("logits")
        let ours = logits.withUnsafeBufferPointer { Array($0) }
        let maxDiff = zip(ours, reference).map { abs($0 - $1) }.max()!
        let firstBad = zip(ours, reference).enumerated().first { abs($0.element.0 - $0.element.1) > 5e-4 }.map { $0.offset / shape[1] }
        #expect(maxDiff < 5e-4, "\(layout): max |Δlogit| \(maxDiff), first bad position \(String(describing: firstBad))")

        // 32 greedy tokens, exactly.
        var options = GenerationOptions()
        options.temperature = 0
        options.maxNewTokens = 32
        let result = try model.generate(conversation: conversation, image: try Self.picture(), options: options)
        #expect(result.ids == expected["generated_ids"] as? [Int], "\(layout)")
        #expect(result.text.trimmingCharacters(in: .whitespacesAndNewlines)
                == (try #require(expected["generated_text"] as? String)).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Without the tower configuration the llava layout's unknown hub tower is a clear error naming it.
    @Test func unknownHubTowerIsAClearError() throws {
        #expect {
            _ = try LLaVAModel.load(folder: fixturePath("llava/llava"))
        } throws: { error in
            "\(error)".contains("openai/clip-vit-tiny-patch14-56") && "\(error)".contains("pass the CLIP folder")
        }
    }
}
