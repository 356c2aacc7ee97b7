import Foundation
import Imaging
import Testing
@testable import Prompter

/// A backend that answers from a script and records what it was sent (a real `PrompterBackend`, so the
/// session code under test is exactly what the nodes run).
final class ScriptedBackend: PrompterBackend, @unchecked Sendable {
    let identity = "scripted"
    let family: ChatFamily?
    let acceptsImages: Bool
    private let lock = NSLock()
    private var replies: [String]
    private(set) var seen: [(rendered: String, image: Image?, options: GenerationOptions)] = []

    init(family: ChatFamily? = .qwen2, acceptsImages: Bool = true, replies: [String]) {
        self.family = family; self.acceptsImages = acceptsImages; self.replies = replies
    }

    func reply(to conversation: Conversation, image: Image?, options: GenerationOptions,
               progress: @Sendable (GenerationProgress) throws -> Void) async throws -> String {
        let r: String = lock.withLock {
            seen.append((try! conversation.render(), image, options))
            return replies.removeFirst()
        }
        try progress(GenerationProgress(tokens: 1, maxTokens: options.maxNewTokens, text: r))
        return r
    }
}

private func picture(_ w: Int, _ h: Int) -> Image {
    var px: [Float] = []
    for y in 0..<h { for x in 0..<w { px += [Float(x) / Float(w), Float(y) / Float(h), 0.5] } }
    return Image(width: w, height: h, channels: 3, pixels: px)
}

@Suite struct SessionTests {
    @Test func textToImageRefinesAndKeepsHistory() async throws {
        let b = ScriptedBackend(replies: ["Sure! <gen_image> a large red star on a blue background </gen_image><|im_end|>"])
        let r = try await PrompterSession.run(PrompterRequest(task: .textToImage(keywords: "a red star")), backend: b,
                                              options: GenerationOptions(seed: 3))
        #expect(r.prompt == "a large red star on a blue background")
        #expect(r.prompts.count == 1)
        #expect(r.reply == "Sure!")
        #expect(r.history.conversation.messages.map(\.role) == [.user, .assistant])
        #expect(r.history.conversation.messages[0].text == "a red star Generate this image based on given keywords.")
        // History keeps the reply without the stop token.
        #expect(r.history.conversation.messages[1].text == "Sure! <gen_image> a large red star on a blue background </gen_image>")
        #expect(b.seen[0].rendered.hasSuffix("<|im_start|>user\na red star Generate this image based on given keywords.<|im_end|><|im_start|>assistant\n"))
        #expect(b.seen[0].options.seed == 3)
    }

    @Test func replyWithoutTagsHasNoPrompt() async throws {
        let b = ScriptedBackend(replies: ["A red star is a star that is red."])
        let r = try await PrompterSession.run(PrompterRequest(task: .expand(text: "a red star")), backend: b, options: .init())
        #expect(r.prompt == nil)
        #expect(r.prompts.isEmpty)
        #expect(r.reply == "A red star is a star that is red.")
    }

    @Test func inpaintBlacksOutTheMaskedPixels() async throws {
        let img = picture(8, 6)
        var mask = Image.mask(width: 8, height: 6)
        for y in 2..<4 { for x in 3..<6 { mask.pixels[y * 8 + x] = 1 } }
        mask.pixels[0] = 0.49   // below the 0.5 threshold: kept
        let b = ScriptedBackend(replies: ["<gen_image> a cat on a sofa </gen_image>"])
        let r = try await PrompterSession.run(PrompterRequest(task: .inpaint(), image: img, mask: mask), backend: b, options: .init())
        #expect(r.prompt == "a cat on a sofa")
        let seen = try #require(b.seen[0].image)
        for y in 0..<6 {
            for x in 0..<8 {
                let hole = (2..<4).contains(y) && (3..<6).contains(x)
                for c in 0..<3 {
                    let v = seen.pixels[(y * 8 + x) * 3 + c]
                    #expect(v == (hole ? 0 : img.pixels[(y * 8 + x) * 3 + c]))
                }
            }
        }
        #expect(b.seen[0].rendered.contains("<image>\nInpaint this image."))
        #expect(r.history.image == seen)
    }

    @Test func editTakesTwoTurnsAndReturnsBothPrompts() async throws {
        let b = ScriptedBackend(replies: ["<gen_image> a red circle </gen_image>", "<gen_image> a green circle </gen_image>"])
        let r = try await PrompterSession.run(PrompterRequest(task: .edit(instruction: "make the circle green"), image: picture(4, 4)),
                                              backend: b, options: .init())
        #expect(r.sourcePrompt == "a red circle")
        #expect(r.prompt == "a green circle")
        #expect(b.seen.count == 2)
        #expect(b.seen[1].rendered.contains("Generate a similar image<|im_end|><|im_start|>assistant\n<gen_image> a red circle </gen_image><|im_end|><|im_start|>user\nmake the circle green<|im_end|>"))
        #expect(r.history.conversation.messages.count == 4)
    }

    @Test func conversationCarriesAcrossRequestsThroughJSON() async throws {
        let b = ScriptedBackend(family: .llavaV1, replies: ["<gen_image> a fox in snow </gen_image></s>", "<gen_image> a fox in snow at night </gen_image></s>"])
        let first = try await PrompterSession.run(PrompterRequest(task: .similarImage(), image: picture(5, 3)), backend: b, options: .init())
        let text = try first.history.json()
        let back = try PrompterHistory(json: text)
        #expect(back.conversation == first.history.conversation)
        #expect(back.image?.width == 5)
        // Same JSON text for the same conversation (stable key order): the engine's cache keys rely on it.
        #expect(try back.json() == text)
        let second = try await PrompterSession.run(PrompterRequest(task: .chat(text: "Make it night."), history: back), backend: b, options: .init())
        #expect(second.prompt == "a fox in snow at night")
        #expect(b.seen[1].rendered == "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions. USER: <image>\nGenerate a similar image. ASSISTANT: <gen_image> a fox in snow </gen_image></s>USER: Make it night. ASSISTANT:")
        // The picture of the first turn goes with every later turn.
        #expect(b.seen[1].image != nil)
    }

    @Test func clearErrors() async throws {
        let b = ScriptedBackend(replies: ["x", "x", "x", "x", "x"])
        await #expect(throws: PrompterError("the similar task needs an image")) {
            try await PrompterSession.run(PrompterRequest(task: .similarImage()), backend: b, options: .init())
        }
        await #expect(throws: PrompterError("the inpaint task needs a mask (white = region to fill)")) {
            try await PrompterSession.run(PrompterRequest(task: .inpaint(), image: picture(2, 2)), backend: b, options: .init())
        }
        await #expect(throws: PrompterError("a mask was given but the t2i task uses no image")) {
            try await PrompterSession.run(PrompterRequest(task: .textToImage(keywords: "x"), mask: .mask(width: 2, height: 2)), backend: b, options: .init())
        }
        await #expect(throws: PrompterError("top-p must be in (0, 1], got 0.0")) {
            try await PrompterSession.run(PrompterRequest(task: .textToImage(keywords: "x")), backend: b, options: .init(topP: 0))
        }
        let textOnly = ScriptedBackend(acceptsImages: false, replies: ["x"])
        await #expect(throws: PrompterError("scripted does not accept images; the describe task needs one")) {
            try await PrompterSession.run(PrompterRequest(task: .describeImage, image: picture(2, 2)), backend: textOnly, options: .init())
        }
        #expect(b.seen.isEmpty)
    }

    @Test func secondImageInOneConversationIsRefused() async throws {
        let b = ScriptedBackend(replies: ["<gen_image> a </gen_image>", "x"])
        let first = try await PrompterSession.run(PrompterRequest(task: .similarImage(), image: picture(2, 2)), backend: b, options: .init())
        await #expect(throws: PrompterError.self) {
            try await PrompterSession.run(PrompterRequest(task: .describeImage, image: picture(2, 2), history: first.history), backend: b, options: .init())
        }
    }

    @Test func badConversationJSONIsNamed() throws {
        #expect(throws: PrompterError("not an llmga conversation (expected the JSON a prompter node writes): missing key \"family\"", source: "node p, port conversation")) {
            try PrompterHistory(json: #"{"format":"llmga.conversation/1","messages":[]}"#, source: "node p, port conversation")
        }
        #expect(throws: PrompterError("unknown chat family \"klingon\"; known: llava_v1, llava_llama_2, mistral_instruct, llama_3, qwen_2, gemma, phi_3", source: "c")) {
            try PrompterHistory(json: #"{"format":"llmga.conversation/1","family":"klingon","messages":[]}"#, source: "c")
        }
        #expect(throws: PrompterError("a message refers to an image but the conversation carries none", source: "c")) {
            try PrompterHistory(json: #"{"format":"llmga.conversation/1","family":"qwen_2","messages":[{"role":"user","text":"hi","image":true}]}"#, source: "c")
        }
    }
}
