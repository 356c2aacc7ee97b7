import Foundation
import Tensor

/// A view of some tensors of a source under other names: how a single-file checkpoint presents
/// its UNet, VAE and text encoder to model code that asks for diffusers names.
public final class RenamedTensorSource: TensorSource, @unchecked Sendable {
    public let name: String
    public let keys: [String]
    private let base: any TensorSource
    private let table: [String: (key: String, squeeze: Bool)]

    /// `table` maps each new name to the base key (and whether to view a [C, C, 1, 1] weight as [C, C]).
    public init(base: any TensorSource, name: String, table: [String: (key: String, squeeze: Bool)]) {
        self.base = base
        self.name = name
        self.table = table
        keys = table.keys.sorted()
    }

    public func contains(_ key: String) -> Bool { table[key] != nil }

    public func stored(_ key: String) throws(SafeTensorsError) -> StoredTensor {
        guard let (baseKey, squeeze) = table[key] else {
            let close = keys.filter { LDMCheckpoint.similar($0, key) }.prefix(3)
            throw .missingKey(key: key, file: name, suggestions: Array(close))
        }
        let t = try base.stored(baseKey)
        if squeeze, t.shape.count == 4, t.shape[2] == 1, t.shape[3] == 1 {
            return try t.viewed(as: [t.shape[0], t.shape[1]], key: key)
        }
        return try t.viewed(as: t.shape, key: key)
    }
}

/// What a checkpoint holds, read from its tensors as diffusers' `infer_diffusers_model_type` does.
public enum CheckpointKind: String, Sendable, Equatable {
    case sd15 = "Stable Diffusion 1.x"
    case sd15Inpainting = "Stable Diffusion 1.x inpainting"
    case sd2 = "Stable Diffusion 2.x"
    case controlNet = "ControlNet"
    case unknown
}

/// A single-file LDM checkpoint (`v1-5-pruned-emaonly.safetensors` and the like), split into its
/// components under diffusers names.
public struct LDMCheckpoint: Sendable {
    public let path: String
    public let kind: CheckpointKind
    public let unet: RenamedTensorSource
    public let vae: RenamedTensorSource
    public let textEncoder: RenamedTensorSource

    public init(source: any TensorSource) throws {
        path = source.name
        let keys = source.keys
        kind = try Self.detect(source)
        let mapping = LDMKeyMap.build(keys: keys)
        var tables: [LDMKeyMap.Component: [String: (key: String, squeeze: Bool)]] = [:]
        for (ldm, target) in mapping {
            tables[target.component, default: [:]][target.key] = (ldm, target.squeezeTo2D)
        }
        for c in LDMKeyMap.Component.allCases where (tables[c] ?? [:]).isEmpty {
            throw DiffusionError("holds no \(c == .textEncoder ? "text encoder (cond_stage_model.transformer.*)" : c == .unet ? "UNet (model.diffusion_model.*)" : "VAE (first_stage_model.*)") tensors; is it a Stable Diffusion single-file checkpoint?", file: path)
        }
        unet = RenamedTensorSource(base: source, name: "\(path) [unet]", table: tables[.unet]!)
        vae = RenamedTensorSource(base: source, name: "\(path) [vae]", table: tables[.vae]!)
        textEncoder = RenamedTensorSource(base: source, name: "\(path) [text_encoder]", table: tables[.textEncoder]!)
    }

    /// Reads the model type from characteristic tensors.
    static func detect(_ s: any TensorSource) throws -> CheckpointKind {
        if s.contains("control_model.time_embed.0.weight") || s.contains("controlnet_cond_embedding.conv_in.weight") { return .controlNet }
        let convIn = "model.diffusion_model.input_blocks.0.0.weight"
        guard s.contains(convIn) else { return .unknown }
        let shape = try s.stored(convIn).shape
        if s.keys.contains(where: { $0.hasPrefix("model.diffusion_model.input_blocks.") && $0.hasSuffix("attn2.to_k.weight") }),
           let k = s.keys.first(where: { $0.hasPrefix("model.diffusion_model.input_blocks.") && $0.hasSuffix("attn2.to_k.weight") }),
           try s.stored(k).shape.last == 1024 {
            return .sd2
        }
        return shape.count == 4 && shape[1] == 9 ? .sd15Inpainting : .sd15
    }

    static func similar(_ a: String, _ b: String) -> Bool {
        let pa = a.split(separator: "."), pb = b.split(separator: ".")
        return pa.count == pb.count && zip(pa, pb).filter { $0 != $1 }.count <= 1
    }
}
