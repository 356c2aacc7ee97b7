#!/usr/bin/env python3
"""Whole-pipeline parity fixture: a tiny random-weight Stable Diffusion pipeline saved as a real
diffusers folder, and the images diffusers makes with it.

Deterministic (fixed seeds; no network). Run from the repository root, after the CLIP fixtures exist
(it reuses their small CLIP BPE tokenizer folder):

    tools/.venv/bin/python tools/diffusion/make_pipeline_fixture.py

Writes Tests/DiffusionTests/Fixtures/pipeline/
  model/                 model_index.json, unet/ (f16), vae/ (f16), text_encoder/ (f16), tokenizer/,
                         scheduler/ (SD1.5's PNDM config): a pipeline folder exactly as
                         StableDiffusionPipeline.save_pretrained writes it (safety checker omitted)
  expected.safetensors   images (float32 [B, H, W, 3] in [0, 1], diffusers output_type="np") and final
                         latents (NAME_latents, output_type="latent") for each case
  cases.json             the settings of each case

The UNet, VAE and text encoder are small (64x64 images, 16x16 latents, VAE factor 4) but use every
code path of SD1.5's architecture: cross-attention down/up blocks, a plain down/up block, the mid block,
1x1-conv projections, the VAE's mid attention. Weights are stored f16 like released SD1.5 files; diffusers
runs them in float32 after loading, as llmga does.
"""
import json
import shutil
from pathlib import Path

import torch
from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       PNDMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline,
                       UNet2DConditionModel)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from sd15 import SD15_SCHEDULER

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "Tests/DiffusionTests/Fixtures"
OUT = FIX / "pipeline"
TOKENIZER = FIX / "clip/tok-small"



def build():
    torch.manual_seed(1234)
    tok = CLIPTokenizer.from_pretrained(TOKENIZER)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)).eval()
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8).eval()
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        norm_num_groups=8, sample_size=64).eval()
    # Random init leaves some layers near zero (diffusers zero-inits conv_out etc.); give every weight
    # real values so the comparison exercises all of them, then round to f16 as released files are.
    with torch.no_grad():
        for m in (unet, vae, text):
            for name, p in m.named_parameters():
                if p.abs().max() == 0:
                    p.copy_(torch.randn_like(p) * 0.05)
                p.copy_(p.half().float())
        # A trained UNet predicts noise of about unit variance; a random one predicts ~10x more,
        # which drives ancestral samplers to huge latents that the random VAE turns into clipped
        # noise. Scale conv_out so the prediction has unit variance, like a trained model's.
        probe = unet(torch.randn(2, 4, 16, 16), torch.tensor([500.0, 500.0]), encoder_hidden_states=torch.randn(2, 77, 32)).sample
        unet.conv_out.weight.mul_(1 / float(probe.std()))
        unet.conv_out.bias.mul_(1 / float(probe.std()))
        unet.conv_out.weight.copy_(unet.conv_out.weight.half().float())
        unet.conv_out.bias.copy_(unet.conv_out.bias.half().float())
    return tok, text, unet, vae


def save_folder(tok, text, unet, vae):
    model = OUT / "model"
    if model.exists():
        shutil.rmtree(model)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=PNDMScheduler.from_config(SD15_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(model, safe_serialization=True)
    # transformers 5 saves only tokenizer.json; released SD1.5 folders ship the CLIP BPE files.
    tokdir = model / "tokenizer"
    shutil.rmtree(tokdir)
    shutil.copytree(TOKENIZER, tokdir)
    # Store the weights f16 like released checkpoints (values are already f16-exact).
    for comp, fname in (("unet", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                        ("text_encoder", "model.safetensors")):
        m = {"unet": unet, "vae": vae, "text_encoder": text}[comp]
        sd = {k: v.detach().half().contiguous() for k, v in m.state_dict().items() if v.dtype.is_floating_point}
        save_file(sd, model / comp / fname)
    return pipe


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tok, text, unet, vae = build()
    pipe = save_folder(tok, text, unet, vae)
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    prompt = "a red circle on the left of a plain blue background, high detail"
    negative = "blurry, low quality"
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    init = torch.stack([xx, yy, (xx * yy) ** 0.5]).unsqueeze(0)  # [1, 3, 64, 64] in [0, 1]

    cases, tensors = [], {}
    runs = [
        ("t2i_pndm", dict(sampler="default", seed=42, steps=10, cfg=7.5, batch=1)),
        ("t2i_euler_a", dict(sampler="euler-a", seed=7, steps=8, cfg=5.0, batch=2)),
        ("t2i_euler_a_b1", dict(sampler="euler-a", seed=7, steps=8, cfg=5.0, batch=1)),
        ("t2i_pndm_b2", dict(sampler="default", seed=9, steps=6, cfg=7.5, batch=2)),
        ("t2i_dpmpp_karras", dict(sampler="dpm++2m-karras", seed=3, steps=8, cfg=7.5, batch=1)),
        ("t2i_nocfg", dict(sampler="default", seed=11, steps=6, cfg=1.0, batch=1)),
        ("i2i_pndm", dict(sampler="default", seed=5, steps=10, cfg=7.5, batch=1, strength=0.6)),
    ]
    for name, c in runs:
        # Samplers are built from the folder's saved scheduler_config.json, as llmga reads it (it spells
        # out PNDM's fields, e.g. timestep_spacing "leading", which the other classes then inherit).
        saved = json.loads((OUT / "model/scheduler/scheduler_config.json").read_text())
        sched = {
            "default": lambda: PNDMScheduler.from_config(saved),
            "euler-a": lambda: EulerAncestralDiscreteScheduler.from_config(saved),
            "dpm++2m-karras": lambda: DPMSolverMultistepScheduler.from_config(saved, use_karras_sigmas=True),
        }[c["sampler"]]()
        g = torch.Generator().manual_seed(c["seed"])
        common = dict(prompt=prompt, negative_prompt=negative, num_inference_steps=c["steps"], guidance_scale=c["cfg"],
                      num_images_per_prompt=c["batch"], generator=g, output_type="np")
        with torch.no_grad():
            if "strength" in c:
                img2img.scheduler = sched
                images = img2img(image=init, strength=c["strength"], **common).images
            else:
                pipe.scheduler = sched
                images = pipe(height=64, width=64, **common).images
            # The same run again, stopping at the final latents (before the VAE).
            common["generator"] = torch.Generator().manual_seed(c["seed"])
            common["output_type"] = "latent"
            if "strength" in c:
                latents = img2img(image=init, strength=c["strength"], **common).images
            else:
                latents = pipe(height=64, width=64, **common).images
        print(name, sched.__class__.__name__, sched.config.timestep_spacing, float(sched.init_noise_sigma))
        tensors[name] = torch.from_numpy(images).float().contiguous()
        tensors[name + "_latents"] = latents.float().contiguous()
        cases.append(dict(name=name, prompt=prompt, negative=negative, **c))
    tensors["init_image"] = init.permute(0, 2, 3, 1).contiguous()
    save_file(tensors, OUT / "expected.safetensors")
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
