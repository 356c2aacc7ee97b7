#!/usr/bin/env python3
"""Train the miniature Stable Diffusion pipeline on the world of tools/mini/world.py and save it as a
real diffusers folder at Assets/models/mini-sd/ (what StableDiffusionPipeline.save_pretrained writes,
safety checker omitted, weights f16 safetensors, the real CLIP BPE tokenizer, SD1.5's PNDM scheduler).

Stages (each resumable from its checkpoint under tools/mini/.work/sd/):
  vae    AutoencoderKL, 64x64x3 -> 8x8x4 (factor 8), MSE + L1 + 1e-6 KL, on rendered scenes.
  unet   CLIPTextModel + UNet2DConditionModel trained jointly on the VAE's latents (scaled by
         scaling_factor = 1 / std of the latents, as SD did), DDPM epsilon objective with SD1.5's
         scaled_linear 0.00085..0.012 / 1000-step schedule; captions mix short / medium / detailed,
         10% dropped to "" for classifier-free guidance.
         --recipe v1 (the shipped model) or v2 (larger noise offset, high-t emphasis, EMA, a second
         medium-caption phase); every --eval-every steps the scan of check_sd.py on seeds 1-2 is logged.
  save   writes the folder (EMA weights; --raw: the raw ones).
  inpaint       the 9-channel inpainting UNet (noisy latents + mask + masked-image latents), initialised
                from the text-to-image UNet with the 5 new conv_in inputs zero, text encoder and VAE frozen;
                LLMGA's mask mix (outpainting bands, boxes, irregular, 25% all-ones). Writes
                Assets/models/mini-sd-inpaint (StableDiffusionInpaintPipeline layout).
  save-inpaint  rewrites that folder from the checkpoint.

Deterministic: fixed seeds, one thread count, torch.use_deterministic_algorithms(True). Run from the
repository root (nice it: the machine is shared):

    nice -n 15 tools/.venv/bin/python tools/mini/train_sd.py --recipe v1          # the shipped mini-sd
    nice -n 15 tools/.venv/bin/python tools/mini/train_sd.py --stage inpaint --t2i-from Assets/models/mini-sd

Measured times are in tools/mini/README.md.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import world  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "diffusion"))
from sd15 import SD15_SCHEDULER  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "tools/mini/.work/sd"
OUT = ROOT / "Assets/models/mini-sd"
CLIP_VOCAB = ROOT / "Sources/Diffusion/Resources/clip"

POOL_SEED, POOL_SIZE = 0, 24000


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def setup(threads: int):
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------- models

def make_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(16, 32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=4, sample_size=64)


def write_tokenizer(folder: Path):
    """SD1.5's tokenizer/ folder: the real CLIP BPE files and SD1.5's tokenizer configs."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CLIP_VOCAB / "vocab.json", folder / "vocab.json")
    shutil.copy(CLIP_VOCAB / "merges.txt", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2) + "\n")


def make_tokenizer():
    # Loaded from a folder as pipelines load it (transformers 5's CLIPTokenizer(vocab_file=..., merges_file=...)
    # constructor silently maps every word to one id).
    from transformers import CLIPTokenizer
    folder = WORK / "tokenizer"
    write_tokenizer(folder)
    tok = CLIPTokenizer.from_pretrained(folder)
    ids = tok("a red circle").input_ids
    assert ids == [49406, 320, 736, 7117, 49407], f"CLIP tokenizer broken: {ids}"
    return tok


def make_text_encoder(tok):
    from transformers import CLIPTextConfig, CLIPTextModel
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=64,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=1))


def make_unet():
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64, attention_head_dim=4, norm_num_groups=16)


def make_train_scheduler():
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         prediction_type="epsilon", clip_sample=False)


# ---------------------------------------------------------------------------------------------- data

def pool():
    """The training scenes and their images ([-1, 1] float, NCHW), cached under .work."""
    cache = WORK / f"pool-{POOL_SEED}-{POOL_SIZE}.npy"
    scenes = [world.scene_at(POOL_SEED, i) for i in range(POOL_SIZE)]
    if cache.exists():
        images = np.load(cache)
    else:
        images = np.stack([world.render_array(s) for s in scenes])
        WORK.mkdir(parents=True, exist_ok=True)
        np.save(cache, images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return scenes, x


def lr_at(step, total, base, warmup=100):
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))) * 0.9 + base * 0.1


def save_ckpt(path: Path, **state):
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- stages

def train_vae(steps: int, batch: int, lr: float, crop: int = 32):
    _, x = pool()
    vae = make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    ck = WORK / "vae.pt"
    start = 0
    if ck.exists():
        s = torch.load(ck, weights_only=False)
        vae.load_state_dict(s["model"]); opt.load_state_dict(s["opt"]); start = s["step"]
        log(f"vae: resumed at step {start}")
    g = torch.Generator().manual_seed(1)
    for _ in range(start):  # keep the batch stream identical whether resumed or not
        torch.randint(0, len(x), (batch,), generator=g); torch.randint(0, 5, (2,), generator=g)
        torch.randn((batch, 4, crop // 8, crop // 8), generator=g)
    vae.train()
    t0 = time.time()
    for step in range(start, steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, lr)
        idx = torch.randint(0, len(x), (batch,), generator=g)
        # The VAE is convolutional: train on 32x32 crops on the 8-pixel latent grid (4x cheaper).
        oy, ox = (torch.randint(0, 5, (2,), generator=g) * 8).tolist()
        img = x[idx, :, oy:oy + crop, ox:ox + crop]
        post = vae.encode(img).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        kl = post.kl().mean() / post.mean[0].numel()         # per latent element
        loss = F.mse_loss(rec, img) + 0.5 * F.l1_loss(rec, img) + 1e-6 * kl * post.mean[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"vae step {step} loss {loss.item():.5f} mse {F.mse_loss(rec, img).item():.5f} kl {kl.item():.3f} "
                f"({(time.time() - t0) / (step - start + 1):.2f}s/step)")
        if (step + 1) % 100 == 0 or step == steps - 1:
            save_ckpt(ck, model=vae.state_dict(), opt=opt.state_dict(), step=step + 1)
    vae.eval()
    return vae


def import_vae(folder: Path):
    """Takes the VAE of an existing mini-sd folder (f16 weights, widened to f32) as the vae checkpoint."""
    from diffusers import AutoencoderKL
    src = AutoencoderKL.from_pretrained(folder).float()
    vae = make_vae()
    vae.load_state_dict(src.state_dict())
    save_ckpt(WORK / "vae.pt", model=vae.state_dict(), step=10 ** 9, imported=str(folder))
    log(f"vae: imported from {folder}")


def import_t2i(folder: Path):
    """Takes the text encoder, UNet, VAE and scaling_factor of an existing mini-sd folder as the checkpoints
    (unet.pt with raw = EMA, vae.pt, latents.pt's scaling_factor), so that the inpainting stage can start
    from a shipped model."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel
    import_vae(folder / "vae")
    tok = make_tokenizer()
    text, unet = make_text_encoder(tok), make_unet()
    text.load_state_dict(CLIPTextModel.from_pretrained(folder / "text_encoder").float().state_dict())
    unet.load_state_dict(UNet2DConditionModel.from_pretrained(folder / "unet").float().state_dict())
    save_ckpt(WORK / "unet.pt", unet=unet.state_dict(), text=text.state_dict(), ema_unet=unet.state_dict(),
              ema_text=text.state_dict(), step=0, imported=str(folder))
    lat = encode_pool(load_vae())
    lat["scaling_factor"] = json.loads((folder / "vae/config.json").read_text())["scaling_factor"]
    torch.save(lat, WORK / "latents.pt")
    log(f"text encoder + unet imported from {folder}; scaling_factor {lat['scaling_factor']}")


def load_vae():
    vae = make_vae()
    vae.load_state_dict(torch.load(WORK / "vae.pt", weights_only=False)["model"])
    return vae.eval()


def encode_pool(vae):
    cache = WORK / "latents.pt"
    if cache.exists():
        return torch.load(cache, weights_only=False)
    _, x = pool()
    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            post = vae.encode(x[i:i + 256]).latent_dist
            means.append(post.mean); stds.append(post.std)
    mean, std = torch.cat(means), torch.cat(stds)
    g = torch.Generator().manual_seed(2)
    sample = mean + std * torch.randn(mean.shape, generator=g)
    scaling = float(1 / sample.std())
    rec = None
    with torch.no_grad():
        rec = vae.decode(mean[:256]).sample
    mse = F.mse_loss(rec, x[:256]).item()
    out = {"mean": mean, "std": std, "scaling_factor": scaling, "recon_mse": mse}
    torch.save(out, cache)
    log(f"latents: {tuple(mean.shape)} std {sample.std():.4f} -> scaling_factor {scaling:.5f}; recon mse {mse:.5f}")
    return out


CAPTION_MIX = [("short", 0.20), ("medium", 0.40), ("detailed", 0.30), ("empty", 0.10)]
# Per-image noise offset (std of a per-channel constant added to the noise) and the share of each batch whose
# timestep is drawn from the upper half [HIGH_T, 1000) instead of [0, 1000): see the README's recipe.
NOISE_OFFSET, HIGH_T_SHARE, HIGH_T = 0.4, 0.5, 500
EMA_DECAY = 0.999
# --recipe v1 is the one that made the shipped Assets/models/mini-sd (4000 steps, lr 5e-4, saved raw);
# v2 (the defaults above, 5000 + 1500 steps, lr 8e-4, saved EMA) was tried and not shipped: see the README.
RECIPE_V1 = {"NOISE_OFFSET": 0.1, "HIGH_T_SHARE": 0.0,
             "CAPTION_MIX": [("short", 0.25), ("medium", 0.30), ("detailed", 0.35), ("empty", 0.10)]}
RECIPE_V1_ARGS = {"unet_steps": 4000, "unet_extra": 0, "unet_lr": 5e-4, "raw": True}


# Phase 2 of the UNet stage (--unet-extra steps after --unet-steps): the model has the colours by then but
# puts a shape named without a position anywhere; the medium captions (where an unsaid position means the
# centre) get most of the batch, at a second, lower cosine (LATE_LR of the base -> 10%).
CAPTION_MIX_LATE = [("short", 0.05), ("medium", 0.55), ("detailed", 0.30), ("empty", 0.10)]
LATE_LR = 0.3


def captions_for(scenes, idx, rng: np.random.Generator, mix=None):
    kinds, probs = zip(*(mix or CAPTION_MIX))
    out = []
    for i in idx:
        k = kinds[rng.choice(len(kinds), p=probs)]
        out.append("" if k == "empty" else world.caption(scenes[i], k))
    return out


def eval_pipe(vae, tok, text, unet, scaling: float, inpaint: bool = False):
    """A diffusers (inpainting) pipeline over the live modules (f32), for the in-training checks."""
    from diffusers import PNDMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline
    vae.register_to_config(scaling_factor=scaling)
    cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    pipe = cls(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=PNDMScheduler.from_config(SD15_SCHEDULER),
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def quick_eval(label, vae, tok, text, unet, scaling):
    """check_sd.py's scan on seeds 1-2 (20 cases; PNDM 25 steps, cfg 6)."""
    import check_sd
    was = text.training
    text.eval(); unet.eval()
    with torch.no_grad():
        n = check_sd.scan(eval_pipe(vae, tok, text, unet, scaling), seeds=[1, 2], verbose=False)
    log(f"eval {label}: scan seeds 1-2: {n}/20 pass")
    if was:
        text.train(); unet.train()
    return n


def train_unet(steps: int, batch: int, lr: float, lat, eval_every: int = 1000, extra: int = 0):
    scenes, _ = pool()
    tok = make_tokenizer()
    text = make_text_encoder(tok)
    unet = make_unet()
    sched = make_train_scheduler()
    # The text encoder starts from scratch and must learn the words quickly: 4x the UNet's learning rate.
    params = [{"params": unet.parameters(), "lr": lr, "base": lr}, {"params": text.parameters(), "lr": 4 * lr, "base": 4 * lr}]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ck = WORK / "unet.pt"
    start = 0
    if ck.exists():
        s = torch.load(ck, weights_only=False)
        unet.load_state_dict(s["unet"]); text.load_state_dict(s["text"]); start = s["step"]
        if "opt" in s:
            opt.load_state_dict(s["opt"])
        log(f"unet: resumed at step {start}" + (f" (weights imported from {s['imported']})" if "imported" in s else ""))
    # EMA of the UNet and text-encoder weights (what is saved); resumed with the rest.
    ema_unet, ema_text = make_unet(), make_text_encoder(tok)
    ema_unet.load_state_dict(s["ema_unet"] if start else unet.state_dict())
    ema_text.load_state_dict(s["ema_text"] if start else text.state_dict())
    ema_unet.eval(); ema_text.eval()
    vae = load_vae()
    mean, std, scaling = lat["mean"], lat["std"], lat["scaling_factor"]
    # All caption token ids precomputed per (scene, kind) would be large; tokenise per batch (cheap).
    unet.train(); text.train()
    t0 = time.time()
    ema = None
    main_steps, steps = steps, steps + extra
    for step in range(start, steps):
        g = torch.Generator().manual_seed(1000 + step)          # per-step streams: resumable exactly
        rng = np.random.default_rng([3, step])
        late = step >= main_steps
        for pg in opt.param_groups:
            pg["lr"] = (lr_at(step - main_steps, extra, LATE_LR * pg["base"], warmup=0) if late
                        else lr_at(step, main_steps, pg["base"], warmup=200))
        idx = torch.randint(0, len(mean), (batch,), generator=g)
        z = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scaling
        noise = torch.randn(z.shape, generator=g)
        # Noise offset: 8x8 latents of flat backgrounds put most of the variance in each image's mean, which
        # the SD1.5 schedule does not fully drown at t=999; extra per-image noise makes the model decide it.
        noise = noise + NOISE_OFFSET * torch.randn((batch, 4, 1, 1), generator=g)
        t = torch.randint(0, 1000, (batch,), generator=g)
        # Colours and layout are decided at high t: draw a share of the timesteps from the upper half.
        hi = torch.rand((batch,), generator=g) < HIGH_T_SHARE
        t = torch.where(hi, HIGH_T + t % (1000 - HIGH_T), t)
        noisy = sched.add_noise(z, noise, t)
        ids = tok(captions_for(scenes, idx.tolist(), rng, CAPTION_MIX_LATE if late else CAPTION_MIX),
                  padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        cond = text(ids)[0]
        pred = unet(noisy, t, encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(unet.parameters()) + list(text.parameters()), 1.0)
        opt.step()
        with torch.no_grad():
            for em, m in ((ema_unet, unet), (ema_text, text)):
                for pe, p in zip(em.parameters(), m.parameters()):
                    pe.lerp_(p, 1 - EMA_DECAY)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            log(f"unet step {step} loss {loss.item():.4f} ema {ema:.4f} ({(time.time() - t0) / (step - start + 1):.3f}s/step)")
        if (step + 1) % 500 == 0 or step == steps - 1:
            save_ckpt(ck, unet=unet.state_dict(), text=text.state_dict(), opt=opt.state_dict(), step=step + 1,
                      ema_unet=ema_unet.state_dict(), ema_text=ema_text.state_dict())
        if eval_every and ((step + 1) % (eval_every // 2 if late else eval_every) == 0 or step == steps - 1):
            quick_eval(f"step {step + 1} raw", vae, tok, text, unet, scaling)
            quick_eval(f"step {step + 1} ema", vae, tok, ema_text, ema_unet, scaling)
    return tok, ema_text, ema_unet


# ---------------------------------------------------------------------------------------------- inpainting

OUT_INPAINT = ROOT / "Assets/models/mini-sd-inpaint"
# Mask kinds per sample (LLMGA's inpainting recipe): 25% all-ones (plain text to image), else 50% outpainting
# (a random non-empty subset of the four borders, each 16-25 px = 25-40% of the side), 25% boxes
# (world.inpaint_mask around a shape, or a random box), 25% irregular (a union of 2-4 random thin boxes).
INPAINT_ALL_ONES, INPAINT_KINDS = 0.25, [("outpaint", 0.5), ("box", 0.25), ("irregular", 0.25)]
# Per-sample loss weight 1 + min(1/SNR(t), cap): the epsilon loss alone barely rewards using the masked
# image at high t (x0 error = eps error / sqrt(SNR)), where the sampler decides the layout; this adds an
# x0-like term there. 0 = plain epsilon MSE, what the shipped model used: cap 20 was tried (2500 and 1500
# steps) and was not better (see the README).
INPAINT_X0_WEIGHT_CAP = 0.0


def make_inpaint_unet(unet):
    """The 9-channel UNet initialised from the text-to-image one, the 5 new conv_in inputs zero
    (as runwayml/stable-diffusion-inpainting was made from SD1.2)."""
    from diffusers import UNet2DConditionModel
    cfg = dict(unet.config)
    cfg["in_channels"] = 9
    new = UNet2DConditionModel.from_config(cfg)
    sd = unet.state_dict()
    w = sd["conv_in.weight"]
    sd["conv_in.weight"] = torch.cat([w, torch.zeros(w.shape[0], 5, *w.shape[2:])], 1)
    new.load_state_dict(sd)
    return new


def draw_mask(scene, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One training mask (float32 HxW, 1 = generate)."""
    from PIL import Image, ImageDraw
    if rng.random() < INPAINT_ALL_ONES:
        return np.ones((size, size), np.float32)
    kinds, probs = zip(*INPAINT_KINDS)
    kind = kinds[rng.choice(len(kinds), p=probs)]
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    if kind == "outpaint":
        sides = [k for k in range(4) if rng.random() < 0.5] or [int(rng.integers(4))]
        for k in sides:
            w = int(rng.integers(16, 26))
            if rng.random() < 0.5:
                w = (w + 7) // 8 * 8                       # on the latent grid half of the time
            box = [(0, 0, w - 1, size - 1), (size - w, 0, size - 1, size - 1),
                   (0, 0, size - 1, w - 1), (0, size - w, size - 1, size - 1)][k]
            d.rectangle(box, fill=255)
    elif kind == "box":
        if rng.random() < 0.5:
            m = world.inpaint_mask(scene, int(rng.integers(len(scene.shapes))), size)
        else:
            w, h = rng.integers(16, 41, 2)
            x0, y0 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
            d.rectangle([int(x0), int(y0), int(x0 + w - 1), int(y0 + h - 1)], fill=255)
    else:
        for _ in range(int(rng.integers(2, 5))):
            horiz = rng.random() < 0.5
            ln, th = int(rng.integers(20, 56)), int(rng.integers(6, 14))
            w, h = (ln, th) if horiz else (th, ln)
            x0, y0 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
            d.rectangle([int(x0), int(y0), int(x0 + w - 1), int(y0 + h - 1)], fill=255)
    return (np.asarray(m) >= 128).astype(np.float32)


def train_inpaint(steps: int, batch: int, lr: float, lat, eval_every: int = 500, ema_t2i: bool = True):
    """The 9-channel UNet: text encoder and VAE frozen (mini-sd's), UNet from the trained text-to-image one."""
    scenes, x = pool()
    tok, text, unet0 = load_unet(ema_t2i)       # the text encoder and UNet that mini-sd ships
    unet = make_inpaint_unet(unet0)
    vae = load_vae()
    text.requires_grad_(False); vae.requires_grad_(False)
    sched = make_train_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    ck = WORK / "inpaint.pt"
    start = 0
    ema_unet = make_inpaint_unet(unet0)
    if ck.exists():
        s = torch.load(ck, weights_only=False)
        unet.load_state_dict(s["unet"]); opt.load_state_dict(s["opt"]); ema_unet.load_state_dict(s["ema_unet"])
        start = s["step"]
        log(f"inpaint: resumed at step {start}")
    ema_unet.eval()
    mean, std, scaling = lat["mean"], lat["std"], lat["scaling_factor"]
    unet.train()
    t0 = time.time()
    ema = None
    for step in range(start, steps):
        g = torch.Generator().manual_seed(5000 + step)
        rng = np.random.default_rng([7, step])
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, lr, warmup=100)
        idx = torch.randint(0, len(mean), (batch,), generator=g)
        z = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scaling
        masks = torch.from_numpy(np.stack([draw_mask(scenes[i], rng) for i in idx.tolist()]))[:, None]
        masked = x[idx] * (masks < 0.5)
        with torch.no_grad():
            post = vae.encode(masked).latent_dist
            mz = (post.mean + post.std * torch.randn(post.mean.shape, generator=g)) * scaling
            ids = tok(captions_for(scenes, idx.tolist(), rng), padding="max_length", max_length=77, truncation=True,
                      return_tensors="pt").input_ids
            cond = text(ids)[0]
        mlat = F.interpolate(masks, size=(8, 8))                # nearest, as the pipeline does
        noise = torch.randn(z.shape, generator=g) + NOISE_OFFSET * torch.randn((batch, 4, 1, 1), generator=g)
        t = torch.randint(0, 1000, (batch,), generator=g)
        hi = torch.rand((batch,), generator=g) < HIGH_T_SHARE
        t = torch.where(hi, HIGH_T + t % (1000 - HIGH_T), t)
        noisy = sched.add_noise(z, noise, t)
        pred = unet(torch.cat([noisy, mlat, mz], 1), t, encoder_hidden_states=cond).sample
        if INPAINT_X0_WEIGHT_CAP:
            ab = sched.alphas_cumprod[t]
            w = 1 + ((1 - ab) / ab).clamp(max=INPAINT_X0_WEIGHT_CAP)
            loss = (w * ((pred - noise) ** 2).mean((1, 2, 3))).mean() / w.mean()
        else:
            loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema_unet.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - EMA_DECAY)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            log(f"inpaint step {step} loss {loss.item():.4f} ema {ema:.4f} ({(time.time() - t0) / (step - start + 1):.3f}s/step)")
        if (step + 1) % 250 == 0 or step == steps - 1:
            save_ckpt(ck, unet=unet.state_dict(), ema_unet=ema_unet.state_dict(), opt=opt.state_dict(), step=step + 1)
        if eval_every and ((step + 1) % eval_every == 0 or step == steps - 1):
            import check_sd
            for label, m in (("raw", unet), ("ema", ema_unet)):
                m.eval()
                with torch.no_grad():
                    r = check_sd.inpaint_checks(eval_pipe(vae, tok, text, m, scaling, inpaint=True), seeds=[1, 2], verbose=False)
                log(f"eval inpaint step {step + 1} {label}: " + " ".join(f"{k}={v:.2f}" for k, v in r.items()))
            unet.train()
    return tok, text, ema_unet


def load_inpaint(ema: bool = True, ema_t2i: bool = True):
    tok, text, unet0 = load_unet(ema_t2i)
    unet = make_inpaint_unet(unet0)
    s = torch.load(WORK / "inpaint.pt", weights_only=False)
    unet.load_state_dict(s["ema_unet" if ema else "unet"])
    return tok, text, unet.eval()


def load_unet(ema: bool = True):
    tok = make_tokenizer()
    text, unet = make_text_encoder(tok), make_unet()
    s = torch.load(WORK / "unet.pt", weights_only=False)
    pre = "ema_" if ema else ""
    unet.load_state_dict(s[pre + "unet"]); text.load_state_dict(s[pre + "text"])
    return tok, text.eval(), unet.eval()


# ---------------------------------------------------------------------------------------------- save

TOKENIZER_CONFIG = {
    "add_prefix_space": False, "bos_token": "<|startoftext|>", "clean_up_tokenization_spaces": True,
    "do_lower_case": True, "eos_token": "<|endoftext|>", "errors": "replace", "model_max_length": 77,
    "pad_token": "<|endoftext|>", "tokenizer_class": "CLIPTokenizer", "unk_token": "<|endoftext|>",
}
SPECIAL_TOKENS = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                  "unk_token": "<|endoftext|>"}


def save(vae, tok, text, unet, scaling: float, out: Path = OUT, inpaint: bool = False):
    """Writes the folder (StableDiffusionPipeline, or StableDiffusionInpaintPipeline for the 9-channel UNet)."""
    from safetensors.torch import save_file
    pipe = eval_pipe(vae, tok, text, unet, scaling, inpaint=inpaint)
    if out.exists():
        shutil.rmtree(out)
    OUT_ = out
    pipe.save_pretrained(OUT_, safe_serialization=True)
    # Released SD1.5 folders ship the CLIP BPE files (transformers 5 writes only tokenizer.json).
    tokdir = OUT_ / "tokenizer"
    shutil.rmtree(tokdir)
    write_tokenizer(tokdir)
    for comp, fname, m in (("unet", "diffusion_pytorch_model.safetensors", unet),
                           ("vae", "diffusion_pytorch_model.safetensors", vae),
                           ("text_encoder", "model.safetensors", text)):
        sd = {k: v.detach().half().contiguous() for k, v in m.state_dict().items() if v.dtype.is_floating_point}
        save_file(sd, OUT_ / comp / fname, metadata={"format": "pt"})
    total = sum(f.stat().st_size for f in OUT_.rglob("*") if f.is_file())
    log(f"wrote {OUT_} ({total / 1e6:.2f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["all", "vae", "unet", "save", "inpaint", "save-inpaint"], default="all")
    ap.add_argument("--inpaint-steps", type=int, default=1500)
    ap.add_argument("--inpaint-lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vae-steps", type=int, default=1200)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--unet-steps", type=int, default=5000)
    ap.add_argument("--unet-batch", type=int, default=32)
    ap.add_argument("--unet-lr", type=float, default=8e-4)
    ap.add_argument("--unet-extra", type=int, default=1500, help="phase-2 steps after --unet-steps")
    ap.add_argument("--eval-every", type=int, default=1000, help="scan every N steps (0: never)")
    ap.add_argument("--t2i-from", help="import text encoder + UNet + VAE of this mini-sd folder (for --stage inpaint)")
    ap.add_argument("--vae-from", help="import the VAE of this diffusers folder instead of training one")
    ap.add_argument("--raw", action="store_true", help="mini-sd: the raw text encoder + UNet instead of the EMA "
                    "(save; inpaint and save-inpaint start from / ship that text encoder)")
    ap.add_argument("--sizes", action="store_true", help="print parameter counts and exit")
    ap.add_argument("--recipe", choices=["v1", "v2"], default="v2")
    a = ap.parse_args()
    if a.recipe == "v1":
        globals().update(RECIPE_V1)
        for k, v in RECIPE_V1_ARGS.items():
            setattr(a, k, v)
    setup(a.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    if a.sizes:
        tok = make_tokenizer()
        for n, m in (("vae", make_vae()), ("text", make_text_encoder(tok)), ("unet", make_unet())):
            p = sum(x.numel() for x in m.parameters())
            print(f"{n}: {p / 1e6:.3f}M params, {2 * p / 1e6:.2f} MB f16")
        return
    t0 = time.time()
    if a.t2i_from:
        import_t2i(Path(a.t2i_from))
    elif a.vae_from:
        import_vae(Path(a.vae_from))
    elif a.stage in ("all", "vae"):
        train_vae(a.vae_steps, a.vae_batch, a.vae_lr)
        log(f"vae done in {time.time() - t0:.0f}s")
    if a.stage in ("all", "unet"):
        lat = encode_pool(load_vae())
        t1 = time.time()
        train_unet(a.unet_steps, a.unet_batch, a.unet_lr, lat, a.eval_every, a.unet_extra)
        log(f"unet+text done in {time.time() - t1:.0f}s")
    if a.stage in ("all", "unet", "save"):
        lat = encode_pool(load_vae())
        tok, text, unet = load_unet(ema=not a.raw)
        save(load_vae(), tok, text, unet, lat["scaling_factor"])
    if a.stage == "inpaint":
        lat = encode_pool(load_vae())
        t1 = time.time()
        train_inpaint(a.inpaint_steps, a.unet_batch, a.inpaint_lr, lat, a.eval_every // 2, not a.raw)
        log(f"inpaint done in {time.time() - t1:.0f}s")
    if a.stage in ("inpaint", "save-inpaint"):
        lat = encode_pool(load_vae())
        tok, text, unet = load_inpaint(ema=True, ema_t2i=not a.raw)
        save(load_vae(), tok, text, unet, lat["scaling_factor"], OUT_INPAINT, inpaint=True)
    log(f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
