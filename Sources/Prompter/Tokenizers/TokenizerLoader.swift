import Foundation

/// A tokenizer read from a model folder, with what its config says.
public struct LoadedTokenizer: Sendable {
    public let tokenizer: any Tokenizer
    public let config: TokenizerConfig
    /// The file the tokenizer came from (tokenizer.json or tokenizer.model).
    public let file: String
    /// Whether tokenizer_config.json carries a `chat_template`.
    public var hasChatTemplate: Bool { config.chatTemplate != nil }
}

public enum TokenizerLoader {
    /// Loads the tokenizer of a Transformers model folder: `tokenizer.json` when present (Qwen2, Llama-3, and
    /// converted Llama/Mistral files), else `tokenizer.model` (the LLMGA Vicuna checkpoints ship only that).
    /// tokenizer_config.json and special_tokens_map.json are read when present.
    public static func load(folder: String) throws -> LoadedTokenizer {
        let dir = URL(fileURLWithPath: folder)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func read(_ name: String) throws -> [UInt8]? {
            let p = path(name)
            guard FileManager.default.fileExists(atPath: p) else { return nil }
            do { return Array(try Data(contentsOf: URL(fileURLWithPath: p))) } catch {
                throw PrompterError("cannot read: \(error.localizedDescription)", source: p)
            }
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw PrompterError("not a folder", source: folder)
        }
        var config = TokenizerConfig()
        if let cfg = try read("tokenizer_config.json") {
            config = try TokenizerConfig(json: cfg, source: path("tokenizer_config.json"),
                                         specialTokensMap: try read("special_tokens_map.json"),
                                         mapSource: path("special_tokens_map.json"))
        } else if let map = try read("special_tokens_map.json") {
            config = try TokenizerConfig(json: Array("{}".utf8), source: path("tokenizer_config.json"),
                                         specialTokensMap: map, mapSource: path("special_tokens_map.json"))
        }
        if let json = try read("tokenizer.json") {
            let t = try HFTokenizer(json: json, source: path("tokenizer.json"), config: config)
            return LoadedTokenizer(tokenizer: t, config: config, file: path("tokenizer.json"))
        }
        if let model = try read("tokenizer.model") {
            let t = try SentencePieceTokenizer(model: model, source: path("tokenizer.model"), config: config)
            return LoadedTokenizer(tokenizer: t, config: config, file: path("tokenizer.model"))
        }
        throw PrompterError("no tokenizer.json or tokenizer.model", source: folder)
    }
}
