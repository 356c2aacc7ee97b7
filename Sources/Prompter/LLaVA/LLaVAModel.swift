import Foundation
import Imaging
import Tensor

/// The LLMGA prompter run in-process: a LLaVA-1.5 model (CLIP vision tower → projector → LLM decoder) with its
/// tokenizer and chat family, from a model folder in the original LLaVA/LLMGA layout or the transformers Llava
/// layout. A folder without any vision settings loads as a text-only prompter.
///
/// One reply = render the conversation with the family's template, tokenize it as LLaVA does
/// (`tokenizeWithImages`: -200 where `<image>` was), replace -200 by the image's projected features, run the
/// prompt through the decoder and sample until EOS, a template stop token/string, or the token budget.
/// Every call starts from an empty KV cache: a conversation continued from another node is re-read whole,
/// which is what LLMGA's CLIs do each turn too.
public final class LLaVAModel: PrompterBackend, @unchecked Sendable {
    public let folder: String
    public let llm: CausalLM
    /// Nil for a text-only model.
    public let vision: VisionEncoder?
    public let tokenizer: LoadedTokenizer
    public let family: ChatFamily?
    /// The family, never nil for a local model (the protocol's optional is for servers).
    public let chatFamily: ChatFamily
    public var identity: String { folder }
    public var acceptsImages: Bool { vision != nil }
    /// Bytes of the weight files (memory-mapped), for the model pool's budget.
    public let weightBytes: Int

    /// Loads a model folder: `config.json`, `model.safetensors` or a sharded `model.safetensors.index.json`,
    /// `tokenizer.json` or `tokenizer.model`, optional `preprocessor_config.json`.
    /// - visionTower: a CLIP vision folder. With weights (`model.safetensors` or an index) the tower comes from it,
    ///   for checkpoints that do not bundle the tower. With only a `config.json`, the bundled weights are used with
    ///   that configuration (for a checkpoint whose `mm_vision_tower` names a tower llmga does not know built in).
    /// - family: the chat template; nil infers it (`inferFamily`).
    public static func load(folder: String, visionTower: String? = nil, family: ChatFamily? = nil) throws -> LLaVAModel {
        let weights = try VisionEncoder.openWeights(folder: folder)
        let config = try LLMConfig(folder: folder)
        let llm = try CausalLM(config: config, weights: weights)
        let tokenizer = try TokenizerLoader.load(folder: folder)
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        let object = try Self.readObject(configPath)
        let isMultimodal = object["mm_vision_tower"] != nil || object["mm_projector_type"] != nil || object["vision_config"] != nil
        var vision: VisionEncoder? = nil
        if isMultimodal {
            var clipFolder = visionTower, towerConfig: CLIPVisionConfig? = nil
            if let t = visionTower, (try? VisionEncoder.openWeights(folder: t)) == nil {
                towerConfig = try CLIPVisionConfig(path: (t as NSString).appendingPathComponent("config.json"))
                clipFolder = nil
            }
            vision = try VisionEncoder(folder: folder, weights: weights, clipFolder: clipFolder, towerConfig: towerConfig)
        } else if visionTower != nil {
            throw PrompterError("a vision tower was given but config.json describes a text-only model (no mm_vision_tower, mm_projector_type or vision_config)",
                                source: configPath)
        }
        if let v = vision, v.settings.llmHiddenSize != config.hiddenSize {
            throw PrompterError("the projector outputs \(v.settings.llmHiddenSize) features but the LLM's hidden size is \(config.hiddenSize)",
                                source: configPath)
        }
        let chosen = try family ?? inferFamily(folder: folder, modelType: config.modelType, tokenizer: tokenizer.tokenizer)
        let bytes = weights.keys.reduce(0) { $0 + ((try? weights.stored($1).bytes.count) ?? 0) }
        return LLaVAModel(folder: folder, llm: llm, vision: vision, tokenizer: tokenizer, family: chosen, bytes: bytes)
    }

    init(folder: String, llm: CausalLM, vision: VisionEncoder?, tokenizer: LoadedTokenizer, family: ChatFamily, bytes: Int) {
        self.folder = folder; self.llm = llm; self.vision = vision; self.tokenizer = tokenizer
        self.family = family; self.chatFamily = family; self.weightBytes = bytes
    }

    /// LLMGA's rule first (`ChatFamily.infer(fromModelName:)` on the folder name, as its CLIs choose the conv mode),
    /// then the architecture: Qwen2 → qwen_2; Mistral → mistral_instruct; a Llama whose tokenizer has
    /// `<|eot_id|>` → llama_3; another Llama → llava_v1 (Vicuna, LLMGA's main release).
    public static func inferFamily(folder: String, modelType: String, tokenizer: any Tokenizer) throws -> ChatFamily {
        let name = URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent
        if let f = ChatFamily.infer(fromModelName: name) { return f }
        let t = modelType.lowercased()
        if t.contains("qwen2") { return .qwen2 }
        if t.contains("mistral") { return .mistralInstruct }
        if t.contains("gemma") { return .gemma }
        if t.contains("phi3") { return .phi3 }
        if t.contains("llama") { return tokenizer.tokenToId("<|eot_id|>") != nil ? .llama3 : .llavaV1 }
        throw PrompterError("cannot tell the chat template of model_type \"\(modelType)\" from the folder name \"\(name)\"; set the family explicitly",
                            source: folder)
    }

    /// The decoder's input for `ids` (from `tokenizeWithImages`): token embeddings with each -200 replaced by
    /// the image's projected features. Throws when the counts of placeholders and images differ.
    public func inputEmbeddings(ids: [Int], image: Image?) throws -> Tensor {
        let slots = ids.filter { $0 == imageTokenIndex }.count
        guard slots <= 1 else { throw PrompterError("the prompt has \(slots) image positions; LLaVA takes one image") }
        if slots == 1 && image == nil { throw PrompterError("the prompt has an <image> position but no image was given") }
        guard let pos = ids.firstIndex(of: imageTokenIndex), let image else {
            return try llm.embed(ids)
        }
        guard let vision else { throw PrompterError("\(folder) has no vision tower; it cannot read images") }
        let features = try vision.encode(image)
        return try inputEmbeddings(ids: ids, imageAt: pos, features: features)
    }

    /// Splices `features` ([k, hidden]) in place of the id at `imageAt`.
    public func inputEmbeddings(ids: [Int], imageAt pos: Int, features: Tensor) throws -> Tensor {
        let h = llm.config.hiddenSize
        guard features.rank == 2, features.shape[1] == h else {
            throw PrompterError("image features have shape \(features.shape), expected [n, \(h)]")
        }
        let before = try llm.embed(Array(ids[..<pos])), after = try llm.embed(Array(ids[(pos + 1)...]))
        let k = features.shape[0]
        let n = pos + k + (ids.count - pos - 1)
        return try Tensor(shape: [n, h]) { out in
            let o = out.baseAddress!
            before.withUnsafeBufferPointer { o.update(from: $0.baseAddress!, count: pos * h) }
            features.withUnsafeBufferPointer { (o + pos * h).update(from: $0.baseAddress!, count: k * h) }
            after.withUnsafeBufferPointer { (o + (pos + k) * h).update(from: $0.baseAddress!, count: (ids.count - pos - 1) * h) }
        }
    }

    /// The prompt ids of a conversation as LLaVA builds them (BOS once, -200 at the image).
    public func promptIds(_ conversation: Conversation) throws -> [Int] {
        var c = conversation
        c.family = chatFamily
        return tokenizer.tokenizer.tokenizeWithImages(try c.render())
    }

    /// Generates the reply to `conversation` (see the type's documentation).
    public func generate(conversation: Conversation, image: Image?, options: GenerationOptions,
                         progress: (GenerationProgress) throws -> Void = { _ in }) throws -> GenerationResult {
        try options.validate()
        let ids = try promptIds(conversation)
        let hasImageTurn = conversation.messages.contains(where: \.hasImage)
        let embeddings = try inputEmbeddings(ids: ids, image: hasImageTurn ? image : nil)
        let n = embeddings.shape[0]
        if n + options.maxNewTokens > llm.config.maxPositionEmbeddings {
            throw PrompterError("the prompt (\(n) positions) plus \(options.maxNewTokens) new tokens exceeds the model's \(llm.config.maxPositionEmbeddings) positions")
        }
        let cache = llm.makeCache(capacity: n + options.maxNewTokens)
        let tok = tokenizer.tokenizer
        var stopIds = chatFamily.stopTokenIds(tok)
        for e in llm.config.eosTokenIds where !stopIds.contains(e) { stopIds.append(e) }
        return try llm.generate(promptEmbeddings: embeddings, cache: cache, options: options, stopTokenIds: stopIds,
                                stopStrings: chatFamily.stopStrings, tokenizer: tok, progress: progress)
    }

    public func reply(to conversation: Conversation, image: Image?, options: GenerationOptions,
                      progress: @Sendable (GenerationProgress) throws -> Void) async throws -> String {
        try generate(conversation: conversation, image: image, options: options, progress: progress).text
    }

    static func readObject(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw PrompterError("cannot read", source: path) }
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PrompterError("is not a JSON object", source: path)
        }
        return o
    }
}
