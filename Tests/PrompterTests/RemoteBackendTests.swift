import Foundation
import Imaging
import Testing
import TestSupport
@testable import Prompter

/// Collects progress reports from the `@Sendable` callback.
private final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [GenerationProgress] = []
    func add(_ p: GenerationProgress) { lock.lock(); items.append(p); lock.unlock() }
    var all: [GenerationProgress] { lock.lock(); defer { lock.unlock() }; return items }
}

private struct StopGenerating: Error, Equatable {}

/// The error `body` throws (nil when it returns).
private func thrown(_ body: () async throws -> Void) async -> Error? {
    do { try await body(); return nil } catch { return error }
}

private func chatJSON(_ content: String, completionTokens: Int? = nil) -> String {
    let escaped = String(decoding: try! JSONSerialization.data(withJSONObject: content, options: [.fragmentsAllowed]), as: UTF8.self)
    let usage = completionTokens.map { ",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":\($0),\"total_tokens\":\(10 + $0)}" } ?? ""
    return "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\(escaped)},\"finish_reason\":\"stop\"}]\(usage)}"
}

/// One SSE event carrying a content delta (`nil`: the role-only first delta).
private func delta(_ content: String?) -> String {
    let c = content.map { String(decoding: try! JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed]), as: UTF8.self) }
    let body = c.map { "{\"content\":\($0)}" } ?? "{\"role\":\"assistant\"}"
    return "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":\(body),\"finish_reason\":null}]}\n\n"
}

private let oneTurn = Conversation(family: .qwen2, messages: [.user("Draw a fox.")])

@Suite(.serialized) struct RemoteBackendTests {
    func backend(_ server: TestHTTPServer, stream: Bool = false, timeout: Double = 5,
                 retry: OpenAIChatBackend.RetryPolicy = .none, apiKey: String? = nil) throws -> OpenAIChatBackend {
        try OpenAIChatBackend(baseURL: server.baseURL, model: "llmga-test", apiKey: apiKey, timeout: timeout,
                              retry: retry, stream: stream)
    }

    @Test func baseURLsAreNormalised() throws {
        let cases = [
            ("http://localhost:8080", "http://localhost:8080/v1/chat/completions"),
            ("http://localhost:8080/", "http://localhost:8080/v1/chat/completions"),
            ("http://localhost:8080/v1", "http://localhost:8080/v1/chat/completions"),
            ("http://localhost:8080/v1/", "http://localhost:8080/v1/chat/completions"),
            ("http://localhost:8080/v1/chat/completions", "http://localhost:8080/v1/chat/completions"),
            ("HTTPS://api.example.com/openai/v1", "https://api.example.com/openai/v1/chat/completions"),
            ("127.0.0.1:11434", "http://127.0.0.1:11434/v1/chat/completions"),
        ]
        for (given, expected) in cases {
            #expect(try OpenAIChatBackend.chatCompletionsURL(from: given).absoluteString == expected, "\(given)")
        }
        for bad in ["", "ftp://host/v1", "http://", "http://host:8080/v1?x=1"] {
            #expect(throws: PrompterError.self, "\(bad)") { try OpenAIChatBackend.chatCompletionsURL(from: bad) }
        }
        let b = try OpenAIChatBackend(baseURL: "http://user:pw@host:9/v1", model: "m")
        #expect(b.identity == "http://host:9/v1/chat/completions#m")
        #expect(b.family == nil)
        #expect(b.acceptsImages)
    }

    @Test func requestCarriesModelOptionsMessagesAndImage() async throws {
        let server = try TestHTTPServer([.json(chatJSON("Sure. <gen_image> A red fox at night. </gen_image>", completionTokens: 17))])
        defer { server.stop() }
        let b = try OpenAIChatBackend(baseURL: server.baseURL + "/v1", model: "llmga-test", apiKeyEnvironmentVariable: "LLMGA_TEST_KEY",
                                      stream: false, environment: ["LLMGA_TEST_KEY": "sk-secret-123"])
        // A 3×2 RGB image whose samples are exact 8-bit values, so the PNG round trip is lossless.
        let pixels = (0..<18).map { Float($0 * 14) / 255 }
        let image = Image(width: 3, height: 2, channels: 3, pixels: pixels)
        let conversation = Conversation(family: .llavaLlama2, messages: [
            .user("Generate a similar image.", image: true),
            .assistant("<gen_image> A red fox in snow. </gen_image>"),
            .user("Make it night."),
        ])
        let log = ProgressLog()
        let reply = try await b.reply(to: conversation, image: image,
                                      options: GenerationOptions(temperature: 0.7, topP: 0.9, seed: 42, maxNewTokens: 64),
                                      progress: { log.add($0) })
        #expect(reply == "Sure. <gen_image> A red fox at night. </gen_image>")
        #expect(log.all == [GenerationProgress(tokens: 17, maxTokens: 64, text: reply)])

        let requests = server.requests
        try #require(requests.count == 1)
        let r = requests[0]
        #expect(r.method == "POST")
        #expect(r.path == "/v1/chat/completions")
        #expect(r.headers["authorization"] == "Bearer sk-secret-123")
        #expect(r.headers["content-type"] == "application/json")
        #expect(r.headers["user-agent"] == "llmga")
        #expect(!String(decoding: r.body, as: UTF8.self).contains("<image>"))
        let json = try #require(r.json)
        #expect(json["model"] as? String == "llmga-test")
        #expect((json["temperature"] as? NSNumber)?.doubleValue == 0.7)
        #expect((json["top_p"] as? NSNumber)?.doubleValue == 0.9)
        #expect((json["max_tokens"] as? NSNumber)?.intValue == 64)
        #expect((json["seed"] as? NSNumber)?.intValue == 42)
        #expect(json["stream"] as? Bool == false)

        let messages = try #require(json["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "user"])
        #expect(messages[0]["content"] as? String == ChatFamily.llavaLlama2.defaultSystemPrompt)
        #expect(messages[2]["content"] as? String == "<gen_image> A red fox in snow. </gen_image>")
        #expect(messages[3]["content"] as? String == "Make it night.")
        let parts = try #require(messages[1]["content"] as? [[String: Any]])
        try #require(parts.count == 2)
        #expect(parts[0]["type"] as? String == "text")
        #expect(parts[0]["text"] as? String == "Generate a similar image.")
        #expect(parts[1]["type"] as? String == "image_url")
        let url = try #require((parts[1]["image_url"] as? [String: Any])?["url"] as? String)
        let prefix = "data:image/png;base64,"
        #expect(url.hasPrefix(prefix))
        let png = try #require(Data(base64Encoded: String(url.dropFirst(prefix.count))))
        let decoded = try PNG.decode(png)
        #expect(decoded.bitDepth == 8)
        #expect(decoded.image == image)

        // The key never shows in descriptions.
        #expect(b.hasAPIKey)
        #expect(!String(describing: b).contains("sk-secret"))
        #expect(!String(reflecting: b).contains("sk-secret"))
        #expect(!"\(Mirror(reflecting: b).children.map { "\($0.value)" })".contains("sk-secret"))
    }

    @Test func systemPromptChoice() throws {
        let b = try OpenAIChatBackend(baseURL: "http://h:1", model: "m")
        func messages(_ c: Conversation, _ backend: OpenAIChatBackend) throws -> [[String: Any]] {
            let body = try backend.requestBody(for: c, image: nil, options: GenerationOptions())
            return try #require((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["messages"] as? [[String: Any]])
        }
        // Family default when the conversation sets none.
        var c = Conversation(family: .llavaV1, messages: [.user("hi")])
        #expect(try messages(c, b).first?["content"] as? String == ChatFamily.llavaV1.defaultSystemPrompt)
        // The caller's system prompt wins; an empty one sends none.
        c.system = "Be brief."
        #expect(try messages(c, b).map { $0["content"] as? String } == ["Be brief.", "hi"])
        c.system = ""
        #expect(try messages(c, b).map { $0["role"] as? String } == ["user"])
        // Families without a default (Mistral: empty) send none; the option leaves it to the server.
        #expect(try messages(Conversation(family: .mistralInstruct, messages: [.user("hi")]), b).count == 1)
        let noDefault = try OpenAIChatBackend(baseURL: "http://h:1", model: "m", sendsDefaultSystemPrompt: false)
        #expect(try messages(Conversation(family: .llavaV1, messages: [.user("hi")]), noDefault).count == 1)
        // Ill-formed conversations and image mismatches are refused before any request.
        #expect(throws: PrompterError.self) { try messages(Conversation(family: .qwen2, messages: [.user("a"), .user("b")]), b) }
        #expect(throws: PrompterError.self) { try messages(Conversation(family: .qwen2, messages: [.user("a", image: true)]), b) }
        let image = Image(width: 1, height: 1, channels: 3, fill: 0.5)
        #expect(throws: PrompterError.self) { try b.requestBody(for: oneTurn, image: image, options: GenerationOptions()) }
        let textOnly = try OpenAIChatBackend(baseURL: "http://h:1", model: "m", acceptsImages: false)
        #expect(!textOnly.acceptsImages)
        let refused = #expect(throws: PrompterError.self) {
            try textOnly.requestBody(for: Conversation(family: .qwen2, messages: [.user("a", image: true)]), image: image,
                                     options: GenerationOptions())
        }
        #expect(refused?.message.contains("text-only") == true)
        #expect(throws: PrompterError.self) {
            try b.requestBody(for: oneTurn, image: nil, options: GenerationOptions(temperature: -1))
        }
    }

    @Test func noAuthorizationWithoutKeyAndMissingKeyVariableIsNamed() async throws {
        let server = try TestHTTPServer([.json(chatJSON("ok"))])
        defer { server.stop() }
        _ = try await backend(server).reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in })
        #expect(server.requests.first?.headers["authorization"] == nil)
        let e = #expect(throws: PrompterError.self) {
            try OpenAIChatBackend(baseURL: server.baseURL, model: "m", apiKeyEnvironmentVariable: "LLMGA_NO_SUCH_KEY", environment: [:])
        }
        #expect(e?.message.contains("LLMGA_NO_SUCH_KEY") == true)
    }

    @Test func streamedReplyIsAssembledWithProgressInOrder() async throws {
        // Events split across chunks mid-line and mid-character ("é" is 2 bytes), CRLF line ends, a comment,
        // a role-only first delta, an empty content delta and a usage-only event before [DONE].
        let accented = Array(delta(". Voilà é").utf8)
        let cut = try #require(accented.lastIndex(of: 0xC3)) + 1   // between the two bytes of "é"
        let server = try TestHTTPServer([.chunks([
            Data((": keep-alive\n\n" + delta(nil)).utf8),
            Data(delta("Sure").replacingOccurrences(of: "\n", with: "\r\n").utf8),
            Data(accented[0..<cut]),
            Data(accented[cut...]),
            Data((delta(" <gen_image> A red fox") + delta("")).utf8),
            Data(delta(" at night. </gen_image>").utf8),
            Data("data: {\"choices\":[],\"usage\":{\"completion_tokens\":4}}\n\n".utf8),
            Data("data: [DONE]\n\n".utf8),
        ], delay: 0)])
        defer { server.stop() }
        let log = ProgressLog()
        let reply = try await backend(server, stream: true).reply(to: oneTurn, image: nil, options: GenerationOptions(maxNewTokens: 100),
                                                                  progress: { log.add($0) })
        #expect(reply == "Sure. Voilà é <gen_image> A red fox at night. </gen_image>")
        #expect(log.all.map(\.text) == ["Sure", "Sure. Voilà é", "Sure. Voilà é <gen_image> A red fox", reply])
        #expect(log.all.map(\.tokens) == [1, 2, 3, 4])
        #expect(log.all.allSatisfy { $0.maxTokens == 100 })
        #expect(server.requests.first?.json?["stream"] as? Bool == true)
        #expect(server.requests.first?.headers["accept"] == "text/event-stream")

        let parsed = ReplyParser.parse(reply, stopStrings: ChatFamily.qwen2.stopStrings)
        #expect(parsed.prompts == ["A red fox at night."])
        #expect(parsed.text == "Sure. Voilà é")
    }

    @Test func serverSentEventsSplitAnywhere() {
        // Byte-by-byte feeding of CRLF/CR/LF lines, a multi-byte character, a two-line data event and a
        // final event without its blank line.
        let stream = "data: {\"a\":\"é\"}\r\n\r\n: comment\nevent: x\r\ndata: one\r\ndata: two\r\n\r\ndata:[DONE]\rdata: tail"
        var p = ServerSentEventParser()
        var events: [String] = []
        for b in Array(stream.utf8) { events += p.feed([b]) }
        if let last = p.finish() { events.append(last) }
        #expect(events == ["{\"a\":\"é\"}", "one\ntwo", "[DONE]\ntail"])
    }

    @Test func retriesDroppedConnectionsAnd503ThenSucceeds() async throws {
        let server = try TestHTTPServer([
            .drop,
            .json("{\"error\":{\"message\":\"loading model\"}}", status: 503),
            .json(chatJSON("third time lucky")),
        ])
        defer { server.stop() }
        let b = try backend(server, retry: .init(retries: 3, backoff: 0.01, maxDelay: 0.05))
        let reply = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in })
        #expect(reply == "third time lucky")
        #expect(server.requests.count == 3)
    }

    @Test func honoursRetryAfterCapped() async throws {
        let server = try TestHTTPServer([
            .json("{\"error\":{\"message\":\"rate limited\"}}", status: 429, headers: ["Retry-After": "5"]),
            .json(chatJSON("ok")),
        ])
        defer { server.stop() }
        // The backoff alone would wait 1 ms; Retry-After (5 s) is honoured up to the 0.3 s cap.
        let b = try backend(server, retry: .init(retries: 1, backoff: 0.001, maxDelay: 0.3))
        let start = Date()
        let reply = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in })
        let elapsed = Date().timeIntervalSince(start)
        #expect(reply == "ok")
        #expect(server.requests.count == 2)
        #expect(elapsed >= 0.3 && elapsed < 3, "waited \(elapsed) s")
        #expect(OpenAIChatBackend.RetryPolicy(retries: 3, backoff: 0.5, maxDelay: 1.5).delay(afterAttempt: 3, retryAfter: nil) == 1.5)
        #expect(OpenAIChatBackend.RetryPolicy(retries: 3, backoff: 0.5, maxDelay: 10).delay(afterAttempt: 2, retryAfter: nil) == 1)
    }

    @Test func clientErrorIsNotRetriedAndCarriesServerMessage() async throws {
        let server = try TestHTTPServer([
            .json("{\"error\":{\"message\":\"model 'llmga-test' not found\",\"type\":\"invalid_request_error\"}}", status: 400),
            .json(chatJSON("should not be asked")),
        ])
        defer { server.stop() }
        let b = try backend(server, retry: .init(retries: 3, backoff: 0.01))
        let e = await thrown { _ = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in }) }
        let error = try #require(e as? PrompterError)
        #expect(server.requests.count == 1)
        #expect(error.source == server.baseURL + "/v1/chat/completions")
        #expect(error.message.contains("HTTP 400"))
        #expect(error.message.contains("model 'llmga-test' not found"))
    }

    @Test func serverErrorsExhaustRetriesWithTruncatedBody() async throws {
        let long = "upstream overloaded " + String(repeating: "x", count: 2000)
        let server = try TestHTTPServer(Array(repeating: .full(status: 502, headers: ["Content-Type": "text/plain"], body: long), count: 3))
        defer { server.stop() }
        let b = try backend(server, retry: .init(retries: 2, backoff: 0.01))
        let e = await thrown { _ = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in }) }
        let error = try #require(e as? PrompterError)
        #expect(server.requests.count == 3)
        #expect(error.message.contains("HTTP 502"))
        #expect(error.message.contains("upstream overloaded"))
        #expect(error.message.contains("3 attempts"))
        #expect(error.message.count < 600)
    }

    @Test func timeoutSaysAfterHowLongAndHowManyAttempts() async throws {
        let server = try TestHTTPServer([.hang, .hang])
        defer { server.stop() }
        let b = try backend(server, timeout: 0.2, retry: .init(retries: 1, backoff: 0.01))
        let start = Date()
        let e = await thrown { _ = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in }) }
        let elapsed = Date().timeIntervalSince(start)
        let error = try #require(e as? PrompterError)
        #expect(error.source == b.endpoint.absoluteString)
        #expect(error.message.contains("timed out"))
        #expect(error.message.contains("0.2 s"))
        #expect(error.message.contains("2 attempts"))
        #expect(server.requests.count == 2)
        #expect(elapsed >= 0.4 && elapsed < 2, "took \(elapsed) s")
    }

    @Test func connectionRefusedNamesTheEndpoint() async throws {
        // A port that was just free: nothing listens there.
        let closed = try TestHTTPServer([])
        let port = closed.port
        closed.stop()
        let b = try OpenAIChatBackend(baseURL: "http://127.0.0.1:\(port)", model: "m", timeout: 2,
                                      retry: .init(retries: 1, backoff: 0.01))
        let e = await thrown { _ = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in }) }
        let error = try #require(e as? PrompterError)
        #expect(error.source == "http://127.0.0.1:\(port)/v1/chat/completions")
        #expect(error.description.contains("127.0.0.1:\(port)"))
        #expect(error.message.contains("cannot reach the server"))
        #expect(error.message.contains("2 attempts"))
    }

    @Test func malformedAndIncompleteRepliesAreClearErrors() async throws {
        let server = try TestHTTPServer([
            .json("{\"choices\": [ {\"message\": "),
            .json("{\"choices\":[]}"),
            .json("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null}}]}"),
        ])
        defer { server.stop() }
        let b = try backend(server, retry: .init(retries: 3, backoff: 0.01))
        var messages: [String] = []
        for _ in 0..<3 {
            let e = await thrown { _ = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in }) }
            let error = try #require(e as? PrompterError)
            #expect(error.source == b.endpoint.absoluteString)
            messages.append(error.message)
        }
        #expect(messages[0].contains("malformed JSON"))
        #expect(messages[1].contains("choices[0].message.content"))
        #expect(messages[2].contains("choices[0].message.content"))
        #expect(server.requests.count == 3)   // none retried
    }

    @Test func streamRequestAnsweredWithPlainJSONStillWorks() async throws {
        let server = try TestHTTPServer([.json(chatJSON("<gen_image> a cat </gen_image>"))])
        defer { server.stop() }
        let reply = try await backend(server, stream: true).reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in })
        #expect(ReplyParser.parse(reply, stopStrings: []).prompts == ["a cat"])
    }

    @Test func throwingProgressCancelsTheStream() async throws {
        let server = try TestHTTPServer([.events([delta("one"), delta(" two"), delta(" three"), delta(" four"), "data: [DONE]\n\n"],
                                                 delay: 0.3)])
        defer { server.stop() }
        let b = try backend(server, stream: true, retry: .init(retries: 2, backoff: 0.01))
        let log = ProgressLog()
        let start = Date()
        let e = await thrown {
            _ = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions()) { p in
                log.add(p)
                throw StopGenerating()
            }
        }
        #expect(e as? StopGenerating == StopGenerating())
        #expect(Date().timeIntervalSince(start) < 0.3)
        #expect(log.all.map(\.text) == ["one"])
        #expect(server.requests.count == 1)
        // The server sees the client leave before its next chunk.
        for _ in 0..<100 where server.abandonedStreams == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(server.abandonedStreams == 1)
    }

    @Test func streamBrokenAfterOutputIsNotRetried() async throws {
        let server = try TestHTTPServer([
            .chunks([Data(delta("one").utf8), Data(delta(" two").utf8)], delay: 0, complete: false),
            .json(chatJSON("a retry would restart the reply")),
        ])
        defer { server.stop() }
        let log = ProgressLog()
        let b = try backend(server, stream: true, retry: .init(retries: 2, backoff: 0.01))
        let e = await thrown { _ = try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { log.add($0) }) }
        let error = try #require(e as? PrompterError)
        #expect(error.message.contains("broke in the middle of the streamed reply"))
        #expect(error.message.contains("1 attempt"))
        #expect(log.all.map(\.text) == ["one", "one two"])
        #expect(server.requests.count == 1)
    }

    @Test func cancellingTheTaskCancelsTheRequest() async throws {
        let server = try TestHTTPServer([.hang])
        defer { server.stop() }
        let b = try backend(server, timeout: 10)
        let start = Date()
        let task = Task { try await b.reply(to: oneTurn, image: nil, options: GenerationOptions(), progress: { _ in }) }
        for _ in 0..<200 where server.requests.isEmpty { try await Task.sleep(nanoseconds: 5_000_000) }
        task.cancel()
        let e = await thrown { _ = try await task.value }
        #expect(e is CancellationError)
        #expect(Date().timeIntervalSince(start) < 2)
    }
}
