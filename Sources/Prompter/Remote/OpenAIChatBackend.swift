import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Imaging

/// A prompter backend that asks an OpenAI-compatible chat server (llama.cpp `llama-server`, vLLM, Ollama,
/// LMDeploy, SGLang, OpenAI itself...) for the assistant's reply: `POST {endpoint}` with
/// `{model, messages, temperature, top_p, max_tokens, seed, stream}`.
///
/// Messages. The server applies its own chat template (so `family` is nil); the backend sends:
/// - a `system` message first: `conversation.system` when the caller set it (an empty string sends none),
///   otherwise, when `sendsDefaultSystemPrompt` is on, the default system prompt of the conversation's family
///   (none when that default is empty). LLMGA's models were trained with those prompts, and a server serving
///   them does not know LLMGA's conversation.py, so sending the family default keeps replies closest to the
///   local model's. Turn the option off to leave the system prompt to the server's template.
/// - then the user/assistant turns in order. The turn with `hasImage` carries the image as OpenAI vision
///   content parts: a `text` part (the message text, without LLaVA's `<image>` placeholder: the server's
///   template places the image) and an `image_url` part with a `data:image/png;base64,...` URL (8-bit PNG).
///
/// Replies stream as Server-Sent Events by default (`stream: true`): `progress` receives the text so far and
/// the number of content chunks received so far as `tokens`. With `stream: false` the whole reply comes at
/// once and `progress` is called once at the end (with the server's `usage.completion_tokens`, else 0).
/// When `progress` throws, the request is cancelled and the error propagates; cancelling the Swift task
/// cancels the request too (`CancellationError`).
///
/// Failures. Each attempt waits at most `timeout` seconds for the connection, for the response and for each
/// further piece of a streamed reply (an idle timeout, so long streamed replies are fine). Connection errors,
/// timeouts, HTTP 429 and HTTP 5xx are retried per `retry` (a `Retry-After` header in seconds is honoured,
/// capped at `retry.maxDelay`), except once part of a streamed reply has been passed to `progress`. Other
/// HTTP errors are not retried. Every error is a `PrompterError` whose `source` is the endpoint, with the
/// server's own error message where it sent one (`{"error":{"message":...}}`, else the start of the body).
///
/// The API key is sent as `Authorization: Bearer <key>`; it appears in no message, description or mirror.
/// HTTP goes through Foundation's URLSession (see `HTTPCall` for why); on Linux that needs libcurl at run time.
public struct OpenAIChatBackend: PrompterBackend, CustomStringConvertible, CustomReflectable {
    /// When and how long to wait before trying a failed request again.
    public struct RetryPolicy: Sendable, Equatable, Hashable {
        /// Further attempts after the first (0 = no retry).
        public var retries: Int
        /// Wait before the first retry, in seconds; doubled before each further retry.
        public var backoff: Double
        /// Longest wait between attempts, in seconds (also caps the server's `Retry-After`).
        public var maxDelay: Double

        public init(retries: Int = 2, backoff: Double = 1, maxDelay: Double = 30) {
            self.retries = retries; self.backoff = backoff; self.maxDelay = maxDelay
        }

        /// No retries.
        public static let none = RetryPolicy(retries: 0)

        /// Seconds to wait after failed attempt number `attempt` (1-based); `retryAfter` is the server's hint.
        public func delay(afterAttempt attempt: Int, retryAfter: Double?) -> Double {
            if let retryAfter, retryAfter.isFinite, retryAfter >= 0 { return min(retryAfter, maxDelay) }
            let d = backoff * pow(2, Double(max(0, attempt - 1)))
            return min(d.isFinite ? d : maxDelay, maxDelay)
        }
    }

    /// The chat completions URL requests go to (normalised from the base URL).
    public let endpoint: URL
    /// The model name sent in each request.
    public let model: String
    /// Seconds each attempt waits for the server (connection, response, and each further streamed piece).
    public let timeout: Double
    /// Retries of connection errors, timeouts, 429 and 5xx.
    public let retry: RetryPolicy
    /// Whether replies are requested as a Server-Sent Events stream.
    public let stream: Bool
    public let acceptsImages: Bool
    /// Whether the conversation family's default system prompt is sent when the conversation sets none.
    public let sendsDefaultSystemPrompt: Bool
    /// Whether requests carry an API key.
    public var hasAPIKey: Bool { apiKey != nil }
    private let apiKey: String?

    /// The server applies its own chat template.
    public var family: ChatFamily? { nil }
    /// `endpoint#model`.
    public var identity: String { endpointName + "#" + model }
    public var description: String {
        "OpenAIChatBackend(\(identity), timeout \(timeout) s, \(retry.retries) retries, \(stream ? "streaming" : "not streaming")\(hasAPIKey ? ", API key set" : ""))"
    }
    public var customMirror: Mirror {
        Mirror(self, children: ["endpoint": endpoint, "model": model, "timeout": timeout, "retry": retry,
                                "stream": stream, "acceptsImages": acceptsImages,
                                "sendsDefaultSystemPrompt": sendsDefaultSystemPrompt, "hasAPIKey": hasAPIKey])
    }

    /// The endpoint as errors name it (without any user:password part of the URL).
    var endpointName: String { Self.displayName(endpoint) }

    /// - Parameters:
    ///   - baseURL: the server: `http://host:port`, `http://host:port/v1`, or the full
    ///     `.../v1/chat/completions` URL (any other path gets `/v1/chat/completions` appended; a missing scheme
    ///     means `http://`). See `chatCompletionsURL(from:)`.
    ///   - model: the model name the server knows the model by.
    ///   - apiKey: sent as `Authorization: Bearer`; wins over `apiKeyEnvironmentVariable`.
    ///   - apiKeyEnvironmentVariable: the name of an environment variable holding the key (read now, from
    ///     `environment`); it is an error when the variable is unset or empty.
    ///   - timeout: seconds each attempt waits for the server (> 0); an idle timeout, see the type's notes.
    ///   - retry: retries of connection errors, timeouts, 429 and 5xx.
    ///   - stream: ask for a Server-Sent Events stream (progress as text arrives) rather than one JSON reply.
    ///   - acceptsImages: false for text-only servers: an image is then refused before any request.
    ///   - sendsDefaultSystemPrompt: send the conversation family's default system prompt when the
    ///     conversation sets none.
    ///   - environment: where `apiKeyEnvironmentVariable` is looked up (the process environment by default).
    public init(baseURL: String, model: String, apiKey: String? = nil, apiKeyEnvironmentVariable: String? = nil,
                timeout: Double = 120, retry: RetryPolicy = RetryPolicy(), stream: Bool = true,
                acceptsImages: Bool = true, sendsDefaultSystemPrompt: Bool = true,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let url = try Self.chatCompletionsURL(from: baseURL)
        let name = Self.displayName(url)
        guard !model.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw PrompterError("no model name given for the server", source: name)
        }
        guard timeout.isFinite, timeout > 0 else { throw PrompterError("timeout must be > 0 seconds, got \(timeout)", source: name) }
        guard retry.retries >= 0 else { throw PrompterError("retries must be >= 0, got \(retry.retries)", source: name) }
        guard retry.backoff.isFinite, retry.backoff >= 0, retry.maxDelay.isFinite, retry.maxDelay >= 0 else {
            throw PrompterError("retry backoff and maximum delay must be finite and >= 0", source: name)
        }
        var key = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        if key == nil, let variable = apiKeyEnvironmentVariable {
            guard let v = environment[variable]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else {
                throw PrompterError("environment variable \(variable) (the API key) is not set", source: name)
            }
            key = v
        }
        if let key, key.contains(where: { $0.isNewline }) {
            throw PrompterError("the API key contains a line break", source: name)
        }
        self.endpoint = url
        self.model = model
        self.apiKey = key
        self.timeout = timeout
        self.retry = retry
        self.stream = stream
        self.acceptsImages = acceptsImages
        self.sendsDefaultSystemPrompt = sendsDefaultSystemPrompt
    }

    /// The chat completions URL for a base URL: trailing slashes are dropped; a path ending in
    /// `/chat/completions` is kept; one ending in `/v1` gets `/chat/completions`; any other (including none)
    /// gets `/v1/chat/completions`. Without `scheme://`, `http://` is assumed. Only http and https are accepted;
    /// query strings and fragments are refused.
    public static func chatCompletionsURL(from baseURL: String) throws -> URL {
        var s = baseURL.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !s.isEmpty else { throw PrompterError("no server URL given") }
        if !s.contains("://") { s = "http://" + s }
        guard var c = URLComponents(string: s), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else {
            throw PrompterError("not an http:// or https:// server URL: \(baseURL)")
        }
        guard c.query == nil, c.fragment == nil else {
            throw PrompterError("the server URL must not have a query or fragment: \(baseURL)")
        }
        var path = c.path
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix("/chat/completions") {
        } else if path.hasSuffix("/v1") {
            path += "/chat/completions"
        } else {
            path += "/v1/chat/completions"
        }
        c.scheme = scheme
        c.path = path
        guard let url = c.url else { throw PrompterError("not a valid server URL: \(baseURL)") }
        return url
    }

    static func displayName(_ url: URL) -> String {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false), c.user != nil || c.password != nil else {
            return url.absoluteString
        }
        c.user = nil; c.password = nil
        return c.url?.absoluteString ?? url.absoluteString
    }

    // MARK: Request

    private struct ChatRequest: Encodable {
        var model: String
        var messages: [Message]
        var temperature: Double
        var top_p: Double
        var max_tokens: Int
        var seed: Int64
        var stream: Bool
    }

    private struct Message: Encodable {
        var role: String
        var content: Content
    }

    private enum Content: Encodable {
        case text(String)
        case parts([Part])
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .text(let s): try c.encode(s)
            case .parts(let p): try c.encode(p)
            }
        }
    }

    private struct Part: Encodable {
        struct ImageURL: Encodable { var url: String }
        var type: String
        var text: String?
        var image_url: ImageURL?
    }

    /// Float → Double through the shortest decimal text, so 0.2 is sent as 0.2 and not 0.20000000298.
    private static func decimal(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }

    /// The JSON body for a reply to `conversation`. Seeds above `Int64.max` are sent modulo 2^63 (JSON
    /// servers read the seed as a signed 64-bit integer).
    func requestBody(for conversation: Conversation, image: Image?, options: GenerationOptions) throws -> Data {
        try options.validate()
        let turns = conversation.messages
        guard let last = turns.last else { throw PrompterError("the conversation has no messages", source: endpointName) }
        guard last.role == .user else { throw PrompterError("the conversation must end with a user turn", source: endpointName) }
        for (i, m) in turns.enumerated() where m.role != (i % 2 == 0 ? .user : .assistant) {
            throw PrompterError("turn \(i + 1) should be \(i % 2 == 0 ? "user" : "assistant"): turns must alternate, starting with the user",
                                source: endpointName)
        }
        let imageTurns = turns.indices.filter { turns[$0].hasImage }
        if imageTurns.count > 1 { throw PrompterError("more than one turn has an image; LLaVA takes one image per conversation", source: endpointName) }
        if let i = imageTurns.first, turns[i].role != .user { throw PrompterError("only a user turn can carry the image", source: endpointName) }
        if image != nil && !acceptsImages {
            throw PrompterError("this server is configured as text-only (acceptsImages is false) but an image was given", source: endpointName)
        }
        if image != nil && imageTurns.isEmpty { throw PrompterError("an image was given but no turn is marked as carrying it", source: endpointName) }
        if image == nil && !imageTurns.isEmpty { throw PrompterError("turn \(imageTurns[0] + 1) is marked as carrying an image but no image was given", source: endpointName) }

        var messages: [Message] = []
        let system = conversation.system ?? (sendsDefaultSystemPrompt ? conversation.family.defaultSystemPrompt : "")
        if !system.isEmpty { messages.append(Message(role: "system", content: .text(system))) }
        for m in turns {
            if m.hasImage, let image {
                let png: Data
                do { png = try PNG.encode(image, depth: .uint8) } catch {
                    throw PrompterError("cannot encode the image as PNG: \(error)", source: endpointName)
                }
                var parts: [Part] = []
                if !m.text.isEmpty { parts.append(Part(type: "text", text: m.text)) }
                parts.append(Part(type: "image_url", image_url: .init(url: "data:image/png;base64," + png.base64EncodedString())))
                messages.append(Message(role: m.role.rawValue, content: .parts(parts)))
            } else {
                messages.append(Message(role: m.role.rawValue, content: .text(m.text)))
            }
        }
        let body = ChatRequest(model: model, messages: messages, temperature: Self.decimal(options.temperature),
                               top_p: Self.decimal(options.topP), max_tokens: options.maxNewTokens,
                               seed: Int64(bitPattern: options.seed & 0x7FFF_FFFF_FFFF_FFFF), stream: stream)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(body)
    }

    func urlRequest(body: Data) -> URLRequest {
        var r = URLRequest(url: endpoint)
        r.httpMethod = "POST"
        r.httpBody = body
        r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        r.setValue(stream ? "text/event-stream" : "application/json", forHTTPHeaderField: "Accept")
        r.setValue("llmga", forHTTPHeaderField: "User-Agent")
        if let apiKey { r.setValue("Bearer " + apiKey, forHTTPHeaderField: "Authorization") }
        return r
    }

    // MARK: Reply

    public func reply(to conversation: Conversation, image: Image?, options: GenerationOptions,
                      progress: @Sendable (GenerationProgress) throws -> Void) async throws -> String {
        let request = urlRequest(body: try requestBody(for: conversation, image: image, options: options))
        var attempt = 0
        while true {
            attempt += 1
            try Task.checkCancellation()
            let failure: AttemptFailure
            do {
                return try await send(request, maxTokens: options.maxNewTokens, progress: progress)
            } catch let f as AttemptFailure {
                failure = f
            }
            if attempt > retry.retries || failure.afterOutput {
                throw failure.error(endpoint: endpointName, timeout: timeout, attempts: attempt)
            }
            let wait = retry.delay(afterAttempt: attempt, retryAfter: failure.retryAfter)
            if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
        }
    }

    /// A failed attempt that may be retried.
    struct AttemptFailure: Error {
        enum Kind { case timedOut, connection(String), http(status: Int, message: String) }
        var kind: Kind
        var retryAfter: Double? = nil
        /// Part of a streamed reply was already passed to `progress` (no retry then).
        var afterOutput = false

        func error(endpoint: String, timeout: Double, attempts: Int) -> PrompterError {
            let tries = attempts == 1 ? "1 attempt" : "\(attempts) attempts"
            switch kind {
            case .timedOut where afterOutput:
                return PrompterError("timed out in the middle of the streamed reply: nothing from the server for \(formatSeconds(timeout)) s (gave up after \(tries))", source: endpoint)
            case .timedOut:
                return PrompterError("timed out: no answer from the server for \(formatSeconds(timeout)) s (gave up after \(tries))", source: endpoint)
            case .connection(let why) where afterOutput:
                return PrompterError("the connection broke in the middle of the streamed reply: \(why) (gave up after \(tries))", source: endpoint)
            case .connection(let why):
                return PrompterError("cannot reach the server: \(why) (gave up after \(tries))", source: endpoint)
            case .http(let status, let message):
                return PrompterError("\(OpenAIChatBackend.httpStatusText(status)): \(message) (gave up after \(tries))", source: endpoint)
            }
        }
    }

    /// One attempt: the reply text, or `AttemptFailure` (retryable) or `PrompterError` (final) or the
    /// progress callback's error or `CancellationError`.
    private func send(_ request: URLRequest, maxTokens: Int,
                      progress: @Sendable (GenerationProgress) throws -> Void) async throws -> String {
        let call = HTTPCall(request: request, idleTimeout: timeout)
        let events = call.start()
        defer { call.cancel() }
        return try await withTaskCancellationHandler {
            var status = 0
            var headers: [String: String] = [:]
            var body = Data()
            var sse: ServerSentEventParser? = nil
            var text = ""
            var chunks = 0
            var eventCount = 0
            var delivered = false

            /// Handles one SSE event; true at `[DONE]`.
            func handle(_ data: String) throws -> Bool {
                eventCount += 1
                if data.trimmingCharacters(in: .whitespaces) == "[DONE]" { return true }
                let json = try parseJSON(Data(data.utf8), what: "a streamed event")
                if let message = Self.serverErrorMessage(json) {
                    throw PrompterError("the server reported an error in the stream: \(message)", source: endpointName)
                }
                guard let obj = json as? [String: Any], let choices = obj["choices"] as? [Any] else {
                    throw PrompterError("a streamed event has no choices: \(Self.truncated(data))", source: endpointName)
                }
                guard let first = choices.first as? [String: Any] else { return false }   // e.g. a final usage-only event
                let piece = (first["delta"] as? [String: Any])?["content"] as? String
                    ?? (first["text"] as? String)                                          // legacy completions shape
                if let piece, !piece.isEmpty {
                    text += piece
                    chunks += 1
                    delivered = true
                    try progress(GenerationProgress(tokens: chunks, maxTokens: maxTokens, text: text))
                }
                return false
            }

            do {
                for try await event in events {
                    switch event {
                    case .head(let s, let h):
                        status = s; headers = h
                        let type = h["content-type"]?.lowercased() ?? ""
                        if (200..<300).contains(s) && stream && !type.contains("application/json") {
                            sse = ServerSentEventParser()
                        }
                    case .body(let d):
                        if sse != nil {
                            for e in sse!.feed(d) {
                                if try handle(e) { return text }
                            }
                        } else if (200..<300).contains(status) || body.count < 1 << 20 {
                            body.append(d)   // error bodies are kept to their first megabyte
                        }
                    }
                }
            } catch let f as HTTPCall.Failure {
                switch f {
                case .timedOut: throw AttemptFailure(kind: .timedOut, afterOutput: delivered)
                case .connection(let why): throw AttemptFailure(kind: .connection(why), afterOutput: delivered)
                }
            }
            try Task.checkCancellation()

            guard (200..<300).contains(status) else {
                let message = Self.errorMessage(body: body)
                if status == 429 || (500..<600).contains(status) {
                    throw AttemptFailure(kind: .http(status: status, message: message),
                                         retryAfter: headers["retry-after"].flatMap { Double($0.trimmingCharacters(in: .whitespaces)) })
                }
                throw PrompterError("\(Self.httpStatusText(status)): \(message)", source: endpointName)
            }
            if sse != nil {
                if let e = sse!.finish(), try handle(e) { return text }
                guard eventCount > 0 else {
                    throw PrompterError("the server ended the stream without sending any event", source: endpointName)
                }
                return text   // closed without [DONE]: what arrived is the reply
            }
            let reply = try completeReply(body)
            try progress(GenerationProgress(tokens: reply.tokens ?? 0, maxTokens: maxTokens, text: reply.text))
            return reply.text
        } onCancel: {
            call.cancel()
        }
    }

    private func parseJSON(_ data: Data, what: String) throws -> Any {
        do { return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw PrompterError("malformed JSON in \(what) from the server: \(Self.truncated(String(decoding: data, as: UTF8.self)))",
                                source: endpointName)
        }
    }

    /// `choices[0].message.content` (a string, or content parts whose texts are joined) and
    /// `usage.completion_tokens` of a non-streamed reply.
    private func completeReply(_ body: Data) throws -> (text: String, tokens: Int?) {
        let json = try parseJSON(body, what: "the reply")
        if let message = Self.serverErrorMessage(json) {
            throw PrompterError("the server reported an error: \(message)", source: endpointName)
        }
        let obj = json as? [String: Any]
        let message = ((obj?["choices"] as? [Any])?.first as? [String: Any])?["message"] as? [String: Any]
        var text: String? = message?["content"] as? String
        if text == nil, let parts = message?["content"] as? [Any] {
            let texts = parts.compactMap { ($0 as? [String: Any])?["text"] as? String }
            if !texts.isEmpty { text = texts.joined() }
        }
        guard let text else {
            throw PrompterError("the reply has no choices[0].message.content: \(Self.truncated(String(decoding: body, as: UTF8.self)))",
                                source: endpointName)
        }
        let tokens = ((obj?["usage"] as? [String: Any])?["completion_tokens"] as? NSNumber)?.intValue
        return (text, tokens)
    }

    // MARK: Messages

    /// `error.message` of an OpenAI error object (`{"error":{"message":...}}`, or `{"error":"..."}` as some
    /// servers send).
    static func serverErrorMessage(_ json: Any) -> String? {
        guard let obj = json as? [String: Any], let error = obj["error"], !(error is NSNull) else { return nil }
        if let s = error as? String { return s }
        if let e = error as? [String: Any] {
            if let m = e["message"] as? String { return m }
            if let data = try? JSONSerialization.data(withJSONObject: e, options: [.sortedKeys]) {
                return String(decoding: data, as: UTF8.self)
            }
        }
        return "\(error)"
    }

    /// The server's message for an HTTP error: the OpenAI error message, else the start of the body.
    static func errorMessage(body: Data) -> String {
        if let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
           let m = serverErrorMessage(json) { return m }
        let s = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? "(empty body)" : truncated(s)
    }

    static func truncated(_ s: String, limit: Int = 300) -> String {
        let flat = s.replacingOccurrences(of: "\n", with: " ")
        return flat.count <= limit ? flat : String(flat.prefix(limit)) + "… (\(flat.count) characters)"
    }

    static func httpStatusText(_ status: Int) -> String {
        let reason = HTTPURLResponse.localizedString(forStatusCode: status)
        return reason.isEmpty ? "HTTP \(status)" : "HTTP \(status) (\(reason))"
    }
}

private func formatSeconds(_ s: Double) -> String {
    s == s.rounded() && s < 1e9 ? String(Int(s)) : String(format: "%g", s)
}
