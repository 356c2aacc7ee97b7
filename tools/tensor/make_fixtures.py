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


GROUPS = {"io": make_io, "rng": make_rng}
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
