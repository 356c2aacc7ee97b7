/// One layer of a CLIP transformer encoder, shared by the CLIP text model (Diffusion) and the CLIP vision tower
/// (Prompter), whose layers are identical apart from the causal mask:
/// `x += out_proj(attention(layer_norm1(x)))`, then `x += fc2(act(fc1(layer_norm2(x))))`.
/// Weights are kept as stored (f32/f16/bf16, memory-mapped); keys are transformers' `encoder.layers.N.*` names.
public struct CLIPEncoderLayer: @unchecked Sendable {
    /// The MLP activation (`hidden_act` of a CLIP text or vision config).
    public enum Activation: String, Sendable, CaseIterable {
        case quickGelu = "quick_gelu", gelu, geluNew = "gelu_new"
    }

    let ln1w, ln1b, qw, qb, kw, kb, vw, vb, ow, ob, ln2w, ln2b, fc1w, fc1b, fc2w, fc2b: StoredTensor

    /// Reads the layer under `prefix` (e.g. `"encoder.layers.3."`) through `get(key, expectedShape)`, which
    /// resolves the model's own key prefix and reports missing keys, wrong shapes and dtypes in the model's terms.
    public init(prefix p: String, hiddenSize h: Int, intermediateSize f: Int,
                get: (String, [Int]) throws -> StoredTensor) throws {
        ln1w = try get(p + "layer_norm1.weight", [h]); ln1b = try get(p + "layer_norm1.bias", [h])
        qw = try get(p + "self_attn.q_proj.weight", [h, h]); qb = try get(p + "self_attn.q_proj.bias", [h])
        kw = try get(p + "self_attn.k_proj.weight", [h, h]); kb = try get(p + "self_attn.k_proj.bias", [h])
        vw = try get(p + "self_attn.v_proj.weight", [h, h]); vb = try get(p + "self_attn.v_proj.bias", [h])
        ow = try get(p + "self_attn.out_proj.weight", [h, h]); ob = try get(p + "self_attn.out_proj.bias", [h])
        ln2w = try get(p + "layer_norm2.weight", [h]); ln2b = try get(p + "layer_norm2.bias", [h])
        fc1w = try get(p + "mlp.fc1.weight", [f, h]); fc1b = try get(p + "mlp.fc1.bias", [f])
        fc2w = try get(p + "mlp.fc2.weight", [h, f]); fc2b = try get(p + "mlp.fc2.bias", [h])
    }

    /// Runs the layer on `x` ([batch, n, hidden] or [n, hidden]).
    public func callAsFunction(_ x: Tensor, heads: Int, activation: Activation, eps: Float, causal: Bool) throws -> Tensor {
        var y = try Ops.layerNorm(x, weight: ln1w, bias: ln1b, eps: eps)
        let q = try Ops.linear(y, weight: qw, bias: qb)
        let k = try Ops.linear(y, weight: kw, bias: kb)
        let v = try Ops.linear(y, weight: vw, bias: vb)
        let a = try Ops.attention(query: q, key: k, value: v, heads: heads, causal: causal)
        var x = x
        try Ops.addInPlace(&x, Ops.linear(a, weight: ow, bias: ob))
        y = try Ops.layerNorm(x, weight: ln2w, bias: ln2b, eps: eps)
        var m = try Ops.linear(y, weight: fc1w, bias: fc1b)
        switch activation {
        case .quickGelu: m = Ops.quickGelu(m)
        case .gelu: m = Ops.gelu(m)
        case .geluNew: m = Ops.geluTanh(m)
        }
        try Ops.addInPlace(&x, Ops.linear(m, weight: fc2w, bias: fc2b))
        return x
    }
}

extension Ops {
    /// `a += b` element-wise (same shapes), in parallel for large tensors: the residual connection.
    public static func addInPlace(_ a: inout Tensor, _ b: Tensor) throws {
        guard a.shape == b.shape else { throw TensorError("add: shapes \(a.shape) and \(b.shape) differ") }
        b.withUnsafeBufferPointer { bs in
            a.withUnsafeMutableBufferPointer { as_ in
                let box = UnsafeSendableBox((as_.baseAddress!, bs.baseAddress!))
                Parallel.forRanges(as_.count, minPerChunk: 1 << 15) { r in
                    let (p, q) = box.value
                    for i in r { p[i] += q[i] }
                }
            }
        }
    }
}
