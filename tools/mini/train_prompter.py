#!/usr/bin/env python3
"""Trains the miniature LLMGA prompter on the shapes world (world.py) and writes Assets/models/mini-llmga/ in
the original LLaVA / LLMGA layout (what `llmga.load` reads with only `path`).

Model (all trained from scratch, jointly):
  - vision tower: transformers CLIPVisionModel, image 64, patch 8 (64 patches), hidden 96, 3 layers (the
    third is never used: LLaVA takes hidden_states[-2]), 4 heads, MLP 256, quick_gelu; saved as its own
    folder `vision_tower/` (config.json, model.safetensors, preprocessor_config.json) named by
    "mm_vision_tower": "vision_tower" (resolved relative to the model folder by VisionEncoder.swift).
  - projector: mlp2x_gelu (Linear 96→128, GELU, Linear 128→128) = `model.mm_projector.{0,2}`.
  - LLM: Qwen2ForCausalLM, hidden 128, 4 layers, 4 heads, 2 KV heads, MLP 384, untied lm_head, rope 10000,
    512 positions.
  - tokenizer: byte-level BPE (tokenizers library) trained on the world's text, with the Qwen2 normalizer
    (NFC), pre-tokenizer (Qwen2 split regex + ByteLevel), ByteLevel post-processor and decoder copied from the
    Qwen2 fixture tokenizer; specials <|endoftext|> (pad), <|im_start|>, <|im_end|> (eos) appended last, as
    Qwen2 has them. No <image> token: LLaVA's tokenizer_image_token splits the prompt on "<image>".
  - config: architectures LlavaQwen2ForCausalLM, model_type llava_Qwen2, mm_vision_select_layer -2,
    mm_vision_select_feature patch, image_aspect_ratio resizesquare (LLMGA's), weights F16.

Data (world.py, stream 0; every step's batch drawn from numpy default_rng([1234, step]), so a resumed run
sees the same data): LLMGA's tasks in the qwen_2 template with the exact user strings of
Sources/Prompter/Chat/Tasks.swift (20% of samples use one of the alternative phrasings):
  t2i 24% "<short> Generate this image based on given keywords." → "<gen_image> <detailed> </gen_image>"
  similar 18%, describe 8% (no tags), inpaint 14% (image * (1 - inpaint_mask), caption of the full scene),
  outpaint 14% (black border band), edit 16% (two turns: "Generate a similar image" → source, instruction →
  target), expand 6% ("<short> Please provide a detailed description." → detailed, no tags).
Each reply is followed by <|im_end|>; the loss is on reply tokens only. An auxiliary classifier on the
selected vision features (background colour; per position: shape kind, colour, size), used only for
clean images and not shipped, makes the tower learn faster.

Training: AdamW (lr 2e-3, wd 0.01, betas 0.9/0.98), warm-up 100 steps, cosine to 10%, batch 32, gradient
clip 1, torch.set_num_threads(1), deterministic algorithms. Checkpoints every 100 steps under
tools/mini/.work/prompter/ (resumes).

The shipped model (measured on the shared 2-core machine: 2217 s + 509 s = 45 min):

    nohup nice -n 15 /work/main/tools/.venv/bin/python tools/mini/train_prompter.py --stage train --steps 2400 \
        > /tmp/prompter-train.log 2>&1 &
    nohup nice -n 15 /work/main/tools/.venv/bin/python tools/mini/train_prompter.py --steps 3100 \
        > /tmp/prompter-train2.log 2>&1 &      # resumes at 2400 on the 3100-step cosine, then saves
    tools/.venv/bin/python tools/mini/train_prompter.py --stage save    # rewrite the folder from the checkpoint
    tools/.venv/bin/python tools/mini/check_prompter.py                  # held-out accuracy (stream 1)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world as W  # noqa: E402
from prompter_common import (ASSET, DESCRIBE, EDIT_FIRST, EXPAND, IMAGE_SIZE, IMAGE_TOKEN_INDEX, INPAINT, MEAN,  # noqa: E402
                             OUTPAINT, ROOT, SIMILAR, STD, SYSTEM, T2I_SUFFIXES, MiniLLaVA, Tok, clip_config,
                             expand_image, make_sample, pixel_array, qwen2_config, render_prompt, sample_ids)

WORK = os.path.join(ROOT, "tools", "mini", ".work", "prompter")
QWEN2_TOK = os.path.join(ROOT, "Tests", "PrompterTests", "Fixtures", "tokenizers", "qwen2")
MIX = [("t2i", 0.24), ("similar", 0.18), ("describe", 0.08), ("inpaint", 0.14), ("outpaint", 0.14), ("edit", 0.16),
       ("expand", 0.06)]


# ---------------------------------------------------------------------------------------------- tokenizer

def tokenizer_corpus():
    texts = [SYSTEM, EDIT_FIRST, "<image>"] + T2I_SUFFIXES + EXPAND + SIMILAR + DESCRIBE + INPAINT + OUTPAINT
    texts.append("<gen_image> </gen_image>")
    for i in range(4000):
        sc = W.scene_at(99, i)
        _, instr, tgt = W.edit_triple(sc, np.random.default_rng([99, i, 1]))
        if i < 400:
            for task in ["t2i", "similar", "describe", "inpaint", "outpaint", "edit", "expand"]:
                smp = make_sample(task, 99, i, alt_prob=0.5)
                msgs = []
                for u, img, r in smp["turns"]:
                    msgs += [("user", u, img), ("assistant", r, False)]
                texts += render_prompt(msgs, False).split("<image>")
        texts += [W.short_caption(sc), W.medium_caption(sc), "<gen_image> " + W.detailed_caption(sc) + " </gen_image>",
                  W.detailed_caption(tgt), instr]
    return texts


def make_tokenizer(path):
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    q = Tokenizer.from_file(os.path.join(QWEN2_TOK, "tokenizer.json"))
    t = Tokenizer(models.BPE())
    t.normalizer, t.pre_tokenizer, t.post_processor, t.decoder = q.normalizer, q.pre_tokenizer, q.post_processor, q.decoder
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=[], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    t.train_from_iterator(tokenizer_corpus(), trainer)
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]])
    t.save(path)
    return t


# ---------------------------------------------------------------------------------------------- data

def draw_batch(tok, step, batch):
    rng = np.random.default_rng([1234, step])
    names = [m[0] for m in MIX]
    probs = np.array([m[1] for m in MIX])
    rows, masks, pvs, aux = [], [], [], []
    for b in range(batch):
        task = names[int(rng.choice(len(names), p=probs))]
        s = make_sample(task, 0, int(rng.integers(1 << 40)), alt_prob=0.2, rng=rng)
        ids, mask = sample_ids(tok, s)
        # expand the -200 into the 64 spliced positions (mask 0 there)
        ex, exm = [], []
        for t, m in zip(ids, mask):
            if t == IMAGE_TOKEN_INDEX:
                ex += [t] * (IMAGE_SIZE // 8) ** 2
                exm += [0] * (IMAGE_SIZE // 8) ** 2
            else:
                ex.append(t)
                exm.append(m)
        rows.append(ex)
        masks.append(exm)
        if s["image"] is not None:
            pvs.append(pixel_array(s["image"]))
            aux.append(aux_targets(s["scene"]) if task in ("similar", "describe", "edit") else None)
    T = max(len(r) for r in rows)
    ids = torch.full((batch, T), tok.pad, dtype=torch.long)
    lab = torch.full((batch, T), -100, dtype=torch.long)
    for i, (r, m) in enumerate(zip(rows, masks)):
        ids[i, :len(r)] = torch.tensor(r)
        rt = torch.tensor(r)
        mt = torch.tensor(m, dtype=torch.bool)
        # label at position p is the token at p + 1 when that token is a reply token
        l = torch.full((len(r),), -100, dtype=torch.long)
        l[:-1] = torch.where(mt[1:], rt[1:], torch.tensor(-100))
        lab[i, :len(r)] = l
    pv = torch.from_numpy(np.stack(pvs)) if pvs else None
    return ids, lab, pv, aux


POS = list(W.POSITIONS)


def aux_targets(sc):
    kind = [0] * 5
    col = [-100] * 5
    size = [-100] * 5
    for s in sc.shapes:
        p = POS.index(s.position)
        kind[p] = 1 + W.SHAPES.index(s.kind)
        col[p] = W.COLOURS.index(s.colour)
        size[p] = 0 if s.size == "small" else 1
    return [W.COLOURS.index(sc.background)] + kind + col + size


class AuxHead(torch.nn.Module):
    def __init__(self, n_patch, d):
        super().__init__()
        self.lin = torch.nn.Linear(n_patch * d, 8 + 5 * 5 + 5 * 8 + 5 * 2)

    def forward(self, feats, targets):
        o = self.lin(feats.flatten(1))
        ce = torch.nn.functional.cross_entropy
        t = targets
        loss = ce(o[:, :8], t[:, 0])
        loss = loss + ce(o[:, 8:33].reshape(-1, 5, 5).reshape(-1, 5), t[:, 1:6].reshape(-1))
        loss = loss + ce(o[:, 33:73].reshape(-1, 5, 8).reshape(-1, 8), t[:, 6:11].reshape(-1), ignore_index=-100)
        loss = loss + ce(o[:, 73:83].reshape(-1, 5, 2).reshape(-1, 2), t[:, 11:16].reshape(-1), ignore_index=-100)
        return loss


# ---------------------------------------------------------------------------------------------- training

def build(tok):
    vocab = tok.t.get_vocab_size(with_added_tokens=True)
    torch.manual_seed(0)
    model = MiniLLaVA(qwen2_config(vocab, tok.im_end, tok.pad), clip_config())
    head = AuxHead((IMAGE_SIZE // 8) ** 2, model.vision.config.hidden_size)
    return model, head


def lr_at(step, total, base, warm=100):
    if step < warm:
        return base * (step + 1) / warm
    p = (step - warm) / max(1, total - warm)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def train(a):
    os.makedirs(WORK, exist_ok=True)
    tok_path = os.path.join(WORK, "tokenizer.json")
    if not os.path.exists(tok_path):
        make_tokenizer(tok_path)
    tok = Tok(tok_path)
    model, head = build(tok)
    params = list(model.parameters()) + list(head.parameters())
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98))
    ck = os.path.join(WORK, "ckpt.pt")
    step = 0
    if os.path.exists(ck):
        st = torch.load(ck, weights_only=False)
        model.load_state_dict(st["model"])
        head.load_state_dict(st["head"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        print(f"resumed at step {step}", flush=True)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"vocab {tok.t.get_vocab_size(True)}, model params {nparam}", flush=True)
    model.train()
    t0 = time.time()
    ema = None
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr)
        ids, lab, pv, aux = draw_batch(tok, step, a.batch)
        emb, feats = model.embed(ids, pv)
        logits = model.llm(inputs_embeds=emb).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), lab.reshape(-1),
                                                 ignore_index=-100)
        idx = [i for i, t in enumerate(aux) if t is not None]
        aux_loss = torch.zeros(())
        if idx and feats is not None:
            aux_loss = head(feats[idx], torch.tensor([aux[i] for i in idx]))
        total = loss + 0.3 * aux_loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f} ema {ema:.4f} aux {aux_loss.item():.3f} "
                  f"lr {opt.param_groups[0]['lr']:.2e} T {ids.shape[1]} {time.time() - t0:.0f}s", flush=True)
        if step % 100 == 0 or step == a.steps:
            torch.save({"model": model.state_dict(), "head": head.state_dict(), "opt": opt.state_dict(), "step": step},
                       ck + ".tmp")
            os.replace(ck + ".tmp", ck)
        if a.max_seconds and time.time() - t0 > a.max_seconds:
            torch.save({"model": model.state_dict(), "head": head.state_dict(), "opt": opt.state_dict(), "step": step},
                       ck + ".tmp")
            os.replace(ck + ".tmp", ck)
            print("time budget reached", flush=True)
            break
    print(f"trained to step {step} in {time.time() - t0:.0f}s this run", flush=True)


# ---------------------------------------------------------------------------------------------- export

def save(a):
    from safetensors.torch import save_file
    tok_path = os.path.join(WORK, "tokenizer.json")
    tok = Tok(tok_path)
    model, _ = build(tok)
    st = torch.load(os.path.join(WORK, "ckpt.pt"), weights_only=False)
    model.load_state_dict(st["model"])
    out = a.out
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    vt = os.path.join(out, "vision_tower")
    # Vision tower folder: CLIPVisionModel.save_pretrained in F16 + CLIP image processor (64, bicubic).
    model.vision.to(torch.float16).save_pretrained(vt, safe_serialization=True)
    model.vision.float()
    from transformers import CLIPImageProcessorPil
    proc = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                 image_mean=MEAN, image_std=STD, resample=3)
    proc.save_pretrained(vt)
    proc.save_pretrained(out)
    # LLM + projector in the LLaVA layout.
    sd = {}
    for k, v in model.llm.state_dict().items():
        if "rotary_emb" in k:
            continue
        sd[k] = v.detach().half().contiguous()
    sd["model.mm_projector.0.weight"] = model.mm_projector[0].weight.detach().half().contiguous()
    sd["model.mm_projector.0.bias"] = model.mm_projector[0].bias.detach().half().contiguous()
    sd["model.mm_projector.2.weight"] = model.mm_projector[2].weight.detach().half().contiguous()
    sd["model.mm_projector.2.bias"] = model.mm_projector[2].bias.detach().half().contiguous()
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    qc, vc = model.llm.config, model.vision.config
    cfg = {
        "_name_or_path": "mini-llmga",
        "architectures": ["LlavaQwen2ForCausalLM"],
        "model_type": "llava_Qwen2",
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": tok.im_end,
        "pad_token_id": tok.pad,
        "hidden_act": "silu",
        "hidden_size": qc.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": qc.intermediate_size,
        "max_position_embeddings": qc.max_position_embeddings,
        "max_window_layers": qc.num_hidden_layers,
        "num_attention_heads": qc.num_attention_heads,
        "num_hidden_layers": qc.num_hidden_layers,
        "num_key_value_heads": qc.num_key_value_heads,
        "rms_norm_eps": qc.rms_norm_eps,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": qc.vocab_size,
        "freeze_mm_mlp_adapter": False,
        "image_aspect_ratio": "resizesquare",
        "mm_hidden_size": vc.hidden_size,
        "mm_patch_merge_type": "flat",
        "mm_projector_lr": None,
        "mm_projector_type": "mlp2x_gelu",
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": "vision_tower",
        "tokenizer_model_max_length": qc.max_position_embeddings,
        "tokenizer_padding_side": "right",
        "tune_mm_mlp_adapter": False,
        "use_mm_proj": True,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(tok_path, os.path.join(out, "tokenizer.json"))
    tcfg = json.load(open(os.path.join(QWEN2_TOK, "tokenizer_config.json")))
    tcfg["model_max_length"] = qc.max_position_embeddings
    tcfg["added_tokens_decoder"] = {str(tok.t.token_to_id(s)): {"content": s, "lstrip": False, "normalized": False,
                                                                 "rstrip": False, "single_word": False, "special": True}
                                    for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=1)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": None, "eos_token_id": tok.im_end, "pad_token_id": tok.pad, "do_sample": False}, f, indent=1)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
    print(f"wrote {out} ({total / 1e6:.2f} MB) from step {st['step']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["all", "train", "save"], default="all")
    ap.add_argument("--steps", type=int, default=3100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=0, help="stop (with a checkpoint) after this long")
    ap.add_argument("--out", default=ASSET)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    if a.stage in ("all", "train"):
        train(a)
    if a.stage in ("all", "save"):
        save(a)


if __name__ == "__main__":
    main()
