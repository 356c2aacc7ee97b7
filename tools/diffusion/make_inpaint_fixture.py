#!/usr/bin/env python3
"""Inpainting parity fixture: diffusers' StableDiffusionInpaintPipeline on tiny random-weight models,
with a 9-channel inpainting UNet and with a plain 4-channel UNet (diffusers' latent-blending path).

Deterministic (fixed seeds; no network). Run from the repository root after make_pipeline_fixture.py
(it rebuilds that script's text encoder, VAE and 4-channel UNet from the same seed and reuses its folder):

    tools/.venv/bin/python tools/diffusion/make_inpaint_fixture.py

Writes Tests/DiffusionTests/Fixtures/inpaint/
  model/                 a StableDiffusionInpaintPipeline folder (safety checker omitted): the pipeline
                         fixture's text encoder, tokenizer, VAE and scheduler with a 9-channel UNet (f16)
  expected.safetensors   "image" [64, 64, 3] and "mask" [64, 64] (uint8 values / 255, as a PNG gives them),
                         and per case the images (float32 [B, H, W, 3] in [0, 1]) and NAME_latents
  cases.json             the settings of each case; "model" is "inpaint" (model/ here) or "pipeline"
                         (../pipeline/model, the 4-channel UNet)
  image.png, mask.png    the same image (RGB) and mask (L, white = generate) as files, for the CLI test

The mask is white (1) where to generate, with grey values just below and above 0.5 along one edge so
that diffusers' binarisation (< 0.5 → 0) is exercised.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from diffusers import (EulerAncestralDiscreteScheduler, PNDMScheduler, StableDiffusionInpaintPipeline,
                       UNet2DConditionModel)
from PIL import Image
from safetensors.torch import save_file

import make_pipeline_fixture as base

OUT = base.FIX / "inpaint"


def inpaint_unet():
    torch.manual_seed(4321)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8).eval()
    with torch.no_grad():
        for _, p in unet.named_parameters():
            if p.abs().max() == 0:
                p.copy_(torch.randn_like(p) * 0.05)
            p.copy_(p.half().float())
        probe = unet(torch.randn(2, 9, 16, 16), torch.tensor([500.0, 500.0]), encoder_hidden_states=torch.randn(2, 77, 32)).sample
        s = 1 / float(probe.std())
        unet.conv_out.weight.copy_((unet.conv_out.weight * s).half().float())
        unet.conv_out.bias.copy_((unet.conv_out.bias * s).half().float())
    return unet


def inputs():
    yy, xx = np.meshgrid(np.linspace(0, 1, 64), np.linspace(0, 1, 64), indexing="ij")
    rgb = np.stack([xx, yy, (xx * yy) ** 0.5], -1) * 255
    disc = (xx - 0.4) ** 2 + (yy - 0.55) ** 2 < 0.2 ** 2
    rgb[disc] = [220, 40, 40]
    image = Image.fromarray(rgb.round().astype(np.uint8), "RGB")
    m = np.zeros((64, 64), np.uint8)
    m[20:52, 12:44] = 255
    m[20:52, 44] = 136          # just above 0.5: generated
    m[20:52, 45] = 120          # just below: kept
    m[8:13, 40:60] = 200
    return image, Image.fromarray(m, "L")


def main():
    tok, text, unet4, vae = base.build()
    unet9 = inpaint_unet()
    model = OUT / "model"
    if model.exists():
        shutil.rmtree(model)
    OUT.mkdir(parents=True, exist_ok=True)
    pipe9 = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet9,
                                           scheduler=PNDMScheduler.from_config(base.SD15_SCHEDULER), safety_checker=None,
                                           feature_extractor=None, requires_safety_checker=False)
    pipe9.save_pretrained(model, safe_serialization=True)
    shutil.rmtree(model / "tokenizer")
    shutil.copytree(base.TOKENIZER, model / "tokenizer")
    for comp, fname, m in (("unet", "diffusion_pytorch_model.safetensors", unet9),
                           ("vae", "diffusion_pytorch_model.safetensors", vae),
                           ("text_encoder", "model.safetensors", text)):
        sd = {k: v.detach().half().contiguous() for k, v in m.state_dict().items() if v.dtype.is_floating_point}
        save_file(sd, model / comp / fname)
    pipe4 = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet4,
                                           scheduler=PNDMScheduler.from_config(base.SD15_SCHEDULER), safety_checker=None,
                                           feature_extractor=None, requires_safety_checker=False)
    image, mask = inputs()
    prompt = "a green square on a plain yellow background"
    negative = "blurry"
    saved = json.loads((model / "scheduler/scheduler_config.json").read_text())
    runs = [
        ("inpaint9_pndm", "inpaint", dict(sampler="default", seed=42, steps=8, cfg=7.5, batch=1, strength=1.0)),
        ("inpaint9_euler_a_b2", "inpaint", dict(sampler="euler-a", seed=7, steps=6, cfg=5.0, batch=2, strength=0.7)),
        ("inpaint9_nocfg", "inpaint", dict(sampler="default", seed=3, steps=5, cfg=1.0, batch=1, strength=1.0)),
        ("inpaint4_pndm", "pipeline", dict(sampler="default", seed=5, steps=8, cfg=7.5, batch=1, strength=1.0)),
        ("inpaint4_euler_a", "pipeline", dict(sampler="euler-a", seed=11, steps=6, cfg=6.0, batch=1, strength=0.6)),
    ]
    cases, tensors = [], {}
    for name, which, c in runs:
        pipe = pipe9 if which == "inpaint" else pipe4
        pipe.scheduler = {"default": PNDMScheduler, "euler-a": EulerAncestralDiscreteScheduler}[c["sampler"]].from_config(saved)
        common = dict(prompt=prompt, negative_prompt=negative, image=image, mask_image=mask, height=64, width=64,
                      num_inference_steps=c["steps"], guidance_scale=c["cfg"], num_images_per_prompt=c["batch"],
                      strength=c["strength"])
        with torch.no_grad():
            images = pipe(generator=torch.Generator().manual_seed(c["seed"]), output_type="np", **common).images
            latents = pipe(generator=torch.Generator().manual_seed(c["seed"]), output_type="latent", **common).images
        tensors[name] = torch.from_numpy(images).float().contiguous()
        tensors[name + "_latents"] = latents.float().contiguous()
        cases.append(dict(name=name, model=which, prompt=prompt, negative=negative, **c))
        print(name, tuple(images.shape))
    image.save(OUT / "image.png")
    mask.save(OUT / "mask.png")
    tensors["image"] = torch.from_numpy(np.asarray(image, np.float32) / 255).contiguous()
    tensors["mask"] = torch.from_numpy(np.asarray(mask, np.float32) / 255).contiguous()
    save_file(tensors, OUT / "expected.safetensors")
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
