/// The conversation templates of the LLMGA model families, as `llmga/llava/conversation.py` renders them
/// (https://github.com/dvlab-research/LLMGA, commit 7e32eb6). The rendered string carries no BOS: the tokenizer adds it (`encode` with special
/// tokens, or `tokenizeWithImages`).
public enum ChatFamily: String, CaseIterable, Sendable {
    /// Vicuna-7B/13B v1.5 (SeparatorStyle.TWO, inference conv `llava_v1`).
    case llavaV1 = "llava_v1"
    /// v1 LLMGA Llama-2-chat checkpoints (SeparatorStyle.LLAMA_2 with the LLMGA system prompt).
    case llavaLlama2 = "llava_llama_2"
    /// Mistral-7B-Instruct-v0.2 (LLAMA_2 style, empty system; the empty <<SYS>> block is still emitted).
    case mistralInstruct = "mistral_instruct"
    /// Meta-Llama-3-8B-Instruct (the assistant header is literally "system", as LLMGA trained it).
    case llama3 = "llama_3"
    /// Qwen2-0.5B/1.5B/7B-Instruct (chatml roles, no newline after <|im_end|>).
    case qwen2 = "qwen_2"
    /// gemma-2b-it.
    case gemma
    /// Phi-3-mini-128k-instruct.
    case phi3 = "phi_3"

    /// The system prompt conversation.py uses for the family ("" where the template has none).
    public var defaultSystemPrompt: String {
        switch self {
        case .llavaV1:
            return "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions."
        case .llavaLlama2:
            return "You are LLMGA, a useful language and vision generation assistant. You can generate images according to the user's requirements. If the user wants you to inpaint or outpaint images, please imagine what is in the black mask parts of the image. If image generation is required, please provide a detailed description of the generated images in the form of <gen_image> DETAILED DESCRIPTION </gen_image>."
        case .llama3:
            return "You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language."
        case .qwen2:
            return "A conversation between a user and an LLM-based AI assistant. The assistant gives helpful and honest answers."
        case .mistralInstruct, .gemma, .phi3:
            return ""
        }
    }

    /// Whether the template has a place for a system prompt (Gemma and Phi-3 templates have none).
    public var acceptsSystemPrompt: Bool { self != .gemma && self != .phi3 }

    /// Text that ends the assistant's turn. Generation stops on these (and on the tokenizer's EOS); they are
    /// removed from replies before parsing and before the reply goes back into the history.
    public var stopStrings: [String] {
        switch self {
        case .llavaV1, .llavaLlama2, .mistralInstruct: return ["</s>"]
        case .llama3: return ["<|eot_id|>", "<|end_of_text|>"]
        case .qwen2: return ["<|im_end|>", "<|endoftext|>"]
        case .gemma: return ["<end_of_turn>", "<eos>"]
        case .phi3: return ["<|end|>", "<|endoftext|>"]
        }
    }

    /// Ids to stop generation on: the tokenizer's EOS plus every stop string that is a single token.
    public func stopTokenIds(_ tokenizer: any Tokenizer) -> [Int] {
        var ids: [Int] = []
        if let e = tokenizer.specialTokenIds.eos { ids.append(e) }
        for s in stopStrings {
            if let id = tokenizer.tokenToId(s), !ids.contains(id) { ids.append(id) }
        }
        return ids
    }

    /// LLMGA's inference heuristics on the checkpoint folder name (`cli-sd15*.py`, §1.1): "llama3"/"llama-3"
    /// → llama_3, "qwen2" → qwen_2, "phi-3"/"phi3" → phi_3, "gemma" → gemma, "mistral" → mistral_instruct,
    /// "llama-2"/"llama2" → llava_llama_2, "v1"/"vicuna" → llava_v1. Nil when nothing matches.
    public static func infer(fromModelName name: String) -> ChatFamily? {
        let n = name.lowercased()
        if n.contains("llama3") || n.contains("llama-3") || n.contains("llama_3") { return .llama3 }
        if n.contains("qwen2") || n.contains("qwen-2") || n.contains("qwen_2") { return .qwen2 }
        if n.contains("phi-3") || n.contains("phi3") || n.contains("phi_3") { return .phi3 }
        if n.contains("gemma") { return .gemma }
        if n.contains("mistral") { return .mistralInstruct }
        if n.contains("llama-2") || n.contains("llama2") || n.contains("llama_2") { return .llavaLlama2 }
        if n.contains("vicuna") || n.contains("v1") { return .llavaV1 }
        return nil
    }
}

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case user, assistant }
    public var role: Role
    public var text: String
    /// The turn carries the image: its text is rendered as "<image>\n" + text (LLaVA puts the image in the
    /// first user turn that has one; only one image per conversation).
    public var hasImage: Bool

    public init(role: Role, text: String, hasImage: Bool = false) {
        self.role = role; self.text = text; self.hasImage = hasImage
    }
    public static func user(_ text: String, image: Bool = false) -> ChatMessage { .init(role: .user, text: text, hasImage: image) }
    public static func assistant(_ text: String) -> ChatMessage { .init(role: .assistant, text: text) }

    /// The message text as the template sees it.
    public var content: String { hasImage ? imagePlaceholder + "\n" + text : text }
}

/// A conversation in one family's template.
public struct Conversation: Sendable, Equatable {
    public var family: ChatFamily
    /// nil: the family's default system prompt.
    public var system: String?
    public var messages: [ChatMessage]

    public init(family: ChatFamily, system: String? = nil, messages: [ChatMessage] = []) {
        self.family = family; self.system = system; self.messages = messages
    }

    /// The prompt string the model expects. With `addGenerationPrompt` the open assistant turn is appended
    /// (conversation.py's trailing `(assistant, None)` message), so the model continues with its reply.
    /// Throws when turns do not alternate user/assistant starting with the user, when more than one turn
    /// has an image, or when a system prompt is given to a family whose template has none.
    public func render(addGenerationPrompt: Bool = true) throws -> String {
        guard let first = messages.first else { throw PrompterError("conversation has no messages") }
        guard first.role == .user else { throw PrompterError("conversation must start with a user turn") }
        for (i, m) in messages.enumerated() where m.role != (i % 2 == 0 ? .user : .assistant) {
            throw PrompterError("turn \(i + 1) should be \(i % 2 == 0 ? "user" : "assistant"): turns must alternate")
        }
        if messages.filter(\.hasImage).count > 1 { throw PrompterError("more than one turn has an image; LLaVA takes one image per conversation") }
        if let s = messages.first(where: \.hasImage), s.role != .user { throw PrompterError("only a user turn can carry the image") }
        if let system, !system.isEmpty, !family.acceptsSystemPrompt {
            throw PrompterError("the \(family.rawValue) template has no system prompt")
        }
        let sys = system ?? family.defaultSystemPrompt
        var out = ""
        switch family {
        case .llavaV1:
            // system + sep, then role + ": " + message + seps[i % 2]
            out = sys + " "
            for m in messages {
                out += m.role == .user ? "USER: " + m.content + " " : "ASSISTANT: " + m.content + "</s>"
            }
            if addGenerationPrompt && messages.last?.role == .user { out += "ASSISTANT:" }
        case .llavaLlama2, .mistralInstruct:
            for (i, m) in messages.enumerated() {
                if m.role == .user {
                    let body = i == 0 ? "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + m.content : m.content
                    out += (i == 0 ? "" : "<s>") + "[INST] " + body + " [/INST]"
                } else {
                    out += " " + m.content + " </s>"
                }
            }
        case .llama3:
            out = "<|start_header_id|>system<|end_header_id|>\n\n" + sys + "<|eot_id|>"
            for m in messages {
                out += "<|start_header_id|>" + (m.role == .user ? "user" : "system") + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>"
            }
            if addGenerationPrompt && messages.last?.role == .user { out += "<|start_header_id|>system<|end_header_id|>\n\n" }
        case .qwen2:
            out = "<|im_start|>system\n" + sys + "<|im_end|>"
            for m in messages {
                out += "<|im_start|>" + m.role.rawValue + "\n" + m.content + "<|im_end|>"
            }
            if addGenerationPrompt && messages.last?.role == .user { out += "<|im_start|>assistant\n" }
        case .gemma:
            for m in messages {
                out += m.role == .user ? "<start_of_turn>user\n" + m.content + "<end_of_turn>\n"
                                       : "<start_of_turn>model\n" + m.content + "<end_of_turn>\n<eos>"
            }
            if addGenerationPrompt && messages.last?.role == .user { out += "<start_of_turn>model\n" }
        case .phi3:
            for m in messages {
                out += (m.role == .user ? "<|user|>\n" : "<|assistant|>\n") + m.content + "<|end|>\n"
            }
            if addGenerationPrompt && messages.last?.role == .user { out += "<|assistant|>\n" }
        }
        return out
    }

    /// Renders and tokenizes the prompt as LLMGA does (`tokenizer_image_token`: BOS once, `imageTokenIndex`
    /// at the image position).
    public func inputIds(_ tokenizer: any Tokenizer) throws -> [Int] {
        tokenizer.tokenizeWithImages(try render())
    }
}
