/// What tokenizer_config.json (and special_tokens_map.json) say about a tokenizer.
public struct TokenizerConfig: Sendable {
    public var tokenizerClass: String?
    public var bosToken: String?
    public var eosToken: String?
    public var padToken: String?
    public var unkToken: String?
    public var addBosToken: Bool?
    public var addEosToken: Bool?
    /// transformers' LlamaTokenizer `legacy` flag (absent means true, as transformers 4.37–4.46 default to).
    public var legacy: Bool?
    public var addPrefixSpace: Bool?
    public var cleanUpTokenizationSpaces: Bool?
    /// The Jinja chat template, when the file has one (a string, or the "default" entry of a list).
    public var chatTemplate: String?
    /// added_tokens_decoder: id → token with flags.
    var addedTokens: [AddedToken] = []

    public init() {}

    /// Parses tokenizer_config.json bytes; `specialTokensMap` (special_tokens_map.json) fills names it lacks.
    public init(json: [UInt8], source: String, specialTokensMap: [UInt8]? = nil, mapSource: String = "special_tokens_map.json") throws {
        let root: JSONValue
        do { root = try JSONValue.parse(json) } catch { throw PrompterError("not valid JSON: \(error)", source: source) }
        guard case .object = root else { throw PrompterError("top level is not a JSON object", source: source) }
        var map: JSONValue? = nil
        if let specialTokensMap {
            do { map = try JSONValue.parse(specialTokensMap) } catch { throw PrompterError("not valid JSON: \(error)", source: mapSource) }
        }
        func tokenName(_ key: String) throws -> String? {
            for (j, src) in [(root[key], source), (map?[key], mapSource)] {
                guard let v = j, !v.isNull else { continue }
                if let s = v.stringValue { return s }
                if let s = v["content"]?.stringValue { return s }
                throw PrompterError("\"\(key)\" is neither a string nor an object with \"content\"", source: src)
            }
            return nil
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = root[key], !v.isNull else { return nil }
            guard let b = v.boolValue else { throw PrompterError("\"\(key)\" is not a boolean", source: source) }
            return b
        }
        tokenizerClass = root["tokenizer_class"]?.stringValue
        bosToken = try tokenName("bos_token")
        eosToken = try tokenName("eos_token")
        padToken = try tokenName("pad_token")
        unkToken = try tokenName("unk_token")
        addBosToken = try bool("add_bos_token")
        addEosToken = try bool("add_eos_token")
        legacy = try bool("legacy")
        addPrefixSpace = try bool("add_prefix_space")
        cleanUpTokenizationSpaces = try bool("clean_up_tokenization_spaces")
        if let t = root["chat_template"], !t.isNull {
            if let s = t.stringValue {
                chatTemplate = s
            } else if let list = t.arrayValue {
                let named = list.compactMap { e -> (String, String)? in
                    guard let n = e["name"]?.stringValue, let s = e["template"]?.stringValue else { return nil }
                    return (n, s)
                }
                chatTemplate = named.first(where: { $0.0 == "default" })?.1 ?? named.first?.1
            } else {
                throw PrompterError("\"chat_template\" is neither a string nor a list of {name, template}", source: source)
            }
        }
        if let dec = root["added_tokens_decoder"]?.objectValue {
            for m in dec {
                let k = m.key, v = m.value
                guard let id = Int(k), let content = v["content"]?.stringValue else {
                    throw PrompterError("added_tokens_decoder entry \"\(k)\" needs an integer key and \"content\"", source: source)
                }
                addedTokens.append(AddedToken(id: id, content: content, special: v["special"]?.boolValue ?? false,
                                              lstrip: v["lstrip"]?.boolValue ?? false, rstrip: v["rstrip"]?.boolValue ?? false,
                                              normalized: v["normalized"]?.boolValue ?? false,
                                              singleWord: v["single_word"]?.boolValue ?? false))
            }
            addedTokens.sort { $0.id < $1.id }
        }
    }
}
