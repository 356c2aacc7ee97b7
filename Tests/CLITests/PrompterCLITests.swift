import Foundation
import Imaging
import Testing
import TestSupport

/// The prompter nodes through the llmga binary: Workflows/llmga-t2i.yaml against a scripted OpenAI-compatible
/// server chained into SD on the tiny pipeline fixture, and the tiny LLaVA fixture run in-process.
@Suite(.serialized) struct PrompterCLITests {
    let sdFixture = packageRoot.appendingPathComponent("Tests/DiffusionTests/Fixtures/pipeline/model").path
    let llavaFixture = packageRoot.appendingPathComponent("Tests/PrompterTests/Fixtures/llava")
    let workflow = packageRoot.appendingPathComponent("Workflows/llmga-t2i.yaml").path

    static let reply = #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Here it is. <gen_image> a red fox sitting in deep snow, soft morning light </gen_image>"},"finish_reason":"stop"}],"usage":{"completion_tokens":17}}"#

    @Test func serverPromptIsRenderedBySDAndCached() throws {
        let server = try TestHTTPServer([.json(Self.reply)])
        defer { server.stop() }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["run", workflow, "--cache-dir", dir.appendingPathComponent("cache").path,
                    "--set", "llm.path=", "--set", "llm.endpoint=\(server.baseURL)/v1", "--set", "llm.model=llmga-tiny",
                    "--set", "model=\(sdFixture)", "--set", "request=a red fox", "--set", "seed=7",
                    "--set", "steps=3", "--set", "width=64", "--set", "height=64"]
        let r = try llmga(args, cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let prompt = try String(contentsOf: dir.appendingPathComponent("out/llmga-t2i-7.txt"), encoding: .utf8)
        #expect(prompt == "a red fox sitting in deep snow, soft morning light\n")
        let png = try PNG.read(contentsOf: dir.appendingPathComponent("out/llmga-t2i-7.png"))
        #expect(png.image.width == 64 && png.image.height == 64)

        let requests = server.requests
        #expect(requests.count == 1)
        let body = try #require(requests.first?.json)
        #expect(body["model"] as? String == "llmga-tiny")
        #expect(body["seed"] as? Int == 7)
        let messages = try #require(body["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user"])
        #expect(messages.last?["content"] as? String == "a red fox Generate this image based on given keywords.")

        // Same model, inputs and seed: everything comes from the cache, the server is not asked again.
        let again = try llmga(args, cwd: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("0 run"), "\(again.stderr)")
        #expect(server.requests.count == 1)
    }

    @Test func aReplyWithoutAPromptFailsTheNodePlainly() throws {
        let server = try TestHTTPServer([.json(#"{"choices":[{"message":{"role":"assistant","content":"What kind of fox would you like?"}}]}"#)])
        defer { server.stop() }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try llmga(["run", workflow, "--cache", "none", "--set", "llm.path=", "--set", "llm.endpoint=\(server.baseURL)",
                           "--set", "llm.model=m", "--set", "model=\(sdFixture)"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("node 'ask' (llmga.prompter)"), "\(r.stderr)")
        #expect(r.stderr.contains("the model answered without a <gen_image> prompt: \"What kind of fox would you like?\""), "\(r.stderr)")
    }

    @Test func unreachableServerNamesTheEndpoint() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try llmga(["run", workflow, "--cache", "none", "--set", "llm.path=", "--set", "llm.endpoint=http://127.0.0.1:1/v1",
                           "--set", "llm.model=m", "--set", "llm.retries=0", "--set", "model=\(sdFixture)"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("http://127.0.0.1:1/v1/chat/completions"), "\(r.stderr)")
        #expect(r.stderr.contains("cannot reach the server"), "\(r.stderr)")
    }

    @Test func pathAndEndpointTogetherAreRefused() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try llmga(["run", workflow, "--cache", "none", "--set", "llm.endpoint=http://127.0.0.1:1",
                           "--set", "llm.model=m", "--set", "model=\(sdFixture)"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("give either path or endpoint, not both"), "\(r.stderr)")
    }

    /// The tiny LLaVA fixture (CLIP tower + mlp2x_gelu + Qwen2, original LLaVA layout) answers "similar image" for
    /// the fixture picture with exactly transformers' greedy tokens, and the conversation output carries it on.
    @Test func localLLaVAGreedyReplyMatchesTransformers() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: llavaFixture.appendingPathComponent("expected.json"))) as! [String: Any]
        let picture = packageRoot.appendingPathComponent("Tests/PrompterTests/Fixtures/vision/images/rgb45x30.png").path
        let yaml = """
        version: 1
        name: similar
        nodes:
          llm:
            type: llmga.load
            with:
              path: "\(llavaFixture.appendingPathComponent("llava").path)"
              vision-tower: "\(llavaFixture.appendingPathComponent("tower-config").path)"
          picture: { type: image.load, with: { path: "\(picture)" } }
          ask:
            type: llmga.prompter
            with: { model: $llm.model, mode: similar, image: $picture.image, temperature: 0, max-tokens: 32, require-prompt: false }
          save: { type: text.save, with: { text: $ask.conversation, path: out/conversation.json } }
        """
        let wf = dir.appendingPathComponent("similar.yaml")
        try yaml.write(to: wf, atomically: true, encoding: .utf8)
        let r = try llmga(["run", wf.path, "--cache-dir", dir.appendingPathComponent("cache").path], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let saved = try Data(contentsOf: dir.appendingPathComponent("out/conversation.json"))
        let conversation = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
        #expect(conversation["family"] as? String == "qwen_2")
        let messages = try #require(conversation["messages"] as? [[String: Any]])
        #expect(messages.count == 2)
        #expect(messages[0]["text"] as? String == "Generate a similar image." && messages[0]["image"] as? Bool == true)
        let text = expected["generated_text"] as! String
        #expect(messages[1]["text"] as? String == text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(conversation["image_png_base64"] is String)
    }
}
