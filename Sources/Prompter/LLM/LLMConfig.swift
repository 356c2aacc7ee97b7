import Foundation

/// The decoder architecture family of a transformers `config.json`.
public enum LLMArchitecture: String, Sendable, Equatable {
    /// Llama / Vicuna / Llama-2/3 (`llama`, `llava_llama`): optional `attention_bias` on q/k/v/o, `mlp_bias`.
    case llama
    /// Mistral (`mistral`, `llava_mistral`): no biases; a sliding attention window when `sliding_window` is set.
    case mistral
    /// Qwen2 (`qwen2`, `llava_Qwen2`/`llava_qwen2`): q/k/v biases always, no o_proj bias.
    case qwen2
}

/// Rotary-embedding frequency scaling (`rope_scaling`, or `rope_parameters` in transformers 5).
public enum RopeScaling: Sendable, Equatable {
    /// Position interpolation: every inverse frequency divided by `factor`.
    case linear(factor: Double)
    /// Llama 3.1's piecewise scaling of low and medium frequencies.
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositionEmbeddings: Int)
}

/// The decoder part of a transformers `config.json`: Llama, Mistral, Qwen2, their LLaVA variants
/// (`llava_llama`, `llava_mistral`, `llava_Qwen2`; the `mm_*` keys are ignored) and the HF `llava` layout whose
/// decoder config sits under `text_config`.
///
/// Keys that transformers' config classes give defaults to are optional here with the same defaults;
/// `hidden_size`, `intermediate_size`, `num_hidden_layers`, `num_attention_heads` and `vocab_size` are required at
/// top level. Under an HF `llava` `text_config` (which older transformers saved as a diff against the defaults)
/// every key falls back to the base class's default.
public struct LLMConfig: Sendable, Equatable {
    /// The `model_type` as written (of `text_config` for the HF llava layout; "llama" when it has none).
    public var modelType: String
    public var architecture: LLMArchitecture
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    /// Grouped-query attention: query heads share `numAttentionHeads / numKeyValueHeads`-sized groups.
    public var numKeyValueHeads: Int
    /// Per-head width: `head_dim` when given, else `hiddenSize / numAttentionHeads`.
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var vocabSize: Int
    public var tieWordEmbeddings: Bool
    /// q/k/v projections carry biases (always for Qwen2; Llama's `attention_bias`).
    public var qkvBias: Bool
    /// o_proj carries a bias (Llama's `attention_bias`).
    public var outputBias: Bool
    /// gate/up/down projections carry biases (Llama's `mlp_bias`).
    public var mlpBias: Bool
    public var maxPositionEmbeddings: Int
    /// The sliding-window size in effect, as transformers 5 resolves it: Mistral's `sliding_window`; Qwen2's only
    /// when `use_sliding_window` is true (LLMGA's Qwen2 configs carry 4096 with it false); nil for Llama.
    public var slidingWindow: Int?
    /// Per layer, the window its attention uses (query at position p sees keys at p − window + 1 ... p), nil for
    /// full causal attention: every layer for Mistral; for Qwen2 the layers marked "sliding_attention" in
    /// `layer_types`, else those at index ≥ `max_window_layers` (default 28), as transformers does.
    public var layerWindows: [Int?]
    /// `torch_dtype` (transformers 4) or `dtype` (transformers 5), e.g. "bfloat16"; informational.
    public var dtype: String?
    /// `eos_token_id` (a number or a list), empty when absent.
    public var eosTokenIds: [Int]
    /// `bos_token_id`, when present.
    public var bosTokenId: Int?

    /// Parses config.json bytes; `source` (the file path) prefixes every error.
    public init(json: [UInt8], source: String) throws {
        let root: JSONValue
        do { root = try JSONValue.parse(json) } catch { throw PrompterError("not valid JSON: \(error)", source: source) }
        guard case .object = root else { throw PrompterError("top level is not a JSON object", source: source) }
        guard let type = root["model_type"]?.stringValue else {
            throw PrompterError("missing key \"model_type\" (a string)", source: source)
        }
        if type == "llava" || type == "llava_next" {
            guard let text = root["text_config"], case .object = text else {
                throw PrompterError("missing key \"text_config\" (an object) for model_type \"\(type)\"", source: source)
            }
            try self.init(object: text, keyPrefix: "text_config.", modelType: text["model_type"]?.stringValue ?? "llama",
                          useDefaults: true, source: source)
            // The HF llava layout keeps tie_word_embeddings at top level in some versions.
            if text["tie_word_embeddings"] == nil, let t = root["tie_word_embeddings"]?.boolValue { tieWordEmbeddings = t }
            if eosTokenIds.isEmpty, let e = root["eos_token_id"] { eosTokenIds = Self.ids(e) }
        } else {
            try self.init(object: root, keyPrefix: "", modelType: type, useDefaults: false, source: source)
        }
    }

    /// Reads `config.json` in `folder`.
    public init(folder: String) throws {
        let path = URL(fileURLWithPath: folder).appendingPathComponent("config.json").path
        guard FileManager.default.fileExists(atPath: path) else { throw PrompterError("no config.json", source: folder) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PrompterError("cannot read: \(error.localizedDescription)", source: path)
        }
        try self.init(json: Array(data), source: path)
    }

    private static func ids(_ v: JSONValue) -> [Int] {
        if let i = v.intValue { return [i] }
        return v.arrayValue?.compactMap(\.intValue) ?? []
    }

    private init(object o: JSONValue, keyPrefix: String, modelType: String, useDefaults: Bool, source: String) throws {
        let arch: LLMArchitecture
        switch modelType {
        case "llama", "llava_llama": arch = .llama
        case "mistral", "llava_mistral": arch = .mistral
        case "qwen2", "llava_qwen2", "llava_Qwen2", "llava_qwen": arch = .qwen2
        default:
            throw PrompterError("unsupported model_type \"\(modelType)\" at key \"\(keyPrefix)model_type\" (supported: llama, mistral, qwen2, llava_llama, llava_mistral, llava_Qwen2, llava with text_config)", source: source)
        }
        // transformers' class defaults (LlamaConfig, MistralConfig, Qwen2Config), used only under text_config.
        let defaults: [String: Double]
        switch arch {
        case .llama: defaults = ["vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                                 "num_attention_heads": 32, "max_position_embeddings": 2048]
        case .mistral: defaults = ["vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                                   "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072]
        case .qwen2: defaults = ["vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
                                 "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 32768]
        }
        func key(_ k: String) -> String { "\"\(keyPrefix)\(k)\"" }
        func int(_ k: String, default d: Int? = nil) throws -> Int {
            if let v = o[k], !v.isNull {
                guard let i = v.intValue else { throw PrompterError("key \(key(k)) is not an integer", source: source) }
                guard i > 0 else { throw PrompterError("key \(key(k)) must be positive, got \(i)", source: source) }
                return i
            }
            if let d { return d }
            if useDefaults, let d = defaults[k] { return Int(d) }
            throw PrompterError("missing key \(key(k))", source: source)
        }
        func double(_ v: JSONValue?, _ k: String, default d: Double) throws -> Double {
            guard let v, !v.isNull else { return d }
            guard let x = v.doubleValue, x.isFinite else { throw PrompterError("key \(key(k)) is not a number", source: source) }
            return x
        }
        func bool(_ k: String, default d: Bool) throws -> Bool {
            guard let v = o[k], !v.isNull else { return d }
            guard let b = v.boolValue else { throw PrompterError("key \(key(k)) is not a boolean", source: source) }
            return b
        }
        self.modelType = modelType
        architecture = arch
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numHiddenLayers = try int("num_hidden_layers")
        numAttentionHeads = try int("num_attention_heads")
        numKeyValueHeads = try int("num_key_value_heads", default: arch == .mistral && useDefaults ? 8 : numAttentionHeads)
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw PrompterError("key \(key("num_attention_heads")) (\(numAttentionHeads)) is not a multiple of \(key("num_key_value_heads")) (\(numKeyValueHeads))", source: source)
        }
        if let v = o["head_dim"], !v.isNull {
            headDim = try int("head_dim")
        } else {
            guard hiddenSize % numAttentionHeads == 0 else {
                throw PrompterError("key \(key("hidden_size")) (\(hiddenSize)) is not a multiple of \(key("num_attention_heads")) (\(numAttentionHeads)) and there is no \(key("head_dim"))", source: source)
            }
            headDim = hiddenSize / numAttentionHeads
        }
        guard headDim % 2 == 0 else { throw PrompterError("head dimension \(headDim) must be even for rotary embeddings", source: source) }
        rmsNormEps = Float(try double(o["rms_norm_eps"], "rms_norm_eps", default: 1e-6))
        vocabSize = try int("vocab_size")
        maxPositionEmbeddings = try int("max_position_embeddings", default: useDefaults ? nil : (arch == .qwen2 ? 32768 : 2048))
        tieWordEmbeddings = try bool("tie_word_embeddings", default: false)
        switch arch {
        case .qwen2:
            qkvBias = true; outputBias = false; mlpBias = false
        case .llama:
            let b = try bool("attention_bias", default: false)
            qkvBias = b; outputBias = b
            mlpBias = try bool("mlp_bias", default: false)
        case .mistral:
            qkvBias = false; outputBias = false; mlpBias = false
        }
        var window: Int?
        if let v = o["sliding_window"], !v.isNull {
            guard let w = v.intValue, w > 0 else { throw PrompterError("key \(key("sliding_window")) is not a positive integer", source: source) }
            window = w
        }
        switch arch {
        case .llama: window = nil
        case .mistral: break
        case .qwen2: if try !bool("use_sliding_window", default: false) { window = nil }
        }
        slidingWindow = window
        layerWindows = [Int?](repeating: nil, count: numHiddenLayers)
        if let window, arch != .llama {
            if let v = o["layer_types"], !v.isNull {
                guard let types = v.arrayValue?.compactMap(\.stringValue), types.count == numHiddenLayers else {
                    throw PrompterError("key \(key("layer_types")) must list one string per layer (\(numHiddenLayers))", source: source)
                }
                for (i, t) in types.enumerated() where t == "sliding_attention" { layerWindows[i] = window }
            } else if arch == .mistral {
                layerWindows = [Int?](repeating: window, count: numHiddenLayers)
            } else {
                let first = try int("max_window_layers", default: 28)
                for i in 0..<numHiddenLayers where i >= first { layerWindows[i] = window }
            }
        }
        dtype = o["torch_dtype"]?.stringValue ?? o["dtype"]?.stringValue
        eosTokenIds = o["eos_token_id"].map(Self.ids) ?? []
        bosTokenId = o["bos_token_id"]?.intValue

        // rope_theta: top level (transformers 4) or inside rope_parameters (transformers 5).
        let params = o["rope_parameters"].flatMap { $0.isNull ? nil : $0 }
        if let params, case .object = params {} else if params != nil {
            throw PrompterError("key \(key("rope_parameters")) is not an object", source: source)
        }
        ropeTheta = try double(o["rope_theta"] ?? params?["rope_theta"],
                               o["rope_theta"] != nil ? "rope_theta" : "rope_parameters.rope_theta", default: 10000)
        guard ropeTheta > 0 else { throw PrompterError("key \(key("rope_theta")) must be positive", source: source) }
        let scalingKey: String
        let scaling: JSONValue?
        if let s = o["rope_scaling"], !s.isNull { scalingKey = "rope_scaling"; scaling = s } else { scalingKey = "rope_parameters"; scaling = params }
        ropeScaling = nil
        if let scaling {
            guard case .object = scaling else { throw PrompterError("key \(key(scalingKey)) is not an object", source: source) }
            let typeKey = scaling["rope_type"] != nil ? "rope_type" : "type"
            let type = scaling[typeKey]?.stringValue ?? "default"
            func factor(_ k: String, _ d: Double? = nil) throws -> Double {
                guard let v = scaling[k], !v.isNull else {
                    if let d { return d }
                    throw PrompterError("missing key \(key(scalingKey + "." + k)) for rope type \"\(type)\"", source: source)
                }
                guard let x = v.doubleValue, x.isFinite, x > 0 else {
                    throw PrompterError("key \(key(scalingKey + "." + k)) must be a positive number", source: source)
                }
                return x
            }
            switch type {
            case "default":
                break
            case "linear":
                ropeScaling = .linear(factor: try factor("factor"))
            case "llama3":
                let low = try factor("low_freq_factor"), high = try factor("high_freq_factor")
                guard high != low else {
                    throw PrompterError("keys \(key(scalingKey + ".low_freq_factor")) and \(key(scalingKey + ".high_freq_factor")) must differ", source: source)
                }
                ropeScaling = .llama3(factor: try factor("factor"), lowFreqFactor: low, highFreqFactor: high,
                                      originalMaxPositionEmbeddings: Int(try factor("original_max_position_embeddings")))
            default:
                throw PrompterError("unsupported rope scaling type \"\(type)\" at key \(key(scalingKey + "." + typeKey)) (supported: default, linear, llama3)", source: source)
            }
        }
    }

    /// The rotary inverse frequencies (`headDim / 2` values) as transformers computes them in f32:
    /// `1 / theta^(2i / headDim)`, then the `ropeScaling` adjustment.
    public func ropeInverseFrequencies() -> [Float] {
        let half = headDim / 2
        var inv = (0..<half).map { i in 1 / powf(Float(ropeTheta), Float(2 * i) / Float(headDim)) }
        switch ropeScaling {
        case nil:
            break
        case .linear(let factor):
            inv = inv.map { $0 / Float(factor) }
        case .llama3(let factor, let low, let high, let original):
            // transformers' _compute_llama3_parameters, in f32.
            let f = Float(factor), lowF = Float(low), highF = Float(high), old = Float(original)
            let lowWavelen = old / lowF, highWavelen = old / highF
            inv = inv.map { freq in
                let wavelen = 2 * Float.pi / freq
                let scaled = wavelen > lowWavelen ? freq / f : freq
                if wavelen < highWavelen || wavelen > lowWavelen { return scaled }
                let smooth = (old / wavelen - lowF) / (highF - lowF)
                return (1 - smooth) * scaled / f + smooth * scaled
            }
        }
        return inv
    }
}
