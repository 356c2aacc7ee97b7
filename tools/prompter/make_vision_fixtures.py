#!/usr/bin/env python3
"""Parity fixtures for the Swift LLaVA vision side (Prompter/Vision) and a full tiny LLaVA model.

Writes, under Tests/PrompterTests/Fixtures/:

  vision/images/*.png          small seeded test images (RGB non-square, RGB larger, gray)
  vision/clip/                 tiny random CLIPVisionModel, F32 (transformers 5 key layout: `embeddings.*`,
                               `encoder.*`, `pre_layrnorm.*`, no `vision_model.` prefix) + preprocessor_config.json
  vision/clipmodel-bf16/       the same vision weights inside a tiny CLIPModel (`vision_model.*` + a tiny text
                               model), stored BF16; config.json has `vision_config`
  vision/projectors.safetensors  LLaVA-layout projector weights: mlp2x_gelu (`mlp2x.model.mm_projector.{0,2}.*`),
                               linear (`linear.model.mm_projector.*`), mlp3x_gelu (`mlp3x.model.mm_projector.{0,2,4}.*`)
  vision/reference.safetensors pixel values, tower features, projector outputs (all F32), see cases.json
  vision/cases.json            what each reference tensor is
  llava/                       a full tiny LLaVA (CLIP tower + mlp2x_gelu + Qwen2) in both layouts; see
                               llava/README.md (written by this script)

Image preprocessing uses transformers' PIL-backed CLIPImageProcessor (`CLIPImageProcessorPil`, the "slow"
path that LLaVA/LLMGA use with transformers 4.37), never the torchvision ("fast") one, whose resize differs.
LLMGA's squash is `image.resize((max(w,h), max(w,h)), Image.ANTIALIAS)`; ANTIALIAS was Pillow's alias of
LANCZOS (removed in Pillow 10), so LANCZOS is used here.

Versions: torch 2.15 (CPU), transformers 5.25, Pillow 13, tokenizers 0.23.
Run:  /work/main/tools/.venv/bin/python tools/prompter/make_vision_fixtures.py
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
from transformers import (AutoTokenizer, CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPVisionConfig,
                          CLIPVisionModel, GenerationConfig, LlavaConfig, LlavaForConditionalGeneration, Qwen2Config)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "Tests", "PrompterTests", "Fixtures")
VIS = os.path.join(FIX, "vision")
LLAVA = os.path.join(FIX, "llava")
QWEN2_TOK = os.path.join(FIX, "tokenizers", "qwen2")

IMAGE_SIZE = 56
PATCH = 14
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

torch.manual_seed(0)
rng = np.random.default_rng(1234)


def perturb(model, std):
    """Random init plus seeded noise, so LayerNorm weights are not all 1 and biases not all 0."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.add_(torch.randn(p.shape, generator=g) * std)


def fresh(path):
    """Empties `path`, keeping a hand-written README.md (vision/README.md documents the cases)."""
    readme = os.path.join(path, "README.md")
    kept = open(readme).read() if path == VIS and os.path.exists(readme) else None
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    if kept is not None:
        with open(readme, "w") as f:
            f.write(kept)


def make_images():
    os.makedirs(os.path.join(VIS, "images"), exist_ok=True)
    imgs = {}
    # 45x30 RGB: smooth gradients plus noise (non-square: the squash matters).
    y, x = np.mgrid[0:30, 0:45]
    a = np.stack([x * 5.5, y * 8.0, (x + y) * 3.0], -1) + rng.normal(0, 25, (30, 45, 3))
    imgs["rgb45x30"] = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    # 100x70 RGB with hard edges (downscale to 56: antialiased bicubic, clipping).
    b = rng.integers(0, 256, (7, 10, 3), dtype=np.uint8).repeat(10, 0).repeat(10, 1)
    imgs["rgb100x70"] = Image.fromarray(b, "RGB")
    # 40x52 gray (LLaVA converts to RGB).
    y, x = np.mgrid[0:52, 0:40]
    c = 128 + 100 * np.sin(x / 4.0) * np.cos(y / 6.0) + rng.normal(0, 10, (52, 40))
    imgs["gray40x52"] = Image.fromarray(np.clip(c, 0, 255).astype(np.uint8), "L")
    for k, im in imgs.items():
        im.save(os.path.join(VIS, "images", k + ".png"))
    # Reload, as the Swift side decodes the PNGs.
    return {k: Image.open(os.path.join(VIS, "images", k + ".png")) for k in imgs}


def squash(img):
    w, h = img.size
    m = max(w, h)
    return img.resize((m, m), Image.LANCZOS)


def expand2square(img, background):
    w, h = img.size
    if w == h:
        return img
    if w > h:
        r = Image.new(img.mode, (w, w), background)
        r.paste(img, (0, (w - h) // 2))
    else:
        r = Image.new(img.mode, (h, h), background)
        r.paste(img, ((h - w) // 2, 0))
    return r


def processor():
    return CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                 image_mean=MEAN, image_std=STD, resample=3)


def pixel_values(proc, img):
    return torch.from_numpy(np.asarray(proc(images=img, return_tensors="np")["pixel_values"][0], dtype=np.float32))


def vision_config():
    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                            image_size=IMAGE_SIZE, patch_size=PATCH, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                            projection_dim=16)


def tower_features(model, pv, layer=-2, cls=False):
    with torch.no_grad():
        out = model(pixel_values=pv[None], output_hidden_states=True)
    h = out.hidden_states[layer][0]
    return h if cls else h[1:]


def main():
    fresh(VIS)
    imgs = make_images()
    proc = processor()
    ref = {}
    cases = {"tolerance_note": "pixel values are exact functions of 8-bit PIL results; features computed in float32",
             "preprocess": [], "features": [], "projectors": []}

    # --- preprocessing -------------------------------------------------------------------------------------
    background = tuple(int(v * 255) for v in MEAN)
    prep = {
        "rgb45x30_squash": squash(imgs["rgb45x30"].convert("RGB")),
        "rgb45x30_pad": expand2square(imgs["rgb45x30"].convert("RGB"), background),
        "rgb45x30_none": imgs["rgb45x30"].convert("RGB"),
        "rgb100x70_squash": squash(imgs["rgb100x70"].convert("RGB")),
        "rgb100x70_none": imgs["rgb100x70"].convert("RGB"),
        "gray40x52_squash": squash(imgs["gray40x52"].convert("RGB")),
    }
    for name, im in prep.items():
        pv = pixel_values(proc, im)
        ref["pixels." + name] = pv
        image, mode = name.split("_")
        cases["preprocess"].append({"key": "pixels." + name, "image": "images/%s.png" % image, "mode": mode,
                                    "shape": list(pv.shape)})

    # --- tower ---------------------------------------------------------------------------------------------
    vc = vision_config()
    clip = CLIPVisionModel(vc).eval()
    perturb(clip, 0.05)
    d = os.path.join(VIS, "clip")
    fresh(d)
    clip.save_pretrained(d, safe_serialization=True)
    proc.save_pretrained(d)

    cm_cfg = CLIPConfig(text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=8, bos_token_id=0,
                                         eos_token_id=1, pad_token_id=1),
                        vision_config=vc.to_dict(), projection_dim=16)
    cm = CLIPModel(cm_cfg).eval()
    missing = cm.vision_model.load_state_dict(clip.state_dict())
    assert not missing.missing_keys and not missing.unexpected_keys, missing
    cm = cm.to(torch.bfloat16)
    d = os.path.join(VIS, "clipmodel-bf16")
    fresh(d)
    cm.save_pretrained(d, safe_serialization=True)
    clip_bf16 = CLIPVisionModel(vc).eval()
    clip_bf16.load_state_dict({k: v.float() for k, v in cm.vision_model.state_dict().items()})

    for name in ["rgb45x30_squash", "rgb100x70_squash", "gray40x52_squash"]:
        pv = ref["pixels." + name]
        ref["features.%s.patch" % name] = tower_features(clip, pv)
        cases["features"].append({"key": "features.%s.patch" % name, "model": "clip", "pixels": "pixels." + name,
                                  "select_layer": -2, "select_feature": "patch"})
    pv = ref["pixels.rgb45x30_squash"]
    ref["features.rgb45x30_squash.cls_patch"] = tower_features(clip, pv, cls=True)
    cases["features"].append({"key": "features.rgb45x30_squash.cls_patch", "model": "clip",
                              "pixels": "pixels.rgb45x30_squash", "select_layer": -2, "select_feature": "cls_patch"})
    ref["features.rgb45x30_squash.last"] = tower_features(clip, pv, layer=-1)
    cases["features"].append({"key": "features.rgb45x30_squash.last", "model": "clip",
                              "pixels": "pixels.rgb45x30_squash", "select_layer": -1, "select_feature": "patch"})
    ref["features.rgb45x30_squash.bf16"] = tower_features(clip_bf16, pv)
    cases["features"].append({"key": "features.rgb45x30_squash.bf16", "model": "clipmodel-bf16",
                              "pixels": "pixels.rgb45x30_squash", "select_layer": -2, "select_feature": "patch"})

    # --- projectors (LLaVA builder: linear, mlp{N}x_gelu) ----------------------------------------------------
    feats = ref["features.rgb45x30_squash.patch"]
    H = 48
    g = torch.Generator().manual_seed(11)
    proj_w = {}

    def lin(prefix, i, o):
        w = torch.randn(o, i, generator=g) / i ** 0.5
        b = torch.randn(o, generator=g) * 0.1
        proj_w[prefix + ".weight"] = w
        proj_w[prefix + ".bias"] = b
        return lambda x: x @ w.T + b

    gelu = torch.nn.GELU()  # exact erf, as LLaVA's nn.GELU()
    l = lin("linear.model.mm_projector", 32, H)
    ref["projector.linear"] = l(feats)
    a, b2 = lin("mlp2x.model.mm_projector.0", 32, H), lin("mlp2x.model.mm_projector.2", H, H)
    ref["projector.mlp2x_gelu"] = b2(gelu(a(feats)))
    a, b2, c = (lin("mlp3x.model.mm_projector.0", 32, H), lin("mlp3x.model.mm_projector.2", H, H),
                lin("mlp3x.model.mm_projector.4", H, H))
    ref["projector.mlp3x_gelu"] = c(gelu(b2(gelu(a(feats)))))
    save_file({k: v.contiguous() for k, v in proj_w.items()}, os.path.join(VIS, "projectors.safetensors"))
    for t, p in [("linear", "linear."), ("mlp2x_gelu", "mlp2x."), ("mlp3x_gelu", "mlp3x.")]:
        cases["projectors"].append({"key": "projector." + t, "type": t, "weights_prefix": p,
                                    "input": "features.rgb45x30_squash.patch", "hidden": H})

    save_file({k: v.contiguous().float() for k, v in ref.items()}, os.path.join(VIS, "reference.safetensors"))
    with open(os.path.join(VIS, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)

    make_llava(clip, proc, imgs)


PROMPT = ("<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. The assistant gives "
          "helpful and honest answers.<|im_end|><|im_start|>user\n<image>\nGenerate a similar image.<|im_end|>"
          "<|im_start|>assistant\n")
IMAGE_TOKEN_INDEX = -200
TOKENIZER_CORPUS = [
    PROMPT.replace("<image>", " "),
    "Generate a similar image. Recreate the given image. Could you give me an image that looks similar?",
    "<gen_image> A red fox in snow, highly detailed, cinematic lighting. </gen_image>",
    "<gen_image> A majestic castle on a hill at sunset, golden hour, volumetric fog. </gen_image>",
    "Make it night. Add a rainbow in the sky. Turn the cat into a dog.",
] * 4


def tokenizer_image_token(prompt, tok):
    """llava/mm_utils.py tokenizer_image_token, verbatim logic."""
    chunks = [tok(c).input_ids for c in prompt.split("<image>")]
    ids, offset = [], 0
    if len(chunks) > 0 and len(chunks[0]) > 0 and chunks[0][0] == tok.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    sep = [IMAGE_TOKEN_INDEX] * (offset + 1)
    inter = [e for sub in zip(chunks, [sep] * len(chunks)) for e in sub][:-1]
    for x in inter:
        ids.extend(x[offset:])
    return ids


def make_llava(clip, proc, imgs):
    fresh(LLAVA)
    hf_dir, ll_dir = os.path.join(LLAVA, "hf"), os.path.join(LLAVA, "llava")
    os.makedirs(hf_dir)
    os.makedirs(ll_dir)

    # Tokenizers: a small byte-level BPE trained here with the Qwen2 fixture tokenizer's normalizer,
    # pre-tokenizer (Qwen2 split regex + ByteLevel) and decoder, specials <|endoftext|> <|im_start|> <|im_end|>
    # (ids 0, 1, 2). LLaVA layout: as is. HF layout: plus special "<image>" (the last id).
    q = Tokenizer.from_file(os.path.join(QWEN2_TOK, "tokenizer.json"))
    t = Tokenizer(models.BPE())
    t.normalizer, t.pre_tokenizer, t.decoder = q.normalizer, q.pre_tokenizer, q.decoder
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t.train_from_iterator(TOKENIZER_CORPUS, trainer)
    t.save(os.path.join(ll_dir, "tokenizer.json"))
    tok_cfg = json.load(open(os.path.join(QWEN2_TOK, "tokenizer_config.json")))
    tok_cfg["model_max_length"] = 512
    for d in [ll_dir, hf_dir]:
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(tok_cfg, f, indent=1)
    base_vocab = t.get_vocab_size(with_added_tokens=True)
    t.add_special_tokens([AddedToken("<image>", special=True, normalized=False)])
    image_id = t.token_to_id("<image>")
    assert image_id == base_vocab, (image_id, base_vocab)
    t.save(os.path.join(hf_dir, "tokenizer.json"))
    eos_id, pad_id = t.token_to_id("<|im_end|>"), t.token_to_id("<|endoftext|>")
    vocab = image_id + 1

    vc = clip.config
    tc = Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
                     tie_word_embeddings=False, bos_token_id=None, eos_token_id=eos_id, pad_token_id=pad_id)
    cfg = LlavaConfig(vision_config=vc.to_dict(), text_config=tc.to_dict(), image_token_index=image_id,
                      vision_feature_layer=-2, vision_feature_select_strategy="default", projector_hidden_act="gelu",
                      multimodal_projector_bias=True, image_seq_length=(IMAGE_SIZE // PATCH) ** 2,
                      tie_word_embeddings=False)
    torch.manual_seed(3)
    model = LlavaForConditionalGeneration(cfg).eval()
    model.model.vision_tower.load_state_dict(clip.state_dict())
    # Spread the random LLM weights (margins between the top logits) and store everything as F16: the
    # reference below runs in F32 on the F16-rounded weights, exactly what a reader converting F16 sees.
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for n, p in sorted(model.named_parameters()):
            if "vision_tower" in n:
                continue
            p.add_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim == 2 else 0.1))
        for p in model.parameters():
            p.copy_(p.half().float())
    model.to(torch.float16).save_pretrained(hf_dir, safe_serialization=True)
    model = model.float()
    # `.to(float16)` also rounded the rotary embedding's non-persistent `inv_freq` buffer to F16, and `.float()`
    # does not undo that: recompute it, so the reference uses the exact frequencies any loader derives from
    # rope_theta (an F16-rounded inv_freq shifts these logits by up to 0.11 by position 70).
    rotary = model.model.language_model.rotary_emb
    head_dim = tc.hidden_size // tc.num_attention_heads
    exact = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    with torch.no_grad():
        rotary.inv_freq.copy_(exact)
        rotary.original_inv_freq.copy_(exact)
    proc.save_pretrained(hf_dir)
    proc.save_pretrained(ll_dir)

    # LLaVA layout: rename the HF state dict.
    sd = {k: v.half() for k, v in model.state_dict().items()}
    ll = {}
    for k, v in sd.items():
        if k.startswith("model.vision_tower."):
            nk = "model.vision_tower.vision_tower.vision_model." + k[len("model.vision_tower."):]
        elif k.startswith("model.multi_modal_projector.linear_1."):
            nk = "model.mm_projector.0." + k.split(".")[-1]
        elif k.startswith("model.multi_modal_projector.linear_2."):
            nk = "model.mm_projector.2." + k.split(".")[-1]
        elif k.startswith("model.language_model."):
            nk = "model." + k[len("model.language_model."):]
        elif k == "lm_head.weight":
            nk = k
        else:
            raise SystemExit("unexpected key " + k)
        ll[nk] = v.contiguous()
    assert len(ll) == len(sd)
    save_file(ll, os.path.join(ll_dir, "model.safetensors"), metadata={"format": "pt"})
    llcfg = {
        "architectures": ["LlavaQwen2ForCausalLM"],
        "model_type": "llava_Qwen2",
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": eos_id,
        "hidden_act": "silu",
        "hidden_size": tc.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": tc.intermediate_size,
        "max_position_embeddings": tc.max_position_embeddings,
        "max_window_layers": 2,
        "num_attention_heads": tc.num_attention_heads,
        "num_hidden_layers": tc.num_hidden_layers,
        "num_key_value_heads": tc.num_key_value_heads,
        "rms_norm_eps": tc.rms_norm_eps,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": vocab,
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
        "mm_vision_tower": "openai/clip-vit-tiny-patch14-56",
        "tokenizer_model_max_length": 2048,
        "tokenizer_padding_side": "right",
        "tune_mm_mlp_adapter": False,
        "use_mm_proj": True,
    }
    with open(os.path.join(ll_dir, "config.json"), "w") as f:
        json.dump(llcfg, f, indent=2)

    # Prompt, image, ids.
    tok = AutoTokenizer.from_pretrained(ll_dir)
    ids = tokenizer_image_token(PROMPT, tok)
    pos = ids.index(IMAGE_TOKEN_INDEX)
    n_img = (IMAGE_SIZE // PATCH) ** 2
    hf_ids = ids[:pos] + [image_id] * n_img + ids[pos + 1:]
    img = imgs["rgb45x30"].convert("RGB")
    pv = pixel_values(proc, squash(img))

    inp = torch.tensor([hf_ids])
    with torch.no_grad():
        out = model(input_ids=inp, pixel_values=pv[None])
        logits = out.logits[0].float()
        feats = model.get_image_features(pixel_values=pv[None])
        feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
        if isinstance(feats, (list, tuple)):
            feats = feats[0]
        feats = feats.reshape(-1, tc.hidden_size)
        # LLaVA's own path: splice the projected features where -200 stands, run the LM on embeddings.
        emb = model.get_input_embeddings()
        pre = emb(torch.tensor(ids[:pos]))
        post = emb(torch.tensor(ids[pos + 1:]))
        embeds = torch.cat([pre, feats, post])[None]
        lm = model.model.language_model(inputs_embeds=embeds)
        logits2 = model.lm_head(lm.last_hidden_state)[0]
    diff = (logits - logits2).abs().max().item()
    assert diff < 1e-4, diff

    gen = model.generate(input_ids=inp, pixel_values=pv[None],
                         generation_config=GenerationConfig(max_new_tokens=32, do_sample=False, eos_token_id=None,
                                                            pad_token_id=pad_id, bos_token_id=None),
                         output_scores=True, return_dict_in_generate=True)
    new = gen.sequences[0, len(hf_ids):].tolist()
    assert len(new) == 32
    margins = []
    for s in gen.scores:
        top = torch.topk(s[0].float(), 2).values
        margins.append(float(top[0] - top[1]))

    ref = {"pixel_values": pv.contiguous(), "image_features": feats.contiguous(), "logits": logits.contiguous()}
    save_file(ref, os.path.join(LLAVA, "reference.safetensors"))
    # The tower's configuration alone (no weights): `mm_vision_tower` above is a name llmga does not know, so the
    # llmga.load node is given this folder; the tower's weights then come from the checkpoint.
    os.makedirs(os.path.join(LLAVA, "tower-config"), exist_ok=True)
    shutil.copy(os.path.join(VIS, "clip", "config.json"), os.path.join(LLAVA, "tower-config", "config.json"))
    expected = {
        "prompt": PROMPT,
        "image": "vision/images/rgb45x30.png",
        "image_preprocess": "squash to 45x45 (PIL LANCZOS), CLIPImageProcessorPil 56 bicubic, crop 56",
        "image_token_index_llava": IMAGE_TOKEN_INDEX,
        "image_token_id_hf": image_id,
        "image_tokens": n_img,
        "image_position": pos,
        "input_ids_llava": ids,
        "input_ids_hf": hf_ids,
        "generated_ids": new,
        "generated_text": tok.decode(new),
        "generation_top2_margins": margins,
        "logits_shape": list(logits.shape),
        "llava_splice_vs_hf_max_abs_diff": diff,
    }
    with open(os.path.join(LLAVA, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    write_readme(expected, tc, vc)
    print("image position", pos, "ids", len(ids), "hf ids", len(hf_ids), "min margin", min(margins))


def write_readme(e, tc, vc):
    text = f"""# Tiny full LLaVA fixture (CLIP tower + mlp2x_gelu projector + Qwen2 decoder)

Made by `tools/prompter/make_vision_fixtures.py` (torch 2.15 CPU, transformers 5.23, Pillow 13); random seeded
weights, no meaning. Purpose: test the Swift LLaVA assembly (vision encoder + splice + LLM decoder) end to end.

## Model
- Vision tower: CLIP ViT, image {vc.image_size}, patch {vc.patch_size} → {e['image_tokens']} patches, hidden {vc.hidden_size},
  {vc.num_hidden_layers} layers, {vc.num_attention_heads} heads, intermediate {vc.intermediate_size}, quick_gelu, eps 1e-5
  (same weights as `../vision/clip/`). Feature: `hidden_states[-2]`, CLS dropped (`patch`).
- Projector: mlp2x_gelu, Linear({vc.hidden_size}→{tc.hidden_size}), GELU (erf), Linear({tc.hidden_size}→{tc.hidden_size}).
- LLM: Qwen2, hidden {tc.hidden_size}, {tc.num_hidden_layers} layers, {tc.num_attention_heads} heads, {tc.num_key_value_heads} KV heads
  (head dim {tc.hidden_size // tc.num_attention_heads}), intermediate {tc.intermediate_size}, vocab {tc.vocab_size}, RMSNorm eps 1e-6,
  rope theta 10000, untied `lm_head`, q/k/v biases (Qwen2).
- All weights stored **F16**. The references were computed in **F32** from the F16-rounded weights
  (so a reader that converts F16→F32 and computes in F32 should match to ~1e-5 relative).

## Layouts (same weights)
- `hf/`: `LlavaForConditionalGeneration.save_pretrained` of transformers 5.23. Keys as 5.23 writes them:
  `vision_tower.embeddings.*`, `vision_tower.encoder.layers.*`, `vision_tower.pre_layrnorm.*`,
  `vision_tower.post_layernorm.*` (no `vision_model.`), `multi_modal_projector.linear_{{1,2}}.*`,
  `language_model.model.{{embed_tokens,layers.*,norm}}`, `language_model.lm_head.weight`. config.json has
  `vision_config`, `text_config`, `image_token_index` {e['image_token_id_hf']}, `vision_feature_layer` -2,
  `vision_feature_select_strategy` "default". tokenizer.json = a byte-level BPE trained by the script in the style of the qwen2 fixture tokenizer (Qwen2 regex, ByteLevel, NFC) + special `<image>`
  (id {e['image_token_id_hf']}).
- `llava/`: the original LLaVA/LLMGA layout (`architectures: ["LlavaQwen2ForCausalLM"]`, `model_type: "llava_Qwen2"`,
  `mm_vision_tower`, `mm_hidden_size`, `mm_projector_type: mlp2x_gelu`, `mm_vision_select_layer: -2`,
  `mm_vision_select_feature: patch`, `image_aspect_ratio: resizesquare`, Qwen2 keys). Keys: `model.embed_tokens.weight`,
  `model.layers.*`, `model.norm.weight`, `lm_head.weight`, `model.mm_projector.{{0,2}}.{{weight,bias}}`,
  `model.vision_tower.vision_tower.vision_model.*` (tower bundled). `mm_vision_tower` is a hub name
  (`openai/clip-vit-tiny-patch14-56`) that does not exist locally: the tower comes from the checkpoint. Tokenizer = the
  same BPE without `<image>` ({e['image_token_id_hf']} tokens; the embedding has {tc.vocab_size} rows, the last unused here).
  Specials: `<|endoftext|>` 0 (pad), `<|im_start|>` 1, `<|im_end|>` 2 (eos, not used to stop).
- Both folders hold `preprocessor_config.json` (CLIPImageProcessor, size/crop 56, bicubic, OpenAI CLIP mean/std).

## Prompt and image
- Prompt (qwen_2 template, one user turn with an image):
  `{json.dumps(e['prompt'])}`
- Image: `{e['image']}` (45×30 RGB), LLMGA preprocessing: squash to 45×45 with PIL LANCZOS (`ANTIALIAS`), then
  CLIPImageProcessorPil (slow PIL path): resize shortest edge 56 bicubic, center crop 56, /255, normalise.
- `expected.json`:
  - `input_ids_llava`: LLaVA `tokenizer_image_token` ids (chunks tokenised separately; no BOS for Qwen2) with
    -200 at index `image_position` = {e['image_position']} ({len(e['input_ids_llava'])} ids).
  - `input_ids_hf`: the same with -200 replaced by {e['image_tokens']} × {e['image_token_id_hf']} ({len(e['input_ids_hf'])} ids);
    the image embeddings occupy positions {e['image_position']}..<{e['image_position'] + e['image_tokens']}.
  - `generated_ids`: greedy (argmax) continuation of 32 tokens, EOS disabled (`eos_token_id=None`), KV cache on;
    `generation_top2_margins`: top-1 minus top-2 logit at each step (how robust each argmax is).
  - `generated_text`: their decode.
- `reference.safetensors` (F32): `pixel_values` [3,56,56]; `image_features` [{e['image_tokens']},{tc.hidden_size}] (projector output,
  what replaces -200); `logits` {e['logits_shape']} (full logits of the HF model for `input_ids_hf`, every position).
  The script also checks that LLaVA's own path (embed the two text chunks, concatenate the features in between,
  run the LM on embeddings) gives the same logits (max abs diff {e['llava_splice_vs_hf_max_abs_diff']:.2e}).
  The rotary frequencies are exact F32 (recomputed after the F16 round trip, which rounds transformers'
  `inv_freq` buffer too).

## tower-config/
The tiny tower's `config.json` alone (a copy of `../vision/clip/config.json`, no weights). The `llava/` layout's
`mm_vision_tower` names a tower llmga does not know built in, so `LLaVAModel.load(folder:visionTower:)` (and the
`llmga.load` node's `vision-tower` input) is given this folder: the configuration comes from it, the weights from
the checkpoint.
"""
    with open(os.path.join(LLAVA, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
