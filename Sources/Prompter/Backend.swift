import Imaging

/// Sampling settings for one reply. Defaults follow LLMGA's CLIs (`llmga/serve/cli-sd15*.py`, https://github.com/dvlab-research/LLMGA): temperature 0.2,
/// at most 512 new tokens. `temperature == 0` means greedy decoding (argmax), as `do_sample=False`.
public struct GenerationOptions: Sendable, Equatable, Hashable {
    /// Softmax temperature; 0 = greedy.
    public var temperature: Float
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `topP` (1 = all).
    public var topP: Float
    /// Seed of the sampler's random stream: the same seed, model and prompt give the same reply.
    public var seed: UInt64
    /// Generation stops after this many new tokens (the reply is then cut, not an error).
    public var maxNewTokens: Int

    public init(temperature: Float = 0.2, topP: Float = 1.0, seed: UInt64 = 0, maxNewTokens: Int = 512) {
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.maxNewTokens = maxNewTokens
    }

    /// Checks the ranges; the message names the option.
    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else { throw PrompterError("temperature must be >= 0, got \(temperature)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw PrompterError("top-p must be in (0, 1], got \(topP)") }
        guard maxNewTokens >= 1 else { throw PrompterError("max new tokens must be >= 1, got \(maxNewTokens)") }
    }
}

/// Progress of one reply, reported after each generated token (local) or chunk (remote).
public struct GenerationProgress: Sendable, Equatable {
    /// Tokens generated so far (remote backends that do not stream report 0 until the end).
    public var tokens: Int
    /// The budget (`maxNewTokens`).
    public var maxTokens: Int
    /// The reply text decoded so far.
    public var text: String

    public init(tokens: Int, maxTokens: Int, text: String) {
        self.tokens = tokens; self.maxTokens = maxTokens; self.text = text
    }
}

/// Something that writes the assistant's next turn: the in-process LLaVA model or an OpenAI-compatible server.
/// Implementations are the only place a model runs; everything else (task phrasing, masking the image for
/// inpainting, parsing tags, keeping the history) is shared in `PrompterSession`.
public protocol PrompterBackend: Sendable {
    /// What produced the reply, for messages and cache keys: a model folder path or `endpoint#model`.
    var identity: String { get }
    /// The chat family whose template the backend renders locally; nil when a server applies its own template.
    var family: ChatFamily? { get }
    /// Whether the backend accepts an image (a local model without vision tower, or a text-only server, does not).
    var acceptsImages: Bool { get }

    /// The raw assistant reply to `conversation`, whose last message is the user's. `image` goes with the
    /// message that has `hasImage` (already masked by the caller where the task asks for it; the backend
    /// does its own resizing/normalisation). The text may still end in stop strings; `ReplyParser` cuts them.
    /// `progress` is called as tokens arrive; when it throws (cancellation), generation stops and the error
    /// propagates.
    func reply(to conversation: Conversation, image: Image?, options: GenerationOptions,
               progress: @Sendable (GenerationProgress) throws -> Void) async throws -> String
}
