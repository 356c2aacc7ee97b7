import Foundation
import Imaging

/// One request to the prompter: the task, its image, and the conversation so far.
public struct PrompterRequest: Sendable {
    public var task: PrompterTask
    /// The picture for image tasks (similar, describe, inpaint, outpaint, edit, chat with image).
    public var image: Image?
    /// For inpaint and outpaint: white (≥ 0.5) marks the region to fill. Those pixels of `image` are set to
    /// black before the model sees it, as LLMGA's inpainting CLI passes `image * (1 - mask)`.
    public var mask: Image?
    /// Earlier turns (carried across nodes). Nil starts a new conversation.
    public var history: PrompterHistory?
    /// System prompt; nil uses the family's default (LLMGA's `llmga/llava/conversation.py`).
    public var system: String?

    public init(task: PrompterTask, image: Image? = nil, mask: Image? = nil, history: PrompterHistory? = nil, system: String? = nil) {
        self.task = task; self.image = image; self.mask = mask; self.history = history; self.system = system
    }
}

/// A conversation that can leave one node and enter another: the turns plus the image they refer to.
/// It serialises to JSON (`json()` / `init(json:)`), so it travels over a text port and caches on disk.
/// The image is stored as it went to the model (after masking), PNG-encoded, because every later turn
/// must show the model the same picture (LLaVA recomputes the whole prompt each turn).
public struct PrompterHistory: Sendable, Equatable {
    public var conversation: Conversation
    /// The image of the turn with `hasImage`, if any.
    public var image: Image?

    public init(conversation: Conversation, image: Image? = nil) {
        self.conversation = conversation; self.image = image
    }

    struct Stored: Codable {
        struct Message: Codable { var role: String; var text: String; var image: Bool? }
        var format: String
        var family: String
        var system: String?
        var messages: [Message]
        var image_png_base64: String?
    }

    static let format = "llmga.conversation/1"

    /// The conversation as JSON text (stable key order, so equal conversations give equal text).
    public func json() throws -> String {
        var imageText: String? = nil
        if let image {
            imageText = try PNG.encode(image.clamped(), depth: .uint8).base64EncodedString()
        }
        let s = Stored(format: Self.format, family: conversation.family.rawValue, system: conversation.system,
                       messages: conversation.messages.map { .init(role: $0.role.rawValue, text: $0.text, image: $0.hasImage ? true : nil) },
                       image_png_base64: imageText)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try enc.encode(s), as: UTF8.self)
    }

    /// Reads `json()`'s output; `source` names where the text came from, for errors.
    public init(json text: String, source: String = "conversation") throws {
        let s: Stored
        do { s = try JSONDecoder().decode(Stored.self, from: Data(text.utf8)) } catch {
            throw PrompterError("not an llmga conversation (expected the JSON a prompter node writes): \(Self.describe(error))", source: source)
        }
        guard s.format == Self.format else { throw PrompterError("unsupported conversation format \"\(s.format)\", expected \"\(Self.format)\"", source: source) }
        guard let family = ChatFamily(rawValue: s.family) else {
            throw PrompterError("unknown chat family \"\(s.family)\"; known: \(ChatFamily.allCases.map(\.rawValue).joined(separator: ", "))", source: source)
        }
        var messages: [ChatMessage] = []
        for (i, m) in s.messages.enumerated() {
            guard let role = ChatMessage.Role(rawValue: m.role) else {
                throw PrompterError("message \(i + 1) has role \"\(m.role)\"; expected user or assistant", source: source)
            }
            messages.append(ChatMessage(role: role, text: m.text, hasImage: m.image ?? false))
        }
        var image: Image? = nil
        if let b64 = s.image_png_base64 {
            guard let data = Data(base64Encoded: b64) else { throw PrompterError("the conversation's image is not valid base64", source: source) }
            image = try PNG.decode(data, name: "\(source) image").image
        }
        if messages.contains(where: \.hasImage) && image == nil {
            throw PrompterError("a message refers to an image but the conversation carries none", source: source)
        }
        self.init(conversation: Conversation(family: family, system: s.system, messages: messages), image: image)
    }

    static func describe(_ error: Error) -> String {
        if case DecodingError.keyNotFound(let k, _) = error { return "missing key \"\(k.stringValue)\"" }
        if case DecodingError.typeMismatch(_, let c) = error { return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))" }
        if case DecodingError.dataCorrupted(let c) = error { return c.debugDescription }
        return "\(error)"
    }
}

/// What the prompter answered.
public struct PrompterResult: Sendable, Equatable {
    /// Every `<gen_image>` prompt of the last reply, in order (empty when it asked for no image).
    public var prompts: [String]
    /// The first prompt of the last reply (for edit: the target prompt); nil when the reply has none.
    public var prompt: String? { prompts.first }
    /// For edit: the prompt describing the source image (from the first turn's reply).
    public var sourcePrompt: String?
    /// The last reply without its tagged blocks.
    public var reply: String
    /// The last reply as it stays in the history (stop strings removed).
    public var rawReply: String
    /// The conversation including this exchange.
    public var history: PrompterHistory
}

/// Runs prompter tasks on a backend: builds the user turns LLMGA expects, masks the image for inpainting,
/// sends each turn, parses tags, and keeps the history (without EOS text). Backend-independent.
public enum PrompterSession {
    /// Runs `request` on `backend`. `family` is the template family used for history and stop strings when the
    /// backend renders none itself (remote); a local backend's own family always wins.
    public static func run(_ request: PrompterRequest, backend: any PrompterBackend, options: GenerationOptions,
                           family fallbackFamily: ChatFamily = .qwen2,
                           progress: @Sendable (GenerationProgress) throws -> Void = { _ in }) async throws -> PrompterResult {
        try options.validate()
        let family = backend.family ?? request.history?.conversation.family ?? fallbackFamily
        let turns = try request.task.userTurns()
        var image = request.history?.image
        if request.task.needsImage {
            guard let given = request.image else {
                throw PrompterError("the \(request.task.modeName) task needs an image")
            }
            guard backend.acceptsImages else {
                throw PrompterError("\(backend.identity) does not accept images; the \(request.task.modeName) task needs one")
            }
            var img = given.converted(toChannels: 3)
            if let mask = request.mask {
                img = try masked(img, mask: mask)
            } else if request.task.isFill {
                throw PrompterError("the \(request.task.modeName) task needs a mask (white = region to fill)")
            }
            if image != nil, request.history?.conversation.messages.contains(where: \.hasImage) == true {
                // LLaVA takes one image per conversation; a new picture starts a new one (as the Gradio demo does).
                throw PrompterError("the conversation already has an image; LLaVA takes one image per conversation (start a new conversation for a new image)")
            }
            image = img
        } else if request.mask != nil {
            throw PrompterError("a mask was given but the \(request.task.modeName) task uses no image")
        }
        var conversation = request.history?.conversation ?? Conversation(family: family, system: request.system)
        conversation.family = family
        if let s = request.system { conversation.system = s }

        var replies: [PrompterReply] = []
        for turn in turns.indices {
            conversation.messages.append(turns[turn])
            let raw = try await backend.reply(to: conversation, image: image, options: options, progress: progress)
            let parsed = ReplyParser.parse(raw, stopStrings: family.stopStrings)
            conversation.messages.append(.assistant(parsed.historyText))
            replies.append(parsed)
        }
        let last = replies[replies.count - 1]
        var source: String? = nil
        if case .edit = request.task {
            source = try PrompterTask.editPrompts(first: replies[0], second: last).source
        }
        return PrompterResult(prompts: last.prompts, sourcePrompt: source, reply: last.text, rawReply: last.historyText,
                              history: PrompterHistory(conversation: conversation, image: image))
    }

    /// `image * (1 - mask)` with the mask binarised at 0.5 (white = hole, which becomes black).
    /// The mask is resized (nearest) to the image when the sizes differ.
    public static func masked(_ image: Image, mask: Image) throws -> Image {
        var m = mask.converted(toChannels: 1)
        if m.width != image.width || m.height != image.height {
            m = try m.resized(width: image.width, height: image.height, filter: .nearest)
        }
        var out = image
        let c = image.channels
        for i in 0..<(image.width * image.height) where m.pixels[i] >= 0.5 {
            for ch in 0..<c { out.pixels[i * c + ch] = 0 }
        }
        return out
    }
}

extension PrompterTask {
    /// The node-facing name of the mode.
    public var modeName: String {
        switch self {
        case .textToImage: "t2i"
        case .expand: "expand"
        case .similarImage: "similar"
        case .describeImage: "describe"
        case .inpaint: "inpaint"
        case .outpaint: "outpaint"
        case .edit: "edit"
        case .chat: "chat"
        }
    }

    /// Inpaint and outpaint: the image goes to the model with its masked region blacked out.
    public var isFill: Bool {
        switch self {
        case .inpaint, .outpaint: true
        default: false
        }
    }
}
