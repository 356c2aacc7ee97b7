import Foundation
import Testing
@testable import Prompter

struct TemplateFixture: Decodable {
    struct Message: Decodable { var role: String; var content: String; var image: Bool? }
    struct Conv: Decodable { var name: String; var system: String?; var messages: [Message] }
    var reference: [String: String]
    var default_systems: [String: String]
    var conversations: [Conv]
    var rendered: [String: [String: String]]
}

func loadTemplates() throws -> TemplateFixture {
    let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("chat/templates.json")))
    return try JSONDecoder().decode(TemplateFixture.self, from: data)
}

@Suite struct ChatTemplateTests {
    /// A two-turn example rendered by LLMGA's `llmga/llava/conversation.py` (https://github.com/dvlab-research/LLMGA,
    /// commit 7e32eb6), copied here verbatim for every family.
    static let reference: [ChatFamily: String] = [
        .llavaV1: "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions. USER: <image>\nGenerate a similar image. ASSISTANT: <gen_image> A red fox in snow. </gen_image></s>USER: Make it night. ASSISTANT:",
        .llavaLlama2: "[INST] <<SYS>>\nYou are LLMGA, a useful language and vision generation assistant. You can generate images according to the user's requirements. If the user wants you to inpaint or outpaint images, please imagine what is in the black mask parts of the image. If image generation is required, please provide a detailed description of the generated images in the form of <gen_image> DETAILED DESCRIPTION </gen_image>.\n<</SYS>>\n\n<image>\nGenerate a similar image. [/INST] <gen_image> A red fox in snow. </gen_image> </s><s>[INST] Make it night. [/INST]",
        .mistralInstruct: "[INST] <<SYS>>\n\n<</SYS>>\n\n<image>\nGenerate a similar image. [/INST] <gen_image> A red fox in snow. </gen_image> </s><s>[INST] Make it night. [/INST]",
        .llama3: "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<image>\nGenerate a similar image.<|eot_id|><|start_header_id|>system<|end_header_id|>\n\n<gen_image> A red fox in snow. </gen_image><|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMake it night.<|eot_id|><|start_header_id|>system<|end_header_id|>\n\n",
        .qwen2: "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. The assistant gives helpful and honest answers.<|im_end|><|im_start|>user\n<image>\nGenerate a similar image.<|im_end|><|im_start|>assistant\n<gen_image> A red fox in snow. </gen_image><|im_end|><|im_start|>user\nMake it night.<|im_end|><|im_start|>assistant\n",
        .gemma: "<start_of_turn>user\n<image>\nGenerate a similar image.<end_of_turn>\n<start_of_turn>model\n<gen_image> A red fox in snow. </gen_image><end_of_turn>\n<eos><start_of_turn>user\nMake it night.<end_of_turn>\n<start_of_turn>model\n",
        .phi3: "<|user|>\n<image>\nGenerate a similar image.<|end|>\n<|assistant|>\n<gen_image> A red fox in snow. </gen_image><|end|>\n<|user|>\nMake it night.<|end|>\n<|assistant|>\n",
    ]

    @Test(arguments: ChatFamily.allCases)
    func rendersTheReferenceExample(family: ChatFamily) throws {
        let conv = Conversation(family: family, messages: [
            .user("Generate a similar image.", image: true),
            .assistant("<gen_image> A red fox in snow. </gen_image>"),
            .user("Make it night."),
        ])
        #expect(try conv.render() == Self.reference[family])
        // The fixture's reference strings (checked against the Jinja templates in Python) are the same text.
        #expect(try loadTemplates().reference[family.rawValue] == Self.reference[family])
    }

    @Test(arguments: ChatFamily.allCases)
    func matchesJinjaApplyChatTemplate(family: ChatFamily) throws {
        let fx = try loadTemplates()
        #expect(fx.default_systems[family.rawValue] == family.defaultSystemPrompt)
        let rendered = try #require(fx.rendered[family.rawValue])
        var checked = 0
        for c in fx.conversations {
            let msgs = c.messages.map { ChatMessage(role: $0.role == "user" ? .user : .assistant, text: $0.content, hasImage: $0.image ?? false) }
            let conv = Conversation(family: family, system: c.system, messages: msgs)
            guard let expected = rendered[c.name] else {
                #expect(throws: PrompterError.self) { try conv.render() }   // gemma/phi_3 with a system prompt
                continue
            }
            #expect(try conv.render() == expected, "\(family.rawValue) \(c.name)")
            checked += 1
        }
        #expect(checked >= 4)
    }

    @Test func rejectsMalformedConversations() {
        #expect(throws: PrompterError.self) { try Conversation(family: .qwen2).render() }
        #expect(throws: PrompterError.self) { try Conversation(family: .qwen2, messages: [.assistant("hi")]).render() }
        #expect(throws: PrompterError.self) { try Conversation(family: .qwen2, messages: [.user("a"), .user("b")]).render() }
        #expect(throws: PrompterError.self) {
            try Conversation(family: .llama3, messages: [.user("a", image: true), .assistant("b"), .user("c", image: true)]).render()
        }
        #expect(throws: PrompterError.self) { try Conversation(family: .gemma, system: "be brief", messages: [.user("a")]).render() }
        #expect(throws: Never.self) { try Conversation(family: .gemma, system: "", messages: [.user("a")]).render() }
    }

    @Test func stopIdsComeFromTheTokenizer() throws {
        let qwen = try loadFixtureTokenizer("qwen2").tokenizer
        let ids = ChatFamily.qwen2.stopTokenIds(qwen)
        #expect(ids.contains(try #require(qwen.tokenToId("<|im_end|>"))))
        #expect(ids.contains(try #require(qwen.tokenToId("<|endoftext|>"))))
        let llama3 = try loadFixtureTokenizer("llama3").tokenizer
        #expect(ChatFamily.llama3.stopTokenIds(llama3).first == llama3.tokenToId("<|eot_id|>"))
        let vicuna = try loadFixtureTokenizer("llama2-spm").tokenizer
        #expect(ChatFamily.llavaV1.stopTokenIds(vicuna) == [2])
    }

    @Test func familyFromModelName() {
        #expect(ChatFamily.infer(fromModelName: "llmga-vicuna-7b-v1.5-full-finetune") == .llavaV1)
        #expect(ChatFamily.infer(fromModelName: "llmga-mistral_instruct-full-finetune") == .mistralInstruct)
        #expect(ChatFamily.infer(fromModelName: "llmga-llama3-8b-it-full-finetune") == .llama3)
        #expect(ChatFamily.infer(fromModelName: "llmga-Qwen2-0.5B-full-finetune") == .qwen2)
        #expect(ChatFamily.infer(fromModelName: "llmga-Phi-3-mini-128k-full-finetune") == .phi3)
        #expect(ChatFamily.infer(fromModelName: "llmga-gemma-2b-it-full-finetune") == .gemma)
        #expect(ChatFamily.infer(fromModelName: "llmga-llama-2-7b-chat-full-finetune") == .llavaLlama2)
        #expect(ChatFamily.infer(fromModelName: "something-else") == nil)
    }

    /// The rendered prompt tokenizes with BOS once and -200 where the image goes.
    @Test func conversationInputIds() throws {
        let t = try loadFixtureTokenizer("llama2-spm").tokenizer
        let conv = Conversation(family: .llavaV1, messages: [.user("Generate a similar image.", image: true)])
        let ids = try conv.inputIds(t)
        #expect(ids.first == 1)
        #expect(ids.filter { $0 == imageTokenIndex }.count == 1)
        #expect(ids.filter { $0 == 1 }.count == 1)
        let q = try loadFixtureTokenizer("qwen2").tokenizer
        let qids = try Conversation(family: .qwen2, messages: [.user("Inpaint this image.", image: true)]).inputIds(q)
        #expect(qids.first == q.tokenToId("<|im_start|>"))
        #expect(qids.filter { $0 == imageTokenIndex }.count == 1)
        #expect(qids.filter { $0 == q.tokenToId("<|im_end|>") }.count == 2)
    }
}
