import Foundation
import Tensor

/// LLaVA's vision→language projector (`mm_projector`), as `build_vision_projector` builds it.
public final class MultimodalProjector: @unchecked Sendable {
    /// The projector's architecture (`mm_projector_type`).
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        /// One Linear(vision hidden → LLM hidden).
        case linear
        /// `mlp{depth}x_gelu`: Linear(vision → H), then (depth - 1) × [GELU (erf), Linear(H → H)].
        case mlpGelu(depth: Int)
        /// No weights: features pass through (vision hidden must equal the LLM hidden size).
        case identity

        /// Parses `mm_projector_type` as LLaVA does: "linear", `^mlp(\d+)x_gelu$`, "identity".
        public init(_ type: String) throws {
            if type == "linear" { self = .linear; return }
            if type == "identity" { self = .identity; return }
            if type.hasPrefix("mlp"), type.hasSuffix("x_gelu") {
                let digits = type.dropFirst(3).dropLast(6)
                if !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let d = Int(digits), d >= 1 {
                    self = .mlpGelu(depth: d)
                    return
                }
            }
            throw PrompterError("unknown projector type \"\(type)\" (linear, mlp<N>x_gelu, identity)")
        }

        public var description: String {
            switch self {
            case .linear: "linear"
            case .mlpGelu(let d): "mlp\(d)x_gelu"
            case .identity: "identity"
            }
        }
    }

    public let kind: Kind
    /// The linear layers in order (weight [out, in], bias [out]).
    let linears: [(weight: StoredTensor, bias: StoredTensor)]
    /// Input (vision hidden) and output (LLM hidden) sizes.
    public let inputSize: Int
    public let outputSize: Int

    /// The key names of layer `i` of `kind`'s linears under a layout: LLaVA (`<prefix>mm_projector.0`,
    /// `.2`, … for MLPs, `<prefix>mm_projector` for linear) or HF Llava (`<prefix>linear_1`, `linear_2`).
    static func layerKeys(_ kind: Kind) -> [[String]] {
        switch kind {
        case .identity: return []
        case .linear:
            return [["model.mm_projector", "mm_projector"]]
        case .mlpGelu(let d):
            return (0..<d).map { i in
                var keys = ["model.mm_projector.\(2 * i)", "mm_projector.\(2 * i)"]
                if d == 2 { keys += ["model.multi_modal_projector.linear_\(i + 1)", "multi_modal_projector.linear_\(i + 1)"] }
                return keys
            }
        }
    }

    /// Loads the projector's weights from `weights`, finding the layout: LLaVA's `model.mm_projector.*`
    /// (or `mm_projector.*`, as in a stage-1 `mm_projector` file) or HF Llava's
    /// `multi_modal_projector.linear_{1,2}.*` (top level in files written by transformers ≤ 4.51 and 5,
    /// under `model.` in 4.52+). `inputSize`/`outputSize` are checked against the shapes when given.
    /// `keyPrefix` is prepended to every name (e.g. to read one of several projectors in one file).
    public init(kind: Kind, weights: any TensorSource, inputSize: Int? = nil, outputSize: Int? = nil, keyPrefix: String = "") throws {
        self.kind = kind
        var linears: [(StoredTensor, StoredTensor)] = []
        for (i, candidates) in Self.layerKeys(kind).enumerated() {
            guard let base = candidates.map({ keyPrefix + $0 }).first(where: { weights.contains($0 + ".weight") }) else {
                throw PrompterError("projector (\(kind)) layer \(i): none of "
                                    + candidates.map { "\"\(keyPrefix)\($0).weight\"" }.joined(separator: ", ") + " exists",
                                    source: weights.name)
            }
            func get(_ key: String) throws -> StoredTensor {
                guard weights.contains(key) else {
                    throw PrompterError("projector tensor \"\(key)\" is missing", source: weights.name)
                }
                do {
                    let t = try weights.stored(key)
                    guard [.f32, .f16, .bf16].contains(t.dtype) else {
                        throw PrompterError("tensor \"\(key)\" has dtype \(t.dtype.rawValue), expected F32, F16 or BF16", source: weights.name)
                    }
                    return t
                } catch let e as SafeTensorsError { throw PrompterError(e.description, source: weights.name) }
            }
            linears.append((try get(base + ".weight"), try get(base + ".bias")))
        }
        // Shapes: a chain in → H → … → H.
        for (i, l) in linears.enumerated() {
            guard l.0.shape.count == 2, l.1.shape == [l.0.shape[0]] else {
                throw PrompterError("projector layer \(i): weight \"\(l.0.key)\" \(l.0.shape) and bias \"\(l.1.key)\" \(l.1.shape) do not form a Linear",
                                    source: weights.name)
            }
            if i > 0, l.0.shape[1] != linears[i - 1].0.shape[0] {
                throw PrompterError("projector layer \(i): weight \"\(l.0.key)\" has \(l.0.shape[1]) inputs, previous layer gives \(linears[i - 1].0.shape[0])",
                                    source: weights.name)
            }
        }
        self.linears = linears.map { (weight: $0.0, bias: $0.1) }
        let inF = linears.first?.0.shape[1] ?? inputSize ?? outputSize ?? 0
        let outF = linears.last?.0.shape[0] ?? outputSize ?? inF
        if let inputSize, inputSize != inF {
            throw PrompterError("projector takes \(inF) features, but the vision tower gives \(inputSize)", source: weights.name)
        }
        if let outputSize, outputSize != outF {
            throw PrompterError("projector gives \(outF) features, but the language model's hidden size is \(outputSize)", source: weights.name)
        }
        if kind == .identity, inF != outF {
            throw PrompterError("identity projector: vision hidden size \(inF) differs from the language model's \(outF)")
        }
        self.inputSize = inF
        self.outputSize = outF
    }

    /// Projects features [..., inputSize] → [..., outputSize].
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1, x.shape[x.rank - 1] == inputSize else {
            throw PrompterError("projector: input has shape \(x.shape), expected last dimension \(inputSize)")
        }
        var y = x
        for (i, l) in linears.enumerated() {
            if i > 0 { y = Ops.gelu(y) }
            y = try Ops.linear(y, weight: l.weight, bias: l.bias)
        }
        return y
    }
}
