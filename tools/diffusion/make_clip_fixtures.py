#!/usr/bin/env python3
"""Generates the committed CLIP test fixtures of the Diffusion module (Tests/DiffusionTests/Fixtures/clip).

Deterministic (fixed seeds, no clock, no network). Ground truth is the installed transformers
(5.23: `CLIPTokenizer` is the tokenizers-backed one, `CLIPTextModel` from modeling_clip.py) and the
long-prompt algorithm of LLMGA's lpw pipelines (`llmga/diffusers/pipeline_stable_diffusion_inpaint_lpw.py` in
https://github.com/dvlab-research/LLMGA), written out below with torch.
Run from the repository root after tools/diffusion/build_clip_vocab.py has written Sources/Diffusion/Resources/clip:

    /work/main/tools/.venv/bin/python tools/diffusion/make_clip_fixtures.py

Writes Tests/DiffusionTests/Fixtures/clip/
  tokens.json            real-vocabulary (Sources/Diffusion/Resources/clip) ids of tricky strings: unpadded ids (no BOS/EOS)
                         and diffusers' padded 77-id encoding; LLMGA chunked ids of long prompts
  tok-small/             a small BPE tokenizer folder (vocab.json, merges.txt, tokenizer_config.json,
                         special_tokens_map.json): the 512 byte tokens + the first 400 real CLIP merges +
                         <|startoftext|>/<|endoftext|> (914 tokens, BOS 912, EOS 913), SD1.5-style pad
  tok-small-sd2/         the same vocabulary with pad_token "!" (as SD2's tokenizer folder has it)
  text_encoder/          a random-weight CLIPTextModel on the small vocabulary (hidden 32, 3 layers,
                         4 heads, intermediate 37, quick_gelu): config.json, model.safetensors (F32),
                         model.fp16.safetensors (the same weights stored F16, keys without the
                         "text_model." prefix, as transformers 5 saves them)
  text_encoder_gelu/     a second config (2 layers, 2 heads, gelu, eps 1e-6) stored BF16
  expected.safetensors   reference outputs (float32): per prompt, last_hidden_state and the clip-skip=1
                         state; LLMGA long-prompt cond/uncond embeddings (both middle-token modes,
                         weighting on/off); the f16/bf16 model references run in float32 on upcast weights
  expected.json          which prompts / settings each expected tensor belongs to

Why a small vocabulary: the real 49408-token embedding at hidden 32 would be 6.3 MB (f32) / 3.2 MB (f16),
over the fixture budget. A vocabulary made of the first 400 real merges is a valid CLIP BPE (every merge's
parts come from earlier merges), so the tokenizer → text-encoder path is tested end to end against
transformers, with non-standard BOS/EOS ids (912/913) that catch hard-coded 49406/49407. The real
vocabulary is tested for ids only (tokens.json).
"""

import json
import os
import re

import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ASSETS = os.path.join(ROOT, "Sources", "Diffusion", "Resources", "clip")
OUT = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "clip")

TRICKY = [
    "",
    "a photo of a cat",
    "A  Photo of a CAT, 2023!",
    "a cat's toy",
    "résumé café",
    "photo of a cat riding on a bicycle",
    "they're we've I'm you'll he'd it's DON'T 'S",
    "'s 's's ''s x's !'s",
    "!!!??? ... ,,, --- ;;; *** ~~ @#$%^&",
    "hello,world;foo:bar/baz_qux-quux",
    "1234567890 3.14159 1e10 2nd 10,000",
    "naïve façade coöperate Ærøskøbing",
    "Straße ΟΔΟΣ Σίσυφος İstanbul ǅemal",
    "emoji 🐱🐶👍🏽 ❤️ 🇯🇵 family 👨‍👩‍👧",
    "日本語のテキスト 中文字符 한국어 ภาษาไทย",
    "multiple   spaces\n\nnewlines\ttabs\r\n end  ",
    "  leading and trailing  ",
    "\u00a0nbsp\u3000ideographic\u2003em\u0085nel",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "a" + "x" * 300 + "b",
    "(masterpiece:1.3), (best quality), [blurry], \\(escaped\\) ((nested)) (a:b) :1.2)",
    "<|startoftext|>a<|endoftext|>b A<|ENDOFTEXT|>",
    "e\u0301 combining Å vs A\u030a, ﬁ ligature ½ ² Ⅻ ①",
    "١٢٣ arabic digits ٤.٥",
    "control\u000bvt zw\u200bsp soft\u00adhyphen nul\u0000byte bom\ufeffx",
    "html &amp; &lt;tags&gt; <b>bold</b>",
    "ſ long s, ÀÉÎÕÜ, ﬀ",
    "tab\tseparated\tvalues",
]

LONG_WORDS = ("a breathtaking matte painting of an ancient castle on a cliff above a stormy sea, dramatic "
              "lighting, volumetric clouds, seagulls, crashing waves, highly detailed, intricate stonework, "
              "moss, ivy, lanterns glowing in the windows, a winding path leading up to the gate, a lone "
              "traveler with a red cloak, (cinematic composition:1.2), [muted colors], golden hour, rim light, "
              "trending on artstation, octane render, 8k, sharp focus, depth of field, bokeh, film grain, "
              "by greg rutkowski and alphonse mucha and thomas kinkade, fantasy, epic scale, ")


def long_prompt(n_repeats):
    return (LONG_WORDS * n_repeats).strip()


# ----------------------------------------------------------------------------------------------------
# LLMGA / lpw long-prompt encoding, written from LLMGA's pipeline_stable_diffusion_inpaint_lpw.py (get_prompts_with_weights,
# pad_tokens_and_weights, get_unweighted_text_embeddings, get_weighted_text_embeddings).

RE_ATTENTION = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:([+-]?[.\d]+)\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.X,
)


def parse_prompt_attention(text):
    res, round_b, square_b = [], [], []

    def multiply_range(start, mult):
        for p in range(start, len(res)):
            res[p][1] *= mult

    for m in RE_ATTENTION.finditer(text):
        t, w = m.group(0), m.group(1)
        if t.startswith("\\"):
            res.append([t[1:], 1.0])
        elif t == "(":
            round_b.append(len(res))
        elif t == "[":
            square_b.append(len(res))
        elif w is not None and len(round_b) > 0:
            multiply_range(round_b.pop(), float(w))
        elif t == ")" and len(round_b) > 0:
            multiply_range(round_b.pop(), 1.1)
        elif t == "]" and len(square_b) > 0:
            multiply_range(square_b.pop(), 1 / 1.1)
        else:
            res.append([t, 1.0])
    for p in round_b:
        multiply_range(p, 1.1)
    for p in square_b:
        multiply_range(p, 1 / 1.1)
    if len(res) == 0:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


def tokens_with_weights(tok, text, max_length):
    tokens, weights = [], []
    for word, weight in parse_prompt_attention(text):
        t = tok(word).input_ids[1:-1]
        tokens += t
        weights += [weight] * len(t)
        if len(tokens) > max_length:
            break
    return tokens[:max_length], weights[:max_length]


def lpw_ids_and_weights(tok, prompt, negative, max_multiples, no_boseos_middle, parse=True):
    chunk = tok.model_max_length  # 77
    max_length = (chunk - 2) * max_multiples + 2
    if parse:
        pt, pw = tokens_with_weights(tok, prompt, max_length - 2)
        nt, nw = tokens_with_weights(tok, negative, max_length - 2)
    else:
        pt = tok(prompt, max_length=max_length, truncation=True).input_ids[1:-1]
        nt = tok(negative, max_length=max_length, truncation=True).input_ids[1:-1]
        pw, nw = [1.0] * len(pt), [1.0] * len(nt)
    longest = max(len(pt), len(nt))
    k = max(1, min(max_multiples, (longest - 1) // (chunk - 2) + 1))
    max_length = (chunk - 2) * k + 2
    bos, eos, pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id

    def pad_one(t, w):
        ids = [bos] + t + [pad] * (max_length - 2 - len(t)) + [eos]
        if no_boseos_middle:
            ww = [1.0] + w + [1.0] * (max_length - 1 - len(w))
        else:
            L = k * chunk
            if len(w) == 0:
                ww = [1.0] * L
            else:
                ww = []
                for j in range(k):
                    ww.append(1.0)
                    ww += w[j * (chunk - 2): min(len(w), (j + 1) * (chunk - 2))]
                    ww.append(1.0)
                ww += [1.0] * (L - len(ww))
        return ids, ww

    return pad_one(pt, pw), pad_one(nt, nw), k


def lpw_embed(model, ids, k, chunk, no_boseos_middle, clip_skip=0):
    ids = torch.tensor([ids])

    def run(x):
        out = model(x, output_hidden_states=True)
        if clip_skip == 0:
            return out.last_hidden_state
        return model.final_layer_norm(out.hidden_states[-(clip_skip + 1)])

    if k == 1:
        return run(ids)
    parts = []
    for i in range(k):
        c = ids[:, i * (chunk - 2): (i + 1) * (chunk - 2) + 2].clone()
        c[:, 0] = ids[0, 0]
        c[:, -1] = ids[0, -1]
        e = run(c)
        if no_boseos_middle:
            e = e[:, :-1] if i == 0 else (e[:, 1:] if i == k - 1 else e[:, 1:-1])
        parts.append(e)
    return torch.cat(parts, dim=1)


def lpw_encode(tok, model, prompt, negative, max_multiples, no_boseos_middle, weighting, clip_skip=0):
    (pids, pw), (nids, nw), k = lpw_ids_and_weights(tok, prompt, negative, max_multiples, no_boseos_middle,
                                                    parse=weighting)
    out = []
    for ids, w in ((pids, pw), (nids, nw)):
        e = lpw_embed(model, ids, k, tok.model_max_length, no_boseos_middle, clip_skip)
        if weighting:
            w = torch.tensor([w], dtype=e.dtype)
            prev = e.float().mean(axis=[-2, -1])
            e = e * w.unsqueeze(-1)
            cur = e.float().mean(axis=[-2, -1])
            e = e * (prev / cur).unsqueeze(-1).unsqueeze(-1)
        out.append(e)
    return out[0], out[1], k, pids, nids


# ----------------------------------------------------------------------------------------------------


def write_small_tokenizer(folder, pad_token):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(ASSETS, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = lines[1:401]
    with open(os.path.join(ASSETS, "vocab.json"), encoding="utf-8") as f:
        full = json.load(f)
    inv = {v: k for k, v in full.items()}
    vocab = [inv[i] for i in range(512)] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab) == 914
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    cfg = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
           "pad_token": pad_token, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer",
           "do_lower_case": True, "errors": "replace"}
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    special = {"bos_token": {"content": "<|startoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                             "single_word": False},
               "eos_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                             "single_word": False},
               "unk_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True, "rstrip": False,
                             "single_word": False},
               "pad_token": pad_token}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    return len(vocab)


def make_model(folder, vocab_size, seed, layers, heads, act, eps, dtypes):
    os.makedirs(folder, exist_ok=True)
    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=layers,
                         num_attention_heads=heads, max_position_embeddings=77, hidden_act=act, layer_norm_eps=eps,
                         projection_dim=32, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
                         pad_token_id=vocab_size - 1)
    torch.manual_seed(seed)
    model = CLIPTextModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm1.weight") or name.endswith("layer_norm2.weight") or "final_layer_norm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif "norm" in name and name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "embedding" in name:
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / (p.shape[-1] ** 0.5))
    cfg.save_pretrained(folder)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}
    suffix = {torch.float32: "", torch.float16: ".fp16", torch.bfloat16: ".bf16"}
    stored = {}
    for dt in dtypes:
        path = os.path.join(folder, f"model{suffix[dt]}.safetensors")
        # SD model folders (transformers 4 era) store "text_model."-prefixed keys; transformers 5 saves
        # unprefixed ones. The F16 file uses the latter so both spellings are tested.
        prefix = "" if dt == torch.float16 else "text_model."
        save_file({prefix + k: v.to(dt) for k, v in sd.items()}, path, metadata={"format": "pt"})
        stored[dt] = path
    return model, cfg, sd


def model_with_dtype(cfg, sd, dt):
    """The model with its weights rounded to dt and back (what a reader of the dt file computes in f32)."""
    m = CLIPTextModel(cfg).eval()
    m.load_state_dict({k: v.to(dt).to(torch.float32) for k, v in sd.items()}, strict=False)
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    real = CLIPTokenizer.from_pretrained(ASSETS)
    real.model_max_length = 77

    # 1. Real-vocabulary ids.
    tokens = {"tricky": [], "long": []}
    for s in TRICKY:
        tokens["tricky"].append({
            "text": s,
            "ids": real(s, add_special_tokens=False).input_ids,
            "padded77": real(s, padding="max_length", max_length=77, truncation=True).input_ids,
        })
    long_cases = [(long_prompt(1), "", 3), (long_prompt(2), "blurry, lowres", 3), (long_prompt(4), "", 3),
                  (long_prompt(4), long_prompt(1), 4), ("short (prompt:1.4)", long_prompt(2), 3),
                  ("", "", 3)]
    for p, n, m in long_cases:
        for middle in (False, True):
            (pids, pw), (nids, nw), k = lpw_ids_and_weights(real, p, n, m, middle)
            tokens["long"].append({"prompt": p, "negative": n, "max_chunks": m, "no_boseos_middle": middle,
                                   "chunks": k, "prompt_ids": pids, "negative_ids": nids,
                                   "prompt_weights": pw, "negative_weights": nw})
    with open(os.path.join(OUT, "tokens.json"), "w", encoding="utf-8") as f:
        json.dump(tokens, f, ensure_ascii=False, indent=0)

    # 2. Small tokenizer + tiny models.
    v = write_small_tokenizer(os.path.join(OUT, "tok-small"), "<|endoftext|>")
    write_small_tokenizer(os.path.join(OUT, "tok-small-sd2"), "!")
    small = CLIPTokenizer.from_pretrained(os.path.join(OUT, "tok-small"))
    small_sd2 = CLIPTokenizer.from_pretrained(os.path.join(OUT, "tok-small-sd2"))
    assert small.bos_token_id == 912 and small.eos_token_id == 913 and small.pad_token_id == 913
    assert small_sd2.pad_token_id == 0  # "!" (the byte token), not "!</w>" (256)

    model, cfg, sd = make_model(os.path.join(OUT, "text_encoder"), v, 1234, 3, 4, "quick_gelu", 1e-5,
                                [torch.float32, torch.float16])
    gmodel, gcfg, gsd = make_model(os.path.join(OUT, "text_encoder_gelu"), v, 99, 2, 2, "gelu", 1e-6,
                                   [torch.bfloat16])
    m16 = model_with_dtype(cfg, sd, torch.float16)
    gbf = model_with_dtype(gcfg, gsd, torch.bfloat16)

    expected = {}
    meta = {"small_tokens": [], "prompts": [], "long": []}
    for s in TRICKY:
        meta["small_tokens"].append({"text": s, "ids": small(s, add_special_tokens=False).input_ids,
                                     "padded77": small(s, padding="max_length", max_length=77, truncation=True).input_ids,
                                     "padded77_sd2": small_sd2(s, padding="max_length", max_length=77,
                                                               truncation=True).input_ids})
    prompts = ["a photo of a cat", "", "the quick brown fox jumps over the lazy dog, 1234!",
               "résumé café 日本 🐱 (word:1.3)"]
    with torch.no_grad():
        for i, p in enumerate(prompts):
            ids = small(p, padding="max_length", max_length=77, truncation=True).input_ids
            x = torch.tensor([ids])
            for tag, m in (("f32", model), ("f16", m16), ("bf16gelu", gbf)):
                out = m(x, output_hidden_states=True)
                expected[f"p{i}.{tag}.last"] = out.last_hidden_state[0].contiguous()
                expected[f"p{i}.{tag}.skip1"] = m.final_layer_norm(out.hidden_states[-2])[0].contiguous()
            # a short unpadded sequence (n < 77): position ids 0..n-1, causal only
            short = small(p).input_ids
            expected[f"p{i}.f32.unpadded"] = model(torch.tensor([short])).last_hidden_state[0].contiguous()
            meta["prompts"].append({"text": p, "ids": ids, "unpadded_ids": short})

        long_enc = [(long_prompt(1), "", 3, False, True, 0),
                    (long_prompt(1), "", 3, True, True, 0),
                    (long_prompt(2), "(ugly:1.2), [bad] hands", 3, False, True, 0),
                    (long_prompt(2), "(ugly:1.2), [bad] hands", 3, True, True, 0),
                    (long_prompt(4), "", 4, False, True, 0),
                    (long_prompt(4), "", 3, False, False, 0),
                    ("a (red:1.5) [[car]] on a \\(road\\)", "blurry", 3, False, True, 0),
                    (long_prompt(2), "", 3, False, True, 1)]
        for j, (p, n, m, middle, weighting, skip) in enumerate(long_enc):
            cond, uncond, k, pids, nids = lpw_encode(small, model, p, n, m, middle, weighting, skip)
            expected[f"long{j}.cond"] = cond[0].contiguous()
            expected[f"long{j}.uncond"] = uncond[0].contiguous()
            meta["long"].append({"prompt": p, "negative": n, "max_chunks": m, "no_boseos_middle": middle,
                                 "weighting": weighting, "clip_skip": skip, "chunks": k,
                                 "prompt_ids": pids, "negative_ids": nids, "shape": list(cond[0].shape)})

    save_file({k: v.float().contiguous() for k, v in expected.items()}, os.path.join(OUT, "expected.safetensors"))
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=0)
    total = 0
    for dirpath, _, files in os.walk(OUT):
        for fn in files:
            total += os.path.getsize(os.path.join(dirpath, fn))
    print(f"wrote {OUT}: {total} bytes, {len(expected)} expected tensors")


if __name__ == "__main__":
    main()
