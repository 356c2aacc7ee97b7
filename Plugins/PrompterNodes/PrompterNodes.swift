import Foundation
import Imaging
import NodeKit
import Prompter

/// The LLMGA prompter nodes: thin adapters from NodeKit to the Prompter library.
/// `llmga.load` gives a model (a local LLaVA folder or an OpenAI-compatible endpoint); `llmga.prompter`
/// runs one task on it and hands the conversation on, so several prompter nodes can hold one dialogue.
public enum PrompterNodes {
    public static let pack = PackInfo(id: "llmga", version: "0.1.0")

    public static let nodeTypes: [any NodeType.Type] = [Load.self, Prompt.self]

    public static func register(into registry: NodeRegistry) throws {
        try registry.register(pack: pack, nodeTypes)
    }
}

/// A loaded prompter: the backend and the template family its conversations use.
public final class PrompterHandle: PortObject {
    public static let portTypeName = "llmga.model"
    public let backend: any PrompterBackend
    /// The family conversations are kept in (the local model's own, or the one chosen for a server).
    public let family: ChatFamily
    public let estimatedBytes: Int
    init(backend: any PrompterBackend, family: ChatFamily, bytes: Int) {
        self.backend = backend; self.family = family; estimatedBytes = bytes
    }
}

extension Image {
    init(_ raster: Raster) {
        self.init(width: raster.width, height: raster.height, channels: raster.channels, pixels: raster.pixels)
    }
}

// MARK: llmga.load

struct Load: NodeType {
    static let id = "llmga.load"
    static let version = 1
    static let purity = Purity.readsFiles
    static let familyChoices = ["auto"] + ChatFamily.allCases.map(\.rawValue)
    static let schema = NodeSchema(
        summary: "Load the LLMGA prompter: a local LLaVA-layout or Transformers-Llava model folder (safetensors), or an OpenAI-compatible /v1/chat/completions endpoint (llama.cpp server, vLLM, Ollama). Give exactly one of path and endpoint.",
        inputs: [
            InputSpec("path", .text, doc: "Model folder: config.json, (sharded) safetensors, tokenizer.json or tokenizer.model.",
                      default: .text(""), role: .inputFile),
            InputSpec("vision-tower", .text, doc: "A CLIP vision folder, for checkpoints that do not bundle the tower weights (LLaVA loads mm_vision_tower by name).",
                      default: .text(""), role: .inputFile),
            InputSpec("endpoint", .text, doc: "Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1.", default: .text("")),
            InputSpec("model", .text, doc: "The model name sent to the server.", default: .text("")),
            InputSpec("api-key-env", .text, doc: "Environment variable holding the server's API key (sent as a Bearer token; empty: none).",
                      default: .text("OPENAI_API_KEY")),
            InputSpec("timeout", .float, doc: "Seconds to wait for a server reply before retrying.", default: .float(120), range: 1...3600),
            InputSpec("retries", .int, doc: "Extra attempts after a connection error, 429 or 5xx.", default: .int(2), range: 0...10),
            InputSpec("family", .text, doc: "Chat template family. auto: from the folder name as LLMGA does (local); qwen_2 history for a server.",
                      default: .text("auto"), choices: familyChoices),
        ],
        outputs: [OutputSpec("model", .object(PrompterHandle.portTypeName), doc: "The prompter, for llmga.prompter.")],
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let path = try inputs.text("path"), endpoint = try inputs.text("endpoint")
        let familyName = try inputs.text("family")
        let family = familyName == "auto" ? nil : ChatFamily(rawValue: familyName)
        if path.isEmpty == endpoint.isEmpty {
            throw NodeError(path.isEmpty ? "give a model folder (path) or a server (endpoint)" : "give either path or endpoint, not both",
                            port: path.isEmpty ? "path" : "endpoint")
        }
        let handle: PrompterHandle
        if !path.isEmpty {
            let folder = context.resolvePath(path).standardizedFileURL.path
            let tower = try inputs.text("vision-tower")
            let towerPath = tower.isEmpty ? nil : context.resolvePath(tower).standardizedFileURL.path
            handle = try await context.models.model(key: "llmga.load:\(folder)|\(towerPath ?? "")|\(familyName)") {
                try await libraryCall(port: "path") { try LocalModels.load(folder: folder, visionTower: towerPath, family: family) }
            }
        } else {
            let keyEnv = try inputs.text("api-key-env")
            let apiKey = keyEnv.isEmpty ? nil : ProcessInfo.processInfo.environment[keyEnv]
            handle = try await libraryCall(port: "endpoint") {
                try RemoteModels.connect(endpoint: endpoint, model: try inputs.text("model"), apiKey: apiKey,
                                         timeout: try inputs.float("timeout"), retries: try inputs.int("retries"),
                                         family: family ?? .qwen2)
            }
        }
        return Outputs(["model": .object(handle)])
    }
}

// MARK: llmga.prompter

struct Prompt: NodeType {
    static let id = "llmga.prompter"
    static let version = 1
    static let modes = ["t2i", "similar", "describe", "inpaint", "outpaint", "edit", "chat", "expand"]
    static let schema = NodeSchema(
        summary: "Ask the LLMGA prompter for a detailed generation prompt. t2i: expand short keywords; similar/describe: from an image; inpaint/outpaint: describe the whole scene from the image with its masked region blacked out; edit: describe the source, then apply the instruction (two turns); chat: free conversation; expand: a description without tags. Same model, inputs and seed give the same (cached) answer.",
        inputs: [
            InputSpec("model", .object(PrompterHandle.portTypeName), doc: "From llmga.load."),
            InputSpec("mode", .text, doc: "What to ask.", default: .text("t2i"), choices: modes),
            InputSpec("request", .text, doc: "t2i/expand: the keywords; edit: the instruction; chat: the message; similar/describe/inpaint/outpaint: an optional phrasing replacing LLMGA's default one.",
                      default: .text("")),
            InputSpec("image", .image, doc: "The picture (similar, describe, inpaint, outpaint, edit; optional for chat).", optional: true),
            InputSpec("mask", .mask, doc: "inpaint/outpaint: white marks the region to fill (blacked out before the model sees it).", optional: true),
            InputSpec("conversation", .text, doc: "The conversation output of an earlier llmga.prompter, to continue it.", default: .text("")),
            InputSpec("system", .text, doc: "System prompt (empty: the family's default).", default: .text("")),
            InputSpec("seed", .int, doc: "Sampling seed.", default: .int(0), range: 0...Double(UInt32.max)),
            InputSpec("temperature", .float, doc: "0 is greedy; LLMGA uses 0.2.", default: .float(0.2), range: 0...5),
            InputSpec("top-p", .float, doc: "Nucleus sampling mass (1 keeps all tokens).", default: .float(1), range: 0.01...1),
            InputSpec("max-tokens", .int, doc: "Most new tokens per reply.", default: .int(512), range: 1...8192),
            InputSpec("require-prompt", .bool, doc: "Fail when the reply carries no <gen_image> prompt (turn off for chat and expand).",
                      default: .bool(true)),
        ],
        outputs: [
            OutputSpec("prompt", .text, doc: "The first generation prompt of the reply (edit: the target prompt); empty when there is none."),
            OutputSpec("prompts", .list(.text), doc: "Every generation prompt of the reply, in order."),
            OutputSpec("source-prompt", .text, doc: "edit: the prompt describing the source image; otherwise empty."),
            OutputSpec("reply", .text, doc: "The reply for the user, without the tagged blocks."),
            OutputSpec("conversation", .text, doc: "The conversation so far (JSON), for a later llmga.prompter."),
        ],
        cost: .heavy)

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let handle = try inputs.object("model", as: PrompterHandle.self)
        let mode = try inputs.text("mode")
        let request = try inputs.text("request")
        let image = try inputs.optional("image", inputs.image).map(Image.init)
        let task = try Self.task(mode: mode, request: request, hasImage: image != nil)
        let mask = try inputs.optional("mask", inputs.mask).map(Image.init)
        let conversationText = try inputs.text("conversation")
        var history: PrompterHistory? = nil
        if !conversationText.isEmpty {
            history = try await libraryCall(port: "conversation") {
                try PrompterHistory(json: conversationText, source: "node \(context.nodeID), input conversation")
            }
        }
        let system = try inputs.text("system")
        let options = GenerationOptions(temperature: Float(try inputs.float("temperature")), topP: Float(try inputs.float("top-p")),
                                        seed: UInt64(try inputs.int("seed")), maxNewTokens: try inputs.int("max-tokens"))
        let req = PrompterRequest(task: task, image: image, mask: mask, history: history, system: system.isEmpty ? nil : system)
        let result = try await libraryCall {
            try await PrompterSession.run(req, backend: handle.backend, options: options, family: handle.family) { p in
                try context.checkCancellation()
                context.progress(p.tokens, of: p.maxTokens, message: Self.tail(p.text))
            }
        }
        if result.prompts.isEmpty {
            let said = result.rawReply.isEmpty ? "an empty reply" : "\"\(result.rawReply.prefix(300))\""
            if try inputs.bool("require-prompt") {
                throw NodeError("the model answered without a <gen_image> prompt: \(said). Set require-prompt: false to accept replies without one.")
            }
            context.log(.info, "the reply has no <gen_image> prompt: \(said)")
        }
        return Outputs([
            "prompt": .text(result.prompt ?? ""),
            "prompts": .list(elementType: .text, result.prompts.map { .text($0) }),
            "source-prompt": .text(result.sourcePrompt ?? ""),
            "reply": .text(result.reply),
            "conversation": .text(try await libraryCall(port: "conversation") { try result.history.json() }),
        ])
    }

    /// The task for a mode; `request` fills the keywords/instruction/message, or replaces the default phrasing.
    static func task(mode: String, request: String, hasImage: Bool) throws -> PrompterTask {
        let r = request.trimmingCharacters(in: .whitespacesAndNewlines)
        func needed(_ what: String) throws -> String {
            if r.isEmpty { throw NodeError("mode \(mode) needs \(what) in request", port: "request") }
            return r
        }
        switch mode {
        case "t2i": return .textToImage(keywords: try needed("the keywords"))
        case "expand": return .expand(text: try needed("the text to expand"))
        case "similar": return r.isEmpty ? .similarImage() : .similarImage(phrasing: r)
        case "describe": return r.isEmpty ? .describeImage : .chat(text: r, withImage: true)
        case "inpaint": return r.isEmpty ? .inpaint() : .inpaint(phrasing: r)
        case "outpaint": return r.isEmpty ? .outpaint() : .outpaint(phrasing: r)
        case "edit": return .edit(instruction: try needed("the edit instruction"))
        case "chat": return .chat(text: try needed("the message"), withImage: hasImage)
        default: throw NodeError("unknown mode \(mode); expected one of \(modes.joined(separator: ", "))", port: "mode")
        }
    }

    /// The last line of the text so far, for the progress line.
    static func tail(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count <= 60 ? flat : "…" + flat.suffix(59)
    }
}
