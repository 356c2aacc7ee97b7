import Foundation
import Tensor

typealias FloatPtr = UnsafeMutablePointer<Float>
typealias ConstPtr = UnsafePointer<Float>

/// `y = x·Wᵀ + b` on the last dimension (PyTorch Linear). Weight [out, in] in its stored dtype,
/// bias converted to Float32 at load.
public struct Linear: Sendable {
    public let weight: StoredTensor
    public let bias: StoredTensor?
    public let inFeatures: Int, outFeatures: Int

    /// Reads `<name>.weight` [out, in] (a [out, in, 1, 1] 1×1-conv weight is accepted when
    /// `acceptConv1x1`) and, with `bias`, `<name>.bias` [out].
    public init(_ r: WeightReader, _ name: String, in inF: Int, out outF: Int, bias: Bool,
                acceptConv1x1: Bool = false, legacyName: String? = nil) throws {
        let legacy = legacyName.map { ["\($0).weight"] } ?? []
        weight = try r.stored("\(name).weight", shape: [outF, inF], alsoAccept: acceptConv1x1 ? [[outF, inF, 1, 1]] : [],
                              legacyNames: legacy)
        self.bias = bias ? try r.float32("\(name).bias", shape: [outF], legacyNames: legacyName.map { ["\($0).bias"] } ?? []) : nil
        inFeatures = inF
        outFeatures = outF
    }

    /// x [..., in] → [..., out]; `residual` (same shape as the output) is added.
    func callAsFunction(_ x: Tensor, _ ws: Workspace, residual: Tensor? = nil) throws -> Tensor {
        try ws.measure("linear") { try run(x, ws, residual: residual) }
    }

    private func run(_ x: Tensor, _ ws: Workspace, residual: Tensor?) throws -> Tensor {
        guard x.rank >= 1, x.shape[x.rank - 1] == inFeatures else {
            throw shapeError("linear \(weight.key)", x.shape, expected: "[..., \(inFeatures)]")
        }
        var shape = x.shape
        shape[shape.count - 1] = outFeatures
        if let residual, residual.shape != shape {
            throw shapeError("linear \(weight.key) residual", residual.shape, expected: "\(shape)")
        }
        let rows = x.count / max(1, inFeatures)
        let w = try ws.floats(weight)
        return try Tensor(shape: shape) { out in
            let y = out.baseAddress!
            var beta: Float = 0
            let b = bias.map(f32Pointer)
            if let residual {
                residual.withUnsafeBufferPointer { rp in (y).update(from: rp.baseAddress!, count: rows * outFeatures) }
                if let b { for i in 0..<rows { let d = y + i * outFeatures; for j in 0..<outFeatures { d[j] += b[j] } } }
                beta = 1
            } else if let b {
                for i in 0..<rows { (y + i * outFeatures).update(from: b, count: outFeatures) }
                beta = 1
            }
            x.withUnsafeBufferPointer { xs in
                GEMM.sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: xs.baseAddress!, lda: inFeatures,
                           b: w, ldb: inFeatures, beta: beta, c: y, ldc: outFeatures)
            }
        }
    }
}

/// GroupNorm (optionally followed by SiLU) with Float32 affine parameters.
public struct GroupNorm: Sendable {
    public let weight: StoredTensor, bias: StoredTensor
    public let groups: Int, eps: Float, channels: Int

    public init(_ r: WeightReader, _ name: String, channels: Int, groups: Int, eps: Float) throws {
        guard groups >= 1, channels % groups == 0 else {
            throw DiffusionError("\(r.prefix)\(name): \(channels) channels cannot form \(groups) groups (norm_num_groups)", file: r.source.name)
        }
        weight = try r.float32("\(name).weight", shape: [channels])
        bias = try r.float32("\(name).bias", shape: [channels])
        self.groups = groups
        self.eps = eps
        self.channels = channels
    }

    func callAsFunction(_ x: Tensor, silu: Bool = false) throws -> Tensor {
        guard x.rank >= 2, x.shape[1] == channels else {
            throw shapeError("group norm \(weight.key)", x.shape, expected: "[N, \(channels), ...]")
        }
        return try Elementwise.groupNorm(x, groups: groups, weight: f32Pointer(weight), bias: f32Pointer(bias), eps: eps, silu: silu)
    }
}

/// LayerNorm over the last dimension with Float32 affine parameters.
public struct LayerNorm: Sendable {
    public let weight: StoredTensor, bias: StoredTensor
    public let eps: Float

    public init(_ r: WeightReader, _ name: String, dim: Int, eps: Float) throws {
        weight = try r.float32("\(name).weight", shape: [dim])
        bias = try r.float32("\(name).bias", shape: [dim])
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Ops.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
}
