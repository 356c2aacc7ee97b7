#!/usr/bin/env python3
"""Parity fixtures for the Tensor module (Tests/TensorTests/Fixtures).

Regenerate (deterministic; needs torch, safetensors, numpy in tools/.venv):

    python3 -m venv tools/.venv
    tools/.venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu \
        || tools/.venv/bin/pip install torch
    tools/.venv/bin/pip install safetensors numpy
    tools/.venv/bin/python tools/tensor/make_fixtures.py [io|rng|kernels ...]

With no argument every group is written. Files:
  io_python.safetensors           tensors of every dtype written by the reference safetensors library,
                                  plus f32 values and torch's f32->bf16/f16 roundings of edge values
  io_sharded/                     a two-shard checkpoint with model.safetensors.index.json
  rng.safetensors                 torch.randn / torch.rand outputs for several seeds and shapes
                                  (must run on x86 with AVX2/AVX-512: torch's vector Box-Muller)
  rng_scalar.safetensors          torch.randn with ATEN_CPU_CAPABILITY=default (scalar Box-Muller)
  kernels.safetensors             inputs and outputs of each kernel, computed by torch in float64
                                  from float32 inputs (so the reference is the exact answer)
Python is never run by the Swift tests. Every file has at most one metadata key: the safetensors library
writes metadata in hash order, so a single key keeps the files byte-for-byte reproducible.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "TensorTests", "Fixtures"))


def make_io():
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(3, 5, generator=g) * 4
    tensors = {
        "a.f32": base.clone(),
        "a.f16": base.to(torch.float16),
        "a.bf16": base.to(torch.bfloat16),
        "a.f16.as_f32": base.to(torch.float16).to(torch.float32),
        "a.bf16.as_f32": base.to(torch.bfloat16).to(torch.float32),
        "ids.i64": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "bytes.u8": torch.arange(4, dtype=torch.uint8),
        "flags.bool": torch.tensor([True, False, True]),
        "scalar.f32": torch.tensor(2.5),
        "empty.f32": torch.zeros(0, 4),
    }
    # Edge values for float32 -> bf16 / f16 rounding (ties, subnormals, overflow, signed zero, inf).
    edge = [0.0, -0.0, 1.0, -1.0, 1.00390625, 1.01171875, 1.0 + 2**-8, 1.0 + 3 * 2**-8, 3.0e38, -3.4e38,
            65504.0, 65520.0, 65519.99, 1e-8, 6.0e-8, 3.0e-8, 2.98e-8, 5.96e-8, 1e-40, -1e-45,
            float("inf"), float("-inf"), 0.1, 0.2, 0.3, 1234.5678, -7.77e-5, 2049.0, 2051.0, 4097.0]
    edge_t = torch.tensor(edge, dtype=torch.float32)
    rnd = torch.randn(4096, generator=g, dtype=torch.float32) * torch.exp(torch.randn(4096, generator=g) * 6)
    src = torch.cat([edge_t, rnd])
    tensors["round.src"] = src
    tensors["round.bf16"] = src.to(torch.bfloat16)
    tensors["round.f16"] = src.to(torch.float16)
    save_file(tensors, os.path.join(OUT, "io_python.safetensors"),
              metadata={"format": "pt"})

    # Two shards plus an index, as transformers writes them.
    d = os.path.join(OUT, "io_sharded")
    os.makedirs(d, exist_ok=True)
    s1 = {"layer.0.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
          "layer.0.bias": torch.tensor([0.5, -0.5], dtype=torch.float32)}
    s2 = {"layer.1.weight": (torch.arange(4, dtype=torch.float32) / 3).to(torch.bfloat16).reshape(2, 2),
          "embed.weight": torch.full((2, 2), 1.5, dtype=torch.float16)}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_file(s1, os.path.join(d, names[0]), metadata={"format": "pt"})
    save_file(s2, os.path.join(d, names[1]), metadata={"format": "pt"})
    wm = {k: names[0] for k in s1}
    wm.update({k: names[1] for k in s2})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 52}, "weight_map": dict(sorted(wm.items()))}, f, indent=2)
        f.write("\n")


RNG_SHAPES = [(1, 4, 64, 64), (2, 4, 8, 8), (7,), (15,), (16,), (17,), (3, 5, 7)]
RNG_SEEDS = [0, 42, 2**32 + 5]
# A sequence mixing both randn paths and rand on one generator: (op, shape).
RNG_SEQUENCE = [("randn", (3,)), ("randn", (20,)), ("randn", (1,)), ("rand", (5,)), ("randn", (15,)),
                ("randn", (33,)), ("rand", (2, 9)), ("randn", (2,)), ("randn", (1, 4, 8, 8))]


def rng_key(seed, shape, draw):
    return "randn.seed%d.%s.draw%d" % (seed, "x".join(str(d) for d in shape), draw)


def make_rng():
    out = {}
    for seed in RNG_SEEDS:
        for shape in RNG_SHAPES:
            g = torch.Generator().manual_seed(seed)
            for draw in range(2):
                out[rng_key(seed, shape, draw)] = torch.randn(shape, generator=g, dtype=torch.float32)
        g = torch.Generator().manual_seed(seed)
        out["rand.seed%d.draw0" % seed] = torch.rand((3, 7), generator=g)
        out["rand.seed%d.draw1" % seed] = torch.rand((40,), generator=g)
    g = torch.Generator().manual_seed(7)
    for i, (op, shape) in enumerate(RNG_SEQUENCE):
        fn = torch.randn if op == "randn" else torch.rand
        out["sequence.seed7.%d" % i] = fn(shape, generator=g)
    cap = torch.backends.cpu.get_cpu_capability()
    assert cap in ("AVX2", "AVX512"), "rng fixtures need torch's x86 vector kernels, got " + cap
    save_file(out, os.path.join(OUT, "rng.safetensors"), metadata={"made_by": "torch %s %s" % (torch.__version__, cap)})
    # torch's scalar Box-Muller (ARM, or x86 with ATEN_CPU_CAPABILITY=default): needs a fresh process.
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    subprocess.run([sys.executable, os.path.abspath(__file__), "rng_scalar"], env=env, check=True)


def make_rng_scalar():
    cap = torch.backends.cpu.get_cpu_capability()
    assert cap == "DEFAULT", cap
    out = {}
    for seed in [0, 42]:
        for shape in [(1, 4, 64, 64), (2, 4, 8, 8), (17,), (33,)]:
            g = torch.Generator().manual_seed(seed)
            for draw in range(2):
                out[rng_key(seed, shape, draw)] = torch.randn(shape, generator=g, dtype=torch.float32)
    save_file(out, os.path.join(OUT, "rng_scalar.safetensors"), metadata={"made_by": "torch %s %s" % (torch.__version__, cap)})


def make_kernels():
    """Each case k stores inputs as k.<name> (f32 unless the weight dtype is under test) and the
    reference output k.out, computed by torch in float64 from the stored (rounded) inputs."""
    g = torch.Generator().manual_seed(2024)
    F = torch.nn.functional
    out = {}

    def rnd(*shape, scale=1.0):
        return torch.randn(shape, generator=g) * scale

    def put(prefix, **tensors):
        for k, v in tensors.items():
            out[prefix + "." + k] = v.contiguous().clone()

    def d(t):
        return t.to(torch.float64)

    # Linear, weight stored as f32 / f16 / bf16; with and without bias.
    x = rnd(2, 3, 40)
    b = rnd(24)
    for dt, name in [(torch.float32, "f32"), (torch.float16, "f16"), (torch.bfloat16, "bf16")]:
        w = rnd(24, 40, scale=0.2).to(dt)
        put("linear." + name, x=x, weight=w, bias=b, out=F.linear(d(x), d(w), d(b)).float())
    w = rnd(7, 40)
    put("linear.nobias", x=x, weight=w, out=F.linear(d(x), d(w)).float())

    # conv2d cases: (name, x shape, w shape, stride, padding (t, b, l, r), dilation, groups, bias)
    convs = [
        ("basic", (2, 6, 9, 11), (8, 6, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
        ("down", (1, 4, 10, 10), (5, 4, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True),
        ("asym", (1, 4, 10, 10), (5, 4, 3, 3), (2, 2), (0, 1, 0, 1), (1, 1), 1, True),
        ("dilated", (1, 3, 12, 12), (4, 3, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1, False),
        ("groups", (1, 6, 7, 7), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, True),
        ("depthwise", (1, 5, 8, 8), (5, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5, True),
        ("pointwise", (2, 8, 5, 5), (6, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),
        ("rect", (1, 3, 9, 10), (2, 3, 5, 3), (1, 2), (2, 2, 1, 1), (1, 1), 1, True),
        ("nopad", (1, 2, 6, 6), (3, 2, 3, 3), (3, 3), (0, 0, 0, 0), (1, 1), 1, False),
    ]
    for name, xs, ws, stride, pad, dil, groups, has_bias in convs:
        x = rnd(*xs)
        w = rnd(*ws, scale=0.3)
        bias = rnd(ws[0]) if has_bias else None
        xp = F.pad(d(x), (pad[2], pad[3], pad[0], pad[1]))
        y = F.conv2d(xp, d(w), d(bias) if bias is not None else None, stride=stride, dilation=dil, groups=groups)
        put("conv." + name, x=x, weight=w, out=y.float())
        if bias is not None:
            put("conv." + name, bias=bias)

    # Group norm: affine eps 1e-5; plain eps 1e-6; affine + SiLU.
    x = rnd(2, 8, 5, 6, scale=3) + 1.5
    w, b = rnd(8), rnd(8)
    put("groupnorm.affine", x=x, weight=w, bias=b, out=F.group_norm(d(x), 4, d(w), d(b), eps=1e-5).float())
    put("groupnorm.plain", x=x, out=F.group_norm(d(x), 2, eps=1e-6).float())
    put("groupnorm.silu", x=x, weight=w, bias=b, out=F.silu(F.group_norm(d(x), 4, d(w), d(b), eps=1e-5)).float())

    # Layer norm over the last dimension.
    x = rnd(3, 7, 32, scale=2) - 0.7
    w, b = rnd(32), rnd(32)
    put("layernorm.affine", x=x, weight=w, bias=b, out=F.layer_norm(d(x), (32,), d(w), d(b), eps=1e-5).float())
    put("layernorm.plain", x=x, out=F.layer_norm(d(x), (32,), eps=1e-6).float())

    # Softmax with large offsets (stability).
    x = rnd(4, 33, scale=5) + torch.tensor([0.0, 100.0, -100.0, 80.0]).reshape(4, 1)
    put("softmax", x=x, out=torch.softmax(d(x), dim=-1).float())

    # Activations on [-8, 8] plus random values.
    x = torch.cat([torch.linspace(-8, 8, 801), rnd(199, scale=3)])
    put("act", x=x, gelu=F.gelu(d(x)).float(), gelu_tanh=F.gelu(d(x), approximate="tanh").float(),
        quick_gelu=(d(x) * torch.sigmoid(1.702 * d(x))).float(), silu=F.silu(d(x)).float())
    x = rnd(2, 5, 16, scale=2)
    a, gate = d(x).chunk(2, dim=-1)
    put("geglu", x=x, out=(a * F.gelu(gate)).float())

    # Nearest upsampling: 2x and to an odd size.
    x = rnd(1, 3, 4, 5)
    put("upsample2x", x=x, out=F.interpolate(x, scale_factor=2.0, mode="nearest"))
    x = rnd(1, 2, 3, 4)
    put("upsample.size", x=x, out=F.interpolate(x, size=(7, 9), mode="nearest"))

    # Attention: q [B, Nq, H*D], k [B, Nk, H*D], v [B, Nk, H*Dv].
    def sdpa(q, k, v, heads, mask=None, causal=False, scale=None):
        B, Nq, HD = q.shape
        Nk, HDv = k.shape[1], v.shape[2]
        qh = d(q).reshape(B, Nq, heads, -1).transpose(1, 2)
        kh = d(k).reshape(B, Nk, heads, -1).transpose(1, 2)
        vh = d(v).reshape(B, Nk, heads, -1).transpose(1, 2)
        o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=None if mask is None else d(mask),
                                           is_causal=causal, scale=scale)
        return o.transpose(1, 2).reshape(B, Nq, HDv).float()

    q, k, v = rnd(2, 50, 32), rnd(2, 37, 32), rnd(2, 37, 24)
    put("attn.plain", q=q, k=k, v=v, out=sdpa(q, k, v, 4))
    put("attn.scale", out=sdpa(q, k, v, 4, scale=0.5))
    m4 = rnd(2, 1, 50, 37, scale=2)
    put("attn.mask4", mask=m4, out=sdpa(q, k, v, 4, mask=m4))
    m2 = torch.zeros(50, 37)
    m2[:, 30:] = float("-inf")
    put("attn.mask2", mask=m2, out=sdpa(q, k, v, 4, mask=m2))
    qs, ks, vs = rnd(1, 20, 16), rnd(1, 20, 16), rnd(1, 20, 16)
    put("attn.causal", q=qs, k=ks, v=vs, out=sdpa(qs, ks, vs, 2, causal=True))
    put("attn.causal_wide", out=sdpa(qs[:, :12], ks, vs, 2, causal=True))

    save_file(out, os.path.join(OUT, "kernels.safetensors"), metadata={"made_by": "torch " + torch.__version__})


GROUPS = {"io": make_io, "rng": make_rng, "kernels": make_kernels}
HIDDEN = {"rng_scalar": make_rng_scalar}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    wanted = sys.argv[1:] or list(GROUPS)
    for name in wanted:
        (GROUPS.get(name) or HIDDEN[name])()
        print("wrote", name)


if __name__ == "__main__":
    main()
