/// Request phrasings from LLMGA's training data (`llmga/llava/prompt_temp.py` in https://github.com/dvlab-research/LLMGA, commit 7e32eb6),
/// so that requests look like what the model was fine-tuned on.
public enum TaskPhrasings {
    /// Put before short keywords for text-to-image prompt refinement (`textextend_prompt`, examples).
    public static let textToImagePrefixes = ["Generate", "Produce", "Show me", "Give me an image about",
                                             "Please design an image that", "Generate an image based on given keywords."]
    /// Put after short keywords (`textextend_prompt_behind`, examples).
    public static let textToImageSuffixes = ["Generate this image based on given keywords.", "generate the image.",
                                             "What does it look like?", "Can you design this image?"]
    /// Prompt expansion without generation (`textextend_prompt2`): the model answers without tags.
    public static let expandPhrasings = ["Please provide a detailed description.", "Expand it.", "Enrich this statement."]
    public static let similarImage = ["Generate a similar image.", "Recreate the given image.",
                                      "Could you give me an image that looks similar?"]
    public static let describeImage = ["Describe the image."]
    public static let inpaint = ["Inpaint this image.", "Please fill in the blanks in the picture.", "Complete this image."]
    public static let outpaint = ["Extend this image.", "Outpaint this image.",
                                  "Create a seamless continuation of this scene beyond its current boundaries."]
    /// The editing CLI's hard-coded first turn (no final period).
    public static let editFirstTurn = "Generate a similar image"
}

/// What the prompter is asked to do; each mode builds the user turn(s) LLMGA expects.
public enum PrompterTask: Sendable, Equatable {
    /// Text-to-image prompt refinement from short keywords: `keywords + " " + suffix`.
    case textToImage(keywords: String, suffix: String = TaskPhrasings.textToImageSuffixes[0])
    /// Expand a short text into a detailed description, without asking for an image.
    case expand(text: String, phrasing: String = TaskPhrasings.expandPhrasings[0])
    /// Caption the image as a prompt for a similar image (image turn).
    case similarImage(phrasing: String = TaskPhrasings.similarImage[0])
    /// Describe the image (image turn; the answer carries no tags).
    case describeImage
    /// The image is the masked image (holes black); the reply describes the full picture.
    case inpaint(phrasing: String = TaskPhrasings.inpaint[0])
    /// The image is the canvas to extend.
    case outpaint(phrasing: String = TaskPhrasings.outpaint[0])
    /// Instruction editing, two turns: describe the source image, then apply the instruction. The first
    /// reply's prompt is the source prompt, the second's the target prompt.
    case edit(instruction: String)
    /// Free conversation; `withImage` puts the image in this turn.
    case chat(text: String, withImage: Bool = false)

    /// Whether the task needs an input image.
    public var needsImage: Bool {
        switch self {
        case .textToImage, .expand: return false
        case .chat(_, let withImage): return withImage
        default: return true
        }
    }

    /// The user turns, in order. `edit` gives two: send the second after the model has answered the first.
    /// Throws on empty keywords, text or instruction.
    public func userTurns() throws -> [ChatMessage] {
        func nonEmpty(_ s: String, _ what: String) throws -> String {
            let t = s.trimmingSpaces
            if t.isEmpty { throw PrompterError("the \(what) is empty") }
            return t
        }
        switch self {
        case .textToImage(let keywords, let suffix):
            return [.user(try nonEmpty(keywords, "keywords") + " " + suffix)]
        case .expand(let text, let phrasing):
            return [.user(try nonEmpty(text, "text to expand") + " " + phrasing)]
        case .similarImage(let phrasing):
            return [.user(phrasing, image: true)]
        case .describeImage:
            return [.user(TaskPhrasings.describeImage[0], image: true)]
        case .inpaint(let phrasing):
            return [.user(phrasing, image: true)]
        case .outpaint(let phrasing):
            return [.user(phrasing, image: true)]
        case .edit(let instruction):
            return [.user(TaskPhrasings.editFirstTurn, image: true), .user(try nonEmpty(instruction, "edit instruction"))]
        case .chat(let text, let withImage):
            return [.user(try nonEmpty(text, "message"), image: withImage)]
        }
    }

    /// The source and target prompts of an edit from the replies to its two turns.
    public static func editPrompts(first: PrompterReply, second: PrompterReply) throws -> (source: String, target: String) {
        guard let source = first.prompts.first else {
            throw PrompterError("the reply to the first edit turn has no <gen_image> prompt: \(first.historyText.prefix(200))")
        }
        guard let target = second.prompts.first else {
            throw PrompterError("the reply to the edit instruction has no <gen_image> prompt: \(second.historyText.prefix(200))")
        }
        return (source, target)
    }
}

extension Conversation {
    /// Appends the model's reply as the assistant turn, in the cleaned form (`historyText`: no EOS text).
    public mutating func appendReply(_ reply: PrompterReply) {
        messages.append(.assistant(reply.historyText))
    }

    /// Parses a decoded reply with this family's stop strings.
    public func parseReply(_ raw: String) -> PrompterReply {
        ReplyParser.parse(raw, stopStrings: family.stopStrings)
    }
}
