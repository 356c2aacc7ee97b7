"""Makes the LLM decoder parity fixtures under Tests/PrompterTests/Fixtures/llm/.

Tiny random decoders (seeded) saved with save_pretrained(safe_serialization=True), and the
reference outputs of transformers computed in float32 from the saved (possibly bf16) weights:
"stored weights, f32 math", which is what the Swift decoder does.

Per model folder: config.json, model*.safetensors (+ index when sharded), and
  expected.json        prompt ids, greedy generation (32 tokens), two-turn generation
  expected.safetensors logits for every prompt position, f32 [n, vocab]

Run: /work/main/tools/.venv/bin/python tools/prompter/make_llm_fixtures.py
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "PrompterTests", "Fixtures", "llm")
VOCAB = 128


def scale_weights(model, seed):
    # Larger-than-default random weights so that greedy argmax margins are wide (no near-ties).
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5))


def greedy(model, ids, n):
    # An explicit all-ones mask: otherwise generate() masks every prompt token equal to pad_token_id.
    x = torch.tensor([ids])
    out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False, eos_token_id=None,
                         pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    new = out.sequences[0, len(ids):].tolist()
    # Smallest gap between the best and second-best logit over the generated steps.
    margin = min(float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in out.scores)
    return new, margin


def make(name, model_cls, config, dtype, seed, shard=None):
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    scale_weights(model, seed + 1)
    folder = os.path.join(ROOT, name)
    shutil.rmtree(folder, ignore_errors=True)
    model.to(dtype).save_pretrained(folder, safe_serialization=True,
                                    **({"max_shard_size": shard} if shard else {}))
    for extra in ("generation_config.json",):
        p = os.path.join(folder, extra)
        if os.path.exists(p):
            os.remove(p)
    # The reference: the saved weights, computed in float32.
    ref = model_cls.from_pretrained(folder, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(seed + 2)
    prompt = torch.randint(0, VOCAB, (10,), generator=g).tolist()
    with torch.no_grad():
        logits = ref(torch.tensor([prompt])).logits[0].float().contiguous()
    gen_prompt = torch.randint(0, VOCAB, (6,), generator=g).tolist()
    gen, margin1 = greedy(ref, gen_prompt, 32)
    turn1 = torch.randint(0, VOCAB, (6,), generator=g).tolist()
    out1, m2 = greedy(ref, turn1, 8)
    turn2 = torch.randint(0, VOCAB, (5,), generator=g).tolist()
    # The second turn sees the whole history: first prompt, first reply, second prompt.
    out2, m3 = greedy(ref, turn1 + out1 + turn2, 8)
    save_file({"logits": logits}, os.path.join(folder, "expected.safetensors"))
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump({"prompt": prompt, "generation_prompt": gen_prompt, "greedy": gen,
                   "turn1_prompt": turn1, "turn1_reply": out1, "turn2_prompt": turn2, "turn2_reply": out2,
                   "min_greedy_margin": min(margin1, m2, m3),
                   "stored_dtype": str(dtype).replace("torch.", "")}, f, indent=1)
    files = sorted(os.listdir(folder))
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in files)
    print(f"{name}: {files} {size} bytes, min greedy margin {min(margin1, m2, m3):.4f}, max|logit| {logits.abs().max():.3f}")


def main():
    os.makedirs(ROOT, exist_ok=True)
    make("qwen2-bf16-tied-sharded", Qwen2ForCausalLM,
         Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                     tie_word_embeddings=True, max_position_embeddings=512),
         torch.bfloat16, 7, shard="30KB")
    make("llama-gqa-f32", LlamaForCausalLM,
         LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=1, head_dim=16, rope_theta=50_000.0,
                     rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=512),
         torch.float32, 2)
    make("llama3-rope-bias-bf16", LlamaForCausalLM,
         LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, rope_theta=500_000.0, rms_norm_eps=1e-5,
                     attention_bias=True, mlp_bias=True, tie_word_embeddings=False, max_position_embeddings=131072,
                     rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
         torch.bfloat16, 3)
    # Sliding-window attention: windows far shorter than the 10-token prompt and the 32-token generation.
    make("mistral-sliding-f32", MistralForCausalLM,
         MistralConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=4, rope_theta=10000.0,
                       rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=512),
         torch.float32, 11)
    # Qwen2 applies its window only with use_sliding_window, and only from layer max_window_layers on.
    make("qwen2-sliding-f32", Qwen2ForCausalLM,
         Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                     num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-6,
                     use_sliding_window=True, sliding_window=5, max_window_layers=1, tie_word_embeddings=False,
                     max_position_embeddings=512),
         torch.float32, 12)


if __name__ == "__main__":
    main()
