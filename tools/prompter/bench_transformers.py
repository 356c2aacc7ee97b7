"""Decoder benchmark models and transformers reference timings for tools/prompter/bench.sh.

  make  DIR   writes random-weight bf16 models (save_pretrained, safetensors) unless present:
              DIR/qwen2-0.5b  Qwen2-0.5B shapes: hidden 896, 24 layers, 14 heads, 2 kv heads,
                              intermediate 4864, vocab 151936, tied embeddings
              DIR/llama7b-4l  a Llama-2-7B layer stack cut to 4 layers: hidden 4096, 32 heads,
                              intermediate 11008, vocab 32000
  time  DIR   times transformers on torch CPU (torch.set_num_threads(2)) for each model, computing in
              float32 and in bfloat16: prefill of a PROMPT-token prompt (one forward with cache) and
              DECODE single-token greedy steps with the KV cache. Prints one JSON object per line
              with median seconds over RUNS runs (after one warm-up run).
Weights are random (timing does not depend on their values); nothing is downloaded.
"""
import json
import os
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

MODELS = {
    "qwen2-0.5b": (Qwen2ForCausalLM, Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        max_position_embeddings=32768)),
    "llama7b-4l": (LlamaForCausalLM, LlamaConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=4, num_attention_heads=32,
        num_key_value_heads=32, rms_norm_eps=1e-5, max_position_embeddings=4096)),
}


def make(root):
    for name, (cls, config) in MODELS.items():
        folder = os.path.join(root, name)
        if os.path.exists(os.path.join(folder, "config.json")):
            continue
        torch.manual_seed(0)
        model = cls(config).to(torch.bfloat16)
        model.save_pretrained(folder, safe_serialization=True)
        print(f"wrote {folder}", file=sys.stderr)


def time_model(folder, dtype, prompt_len, decode, runs):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (1, prompt_len), generator=g)
    prefill, step = [], []
    with torch.inference_mode():
        for r in range(runs + 1):
            t0 = time.perf_counter()
            out = model(ids, use_cache=True)
            t1 = time.perf_counter()
            past = out.past_key_values
            tok = out.logits[:, -1:].argmax(-1)
            t2 = time.perf_counter()
            for _ in range(decode):
                out = model(tok, past_key_values=past, use_cache=True)
                past = out.past_key_values
                tok = out.logits[:, -1:].argmax(-1)
            t3 = time.perf_counter()
            if r > 0:
                prefill.append(t1 - t0)
                step.append((t3 - t2) / decode)
    return statistics.median(prefill), statistics.median(step)


def main():
    cmd, root = sys.argv[1], sys.argv[2]
    if cmd == "make":
        make(root)
        return
    torch.set_num_threads(2)
    prompt_len = int(os.environ.get("PROMPT", "128"))
    decode = int(os.environ.get("DECODE", "64"))
    runs = int(os.environ.get("RUNS", "3"))
    for name in MODELS:
        for dtype in (torch.float32, torch.bfloat16):
            p, s = time_model(os.path.join(root, name), dtype, prompt_len, decode, runs)
            print(json.dumps({"impl": f"transformers-{str(dtype).replace('torch.', '')}", "model": name,
                              "prefill_s": p, "prefill_tok_s": prompt_len / p, "decode_s_per_token": s,
                              "decode_tok_s": 1 / s}), flush=True)


if __name__ == "__main__":
    main()
